//! Fleet mode end to end: three `sluice serve` on one PostgreSQL store
//! behind haproxy. What one gateway does, the others see at once; what
//! must run once runs once; and faults (a gateway killed under load, the
//! lease holder killed, the store restarted) lose nothing: every write
//! that reached the database has its decision in the one audit chain
//! exactly once, and `audit verify` passes.

mod common;

use common::fleet::{DBA, Fleet, dsn};
use common::{AGENT, AUDITOR, allowed_texts, text};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

async fn connect(dsn: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_behind_haproxy_act_as_one() {
    let fleet = Fleet::start().await;
    let (a, b, c) = (&fleet.members[0], &fleet.members[1], &fleet.members[2]);

    // Members, one policy, one sweeper.
    let status = fleet.status().await;
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{status}");
    assert!(members.iter().all(|m| m["state"] == "serving"), "{status}");
    assert_eq!(status["consistent"], true, "{status}");
    let sweeper = wait_for_lease(&fleet, "sweeper", None).await;
    assert!(members.iter().any(|m| m["id"] == sweeper), "{status}");
    let out = fleet.sluice(Some(&fleet.token(AUDITOR).await), &["fleet", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("every live gateway runs it"),
        "{}",
        text(&out.stdout)
    );

    // A grant made through A works through B, C and the load balancer.
    let g = fleet.grant(&a.api, AGENT).await;
    for port in [b.pg_port, c.pg_port, fleet.lb_pg] {
        let db = connect(&dsn(&g, port)).await;
        let n: i64 = db
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }

    // A revoke through C closes a live session on A, pushed (the polling
    // fallback would take 10 s).
    let (db, conn) = tokio_postgres::connect(&dsn(&g, a.pg_port), NoTls)
        .await
        .unwrap();
    let closed = tokio::spawn(conn);
    db.simple_query("SELECT 1").await.unwrap();
    let id = g["id"].as_str().unwrap();
    let started = Instant::now();
    let (status, _) = fleet
        .call(
            &c.api,
            reqwest::Method::DELETE,
            &format!("/v1/grants/{id}"),
            AGENT,
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let end = tokio::time::timeout(Duration::from_secs(8), closed)
        .await
        .expect("the session on A ended")
        .unwrap();
    let took = started.elapsed();
    let err = format!("{:?}", end.expect_err("ended by the gateway"));
    assert!(err.contains("revoked"), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "closed after {took:?}: not pushed"
    );
    eprintln!("revoke on C closed the session on A after {took:?}");

    // A statement held on B resumes when approved through A.
    let g = fleet.grant(&b.api, AGENT).await;
    let db = connect(&dsn(&g, b.pg_port)).await;
    let held = tokio::spawn(async move {
        db.simple_query("UPDATE items SET status = 'approved' WHERE id = 1")
            .await
            .map(|_| ())
    });
    let approval = wait_for_held(&fleet, &a.api).await;
    let started = Instant::now();
    let (status, body) = fleet
        .call(
            &a.api,
            reqwest::Method::POST,
            &format!("/v1/approvals/{}/approve", approval["id"].as_str().unwrap()),
            DBA,
            json!({"reason": "fleet test"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::timeout(Duration::from_secs(8), held)
        .await
        .expect("the held statement resumed")
        .unwrap()
        .expect("and ran");
    eprintln!(
        "approval on A resumed the statement on B after {:?}",
        started.elapsed()
    );
    let now = fleet
        .backend
        .psql("postgres", "SELECT status FROM items WHERE id = 1")
        .unwrap();
    assert_eq!(now, "approved");

    let report = fleet.verify();
    assert!(report.contains("audit chain ok"), "{report}");
    odd_policy_is_flagged(&fleet).await;
    drain(fleet).await;
}

/// C reloads a configuration with another guardrail: the fleet's status
/// flags it and `sluice fleet status` exits 1.
async fn odd_policy_is_flagged(fleet: &Fleet) {
    let c = &fleet.members[2];
    let file = std::fs::read_to_string(&c.config).unwrap();
    let odd = file.replacen(
        "\n[[rules]]",
        "\n[[connections.guardrails]]\nname = \"c-only\"\naction = \"deny\"\nclasses = [\"ddl\"]\n\n[[rules]]",
        1,
    );
    std::fs::write(&c.config, odd).unwrap();
    c.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = fleet.status().await;
        if status["consistent"] == false {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the odd policy was not flagged: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let flagged: Vec<&Value> = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["policy_matches"] == false)
        .collect();
    assert_eq!(flagged.len(), 1, "{status}");
    assert_eq!(flagged[0]["api"], c.api.as_str(), "{status}");
    let out = fleet.sluice(Some(&fleet.token(AUDITOR).await), &["fleet", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("NOT every live gateway"),
        "{}",
        text(&out.stdout)
    );
}

/// SIGTERM on a gateway with a session open: readiness turns false at
/// once, the listener stops accepting, the open session goes on until
/// `drain_timeout` (3 s here) and is then closed with a clear message,
/// and the process exits cleanly.
async fn drain(mut fleet: Fleet) {
    let g = fleet.grant(&fleet.lb_api.clone(), AGENT).await;
    let port = fleet.members[0].pg_port;
    let (db, conn) = tokio_postgres::connect(&dsn(&g, port), NoTls)
        .await
        .unwrap();
    let closed = tokio::spawn(conn);
    db.simple_query("SELECT 1").await.unwrap();
    let api = fleet.members[0].api.clone();
    let child = fleet.members[0].terminate().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = fleet
            .http
            .get(format!("{api}/readyz"))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 503 {
            assert!(r.text().await.unwrap().contains("draining"));
            break;
        }
        assert!(Instant::now() < deadline, "readiness stayed true");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The listener closes right after readiness turns false.
    let deadline = Instant::now() + Duration::from_secs(2);
    while tokio_postgres::connect(&dsn(&g, port), NoTls).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "a draining gateway accepts no new session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.simple_query("SELECT 1")
        .await
        .expect("open sessions go on while draining");
    let status = fleet.status().await;
    assert!(
        status["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["state"] == "draining"),
        "{status}"
    );
    // New sessions through haproxy reach the others.
    let other = connect(&dsn(&g, fleet.lb_pg)).await;
    other.simple_query("SELECT 1").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(15), closed)
        .await
        .expect("the open session was ended after the drain timeout")
        .unwrap();
    let err = format!("{:?}", end.expect_err("ended by the gateway"));
    assert!(err.contains("shutting down"), "{err}");
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("the gateway exited")
        .unwrap();
    assert!(out.status.success(), "{}", fleet.members[0].log());
}

/// The holder of lease `name` once it is held by someone other than
/// `not` (waits up to 20 s).
async fn wait_for_lease(fleet: &Fleet, name: &str, not: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = fleet.status().await;
        let held = status["leases"].as_array().and_then(|ls| {
            ls.iter()
                .find(|l| l["name"] == name && l["held"] == true && l["holder"].as_str() != not)
                .map(|l| l["holder"].as_str().unwrap().to_string())
        });
        if let Some(h) = held {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "lease {name} not taken: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pending statement approval, seen through `api`.
async fn wait_for_held(fleet: &Fleet, api: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = fleet
            .call(
                api,
                reqwest::Method::GET,
                "/v1/approvals?status=pending",
                DBA,
                Value::Null,
            )
            .await;
        if let Some(a) = list["approvals"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["kind"] == "statement"))
        {
            return a.clone();
        }
        assert!(Instant::now() < deadline, "no held statement: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clients writing unique keys through haproxy, reconnecting after any
/// error, until told to stop; the keys whose insert was acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(dsn: String, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let tasks = (0..clients)
            .map(|client| {
                let (dsn, stop, acked, errors) =
                    (dsn.clone(), stop.clone(), acked.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let Ok((db, conn)) = tokio_postgres::connect(&dsn, NoTls).await else {
                            errors.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        tokio::spawn(conn);
                        while !stop.load(Ordering::SeqCst) {
                            let k = format!("c{client}-n{n}");
                            n += 1;
                            let sql = format!("INSERT INTO load (k) VALUES ('{k}')");
                            if db.simple_query(&sql).await.is_err() {
                                errors.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            done.push(k);
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    done
                })
            })
            .collect();
        Load {
            stop,
            acked,
            errors,
            tasks,
        }
    }

    /// Waits until `more` further inserts are acknowledged.
    async fn wait_for(&self, more: usize, what: &str) {
        let target = self.acked.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "the load stalled {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> (BTreeSet<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut keys = BTreeSet::new();
        for t in self.tasks {
            keys.extend(t.await.unwrap());
        }
        (keys, self.errors.load(Ordering::SeqCst))
    }
}

/// How many `statement.allowed` events name each inserted key.
fn allowed_keys(events: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for t in allowed_texts(events) {
        let Some(k) = t
            .strip_prefix("INSERT INTO load (k) VALUES ('")
            .and_then(|k| k.strip_suffix("')"))
        else {
            continue;
        };
        *seen.entry(k.to_string()).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_nothing() {
    let mut fleet = Fleet::start().await;
    let g = fleet.grant(&fleet.lb_api.clone(), AGENT).await;
    let load = Load::start(dsn(&g, fleet.lb_pg), 6);
    load.wait_for(150, "before the faults").await;

    // kill -9 of the gateway that holds the sweeper lease, under load:
    // clients reconnect through haproxy and carry on; another gateway
    // takes the lease over.
    let holder = wait_for_lease(&fleet, "sweeper", None).await;
    let victim = fleet.member_with_id(&holder).await;
    let killed_at = Instant::now();
    fleet.members[victim].kill9().await;
    load.wait_for(150, "after a gateway was killed").await;
    let next = wait_for_lease(&fleet, "sweeper", Some(&holder)).await;
    assert_ne!(next, holder);
    eprintln!("sweeper lease taken over after {:?}", killed_at.elapsed());

    // The store restarted mid-run: statements are refused while it is
    // away (never forwarded unaudited), and the gateways recover alone.
    tokio::task::block_in_place(|| fleet.store.restart().expect("restart the store"));
    load.wait_for(150, "after the store restarted").await;

    // The store unreachable for a while: a new login is refused with a
    // clear, retryable error (not left hanging); the gateways recover
    // alone once it is back. (Asked of a gateway directly: haproxy sees
    // readiness fail and closes its clients' connections itself.)
    let member = fleet.members.iter().position(|m| m.running()).unwrap();
    let up = fleet.members[member].pg_port;
    tokio::task::block_in_place(|| fleet.store.stop());
    let asked = Instant::now();
    let refused = match tokio_postgres::connect(&dsn(&g, up), NoTls).await {
        Ok(_) => panic!("a login while the store is down was let in"),
        Err(e) => e,
    };
    let code = refused.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("57P03"), "{refused:?}: {}", {
        let log = fleet.members[member].log();
        log[log.len().saturating_sub(4000)..].to_string()
    });
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| fleet.store.resume().expect("start the store again"));
    load.wait_for(150, "after the store came back").await;

    let (acked, errors) = load.finish().await;
    eprintln!(
        "{} inserts acknowledged, {errors} client errors during the faults",
        acked.len()
    );

    // The killed gateway starts again: what its journal held is stored.
    let http = fleet.http.clone();
    fleet.members[victim].spawn(&http).await;
    let rows: BTreeSet<String> = fleet
        .backend
        .psql("postgres", "SELECT k FROM load")
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        acked.is_subset(&rows),
        "acknowledged inserts are in the table"
    );
    let events = fleet.audit_events();
    let allowed = allowed_keys(&events);
    for k in &rows {
        assert_eq!(
            allowed.get(k),
            Some(&1),
            "row {k}: its decision once in the chain"
        );
    }
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no duplicate"
    );
    let report = fleet.verify();
    assert!(report.contains("audit chain ok"), "{report}");
}
