//! What an operation sees of a request: the front door's shared state and
//! the request's context (headers, query, bucket and key, who signed it,
//! the body), with the one way to call the namespace from async code.
//!
//! API boundary: ops take a `ReqCtx` and never see hyper's request.

use std::sync::Arc;

use http::HeaderMap;
use namespace::{Namespace, NsError};

use crate::auth::{Authenticated, Keyring};
use crate::error::{from_ns, Ctx, S3Error};
use crate::observe::RequestBody;
use crate::router::Query;

/// Shared state of the S3 front door.
pub struct S3State {
    /// The namespace.
    pub ns: Arc<Namespace>,
    /// Access keys.
    pub keys: Keyring,
    /// Region reported by GetBucketLocation and HEAD bucket.
    pub region: String,
    /// With virtual-hosted style: requests to `<bucket>.<base>` address
    /// that bucket.
    pub virtual_host_base: Option<String>,
}

/// A request being served.
pub struct ReqCtx {
    /// Shared state.
    pub state: Arc<S3State>,
    /// Headers.
    pub headers: HeaderMap,
    /// Decoded query.
    pub query: Query,
    /// Bucket addressed, if any.
    pub bucket: Option<String>,
    /// Key addressed, if any (exact bytes).
    pub key: Option<Vec<u8>>,
    /// Who signed it.
    pub auth: Authenticated,
    /// The body (counted for the request's log line and metrics).
    pub body: RequestBody,
}

impl ReqCtx {
    /// The bucket (routing guarantees it for bucket and object operations).
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or("")
    }
    /// The key (routing guarantees it for object operations).
    pub fn key(&self) -> &[u8] {
        self.key.as_deref().unwrap_or(b"")
    }
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Runs a blocking namespace call without stalling the runtime.
    pub fn blocking<T>(&self, f: impl FnOnce(&Arc<Namespace>) -> Result<T, NsError>, ctx: Ctx) -> Result<T, S3Error> {
        tokio::task::block_in_place(|| f(&self.state.ns)).map_err(|e| from_ns(e, ctx))
    }
    /// Fails with NoSuchBucket unless the bucket exists.
    pub fn require_bucket(&self) -> Result<namespace::Inode, S3Error> {
        let b = self.bucket().as_bytes().to_vec();
        self.blocking(|ns| ns.bucket(&b), Ctx::Bucket)
    }
}
