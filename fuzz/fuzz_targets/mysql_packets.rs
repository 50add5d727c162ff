//! MySQL packet framing as the listener reads client bytes, and the
//! handshake answer parser. Oracles: packets re-framed as the gateway
//! writes them are the bytes that were read (so what is judged is what
//! is forwarded); no packet exceeds the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let packets = sluice_mysql::fuzzing::packets(data, CAP);
    let mut consumed = 0;
    for p in &packets {
        assert!(p.len() <= CAP);
        // Payloads under 16 MiB - 1 are one frame: header + payload.
        let framed = sluice_mysql::fuzzing::frame(data[consumed + 3], p);
        assert_eq!(&data[consumed..consumed + framed.len()], &framed[..]);
        consumed += framed.len();
    }
    if let Some(first) = packets.first() {
        use mysql_common::io::ParseBuf;
        let _ = ParseBuf(first).parse::<mysql_common::packets::HandshakeResponse>(());
    }
});
