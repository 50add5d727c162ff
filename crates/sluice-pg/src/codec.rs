//! Framing: cutting PostgreSQL messages out of a byte stream.
//!
//! Every message after startup is `tag:u8, len:i32 (includes itself), body`;
//! the startup-phase packets (StartupMessage, SSLRequest, CancelRequest,
//! GSSENCRequest) have no tag. The declared length is checked against a cap
//! before any memory is reserved for the body, and a frame is only cut once it
//! is complete, with `split_to().freeze()` so the bytes are never copied.
//! [`FrameReader::next`] is cancel-safe: a partly read frame stays buffered.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much more to read at once; large frames grow the buffer as data comes.
const READ_CHUNK: usize = 64 * 1024;
/// The room made for a quiet connection's next read.
const FIRST_READ: usize = 4 * 1024;

/// How much room to make in a buffer before the next read: little for a
/// quiet connection, so an idle session holds little memory (thousands of
/// them may wait between statements), doubling up to a maximum while reads
/// keep filling all of it.
#[derive(Debug)]
pub struct ReadSize {
    next: usize,
    max: usize,
}

impl ReadSize {
    pub fn up_to(max: usize) -> Self {
        ReadSize {
            next: FIRST_READ.min(max),
            max,
        }
    }

    /// Makes room in `buf`; returns how much there is.
    pub fn reserve(&self, buf: &mut BytesMut) -> usize {
        buf.reserve(self.next);
        buf.capacity() - buf.len()
    }

    /// A read of `n` bytes into `room`: a full one asks for more next time.
    pub fn read(&mut self, room: usize, n: usize) {
        if n >= room {
            self.next = (self.next * 2).min(self.max);
        }
    }
}

/// One complete message: its tag (0 for startup packets) and every byte of it,
/// header included, so it can be forwarded unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub bytes: Bytes,
}

impl Frame {
    /// The body: everything after the tag and length.
    pub fn body(&self) -> &[u8] {
        let header = if self.tag == 0 { 4 } else { 5 };
        &self.bytes[header..]
    }
}

/// A frame that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message length {0} is invalid")]
    BadLength(i64),
    #[error("message of {len} bytes exceeds the limit of {cap} bytes")]
    TooLarge { len: usize, cap: usize },
}

/// Cuts one tagged frame from `buf` when complete. `Ok(None)` means more bytes
/// are needed. Never reserves memory; never panics on any input.
pub fn decode_tagged(buf: &mut BytesMut, cap: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if declared < 4 {
        return Err(FrameError::BadLength(declared.into()));
    }
    let total = declared as usize + 1;
    check_cap(total, cap)?;
    if buf.len() < total {
        return Ok(None);
    }
    let tag = buf[0];
    Ok(Some(Frame {
        tag,
        bytes: buf.split_to(total).freeze(),
    }))
}

/// Cuts one untagged startup-phase packet from `buf` when complete.
pub fn decode_startup(buf: &mut BytesMut, cap: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    // The shortest packet is SSLRequest: length and code, 8 bytes.
    if declared < 8 {
        return Err(FrameError::BadLength(declared.into()));
    }
    let total = declared as usize;
    check_cap(total, cap)?;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Frame {
        tag: 0,
        bytes: buf.split_to(total).freeze(),
    }))
}

fn check_cap(len: usize, cap: usize) -> Result<(), FrameError> {
    if len > cap {
        return Err(FrameError::TooLarge { len, cap });
    }
    Ok(())
}

/// Why reading a frame stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads frames from one side of a connection, with a cap that can be raised
/// once the peer is authenticated.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    cap: usize,
    size: ReadSize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        Self::with_buffer(inner, BytesMut::new(), cap)
    }

    /// A reader that starts with bytes already read from `inner`.
    pub fn with_buffer(inner: R, buf: BytesMut, cap: usize) -> Self {
        FrameReader {
            inner,
            buf,
            cap,
            size: ReadSize::up_to(READ_CHUNK),
        }
    }

    /// The stream, to inspect it.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream, to write to it (the reader never writes).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Changes the largest accepted frame.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// The next tagged frame, or `None` on a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        self.next_with(decode_tagged).await
    }

    /// The next untagged startup-phase packet, or `None` on end of stream.
    pub async fn next_startup(&mut self) -> Result<Option<Frame>, ReadError> {
        self.next_with(decode_startup).await
    }

    /// True when a complete tagged frame is already buffered, so a caller
    /// can keep batching before it flushes its writes.
    pub fn has_frame(&self) -> bool {
        if self.buf.len() < 5 {
            return false;
        }
        let declared = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        declared >= 4 && self.buf.len() > declared as usize
    }

    /// Bytes read past the last frame handed out (e.g. before a TLS upgrade,
    /// where there must be none).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Resolves when the peer closes the stream (or it fails), keeping what
    /// arrives meanwhile for [`FrameReader::next`]; cancel-safe. Once a
    /// frame's worth (the cap) is buffered it stops reading and never
    /// resolves: the peer is then plainly there.
    pub async fn closed(&mut self) {
        loop {
            if self.buf.len() >= self.cap {
                return std::future::pending().await;
            }
            let room = self.size.reserve(&mut self.buf);
            match self.inner.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => self.size.read(room, n),
            }
        }
    }

    /// The underlying stream, and whatever was read beyond the last frame.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }

    async fn next_with(
        &mut self,
        decode: fn(&mut BytesMut, usize) -> Result<Option<Frame>, FrameError>,
    ) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = decode(&mut self.buf, self.cap)? {
                return Ok(Some(frame));
            }
            // The header passed the cap, so growing towards it is safe; grow
            // in chunks so a lying length costs nothing until bytes arrive.
            let room = self.size.reserve(&mut self.buf);
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
            self.size.read(room, n);
        }
    }
}

/// Reads a NUL-terminated string from the front of `body`, advancing it.
pub fn take_cstr<'a>(body: &mut &'a [u8]) -> Option<&'a str> {
    let end = body.iter().position(|b| *b == 0)?;
    let s = std::str::from_utf8(&body[..end]).ok()?;
    body.advance(end + 1);
    Some(s)
}

/// Reads a big-endian i32 from the front of `body`, advancing it.
pub fn take_i32(body: &mut &[u8]) -> Option<i32> {
    if body.len() < 4 {
        return None;
    }
    Some(body.get_i32())
}

/// Reads a big-endian i16 from the front of `body`, advancing it.
pub fn take_i16(body: &mut &[u8]) -> Option<i16> {
    if body.len() < 2 {
        return None;
    }
    Some(body.get_i16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn read_room_starts_small_and_doubles_while_reads_fill_it() {
        let mut size = ReadSize::up_to(READ_CHUNK);
        let mut buf = BytesMut::new();
        let room = size.reserve(&mut buf);
        assert!((FIRST_READ..2 * FIRST_READ).contains(&room), "{room}");
        // A partial read: a quiet connection stays small.
        size.read(room, 100);
        assert_eq!(size.next, FIRST_READ);
        // Full reads double the room, up to the cap.
        for _ in 0..10 {
            size.read(size.next, size.next);
        }
        assert_eq!(size.next, READ_CHUNK);
        let mut fresh = BytesMut::new();
        assert!(size.reserve(&mut fresh) >= READ_CHUNK);
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn cuts_whole_frames_and_waits_for_partial_ones() {
        let mut wire = msg(b'Q', b"select 1\0");
        wire.extend(msg(b'S', b""));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire[..7]);
        assert_eq!(decode_tagged(&mut buf, 1024).unwrap(), None);
        buf.extend_from_slice(&wire[7..]);
        let q = decode_tagged(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((q.tag, q.body()), (b'Q', &b"select 1\0"[..]));
        let s = decode_tagged(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((s.tag, s.body().len()), (b'S', 0));
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_lengths_before_the_body_arrives() {
        let mut buf = BytesMut::from(&[b'Q', 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode_tagged(&mut buf, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[b'Q', 0, 0, 0, 3][..]);
        assert_eq!(
            decode_tagged(&mut buf, 1 << 20),
            Err(FrameError::BadLength(3))
        );
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(decode_startup(&mut buf, 10240).is_err());
    }

    /// Fuzz-style: random streams in random splits never panic, never hand
    /// out a frame above the cap, and reassemble valid streams exactly.
    #[test]
    fn random_streams_and_splits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..2000 {
            let cap = rng.gen_range(5..512);
            let wire: Vec<u8> = if round % 2 == 0 {
                (0..rng.gen_range(0..600)).map(|_| rng.r#gen()).collect()
            } else {
                let mut w = Vec::new();
                for _ in 0..rng.gen_range(0..20) {
                    let body: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.r#gen()).collect();
                    w.extend(msg(rng.gen_range(b'A'..=b'z'), &body));
                }
                w
            };
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut pos = 0;
            'feed: while pos < wire.len() {
                let n = rng.gen_range(1..=wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                loop {
                    let decoded = if round % 3 == 0 {
                        decode_startup(&mut buf, cap)
                    } else {
                        decode_tagged(&mut buf, cap)
                    };
                    match decoded {
                        Ok(Some(f)) => {
                            assert!(f.bytes.len() <= cap);
                            out.extend_from_slice(&f.bytes);
                        }
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
            // Whatever was handed out is a prefix of the input.
            assert_eq!(&wire[..out.len()], &out[..]);
        }
    }

    #[tokio::test]
    async fn reader_reassembles_split_reads() {
        let mut wire = msg(b'P', b"\0select $1\0\0\0");
        wire.extend(msg(b'S', b""));
        let mut builder = tokio_test_reader(&wire);
        let mut r = FrameReader::new(&mut builder, 1024);
        assert_eq!(r.next().await.unwrap().unwrap().tag, b'P');
        assert_eq!(r.next().await.unwrap().unwrap().tag, b'S');
        assert!(r.next().await.unwrap().is_none());
    }

    /// A reader that hands out one byte per read.
    fn tokio_test_reader(bytes: &[u8]) -> OneByte {
        OneByte(bytes.to_vec(), 0)
    }

    struct OneByte(Vec<u8>, usize);

    impl AsyncRead for OneByte {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.1 < self.0.len() {
                let b = self.0[self.1];
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            std::task::Poll::Ready(Ok(()))
        }
    }
}
