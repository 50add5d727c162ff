//! Token and key-set handling before any signature is trusted: the
//! unverified peek, JWKS documents, and the claims-to-identity mapping.
//! Oracles: no panic; an identity always has a non-empty subject and the
//! configured issuer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_identity::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = fuzzing::peek(token);
            }
        }
        1 => {
            let _ = fuzzing::jwks(rest);
        }
        _ => {
            if let Some(id) = fuzzing::identity(rest) {
                assert!(!id.subject.is_empty());
                assert_eq!(id.issuer, "https://idp.example/oauth2/default");
            }
        }
    }
});
