//! Each sink against a real local receiver owned by the test: an HTTP server
//! that records bodies (and fails or stalls on demand), a UDP socket and a
//! TCP listener for syslog, a temp dir for files.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::TestStore;
use serde_json::Value;
use sluice_audit::sinks::Sink;
use sluice_audit::{RunnerOptions, SinkRunner};
use sluice_core::config::audit::SinkConfig;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn sink_config(toml_text: &str) -> SinkConfig {
    toml::from_str(toml_text).unwrap()
}

/// Starts a runner; returns its stop switch and task.
fn start(t: &TestStore, c: &SinkConfig) -> (watch::Sender<bool>, JoinHandle<()>) {
    let sink = Sink::from_config(c).unwrap();
    let runner = SinkRunner::new(
        &c.name,
        t.store.clone(),
        sink,
        RunnerOptions::from_config(c),
        t.log.commits(),
    );
    let (stop, stopped) = watch::channel(false);
    (stop, tokio::spawn(runner.run(stopped)))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_cursor(t: &TestStore, name: &str, seq: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while t.store.sink_cursor(name).await.unwrap() != Some(seq) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cursor never reached {seq}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- HTTP --

#[derive(Default)]
struct Receiver {
    bodies: Mutex<Vec<(HeaderMap, String)>>,
    /// Requests still to answer with 503.
    fail: AtomicUsize,
    /// Requests still to stall past the client's timeout.
    stall: AtomicUsize,
    /// Delay before answering each request (to stop a runner mid-stream).
    delay_ms: AtomicUsize,
}

impl Receiver {
    fn seqs(&self, parse: fn(&str) -> Vec<Value>) -> Vec<i64> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| parse(b))
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    }
}

fn json_events(body: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(body).unwrap()
}

fn hec_events(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .collect()
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: String) -> StatusCode {
    if r.stall
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        // Past the client's timeout; what it sent is not recorded.
        tokio::time::sleep(Duration::from_secs(5)).await;
        return StatusCode::GATEWAY_TIMEOUT;
    }
    if r.fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let delay = r.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    r.bodies.lock().unwrap().push((headers, body));
    StatusCode::OK
}

async fn http_receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/ingest", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

#[tokio::test]
async fn http_json_batches_retries_failures_and_timeouts() {
    let t = TestStore::new().await;
    let (r, url) = http_receiver().await;
    r.fail.store(3, Ordering::SeqCst);
    r.stall.store(1, Ordering::SeqCst);
    t.append(45).await;
    let c = sink_config(&format!(
        "name = \"siem\"\nkind = \"http\"\nurl = \"{url}\"\nbatch_size = 20\n\
         retry_initial = \"10ms\"\nretry_max = \"50ms\"\ntimeout = \"1s\""
    ));
    let (stop, task) = start(&t, &c);
    wait_for_cursor(&t, "siem", 45).await;

    let bodies = r.bodies.lock().unwrap().clone();
    assert!(bodies.iter().all(|(_, b)| json_events(b).len() <= 20));
    assert!(
        bodies
            .iter()
            .all(|(h, _)| h["content-type"] == "application/json")
    );
    assert!(bodies.iter().all(|(h, _)| h.get("authorization").is_none()));
    // Failed and stalled requests were never recorded, so each event came
    // exactly once, in order.
    assert_eq!(r.seqs(json_events), (1..=45).collect::<Vec<_>>());

    // The schema: the stored body's fields plus prev_hash and hash.
    let first = &json_events(&bodies[0].1)[0];
    let row = &t.store.audit_after(0, 1).await.unwrap()[0];
    assert_eq!(first["v"], 1);
    assert_eq!(first["kind"], "grant.requested");
    assert_eq!(first["hash"], row.hash.as_str());
    assert_eq!(first["prev_hash"], sluice_audit::GENESIS);

    // New events wake the runner through the commit notification.
    t.append(2).await;
    wait_for_cursor(&t, "siem", 47).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A SIEM down, then hanging, for a long while (many times the sink's
/// timeout and backoff): the log goes on appending as if nothing were
/// wrong (sinks read the store behind it; nothing waits on them), and
/// once the receiver answers again every event arrives once, in order.
/// The outage here is seconds long (dozens of failed and timed-out
/// deliveries); a longer one changes only how many: the runner's cursor
/// moves past an event only once it was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_siem_down_and_hanging_for_long_holds_nothing_up_and_misses_nothing() {
    let t = TestStore::new().await;
    let (r, url) = http_receiver().await;
    r.fail.store(usize::MAX, Ordering::SeqCst);
    let c = sink_config(&format!(
        "name = \"siem\"\nkind = \"http\"\nurl = \"{url}\"\nbatch_size = 100\n\
         retry_initial = \"10ms\"\nretry_max = \"200ms\"\ntimeout = \"300ms\""
    ));
    let (stop, task) = start(&t, &c);
    // Down (503 to everything), then hanging past the timeout, while the
    // log takes 2,000 events in 40 commits.
    let mut last = 0;
    for round in 0..40 {
        if round == 20 {
            r.fail.store(0, Ordering::SeqCst);
            r.stall.store(usize::MAX, Ordering::SeqCst);
        }
        last = tokio::time::timeout(Duration::from_secs(10), t.append(50))
            .await
            .expect("appends go on while the SIEM is away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 2000);
    assert!(r.bodies.lock().unwrap().is_empty(), "nothing got through");
    assert_eq!(t.store.sink_cursor("siem").await.unwrap().unwrap_or(0), 0);
    // Back: everything, once, in order.
    r.stall.store(0, Ordering::SeqCst);
    wait_for_cursor(&t, "siem", 2000).await;
    assert_eq!(r.seqs(json_events), (1..=2000).collect::<Vec<_>>());
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn splunk_hec_lines_carry_event_time_sourcetype_and_the_token() {
    let t = TestStore::new().await;
    let (r, url) = http_receiver().await;
    let token_file = t.dir.path().join("hec-token");
    std::fs::write(&token_file, "11111111-2222-3333-4444-555555555555\n").unwrap();
    t.append(5).await;
    let c = sink_config(&format!(
        "name = \"splunk\"\nkind = \"http\"\nurl = \"{url}\"\nformat = \"splunk-hec\"\n\
         token_file = \"{}\"\nindex = \"security\"",
        token_file.display()
    ));
    let (stop, task) = start(&t, &c);
    wait_for_cursor(&t, "splunk", 5).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let bodies = r.bodies.lock().unwrap().clone();
    let (headers, body) = &bodies[0];
    assert_eq!(
        headers["authorization"],
        "Splunk 11111111-2222-3333-4444-555555555555"
    );
    let rows = t.store.audit_after(0, 10).await.unwrap();
    for (line, row) in body.lines().zip(&rows) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["sourcetype"], "sluice:audit");
        assert_eq!(v["source"], "sluice");
        assert_eq!(v["index"], "security");
        assert_eq!(v["event"]["seq"], row.seq);
        assert_eq!(v["event"]["hash"], row.hash.as_str());
        // Epoch seconds with the event's milliseconds, exactly.
        let time = line
            .split("\"time\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert_eq!(time, format!("{}.{:03}", row.ts / 1000, row.ts % 1000));
    }
    assert_eq!(r.seqs(hec_events), vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_restarted_runner_resumes_after_its_cursor_without_gaps() {
    let t = TestStore::new().await;
    let (r, url) = http_receiver().await;
    r.delay_ms.store(30, Ordering::SeqCst);
    t.append(200).await;
    let c = sink_config(&format!(
        "name = \"siem\"\nkind = \"http\"\nurl = \"{url}\"\nbatch_size = 10"
    ));

    // Stop the first runner mid-stream, possibly with a batch in flight.
    let (stop, task) = start(&t, &c);
    wait_for("a few batches", || r.bodies.lock().unwrap().len() >= 3).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let stopped_at = t.store.sink_cursor("siem").await.unwrap().unwrap();
    assert!(stopped_at < 200, "stopped too late to test a resume");

    // More events arrive while it is down; a new runner (a restart: new
    // sink, same store) picks up after the stored cursor.
    t.append(30).await;
    r.delay_ms.store(0, Ordering::SeqCst);
    let (stop, task) = start(&t, &c);
    wait_for_cursor(&t, "siem", 230).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let seen = r.seqs(json_events);
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct, (1..=230).collect::<BTreeSet<_>>(), "a gap");
    // At-least-once: at most the one batch in flight at the stop repeats.
    assert!(seen.len() <= 230 + 10, "{} deliveries", seen.len());
}

// ---------------------------------------------------------------- file --

#[tokio::test]
async fn the_file_sink_rotates_by_size_and_keeps_n_files() {
    let t = TestStore::new().await;
    let path = t.dir.path().join("export/audit.jsonl");
    t.append(120).await;
    let c = sink_config(&format!(
        "name = \"local\"\nkind = \"file\"\npath = \"{}\"\nmax_bytes = 4096\nkeep = 2\nbatch_size = 7",
        path.display()
    ));
    let (stop, task) = start(&t, &c);
    wait_for_cursor(&t, "local", 120).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let rotated = |n: u32| path.with_file_name(format!("audit.jsonl.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "keep = 2");
    // Oldest first: .2, .1, then the live file; a contiguous run to 120.
    let mut seqs = Vec::new();
    for p in [rotated(2), rotated(1), path.clone()] {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.len() <= 4096,
            "{} is {} bytes",
            p.display(),
            text.len()
        );
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["v"], 1);
            seqs.push(v["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(*seqs.last().unwrap(), 120);
    let first = seqs[0];
    assert!(first > 1, "older files were dropped");
    assert_eq!(seqs, (first..=120).collect::<Vec<_>>());
}

/// A runner takes what its own gateway just committed from memory, but the
/// chain is shared: here a second gateway's writer appends to the same
/// store in between, and the file must still hold every event once, in
/// order, each line exactly what `sluice audit export` prints for it.
#[tokio::test]
async fn a_runner_beside_another_gateway_exports_every_event_once_in_order() {
    let t = TestStore::new().await;
    let other = sluice_audit::AuditLog::start(t.store.clone());
    let path = t.dir.path().join("fleet.jsonl");
    let c = sink_config(&format!(
        "name = \"fleet\"\nkind = \"file\"\npath = \"{}\"\nbatch_size = 50",
        path.display()
    ));
    let (stop, task) = start(&t, &c);
    let event = |who: &str, i: usize| {
        sluice_core::audit::AuditEvent::new(sluice_core::audit::EventKind::GrantRequested)
            .grant(&format!("g_{who}_{i}"))
            .detail(serde_json::json!({ "i": i }))
    };
    let mut last = 0;
    for round in 0..40 {
        // Bursts from both gateways at once, then a pause so the runner
        // catches up and reads the next burst from memory.
        let mut appends = tokio::task::JoinSet::new();
        for i in 0..5 {
            let (log, e) = (t.log.clone(), event("a", round * 5 + i));
            appends.spawn(async move { log.append(e).await.unwrap() });
        }
        for i in 0..3 {
            let (log, e) = (other.clone(), event("b", round * 3 + i));
            appends.spawn(async move { log.append(e).await.unwrap() });
        }
        while let Some(seq) = appends.join_next().await {
            last = last.max(seq.unwrap());
        }
        if round % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    assert_eq!(last, 40 * 8);
    wait_for_cursor(&t, "fleet", last).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let mut exported = Vec::new();
    sluice_audit::export_jsonl(&t.store, 1, &mut exported)
        .await
        .unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    let seqs: Vec<i64> = file
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    let exported = String::from_utf8(exported).unwrap();
    let differ = file.lines().zip(exported.lines()).position(|(a, b)| a != b);
    assert_eq!(
        differ, None,
        "the file's line differs from the store's export"
    );
}

// -------------------------------------------------------------- syslog --

/// An RFC 5424 message taken apart.
#[derive(Debug)]
struct Syslog {
    pri: u32,
    timestamp: String,
    hostname: String,
    app_name: String,
    msgid: String,
    sd_id: String,
    params: HashMap<String, String>,
    msg: String,
}

fn parse_5424(raw: &[u8]) -> Syslog {
    let s = std::str::from_utf8(raw).unwrap();
    let (pri, rest) = s.strip_prefix('<').unwrap().split_once('>').unwrap();
    let mut f = rest.splitn(7, ' ');
    assert_eq!(f.next(), Some("1"), "VERSION");
    let timestamp = f.next().unwrap().to_string();
    let hostname = f.next().unwrap().to_string();
    let app_name = f.next().unwrap().to_string();
    let procid = f.next().unwrap();
    assert!(procid.parse::<u32>().is_ok());
    let msgid = f.next().unwrap().to_string();
    let sd = f.next().unwrap().strip_prefix('[').unwrap();
    let (sd_id, mut rest) = sd.split_once(' ').unwrap();
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(']') {
            rest = after;
            break;
        }
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        params.insert(name.to_string(), value);
        rest = &after[end + 1..];
    }
    let msg = rest.strip_prefix(' ').unwrap();
    let msg = msg.strip_prefix('\u{feff}').expect("MSG starts with a BOM");
    Syslog {
        pri: pri.parse().unwrap(),
        timestamp,
        hostname,
        app_name,
        msgid,
        sd_id: sd_id.to_string(),
        params,
        msg: msg.to_string(),
    }
}

fn check_message(m: &Syslog, row: &sluice_store::AuditRow, facility: u32) {
    assert_eq!(m.pri, facility * 8 + 6, "informational");
    assert_eq!(m.app_name, "sluice-test");
    assert_eq!(m.hostname, "gw-1");
    assert_eq!(m.msgid, "grant.requested");
    assert_eq!(m.sd_id, "sluice@32473");
    assert_eq!(m.params["seq"], row.seq.to_string());
    assert_eq!(m.params["kind"], "grant.requested");
    assert_eq!(m.params["hash"], row.hash);
    assert_eq!(m.params["v"], "1");
    let ts = chrono::DateTime::parse_from_rfc3339(&m.timestamp).unwrap();
    assert_eq!(ts.timestamp_millis(), row.ts);
    let event: Value = serde_json::from_str(&m.msg).unwrap();
    assert_eq!(event["seq"], row.seq);
    assert_eq!(event["hash"], row.hash.as_str());
    assert_eq!(event["detail"]["note"], "quote \" and ] here");
}

#[tokio::test]
async fn syslog_over_udp_sends_one_rfc5424_datagram_per_event() {
    let t = TestStore::new().await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    t.append(6).await;
    let c = sink_config(&format!(
        "name = \"syslog-udp\"\nkind = \"syslog\"\nprotocol = \"udp\"\naddress = \"{}\"\n\
         facility = \"local3\"\napp_name = \"sluice-test\"\nhostname = \"gw-1\"",
        socket.local_addr().unwrap()
    ));
    let (stop, task) = start(&t, &c);
    let rows = t.store.audit_after(0, 10).await.unwrap();
    let mut buf = vec![0u8; 65536];
    for row in &rows {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        check_message(&parse_5424(&buf[..n]), row, 19);
    }
    wait_for_cursor(&t, "syslog-udp", 6).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn syslog_over_tcp_uses_octet_counting_frames() {
    let t = TestStore::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    t.append(9).await;
    let c = sink_config(&format!(
        "name = \"syslog-tcp\"\nkind = \"syslog\"\naddress = \"{}\"\nbatch_size = 4\n\
         app_name = \"sluice-test\"\nhostname = \"gw-1\"",
        listener.local_addr().unwrap()
    ));
    let (stop, task) = start(&t, &c);
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut data = Vec::new();
    let mut frames = Vec::new();
    // Read until nine whole frames: "LEN SP MSG" (RFC 6587 §3.4.1).
    while frames.len() < 9 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
        data.extend_from_slice(&chunk[..n]);
        while let Some(sp) = data.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            if data.len() < sp + 1 + len {
                break;
            }
            frames.push(data[sp + 1..sp + 1 + len].to_vec());
            data.drain(..sp + 1 + len);
        }
    }
    let rows = t.store.audit_after(0, 10).await.unwrap();
    for (frame, row) in frames.iter().zip(&rows) {
        check_message(&parse_5424(frame), row, 4);
    }
    wait_for_cursor(&t, "syslog-tcp", 9).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}
