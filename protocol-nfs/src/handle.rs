//! File handles: opaque to clients, persistent and unforgeable for us.
//!
//! Layout (45 bytes, big-endian), version 2:
//! `version:u8 ‖ fsid:u64 ‖ export:u64 ‖ ino:u64 ‖ generation:u32 ‖ mac:[u8; 16]`.
//!
//! `export` is the inode of the export's root directory whose options
//! apply to the handle: the namespace root for the root directory itself,
//! the bucket's directory for everything inside a bucket (also when the
//! client mounted `/` and walked into the bucket, see `child_export` in `nfs/mod.rs`). Nothing
//! in a handle depends on the boot or on a path: handles survive restarts
//! and renames. Inode ids are never reused and the generation is fixed at
//! creation, so a handle to a deleted file can only ever be `STALE`.
//!
//! `mac` is HMAC-SHA256 over the first 29 bytes, truncated to 128 bits,
//! under a key derived from the data directory's secret
//! (`Namespace::secret`). The server mints a handle for export E only for
//! an inode it reached from E's root, so a handle that verifies is the
//! server's own statement that the inode lies within E: a client cannot
//! move a handle to another export (and so past `read_only`, `squash` or
//! `clients`), nor name an inode it never looked up. This is what Linux
//! nfsd's `subtree_check` buys with a walk per call; here it costs one
//! HMAC. Version-1 handles (no MAC) are refused as stale: clients
//! remount.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Current handle format.
pub const HANDLE_VERSION: u8 = 2;
/// Bytes of a handle covered by its MAC.
const HANDLE_BODY_BYTES: usize = 29;
/// Bytes of the MAC (128 bits: forging one takes 2^127 tries on average).
const HANDLE_MAC_BYTES: usize = 16;
/// Encoded size of a version-2 handle.
pub const HANDLE_BYTES: usize = HANDLE_BODY_BYTES + HANDLE_MAC_BYTES;
/// NFSv3's limit on handle size (RFC 1813).
pub const NFS3_FH_BYTES_MAX: usize = 64;
/// Domain separation for the handle key: the data directory's secret may
/// key other things, and none of them may verify as a handle.
const HANDLE_KEY_CONTEXT: &[u8] = b"protocol-nfs file handle v2";

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
    /// Wrong size, unknown version or a MAC that does not verify:
    /// `NFS3ERR_BADHANDLE` (the bytes were never minted here).
    Malformed,
    /// A handle in an earlier format (minted before handles were signed):
    /// `NFS3ERR_STALE`, so the client looks the path up again or remounts.
    OldFormat,
}

/// The key that signs and verifies handles. `Debug` does not show it.
#[derive(Clone)]
pub struct HandleKey {
    /// HMAC state after absorbing the key: cloning it saves the key
    /// schedule on every call.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(..)")
    }
}

impl HandleKey {
    /// The handle key derived from a data directory's secret.
    pub fn derive(secret: &[u8; 32]) -> Self {
        let mut kdf = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        kdf.update(HANDLE_KEY_CONTEXT);
        let key = kdf.finalize().into_bytes();
        HandleKey { mac: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length") }
    }

    /// The wire form of `fh`, signed.
    pub fn seal(&self, fh: &FileHandle) -> Vec<u8> {
        let mut v = Vec::with_capacity(HANDLE_BYTES);
        v.push(HANDLE_VERSION);
        v.extend_from_slice(&fh.fsid.to_be_bytes());
        v.extend_from_slice(&fh.export.to_be_bytes());
        v.extend_from_slice(&fh.ino.to_be_bytes());
        v.extend_from_slice(&fh.generation.to_be_bytes());
        debug_assert_eq!(v.len(), HANDLE_BODY_BYTES);
        let mut m = self.mac.clone();
        m.update(&v);
        v.extend_from_slice(&m.finalize().into_bytes()[..HANDLE_MAC_BYTES]);
        v
    }

    /// Parses and verifies the wire form (in constant time over the MAC).
    pub fn open(&self, b: &[u8]) -> Result<FileHandle, HandleError> {
        match b.first() {
            Some(&HANDLE_VERSION) if b.len() == HANDLE_BYTES => {}
            // Version 1 was 29 bytes with no MAC.
            Some(1) if b.len() == HANDLE_BODY_BYTES => return Err(HandleError::OldFormat),
            _ => return Err(HandleError::Malformed),
        }
        let (body, tag) = b.split_at(HANDLE_BODY_BYTES);
        let mut m = self.mac.clone();
        m.update(body);
        m.verify_truncated_left(tag).map_err(|_| HandleError::Malformed)?;
        let u64_at = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        Ok(FileHandle {
            fsid: u64_at(1),
            export: u64_at(9),
            ino: u64_at(17),
            generation: u32::from_be_bytes(body[25..29].try_into().expect("4 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_reject_foreign_bytes() {
        let key = HandleKey::derive(&[7; 32]);
        let h = FileHandle { fsid: 0xF5, export: 1, ino: u64::MAX, generation: 7 };
        let b = key.seal(&h);
        assert_eq!(b.len(), HANDLE_BYTES);
        assert!(b.len() <= NFS3_FH_BYTES_MAX);
        assert_eq!(key.open(&b), Ok(h));
        assert_eq!(key.open(&b[..HANDLE_BYTES - 1]), Err(HandleError::Malformed));
        assert_eq!(key.open(&[b.clone(), vec![0]].concat()), Err(HandleError::Malformed));
        let mut v3 = b.clone();
        v3[0] = 3;
        assert_eq!(key.open(&v3), Err(HandleError::Malformed));
        assert_eq!(key.open(&[]), Err(HandleError::Malformed));
    }

    #[test]
    fn every_edited_byte_breaks_the_mac() {
        let key = HandleKey::derive(&[7; 32]);
        let b = key.seal(&FileHandle { fsid: 1, export: 2, ino: 3, generation: 4 });
        for i in 1..b.len() {
            let mut e = b.clone();
            e[i] ^= 0x01;
            assert_eq!(key.open(&e), Err(HandleError::Malformed), "byte {i} edited");
        }
    }

    #[test]
    fn a_handle_from_another_data_directory_does_not_verify() {
        let h = FileHandle { fsid: 1, export: 2, ino: 3, generation: 4 };
        let b = HandleKey::derive(&[1; 32]).seal(&h);
        assert_eq!(HandleKey::derive(&[2; 32]).open(&b), Err(HandleError::Malformed));
    }

    #[test]
    fn unsigned_version_one_handles_are_stale() {
        let key = HandleKey::derive(&[7; 32]);
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&[0; 28]);
        assert_eq!(key.open(&v1), Err(HandleError::OldFormat));
    }
}
