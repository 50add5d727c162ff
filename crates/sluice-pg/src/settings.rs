//! What one client session asks of its backend session: the client's
//! startup settings, judged like the `SET`s that would do the same,
//! `application_name` carrying the grant id (DBAs see who is behind a
//! backend session), and read-only for `read` grants.
//!
//! Backend sessions start with Sluice's own startup packet (see
//! [`crate::backend`]: pinned lexing settings, read-only, the profile's
//! statement timeout) and get these with `set_config`, fresh or reused
//! alike: `DISCARD ALL` at release then returns every one of them to the
//! start value, never to an earlier client's. Values travel as bind
//! parameters, so no client text is ever spliced into SQL.
//!
//! A client's startup `options` (`-c name=value`, as `PGOPTIONS` sends
//! them) are taken apart and judged one by one with the same rules as
//! `SET` ([`sluice_sql::session::rule_for`]): harmless ones are applied,
//! and one that Sluice would refuse as a statement refuses the login, with
//! its reason. Other startup parameters outside [`PASSED_PARAMS`] are
//! dropped, as before: `client_encoding` stays UTF8 (the server reports
//! it, and libpq follows the report).

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::guardrail::StatementClass;
use sluice_sql::session::{SettingRule, rule_for};

use crate::backend::{Backend, backend_error};
use crate::errors::PgError;

/// Startup parameters a client may set on the backend session by name.
/// Others are dropped: a startup parameter is a GUC that no statement
/// analysis sees (`default_transaction_read_only`, `role`, `replication`…).
const PASSED_PARAMS: &[&str] = &[
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
];

/// Startup parameters that would make the server read statements
/// differently from Sluice, unless given their pinned value.
const REFUSED_PARAMS: &[&str] = &["standard_conforming_strings", "backslash_quote"];

/// PostgreSQL truncates names to 63 bytes; the grant id must survive that.
const MAX_NAME: usize = 63;

/// Time allowed for the settings round trip.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// `set_config(name, value, false)` is `SET name TO value` for the session,
/// with the value read exactly as a startup parameter's would be.
const SET_CONFIG: &str = "SELECT pg_catalog.set_config($1, $2, false)";
const TEXT_OID: u32 = 25;

/// The client's startup settings to apply on the backend (without
/// `application_name`), or why the login is refused. `timeout_cap` is the
/// profile's statement timeout.
pub fn client_settings(
    params: &[(String, String)],
    timeout_cap: Option<Duration>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in params {
        if k == "options" {
            for (name, value) in parse_options(v)? {
                if let Some(kept) = judge(&name, &value, timeout_cap)? {
                    out.push(kept);
                }
            }
        } else if REFUSED_PARAMS.contains(&k.as_str()) {
            judge(k, v, timeout_cap)?;
        } else if PASSED_PARAMS.contains(&k.as_str())
            && let Some(kept) = judge(k, v, timeout_cap)?
        {
            out.push(kept);
        }
    }
    Ok(out)
}

/// One startup setting judged as `SET name TO value`: applied, skipped
/// (already Sluice's value, or the application name handled apart), or
/// refused with the reason.
fn judge(
    name: &str,
    value: &str,
    timeout_cap: Option<Duration>,
) -> Result<Option<(String, String)>, String> {
    let keep = Ok(Some((name.to_string(), value.to_string())));
    match rule_for(name) {
        SettingRule::Free => keep,
        SettingRule::Timeout => {
            timeout_within(name, value, timeout_cap)?;
            keep
        }
        SettingRule::SearchPath if harmless_search_path(value) => keep,
        SettingRule::Identity => Ok(None),
        SettingRule::Pinned(_) | SettingRule::ReadOnly => {
            let analysis = sluice_sql::analyze(&format!("SET {name} TO {}", quote(value)));
            match analysis.statements.first() {
                Some(s) if s.class == StatementClass::Session && s.refused.is_none() => Ok(None),
                Some(s) => Err(format!(
                    "startup setting {name}={value} is not allowed: {}",
                    s.refused
                        .as_deref()
                        .or(s.reasons.first().map(String::as_str))
                        .unwrap_or("")
                )),
                None => Err(format!("startup setting {name}={value} is not allowed")),
            }
        }
        _ => Err(format!(
            "startup setting {name} is not allowed through Sluice (agents may not change it)"
        )),
    }
}

/// A statement timeout (in PostgreSQL's units) must be positive and within
/// the profile's cap; other timeouts only end things sooner.
pub fn timeout_within(name: &str, value: &str, cap: Option<Duration>) -> Result<(), String> {
    let Some(cap) = cap.filter(|_| name.eq_ignore_ascii_case("statement_timeout")) else {
        return Ok(());
    };
    let limit = humantime::format_duration(cap);
    match parse_pg_millis(value) {
        Some(ms) if ms > 0.0 && ms <= cap.as_secs_f64() * 1000.0 => Ok(()),
        Some(_) => Err(format!(
            "statement_timeout may be lowered but not raised above {limit} or turned off"
        )),
        None => Err(format!("statement_timeout {value:?} is not a duration")),
    }
}

/// A PostgreSQL time setting's value in milliseconds: a number with an
/// optional unit (`us`, `ms`, `s`, `min`, `h`, `d`; none means ms).
fn parse_pg_millis(value: &str) -> Option<f64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    n.is_finite().then_some(n * factor)
}

/// Startup `options` as PostgreSQL reads them: words split on blanks (a
/// backslash keeps the next character), each `-c name=value` or
/// `--name=value`. Anything else (other backend switches) is refused.
fn parse_options(options: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
                .ok_or("startup options end with -c and no setting")?
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_string()
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_string()
        } else {
            return Err(format!(
                "startup option {w:?} is not allowed through Sluice (only -c name=value)"
            ));
        };
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("startup option {setting:?} has no value"))?;
        out.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(out)
}

/// A value as an SQL string literal.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The settings for a client session of `grant_id` under `profile`: the
/// client's judged settings, its application name with the grant id, and
/// read-only for `read` grants.
pub fn wanted(
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
    timeout_cap: Option<Duration>,
) -> Vec<(String, String)> {
    // Refused settings never get this far: the login checked them.
    let mut out = client_settings(params, timeout_cap).unwrap_or_default();
    let app = params
        .iter()
        .find(|(k, _)| k == "application_name")
        .map(|(_, v)| v.as_str());
    out.push(("application_name".into(), application_name(app, grant_id)));
    if profile == Profile::Read {
        // Also in the startup packet (so RESET keeps it): set again here so a
        // reused session is read-only whatever happened before.
        out.push(("default_transaction_read_only".into(), "on".into()));
    }
    out
}

/// True when `SET search_path TO value` is a harmless session statement to
/// the analysis: no schema before pg_catalog, where it could shadow
/// built-ins. Anything it cannot judge is refused.
fn harmless_search_path(value: &str) -> bool {
    let analysis = sluice_sql::analyze(&format!("SET search_path TO {value}"));
    matches!(&analysis.statements[..], [only]
        if only.class == StatementClass::Session && only.refused.is_none())
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
        assert!(harmless_search_path("public"));
        assert!(harmless_search_path("\"$user\", public"));
        assert!(harmless_search_path("pg_catalog, public"));
        assert!(!harmless_search_path("evil, pg_catalog"));
        assert!(!harmless_search_path("public; DROP TABLE t"));
        assert!(!harmless_search_path("'"));
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn startup_options_are_judged_like_set() {
        let cap = Some(Duration::from_secs(60));
        let ok = |o: &str| client_settings(&pairs(&[("options", o)]), cap);
        assert_eq!(
            ok("-c search_path=app,public --statement-timeout=5s -cDateStyle=ISO").unwrap(),
            pairs(&[
                ("search_path", "app,public"),
                ("statement_timeout", "5s"),
                ("DateStyle", "ISO"),
            ])
        );
        assert_eq!(
            ok("-c TimeZone=America/New\\ York").unwrap()[0].1,
            "America/New York"
        );
        // Sluice's own values are no change at all.
        assert!(
            ok("-c standard_conforming_strings=on -c client_encoding=UTF8")
                .unwrap()
                .is_empty()
        );
        for bad in [
            "-c standard_conforming_strings=off",
            "-c client_encoding=SJIS",
            "-c backslash_quote=on",
            "-c default_transaction_read_only=off",
            "-c search_path=evil,pg_catalog",
            "-c statement_timeout=0",
            "-c statement_timeout=2h",
            "-c work_mem=4GB",
            "-c role=postgres",
            "-c session_replication_role=replica",
            "-c app.tenant=7",
            "-B 100",
            "-c",
            "-c x",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        // Direct parameters that would change lexing refuse the login too.
        let direct = pairs(&[("standard_conforming_strings", "off")]);
        assert!(client_settings(&direct, cap).is_err());
        let direct = pairs(&[("standard_conforming_strings", "on")]);
        assert!(client_settings(&direct, cap).unwrap().is_empty());
    }

    #[test]
    fn statement_timeouts_stay_under_the_cap() {
        let cap = Some(Duration::from_secs(60));
        for ok in ["5s", "1min", "60000", "59999ms", "0.5min", "100us"] {
            assert!(timeout_within("statement_timeout", ok, cap).is_ok(), "{ok}");
        }
        for bad in ["0", "61s", "2h", "1d", "-1", "forever", "5 parsecs"] {
            assert!(
                timeout_within("statement_timeout", bad, cap).is_err(),
                "{bad}"
            );
        }
        assert!(timeout_within("statement_timeout", "0", None).is_ok());
        assert!(timeout_within("lock_timeout", "0", cap).is_ok());
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
            ("options", "-c lock_timeout=5s"),
            ("client_encoding", "SJIS"),
            ("replication", "database"),
            ("application_name", "psql"),
        ]);
        let w = wanted(&client, "g_1", Profile::Read, None);
        assert_eq!(
            w,
            params(&[
                ("TimeZone", "UTC"),
                ("lock_timeout", "5s"),
                ("application_name", "psql g_1"),
                ("default_transaction_read_only", "on"),
            ])
        );
        let w = wanted(&[], "g_2", Profile::Write, None);
        assert_eq!(w, params(&[("application_name", "g_2")]));
        let evil = params(&[("search_path", "evil, pg_catalog")]);
        assert!(client_settings(&evil, None).is_err());
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
