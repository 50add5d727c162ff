//! The `sftp` subsystem (`sftp`, and `scp`, which speaks SFTP since
//! OpenSSH 9): Sluice speaks SFTP to the client and to the host, and
//! judges each file operation with its path, made absolute and canonical
//! by the host (`realpath`) first, so `../../etc/shadow` is judged as
//! `/etc/shadow`. Opening (for reading or writing), listing a directory,
//! removing, renaming, creating and removing directories, changing
//! attributes and making links are judged and recorded; reads and writes
//! on an opened file are covered by its open; `stat`, `realpath` and
//! `readlink` pass unrecorded (metadata, not contents).
//!
//! Where the connection masks values, files read go through the value
//! detectors ([`crate::maskread`]); what was masked is recorded as the
//! open's outcome when the handle closes. Writes are not masked: they
//! carry the agent's bytes to the host, not the host's to the agent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use russh::Channel;
use russh::server::Msg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as ClientError;
use russh_sftp::protocol::{
    Attrs, Data, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::{Handler, StatusReply};
use sluice_core::audit::detail::Completed;
use sluice_core::guardrail::StatementClass as C;

use crate::maskread::{self, LoadError, MaskedFile};
use crate::session::Session;
use crate::subject::Request;

/// Runs the sftp subsystem on a client channel.
pub async fn run(session: Arc<Session>, client: Channel<Msg>) {
    let (_backend, host) = match session.channel().await {
        Ok(c) => c,
        Err(message) => {
            crate::exec::refuse(&client, &message).await;
            return;
        }
    };
    if host.request_subsystem(true, "sftp").await.is_err() {
        crate::exec::refuse(&client, "sluice: the host does not offer sftp").await;
        return;
    }
    let raw = RawSftpSession::new(host.into_stream());
    if let Err(e) = raw.init().await {
        tracing::warn!(error = %e, "the host's sftp did not start");
        crate::exec::refuse(&client, "sluice: the host's sftp did not start").await;
        return;
    }
    let (notes, noted) = tokio::sync::mpsc::channel(NOTES);
    let proxy = Proxy {
        session,
        raw,
        opened: HashMap::new(),
        notes,
    };
    // The SFTP server runs on one end of a pipe; this task carries the
    // client's channel to the other, so it knows when the server is done
    // and can end the channel as a finished subsystem (exit status 0),
    // which `scp` waits for.
    let (ours, theirs) = tokio::io::duplex(PIPE);
    russh_sftp::server::run(theirs, proxy).await;
    carry(client, ours, noted).await;
}

/// Bytes buffered between the client's channel and the SFTP server.
const PIPE: usize = 256 * 1024;

/// Refusal notes waiting for the client's stderr; more are dropped.
const NOTES: usize = 16;

async fn carry(
    mut client: Channel<Msg>,
    pipe: tokio::io::DuplexStream,
    mut noted: tokio::sync::mpsc::Receiver<String>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_server, mut to_server) = tokio::io::split(pipe);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            m = client.wait() => match m {
                Some(russh::ChannelMsg::Data { data }) => {
                    if to_server.write_all(&data).await.is_err() { break; }
                }
                Some(russh::ChannelMsg::Eof) => { let _ = to_server.shutdown().await; }
                Some(russh::ChannelMsg::Close) | None => return,
                Some(_) => {}
            },
            Some(note) = noted.recv() => {
                let text = format!("{note}\r\n").into_bytes();
                let _ = client.extended_data_bytes(1, text).await;
            }
            n = from_server.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if client.data_bytes(bytes::Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    let _ = client.exit_status(0).await;
    let _ = client.eof().await;
    let _ = client.close().await;
}

struct Proxy {
    session: Arc<Session>,
    raw: RawSftpSession,
    /// Handles the host gave, and what each was opened for.
    opened: HashMap<String, Opened>,
    /// Sluice's refusals, for the client's stderr: OpenSSH's `sftp` shows
    /// a status's code but not its message.
    notes: tokio::sync::mpsc::Sender<String>,
}

/// A handle the host gave.
struct Opened {
    /// The path it was judged for.
    path: String,
    /// The open's number in its decision, for its outcome.
    seq: Option<u64>,
    /// Opened for writing (then it is not read while masking applies).
    writes: bool,
    /// The file through the value detectors, once first read.
    masked: Option<MaskedFile>,
    started: Instant,
}

impl Opened {
    fn new(path: String, seq: Option<u64>, writes: bool) -> Opened {
        Opened {
            path,
            seq,
            writes,
            masked: None,
            started: Instant::now(),
        }
    }
}

/// A host error, as the client's status.
fn host_error(e: ClientError) -> StatusReply {
    match e {
        ClientError::Status(s) => s.status_code.with_message(s.error_message),
        other => {
            tracing::debug!(error = %other, "sftp host request failed");
            StatusCode::Failure.with_message("the host did not answer")
        }
    }
}

impl Proxy {
    /// `path` as the host resolves it (absolute, `..` and links
    /// resolved); a path that does not exist yet is its directory's
    /// resolution and its own name.
    async fn canonical(&self, path: &str) -> Result<String, StatusReply> {
        if let Ok(name) = self.raw.realpath(path).await
            && let Some(f) = name.files.first()
        {
            return Ok(f.filename.clone());
        }
        let trimmed = path.trim_end_matches('/');
        let (dir, leaf) = match trimmed.rsplit_once('/') {
            Some(("", leaf)) => ("/", leaf),
            Some((dir, leaf)) => (dir, leaf),
            None => (".", trimmed),
        };
        if leaf.is_empty() || leaf == "." || leaf == ".." {
            return Err(StatusCode::NoSuchFile.with_message("no such path"));
        }
        let name = self.raw.realpath(dir).await.map_err(host_error)?;
        let dir = name
            .files
            .first()
            .map(|f| f.filename.clone())
            .ok_or_else(|| StatusCode::NoSuchFile.with_message("no such directory"))?;
        Ok(format!("{}/{leaf}", dir.trim_end_matches('/')))
    }

    /// Judges `what` on `read` and `written` paths; the refusal's words
    /// for the client when denied.
    async fn judge(
        &self,
        what: &str,
        class: C,
        read: &[&str],
        written: &[&str],
    ) -> Result<Option<u64>, StatusReply> {
        let request = Request::file(what, class, read, written);
        self.session
            .decide(&request, &request.facts, "sftp")
            .await
            .map_err(|d| self.refuse(StatusCode::PermissionDenied, d.message))
    }
}

impl Handler for Proxy {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        // No extensions are offered: each would be one more way to act on
        // files that is not judged.
        Ok(Version::new())
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = self.canonical(&filename).await?;
        let writes = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        let seq = if writes {
            self.judge("open for writing", C::Write, &[], &[&path])
                .await?
        } else {
            self.judge("open for reading", C::Read, &[&path], &[])
                .await?
        };
        // The host opens the path judged, not the one given.
        let mut h = self
            .raw
            .open(&path, pflags, attrs)
            .await
            .map_err(host_error)?;
        self.opened
            .insert(h.handle.clone(), Opened::new(path, seq, writes));
        h.id = id;
        Ok(h)
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        if let Some(opened) = self.opened.remove(&handle) {
            self.finish(opened);
        }
        let mut s = self.raw.close(handle).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        self.known(&handle)?;
        if self.session.masker.is_some() {
            return self.read_masked(id, &handle, offset, len).await;
        }
        let mut d = self
            .raw
            .read(handle, offset, len)
            .await
            .map_err(host_error)?;
        d.id = id;
        Ok(d)
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        self.known(&handle)?;
        let mut s = self
            .raw
            .write(handle, offset, data)
            .await
            .map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let mut a = self.raw.lstat(path).await.map_err(host_error)?;
        a.id = id;
        Ok(a)
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        self.known(&handle)?;
        let size = self.opened[&handle].masked.as_ref().map(|m| m.bytes.len());
        let mut a = self.raw.fstat(handle).await.map_err(host_error)?;
        if let Some(size) = size {
            // The size of what the client reads.
            a.attrs.size = Some(size as u64);
        }
        a.id = id;
        Ok(a)
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let mut a = self.raw.stat(path).await.map_err(host_error)?;
        a.id = id;
        Ok(a)
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = self.canonical(&path).await?;
        self.judge("setstat", C::Write, &[], &[&path]).await?;
        let mut s = self.raw.setstat(path, attrs).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = self.known(&handle)?;
        self.judge("setstat", C::Write, &[], &[&path]).await?;
        let mut s = self.raw.fsetstat(handle, attrs).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let path = self.canonical(&path).await?;
        let seq = self.judge("list", C::Read, &[&path], &[]).await?;
        let mut h = self.raw.opendir(&path).await.map_err(host_error)?;
        self.opened
            .insert(h.handle.clone(), Opened::new(path, seq, false));
        h.id = id;
        Ok(h)
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        self.known(&handle)?;
        let mut n = self.raw.readdir(handle).await.map_err(host_error)?;
        n.id = id;
        Ok(n)
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = self.canonical(&filename).await?;
        self.judge("remove", C::Write, &[], &[&path]).await?;
        let mut s = self.raw.remove(path).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = self.canonical(&path).await?;
        self.judge("mkdir", C::Write, &[], &[&path]).await?;
        let mut s = self.raw.mkdir(path, attrs).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let path = self.canonical(&path).await?;
        self.judge("rmdir", C::Write, &[], &[&path]).await?;
        let mut s = self.raw.rmdir(path).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let mut n = self.raw.realpath(path).await.map_err(host_error)?;
        n.id = id;
        Ok(n)
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let from = self.canonical(&oldpath).await?;
        let to = self.canonical(&newpath).await?;
        self.judge("rename", C::Write, &[], &[&from, &to]).await?;
        let mut s = self.raw.rename(from, to).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let mut n = self.raw.readlink(path).await.map_err(host_error)?;
        n.id = id;
        Ok(n)
    }

    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, Self::Error> {
        let link = self.canonical(&linkpath).await?;
        // A link to a path is a way to reach it under another name: the
        // target is judged as written too.
        let target = self.canonical(&targetpath).await?;
        self.judge("symlink", C::Write, &[], &[&link, &target])
            .await?;
        let mut s = self.raw.symlink(link, target).await.map_err(host_error)?;
        s.id = id;
        Ok(s)
    }
}

impl Proxy {
    /// The path a handle was opened for; an unknown handle is refused.
    fn known(&self, handle: &str) -> Result<String, StatusReply> {
        self.opened
            .get(handle)
            .map(|o| o.path.clone())
            .ok_or_else(|| StatusCode::Failure.with_message("unknown handle"))
    }

    /// Sluice's own refusal: the status, and its words on stderr.
    fn refuse(&self, code: StatusCode, message: String) -> StatusReply {
        let _ = self.notes.try_send(message.clone());
        code.with_message(message)
    }

    /// A read answered from the file's masked copy, made at the first.
    async fn read_masked(
        &mut self,
        id: u32,
        handle: &str,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let masker = self.session.masker.clone().expect("masking applies");
        let opened = &self.opened[handle];
        if opened.writes {
            return Err(self.refuse(
                StatusCode::PermissionDenied,
                "sluice: a file opened for writing cannot be read while masking applies; open it for reading".into(),
            ));
        }
        if opened.masked.is_none() {
            let held = self.opened.values().filter(|o| o.masked.is_some()).count();
            if held >= maskread::MAX_OPEN {
                return Err(self.refuse(
                    StatusCode::Failure,
                    format!(
                        "sluice: at most {} files are read at once while masking applies; close one first",
                        maskread::MAX_OPEN
                    ),
                ));
            }
            let file = match maskread::load(&self.raw, handle, &masker).await {
                Ok(file) => file,
                Err(LoadError::Host(e)) => return Err(host_error(e)),
                Err(LoadError::TooLarge) => {
                    let why = LoadError::too_large_message();
                    return Err(self.refuse(StatusCode::Failure, why));
                }
            };
            self.opened.get_mut(handle).expect("known").masked = Some(file);
        }
        let file = self.opened[handle].masked.as_ref().expect("loaded");
        match file.read(offset, len) {
            Some(data) => Ok(Data { id, data }),
            None => Err(StatusCode::Eof.with_message("end of file")),
        }
    }

    /// Records what a closed handle's reads masked, when they masked.
    fn finish(&self, opened: Opened) {
        let Some(file) = opened.masked else { return };
        self.session.completed(&Completed {
            seq: opened.seq.unwrap_or(0),
            protocol: "sftp".into(),
            outcome: "ok".into(),
            duration_ms: opened.started.elapsed().as_micros() as f64 / 1000.0,
            bytes_sent: Some(file.bytes.len() as u64),
            masked: file.masked,
            ..Completed::default()
        });
    }
}
