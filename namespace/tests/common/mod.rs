#![allow(dead_code)]
//! Helpers shared by the namespace test suites.

use std::sync::Arc;

use namespace::{Caller, Namespace, NamespaceConfig, ROOT_INO};

/// Small chunks so that modest files span many chunks.
pub const TEST_CHUNK_BYTES: usize = 64 << 10;

pub fn config(dir: &std::path::Path) -> NamespaceConfig {
    let mut cfg = NamespaceConfig::new(dir);
    cfg.chunk_size_bytes = TEST_CHUNK_BYTES;
    cfg.meta_cache_bytes = 16 << 20;
    cfg
}

pub fn open(dir: &std::path::Path) -> Arc<Namespace> {
    Arc::new(Namespace::open(config(dir)).unwrap().0)
}

/// A fresh namespace with one bucket `bkt`; returns the bucket's inode.
pub fn fresh() -> (tempfile::TempDir, Arc<Namespace>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let ns = open(dir.path());
    let b = ns.mkdir(&Caller::root(), ROOT_INO, b"bkt", 0o777).unwrap();
    (dir, ns, b.ino)
}

pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn root() -> Caller {
    Caller::root()
}
