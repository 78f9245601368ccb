//! Space reclamation and I/O faults.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chunkstore::FaultyIo;
use common::*;
use namespace::{CreateMode, ManualClock, Namespace, NsError, PutOptions, ROOT_INO};

fn with_clock(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<Namespace> {
    let mut cfg = config(dir);
    cfg.clock = clock;
    cfg.gc_grace = Duration::from_secs(600);
    Arc::new(Namespace::open(cfg).unwrap().0)
}

const T0: i64 = 1_700_000_000_000_000_000;

#[test]
fn gc_waits_for_the_grace_period_and_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let ns = with_clock(dir.path(), clock.clone());
    ns.create_bucket(&root(), b"bkt").unwrap();
    ns.put_object_bytes(&root(), b"bkt", b"k", &pattern(200_000, 1), PutOptions::default()).unwrap();
    let (_, reader) = ns.open_object(&root(), b"bkt", b"k").unwrap();
    ns.delete_object(&root(), b"bkt", b"k").unwrap();
    assert_eq!(ns.run_gc().unwrap().chunks_deleted, 0, "within the grace period nothing goes");
    clock.advance_ns(601 * 1_000_000_000);
    let r = ns.run_gc().unwrap();
    assert_eq!(r.chunks_deleted, 0, "a reader still pins the chunks");
    assert!(r.chunks_pinned > 0);
    let mut buf = vec![0u8; 200_000];
    reader.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(200_000, 1), "the pinned reader reads intact bytes after the delete");
    drop(reader);
    let r = ns.run_gc().unwrap();
    assert_eq!(r.chunks_deleted, 4, "200 KB in 64 KiB chunks");
    let i = ns.check_integrity().unwrap();
    assert!(i.problems.is_empty());
    assert_eq!(i.chunks_unreferenced, 0);
}

#[test]
fn orphan_scan_respects_age_and_staging() {
    let dir = tempfile::tempdir().unwrap();
    let ns = open(dir.path());
    ns.create_bucket(&root(), b"bkt").unwrap();
    // a writer still staging: its chunks are unreferenced but protected
    let mut w = ns.object_writer();
    w.write(&pattern(150_000, 2)).unwrap();
    assert_eq!(ns.scan_orphan_chunks(Duration::ZERO).unwrap(), 0);
    let staged = w.finish().unwrap();
    assert_eq!(ns.scan_orphan_chunks(Duration::ZERO).unwrap(), 0);
    drop(staged); // never published: its chunks are deleted at once
    assert_eq!(ns.check_integrity().unwrap().chunks_unreferenced, 0);
    // a stray file is deleted only once old enough
    let stray = dir.path().join("chunks/00/left-over.tmp");
    std::fs::write(&stray, b"x").unwrap();
    assert_eq!(ns.scan_orphan_chunks(Duration::from_secs(3600)).unwrap(), 0);
    assert_eq!(ns.scan_orphan_chunks(Duration::ZERO).unwrap(), 1);
    assert!(!stray.exists());
}

#[test]
fn corrupt_chunks_are_errors_not_wrong_bytes() {
    let (dir, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, &pattern(100_000, 3)).unwrap();
    // flip a byte in every chunk file
    for shard in std::fs::read_dir(dir.path().join("chunks")).unwrap() {
        for c in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = c.unwrap().path();
            let mut raw = std::fs::read(&p).unwrap();
            let at = raw.len() - 1;
            raw[at] ^= 1;
            std::fs::write(&p, raw).unwrap();
        }
    }
    assert!(matches!(ns.read(&root(), f.ino, 0, 100_000), Err(NsError::Corrupt(_))));
    let report = ns.check_integrity().unwrap();
    assert!(!report.problems.is_empty(), "integrity check reports the damage");
}

#[test]
fn failed_data_writes_change_nothing_and_fsync_failures_poison() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let mut cfg = config(dir.path());
    cfg.chunk_io = io.clone();
    let ns = Arc::new(Namespace::open(cfg).unwrap().0);
    let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o755).unwrap().ino;
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, b"before").unwrap();
    io.faults.fail_write_after.store(1, Ordering::Release);
    assert!(ns.write(&root(), f.ino, 0, b"after!").is_err());
    let put = ns.put_object_bytes(&root(), b"bkt", b"k", b"data", PutOptions::default());
    assert!(put.is_err());
    io.faults.fail_write_after.store(0, Ordering::Release);
    assert_eq!(ns.read(&root(), f.ino, 0, 10).unwrap().0, b"before", "a failed write is not visible");
    assert!(matches!(ns.head_object(&root(), b"bkt", b"k"), Err(NsError::NotFound)));
    let i = ns.check_integrity().unwrap();
    assert!(i.problems.is_empty());
    assert_eq!(i.chunks_unreferenced, 0, "failed writes leave no chunks");
    // an fsync failure makes the store refuse further writes
    assert_eq!(ns.poisoned(), None);
    io.faults.fail_sync_after.store(1, Ordering::Release);
    assert!(ns.write(&root(), f.ino, 0, b"x").is_err());
    assert_eq!(ns.poisoned(), Some("chunk store"), "health checks can tell");
    io.faults.fail_sync_after.store(0, Ordering::Release);
    assert!(matches!(ns.write(&root(), f.ino, 0, b"y"), Err(NsError::Unavailable(_))));
    assert_eq!(ns.read(&root(), f.ino, 0, 10).unwrap().0, b"before");
}

#[test]
fn deferred_startup_scan_deletes_only_what_an_earlier_run_left() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ns = open(dir.path());
        ns.create_bucket(&root(), b"bkt").unwrap();
        ns.put_object_bytes(&root(), b"bkt", b"kept", &pattern(100_000, 1), PutOptions::default()).unwrap();
    }
    // What a crash leaves: chunk files of ids the earlier run allocated
    // (below the largest id in use) that nothing references, and a stray.
    let chunk_path = |id: u64| dir.path().join(format!("chunks/{:02x}/{id:016x}", (id >> 8) % 256));
    let max_in_use = (1..10_000u64).filter(|&id| chunk_path(id).exists()).max().unwrap();
    let leftovers: Vec<u64> = (1..max_in_use).filter(|&id| !chunk_path(id).exists()).take(3).collect();
    assert_eq!(leftovers.len(), 3, "ids below {max_in_use}");
    for &id in &leftovers {
        std::fs::write(chunk_path(id), b"interrupted write").unwrap();
    }
    let old_stray = dir.path().join("chunks/00/old-stray.tmp");
    std::fs::write(&old_stray, b"x").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&old_stray).unwrap().set_modified(an_hour_ago).unwrap();
    let mut cfg = config(dir.path());
    cfg.defer_startup_orphan_scan = true;
    let (ns, report) = Namespace::open(cfg).unwrap();
    let ns = Arc::new(ns);
    assert_eq!(report.orphan_chunks_deleted, 0, "deferred: open does not scan");
    assert!(leftovers.iter().all(|&id| chunk_path(id).exists()));
    // Work of this run: a writer staging now and a fresh stray file.
    let mut w = ns.object_writer();
    w.write(&pattern(150_000, 3)).unwrap();
    let new_stray = dir.path().join("chunks/01/new-stray.tmp");
    std::fs::write(&new_stray, b"y").unwrap();
    assert_eq!(ns.scan_orphan_chunks_from_before_start().unwrap(), 4, "three old chunks and the old stray");
    assert!(leftovers.iter().all(|&id| !chunk_path(id).exists()));
    assert!(new_stray.exists(), "a file of this run is not touched");
    let staged = w.finish().unwrap();
    ns.put_object(&root(), b"bkt", b"new", staged, PutOptions::default()).unwrap();
    let (_, r) = ns.open_object(&root(), b"bkt", b"kept").unwrap();
    let mut buf = vec![0u8; 100_000];
    r.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(100_000, 1), "referenced data is untouched");
    std::fs::remove_file(&new_stray).unwrap();
    let i = ns.check_integrity().unwrap();
    assert!(i.problems.is_empty(), "{:?}", i.problems);
    assert_eq!(i.chunks_unreferenced, 0);
}
