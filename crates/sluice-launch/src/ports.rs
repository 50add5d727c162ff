//! Free loopback ports.

use std::net::TcpListener;

/// A port that was free a moment ago on 127.0.0.1. Callers that bind it
/// later must retry on `AddrInUse`: another test may have taken it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}
