//! Reading and writing frames and messages on async byte streams (QUIC streams, the control
//! socket). Enabled by the `io` feature.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{MessageError, frame_message};
use crate::frame::{Frame, FrameError, MAX_FRAME};

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream ended cleanly between frames.
    #[error("stream closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The announced length is over the limit; nothing was read past the length prefix.
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame body does not decode.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Transport error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads length-prefixed frames, reusing one buffer.
///
/// [`FrameReader::read`] is cancel-safe: a partly read frame stays in the reader, so dropping
/// the future (a `tokio::select!` in which another branch won) loses nothing and the next call
/// goes on where this one stopped.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    /// The length prefix, and how much of it has arrived.
    head: [u8; 4],
    head_got: usize,
    /// The body being read (its length is known once the prefix is complete), and how much
    /// of it has arrived.
    buf: Vec<u8>,
    body_got: usize,
    in_body: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            head: [0; 4],
            head_got: 0,
            buf: Vec::new(),
            body_got: 0,
            in_body: false,
        }
    }

    /// Reads the next frame. The length is checked against [`MAX_FRAME`] before any buffer
    /// grows. Cancel-safe (see the type).
    pub async fn read(&mut self) -> Result<Frame, ReadError> {
        // Every await below is a single `read`, which takes bytes only when it completes, and
        // what it returns is recorded in `self` before the next await.
        while !self.in_body {
            let got = self.head_got;
            let n = self.inner.read(&mut self.head[got..]).await?;
            if n == 0 {
                return Err(if got == 0 {
                    ReadError::Closed
                } else {
                    ReadError::Truncated
                });
            }
            self.head_got += n;
            if self.head_got == 4 {
                let len = u32::from_be_bytes(self.head) as usize;
                if len > MAX_FRAME {
                    return Err(ReadError::TooLarge {
                        len,
                        max: MAX_FRAME,
                    });
                }
                self.buf.resize(len, 0);
                self.body_got = 0;
                self.in_body = true;
            }
        }
        while self.body_got < self.buf.len() {
            let got = self.body_got;
            let n = self.inner.read(&mut self.buf[got..]).await?;
            if n == 0 {
                return Err(ReadError::Truncated);
            }
            self.body_got += n;
        }
        self.head_got = 0;
        self.in_body = false;
        Ok(Frame::decode(&self.buf)?)
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    w.write_all(&frame.encode()).await
}

/// One item of a message stream ([`crate::codec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// A message.
    Message(Vec<u8>),
    /// A close record.
    Close {
        /// WebSocket close code.
        code: u16,
        /// For people.
        reason: String,
    },
}

/// Reads one `u16 BE length | bytes` message or close record; `None` at a clean end of stream.
///
/// Not cancel-safe: use it in a loop of its own, not as a `select!` branch.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<StreamMessage>> {
    let len = match r.read_u16().await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len == 0 {
        let code = r.read_u16().await?;
        let n = r.read_u8().await?;
        let mut reason = vec![0u8; usize::from(n)];
        r.read_exact(&mut reason).await?;
        return Ok(Some(StreamMessage::Close {
            code,
            reason: String::from_utf8_lossy(&reason).into_owned(),
        }));
    }
    let mut buf = vec![0u8; usize::from(len)];
    r.read_exact(&mut buf).await?;
    Ok(Some(StreamMessage::Message(buf)))
}

/// Writes one `u16 BE length | bytes` message.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    let framed = frame_message(bytes).map_err(|e: MessageError| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    })?;
    w.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gap, Output};

    #[tokio::test]
    async fn reads_frames_and_reports_clean_and_dirty_ends() {
        let mut bytes = Frame::Gap(Gap { from: 1, to: 2 }).encode();
        bytes.extend(
            Frame::Output(Output {
                offset: 9,
                data: vec![1, 2, 3],
            })
            .encode(),
        );
        let mut r = FrameReader::new(&bytes[..]);
        assert_eq!(
            r.read().await.ok(),
            Some(Frame::Gap(Gap { from: 1, to: 2 }))
        );
        assert!(matches!(r.read().await, Ok(Frame::Output(_))));
        assert!(matches!(r.read().await, Err(ReadError::Closed)));

        let mut r = FrameReader::new(&bytes[..6]);
        assert!(matches!(r.read().await, Err(ReadError::Truncated)));
        let mut r = FrameReader::new(&bytes[..2]);
        assert!(matches!(r.read().await, Err(ReadError::Truncated)));
    }

    #[tokio::test]
    async fn messages_and_close_records_read_back() {
        let mut bytes = Vec::new();
        write_message(&mut bytes, b"hello").await.expect("write");
        bytes.extend(crate::codec::close_record(4100, "revoked"));
        let mut r = &bytes[..];
        assert_eq!(
            read_message(&mut r).await.expect("read"),
            Some(StreamMessage::Message(b"hello".to_vec()))
        );
        assert_eq!(
            read_message(&mut r).await.expect("read"),
            Some(StreamMessage::Close {
                code: 4100,
                reason: "revoked".into()
            })
        );
        assert_eq!(read_message(&mut r).await.expect("end"), None);
        assert!(write_message(&mut Vec::new(), b"").await.is_err());
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x12];
        let mut r = FrameReader::new(&bytes[..]);
        assert!(matches!(r.read().await, Err(ReadError::TooLarge { .. })));
        assert!(r.buf.capacity() < 1024);
    }

    /// Hands out one byte per poll and is not ready every other poll, like a stream whose
    /// packets trickle in.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        ready: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            if self.pos < self.data.len() {
                buf.put_slice(&self.data[self.pos..self.pos + 1]);
                self.pos += 1;
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_read_dropped_halfway_loses_nothing() {
        let frames = vec![
            Frame::Output(Output {
                offset: 7,
                data: (0..=255).collect(),
            }),
            Frame::Gap(Gap { from: 1, to: 2 }),
            Frame::Output(Output {
                offset: 263,
                data: b"tail".to_vec(),
            }),
        ];
        let data: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut r = FrameReader::new(Trickle {
            data,
            pos: 0,
            ready: false,
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut got = Vec::new();
        let mut polls = 0;
        while got.len() < frames.len() {
            // A new future each time, dropped after one poll: what a select loop does when
            // another branch is ready first.
            let mut read = Box::pin(r.read());
            if let std::task::Poll::Ready(f) = read.as_mut().poll(&mut cx) {
                got.push(f.expect("frame"));
            }
            polls += 1;
            assert!(polls < 10_000, "no progress");
        }
        assert_eq!(got, frames);
    }
}
