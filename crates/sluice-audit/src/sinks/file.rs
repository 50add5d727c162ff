//! JSON lines appended to a file, rotated by size: when the next line would
//! take the file past `max_bytes`, `PATH` becomes `PATH.1`, `PATH.1`
//! becomes `PATH.2`, … and the oldest beyond `keep` is removed. A batch is
//! synced to disk before it counts as delivered.

use sluice_core::config::audit::SinkConfig;
use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::config_error;
use crate::error::ExportError;
use crate::export::ExportEvent;

pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> FileSink {
        FileSink {
            path,
            max_bytes,
            keep,
        }
    }

    pub(super) fn from_config(c: &SinkConfig) -> Result<FileSink, ExportError> {
        let path = c
            .path
            .clone()
            .ok_or_else(|| config_error(c, "a file sink needs path"))?;
        Ok(FileSink::new(path, c.max_bytes(), c.keep()))
    }

    pub async fn deliver(&mut self, events: &[ExportEvent]) -> Result<(), ExportError> {
        let lines: Vec<String> = events.iter().map(|e| format!("{}\n", e.line())).collect();
        let (path, max, keep) = (self.path.clone(), self.max_bytes, self.keep);
        // File I/O blocks; keep it off the runtime's worker threads.
        tokio::task::spawn_blocking(move || write_lines(&path, max, keep, &lines))
            .await
            .map_err(|e| ExportError::Delivery(format!("file writer panicked: {e}")))?
            .map_err(|e| ExportError::Delivery(format!("{}: {e}", self.path.display())))
    }
}

fn write_lines(path: &Path, max_bytes: u64, keep: u32, lines: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        fs::create_dir_all(dir)?;
    }
    let mut size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    // Buffered: one write(2) per 64 KiB instead of one per event.
    let mut file = BufWriter::with_capacity(WRITE_BUFFER, open(path)?);
    for line in lines {
        let len = line.len() as u64;
        // A line is never split: one longer than max_bytes gets a file of
        // its own.
        if size > 0 && size + len > max_bytes {
            synced(file)?;
            rotate(path, keep)?;
            file = BufWriter::with_capacity(WRITE_BUFFER, open(path)?);
            size = 0;
        }
        file.write_all(line.as_bytes())?;
        size += len;
    }
    synced(file)
}

const WRITE_BUFFER: usize = 64 * 1024;

/// Writes out what is buffered and waits for it to reach the disk.
fn synced(file: BufWriter<fs::File>) -> std::io::Result<()> {
    file.into_inner().map_err(|e| e.into_error())?.sync_data()
}

fn open(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Shifts `PATH.(n-1)` to `PATH.n` down to `PATH` → `PATH.1`.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return fs::remove_file(path);
    }
    let numbered = |n: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    };
    let _ = fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            fs::rename(&from, numbered(n + 1))?;
        }
    }
    fs::rename(path, numbered(1))
}
