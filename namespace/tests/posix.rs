//! The POSIX-style operations NFS calls.

mod common;

use common::*;
use namespace::{Caller, CreateMode, Kind, NsError, SetAttr, SetTime, ROOT_INO};

#[test]
fn create_lookup_getattr_and_exclusive_create() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o640, CreateMode::Guarded).unwrap();
    assert_eq!(f.kind, Kind::File);
    assert_eq!(f.mode, 0o640);
    assert_eq!(ns.lookup(&root(), b, b"f").unwrap(), f);
    assert_eq!(ns.getattr(f.ino).unwrap(), f);
    assert!(matches!(ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded), Err(NsError::AlreadyExists)));
    // UNCHECKED returns the existing file
    assert_eq!(ns.create(&root(), b, b"f", 0o600, CreateMode::Unchecked).unwrap().ino, f.ino);
    // EXCLUSIVE: a retransmission with the same verifier succeeds, another verifier fails
    let x = ns.create(&root(), b, b"x", 0o644, CreateMode::Exclusive(*b"verf0001")).unwrap();
    assert_eq!(ns.create(&root(), b, b"x", 0o644, CreateMode::Exclusive(*b"verf0001")).unwrap().ino, x.ino);
    assert!(matches!(
        ns.create(&root(), b, b"x", 0o644, CreateMode::Exclusive(*b"verf0002")),
        Err(NsError::AlreadyExists)
    ));
    assert_eq!(ns.lookup(&root(), b, b".").unwrap().ino, b);
    assert_eq!(ns.lookup(&root(), b, b"..").unwrap().ino, ROOT_INO);
    assert!(matches!(ns.lookup(&root(), b, b"nope"), Err(NsError::NotFound)));
}

#[test]
fn exclusive_create_is_atomic_under_contention() {
    let (_d, ns, b) = fresh();
    let wins = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let (ns, wins) = (&ns, &wins);
            s.spawn(move || {
                if ns.create(&root(), b, b"lock", 0o644, CreateMode::Exclusive([i; 8])).is_ok() {
                    wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(wins.into_inner(), 1, "exactly one exclusive create wins");
}

#[test]
fn write_read_holes_and_random_writes_in_place() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    let data = pattern(200_000, 1); // spans several 64 KiB chunks
    ns.write(&root(), f.ino, 0, &data).unwrap();
    let (got, eof) = ns.read(&root(), f.ino, 0, 300_000).unwrap();
    assert!(eof);
    assert_eq!(got, data);
    // an in-place write in the middle changes only those bytes
    let patch = pattern(1000, 2);
    ns.write(&root(), f.ino, 70_000, &patch).unwrap();
    let mut want = data.clone();
    want[70_000..71_000].copy_from_slice(&patch);
    assert_eq!(ns.read(&root(), f.ino, 0, 300_000).unwrap().0, want);
    // a write past the end leaves a hole of zeros
    ns.write(&root(), f.ino, 500_000, b"tail").unwrap();
    let (got, eof) = ns.read(&root(), f.ino, 199_990, 400_000).unwrap();
    assert!(eof);
    assert_eq!(&got[..10], &want[199_990..]);
    assert!(got[10..300_010].iter().all(|&c| c == 0), "hole reads as zeros");
    assert_eq!(&got[300_010..], b"tail");
    assert_eq!(ns.getattr(f.ino).unwrap().size, 500_004);
    // reads at or past the end
    assert_eq!(ns.read(&root(), f.ino, 500_004, 10).unwrap(), (vec![], true));
    assert_eq!(ns.read(&root(), f.ino, 9_000_000, 10).unwrap(), (vec![], true));
    let (mid, eof) = ns.read(&root(), f.ino, 100, 10).unwrap();
    assert!(!eof);
    assert_eq!(mid, want[100..110]);
    let report = ns.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn sparse_file_past_4_gib() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"big", 0o644, CreateMode::Guarded).unwrap();
    let off = (5u64 << 30) + 12345;
    ns.write(&root(), f.ino, off, b"far away").unwrap();
    ns.write(&root(), f.ino, 0, b"start").unwrap();
    let a = ns.getattr(f.ino).unwrap();
    assert_eq!(a.size, off + 8);
    assert_eq!(ns.read(&root(), f.ino, off - 4, 12).unwrap(), (b"\0\0\0\0far away".to_vec(), true));
    assert_eq!(ns.read(&root(), f.ino, 0, 8).unwrap().0, b"start\0\0\0".to_vec());
    assert_eq!(ns.read(&root(), f.ino, 4u64 << 30, 4).unwrap().0, vec![0; 4]);
}

#[test]
fn truncate_shrinks_and_extends_with_zeros() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    let data = pattern(150_000, 3);
    ns.write(&root(), f.ino, 0, &data).unwrap();
    let before = ns.getattr(f.ino).unwrap();
    let t = ns.setattr(&root(), f.ino, &SetAttr { size: Some(70_000), ..Default::default() }, None).unwrap();
    assert_eq!(t.size, 70_000);
    assert!(t.ctime > before.ctime && t.mtime > before.mtime);
    assert!(t.content_gen > before.content_gen);
    ns.setattr(&root(), f.ino, &SetAttr { size: Some(100_000), ..Default::default() }, None).unwrap();
    let (got, _) = ns.read(&root(), f.ino, 0, 200_000).unwrap();
    assert_eq!(got.len(), 100_000);
    assert_eq!(&got[..70_000], &data[..70_000]);
    assert!(got[70_000..].iter().all(|&c| c == 0), "old bytes never reappear after truncate+extend");
    ns.setattr(&root(), f.ino, &SetAttr { size: Some(0), ..Default::default() }, None).unwrap();
    assert_eq!(ns.read(&root(), f.ino, 0, 10).unwrap(), (vec![], true));
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

#[test]
fn setattr_times_guard_and_ctime_moves() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    let set = SetAttr {
        mtime: Some(SetTime::Client(1_234_567_890_123_456_789)),
        atime: Some(SetTime::Client(42)),
        ..Default::default()
    };
    let a = ns.setattr(&root(), f.ino, &set, Some(f.ctime)).unwrap();
    assert_eq!(a.mtime, 1_234_567_890_123_456_789, "nanosecond precision kept");
    assert_eq!(a.atime, 42);
    assert!(a.ctime > f.ctime);
    // a stale guard changes nothing
    let r = ns.setattr(&root(), f.ino, &SetAttr { mode: Some(0o600), ..Default::default() }, Some(f.ctime));
    assert!(matches!(r, Err(NsError::NotSync)));
    assert_eq!(ns.getattr(f.ino).unwrap().mode, 0o644);
    // every change moves ctime strictly
    let mut last = a.ctime;
    for i in 0..5 {
        let n = ns.setattr(&root(), f.ino, &SetAttr { mode: Some(0o600 + i), ..Default::default() }, None).unwrap();
        assert!(n.ctime > last);
        last = n.ctime;
    }
}

#[test]
fn mkdir_rmdir_and_counts() {
    let (_d, ns, b) = fresh();
    let d = ns.mkdir(&root(), b, b"d", 0o755).unwrap();
    assert_eq!(ns.getattr(b).unwrap().nlink, 3);
    ns.create(&root(), d.ino, b"f", 0o644, CreateMode::Guarded).unwrap();
    assert!(matches!(ns.rmdir(&root(), b, b"d"), Err(NsError::NotEmpty)));
    assert!(matches!(ns.remove(&root(), b, b"d"), Err(NsError::IsADirectory)));
    assert!(matches!(ns.rmdir(&root(), d.ino, b"f"), Err(NsError::NotADirectory)));
    ns.remove(&root(), d.ino, b"f").unwrap();
    ns.rmdir(&root(), b, b"d").unwrap();
    assert!(matches!(ns.getattr(d.ino), Err(NsError::Stale)), "a removed directory's handle is stale");
    assert_eq!(ns.getattr(b).unwrap().nlink, 2);
    assert!(matches!(ns.mkdir(&root(), b, b"d", 0o755).map(|_| ()), Ok(())));
    assert!(matches!(ns.mkdir(&root(), b, b"d", 0o755), Err(NsError::AlreadyExists)));
    // a file and a directory of one name cannot coexist
    assert!(matches!(ns.create(&root(), b, b"d", 0o644, CreateMode::Guarded), Err(NsError::AlreadyExists)));
}

#[test]
fn buckets_are_top_level_directories() {
    let dir = tempfile::tempdir().unwrap();
    let ns = open(dir.path());
    ns.create_bucket(&Caller::user(1000, 1000), b"data-set.1").unwrap();
    assert_eq!(ns.bucket(b"data-set.1").unwrap().uid, 1000);
    assert!(matches!(ns.mkdir(&root(), ROOT_INO, b"Not_A_Bucket", 0o755), Err(NsError::InvalidName(_))));
    assert!(matches!(
        ns.create(&root(), ROOT_INO, b"file", 0o644, CreateMode::Guarded),
        Err(NsError::InvalidArgument(_))
    ));
    let names: Vec<_> = ns.list_buckets().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec![b"data-set.1".to_vec()]);
    let b = ns.bucket(b"data-set.1").unwrap();
    ns.create(&root(), b.ino, b"f", 0o644, CreateMode::Guarded).unwrap();
    assert!(matches!(ns.delete_bucket(b"data-set.1"), Err(NsError::NotEmpty)));
    ns.remove(&root(), b.ino, b"f").unwrap();
    ns.delete_bucket(b"data-set.1").unwrap();
    assert!(matches!(ns.bucket(b"data-set.1"), Err(NsError::NotFound)));
}

#[test]
fn symlink_and_readlink() {
    let (_d, ns, b) = fresh();
    let l = ns.symlink(&root(), b, b"l", b"../target", 0o777).unwrap();
    assert_eq!(l.kind, Kind::Symlink);
    assert_eq!(ns.readlink(l.ino).unwrap(), b"../target");
    assert!(matches!(ns.symlink(&root(), b, b"e", b"", 0o777), Err(NsError::InvalidArgument(_))));
    assert!(matches!(ns.symlink(&root(), b, b"e", &vec![b'a'; 4097], 0o777), Err(NsError::TooLarge(_))));
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    assert!(matches!(ns.readlink(f.ino), Err(NsError::InvalidArgument(_))));
}

#[test]
fn hard_links_share_content_and_count() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, b"shared").unwrap();
    let d = ns.mkdir(&root(), b, b"d", 0o755).unwrap();
    let l = ns.link(&root(), f.ino, d.ino, b"g").unwrap();
    assert_eq!(l.nlink, 2);
    assert_eq!(ns.lookup(&root(), d.ino, b"g").unwrap().ino, f.ino);
    assert!(matches!(ns.link(&root(), d.ino, b, b"dl"), Err(NsError::IsADirectory)));
    assert!(matches!(ns.link(&root(), f.ino, d.ino, b"g"), Err(NsError::AlreadyExists)));
    ns.remove(&root(), b, b"f").unwrap();
    assert_eq!(ns.getattr(f.ino).unwrap().nlink, 1);
    assert_eq!(ns.read(&root(), f.ino, 0, 10).unwrap().0, b"shared");
    ns.remove(&root(), d.ino, b"g").unwrap();
    assert!(matches!(ns.getattr(f.ino), Err(NsError::Stale)), "last link gone: handle stale");
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

#[test]
fn rename_cases() {
    let (_d, ns, b) = fresh();
    let a = ns.mkdir(&root(), b, b"a", 0o755).unwrap();
    let c = ns.mkdir(&root(), a.ino, b"c", 0o755).unwrap();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, b"one").unwrap();
    let g = ns.create(&root(), b, b"g", 0o644, CreateMode::Guarded).unwrap();
    // file over file replaces; the replaced file's handle goes stale
    ns.rename(&root(), b, b"f", b, b"g").unwrap();
    assert_eq!(ns.lookup(&root(), b, b"g").unwrap().ino, f.ino);
    assert!(matches!(ns.lookup(&root(), b, b"f"), Err(NsError::NotFound)));
    assert!(matches!(ns.getattr(g.ino), Err(NsError::Stale)));
    // across directories, handle unchanged
    ns.rename(&root(), b, b"g", c.ino, b"moved").unwrap();
    assert_eq!(ns.read(&root(), f.ino, 0, 10).unwrap().0, b"one");
    // a directory into its own subtree is refused
    assert!(matches!(ns.rename(&root(), b, b"a", c.ino, b"x"), Err(NsError::InvalidArgument(_))));
    assert!(matches!(ns.rename(&root(), b, b"a", a.ino, b"x"), Err(NsError::InvalidArgument(_))));
    // type mismatches
    let e = ns.mkdir(&root(), b, b"e", 0o755).unwrap();
    ns.create(&root(), b, b"h", 0o644, CreateMode::Guarded).unwrap();
    assert!(matches!(ns.rename(&root(), b, b"h", b, b"e"), Err(NsError::IsADirectory)));
    assert!(matches!(ns.rename(&root(), b, b"e", b, b"h"), Err(NsError::NotADirectory)));
    // directory over a non-empty directory fails, over an empty one replaces
    assert!(matches!(ns.rename(&root(), b, b"e", b, b"a"), Err(NsError::NotEmpty)));
    ns.rename(&root(), a.ino, b"c", b, b"e").unwrap();
    assert!(matches!(ns.getattr(e.ino), Err(NsError::Stale)));
    assert_eq!(ns.getattr(c.ino).unwrap().parent, b);
    assert_eq!(ns.lookup(&root(), c.ino, b"moved").unwrap().ino, f.ino);
    // renaming onto itself (or a hard link of itself) is a no-op
    ns.link(&root(), f.ino, c.ino, b"alias").unwrap();
    ns.rename(&root(), c.ino, b"moved", c.ino, b"alias").unwrap();
    assert_eq!(ns.getattr(f.ino).unwrap().nlink, 2);
    // buckets are not renamed
    assert!(matches!(ns.rename(&root(), ROOT_INO, b"bkt", ROOT_INO, b"bbb"), Err(NsError::NotPermitted)));
    assert!(matches!(ns.rename(&root(), b, b"nope", b, b"x"), Err(NsError::NotFound)));
    let report = ns.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn readdir_cookies_survive_changes() {
    let (_d, ns, b) = fresh();
    for i in 0..100 {
        ns.create(&root(), b, format!("f{i:03}").as_bytes(), 0o644, CreateMode::Guarded).unwrap();
    }
    let (page1, eof) = ns.readdir(&root(), b, 0, 10).unwrap();
    assert!(!eof);
    assert_eq!(page1.len(), 10);
    // delete the entry we resume after, and add new ones meanwhile
    let resume = page1.last().unwrap().cookie;
    ns.remove(&root(), b, &page1.last().unwrap().name).unwrap();
    ns.create(&root(), b, b"zz-new", 0o644, CreateMode::Guarded).unwrap();
    let mut names: Vec<Vec<u8>> = page1.iter().map(|e| e.name.clone()).collect();
    let mut cookie = resume;
    loop {
        let (page, eof) = ns.readdir(&root(), b, cookie, 7).unwrap();
        names.extend(page.iter().map(|e| e.name.clone()));
        if eof {
            break;
        }
        cookie = page.last().unwrap().cookie;
    }
    assert_eq!(names.len(), 101, "no entry lost or repeated");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 101);
    assert_eq!(names.last().unwrap(), b"zz-new", "new entries come last");
    // cookies 1 and 2 are reserved for '.' and '..'
    assert!(page1[0].cookie >= 3);
}

#[test]
fn permissions_for_non_root_callers() {
    let (_d, ns, b) = fresh();
    let alice = Caller::user(1000, 1000);
    let bob = Caller::user(1001, 1001);
    let d = ns.mkdir(&alice, b, b"alice", 0o750).unwrap();
    assert_eq!((d.uid, d.gid), (1000, 1000), "owned by the caller");
    let f = ns.create(&alice, d.ino, b"secret", 0o600, CreateMode::Guarded).unwrap();
    ns.write(&alice, f.ino, 0, b"x").unwrap();
    assert!(matches!(ns.lookup(&bob, d.ino, b"secret"), Err(NsError::PermissionDenied)));
    assert!(matches!(ns.create(&bob, d.ino, b"mine", 0o644, CreateMode::Guarded), Err(NsError::PermissionDenied)));
    assert!(matches!(ns.read(&bob, f.ino, 0, 1), Err(NsError::PermissionDenied)));
    assert!(matches!(ns.write(&bob, f.ino, 0, b"y"), Err(NsError::PermissionDenied)));
    assert!(matches!(ns.readdir(&bob, d.ino, 0, 10), Err(NsError::PermissionDenied)));
    // group access through a supplementary group
    let carol = Caller { uid: 1002, gid: 5, groups: vec![1000] };
    assert!(ns.lookup(&carol, d.ino, b"secret").is_ok());
    // only root chowns; owners chmod
    let chown = SetAttr { uid: Some(1001), ..Default::default() };
    assert!(matches!(ns.setattr(&alice, f.ino, &chown, None), Err(NsError::NotPermitted)));
    assert_eq!(ns.setattr(&root(), f.ino, &chown, None).unwrap().uid, 1001);
    assert!(matches!(
        ns.setattr(&alice, f.ino, &SetAttr { mode: Some(0o644), ..Default::default() }, None),
        Err(NsError::NotPermitted)
    ));
    // sticky directory: bob may not remove alice's file
    let tmp = ns.mkdir(&root(), b, b"tmp", 0o1777).unwrap();
    ns.create(&alice, tmp.ino, b"a", 0o644, CreateMode::Guarded).unwrap();
    assert!(matches!(ns.remove(&bob, tmp.ino, b"a"), Err(NsError::PermissionDenied)));
    assert!(matches!(ns.rename(&bob, tmp.ino, b"a", tmp.ino, b"b"), Err(NsError::PermissionDenied)));
    ns.remove(&alice, tmp.ino, b"a").unwrap();
}

#[test]
fn bad_names_and_limits() {
    let (_d, ns, b) = fresh();
    for bad in [&b""[..], b".", b"..", b"a/b", b"nul\0"] {
        assert!(
            matches!(ns.create(&root(), b, bad, 0o644, CreateMode::Guarded), Err(NsError::InvalidName(_))),
            "{bad:?}"
        );
        assert!(matches!(ns.mkdir(&root(), b, bad, 0o755), Err(NsError::InvalidName(_))), "{bad:?}");
    }
    let long = vec![b'n'; 256];
    assert!(matches!(ns.create(&root(), b, &long, 0o644, CreateMode::Guarded), Err(NsError::NameTooLong)));
    ns.create(&root(), b, &long[..255], 0o644, CreateMode::Guarded).unwrap();
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    let max = namespace::limits::FILE_SIZE_BYTES_MAX;
    assert!(matches!(ns.write(&root(), f.ino, max - 1, b"ab"), Err(NsError::TooLarge(_))));
    assert!(matches!(ns.write(&root(), f.ino, u64::MAX, b"a"), Err(NsError::TooLarge(_))));
    assert!(matches!(
        ns.setattr(&root(), f.ino, &SetAttr { size: Some(max + 1), ..Default::default() }, None),
        Err(NsError::TooLarge(_))
    ));
    assert!(matches!(ns.write(&root(), b, 0, b"a"), Err(NsError::IsADirectory)));
    assert!(matches!(ns.getattr(987_654_321), Err(NsError::Stale)));
    // names that are not UTF-8 are fine for POSIX
    ns.create(&root(), b, &[0xff, 0xfe, b'x'], 0o644, CreateMode::Guarded).unwrap();
}

#[test]
fn state_survives_reopen_and_boot_epoch_advances() {
    let dir = tempfile::tempdir().unwrap();
    let (ino, epoch, fsid);
    {
        let ns = open(dir.path());
        let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o755).unwrap();
        let f = ns.create(&root(), b.ino, b"f", 0o644, CreateMode::Guarded).unwrap();
        ns.write(&root(), f.ino, 0, &pattern(100_000, 9)).unwrap();
        (ino, epoch, fsid) = (f.ino, ns.boot_epoch(), ns.fsid());
    }
    let ns = open(dir.path());
    assert!(ns.boot_epoch() > epoch);
    assert_eq!(ns.fsid(), fsid);
    assert_eq!(ns.read(&root(), ino, 0, 200_000).unwrap().0, pattern(100_000, 9), "same inode id after restart");
    let fresh_ino = ns.create(&root(), ns.bucket(b"bkt").unwrap().ino, b"g", 0o644, CreateMode::Guarded).unwrap().ino;
    assert!(fresh_ino > ino, "ids are never reused");
}

/// Regression test (issue #16, deep nesting): the rename loop check walked
/// at most `DIR_DEPTH_MAX` parents up from the destination and, when it
/// found neither the source nor the root, let the rename through, so moving
/// a directory under its own descendant more than 512 levels down cut the
/// subtree off the tree as a cycle. An inconclusive walk now refuses.
#[test]
fn a_directory_cannot_be_moved_under_a_descendant_deeper_than_the_walk_limit() {
    let (_d, ns, b) = fresh();
    let top = ns.mkdir(&root(), b, b"top", 0o755).unwrap();
    let mut deepest = top.ino;
    for _ in 0..namespace::limits::DIR_DEPTH_MAX + 8 {
        deepest = ns.mkdir(&root(), deepest, b"d", 0o755).unwrap().ino;
    }
    let r = ns.rename(&root(), b, b"top", deepest, b"loop");
    assert!(matches!(r, Err(NsError::InvalidArgument(_))), "{r:?}");
    // Nothing moved: `top` is still in the bucket and `deepest` still
    // reaches the root through its parents.
    assert_eq!(ns.lookup(&root(), b, b"top").unwrap().ino, top.ino);
    let mut cur = deepest;
    let mut steps = 0;
    while cur != ROOT_INO {
        cur = ns.getattr(cur).unwrap().parent;
        steps += 1;
        assert!(steps < 2 * namespace::limits::DIR_DEPTH_MAX, "the chain must end at the root");
    }
    // Files need no loop check: one still moves into the deepest directory.
    ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.rename(&root(), b, b"f", deepest, b"f").unwrap();
    // Directory moves whose destination the walk can follow to the root
    // still work.
    ns.mkdir(&root(), b, b"other", 0o755).unwrap();
    ns.rename(&root(), b, b"other", top.ino, b"other").unwrap();
}
