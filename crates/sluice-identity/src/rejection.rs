//! Why a token was refused. The `Display` text is what a client sees in a 401
//! body, so it names the problem and never echoes token content.

/// A token that did not prove an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a well-formed JWT, too large, or carrying claims of absurd size.
    #[error(
        "the token is malformed: expected a signed JWT (header.payload.signature) of reasonable size"
    )]
    Malformed,
    /// The unverified `iss` names no configured issuer.
    #[error("the token's issuer is not trusted by this gateway")]
    UnknownIssuer,
    /// The header's `alg` is not on the issuer's allow-list (`none` and HMAC never are).
    #[error("the token's signature algorithm {0:?} is not allowed for its issuer")]
    DisallowedAlgorithm(String),
    /// The header's `alg` does not fit the type or curve of the key named by `kid`.
    #[error("the token's signature algorithm does not match the type of the issuer's key it names")]
    AlgorithmKeyMismatch,
    /// No published key has the token's `kid`, even after refreshing the
    /// issuer's keys (or the refresh was not possible).
    #[error(
        "the token was signed with an unknown key: its kid is not among the issuer's published keys, \
         and refreshing the issuer's keys did not find it (or the issuer could not be reached)"
    )]
    UnknownKey,
    /// The signature does not verify with the issuer's key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the configured leeway).
    #[error("the token has expired: get a new one from the identity provider")]
    Expired,
    /// `nbf` is in the future (beyond the configured leeway).
    #[error("the token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    /// No `aud` value matches the audiences configured for the issuer.
    #[error("the token was issued for another audience, not for this gateway")]
    WrongAudience,
    /// A required claim is absent.
    #[error("the token lacks the required claim {0:?}")]
    MissingClaim(&'static str),
    /// A claim is present but of the wrong JSON type (e.g. `exp` as a string).
    #[error("the token's claim {0:?} has the wrong type or an invalid value")]
    InvalidClaim(&'static str),
    /// No usable keys: the issuer cannot be reached and nothing usable is cached.
    #[error("the token's issuer could not be reached to fetch its signing keys; try again shortly")]
    IssuerUnreachable,
}

impl Rejection {
    /// A short, stable code for logs, metrics and the JSON `error` field.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnknownIssuer => "unknown_issuer",
            Rejection::DisallowedAlgorithm(_) => "alg_not_allowed",
            Rejection::AlgorithmKeyMismatch => "alg_key_mismatch",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim(_) => "missing_claim",
            Rejection::InvalidClaim(_) => "invalid_claim",
            Rejection::IssuerUnreachable => "issuer_unreachable",
        }
    }

    /// `DisallowedAlgorithm` for an `alg` taken from an untrusted header: kept
    /// only when it looks like an algorithm name, so a hostile header cannot
    /// smuggle text into the 401 body or the logs.
    pub(crate) fn disallowed_alg(alg: &str) -> Rejection {
        let looks_like_alg = !alg.is_empty()
            && alg.len() <= 16
            && alg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        Rejection::DisallowedAlgorithm(if looks_like_alg {
            alg.to_owned()
        } else {
            "?".to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_alg_text_is_not_echoed() {
        assert_eq!(
            Rejection::disallowed_alg("none"),
            Rejection::DisallowedAlgorithm("none".into())
        );
        let r = Rejection::disallowed_alg("<script>alert(1)</script>");
        assert_eq!(r, Rejection::DisallowedAlgorithm("?".into()));
        assert!(!r.to_string().contains("script"));
        assert_eq!(r.reason(), "alg_not_allowed");
    }
}
