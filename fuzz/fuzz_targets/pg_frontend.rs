//! The Postgres frontend codec and message parsers on arbitrary client
//! bytes: startup-phase packets, then tagged messages, as the listener
//! reads them. Oracle: a frame is exactly the bytes its length header
//! declares (so forwarding it unchanged forwards what was judged), and
//! nothing read past the cap is ever returned.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_pg::codec::{decode_startup, decode_tagged};
use sluice_pg::messages::{Frontend, StartupPacket};

const CAP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    // The startup phase: at most a few packets (SSLRequest, then startup).
    for _ in 0..3 {
        match decode_startup(&mut buf, CAP) {
            Ok(Some(f)) => {
                let declared = i32::from_be_bytes([f.bytes[0], f.bytes[1], f.bytes[2], f.bytes[3]]);
                assert_eq!(declared as usize, f.bytes.len());
                assert!(f.bytes.len() <= CAP);
                let _ = StartupPacket::parse(&f);
            }
            Ok(None) | Err(_) => return,
        }
    }
    loop {
        let before = buf.len();
        match decode_tagged(&mut buf, CAP) {
            Ok(Some(f)) => {
                let declared = i32::from_be_bytes([f.bytes[1], f.bytes[2], f.bytes[3], f.bytes[4]]);
                assert_eq!(declared as usize + 1, f.bytes.len());
                assert_eq!(before - buf.len(), f.bytes.len());
                assert!(f.bytes.len() <= CAP);
                let _ = Frontend::parse(&f);
                let _ = sluice_pg::messages::parse_emptied(&f);
            }
            Ok(None) | Err(_) => return,
        }
    }
});
