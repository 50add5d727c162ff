//! The SCRAM-SHA-256 server exchange. Oracle: an honest client
//! (postgres-protocol's) with the right password always gets in and
//! accepts the server's proof; with another password, or with arbitrary
//! bytes for either client message, the server never accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use sluice_core::secret::ScramVerifier;
use sluice_pg::scram::ScramServer;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let verifier =
        || ScramVerifier::derive_with("the-grant-secret", b"fixed-salt-16by!".to_vec(), 16);
    match mode % 3 {
        // An honest client with a password from the input.
        0 | 1 => {
            let password = if mode % 3 == 0 {
                "the-grant-secret".as_bytes()
            } else {
                rest
            };
            let mut client = ScramSha256::new(password, ChannelBinding::unsupported());
            let server =
                ScramServer::start(verifier(), client.message()).expect("an honest client-first");
            client
                .update(server.server_first())
                .expect("an honest server-first");
            let outcome = server.finish(client.message());
            if password == b"the-grant-secret" {
                let last = outcome.expect("the right password gets in");
                client
                    .finish(&last)
                    .expect("and the client accepts the server's proof");
            } else {
                assert!(outcome.is_err(), "a wrong password never gets in");
            }
        }
        // Arbitrary client messages.
        _ => {
            let cut = rest.first().map_or(0, |&b| b as usize).min(rest.len());
            let (first, last) = rest.split_at(cut);
            if let Ok(server) = ScramServer::start(verifier(), first) {
                assert!(
                    server.finish(last).is_err(),
                    "garbage never proves the secret"
                );
            }
        }
    }
});
