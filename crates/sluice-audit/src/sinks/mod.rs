//! Export sinks: where batches of exported events are delivered. Each sink
//! only knows how to hand one batch to its receiver and say whether that
//! worked; cursors, batching and retries are the runner's.

mod file;
mod http;
mod syslog;

pub use file::FileSink;
pub use http::HttpSink;
pub use syslog::SyslogSink;

use sluice_core::config::audit::{SinkConfig, SinkKind};

use crate::error::ExportError;
use crate::export::ExportEvent;

/// A configured sink.
pub enum Sink {
    File(FileSink),
    Http(HttpSink),
    Syslog(SyslogSink),
}

impl Sink {
    /// Builds a sink from validated configuration. Fails (and the gateway
    /// refuses to start) when a referenced secret cannot be read.
    pub fn from_config(c: &SinkConfig) -> Result<Sink, ExportError> {
        Ok(match c.kind {
            SinkKind::File => Sink::File(FileSink::from_config(c)?),
            SinkKind::Http => Sink::Http(HttpSink::from_config(c)?),
            SinkKind::Syslog => Sink::Syslog(SyslogSink::from_config(c)?),
        })
    }

    /// Delivers one batch, in order. `Ok` means the receiver has it (as far
    /// as the transport can tell: a UDP datagram is only sent).
    pub async fn deliver(&mut self, events: &[ExportEvent]) -> Result<(), ExportError> {
        match self {
            Sink::File(s) => s.deliver(events).await,
            Sink::Http(s) => s.deliver(events).await,
            Sink::Syslog(s) => s.deliver(events).await,
        }
    }
}

fn config_error(c: &SinkConfig, message: impl Into<String>) -> ExportError {
    ExportError::Config {
        sink: c.name.clone(),
        message: message.into(),
    }
}
