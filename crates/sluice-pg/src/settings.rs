//! What one client session asks of its backend session: the client's
//! harmless startup parameters, `application_name` carrying the grant id
//! (DBAs see who is behind a backend session), and read-only for `read`
//! grants.
//!
//! Backend sessions start with a neutral startup packet (see
//! [`crate::backend`]) and get these with `set_config`, fresh or reused
//! alike: `DISCARD ALL` at release then returns every one of them to the
//! server's default, never to an earlier client's value. Values travel as
//! bind parameters, so no client text is ever spliced into SQL.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::guardrail::StatementClass;

use crate::backend::{Backend, backend_error};
use crate::errors::PgError;

/// Startup parameters a client may set on the backend session. Others are
/// dropped: a startup parameter is a GUC that no statement analysis sees
/// (`options`, `default_transaction_read_only`, `role`, `replication`, …).
/// `search_path` passes only when the `SET` doing the same would be
/// harmless; `client_encoding` never does (Sluice analyses SQL as UTF-8).
const PASSED_PARAMS: &[&str] = &[
    "application_name",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
];

/// PostgreSQL truncates names to 63 bytes; the grant id must survive that.
const MAX_NAME: usize = 63;

/// Time allowed for the settings round trip.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// `set_config(name, value, false)` is `SET name TO value` for the session,
/// with the value read exactly as a startup parameter's would be.
const SET_CONFIG: &str = "SELECT pg_catalog.set_config($1, $2, false)";
const TEXT_OID: u32 = 25;

/// The settings for a client session of `grant_id` under `profile`, from
/// the client's startup `params`.
pub fn wanted(
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut app = None;
    for (k, v) in params {
        if k == "application_name" {
            app = Some(v.as_str());
        } else if PASSED_PARAMS.contains(&k.as_str()) && harmless_setting(k, v) {
            out.push((k.clone(), v.clone()));
        }
    }
    out.push(("application_name".into(), application_name(app, grant_id)));
    if profile == Profile::Read {
        // Also in the startup packet (so RESET keeps it): set again here so a
        // reused session is read-only whatever happened before.
        out.push(("default_transaction_read_only".into(), "on".into()));
    }
    out
}

/// True when `SET name TO value` is a harmless session statement to the
/// analysis: e.g. no `search_path` that puts a schema before pg_catalog,
/// where it could shadow built-ins. Anything it cannot judge is dropped.
fn harmless_setting(name: &str, value: &str) -> bool {
    if name != "search_path" {
        return true;
    }
    let analysis = sluice_sql::analyze(&format!("SET {name} TO {value}"));
    matches!(&analysis.statements[..], [only] if only.class == StatementClass::Session)
}

/// The client's application name with the grant id appended, shortened so
/// the grant id survives PostgreSQL's 63-byte limit.
pub fn application_name(client: Option<&str>, grant_id: &str) -> String {
    match client.filter(|c| !c.is_empty()) {
        None => grant_id.to_string(),
        Some(c) => {
            let room = MAX_NAME.saturating_sub(grant_id.len() + 1);
            let mut end = c.len().min(room);
            while !c.is_char_boundary(end) {
                end -= 1;
            }
            format!("{} {grant_id}", &c[..end])
        }
    }
}

/// Why settings were not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The server refused a value (a client's bad `TimeZone`, say). The
    /// settings were one transaction, rolled back: the session is as it
    /// was, idle, and can be reset and parked again.
    Refused(PgError),
    /// Anything else: the session may be broken, close it.
    Broken(PgError),
}

impl From<ApplyError> for PgError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Refused(e) | ApplyError::Broken(e) => e,
        }
    }
}

/// Applies `settings` to `backend` in one round trip and records the
/// server's ParameterStatus answers. Anything but the exact expected answer
/// is an error.
pub async fn apply(backend: &mut Backend, settings: &[(String, String)]) -> Result<(), ApplyError> {
    let request = request(settings).map_err(ApplyError::Broken)?;
    tokio::time::timeout(APPLY_TIMEOUT, exchange(backend, &request, settings.len()))
        .await
        .map_err(|_| {
            ApplyError::Broken(PgError::Backend(
                "applying session settings timed out".into(),
            ))
        })?
}

/// Parse once, Bind and Execute per setting, one Sync: one implicit
/// transaction, so either every setting takes or none does.
fn request(settings: &[(String, String)]) -> Result<BytesMut, PgError> {
    let mut buf = BytesMut::new();
    frontend::parse("", SET_CONFIG, [TEXT_OID, TEXT_OID], &mut buf)?;
    for (name, value) in settings {
        frontend::bind(
            "",
            "",
            [0i16],
            [name.as_str(), value.as_str()],
            |v, out: &mut BytesMut| {
                out.put_slice(v.as_bytes());
                Ok(IsNull::No)
            },
            [0i16],
            &mut buf,
        )
        .map_err(|_| PgError::Backend("session setting too large".into()))?;
        frontend::execute("", 0, &mut buf)?;
    }
    frontend::sync(&mut buf);
    Ok(buf)
}

async fn exchange(backend: &mut Backend, request: &[u8], n: usize) -> Result<(), ApplyError> {
    let broken = ApplyError::Broken;
    backend.send(request).await.map_err(broken)?;
    let mut expected = Vec::with_capacity(2 + 3 * n);
    expected.push(b'1');
    for _ in 0..n {
        expected.extend_from_slice(b"2DC");
    }
    let mut seen = 0;
    let mut refused = None;
    loop {
        let frame = backend.next().await.map_err(broken)?;
        match frame.tag {
            b'S' => {
                if !backend.parameters.report(frame.body()) {
                    return Err(broken(PgError::Backend("malformed ParameterStatus".into())));
                }
            }
            b'N' => {}
            // The rest of the batch is skipped up to the Sync's answer.
            b'E' if refused.is_none() => refused = Some(backend_error(&frame)),
            b'Z' if frame.body() == b"I" && refused.is_some() => {
                return Err(ApplyError::Refused(refused.expect("checked")));
            }
            b'Z' if seen == expected.len() && frame.body() == b"I" => return Ok(()),
            tag if refused.is_none() && expected.get(seen) == Some(&tag) => seen += 1,
            tag => {
                return Err(broken(PgError::Backend(format!(
                    "unexpected {:?} while applying session settings",
                    tag as char
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_harmless_search_path_passes() {
        assert!(harmless_setting("search_path", "public"));
        assert!(harmless_setting("search_path", "\"$user\", public"));
        assert!(harmless_setting("search_path", "pg_catalog, public"));
        assert!(!harmless_setting("search_path", "evil, pg_catalog"));
        assert!(!harmless_setting("search_path", "public; DROP TABLE t"));
        assert!(!harmless_setting("search_path", "'"));
    }

    #[test]
    fn application_name_keeps_the_grant_id() {
        let g = "g_abcdefghijklmnopqrstuvwxyz";
        assert_eq!(application_name(None, g), g);
        assert_eq!(application_name(Some("psql"), g), format!("psql {g}"));
        let long = "x".repeat(100);
        let name = application_name(Some(&long), g);
        assert!(name.len() <= MAX_NAME && name.ends_with(g));
    }

    #[test]
    fn wanted_filters_the_client_and_adds_the_profile() {
        let params = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let client = params(&[
            ("user", "g_1"),
            ("TimeZone", "UTC"),
            ("options", "-c default_transaction_read_only=off"),
            ("client_encoding", "SJIS"),
            ("search_path", "evil, pg_catalog"),
            ("application_name", "psql"),
        ]);
        let w = wanted(&client, "g_1", Profile::Read);
        assert_eq!(
            w,
            params(&[
                ("TimeZone", "UTC"),
                ("application_name", "psql g_1"),
                ("default_transaction_read_only", "on"),
            ])
        );
        let w = wanted(&[], "g_2", Profile::Write);
        assert_eq!(w, params(&[("application_name", "g_2")]));
    }

    #[test]
    fn values_are_bind_parameters_never_sql() {
        let evil = "x'); DROP TABLE t; --";
        let buf = request(&[("TimeZone".into(), evil.into())]).unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert_eq!(text.matches("set_config").count(), 1);
        // The value sits in the Bind, after the Parse's one SQL string.
        let parse_end = text.find(SET_CONFIG).unwrap() + SET_CONFIG.len();
        assert!(text.find(evil).unwrap() > parse_end);
    }
}
