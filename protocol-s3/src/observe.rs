//! Observation of one request: the bytes received and sent, and, once the
//! response body is finished (or dropped), one log line and the metrics.
//!
//! The line is written when the body ends rather than when the head is
//! sent, so a GET's duration and byte count cover the whole transfer.
//! Nothing from the request's headers is logged: the `Authorization`
//! header, presigned-URL signatures and secrets never reach a log.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use crate::body::Body;
use crate::error::ErrorCode;

/// A request body that counts the bytes it delivers (as received on the
/// wire, aws-chunked framing included).
pub struct RequestBody {
    inner: Incoming,
    received: Arc<AtomicU64>,
}

impl RequestBody {
    /// Wraps `inner`, adding what it delivers to `received`.
    pub fn new(inner: Incoming, received: Arc<AtomicU64>) -> Self {
        RequestBody { inner, received }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &r {
            if let Some(data) = frame.data_ref() {
                self.received.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What is known of a request once its response head is ready.
pub struct Finished {
    /// The request id sent in `x-amz-request-id`.
    pub id: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The operation (`Endpoint` as text, with any detail), for the log.
    pub op: String,
    /// The operation's name ([`crate::router::Endpoint::name`]), the
    /// metric label.
    pub op_name: &'static str,
    /// The HTTP status sent.
    pub status: u16,
    /// The S3 error code, for error responses.
    pub code: Option<ErrorCode>,
    /// Request body bytes received so far (shared with [`RequestBody`]).
    pub received: Arc<AtomicU64>,
    /// When the request arrived.
    pub started: Instant,
}

impl Finished {
    /// Writes the log line and the metrics.
    fn emit(&self, sent: u64, body_failed: bool) {
        let received = self.received.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        let code = self.code.map_or("", ErrorCode::as_str);
        if self.status >= 500 || body_failed {
            tracing::warn!(
                request_id = %self.id, client = %self.peer, op = %self.op, status = self.status, code,
                bytes_in = received, bytes_out = sent, duration_ms, body_failed, "s3 request"
            );
        } else {
            tracing::info!(
                request_id = %self.id, client = %self.peer, op = %self.op, status = self.status, code,
                bytes_in = received, bytes_out = sent, duration_ms, "s3 request"
            );
        }
        let op = self.op_name;
        metrics::counter!("gateway_s3_requests_total", "op" => op, "status" => self.status.to_string()).increment(1);
        if self.status >= 400 {
            let code = self.code.map_or("unknown", ErrorCode::as_str);
            metrics::counter!("gateway_s3_errors_total", "op" => op, "code" => code).increment(1);
        }
        if body_failed {
            metrics::counter!("gateway_s3_response_body_failures_total", "op" => op).increment(1);
        }
        metrics::counter!("gateway_s3_received_bytes_total", "op" => op).increment(received);
        metrics::counter!("gateway_s3_sent_bytes_total", "op" => op).increment(sent);
        metrics::histogram!("gateway_s3_request_duration_seconds", "op" => op).record(elapsed.as_secs_f64());
    }
}

/// A response body that counts what it sends and reports the request when
/// it ends, fails or is dropped (HEAD, a client gone mid-transfer).
pub struct ObservedBody {
    inner: Body,
    sent: u64,
    failed: bool,
    done: Option<Finished>,
}

impl ObservedBody {
    /// Wraps `inner`; `done` is reported exactly once.
    pub fn wrap(inner: Body, done: Finished) -> Body {
        use http_body_util::BodyExt;
        ObservedBody { inner, sent: 0, failed: false, done: Some(done) }.boxed_unsync()
    }

    fn finish(&mut self) {
        if let Some(d) = self.done.take() {
            d.emit(self.sent, self.failed);
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                self.failed = true;
                self.finish();
            }
            Poll::Ready(None) => self.finish(),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Counts an open connection for as long as it lives.
pub struct ConnectionGauge(());

impl ConnectionGauge {
    /// Counts one more open connection.
    pub fn open() -> Self {
        metrics::gauge!("gateway_s3_connections_active").increment(1.0);
        metrics::counter!("gateway_s3_connections_total").increment(1);
        ConnectionGauge(())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!("gateway_s3_connections_active").decrement(1.0);
    }
}
