//! Observability endpoints on their own listen address (`metrics_listen`):
//! `/metrics` (Prometheus text format), `/healthz` (200 while the process
//! runs) and `/readyz` (200 once recovery is done and every listener is
//! bound, 503 before that and from the start of the drain).
//!
//! The libraries record through the `metrics` facade; this binary installs
//! the one recorder (the Prometheus exporter's, without its own HTTP
//! listener: [`serve`] takes a bound listener and the shutdown token like
//! the other servers). Values that are state rather than events (metastore
//! size, hidden names, volume space) are read at scrape time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use namespace::Namespace;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections to the metrics endpoint served at once (scrapers and
/// health probes; more wait in the backlog).
const METRICS_CONNECTIONS_MAX: usize = 64;
/// Time a client has to send its request head.
const METRICS_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
const METRICS_REQUEST_HEAD_BYTES_MAX: usize = 16 << 10;
/// How often histogram samples are folded into their buckets between
/// scrapes, so that memory does not grow with the request rate.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Bucket bounds of every `*_seconds` histogram: 100 µs to 60 s, covering
/// an NFS GETATTR from the cache as well as a large multipart complete.
const LATENCY_BUCKETS_SECONDS: [f64; 17] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Where the process stands, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Opening the data directory (recovery) and binding listeners.
    Starting = 0,
    /// Serving.
    Ready = 1,
    /// Shutting down: draining requests, then flushing.
    Draining = 2,
}

/// Health state shared by the wiring and the endpoint.
#[derive(Default)]
pub struct Health {
    phase: AtomicU8,
    ns: OnceLock<Arc<Namespace>>,
}

impl Health {
    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Draining,
        }
    }

    /// Gives the scrape handler the namespace once it is open.
    pub fn attach(&self, ns: Arc<Namespace>) {
        let _ = self.ns.set(ns);
    }

    /// Which store a failed flush poisoned, once the namespace is attached.
    pub fn poisoned(&self) -> Option<&'static str> {
        self.ns.get().and_then(|ns| ns.poisoned())
    }
}

/// Installs the Prometheus recorder as the process's `metrics` recorder
/// and describes every metric. Call once, before anything is recorded.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS_SECONDS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
    describe();
    Ok(handle)
}

/// HELP lines; the names are the contract with dashboards (README lists them).
fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h, Unit};
    c!("gateway_s3_requests_total", "S3 requests answered, by operation and HTTP status.");
    c!(
        "gateway_s3_errors_total",
        "S3 requests answered with an error (status >= 400), by operation and S3 error code."
    );
    c!("gateway_s3_received_bytes_total", Unit::Bytes, "S3 request body bytes received, by operation.");
    c!("gateway_s3_sent_bytes_total", Unit::Bytes, "S3 response body bytes sent, by operation.");
    c!("gateway_s3_response_body_failures_total", "S3 responses whose body failed mid-stream (e.g. a read error).");
    h!("gateway_s3_request_duration_seconds", Unit::Seconds, "S3 request duration, head to last body byte.");
    g!("gateway_s3_connections_active", "Open S3 connections.");
    c!("gateway_s3_connections_total", "S3 connections accepted.");
    c!("gateway_s3_hidden_invalid_utf8_names_total", "Names left out of S3 listings because they are not UTF-8.");
    c!("gateway_nfs_calls_total", "NFS, MOUNT and portmap calls answered, by procedure.");
    c!("gateway_nfs_errors_total", "Calls answered with a status other than OK, by procedure and status.");
    c!("gateway_nfs_received_bytes_total", Unit::Bytes, "RPC call record bytes received, by procedure.");
    c!("gateway_nfs_sent_bytes_total", Unit::Bytes, "RPC reply record bytes sent, by procedure.");
    h!("gateway_nfs_call_duration_seconds", Unit::Seconds, "NFS call duration, dispatch to reply ready.");
    c!("gateway_nfs_duplicate_requests_total", "Retransmitted calls answered from the reply cache or dropped.");
    c!("gateway_nfs_refused_calls_total", "Calls to programs or versions not served.");
    g!("gateway_nfs_connections_active", "Open NFS connections.");
    c!("gateway_nfs_connections_total", "NFS connections accepted.");
    c!("gateway_chunkstore_written_bytes_total", Unit::Bytes, "Data bytes written to chunk files.");
    c!("gateway_chunkstore_chunks_written_total", "Chunk files written.");
    c!("gateway_chunkstore_read_bytes_total", Unit::Bytes, "Data bytes read (and verified) from chunk files.");
    h!("gateway_chunkstore_barrier_duration_seconds", Unit::Seconds, "Chunk barriers (fdatasync + dir fsync).");
    c!("gateway_gc_passes_total", "Background GC passes finished.");
    c!("gateway_gc_failures_total", "Background GC passes that failed.");
    c!("gateway_gc_chunks_deleted_total", "Dropped chunks deleted by GC after their grace period.");
    c!("gateway_gc_orphan_chunks_deleted_total", "Unreferenced chunks deleted by the orphan scan.");
    c!("gateway_gc_uploads_expired_total", "Completed-upload records expired by GC.");
    h!("gateway_gc_pass_duration_seconds", Unit::Seconds, "Duration of a GC pass and orphan scan.");
    g!("gateway_metastore_size_bytes", Unit::Bytes, "Bytes the metadata store occupies on disk.");
    g!("gateway_data_volume_total_bytes", Unit::Bytes, "Size of the volume holding the data directory.");
    g!("gateway_data_volume_avail_bytes", Unit::Bytes, "Bytes available on that volume.");
    g!("gateway_ready", "1 while /readyz answers 200.");
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown`; returns the tracker of its connections. Also runs the
/// recorder's upkeep until then.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> TaskTracker {
    let tracker = TaskTracker::new();
    {
        let (handle, shutdown) = (handle.clone(), shutdown.clone());
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(UPKEEP_INTERVAL) => handle.run_upkeep(),
                }
            }
        });
    }
    let sd = shutdown.clone();
    acceptor::accept_loop(listener, "metrics", METRICS_CONNECTIONS_MAX, sd, &tracker, move |stream, peer| {
        let (handle, health, shutdown) = (handle.clone(), health.clone(), shutdown.clone());
        async move {
            let svc = service_fn(move |req| {
                let (handle, health) = (handle.clone(), health.clone());
                async move { Ok::<_, Infallible>(answer(&req, &handle, &health).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .max_buf_size(METRICS_REQUEST_HEAD_BYTES_MAX)
                .header_read_timeout(METRICS_HEADER_READ_TIMEOUT)
                .timer(hyper_util::rt::TokioTimer::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        }
    })
    .await;
    tracker.close();
    tracker
}

/// `/readyz`'s answer: 200 only while serving with both stores healthy.
/// A store poisoned by a failed flush refuses every write until the
/// process restarts, so a load balancer must stop sending it traffic.
fn readiness(phase: Phase, poisoned: Option<&'static str>) -> (StatusCode, String) {
    match (phase, poisoned) {
        (Phase::Ready, None) => (StatusCode::OK, "ready\n".into()),
        (Phase::Ready, Some(store)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "poisoned: the {store} failed to make data durable; writes are refused until a restart (see the log)\n"
            ),
        ),
        (Phase::Starting, _) => (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into()),
        (Phase::Draining, _) => (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into()),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r
}

async fn answer<B>(req: &Request<B>, handle: &PrometheusHandle, health: &Health) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n", PLAIN);
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
        "/readyz" => {
            let (status, body) = readiness(health.phase(), health.poisoned());
            text(status, body, PLAIN)
        }
        "/metrics" => {
            let ns = health.ns.get().cloned();
            let ready = readiness(health.phase(), health.poisoned()).0 == StatusCode::OK;
            let handle = handle.clone();
            // statvfs and the metastore's size touch the disk: off the runtime.
            let body = tokio::task::spawn_blocking(move || {
                metrics::gauge!("gateway_ready").set(if ready { 1.0 } else { 0.0 });
                if let Some(ns) = ns {
                    scrape_state(&ns);
                }
                handle.render()
            })
            .await;
            match body {
                Ok(b) => text(StatusCode::OK, b, "text/plain; version=0.0.4; charset=utf-8"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("rendering failed: {e}\n"), PLAIN),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n", PLAIN),
    }
}

/// Values read at scrape time rather than counted as they happen.
fn scrape_state(ns: &Namespace) {
    metrics::counter!("gateway_s3_hidden_invalid_utf8_names_total").absolute(ns.hidden_name_count());
    match ns.metastore_size_bytes() {
        Ok(n) => metrics::gauge!("gateway_metastore_size_bytes").set(n as f64),
        Err(e) => tracing::debug!(error = %e, "metastore size unavailable"),
    }
    match ns.fs_stats() {
        Ok(s) => {
            metrics::gauge!("gateway_data_volume_total_bytes").set(s.total_bytes as f64);
            metrics::gauge!("gateway_data_volume_avail_bytes").set(s.avail_bytes as f64);
        }
        Err(e) => tracing::debug!(error = %e, "volume statistics unavailable"),
    }
}

/// Parses `metrics_listen`: a socket address, or `off`.
pub fn parse_listen(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("metrics_listen: not a socket address like 127.0.0.1:9095, nor \"off\": {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_or_off() {
        assert_eq!(parse_listen("off").unwrap(), None);
        assert_eq!(parse_listen("0.0.0.0:9095").unwrap(), Some("0.0.0.0:9095".parse().unwrap()));
        let e = parse_listen("nowhere").unwrap_err().to_string();
        assert!(e.contains("metrics_listen"), "{e}");
    }

    #[test]
    fn readyz_is_503_while_a_store_is_poisoned() {
        assert_eq!(readiness(Phase::Ready, None).0, StatusCode::OK);
        let (status, body) = readiness(Phase::Ready, Some("chunk store"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("poisoned") && body.contains("chunk store"), "{body}");
        assert_eq!(readiness(Phase::Starting, None).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(Phase::Draining, Some("metadata store")).0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn phases_round_trip() {
        let h = Health::default();
        assert_eq!(h.phase(), Phase::Starting);
        h.set(Phase::Ready);
        assert_eq!(h.phase(), Phase::Ready);
        h.set(Phase::Draining);
        assert_eq!(h.phase(), Phase::Draining);
    }
}
