//! Just enough of the Chrome DevTools protocol to drive a headless Debian
//! `chromium` from a test: one page, navigate, evaluate, wait.

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Chrome {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    session: String,
    next_id: u64,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Chrome {
    /// Starts `chromium` headless with a throwaway profile and attaches to
    /// a new blank page. Fails (never skips) when chromium is missing:
    /// `scripts/deps.sh` installs it.
    pub async fn launch() -> Chrome {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium (the Debian package `chromium`; run scripts/deps.sh)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let ws_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read chromium's stderr") {
                if let Some(at) = line.find("ws://") {
                    return line[at..].trim().to_string();
                }
            }
            panic!("chromium exited before announcing its DevTools endpoint");
        })
        .await
        .expect("chromium announced its DevTools endpoint within 30 s");
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to chromium's DevTools");
        let mut c = Chrome {
            child,
            _profile: profile,
            ws,
            session: String::new(),
            next_id: 0,
        };
        let target = c
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = c
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        c.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        c
    }

    /// Sends one command (to the page once attached) and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    /// [`Self::call`], with DevTools' own error returned rather than fatal.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send to chromium");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"))
                .expect("chromium closed DevTools")
                .expect("read from chromium");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    return Err(e.clone());
                }
                return Ok(v["result"].clone());
            }
        }
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// Evaluates `expr` in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let params = json!({"expression": expr, "returnByValue": true, "awaitPromise": true});
        let r = match self.try_call("Runtime.evaluate", params).await {
            Ok(r) => r,
            // A page that navigated away under the evaluation: callers that
            // poll (wait_for) ask again; the others see no value.
            Err(e) if e.to_string().contains("navigated or closed") => {
                return json!({"exception": e});
            }
            Err(e) => panic!("Runtime.evaluate failed: {e}"),
        };
        if let Some(e) = r.get("exceptionDetails") {
            // Mid-navigation the context may vanish; callers poll again.
            return json!({"exception": e});
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is `true`, for at most `secs` seconds.
    pub async fn wait_for(&mut self, expr: &str, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if self.eval(expr).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.eval("location.href").await;
                let text = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out waiting for `{expr}` at {url}; page text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the page, for looking at it while developing.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        use base64::Engine;
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .expect("base64 PNG");
        std::fs::write(path, png).expect("write the screenshot");
    }
}
