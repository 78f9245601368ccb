//! The NFSv3 front door (issue #4), in progress.
//!
//! What exists: the ONC-RPC layer ([`rpc`]): record marking with
//! multi-fragment records and a cap checked before anything is allocated,
//! and call-header decoding (AUTH_NONE, AUTH_SYS with bounded credentials)
//! with the replies the protocol requires for bad calls. The NFS and MOUNT
//! procedures, handles, exports and the server loop come next.
//!
//! API boundary: this crate is the only one that knows XDR; it will see the
//! namespace through `namespace::Namespace` and `NsError` only.

pub mod rpc;
