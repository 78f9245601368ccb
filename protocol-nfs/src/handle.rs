//! File handles: opaque to clients, persistent for us.
//!
//! Layout (29 bytes, big-endian), version 1:
//! `version:u8 ‖ fsid:u64 ‖ export:u64 ‖ ino:u64 ‖ generation:u32`.
//! `export` is the inode of the export's root directory (the namespace
//! root for `/`, the bucket's directory for `/bucket`), so per-export
//! options apply to every handle minted under that export. Nothing in a
//! handle depends on the boot or on a path: handles survive restarts and
//! renames. Inode ids are never reused and the generation is fixed at
//! creation, so a handle to a deleted file can only ever be `STALE`.

/// Current handle format.
pub const HANDLE_VERSION: u8 = 1;
/// Encoded size of a version-1 handle.
pub const HANDLE_BYTES: usize = 29;
/// NFSv3's limit on handle size (RFC 1813).
pub const NFS3_FH_BYTES_MAX: usize = 64;

/// A decoded handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle {
    /// The data directory's filesystem id (a handle from another data
    /// directory is stale, not ours).
    pub fsid: u64,
    /// Inode of the export's root directory.
    pub export: u64,
    /// The inode the handle names.
    pub ino: u64,
    /// The inode's generation when the handle was made.
    pub generation: u32,
}

/// Why bytes are not a handle of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// Wrong size or version: `NFS3ERR_BADHANDLE`.
    Malformed,
}

impl FileHandle {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HANDLE_BYTES);
        v.push(HANDLE_VERSION);
        v.extend_from_slice(&self.fsid.to_be_bytes());
        v.extend_from_slice(&self.export.to_be_bytes());
        v.extend_from_slice(&self.ino.to_be_bytes());
        v.extend_from_slice(&self.generation.to_be_bytes());
        v
    }

    /// Parses the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, HandleError> {
        if b.len() != HANDLE_BYTES || b[0] != HANDLE_VERSION {
            return Err(HandleError::Malformed);
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Ok(FileHandle {
            fsid: u64_at(1),
            export: u64_at(9),
            ino: u64_at(17),
            generation: u32::from_be_bytes(b[25..29].try_into().expect("4 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_reject_foreign_bytes() {
        let h = FileHandle { fsid: 0xF5, export: 1, ino: u64::MAX, generation: 7 };
        let b = h.encode();
        assert_eq!(b.len(), HANDLE_BYTES);
        assert!(b.len() <= NFS3_FH_BYTES_MAX);
        assert_eq!(FileHandle::decode(&b), Ok(h));
        assert_eq!(FileHandle::decode(&b[..28]), Err(HandleError::Malformed));
        let mut v2 = b.clone();
        v2[0] = 2;
        assert_eq!(FileHandle::decode(&v2), Err(HandleError::Malformed));
        assert_eq!(FileHandle::decode(&[]), Err(HandleError::Malformed));
    }
}
