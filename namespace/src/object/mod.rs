//! S3-style whole objects over the same inodes: a PUT stages its data in
//! fresh chunks outside the namespace, then one transaction publishes it by
//! swapping the dentry, so no reader ever sees a torn object.
//!
//! - `stage`: [`ObjectWriter`] streams bytes into durable, unreferenced
//!   chunks; [`StagedObject`] deletes them unless published.
//! - `target`: [`PutTarget`] (a write's bucket and parsed key, resolved once
//!   per request) and the one permission walk that both the early refusal
//!   ([`Namespace::check_put_access`]) and the publish run.
//! - `publish`: PUT, CopyObject and the publishing transaction multipart
//!   completion shares.
//! - `read`: key resolution for reads (symlinks inside the bucket followed),
//!   HEAD/GET and [`ObjectReader`], pinned to the content it opened.
//! - `crc`: full-object CRC64/NVME of any file, folded from per-extent CRCs.
//! - `delete`: DELETE and the pruning of directories S3 made implicitly.
//!
//! Invariant: every write of a key goes through `publish` inside one
//! transaction; every check made before it (the early refusal) is advisory
//! and repeated there by the same code.

mod crc;
mod delete;
mod publish;
mod read;
mod stage;
mod target;

pub(crate) use publish::{Publish, RefMode};
pub use read::ObjectReader;
pub use stage::{ObjectWriter, StagedObject};
pub use target::PutTarget;

use crate::limits::{OBJECT_METADATA_BYTES_MAX, USER_METADATA_BYTES_MAX};
use crate::record::{self, Dentry, Inode, ObjMeta};
use crate::tx::Tx;
use crate::{NsError, NsResult};

/// Bytes a sequential object reader asks the kernel to fetch ahead of what
/// it reads: 16 MiB. With 4 MiB chunks, two chunks ahead (8 MiB) left cold
/// reads at 0.55-0.62 of a plain file; see `bench chunkstore`.
pub const READ_AHEAD_BYTES: usize = 16 << 20;

/// Chunks to fetch ahead for a chunk size (at least one).
pub fn read_ahead_chunks(chunk_size_bytes: usize) -> usize {
    (READ_AHEAD_BYTES / chunk_size_bytes.max(1)).max(1)
}

/// A condition on the current object, checked inside the publishing
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum WriteCondition {
    /// No condition.
    #[default]
    None,
    /// `If-None-Match: *`: the key must not exist.
    IfNoneMatchStar,
    /// `If-Match`: the current ETag (unquoted) must be this.
    IfMatch(String),
}

/// Options of a PUT (or of a completion).
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// Content headers, user metadata and checksums; `etag` is filled in
    /// from the data's MD5 unless already set (multipart).
    pub meta: ObjMeta,
    /// Condition checked atomically with the publish.
    pub condition: WriteCondition,
}

/// What HEAD tells about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The inode (a file, or a marker directory).
    pub inode: Inode,
    /// ETag, unquoted: the MD5 (or `md5-N`) for S3-written content, an
    /// opaque dashed value derived from (fsid, inode, content generation)
    /// once NFS changed the content.
    pub etag: String,
    /// Metadata; `checksums` and `part_layout` are empty when stale.
    pub meta: ObjMeta,
}

/// A step of a key walk: a directory and the entry name that led to it.
pub(crate) struct Level {
    pub(crate) dir: Inode,
    pub(crate) name: Vec<u8>,
    pub(crate) dentry: Option<Dentry>,
    pub(crate) dirty: bool,
}

impl Level {
    /// The first level of every key walk: the bucket's directory.
    pub(crate) fn bucket(dir: Inode) -> Self {
        Level { dir, name: Vec::new(), dentry: None, dirty: false }
    }
}

pub(crate) fn synthetic_etag(fsid: u64, inode: &Inode) -> String {
    // The dash keeps MD5-assuming clients (rclone, s3cmd) from comparing it
    // with a local MD5; the 'g' keeps it apart from multipart `md5-N`.
    format!("{fsid:016x}{:016x}-g{}", inode.ino, inode.content_gen)
}

pub(crate) fn check_meta_limits(meta: &ObjMeta) -> NsResult<()> {
    let user: usize = meta.user_meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if user > USER_METADATA_BYTES_MAX {
        return Err(NsError::TooLarge(format!("user metadata over {USER_METADATA_BYTES_MAX} bytes")));
    }
    if record::encode(meta).len() > OBJECT_METADATA_BYTES_MAX {
        return Err(NsError::TooLarge(format!("object metadata over {OBJECT_METADATA_BYTES_MAX} bytes")));
    }
    Ok(())
}

/// Writes back the directories of a key walk that changed.
pub(crate) fn write_back(tx: &mut Tx<'_>, chain: &[Level]) -> NsResult<()> {
    for l in chain.iter().filter(|l| l.dirty) {
        tx.put_inode(&l.dir)?;
    }
    Ok(())
}
