//! The NFSv3 front door (RFC 1813): ONC-RPC over TCP (RFC 5531) carrying
//! NFS v3, MOUNT v3 and a minimal portmapper, all on one port.
//!
//! - [`rpc`]: record marking with a size cap checked before allocation,
//!   call headers with bounded AUTH_SYS credentials.
//! - [`args`]: bounded argument decoding (`nfs3_types`' decoder trusts
//!   lengths); undecodable arguments are `GARBAGE_ARGS`.
//! - [`nfs`]: the call context, handle resolution and the dispatch over
//!   [`nfs::Proc`], the closed set of the 22 procedures (name, DRC policy);
//!   the procedures themselves by family in `nfs/attrs.rs`,
//!   `nfs/dirops.rs`, `nfs/readdir.rs` and `nfs/data.rs`.
//! - [`status`]: the one exhaustive mapping `NsError` → `nfsstat3`.
//! - [`reply`]: [`reply::ProcReply`], a procedure's packed reply body with
//!   the status it reports (what the log line and metrics use).
//! - [`mount`]: MOUNT (with its closed [`mount::MountProc`]) and portmap.
//! - [`handle`]: signed persistent handles (fsid, export, inode,
//!   generation, MAC).
//! - [`exports`]: allow-lists, squashing, read-only and sync options.
//! - [`state`]: what every connection shares (namespace, exports, DRC,
//!   handle key, call slots, the write verifier).
//! - [`drc`]: the duplicate request cache that replays replies.
//! - [`server`]: accept loop and connections with bounded concurrency.
//! - [`observe`]: the per-call log line and metrics.
//!
//! Modules import one another in one direction only (no circles): `server`
//! on top; `observe` takes names from `nfs` and `mount`; those sit over
//! `state`, `reply`, `status`, `args` and `rpc`.
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
