//! `COPY name TO STDOUT` under masking copies the table the client's own
//! session names, whatever its `search_path`: two schemas hold a
//! `customers` table and only `vault`'s is masked. Real PostgreSQL, psql.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_core::config::MaskingConfig;

const SETUP: &str = "
CREATE SCHEMA vault;
CREATE TABLE public.customers (id int, ssn text);
INSERT INTO public.customers VALUES (1, 'public-ssn-1');
CREATE TABLE vault.customers (id int, ssn text);
INSERT INTO vault.customers VALUES (1, 'vault-ssn-1');
CREATE TABLE public.orders (id int, ref text);
INSERT INTO public.orders VALUES (1, 'public order, mail ada@example.com');
CREATE TABLE vault.orders (ref text, id int);
INSERT INTO vault.orders VALUES ('vault order', 2);
CREATE TABLE public.invoices (id int, total int);
INSERT INTO public.invoices VALUES (1, 100);
CREATE DOMAIN mail AS text;
CREATE DOMAIN work_mail AS mail;
CREATE TABLE public.contacts (id int, home mail, work work_mail);
INSERT INTO public.contacts VALUES (1, 'ada@example.com', 'ada@corp.example');
";

const VAULT_SSN: &str = "vault-ssn-1";

async fn harness() -> Harness {
    let m: MaskingConfig =
        toml::from_str(r#"columns = [{ column = "vault.customers.ssn", style = "redact" }]"#)
            .unwrap();
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| c.masking = Some(m)).await;
    h.backend(SETUP);
    h
}

/// Runs each of `sql` in one psql session (psql goes on after an error).
fn session(h: &Harness, g: &TestGrant, sql: &[&str]) -> (String, String) {
    let args: Vec<&str> = sql.iter().flat_map(|s| ["-c", *s]).collect();
    let o = h.psql(&h.url(g), &args, None);
    (stdout(&o), stderr(&o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualified_names_copy_the_named_table() {
    let h = harness().await;
    let g = h.grant(Profile::Read);
    let (out, err) = session(&h, &g, &["COPY vault.customers TO STDOUT"]);
    assert_eq!(out, "1\t[REDACTED]", "{err}");
    let (out, err) = session(&h, &g, &["COPY public.customers TO STDOUT"]);
    assert_eq!(out, "1\tpublic-ssn-1", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unqualified_name_that_a_masked_schema_shares_is_refused() {
    let h = harness().await;
    let g = h.grant(Profile::Read);
    // The backend would copy vault.customers; a lookup with the default
    // search_path would have planned public.customers (no masks).
    for path in ["SET search_path = vault", "SET search_path = public"] {
        let (out, err) = session(
            &h,
            &g,
            &[
                path,
                "COPY customers TO STDOUT",
                "COPY vault.customers TO STDOUT",
            ],
        );
        assert!(!out.contains(VAULT_SSN), "{out}");
        assert!(err.contains("name the schema"), "{err}");
        assert!(err.contains("masked in vault"), "{err}");
        // The session goes on: the qualified COPY after the refusal runs.
        assert!(out.ends_with("1\t[REDACTED]"), "{out}\n{err}");
    }
    // Also in one query string, and also with the default search_path.
    let (out, err) = session(
        &h,
        &g,
        &["SET search_path = vault; COPY customers TO STDOUT"],
    );
    assert!(
        !out.contains(VAULT_SSN) && err.contains("name the schema"),
        "{out}\n{err}"
    );
    let (out, err) = session(&h, &g, &["COPY customers (ssn) TO STDOUT"]);
    assert!(
        !out.contains(VAULT_SSN) && err.contains("name the schema"),
        "{out}\n{err}"
    );

    let denied = h.audit.wait_for(EventKind::StatementDenied, 4).await;
    assert!(
        denied
            .iter()
            .all(|e| e.detail["rule"] == "masking" && e.detail["masked_column"] == "customers.*"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unqualified_names_without_rules_still_copy() {
    let h = harness().await;
    let g = h.grant(Profile::Read);
    // One table of that name: the one any search_path reaches.
    let (out, err) = session(&h, &g, &["COPY invoices TO STDOUT"]);
    assert_eq!(out, "1\t100", "{err}");
    // Two, neither under a rule: copied, every field scanned by the
    // detectors (the columns differ in order between the two tables).
    for path in ["SET search_path = public", "SET search_path = vault"] {
        let (out, err) = session(&h, &g, &[path, "COPY orders TO STDOUT"]);
        assert!(err.is_empty(), "{err}");
        assert!(out.contains("order"), "{out}");
        assert!(!out.contains("ada@example.com"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_scans_domains_over_text_as_select_does() {
    let h = harness().await;
    let g = h.grant(Profile::Read);
    // A RowDescription names a domain's base type, so SELECT scans these;
    // COPY must class them the same (domains of domains too).
    let (out, err) = session(&h, &g, &["SELECT home, work FROM contacts"]);
    assert_eq!(out, "****@example.com|****@corp.example", "{err}");
    let (out, err) = session(&h, &g, &["COPY contacts TO STDOUT"]);
    assert_eq!(out, "1\t****@example.com\t****@corp.example", "{err}");
}
