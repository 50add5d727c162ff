//! Port forwarding through the gateway with OpenSSH's own `-L`, `-D` and
//! `-R`, to a real TCP echo service the host reaches: allowed only for
//! `forwarding_profiles`, only where `forward_to` leads (however the
//! address is spelled), each connection recorded with its bytes, and
//! every forward ended with its grant.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_testkit::ports::free_port;

/// A TCP service that sends back what it is sent.
async fn echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Forwarding for write grants, to the echo service only.
fn config(to: SocketAddr) -> String {
    format!(
        "forwarding_profiles = [\"write\"]\nforward_to = [\"127.0.0.1:{}\"]\n\n\
         [[connections.guardrails]]\nname = \"no-forward-to-discard\"\naction = \"deny\"\n\
         commands = [\"forward *:9\"]\n",
        to.port()
    )
}

/// Kills the ssh client when the test ends, however it ends.
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `port` once the client listens there.
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            return s;
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `text` and reads what comes back: `None` when the far end
/// closed instead (a refused forward).
fn round_trip(s: &mut TcpStream, text: &[u8]) -> Option<Vec<u8>> {
    s.write_all(text).ok()?;
    let mut got = vec![0; text.len()];
    s.read_exact(&mut got).ok()?;
    Some(got)
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_forward_reaches_only_where_forward_to_leads() {
    let target = echo().await;
    let gw = Gateway::start(&config(target)).await;
    let g = gw.grant(Profile::Write);
    let (ok, spelled, elsewhere, discard) = (free_port(), free_port(), free_port(), free_port());
    let t = target.port();
    let _client = Client(gw.ssh_spawn(
        &g,
        &[
            "-N",
            "-L",
            &format!("{ok}:127.0.0.1:{t}"),
            "-L",
            &format!("{spelled}:0x7f.1:{t}"),
            "-L",
            &format!("{elsewhere}:127.0.0.1:{}", gw.sshd.port()),
            "-L",
            &format!("{discard}:127.0.0.1:9"),
        ],
    ));
    let results = blocking(move || {
        let mut s = connect(ok);
        let first = round_trip(&mut s, b"hello");
        drop(s);
        // Another spelling of the same address is the same place.
        let second = round_trip(&mut connect(spelled), b"again");
        // The host's own sshd is reachable from the host, but not allowed.
        let third = round_trip(&mut connect(elsewhere), b"SSH-2.0-x\r\n");
        let fourth = round_trip(&mut connect(discard), b"x");
        (first, second, third, fourth)
    })
    .await
    .unwrap();
    assert_eq!(results.0.as_deref(), Some(&b"hello"[..]));
    assert_eq!(results.1.as_deref(), Some(&b"again"[..]));
    assert_eq!(results.2, None, "not in forward_to");
    assert_eq!(
        results.3, None,
        "outside forward_to and denied by a guardrail"
    );

    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 2).await;
    let commands: Vec<String> = allowed
        .iter()
        .map(|e| {
            e.detail["statements"][0]["commands"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let judged = format!("forward 127.0.0.1:{t}");
    assert_eq!(
        commands,
        [judged.clone(), judged],
        "judged as the host reads it"
    );
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 2).await;
    assert!(
        denied
            .iter()
            .all(|e| e.detail["reason"].as_str().unwrap().contains("forward_to")),
        "{}",
        gw.audit.all_json()
    );
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 1).await;
    assert_eq!(done[0].detail["bytes_sent"], 5, "{}", gw.audit.all_json());
    assert_eq!(done[0].detail["bytes_received"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_grant_forwards_nothing() {
    let target = echo().await;
    let gw = Gateway::start(&config(target)).await;
    let g = gw.grant(Profile::Read);
    let port = free_port();
    let _client = Client(gw.ssh_spawn(
        &g,
        &["-N", "-L", &format!("{port}:127.0.0.1:{}", target.port())],
    ));
    let got = blocking(move || round_trip(&mut connect(port), b"hello"))
        .await
        .unwrap();
    assert_eq!(got, None);
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 1).await;
    assert!(
        denied[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("may not forward"),
        "{}",
        gw.audit.all_json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dynamic_forward_is_judged_per_connection() {
    let target = echo().await;
    let gw = Gateway::start(&config(target)).await;
    let g = gw.grant(Profile::Write);
    let socks = free_port();
    let _client = Client(gw.ssh_spawn(&g, &["-N", "-D", &socks.to_string()]));
    let t = target.port();
    let got = blocking(move || {
        let through = |port: u16| {
            let mut s = connect(socks);
            // SOCKS5: no authentication, then CONNECT 127.0.0.1:port.
            s.write_all(&[5, 1, 0]).unwrap();
            let mut hello = [0; 2];
            s.read_exact(&mut hello).unwrap();
            let mut ask = vec![5, 1, 0, 1, 127, 0, 0, 1];
            ask.extend_from_slice(&port.to_be_bytes());
            s.write_all(&ask).unwrap();
            let mut answer = [0; 10];
            s.read_exact(&mut answer).ok()?;
            if answer[1] != 0 {
                return None;
            }
            round_trip(&mut s, b"socks")
        };
        (through(t), through(t + 1))
    })
    .await
    .unwrap();
    assert_eq!(got.0.as_deref(), Some(&b"socks"[..]));
    assert_eq!(got.1, None, "another port is not in forward_to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_forward_listens_on_the_hosts_loopback_only() {
    let target = echo().await;
    let gw = Gateway::start(&config(target)).await;
    let g = gw.grant(Profile::Write);
    let (loopback, plain, everywhere) = (free_port(), free_port(), free_port());
    let t = target.port();
    let _client = Client(gw.ssh_spawn(
        &g,
        &[
            "-N",
            "-R",
            &format!("127.0.0.1:{loopback}:127.0.0.1:{t}"),
            "-R",
            &format!("{plain}:127.0.0.1:{t}"),
            "-R",
            &format!("0.0.0.0:{everywhere}:127.0.0.1:{t}"),
        ],
    ));
    // The host (this machine) listens on loopback; what connects there
    // reaches the echo service through the agent's client.
    let got = blocking(move || {
        let a = round_trip(&mut connect(loopback), b"back");
        let b = round_trip(&mut connect(plain), b"also");
        (a, b)
    })
    .await
    .unwrap();
    assert_eq!(
        got.0.as_deref(),
        Some(&b"back"[..]),
        "{}",
        gw.audit.all_json()
    );
    assert_eq!(
        got.1.as_deref(),
        Some(&b"also"[..]),
        "no address is localhost"
    );
    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 2).await;
    let mut listens: Vec<String> = allowed
        .iter()
        .map(|e| {
            e.detail["statements"][0]["commands"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    listens.sort();
    let mut expected = [
        format!("listen 127.0.0.1:{loopback}"),
        format!("listen localhost:{plain}"),
    ];
    expected.sort();
    assert_eq!(listens, expected);
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 2).await;
    assert!(
        done.iter().all(|e| e.detail["bytes_sent"] == 4),
        "each connection recorded against its listen: {}",
        gw.audit.all_json()
    );
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 1).await;
    assert!(
        denied[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("loopback only"),
        "{}",
        gw.audit.all_json()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", everywhere)).is_err(),
        "nothing listens on the refused forward"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_grant_ends_its_open_forwards() {
    let target = echo().await;
    let gw = Gateway::start(&config(target)).await;
    let g = gw.grant(Profile::Write);
    let port = free_port();
    let _client = Client(gw.ssh_spawn(
        &g,
        &["-N", "-L", &format!("{port}:127.0.0.1:{}", target.port())],
    ));
    let mut s = blocking(move || {
        let mut s = connect(port);
        assert_eq!(round_trip(&mut s, b"open").as_deref(), Some(&b"open"[..]));
        s
    })
    .await
    .unwrap();
    gw.control.revoke(&g.id);
    let ended = blocking(move || {
        let mut buf = [0; 16];
        // The forward's end reaches the local socket as EOF or a reset.
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .unwrap();
    assert!(ended, "the forward outlived its grant");
    gw.audit.wait_for(EventKind::SessionClosed, 1).await;
}
