//! Striped locks: a fixed array indexed by a hash of the id, so memory stays
//! bounded however many inodes or uploads exist.

use std::sync::{Mutex, RwLock};

const STRIPES: usize = 256;

/// Per-inode extent locks: readers share, extent mutators exclude.
pub(crate) struct ExtentLocks(Vec<RwLock<()>>);

impl ExtentLocks {
    pub(crate) fn new() -> Self {
        ExtentLocks((0..STRIPES).map(|_| RwLock::new(())).collect())
    }
    pub(crate) fn get(&self, ino: u64) -> &RwLock<()> {
        &self.0[stripe(ino)]
    }
}

/// Per-upload locks, serializing part uploads with completion and abort.
pub(crate) struct UploadLocks(Vec<Mutex<()>>);

impl UploadLocks {
    pub(crate) fn new() -> Self {
        UploadLocks((0..STRIPES).map(|_| Mutex::new(())).collect())
    }
    pub(crate) fn get(&self, upload: &[u8; 16]) -> &Mutex<()> {
        &self.0[stripe(u64::from_le_bytes(upload[..8].try_into().expect("8")))]
    }
}

fn stripe(id: u64) -> usize {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % STRIPES
}
