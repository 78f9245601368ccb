//! The NFSv3 front door (RFC 1813): ONC-RPC over TCP (RFC 5531) carrying
//! NFS v3, MOUNT v3 and a minimal portmapper, all on one port.
//!
//! - [`rpc`]: record marking with a size cap checked before allocation,
//!   call headers with bounded AUTH_SYS credentials.
//! - [`args`]: bounded argument decoding (`nfs3_types`' decoder trusts
//!   lengths); replies are `nfs3_types` structs.
//! - [`nfs`]: the 22 procedures over `namespace::Namespace`; [`mount`]:
//!   MOUNT and portmap.
//! - [`handle`]: persistent handles (fsid, export, inode, generation).
//! - [`exports`]: allow-lists, squashing, read-only and sync options.
//! - [`drc`]: the duplicate request cache that replays replies.
//! - [`server`]: accept loop and connections with bounded concurrency.
//! - [`observe`]: the per-call log line and metrics.
//!
//! API boundary: this crate is the only one that knows XDR; it sees the
//! namespace through `Namespace` and `NsError` only.

pub mod args;
pub mod drc;
pub mod exports;
pub mod handle;
pub mod mount;
pub mod nfs;
pub mod observe;
pub mod reply;
pub mod rpc;
pub mod server;
pub mod state;
pub mod status;

pub use exports::{ExportError, ExportOptions, Exports, Squash};
pub use server::serve;
pub use state::{NfsConfig, NfsState};
