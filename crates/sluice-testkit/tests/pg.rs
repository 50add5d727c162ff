use sluice_testkit::pg::{PgOptions, PgServer};

#[test]
fn starts_two_independent_servers_with_scram() {
    let a = PgServer::start().unwrap();
    let b = PgServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    a.psql("postgres", "CREATE TABLE only_in_a(x int)").unwrap();
    assert_eq!(
        a.psql(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE tablename='only_in_a'"
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        b.psql(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE tablename='only_in_a'"
        )
        .unwrap(),
        "0"
    );
    let method = a
        .psql(
            "postgres",
            "SELECT auth_method FROM pg_hba_file_rules WHERE type='host' LIMIT 1",
        )
        .unwrap();
    assert_eq!(method, "scram-sha-256");
}

#[test]
fn serves_tls_when_asked_and_stops_on_drop() {
    let s = PgServer::start_with(PgOptions {
        tls: true,
        ..Default::default()
    })
    .unwrap();
    let url = format!("{}?sslmode=require", s.url("postgres"));
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            &url,
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    let port = s.port();
    drop(s);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
