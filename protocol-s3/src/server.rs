//! The S3 server: HTTP/1.1 over TCP or TLS on the shared accept loop
//! (`acceptor`: a cap on concurrent connections, excess connections wait
//! in the kernel backlog), and a graceful drain when the shutdown token
//! fires.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::observe::ConnectionGauge;
use crate::service::{handle, S3State};

/// Connections served at once; further clients wait to be accepted.
pub const CONNECTIONS_MAX: usize = 1024;
/// Time a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (line and headers) hyper will buffer.
const REQUEST_HEAD_BYTES_MAX: usize = 64 << 10;
/// Time a client has to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves S3 on `listener` until `shutdown` fires, then stops accepting and
/// lets in-flight requests finish (the caller bounds the wait with
/// [`TaskTracker::wait`] on the returned tracker).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<S3State>,
    shutdown: CancellationToken,
) -> TaskTracker {
    let tracker = TaskTracker::new();
    let sd = shutdown.clone();
    acceptor::accept_loop(listener, "S3", CONNECTIONS_MAX, sd, &tracker, move |stream, peer| {
        let _ = stream.set_nodelay(true);
        let (state, tls, shutdown) = (state.clone(), tls.clone(), shutdown.clone());
        async move {
            let _gauge = ConnectionGauge::open();
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, peer, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .max_buf_size(REQUEST_HEAD_BYTES_MAX)
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .timer(hyper_util::rt::TokioTimer::new());
            let result = match tls {
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => drive(builder.serve_connection(TokioIo::new(s), svc), &shutdown).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => drive(builder.serve_connection(TokioIo::new(stream), svc), &shutdown).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    })
    .await;
    tracker.close();
    tracker
}

async fn drive<C>(conn: C, shutdown: &CancellationToken) -> Result<(), hyper::Error>
where
    C: std::future::Future<Output = Result<(), hyper::Error>> + GracefulConn,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful();
            conn.await
        }
    }
}

/// hyper connections that can finish their current request and close.
trait GracefulConn {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulConn for http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}
