//! One suite, every engine: the namespace may rely only on what passes here.

use std::ops::Bound;
use std::sync::Arc;

use metastore::{Abort, Direction, MemStore, MetaError, MetaStore, Schema, SledConfig, SledStore, TreeId};

fn engines() -> Vec<(&'static str, Arc<dyn MetaStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(&SledConfig::new(dir.path().join("meta")), SCHEMA).unwrap();
    vec![("mem", Arc::new(MemStore::new(SCHEMA)), None), ("sled", Arc::new(sled), Some(dir))]
}

/// The trees these tests use: any caller's schema works the same.
const SCHEMA: Schema = &["sys", "inodes", "dentries", "orphans", "extents"];
const SYS: TreeId = TreeId(0);
const INODES: TreeId = TreeId(1);
const DENTRIES: TreeId = TreeId(2);
const ORPHANS: TreeId = TreeId(3);
const EXTENTS: TreeId = TreeId(4);

fn put(s: &dyn MetaStore, t: TreeId, k: &[u8], v: &[u8]) {
    s.transact(&mut |tx| {
        tx.put(t, k, v).map_err(|_| Abort)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn get_put_delete_round_trip() {
    for (name, s, _d) in engines() {
        assert_eq!(s.get(INODES, b"k").unwrap(), None, "{name}");
        put(&*s, INODES, b"k", b"v1");
        assert_eq!(s.get(INODES, b"k").unwrap().as_deref(), Some(&b"v1"[..]), "{name}");
        // trees are separate keyspaces
        assert_eq!(s.get(DENTRIES, b"k").unwrap(), None, "{name}");
        s.transact(&mut |tx| tx.del(INODES, b"k").map_err(|_| Abort)).unwrap();
        assert_eq!(s.get(INODES, b"k").unwrap(), None, "{name}");
    }
}

#[test]
fn aborted_transaction_writes_nothing() {
    for (name, s, _d) in engines() {
        let r = s.transact(&mut |tx| {
            tx.put(INODES, b"a", b"1").map_err(|_| Abort)?;
            tx.put(DENTRIES, b"b", b"2").map_err(|_| Abort)?;
            Err(Abort)
        });
        assert!(matches!(r, Err(MetaError::Aborted)), "{name}");
        assert_eq!(s.get(INODES, b"a").unwrap(), None, "{name}");
        assert_eq!(s.get(DENTRIES, b"b").unwrap(), None, "{name}");
    }
}

#[test]
fn transaction_reads_its_own_writes_across_trees() {
    for (name, s, _d) in engines() {
        put(&*s, SYS, b"counter", &[1]);
        let mut seen = Vec::new();
        s.transact(&mut |tx| {
            let c = tx.get(SYS, b"counter").map_err(|_| Abort)?.unwrap();
            tx.put(SYS, b"counter", &[c[0] + 1]).map_err(|_| Abort)?;
            tx.put(ORPHANS, b"x", b"y").map_err(|_| Abort)?;
            seen = vec![tx.get(SYS, b"counter").map_err(|_| Abort)?.unwrap()[0]];
            tx.del(ORPHANS, b"x").map_err(|_| Abort)?;
            assert_eq!(tx.get(ORPHANS, b"x").map_err(|_| Abort)?, None);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![2], "{name}");
        assert_eq!(s.get(SYS, b"counter").unwrap(), Some(vec![2]), "{name}");
    }
}

#[test]
fn scans_are_ordered_bounded_and_reversible() {
    for (name, s, _d) in engines() {
        for k in [&b"a-c"[..], b"a.d", b"a/", b"a/b", b"a0", b"b"] {
            put(&*s, DENTRIES, k, k);
        }
        let keys = |r: Vec<(Vec<u8>, Vec<u8>)>| r.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        let all = s.scan(DENTRIES, (Bound::Unbounded, Bound::Unbounded), 100, Direction::Forward).unwrap();
        assert_eq!(
            keys(all),
            vec![b"a-c".to_vec(), b"a.d".to_vec(), b"a/".to_vec(), b"a/b".to_vec(), b"a0".to_vec(), b"b".to_vec()],
            "{name}: raw byte order"
        );
        let page = s.scan(DENTRIES, (Bound::Excluded(b"a.d"), Bound::Unbounded), 2, Direction::Forward).unwrap();
        assert_eq!(keys(page), vec![b"a/".to_vec(), b"a/b".to_vec()], "{name}: exclusive start + limit");
        let last_le = s.scan(DENTRIES, (Bound::Unbounded, Bound::Included(b"a/zz")), 1, Direction::Reverse).unwrap();
        assert_eq!(keys(last_le), vec![b"a/b".to_vec()], "{name}: seek to last key <= x");
        let r = metastore::prefix_range(b"a/");
        let pre = s.scan(DENTRIES, metastore::as_ref_range(&r), 10, Direction::Forward).unwrap();
        assert_eq!(keys(pre), vec![b"a/".to_vec(), b"a/b".to_vec()], "{name}: prefix");
        let inverted =
            s.scan(DENTRIES, (Bound::Included(b"b"), Bound::Excluded(b"a")), 10, Direction::Forward).unwrap();
        assert!(inverted.is_empty(), "{name}: inverted range is empty");
    }
}

#[test]
fn ids_are_unique() {
    for (name, s, _d) in engines() {
        let mut ids: Vec<u64> = (0..1000).map(|_| s.next_id().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1000, "{name}");
    }
}

#[test]
fn concurrent_increments_are_serializable() {
    for (name, s, _d) in engines() {
        put(&*s, SYS, b"n", &0u64.to_be_bytes());
        std::thread::scope(|sc| {
            for _ in 0..4 {
                let s = &s;
                sc.spawn(move || {
                    for _ in 0..50 {
                        s.transact(&mut |tx| {
                            let v = tx.get(SYS, b"n").map_err(|_| Abort)?.unwrap();
                            let n = u64::from_be_bytes(v.try_into().unwrap()) + 1;
                            tx.put(SYS, b"n", &n.to_be_bytes()).map_err(|_| Abort)
                        })
                        .unwrap();
                    }
                });
            }
        });
        let v = s.get(SYS, b"n").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), 200, "{name}");
    }
}

#[test]
fn sled_synced_commits_and_ids_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SledConfig::new(dir.path().join("meta"));
    let max_id;
    {
        let s = SledStore::open(&cfg, SCHEMA).unwrap();
        for i in 0u32..100 {
            put(&s, EXTENTS, &i.to_be_bytes(), b"v");
        }
        max_id = (0..10).map(|_| s.next_id().unwrap()).max().unwrap();
        s.sync().unwrap();
    }
    let s = SledStore::open(&cfg, SCHEMA).unwrap();
    let all = s.scan(EXTENTS, (Bound::Unbounded, Bound::Unbounded), 1000, Direction::Forward).unwrap();
    assert_eq!(all.len(), 100);
    assert!(s.next_id().unwrap() > max_id, "ids are never reused across reopen");
}

/// Regression: reopening while another handle still holds sled's lock
/// (as sled's flusher thread does for a moment after a drop) used to fail
/// at once with "could not acquire lock"; it now waits for the lock.
#[test]
fn sled_open_waits_for_a_held_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SledConfig::new(dir.path().join("meta"));
    let first = SledStore::open(&cfg, SCHEMA).unwrap();
    put(&first, SYS, b"k", b"v");
    first.sync().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let second = SledStore::open(&cfg, SCHEMA).expect("open waits until the first handle is gone");
    releaser.join().unwrap();
    assert_eq!(second.get(SYS, b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn sled_reopens_immediately_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SledConfig::new(dir.path().join("meta"));
    for i in 0u8..20 {
        let s = SledStore::open(&cfg, SCHEMA).unwrap();
        put(&s, SYS, b"k", &[i]);
        s.sync().unwrap();
        drop(s);
    }
    let s = SledStore::open(&cfg, SCHEMA).unwrap();
    assert_eq!(s.get(SYS, b"k").unwrap(), Some(vec![19]));
}

/// An open that cannot get the lock within `lock_wait` fails with `Locked`
/// (offline tools such as fsck fail fast on a directory a gateway holds).
#[test]
fn sled_open_gives_up_after_its_lock_wait() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SledConfig::new(dir.path().join("meta"));
    let _held = SledStore::open(&cfg, SCHEMA).unwrap();
    let mut quick = cfg.clone();
    quick.lock_wait = std::time::Duration::from_millis(100);
    let t = std::time::Instant::now();
    match SledStore::open(&quick, SCHEMA) {
        Err(metastore::MetaError::Locked(p)) => assert_eq!(p, cfg.path),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(3));
}
