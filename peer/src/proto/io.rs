//! Reading and writing frames on async byte streams (QUIC streams, the control socket).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{Frame, FrameError, MAX_FRAME};

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
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// Reads the next frame. The length is checked against [`MAX_FRAME`] before any buffer
    /// grows.
    pub async fn read(&mut self) -> Result<Frame, ReadError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = self.inner.read(&mut len[got..]).await?;
            if n == 0 {
                return Err(if got == 0 {
                    ReadError::Closed
                } else {
                    ReadError::Truncated
                });
            }
            got += n;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(ReadError::TooLarge {
                len,
                max: MAX_FRAME,
            });
        }
        self.buf.resize(len, 0);
        match self.inner.read_exact(&mut self.buf).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ReadError::Truncated);
            }
            Err(e) => return Err(e.into()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Gap, Output};

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
    async fn oversized_length_is_refused_before_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x12];
        let mut r = FrameReader::new(&bytes[..]);
        assert!(matches!(r.read().await, Err(ReadError::TooLarge { .. })));
        assert!(r.buf.capacity() < 1024);
    }
}
