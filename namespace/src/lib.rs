//! The one namespace both protocol front doors call.
//!
//! Inodes with stable, never-reused ids; buckets are the top-level
//! directories; files are extents over immutable chunks. Every mutating call
//! is durable when it returns: chunk data is fsync'd, then one metadata
//! transaction makes the change visible, then a group-commit barrier makes
//! it durable. Calls are blocking; async callers use `spawn_blocking`.
//!
//! Architecture invariant: the extents of an inode change only under that
//! inode's write stripe lock ([`locks`]), so a range scan taken under the
//! lock before a transaction is still exact inside it (sled cannot scan in a
//! transaction).

pub mod access;
pub mod clock;
mod data;
mod dirops;
mod error;
mod fsck;
mod full_scan;
mod gc;
mod keys;
pub mod limits;
mod list;
mod locks;
mod multipart;
mod ns;
mod object;
pub mod path;
pub mod record;
pub mod tree;
mod tx;
pub mod upstream;

pub use access::Caller;
pub use clock::{Clock, ManualClock, Nanos, SystemClock};
pub use data::Stability;
pub use dirops::{CreateMode, DirEntry, SetAttr, SetTime};
pub use error::{NsError, NsResult};
pub use fsck::{
    FsckOptions, FsckProblem, FsckProgress, FsckReport, IntegrityReport, ProblemKind, QuarantineRecord, QUARANTINE_DIR,
    QUARANTINE_RECORD_VERSION, QUARANTINE_REPORT,
};
pub use gc::GcReport;
pub use list::{ListEntry, ListPage, ListParams};
pub use multipart::{completion_entries, CompletePart, CompletedUpload, PartInfo, UploadInfo};
pub use ns::{FsStats, Namespace, NamespaceConfig, RecoveryReport, ROOT_INO, SECRET_BYTES};
pub use object::{
    read_ahead_chunks, ObjectInfo, ObjectReader, ObjectWriter, PutOptions, PutTarget, StagedObject, WriteCondition,
    READ_AHEAD_BYTES,
};
pub use record::{Checksum, Inode, Kind, ObjMeta};
pub use tree::Tree;
pub use upstream::{
    CacheStats, CredentialSource, QueueStatus, RemoteObject, UploadBody, UploadReport, Upstream, UpstreamBinding,
    UpstreamError, UpstreamListing, WarmProgress, WarmReport, WARM_PARALLEL_MAX,
};
