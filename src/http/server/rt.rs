//! hyper's I/O traits on an async-std socket, noting when a request head starts arriving.

use super::conns::Conn;
use async_std::io::{Read, Write};
use async_std::net::TcpStream;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// One connection's socket as hyper sees it.
pub struct Io {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl Io {
    pub fn new(stream: TcpStream, conn: Arc<Conn>) -> Io {
        Io { stream, conn }
    }
}

/// Bytes read per call. hyper hands us its own (uninitialised) buffer, and filling it
/// directly takes `unsafe`; reading into a stack buffer and copying costs a memcpy of at
/// most this much per read, and no memory per connection.
const CHUNK: usize = 16 * 1024;

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut tmp = [0u8; CHUNK];
        let want = buf.remaining().min(CHUNK);
        match Pin::new(&mut this.stream).poll_read(cx, &mut tmp[..want]) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    // The first byte after an idle spell starts the head's clock.
                    this.conn.bytes_arrived();
                }
                buf.put_slice(&tmp[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Our connection task closes the socket itself, after a lingering read (see
        // `engine`); hyper only reaches this when it is done with the connection.
        Poll::Ready(Ok(()))
    }
}
