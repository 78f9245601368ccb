//! Versioned value encodings. Every value starts with a version byte, then a
//! postcard encoding of that version's struct. Decoding an unknown version is
//! `Corrupt`, never a panic; a new version adds a struct and a migration
//! function here, with a fixture test.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::{NsError, NsResult};

/// Version byte of every record written by this build.
pub const RECORD_VERSION: u8 = 1;

/// Encodes `v` with the current version byte.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    postcard::to_io(v, &mut out).expect("records always serialize");
    out
}

/// Decodes a record written by [`encode`]; `what` names it in errors.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> NsResult<T> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| NsError::Corrupt(format!("{what} record: {e}")))
        }
        Some((v, _)) => Err(NsError::Corrupt(format!("{what} record has unknown version {v}"))),
        None => Err(NsError::Corrupt(format!("{what} record is empty"))),
    }
}

/// What an inode is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// Inode flag: a directory created implicitly by an S3 PUT of a deeper key.
pub const FLAG_AUTO_CREATED: u8 = 1;
/// Inode flag: a directory made (or marked) by an S3 PUT of `dir/`.
pub const FLAG_S3_MARKER: u8 = 2;
/// Inode flag: a hidden inode holding a multipart part's extents.
pub const FLAG_STAGING: u8 = 4;
/// Inode flag: an `objmeta` record exists, so listings and HEAD read it;
/// without the flag they skip that point read (files NFS made).
pub const FLAG_HAS_OBJMETA: u8 = 8;

/// An inode: the attributes of a file, directory or symlink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Inode id; never reused (repeated here so a misfiled record is caught).
    pub ino: u64,
    /// File, directory or symlink.
    pub kind: Kind,
    /// Permission bits, including setuid, setgid and sticky (07777).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Links: names for files; 2 + subdirectories for directories.
    pub nlink: u32,
    /// Logical size in bytes (holes included); entry count for directories.
    pub size: u64,
    /// Last access.
    pub atime: Nanos,
    /// Last content change.
    pub mtime: Nanos,
    /// Last change of anything; strictly increases on every change.
    pub ctime: Nanos,
    /// Handle generation, fixed at creation.
    pub generation: u32,
    /// Parent directory (directories only; 0 otherwise).
    pub parent: u64,
    /// Number of entries (directories only).
    pub entries: u64,
    /// Next readdir cookie to hand out (directories only).
    pub next_cookie: u64,
    /// Bumped by every data change; ETags and checksums name the generation
    /// they describe, so they can never outlive their bytes.
    pub content_gen: u64,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Symlink target (symlinks only).
    pub target: Vec<u8>,
    /// Exclusive-create verifier, so a retransmitted create succeeds.
    pub verifier: Option<[u8; 8]>,
}

impl Inode {
    /// Whether a flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A directory entry: `dentries[parent ‖ name ‖ '/'?]`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dentry {
    /// The child.
    pub ino: u64,
    /// The child's kind (so listings need no inode read).
    pub kind: Kind,
    /// The entry's readdir cookie in its directory.
    pub cookie: u64,
}

/// A readdir position: `dirscan[parent ‖ cookie]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DirScan {
    /// Entry name.
    pub name: Vec<u8>,
    /// The child.
    pub ino: u64,
    /// The child's kind.
    pub kind: Kind,
}

/// One extent: `extents[ino ‖ file offset]`. Extents never overlap; a hole
/// is the absence of an extent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Chunk holding the bytes.
    pub chunk: u64,
    /// Offset of the extent's first byte in the chunk.
    pub chunk_off: u32,
    /// Length in bytes (> 0).
    pub len: u32,
    /// CRC64/NVME of exactly these bytes, when known (whole chunks).
    pub crc64: Option<u64>,
}

/// The chunk id of a remote extent: one whose bytes are not local yet but
/// are those of the file's upstream object (its `remote` record names the
/// key and ETag) at the same offsets. Ids below 16 are never allocated, so
/// no real chunk has this id; `chunk_off` means nothing in a remote extent.
pub const REMOTE_CHUNK: u64 = 0;

impl Extent {
    /// A remote extent of `len` bytes (see [`REMOTE_CHUNK`]).
    pub fn remote(len: u32) -> Self {
        Extent { chunk: REMOTE_CHUNK, chunk_off: 0, len, crc64: None }
    }

    /// Whether the bytes are still upstream only.
    pub fn is_remote(&self) -> bool {
        self.chunk == REMOTE_CHUNK
    }
}

/// Reference count of a chunk: `chunk_refs[chunk]`. A count of 0 means the
/// chunk is queued for GC; no record means the chunk is unreferenced (an
/// orphan from a crash, or an upload still being staged).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// Extents (of files or parts) that point at the chunk.
    pub count: u64,
}

/// A stored checksum of an object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// Algorithm name as S3 spells it (`CRC32`, `CRC64NVME`, `SHA256`...).
    pub algorithm: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
    /// Base64 value as S3 returns it.
    pub value: String,
}

/// S3 metadata of a file: `objmeta[ino]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ObjMeta {
    /// The `content_gen` that `etag`, `checksums` and `part_layout`
    /// describe; when the inode's generation differs they are stale.
    pub etag_gen: u64,
    /// MD5 hex (or `md5-N`) ETag, without quotes.
    pub etag: String,
    /// Checksums supplied or computed at upload.
    pub checksums: Vec<Checksum>,
    /// Multipart layout as runs of (part size, count), for `partNumber`.
    pub part_layout: Vec<(u64, u32)>,
    /// Content-Type, when S3 supplied one.
    pub content_type: Option<String>,
    /// Other standard headers (Cache-Control, Content-Disposition...).
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` pairs (names without the prefix).
    pub user_meta: Vec<(String, String)>,
}

/// State of a multipart upload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum UploadState {
    /// Accepting parts.
    Open,
    /// Completed into `ino` with `etag`; kept so a repeated Complete is
    /// answered with the same result.
    Completed {
        /// The object inode created.
        ino: u64,
        /// Its ETag.
        etag: String,
    },
}

/// A multipart upload: `mpu_uploads[id]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Bucket directory.
    pub bucket: u64,
    /// Bucket name (completion publishes by name, like a PUT).
    pub bucket_name: Vec<u8>,
    /// Object key.
    pub key: Vec<u8>,
    /// Creation time.
    pub created: Nanos,
    /// Initiator's uid.
    pub uid: u32,
    /// Initiator's gid.
    pub gid: u32,
    /// Metadata the object gets on completion.
    pub meta: ObjMeta,
    /// Open or completed.
    pub state: UploadState,
}

/// A multipart part: `mpu_parts[upload ‖ part number]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Bytes.
    pub size: u64,
    /// MD5 hex of the part.
    pub etag: String,
    /// Hidden inode holding the part's extents at offsets from 0.
    pub staging_ino: u64,
    /// Upload time.
    pub last_modified: Nanos,
    /// Checksums supplied with the part.
    pub checksums: Vec<Checksum>,
}

/// Where an inode of an upstream-bound bucket lives upstream: `remote[ino]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    /// A file that is (or was) an upstream object.
    File(RemoteFile),
    /// A directory: the key prefix its entries are listed under.
    Dir {
        /// Bucket directory.
        bucket: u64,
        /// Key of the directory relative to the binding's prefix, ending in
        /// '/' (empty for the bucket itself).
        key: Vec<u8>,
    },
}

/// The upstream object a file's remote extents read from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Bucket directory.
    pub bucket: u64,
    /// Key relative to the binding's prefix.
    pub key: Vec<u8>,
    /// The upstream ETag as the upstream sent it (quotes included): every
    /// ranged GET is conditional on it.
    pub etag: String,
    /// Upstream size in bytes.
    pub size: u64,
    /// Upstream modification time.
    pub mtime: Nanos,
    /// The inode `content_gen` equal to that object: a different current
    /// generation means local changes not yet uploaded.
    pub synced_gen: u64,
}

/// A file of a bound bucket whose local content is not upstream yet:
/// `upload_queue[ino]`. Written in the same transaction as the change that
/// makes the file dirty, so an acknowledged write is never forgotten.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueuedUpload {
    /// Bucket directory.
    pub bucket: u64,
    /// Key to upload to, relative to the binding's prefix.
    pub key: Vec<u8>,
    /// Not before this time (writes push it back by the quiet delay;
    /// failures by a back-off).
    pub due: Nanos,
    /// Failed attempts so far.
    pub attempts: u32,
    /// A key the file was renamed from: deleted upstream once the file is
    /// at `key`.
    pub replaces: Option<Vec<u8>>,
    /// The last failure, for `cache status`.
    pub error: Option<String>,
    /// Refused by the upstream too often: reported, not retried until a
    /// flush or a restart asks again.
    pub poisoned: bool,
}

/// An unlinked inode whose extents are being freed: `orphans[ino]`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// When it was unlinked.
    pub since: Nanos,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the v1 byte format of a record: changing a struct without a new
    /// version and a migration breaks this test.
    #[test]
    fn extent_v1_fixture_decodes() {
        let e = Extent { chunk: 0x1234, chunk_off: 5, len: 4096, crc64: Some(7) };
        let bytes = encode(&e);
        assert_eq!(bytes, vec![1, 0xb4, 0x24, 5, 0x80, 0x20, 1, 7]);
        assert_eq!(decode::<Extent>("extent", &bytes).unwrap(), e);
    }

    #[test]
    fn unknown_versions_and_garbage_are_corrupt() {
        assert!(matches!(decode::<Extent>("extent", &[]), Err(NsError::Corrupt(_))));
        assert!(matches!(decode::<Extent>("extent", &[2, 0]), Err(NsError::Corrupt(_))));
        assert!(matches!(decode::<Extent>("extent", &[1, 0xff]), Err(NsError::Corrupt(_))));
    }
}
