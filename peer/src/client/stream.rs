//! One stream to a host, whatever carries it: a QUIC stream of a session connection, or a
//! connection to the local host's control socket (docs/protocol.md section 13). Frames are
//! the same on both.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use iroh::endpoint::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The sending half of a stream to a host.
#[derive(Debug)]
pub enum StreamSend {
    /// A QUIC stream.
    Quic(SendStream),
    /// A Unix socket to the host on this machine.
    Local(OwnedWriteHalf),
}

/// The receiving half of a stream from a host.
#[derive(Debug)]
pub enum StreamRecv {
    /// A QUIC stream.
    Quic(RecvStream),
    /// A Unix socket to the host on this machine.
    Local(OwnedReadHalf),
}

impl StreamSend {
    /// Says nothing more will be sent. (A Unix socket says so when the half is dropped.)
    pub fn finish(&mut self) {
        if let StreamSend::Quic(s) = self {
            let _ = s.finish();
        }
    }

    /// Waits until the host has read everything sent (QUIC), or at once (a Unix socket's
    /// bytes are with the host's kernel once written).
    pub async fn stopped(&mut self) {
        if let StreamSend::Quic(s) = self {
            let _ = s.stopped().await;
        }
    }
}

impl AsyncWrite for StreamSend {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            StreamSend::Quic(s) => AsyncWrite::poll_write(Pin::new(s), cx, buf),
            StreamSend::Local(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamSend::Quic(s) => AsyncWrite::poll_flush(Pin::new(s), cx),
            StreamSend::Local(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamSend::Quic(s) => AsyncWrite::poll_shutdown(Pin::new(s), cx),
            StreamSend::Local(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for StreamRecv {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamRecv::Quic(s) => AsyncRead::poll_read(Pin::new(s), cx, buf),
            StreamRecv::Local(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}
