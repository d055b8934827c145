//! [`Transport`]: where byte streams come from. The TCP implementation ships; tests plug in a simulated
//! network (turmoil) through the same trait, so the session code they run is the code that ships.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// A source of reliable, ordered byte streams to and from addresses.
///
/// An implementation must deliver the bytes of a stream in order and without loss or report an error;
/// it need not authenticate or encrypt anything (the handshake does). It may assume its futures are
/// polled inside a tokio runtime, and each is wrapped in a timeout by the caller, so it need not time
/// out on its own.
pub trait Transport: Send + Sync + 'static {
    /// One connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `addr`.
    fn dial(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Waits for the next inbound stream and says where it comes from.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address peers reach us on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Plain TCP from tokio.
#[derive(Debug)]
pub struct TcpTransport {
    listener: TcpListener,
}

impl TcpTransport {
    /// Listens on `addr` (port 0 picks a free port; see [`Transport::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(TcpTransport {
            listener: TcpListener::bind(addr).await?,
        })
    }
}

impl Transport for TcpTransport {
    type Stream = TcpStream;

    async fn dial(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        // The session batches frames itself; Nagle's delay would only hold back votes.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, addr))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}
