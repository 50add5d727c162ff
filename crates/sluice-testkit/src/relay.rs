//! A TCP relay between the gateway and a real backend that a test can make
//! misbehave: slow replies, connections cut, new ones refused or accepted
//! and never answered. The backend itself stays real; only the path to it
//! fails, as a network or a restarting server would make it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the relay treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Relays both ways at once.
    Pass,
    /// Each chunk from the backend waits this long before it is relayed.
    Slow(Duration),
    /// New connections are closed as soon as they are accepted.
    Refuse,
    /// New connections are accepted and then nothing: no bytes either way.
    Blackhole,
}

pub struct Relay {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Bumped by [`Relay::cut`]: connections older than the bump end.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on an ephemeral loopback port and relays to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let (cuts, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, target, mode.clone(), cuts.clone()));
        Relay {
            addr,
            mode,
            cuts,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// From now on (for chunks in flight too, with `Slow`).
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Closes every connection open now, both ways.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    cuts: watch::Sender<u64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let now = *mode.lock().unwrap();
        let mut cut = cuts.subscribe();
        cut.mark_unchanged();
        let mode = mode.clone();
        tokio::spawn(async move {
            match now {
                Mode::Refuse => drop(client),
                Mode::Blackhole => {
                    let _ = cut.changed().await;
                    drop(client);
                }
                Mode::Pass | Mode::Slow(_) => {
                    let Ok(backend) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = relay(client, backend, mode) => {}
                        _ = cut.changed() => {}
                    }
                }
            }
        });
    }
}

async fn relay(client: TcpStream, backend: TcpStream, mode: Arc<Mutex<Mode>>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut br, mut bw) = backend.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut bw).await;
        let _ = bw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match br.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay = match *mode.lock().unwrap() {
                Mode::Slow(d) => Some(d),
                _ => None,
            };
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}
