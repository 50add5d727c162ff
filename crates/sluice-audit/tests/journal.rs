//! The audit journal: journaled decisions reach the store, and a crashed
//! run's journal is stored at the next start, each event exactly once.

use std::time::Duration;

use sluice_audit::{AuditLog, verify};
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_store::Store;

async fn store(dir: &tempfile::TempDir) -> Store {
    let path = dir.path().join("sluice.db");
    Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap()
}

fn allowed(session: &str, seq: i64) -> AuditEvent {
    AuditEvent::new(EventKind::StatementAllowed)
        .session(session)
        .grant("g_1")
        .detail(serde_json::json!({ "seq": seq, "decision": "allow" }))
}

/// A store in `dir` and a log journaling in `dir/journal`.
async fn journaled_log(dir: &tempfile::TempDir) -> (Store, std::path::PathBuf, AuditLog) {
    let store = store(dir).await;
    let journal = dir.path().join("journal");
    let log = AuditLog::start_with_journal(store.clone(), &journal)
        .await
        .unwrap();
    (store, journal, log)
}

/// A session's opening: request number 0, journaled like a decision.
fn opened(session: &str) -> AuditEvent {
    AuditEvent::new(EventKind::SessionOpened)
        .session(session)
        .grant("g_1")
        .detail(serde_json::json!({ "seq": 0, "profile": "read" }))
}

/// How many events of `kind` the store holds for `session`.
async fn stored_of_kind(store: &Store, session: &str, kind: &str) -> usize {
    let events = store.session_events(session).await.unwrap();
    events.iter().filter(|r| r.kind == kind).count()
}

/// (session, seq) of the stored `statement.allowed` events, in chain order.
async fn stored_allowed(store: &Store, session: &str) -> Vec<i64> {
    store
        .session_events(session)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.kind == "statement.allowed")
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v["detail"]["seq"].as_i64().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn journaled_events_reach_the_store_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, log) = journaled_log(&dir).await;
    for seq in 1..=50 {
        log.append_journaled(allowed("s_1", seq)).await.unwrap();
    }
    // A plain append after them commits after them: they are stored.
    log.append(AuditEvent::new(EventKind::ConfigLoaded))
        .await
        .unwrap();
    assert_eq!(
        stored_allowed(&store, "s_1").await,
        (1..=50).collect::<Vec<_>>()
    );
    // The journal holds each as one line of this run's segment.
    let lines: usize = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines, 50);
    assert!(verify(&store).await.unwrap().is_ok());
    // Statement texts: readable by the gateway's user only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal), 0o700);
    for e in std::fs::read_dir(&journal).unwrap() {
        assert_eq!(mode(&e.unwrap().path()), 0o600);
    }
}

#[tokio::test]
async fn flush_returns_once_everything_queued_is_stored_and_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _journal, log) = journaled_log(&dir).await;
    for seq in 1..=20 {
        log.append_journaled(allowed("s_f", seq)).await.unwrap();
    }
    log.flush().await.unwrap();
    assert_eq!(
        stored_allowed(&store, "s_f").await,
        (1..=20).collect::<Vec<_>>()
    );
    // The flush itself is not an event.
    let tail = store.audit_tail().await.unwrap().unwrap().0;
    assert_eq!(tail, 20);
    log.flush().await.unwrap();
    assert_eq!(store.audit_tail().await.unwrap().unwrap().0, 20);
}

#[tokio::test]
async fn a_crashed_runs_journal_is_stored_once_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let journal = dir.path().join("journal");
    // What a crashed run leaves: s_9 opened and seq 1 and 2 stored, all
    // that and 3 and 4 journaled, s_8 opened in the journal only, and a
    // last line torn mid-write.
    let log = AuditLog::start(store.clone());
    log.append(opened("s_9")).await.unwrap();
    for seq in [1, 2] {
        log.append(allowed("s_9", seq)).await.unwrap();
    }
    std::fs::create_dir_all(&journal).unwrap();
    let mut text = String::new();
    let mut journaled = vec![opened("s_9")];
    journaled.extend((1..=4).map(|seq| allowed("s_9", seq)));
    journaled.push(opened("s_8"));
    for e in &journaled {
        text.push_str(&serde_json::to_string(e).unwrap());
        text.push('\n');
    }
    text.push_str(r#"{"kind":"statement.allowed","session_id":"s_9","det"#);
    std::fs::write(journal.join("000000000007.jsonl"), text).unwrap();

    let log = AuditLog::start_with_journal(store.clone(), &journal)
        .await
        .unwrap();
    assert_eq!(stored_allowed(&store, "s_9").await, vec![1, 2, 3, 4]);
    assert_eq!(stored_of_kind(&store, "s_9", "session.opened").await, 1);
    assert_eq!(stored_of_kind(&store, "s_8", "session.opened").await, 1);
    // The recovered segment is gone; this run writes a later one.
    log.append_journaled(allowed("s_9", 5)).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["000000000008.jsonl".to_string()]);
    for _ in 0..100 {
        if stored_allowed(&store, "s_9").await.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_allowed(&store, "s_9").await, vec![1, 2, 3, 4, 5]);
    assert!(verify(&store).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_damaged_journal_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(journal.join("000000000001.jsonl"), "not json\n{}\n").unwrap();
    let err = AuditLog::start_with_journal(store, &journal)
        .await
        .err()
        .expect("a damaged journal is refused");
    assert!(err.contains("damaged journal entry"), "{err}");
}

#[tokio::test]
async fn events_recovery_could_not_recognise_are_stored_directly() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, log) = journaled_log(&dir).await;
    // No session or request number: stored before the call returns, and
    // never journaled (a restart would not know it is already stored).
    log.append_journaled(AuditEvent::new(EventKind::ConfigLoaded))
        .await
        .unwrap();
    assert_eq!(store.audit_tail().await.unwrap().map(|t| t.0), Some(1));
    let journaled: usize = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap().len())
        .sum();
    assert_eq!(journaled, 0);
}
