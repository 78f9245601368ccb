//! The S3 front door: HTTP/1.1 (and HTTPS via rustls) on hyper, SigV4
//! verified by re-signing with `aws-sigv4` and SigV2 by HMAC-SHA1,
//! streaming bodies with checksums verified on the way in, and the S3
//! operations over the namespace.
//!
//! API boundary: this crate is the only one that knows HTTP, XML and AWS
//! signatures; it sees the namespace through `namespace::Namespace` and
//! `NsError` only.

pub mod auth;
mod body;
mod checksum;
mod chunked;
pub mod error;
mod observe;
mod ops;
mod payload;
mod reply;
mod request;
pub mod rights;
pub mod router;
mod server;
mod service;
pub mod tls;
mod xml;

pub use auth::{Credential, Keyring};
pub use request::S3State;
pub use rights::{BucketRights, Right};
pub use server::{serve, CONNECTIONS_MAX};
pub use tls::{tls_acceptor, CertStore};
