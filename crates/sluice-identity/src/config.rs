//! Checks the issuer list before any network use, reporting every problem at once.

use jsonwebtoken::Algorithm;
use sluice_core::config::{ALLOWED_ALGORITHMS, IssuerConfig};
use std::collections::HashSet;
use std::str::FromStr;

/// The issuer configuration cannot be used; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid issuer configuration: {}", join(.0))]
pub struct ConfigError(pub Vec<ConfigProblem>);

/// One problem with one `[[issuers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("an issuer has an empty name")]
    EmptyName,
    #[error("issuer name {0:?} is used twice")]
    DuplicateName(String),
    #[error("issuer {name:?}: the issuer URL {issuer:?} is configured twice")]
    DuplicateIssuer { name: String, issuer: String },
    #[error("issuer {name:?}: {what} {url:?} must be an http:// or https:// URL")]
    BadUrl {
        name: String,
        what: &'static str,
        url: String,
    },
    #[error(
        "issuer {0:?}: no audiences; an issuer without an audience check accepts tokens minted for any app"
    )]
    NoAudiences(String),
    #[error("issuer {0:?}: no algorithms")]
    NoAlgorithms(String),
    #[error(
        "issuer {name:?}: algorithm {alg:?} is not allowed; use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
    )]
    DisallowedAlgorithm { name: String, alg: String },
    #[error("issuer {0:?}: the groups claim name is empty")]
    EmptyGroupsClaim(String),
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// True for an absolute http(s) URL with a host. Anything else (file:,
/// data:, relative paths) must never be fetched.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains('@') && !url.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Parses the configured algorithm names, refusing any outside
/// `ALLOWED_ALGORITHMS` (so never `none` and never HMAC).
pub(crate) fn parse_algorithms(cfg: &IssuerConfig) -> Result<Vec<Algorithm>, Vec<ConfigProblem>> {
    let mut algs = Vec::new();
    let mut problems = Vec::new();
    for name in &cfg.algorithms {
        let alg = ALLOWED_ALGORITHMS
            .contains(&name.as_str())
            .then(|| Algorithm::from_str(name).ok())
            .flatten();
        match alg {
            Some(a) if !algs.contains(&a) => algs.push(a),
            Some(_) => {}
            None => problems.push(ConfigProblem::DisallowedAlgorithm {
                name: cfg.name.clone(),
                alg: name.clone(),
            }),
        }
    }
    if cfg.algorithms.is_empty() {
        problems.push(ConfigProblem::NoAlgorithms(cfg.name.clone()));
    }
    if problems.is_empty() {
        Ok(algs)
    } else {
        Err(problems)
    }
}

/// Validates every issuer; returns each one's parsed algorithms in order.
pub(crate) fn validate(issuers: &[IssuerConfig]) -> Result<Vec<Vec<Algorithm>>, ConfigError> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut urls = HashSet::new();
    let mut parsed = Vec::with_capacity(issuers.len());
    for cfg in issuers {
        if cfg.name.trim().is_empty() {
            problems.push(ConfigProblem::EmptyName);
        } else if !names.insert(cfg.name.as_str()) {
            problems.push(ConfigProblem::DuplicateName(cfg.name.clone()));
        }
        if !urls.insert(cfg.issuer.as_str()) {
            problems.push(ConfigProblem::DuplicateIssuer {
                name: cfg.name.clone(),
                issuer: cfg.issuer.clone(),
            });
        }
        if !is_http_url(&cfg.issuer) {
            problems.push(ConfigProblem::BadUrl {
                name: cfg.name.clone(),
                what: "issuer",
                url: cfg.issuer.clone(),
            });
        }
        let discovery = cfg.discovery_url();
        if !is_http_url(&discovery) {
            problems.push(ConfigProblem::BadUrl {
                name: cfg.name.clone(),
                what: "discovery_url",
                url: discovery,
            });
        }
        if cfg.audiences.iter().all(|a| a.trim().is_empty()) {
            problems.push(ConfigProblem::NoAudiences(cfg.name.clone()));
        }
        if cfg.groups_claim.trim().is_empty() {
            problems.push(ConfigProblem::EmptyGroupsClaim(cfg.name.clone()));
        }
        match parse_algorithms(cfg) {
            Ok(algs) => parsed.push(algs),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(ConfigError(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(name: &str, url: &str) -> IssuerConfig {
        IssuerConfig::new(name, url, "https://sluice.test")
    }

    #[test]
    fn accepts_defaults() {
        let algs = validate(&[issuer("okta", "https://example.okta.com/oauth2/default")]).unwrap();
        assert_eq!(
            algs,
            vec![vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]]
        );
    }

    #[test]
    fn refuses_hmac_none_and_reports_every_problem() {
        let mut a = issuer("okta", "https://a.example");
        a.algorithms = vec!["HS256".into(), "none".into(), "RS256".into()];
        a.audiences = vec![];
        let b = issuer("okta", "file:///etc/passwd");
        let err = validate(&[a, b]).unwrap_err();
        assert!(err.0.contains(&ConfigProblem::DisallowedAlgorithm {
            name: "okta".into(),
            alg: "HS256".into()
        }));
        assert!(err.0.contains(&ConfigProblem::DisallowedAlgorithm {
            name: "okta".into(),
            alg: "none".into()
        }));
        assert!(err.0.contains(&ConfigProblem::NoAudiences("okta".into())));
        assert!(err.0.contains(&ConfigProblem::DuplicateName("okta".into())));
        assert!(
            err.0
                .iter()
                .any(|p| matches!(p, ConfigProblem::BadUrl { what: "issuer", .. }))
        );
        assert!(err.to_string().contains("HS256"));
    }

    #[test]
    fn http_url_check() {
        assert!(is_http_url("http://127.0.0.1:8420/dev-issuer"));
        assert!(is_http_url(
            "https://idp.example/.well-known/openid-configuration"
        ));
        assert!(!is_http_url("ftp://idp.example"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https://user@idp.example"));
        assert!(!is_http_url("idp.example"));
    }
}
