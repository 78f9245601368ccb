//! Chunk store behaviour, including injected faults.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chunkstore::{ChunkError, ChunkStore, ChunkStoreConfig, FaultyIo, RealIo, BLOCK_SIZE_BYTES};

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn store(dir: &std::path::Path, chunk: usize) -> ChunkStore {
    let mut cfg = ChunkStoreConfig::new(dir);
    cfg.chunk_size_bytes = chunk;
    ChunkStore::open(&cfg, Arc::new(RealIo)).unwrap()
}

#[test]
fn written_chunks_read_back_at_any_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 20);
    let d = data(3 * BLOCK_SIZE_BYTES + 123, 7);
    let info = s.write_chunk(42, &d).unwrap();
    assert_eq!(info.len, d.len() as u64);
    s.barrier().unwrap();
    for (off, len) in [(0, d.len()), (0, 1), (65535, 2), (100, 70000), (d.len() - 5, 5), (3 * BLOCK_SIZE_BYTES, 123)] {
        let mut buf = vec![0u8; len];
        s.read(42, off as u64, &mut buf).unwrap();
        assert_eq!(buf, d[off..off + len], "range {off}+{len}");
    }
    assert_eq!(s.verify(42).unwrap(), info);
}

#[test]
fn empty_chunk_and_reads_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 20);
    s.write_chunk(1, b"").unwrap();
    s.read(1, 0, &mut []).unwrap();
    s.write_chunk(2, b"abc").unwrap();
    let mut buf = [0u8; 4];
    assert!(matches!(s.read(2, 0, &mut buf), Err(ChunkError::Invalid(_))));
    assert!(matches!(s.read(3, 0, &mut buf), Err(ChunkError::NotFound(3))));
}

#[test]
fn ids_cannot_be_reused_and_sizes_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 4096);
    s.write_chunk(9, b"x").unwrap();
    assert!(matches!(s.write_chunk(9, b"y"), Err(ChunkError::AlreadyExists(9))));
    assert!(matches!(s.write_chunk(10, &[0u8; 4097]), Err(ChunkError::Invalid(_))));
    let mut b = [0u8; 1];
    s.read(9, 0, &mut b).unwrap();
    assert_eq!(&b, b"x", "the original chunk is untouched");
}

#[test]
fn corruption_is_an_error_never_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 20);
    let d = data(200_000, 1);
    s.write_chunk(5, &d).unwrap();
    let path = s.path_of(5);
    let mut raw = std::fs::read(&path).unwrap();
    let at = raw.len() - 10; // in the last data block
    raw[at] ^= 0xFF;
    std::fs::write(&path, &raw).unwrap();
    let mut whole = vec![0u8; d.len()];
    assert!(matches!(s.read(5, 0, &mut whole), Err(ChunkError::Corrupt { id: 5, .. })));
    // blocks not touched by the damage still read correctly
    let mut first = vec![0u8; 1000];
    s.read(5, 0, &mut first).unwrap();
    assert_eq!(first, d[..1000]);
    assert!(matches!(s.verify(5), Err(ChunkError::Corrupt { .. })));
    // a truncated file is corrupt too
    std::fs::write(&path, &raw[..100]).unwrap();
    assert!(matches!(s.read(5, 0, &mut first), Err(ChunkError::Corrupt { .. })));
    // a file whose header names another chunk is corrupt
    s.write_chunk(6, &d).unwrap();
    std::fs::copy(s.path_of(6), s.path_of(5)).unwrap();
    assert!(matches!(s.read(5, 0, &mut first), Err(ChunkError::Corrupt { .. })));
}

#[test]
fn injected_bit_flips_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let s = ChunkStore::open(&ChunkStoreConfig::new(dir.path()), io.clone()).unwrap();
    s.write_chunk(1, &data(100_000, 3)).unwrap();
    io.faults.flip_read_bits.store(true, Ordering::Release);
    let mut buf = vec![0u8; 100_000];
    assert!(matches!(s.read(1, 0, &mut buf), Err(ChunkError::Corrupt { .. })));
}

#[test]
fn a_failed_write_leaves_no_file_and_does_not_poison() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let s = ChunkStore::open(&ChunkStoreConfig::new(dir.path()), io.clone()).unwrap();
    io.faults.fail_write_after.store(1, Ordering::Release);
    assert!(matches!(s.write_chunk(1, b"abc"), Err(ChunkError::Io(_))));
    assert!(!s.path_of(1).exists(), "partial file removed");
    io.faults.fail_write_after.store(0, Ordering::Release);
    s.write_chunk(2, b"abc").unwrap();
}

#[test]
fn a_failed_fsync_poisons_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let s = ChunkStore::open(&ChunkStoreConfig::new(dir.path()), io.clone()).unwrap();
    io.faults.fail_sync_after.store(2, Ordering::Release);
    s.write_chunk(1, b"ok").unwrap();
    assert!(matches!(s.barrier(), Err(ChunkError::Io(_))), "directory fsync fails");
    assert!(matches!(s.write_chunk(2, b"x"), Err(ChunkError::Poisoned)));
    assert!(matches!(s.barrier(), Err(ChunkError::Poisoned)));
    // reopening with a healthy device works again
    let s = ChunkStore::open(&ChunkStoreConfig::new(dir.path()), Arc::new(RealIo)).unwrap();
    s.write_chunk(3, b"x").unwrap();
}

#[test]
fn list_finds_chunks_and_strays() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 20);
    s.write_chunk(0x1234, b"a").unwrap();
    std::fs::write(s.root().join("00").join("junk.tmp"), b"x").unwrap();
    let mut found = s.list().unwrap();
    found.sort_by_key(|c| c.id);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, None);
    assert_eq!(found[1].id, Some(0x1234));
    assert!(s.delete(0x1234).unwrap());
    assert!(!s.delete(0x1234).unwrap(), "delete is idempotent");
}

#[test]
fn quarantine_moves_a_chunk_out_of_the_store_and_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 20);
    let d = data(1000, 3);
    s.write_chunk(7, &d).unwrap();
    s.barrier().unwrap();
    let raw = std::fs::read(s.path_of(7)).unwrap();
    let q = dir.path().join("quarantine").join("chunks");
    let moved = s.quarantine(7, &q).unwrap().expect("the chunk existed");
    assert_eq!(moved, q.join("0000000000000007"));
    assert_eq!(std::fs::read(&moved).unwrap(), raw);
    assert!(matches!(s.verify(7), Err(ChunkError::NotFound(7))));
    assert!(s.list().unwrap().is_empty());
    assert_eq!(s.quarantine(7, &q).unwrap(), None, "nothing left to move");
}

#[test]
fn writes_that_would_eat_the_reserved_free_space_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let avail = {
        let st = nix::sys::statvfs::statvfs(dir.path()).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    };
    // A reserve above what the volume has free: every write is refused,
    // and no file is left behind.
    let mut cfg = ChunkStoreConfig::new(dir.path());
    cfg.free_bytes_reserved = avail + (1 << 30);
    let s = ChunkStore::open(&cfg, Arc::new(RealIo)).unwrap();
    assert!(matches!(s.write_chunk(7, b"data"), Err(ChunkError::NoSpace)));
    assert!(!s.path_of(7).exists());
    assert!(!s.is_poisoned(), "running out of space is not a durability failure");
    drop(s);
    // With room left beyond the reserve, the same write succeeds.
    cfg.free_bytes_reserved = 1 << 20;
    let s = ChunkStore::open(&cfg, Arc::new(RealIo)).unwrap();
    s.write_chunk(7, b"data").unwrap();
    s.barrier().unwrap();
}

/// Counts prefetch hints; everything else is the real thing.
#[derive(Default)]
struct CountingIo {
    hints: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl chunkstore::ChunkIo for CountingIo {
    fn write_new(&self, path: &std::path::Path, parts: &[&[u8]]) -> Result<(), chunkstore::WriteFailure> {
        RealIo.write_new(path, parts)
    }
    fn sync_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        RealIo.sync_file(path)
    }
    fn read_at(&self, path: &std::path::Path, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        RealIo.read_at(path, offset, buf)
    }
    fn sync_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        RealIo.sync_dir(path)
    }
    fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
        RealIo.remove(path)
    }
    fn prefetch(&self, path: &std::path::Path) {
        self.hints.lock().unwrap().push(path.to_path_buf());
    }
}

/// Regression: every S3 request of a sequential reader hinted the next
/// four chunks again, and the kernel walks every cached page of a hinted
/// chunk (over half the CPU of warm 256 KiB GETs). A chunk is now hinted
/// once while it is among the recent hints, and again once it is not.
#[test]
fn a_chunk_is_hinted_once_while_recent() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(CountingIo::default());
    let s = ChunkStore::open(&ChunkStoreConfig::new(dir.path()), io.clone()).unwrap();
    for _ in 0..10 {
        s.prefetch(7);
        s.prefetch(8);
    }
    assert_eq!(io.hints.lock().unwrap().len(), 2, "7 and 8, once each");
    for id in 100..1100 {
        s.prefetch(id); // pushes 7 and 8 out of the recent hints
    }
    let before = io.hints.lock().unwrap().len();
    s.prefetch(7);
    assert_eq!(io.hints.lock().unwrap().len(), before + 1, "hinted again once no longer recent");
}
