//! `sluice connect CONN`: a local Postgres or MySQL port that carries an
//! unchanged client to the gateway. The agent's connection string changes
//! only in host and port and holds no secret: this process asks for the
//! grant, logs in to the gateway with its secret on the client's behalf
//! (SCRAM for Postgres; for MySQL see `sluice_mysql::relay`), and then
//! relays bytes both ways. Before the grant runs out it asks for
//! the next one (new sessions use it; open ones end with their grant, as
//! any session does), and says clearly when the rule will not give one.
//! Ctrl-C revokes the grants it holds, unless `--keep`.
//!
//! The local port is bound to 127.0.0.1 and trusts whoever connects to it
//! there, as the grant's holder would: do not expose it.

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use clap::Args;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::Client;
use super::failure::{Code, fail};

#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// The connection's name (a Postgres or MySQL connection).
    pub connection: String,
    /// A specific profile (read, write, admin) when several rules apply.
    #[arg(long)]
    pub profile: Option<String>,
    /// Local port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Life of each grant, e.g. "10m" (capped by the access rule).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "sluice connect")]
    pub reason: String,
    /// Leave the grants active on exit (they are revoked by default).
    #[arg(long)]
    pub keep: bool,
}

/// The grant new sessions use.
#[derive(Clone)]
struct Current {
    mysql: bool,
    /// The SHA-256 of the listener's certificate, when the grant names
    /// one: the hop to the gateway is then TLS with exactly that
    /// certificate.
    tls_pin: Option<String>,
    id: String,
    user: String,
    password: String,
    database: String,
    host: String,
    port: u16,
}

pub async fn run(a: ConnectArgs) -> Result<ExitCode> {
    let client = Arc::new(Client::from_env()?);
    let first = request(&client, &a).await?;
    let current = Arc::new(Mutex::new(first.0.clone()));
    let held = Arc::new(Mutex::new(vec![first.0.id.clone()]));
    let listener = TcpListener::bind(("127.0.0.1", a.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", a.port))?;
    let port = listener.local_addr()?.port();
    let how = if first.0.mysql {
        format!(
            "mariadb -h 127.0.0.1 -P {port} --protocol=tcp --skip-ssl {} (any user, no password)",
            first.0.database
        )
    } else {
        format!(
            "psql \"host=127.0.0.1 port={port} dbname={} sslmode=disable\"",
            a.connection
        )
    };
    eprintln!(
        "sluice: {} is at 127.0.0.1:{port} through grant {} (expires {}); connect with\n  {how}\n\
         Ctrl-C stops it{}.",
        a.connection,
        first.0.id,
        first.1,
        if a.keep { "" } else { " and revokes the grant" }
    );
    println!("listening 127.0.0.1:{port}");
    tokio::spawn(renew(
        client.clone(),
        a.clone(),
        current.clone(),
        held.clone(),
        first.1,
    ));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    // Out of descriptors and the like: back off, do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let grant = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                tokio::spawn(async move {
                    let carried = if grant.mysql {
                        carry_mysql(tcp, &grant).await
                    } else {
                        carry(tcp, &grant).await
                    };
                    if let Err(e) = carried {
                        eprintln!("sluice: a session ended: {e:#}");
                    }
                });
            }
            _ = &mut interrupt => break,
            _ = terminate.recv() => break,
        }
    }
    if !a.keep {
        let ids = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for id in ids {
            let fresh = Client::fresh().await.ok().filter(|c| c.bearer().is_some());
            let client = fresh.as_ref().unwrap_or(&client);
            if let Err(e) = client.delete(&format!("/v1/grants/{id}")).await {
                eprintln!("sluice: could not revoke grant {id}: {e:#}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh active grant (waiting for approval when needed) and its expiry.
async fn request(client: &Client, a: &ConnectArgs) -> Result<(Current, String)> {
    let mut body = json!({ "connection": a.connection, "reason": a.reason });
    if let Some(t) = &a.ttl {
        body["ttl"] = t.as_str().into();
    }
    if let Some(p) = &a.profile {
        body["profile"] = p.as_str().into();
    }
    let mut g = client.post("/v1/grants", &body).await?;
    if g["status"] == "pending" {
        g = super::grant::wait_for_decision(client, &g).await?;
    }
    let status = g["status"].as_str().unwrap_or("?").to_string();
    if status != "active" {
        return Err(fail(
            Code::of_outcome(&status),
            format!("grant {} is {status}", g["id"].as_str().unwrap_or("?")),
        ));
    }
    let c = &g["credentials"];
    let dsn = c["dsn"].as_str().unwrap_or_default();
    let mysql = dsn.starts_with("mysql://");
    if !mysql && !dsn.starts_with("postgresql://") {
        bail!(
            "`sluice connect` carries Postgres and MySQL clients; for {} (SSH) use `sluice exec {} -- ssh {} …`",
            a.connection,
            a.connection,
            a.connection
        );
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok((
        Current {
            mysql,
            tls_pin: c["tls_fingerprint"].as_str().map(str::to_string),
            id: s(&g["id"]),
            user: s(&c["user"]),
            password: s(&c["password"]),
            database: s(&c["database"]),
            host: s(&c["host"]),
            port: c["port"].as_u64().unwrap_or(0) as u16,
        },
        s(&g["expires_at"]),
    ))
}

/// Asks for the next grant when four fifths of the current one's life have
/// passed; says so when the rule will not give one.
async fn renew(
    client: Arc<Client>,
    a: ConnectArgs,
    current: Arc<Mutex<Current>>,
    held: Arc<Mutex<Vec<String>>>,
    mut expires: String,
) {
    loop {
        let left = chrono::DateTime::parse_from_rfc3339(&expires)
            .map(|t| (t.with_timezone(&chrono::Utc) - sluice_core::clock::now()).num_milliseconds())
            .unwrap_or(0)
            .max(0) as u64;
        tokio::time::sleep(Duration::from_millis(left * 4 / 5)).await;
        // A login kept by the device flow is refreshed as it goes.
        let fresh = Client::fresh().await.ok().filter(|c| c.bearer().is_some());
        match request(fresh.as_ref().unwrap_or(&client), &a).await {
            Ok((next, until)) => {
                eprintln!("sluice: renewed with grant {} (expires {until})", next.id);
                held.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(next.id.clone());
                *current.lock().unwrap_or_else(|e| e.into_inner()) = next;
                expires = until;
            }
            Err(e) => {
                eprintln!(
                    "sluice: cannot renew the grant ({e:#}); new sessions fail after {expires}"
                );
                return;
            }
        }
    }
}

/// One MySQL client, carried by `sluice_mysql::relay`.
async fn carry_mysql(local: TcpStream, g: &Current) -> Result<()> {
    let grant = sluice_mysql::relay::Grant {
        user: &g.user,
        password: &g.password,
        database: &g.database,
        tls_pin: g.tls_pin.as_deref(),
    };
    sluice_mysql::relay::carry(local, (g.host.as_str(), g.port), &grant).await?;
    Ok(())
}

/// One client: its startup answered here, the gateway logged in to with
/// the grant, then bytes relayed both ways.
async fn carry(mut local: TcpStream, g: &Current) -> Result<()> {
    let startup = loop {
        let len = local.read_i32().await? as usize;
        if !(8..=10_000).contains(&len) {
            bail!("not a Postgres startup");
        }
        let mut body = vec![0u8; len - 4];
        local.read_exact(&mut body).await?;
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match code {
            // SSLRequest, GSSENCRequest: the local hop is in the clear.
            80877103 | 80877104 => local.write_all(b"N").await?,
            // CancelRequest: the key came from the gateway; pass it on.
            80877102 => {
                let mut gw = TcpStream::connect((g.host.as_str(), g.port)).await?;
                gw.write_all(&(len as i32).to_be_bytes()).await?;
                gw.write_all(&body).await?;
                return Ok(());
            }
            196608 => break body,
            _ => bail!("unsupported startup code {code}"),
        }
    };
    // The client's own settings, but the grant's user and database.
    let mut params: Vec<(String, String)> = Vec::new();
    let mut fields = startup[4..].split(|b| *b == 0);
    while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
        if k.is_empty() {
            break;
        }
        let k = String::from_utf8_lossy(k).into_owned();
        if k != "user" && k != "database" {
            params.push((k, String::from_utf8_lossy(v).into_owned()));
        }
    }
    params.push(("user".into(), g.user.clone()));
    params.push(("database".into(), g.database.clone()));
    let mut gw = gateway(g).await?;
    local.set_nodelay(true)?;
    let mut buf = BytesMut::new();
    frontend::startup_message(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut buf,
    )?;
    gw.write_all(&buf).await?;
    login(&mut gw, &mut local, g).await?;
    tokio::io::copy_bidirectional(&mut local, &mut gw).await?;
    Ok(())
}

/// The connection to the gateway's listener: TLS with the pinned
/// certificate when the grant names one (refused if not offered), else
/// the clear.
async fn gateway(g: &Current) -> Result<sluice_tls::Stream> {
    let mut tcp = TcpStream::connect((g.host.as_str(), g.port))
        .await
        .with_context(|| format!("cannot reach the gateway at {}:{}", g.host, g.port))?;
    tcp.set_nodelay(true)?;
    let Some(pin) = &g.tls_pin else {
        return Ok(sluice_tls::Stream::Plain(tcp));
    };
    // SSLRequest.
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await?;
    if tcp.read_u8().await? != b'S' {
        bail!("the gateway did not offer TLS, though its grant names a certificate");
    }
    let name = sluice_tls::server_name(&g.host)?;
    let tls = sluice_tls::pinned_connector(pin)
        .connect(name, tcp)
        .await
        .context("TLS with the gateway")?;
    Ok(sluice_tls::Stream::Client(Box::new(tls)))
}

/// SCRAM with the grant's secret; on success the client is told
/// AuthenticationOk, on an error it gets the gateway's error as is.
async fn login(gw: &mut sluice_tls::Stream, local: &mut TcpStream, g: &Current) -> Result<()> {
    let mut scram: Option<ScramSha256> = None;
    let mut proven = false;
    loop {
        let tag = gw.read_u8().await?;
        let len = gw.read_i32().await? as usize;
        if !(4..=65_536).contains(&len) {
            bail!("the gateway sent a malformed message");
        }
        let mut body = vec![0u8; len - 4];
        gw.read_exact(&mut body).await?;
        if tag == b'E' {
            local.write_all(&[tag]).await?;
            local.write_all(&(len as i32).to_be_bytes()).await?;
            local.write_all(&body).await?;
            bail!("the gateway refused the login");
        }
        if tag != b'R' || body.len() < 4 {
            bail!("unexpected message during the gateway login");
        }
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..];
        let mut out = BytesMut::new();
        match code {
            // Only after the gateway proved it knows the verifier (SCRAM's
            // final message): an impostor cannot skip the exchange.
            0 if proven => {
                local.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]).await?;
                return Ok(());
            }
            0 => bail!("the gateway accepted the login without proving itself (no SCRAM)"),
            10 => {
                let client = ScramSha256::new(g.password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", client.message(), &mut out)?;
                scram = Some(client);
            }
            11 => {
                let client = scram.as_mut().context("SASL out of order")?;
                client.update(data)?;
                frontend::sasl_response(client.message(), &mut out)?;
            }
            12 => {
                scram
                    .as_mut()
                    .context("SASL out of order")?
                    .finish(data)
                    .context("the gateway's SCRAM proof is wrong")?;
                proven = true;
                continue;
            }
            other => bail!("the gateway asked for authentication method {other}"),
        }
        gw.write_all(&out).await?;
    }
}
