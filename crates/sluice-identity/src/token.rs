//! The unverified view of a token: just enough (size, header, `iss`) to pick
//! the issuer and key. Nothing read here is trusted until the signature and
//! claims are verified.

use crate::rejection::Rejection;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Tokens larger than this are refused before any decoding.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What routing needs from a token that is not verified yet.
#[derive(Debug)]
pub(crate) struct Unverified {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
    pub(crate) iss: String,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions we would have to understand; we understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Splits and decodes header and payload without checking the signature.
pub(crate) fn peek(token: &str) -> Result<Unverified, Rejection> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: RawHeader = decode_json(header)?;
    if header.crit.is_some() {
        return Err(Rejection::Malformed);
    }
    let payload: serde_json::Value = decode_json(payload)?;
    check_numeric_dates(&payload)?;
    let iss = match payload.get("iss") {
        None | Some(serde_json::Value::Null) => return Err(Rejection::MissingClaim("iss")),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err(Rejection::InvalidClaim("iss")),
    };
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        iss,
    })
}

/// The `kid` in a form fit for a log line: attacker-chosen text is replaced
/// unless it is short and plainly printable.
pub(crate) fn loggable_kid(kid: Option<&str>) -> &str {
    match kid {
        None => "",
        Some(k) if k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()) => k,
        Some(_) => "<unprintable>",
    }
}

/// Numeric-date claims (`exp`, `nbf`, `iat`) must be non-negative numbers
/// when present. Checked here because jsonwebtoken treats a claim of the
/// wrong JSON type like an absent one, and a token must never lose its
/// expiry that way.
fn check_numeric_dates(payload: &serde_json::Value) -> Result<(), Rejection> {
    for claim in ["exp", "nbf", "iat"] {
        match payload.get(claim) {
            None => {}
            Some(v) if v.as_f64().is_some_and(|n| n.is_finite() && n >= 0.0) => {}
            Some(_) => return Err(Rejection::InvalidClaim(claim)),
        }
    }
    Ok(())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn reads_alg_kid_and_iss() {
        let t = format!(
            "{}.{}.c2ln",
            enc(serde_json::json!({"alg": "RS256", "kid": "k1"})),
            enc(serde_json::json!({"iss": "https://idp.example", "sub": "a"}))
        );
        let u = peek(&t).unwrap();
        assert_eq!(
            (u.alg.as_str(), u.kid.as_deref(), u.iss.as_str()),
            ("RS256", Some("k1"), "https://idp.example")
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        let h = enc(serde_json::json!({"alg": "RS256"}));
        let p = enc(serde_json::json!({"iss": "x"}));
        assert_eq!(peek("").unwrap_err(), Rejection::Malformed);
        assert_eq!(peek(&format!("{h}.{p}")).unwrap_err(), Rejection::Malformed);
        assert_eq!(
            peek(&format!("{h}.{p}.s.x")).unwrap_err(),
            Rejection::Malformed
        );
        assert_eq!(
            peek(&format!("{h}.!!.s")).unwrap_err(),
            Rejection::Malformed
        );
        assert_eq!(
            peek(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err(),
            Rejection::Malformed
        );
        let crit = enc(serde_json::json!({"alg": "RS256", "crit": ["exp"]}));
        assert_eq!(
            peek(&format!("{crit}.{p}.s")).unwrap_err(),
            Rejection::Malformed
        );
        let no_iss = enc(serde_json::json!({"sub": "x"}));
        assert_eq!(
            peek(&format!("{h}.{no_iss}.s")).unwrap_err(),
            Rejection::MissingClaim("iss")
        );
        let num_iss = enc(serde_json::json!({"iss": 5}));
        assert_eq!(
            peek(&format!("{h}.{num_iss}.s")).unwrap_err(),
            Rejection::InvalidClaim("iss")
        );
        for (claim, bad) in [
            ("exp", serde_json::json!("9999999999")),
            ("nbf", serde_json::json!(-1)),
            ("iat", serde_json::json!(true)),
        ] {
            let p = enc(serde_json::json!({"iss": "x", claim: bad}));
            assert_eq!(
                peek(&format!("{h}.{p}.s")).unwrap_err(),
                Rejection::InvalidClaim(claim)
            );
        }
    }

    #[test]
    fn kids_are_logged_only_when_plain() {
        assert_eq!(loggable_kid(Some("Mw5yqOy4ut3y")), "Mw5yqOy4ut3y");
        assert_eq!(loggable_kid(Some("a\nforged log line")), "<unprintable>");
        assert_eq!(loggable_kid(None), "");
    }
}
