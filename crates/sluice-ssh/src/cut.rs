//! A connection the gateway can cut: russh owns the socket once a session
//! runs, and a client that never finishes logging in (or never sends its
//! version line) would hold it for as long as it likes. Cutting makes the
//! next read see the end of the stream, wherever russh is waiting.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Cuts a [`Cuttable`].
#[derive(Clone, Default)]
pub struct Cutter(Arc<State>);

#[derive(Default)]
struct State {
    cut: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl Cutter {
    /// Ends the stream: its pending and later reads see end of file.
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::SeqCst);
        if let Some(w) = self
            .0
            .reader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            w.wake();
        }
    }
}

/// A stream that reads as ended once cut.
pub struct Cuttable<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> Cuttable<S> {
    pub fn new(inner: S) -> (Cuttable<S>, Cutter) {
        let cutter = Cutter::default();
        (
            Cuttable {
                inner,
                state: cutter.0.clone(),
            },
            cutter,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Cuttable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.state.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        *self.state.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Checked again after the waker is in place, so a cut between the
        // two is not missed.
        if self.state.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Cuttable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.state.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_waiting_read_ends_when_cut() {
        let (a, _b) = tokio::io::duplex(64);
        let (mut s, cutter) = Cuttable::new(a);
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            s.read(&mut buf).await.unwrap()
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        cutter.cut();
        assert_eq!(reading.await.unwrap(), 0);
    }
}
