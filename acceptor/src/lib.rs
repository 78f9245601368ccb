//! The accept loop, written once for every server of the gateway (S3, NFS,
//! metrics, the admin socket).
//!
//! Why a crate: the protocol crates keep taking a bound listener and a
//! shutdown token (their tests start them alone), and they may not depend
//! on each other or on the gateway, so the loop they share lives in a leaf
//! crate that knows nothing but tokio.
//!
//! The loop takes a connection permit **before** accepting, so when
//! `connections_max` connections are being served further clients wait in
//! the kernel's listen backlog instead of being accepted and refused. A
//! failed accept (EMFILE, ENFILE, ECONNABORTED...) is logged and retried
//! after [`ACCEPT_BACKOFF`] rather than ending the server. When the
//! shutdown token fires, accepting stops; connections already spawned are
//! on the caller's [`TaskTracker`] and drain on their own terms.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pause after a failed accept: long enough for a descriptor to be freed,
/// short enough that clients barely notice.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Something connections are accepted from.
pub trait Listener: Send + Sync {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The peer's address.
    type Peer: Send + 'static;
    /// Accepts one connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Peer)>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Peer = std::net::SocketAddr;
    fn accept_one(&self) -> impl Future<Output = io::Result<(TcpStream, std::net::SocketAddr)>> + Send {
        self.accept()
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Peer = tokio::net::unix::SocketAddr;
    fn accept_one(&self) -> impl Future<Output = io::Result<(UnixStream, tokio::net::unix::SocketAddr)>> + Send {
        self.accept()
    }
}

/// Accepts connections on `listener` until `shutdown` fires, serving at
/// most `connections_max` at once: each accepted connection is handed to
/// `serve` and the future it returns is spawned on `tracker`, holding its
/// permit until it ends. `server` names the server in logs. Returns when
/// shutdown fires; the caller closes and waits on `tracker` for the drain.
pub async fn accept_loop<L, F, Fut>(
    listener: L,
    server: &'static str,
    connections_max: usize,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    mut serve: F,
) where
    L: Listener,
    F: FnMut(L::Stream, L::Peer) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(connections_max.max(1)));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept_one() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(server, error = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let conn = serve(stream, peer);
        tracker.spawn(async move {
            let _permit = permit;
            conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The cap holds: with one connection being served, a second client
    /// is not served until the first ends; shutdown stops accepting.
    #[tokio::test]
    async fn connections_beyond_the_cap_wait_and_shutdown_stops_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let served = Arc::new(AtomicUsize::new(0));
        let (sd, tr, sv) = (shutdown.clone(), tracker.clone(), served.clone());
        let server = tokio::spawn(async move {
            accept_loop(listener, "test", 1, sd, &tr, move |mut s: TcpStream, _| {
                let served = sv.clone();
                async move {
                    served.fetch_add(1, Ordering::SeqCst);
                    let mut b = [0u8; 1];
                    // Serve until the client closes.
                    while s.read(&mut b).await.unwrap_or(0) > 0 {}
                }
            })
            .await
        });
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"x").await.unwrap();
        while served.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let _second = TcpStream::connect(addr).await.unwrap(); // waits in the backlog
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served.load(Ordering::SeqCst), 1, "the second connection waits for a permit");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), async {
            while served.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the second connection is served once the first ends");
        shutdown.cancel();
        server.await.unwrap();
    }
}
