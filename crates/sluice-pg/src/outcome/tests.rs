//! Scripted backend answers against scripted requests.

use std::sync::Arc;

use super::*;
use crate::messages::error_response;

fn setup() -> (Arc<Inflight>, Tracker) {
    let inflight = Arc::new(Inflight::default());
    let tracker = Tracker::new(inflight.clone());
    (inflight, tracker)
}

fn error_body(code: &str, message: &str) -> Vec<u8> {
    error_response("ERROR", code, message)[5..].to_vec()
}

/// (seq, index, outcome) of each completion, durations aside.
fn seen(t: &mut Tracker) -> Vec<(u64, u32, Outcome)> {
    t.take()
        .into_iter()
        .map(|c| (c.seq, c.index, c.outcome))
        .collect()
}

fn done(command: &str, rows: Option<u64>) -> Outcome {
    Outcome::Done {
        command: Some(command.into()),
        rows,
    }
}

#[test]
fn tags_split_into_command_and_rows() {
    assert_eq!(split_tag("SELECT 42"), (Some("SELECT".into()), Some(42)));
    assert_eq!(split_tag("INSERT 0 5"), (Some("INSERT".into()), Some(5)));
    assert_eq!(split_tag("COPY 10"), (Some("COPY".into()), Some(10)));
    assert_eq!(
        split_tag("CREATE TABLE"),
        (Some("CREATE TABLE".into()), None)
    );
    assert_eq!(split_tag(""), (None, None));
}

#[test]
fn a_multi_statement_query_completes_each_statement_until_an_error() {
    let (inflight, mut t) = setup();
    inflight.query(1);
    t.data_row();
    t.command_complete(Some("SELECT 1"));
    t.command_complete(Some("UPDATE 3"));
    t.error(Some(&error_body("23505", "duplicate key")));
    t.ready();
    let failed = Outcome::Failed {
        sqlstate: Some("23505".into()),
        message: Some("duplicate key".into()),
    };
    assert_eq!(
        seen(&mut t),
        vec![
            (1, 0, done("SELECT", Some(1))),
            (1, 1, done("UPDATE", Some(3))),
            (1, 2, failed),
        ]
    );
    // The queue is empty: a stray answer is paired with nothing.
    t.command_complete(Some("SELECT 1"));
    assert!(t.take().is_empty());
}

#[test]
fn an_empty_query_string_completes_nothing() {
    let (inflight, mut t) = setup();
    inflight.query(4);
    t.empty_query();
    t.ready();
    assert!(t.take().is_empty());
}

#[test]
fn each_execute_completes_once_and_the_rest_are_skipped_after_an_error() {
    let (inflight, mut t) = setup();
    inflight.execute(2, 0);
    inflight.execute(2, 1);
    inflight.execute(2, 2);
    inflight.sync(Some((2, 3)));
    inflight.execute(3, 0);
    inflight.sync(Some((3, 1)));
    t.command_complete(Some("INSERT 0 1"));
    t.error(Some(&error_body("22P02", "invalid input syntax")));
    t.ready();
    t.command_complete(Some("DELETE 0"));
    t.ready();
    let seen = seen(&mut t);
    assert_eq!(seen[0], (2, 0, done("INSERT", Some(1))));
    assert!(matches!(&seen[1], (2, 1, Outcome::Failed { sqlstate: Some(s), .. }) if s == "22P02"));
    assert_eq!(seen[2], (2, 2, Outcome::Skipped));
    assert_eq!(seen[3], (3, 0, done("DELETE", Some(0))));
    assert_eq!(seen.len(), 4);
}

#[test]
fn executes_queued_after_the_error_are_skipped_at_sync() {
    // Execute+Flush fails; the client sends more before its Sync.
    let (inflight, mut t) = setup();
    inflight.execute(5, 0);
    t.error(Some(&error_body("42P01", "relation does not exist")));
    inflight.execute(6, 0);
    inflight.sync(Some((6, 1)));
    t.ready();
    let seen = seen(&mut t);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1], (6, 0, Outcome::Skipped));
}

#[test]
fn a_failed_prepare_is_reported_for_its_batch() {
    let (inflight, mut t) = setup();
    inflight.sync(Some((7, 0)));
    t.error(Some(&error_body("42601", "syntax error")));
    t.ready();
    let seen = seen(&mut t);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].0, seen[0].1), (7, 0));
}

#[test]
fn sentinels_and_requests_that_run_nothing_report_nothing() {
    let (inflight, mut t) = setup();
    inflight.quiet();
    t.sentinel_error();
    t.ready();
    inflight.sync(None);
    t.sentinel_error();
    t.ready();
    inflight.sync(None);
    t.error(Some(&error_body("34000", "portal does not exist")));
    t.ready();
    assert!(t.take().is_empty());
    // And the queue is in step for what follows.
    inflight.query(8);
    t.command_complete(Some("SELECT 0"));
    t.ready();
    assert_eq!(seen(&mut t), vec![(8, 0, done("SELECT", Some(0)))]);
}

#[test]
fn a_suspended_portal_reports_the_rows_it_sent() {
    let (inflight, mut t) = setup();
    inflight.execute(9, 0);
    for _ in 0..5 {
        t.data_row();
    }
    t.portal_suspended();
    assert_eq!(seen(&mut t), vec![(9, 0, Outcome::Suspended { rows: 5 })]);
}

#[test]
fn only_the_code_and_primary_message_of_an_error_are_kept() {
    let mut body = error_response("ERROR", "23505", "duplicate key value")[5..].to_vec();
    // Insert DETAIL and HINT fields before the terminator.
    body.pop();
    body.extend_from_slice(b"DKey (email)=(a@b.c) already exists.\0Hsecret hint\0\0");
    let Outcome::Failed { sqlstate, message } = failure(Some(&body)) else {
        panic!("not a failure");
    };
    assert_eq!(sqlstate.as_deref(), Some("23505"));
    assert_eq!(message.as_deref(), Some("duplicate key value"));
    let long = "é".repeat(MAX_MESSAGE);
    let Outcome::Failed { message, .. } = failure(Some(&error_body("XX000", &long))) else {
        panic!("not a failure");
    };
    assert!(message.unwrap().len() <= MAX_MESSAGE);
}

#[test]
fn a_queued_statement_is_timed_from_when_the_backend_reached_it() {
    let (inflight, mut t) = setup();
    inflight.query(1);
    inflight.query(2);
    std::thread::sleep(Duration::from_millis(30));
    t.command_complete(Some("SELECT 1"));
    t.ready();
    t.command_complete(Some("SELECT 1"));
    t.ready();
    let c = t.take();
    assert!(c[0].duration >= Duration::from_millis(30));
    assert!(c[1].duration < Duration::from_millis(30), "{:?}", c[1]);
}

#[test]
fn syncs_sent_during_copy_from_stdin_get_no_answer() {
    // Bind/Execute/Sync, CopyInResponse, data, CopyDone/Sync.
    let (inflight, mut t) = setup();
    inflight.execute(3, 0);
    inflight.sync(Some((3, 1)));
    t.copy_in();
    inflight.sync(None); // a stray Sync among the data: ignored too
    inflight.copy_end();
    inflight.sync(None);
    t.command_complete(Some("COPY 3"));
    t.ready();
    inflight.query(4);
    t.command_complete(Some("SELECT 2"));
    t.ready();
    assert_eq!(
        seen(&mut t),
        vec![
            (3, 0, done("COPY", Some(3))),
            (4, 0, done("SELECT", Some(2)))
        ]
    );
}

#[test]
fn an_error_during_copy_from_stdin_makes_syncs_count_again() {
    let (inflight, mut t) = setup();
    inflight.execute(5, 0);
    inflight.sync(Some((5, 1)));
    t.copy_in();
    t.error(Some(&error_body("22P02", "invalid input syntax")));
    // The client learns of it and sends CopyFail and Sync.
    inflight.sync(None);
    t.ready();
    inflight.query(6);
    t.command_complete(Some("SELECT 1"));
    let seen = seen(&mut t);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1], (6, 0, done("SELECT", Some(1))));
}
