//! fsck: damage a data directory on purpose, case by case, and check that
//! `Namespace::fsck` finds each case, that repair fixes or quarantines it
//! without touching intact data, and that a second check is clean.

mod common;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{config, pattern, root};
use namespace::record::{self, ChunkRef, Dentry, DirScan, Extent, Inode, Kind, Orphan};
use namespace::Tree;
use namespace::{FsckOptions, FsckReport, Namespace, NsError, ProblemKind, PutOptions, ROOT_INO};

const GRACE: Duration = Duration::from_secs(600);

fn opts(repair: bool) -> FsckOptions {
    FsckOptions { repair, grace: GRACE, online: false }
}

fn fsck(ns: &Namespace, repair: bool) -> FsckReport {
    ns.fsck(&opts(repair), &mut |_| {}).unwrap()
}

fn kinds(r: &FsckReport) -> BTreeSet<ProblemKind> {
    r.problems.iter().map(|p| p.kind).collect()
}

fn pair(a: u64, b: u64) -> Vec<u8> {
    [a.to_be_bytes(), b.to_be_bytes()].concat()
}

fn dentry_key(parent: u64, name: &[u8], dir: bool) -> Vec<u8> {
    let mut k = parent.to_be_bytes().to_vec();
    k.extend_from_slice(name);
    if dir {
        k.push(b'/');
    }
    k
}

/// The chunks an inode's extents use, in offset order.
fn chunks_of(ns: &Namespace, ino: u64) -> Vec<u64> {
    ns.debug_raw_scan(Tree::Extents)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k[..8] == ino.to_be_bytes())
        .map(|(_, v)| record::decode::<Extent>("extent", &v).unwrap().chunk)
        .collect()
}

fn inode(ns: &Namespace, ino: u64) -> Inode {
    record::decode("inode", &ns.debug_raw_get(Tree::Inodes, &ino.to_be_bytes()).unwrap().unwrap()).unwrap()
}

fn put_inode(ns: &Namespace, n: &Inode) {
    ns.debug_raw_put(Tree::Inodes, &n.ino.to_be_bytes(), &record::encode(n)).unwrap();
}

fn put(ns: &Arc<Namespace>, key: &str, data: &[u8]) -> u64 {
    ns.put_object_bytes(&root(), b"bkt", key.as_bytes(), data, PutOptions::default()).unwrap().inode.ino
}

fn age(path: &std::path::Path, by: Duration) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

/// An unused chunk id in its proper shard directory.
fn orphan_chunk(ns: &Namespace, id: u64, old: bool) -> std::path::PathBuf {
    let p = ns.debug_chunk_path(id);
    std::fs::write(&p, b"leftover bytes of a chunk whose metadata never committed").unwrap();
    if old {
        age(&p, Duration::from_secs(3600));
    }
    p
}

#[test]
fn a_healthy_directory_is_clean_and_the_check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap();
    put(&ns, "a/b/c", &pattern(200_000, 1));
    put(&ns, "d", &pattern(10, 2));
    let b = ns.lookup(&root(), ROOT_INO, b"bkt").unwrap().ino;
    let f = ns.create(&root(), b, b"posix", 0o644, namespace::CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, &pattern(70_000, 3)).unwrap();
    ns.link(&root(), f.ino, b, b"hardlink").unwrap();
    let young = orphan_chunk(&ns, 0x7000_0001, false);

    let dump = |ns: &Namespace| -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        Tree::ALL.iter().map(|t| ns.debug_raw_scan(*t).unwrap()).collect()
    };
    let before = dump(&ns);
    let mut phases = Vec::new();
    let r = ns
        .fsck(&opts(false), &mut |p| {
            if let namespace::FsckProgress::Phase { name, .. } = p {
                phases.push(name)
            }
        })
        .unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
    assert_eq!(dump(&ns), before, "a check without repair writes nothing");
    assert!(young.exists());
    assert_eq!(r.files, 3, "two objects and one POSIX file");
    assert_eq!(r.directories, 4, "root, bkt, a, a/b");
    assert_eq!(r.chunks_referenced, r.chunks_verified);
    assert_eq!(r.bytes_verified, 200_000 + 10 + 70_000);
    assert_eq!(r.chunks_unreferenced_ok, 1, "a young unreferenced chunk is in flight, not a problem");
    assert_eq!(phases, ["metadata", "chunk files", "verifying chunks"]);
}

#[test]
fn every_kind_of_damage_is_found_then_repaired_or_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap().ino;
    let intact = pattern(150_000, 10);
    let keep = put(&ns, "keep/intact", &intact);
    let shared_data = pattern(100_000, 11);
    let counted = put(&ns, "counted", &shared_data);
    let flip = put(&ns, "damaged/flip", &pattern(100_000, 12));
    let trunc = put(&ns, "damaged/trunc", &pattern(100_000, 13));
    let gone = put(&ns, "damaged/gone", &pattern(100_000, 14));
    let linked = ns.create(&root(), b, b"linked", 0o644, namespace::CreateMode::Guarded).unwrap().ino;
    ns.write(&root(), linked, 0, b"hard-linked bytes").unwrap();
    let sub = ns.mkdir(&root(), b, b"sub", 0o755).unwrap().ino;
    ns.create(&root(), sub, b"child", 0o644, namespace::CreateMode::Guarded).unwrap();
    let young = orphan_chunk(&ns, 0x7100_0001, false);
    let clean = fsck(&ns, false);
    assert!(clean.is_clean(), "{:#?}", clean.problems);

    // Leftovers: an unreferenced chunk file older than the grace.
    let old = orphan_chunk(&ns, 0x7200_0001, true);

    // Chunks: a flipped bit, a truncated file, a deleted file.
    let p = ns.debug_chunk_path(chunks_of(&ns, flip)[0]);
    let mut raw = std::fs::read(&p).unwrap();
    raw[64 + 2 * 4 + 5000] ^= 0x10;
    std::fs::write(&p, &raw).unwrap();
    let p = ns.debug_chunk_path(chunks_of(&ns, trunc)[1]);
    let len = std::fs::metadata(&p).unwrap().len();
    OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 1000).unwrap();
    let gone_chunk = chunks_of(&ns, gone)[0];
    std::fs::remove_file(ns.debug_chunk_path(gone_chunk)).unwrap();
    // Metadata: a wrong link count, a wrong child count, a dangling entry,
    // a wrong reference count, an unreaped orphan, an undecodable inode.
    let mut n = inode(&ns, linked);
    n.nlink = 3;
    put_inode(&ns, &n);
    let mut d = inode(&ns, sub);
    d.entries = 5;
    d.size = 5;
    put_inode(&ns, &d);
    let ghost = 0x00de_ad00_u64;
    let cookie = inode(&ns, b).next_cookie;
    ns.debug_raw_put(
        Tree::Dentries,
        &dentry_key(b, b"ghost", false),
        &record::encode(&Dentry { ino: ghost, kind: Kind::File, cookie }),
    )
    .unwrap();
    ns.debug_raw_put(
        Tree::Dirscan,
        &pair(b, cookie),
        &record::encode(&DirScan { name: b"ghost".to_vec(), ino: ghost, kind: Kind::File }),
    )
    .unwrap();
    let mut bd = inode(&ns, b);
    bd.entries += 1;
    bd.size += 1;
    bd.next_cookie += 1;
    put_inode(&ns, &bd);
    let shared = chunks_of(&ns, counted)[0];
    ns.debug_raw_put(Tree::ChunkRefs, &shared.to_be_bytes(), &record::encode(&ChunkRef { count: 7 })).unwrap();
    ns.debug_raw_put(Tree::Orphans, &0x00be_ef00_u64.to_be_bytes(), &record::encode(&Orphan { since: 0 })).unwrap();
    ns.debug_raw_put(Tree::Inodes, &0x00ba_d000_u64.to_be_bytes(), &[1, 0xff, 0xff]).unwrap();

    let r = fsck(&ns, false);
    let found = kinds(&r);
    for k in [
        ProblemKind::ChunkCorrupt,
        ProblemKind::ChunkMissing,
        ProblemKind::OrphanChunk,
        ProblemKind::LinkCount,
        ProblemKind::ChildCount,
        ProblemKind::DanglingDentry,
        ProblemKind::RefcountMismatch,
        ProblemKind::OrphanInode,
        ProblemKind::UndecodableRecord,
    ] {
        assert!(found.contains(&k), "{k:?} not found in {:#?}", r.problems);
    }
    let has = |kind: ProblemKind, text: &str| r.problems.iter().any(|p| p.kind == kind && p.to_string().contains(text));
    assert!(has(ProblemKind::ChunkCorrupt, "bkt/damaged/flip"), "{:#?}", r.problems);
    assert!(has(ProblemKind::ChunkCorrupt, "bkt/damaged/trunc"), "{:#?}", r.problems);
    assert!(has(ProblemKind::ChunkMissing, "bkt/damaged/gone"), "{:#?}", r.problems);
    assert!(has(ProblemKind::OrphanChunk, "0000000072000001"));
    assert!(!r.problems.iter().any(|p| p.to_string().contains("0000000071000001")), "young orphans are spared");
    assert!(has(ProblemKind::LinkCount, &format!("inode {linked} nlink 3 but 1 names")));
    assert!(has(ProblemKind::ChildCount, &format!("directory {sub} counts 5 entries")));
    assert!(has(ProblemKind::DanglingDentry, "\"ghost\""));
    assert!(has(
        ProblemKind::RefcountMismatch,
        &format!("chunk {shared:016x} is used by 1 extents but has a count of 7")
    ));
    assert!(r.remaining.is_empty() && r.quarantined.is_empty(), "nothing repaired without --repair");

    // Repair.
    let r = fsck(&ns, true);
    assert!(r.remaining.is_empty(), "repair left {:#?}", r.remaining);
    for p in &r.problems {
        assert!(p.repair.is_some(), "not repaired: {p}");
    }
    assert!(!old.exists(), "the old orphan chunk is deleted");
    assert!(young.exists(), "the young one is not");
    let q = dir.path().join("quarantine");
    assert!(q.join("chunks").join(format!("{:016x}", chunks_of_quarantined(&r, "flip"))).exists());
    let files: BTreeSet<String> =
        r.quarantined.iter().filter(|q| q.what == "file").flat_map(|q| q.paths.clone()).collect();
    assert_eq!(
        files,
        ["bkt/damaged/flip", "bkt/damaged/gone", "bkt/damaged/trunc"].map(String::from).into(),
        "{:#?}",
        r.quarantined
    );
    let report_text = std::fs::read_to_string(q.join("quarantine.jsonl")).unwrap();
    assert!(report_text.contains("\"path") && report_text.contains("bkt/damaged/gone"));

    // Damaged files are gone from the namespace; intact data is untouched.
    for k in ["damaged/flip", "damaged/trunc", "damaged/gone"] {
        assert!(matches!(ns.head_object(&root(), b"bkt", k.as_bytes()), Err(NsError::NotFound)), "{k}");
    }
    assert_eq!(ns.read(&root(), keep, 0, 1 << 20).unwrap().0, intact);
    assert_eq!(ns.read(&root(), counted, 0, 1 << 20).unwrap().0, shared_data);
    assert_eq!(ns.read(&root(), linked, 0, 100).unwrap().0, b"hard-linked bytes");
    assert_eq!(ns.getattr(linked).unwrap().nlink, 1);
    assert_eq!(ns.readdir(&root(), sub, 0, 100).unwrap().0.len(), 1);
    assert!(ns.lookup(&root(), b, b"ghost").is_err());

    // A second check is clean and lists what was quarantined.
    let again = fsck(&ns, false);
    assert!(again.is_clean(), "{:#?}", again.problems);
    assert_eq!(again.quarantined.len(), r.quarantined.len());
    assert!(ns.check_integrity().unwrap().problems.is_empty());
    // ... also after a restart (recovery reaps and collects as usual).
    drop(ns);
    let ns = Namespace::open(config(dir.path())).unwrap().0;
    let after = fsck(&ns, false);
    assert!(after.is_clean(), "{:#?}", after.problems);
    assert_eq!(ns.read(&root(), keep, 0, 1 << 20).unwrap().0, intact);
}

/// The quarantined chunk of the file whose path contains `name`.
fn chunks_of_quarantined(r: &FsckReport, name: &str) -> u64 {
    r.problems
        .iter()
        .find(|p| p.kind == ProblemKind::ChunkCorrupt && p.paths.iter().any(|x| x.contains(name)))
        .and_then(|p| p.chunk)
        .expect("a corrupt chunk for the file")
}

#[test]
fn a_referenced_chunk_is_never_deleted_even_when_its_count_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap();
    let data = pattern(100_000, 5);
    let ino = put(&ns, "k", &data);
    for c in chunks_of(&ns, ino) {
        ns.debug_raw_del(Tree::ChunkRefs, &c.to_be_bytes()).unwrap();
        age(&ns.debug_chunk_path(c), Duration::from_secs(7200));
    }
    let r = fsck(&ns, true);
    assert_eq!(kinds(&r), [ProblemKind::RefcountMismatch].into(), "{:#?}", r.problems);
    assert!(r.remaining.is_empty());
    assert_eq!(ns.read(&root(), ino, 0, 1 << 20).unwrap().0, data);
    drop(ns);
    let ns = Namespace::open(config(dir.path())).unwrap().0;
    assert_eq!(ns.read(&root(), ino, 0, 1 << 20).unwrap().0, data, "recovery's orphan scan spares them too");
    assert!(fsck(&ns, false).is_clean());
}

#[test]
fn a_missing_inode_makes_its_names_dangling_and_repair_recounts_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap().ino;
    let lost = put(&ns, "lost", b"bytes");
    put(&ns, "kept", b"kept");
    ns.debug_raw_del(Tree::Inodes, &lost.to_be_bytes()).unwrap();
    let r = fsck(&ns, false);
    assert!(kinds(&r).contains(&ProblemKind::DanglingDentry), "{:#?}", r.problems);
    assert!(kinds(&r).contains(&ProblemKind::BadExtent), "its extents belong to no inode");
    let r = fsck(&ns, true);
    assert!(r.remaining.is_empty(), "{:#?}", r.remaining);
    assert_eq!(inode(&ns, b).entries, 1);
    assert_eq!(ns.readdir(&root(), b, 0, 100).unwrap().0.len(), 1);
    assert!(fsck(&ns, false).is_clean());
}

#[test]
fn offline_open_fails_fast_when_the_directory_is_locked_and_online_repair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap();
    put(&ns, "k", b"v");
    let mut cfg = config(dir.path());
    cfg.meta_lock_wait = Duration::from_millis(200);
    let t = std::time::Instant::now();
    match Namespace::open_offline(cfg) {
        Err(NsError::Unavailable(m)) => assert!(m.contains("locked"), "{m}"),
        other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // Online: read-only and confirmed; repair needs exclusive access.
    let online = FsckOptions { repair: false, grace: GRACE, online: true };
    assert!(ns.fsck(&online, &mut |_| {}).unwrap().is_clean());
    let bad = FsckOptions { repair: true, ..online };
    assert!(matches!(ns.fsck(&bad, &mut |_| {}), Err(NsError::InvalidArgument(_))));
    drop(ns);
    let missing = config(&dir.path().join("nope"));
    assert!(matches!(Namespace::open_offline(missing), Err(NsError::NotFound)));
}

#[test]
fn offline_open_runs_no_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap();
    let epoch = ns.boot_epoch();
    let old = orphan_chunk(&ns, 0x7300_0001, true);
    drop(ns);
    let ns = Namespace::open_offline(config(dir.path())).unwrap();
    assert_eq!(ns.boot_epoch(), epoch, "the boot epoch is not bumped");
    assert!(old.exists(), "the orphan scan did not run");
    let r = fsck(&ns, false);
    assert_eq!(kinds(&r), [ProblemKind::OrphanChunk].into());
}

#[test]
fn a_damaged_multipart_part_is_dropped_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap();
    let id = ns.create_upload(&root(), b"bkt", b"mpu", namespace::ObjMeta::default()).unwrap();
    for n in 1..=2u32 {
        let mut w = ns.object_writer();
        w.write(&pattern(100_000, n as u64)).unwrap();
        ns.upload_part(&id, n, w.finish().unwrap()).unwrap();
    }
    let parts = ns.debug_raw_scan(Tree::MpuParts).unwrap();
    let first: namespace::record::Part = record::decode("part", &parts[0].1).unwrap();
    let chunk = chunks_of(&ns, first.staging_ino)[0];
    let p = ns.debug_chunk_path(chunk);
    let mut raw = std::fs::read(&p).unwrap();
    raw[100] ^= 0xff;
    std::fs::write(&p, raw).unwrap();
    let r = fsck(&ns, false);
    assert_eq!(kinds(&r), [ProblemKind::ChunkCorrupt].into(), "{:#?}", r.problems);
    let r = fsck(&ns, true);
    assert!(r.remaining.is_empty(), "{:#?}", r.remaining);
    assert!(r.quarantined.iter().any(|q| q.what == "part" && q.ino == Some(first.staging_ino)), "{:#?}", r.quarantined);
    let (_, left, _) = ns.list_parts(&id, 0, 100).unwrap();
    assert_eq!(left.iter().map(|p| p.part_number).collect::<Vec<_>>(), [2], "the damaged part is dropped");
    assert!(fsck(&ns, false).is_clean());
}

/// A serving gateway runs the check online: concurrent PUTs, overwrites,
/// deletes, renames and POSIX writes must not be reported as damage. (A
/// single unconfirmed scan does report dangling entries, miscounts and
/// extents past the size here: the confirmation is what removes them.)
#[test]
fn an_online_check_under_concurrent_changes_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap().ino;
    for i in 0..20 {
        put(&ns, &format!("seed/{i}"), &pattern(30_000, i));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let worker = {
        let (ns, stop, done) = (ns.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || {
            let f = ns.create(&root(), b, b"appended", 0o644, namespace::CreateMode::Guarded).unwrap().ino;
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let key = format!("churn/{}/k{}", i % 7, i % 13);
                put(&ns, &key, &pattern(1000 + (i as usize % 5) * 40_000, i));
                if i.is_multiple_of(3) {
                    let _ = ns.delete_object(
                        &root(),
                        b"bkt",
                        format!("churn/{}/k{}", (i + 2) % 7, (i + 5) % 13).as_bytes(),
                    );
                }
                ns.write(&root(), f, i * 5000, &pattern(5000, i)).unwrap();
                if i.is_multiple_of(4) {
                    let n = format!("tmp{i}");
                    let t = ns.create(&root(), b, n.as_bytes(), 0o644, namespace::CreateMode::Guarded).unwrap();
                    ns.write(&root(), t.ino, 0, b"x").unwrap();
                    ns.rename(&root(), b, n.as_bytes(), b, b"renamed").unwrap();
                }
                i += 1;
                done.store(i, std::sync::atomic::Ordering::Release);
            }
            i
        })
    };
    let online = FsckOptions { repair: false, grace: GRACE, online: true };
    let ops = || done.load(std::sync::atomic::Ordering::Acquire);
    let mut checks = 0;
    while checks < 5 || ops() < 60 {
        if ops() == 0 {
            std::thread::yield_now();
            continue;
        }
        let r = ns.fsck(&online, &mut |_| {}).unwrap();
        assert!(r.is_clean(), "false positives online after {} ops: {:#?}", ops(), r.problems);
        checks += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    worker.join().unwrap();
    assert!(fsck(&ns, false).is_clean());
}

/// An entry that does not decode is deleted; the file it named then has no
/// name, so its bytes are copied into `quarantine/lost/` before it goes.
#[test]
fn a_file_whose_only_entry_is_undecodable_is_salvaged_into_the_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    let b = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap().ino;
    let data = pattern(150_000, 77);
    let ino = put(&ns, "precious", &data);
    put(&ns, "other", b"other");
    ns.debug_raw_put(Tree::Dentries, &dentry_key(b, b"precious", false), &[1, 0xff, 0xff, 0xff]).unwrap();
    let r = fsck(&ns, false);
    assert!(kinds(&r).contains(&ProblemKind::UndecodableRecord), "{:#?}", r.problems);
    let r = fsck(&ns, true);
    assert!(r.remaining.is_empty(), "{:#?}", r.remaining);
    let salvaged = r
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::UnnamedInode && p.ino == Some(ino))
        .unwrap_or_else(|| panic!("{:#?}", r.problems));
    assert!(salvaged.repair.as_deref().unwrap().contains("bytes copied"), "{salvaged:?}");
    let lost = dir.path().join("quarantine").join("lost").join(ino.to_string());
    assert_eq!(std::fs::read(&lost).unwrap(), data, "the bytes are kept for the operator");
    assert!(r.quarantined.iter().any(|q| q.what == "lost" && q.ino == Some(ino)));
    assert!(r.quarantined.iter().any(|q| q.what == "record" && q.raw_hex.as_deref() == Some("01ffffff")));
    assert_eq!(ns.readdir(&root(), b, 0, 100).unwrap().0.len(), 1);
    assert!(fsck(&ns, false).is_clean());
}

fn binding() -> namespace::UpstreamBinding {
    namespace::UpstreamBinding {
        endpoint: "http://127.0.0.1:9".into(),
        region: "us-east-1".into(),
        bucket: "origin".into(),
        prefix: String::new(),
        virtual_host: false,
        ca_file: None,
        credentials: namespace::CredentialSource::Anonymous,
        revalidate_secs: 30,
        upload_delay_secs: 5,
        write_back: false,
    }
}

/// The upstream records (bindings, `remote`, `upload_queue`) are checked
/// against the inodes: records of a missing inode are found and deleted by
/// repair; a `remote` record naming an unbound bucket and a file whose
/// remote extents have no `remote` record to fetch them with are found and
/// left (no local fix brings upstream bytes back). A freshly bound bucket
/// is clean.
#[test]
fn upstream_records_are_checked_against_the_inodes() {
    use namespace::record::{QueuedUpload, Remote, RemoteFile, REMOTE_CHUNK};
    let dir = tempfile::tempdir().unwrap();
    let ns = Arc::new(Namespace::open(config(dir.path())).unwrap().0);
    let plain = ns.mkdir(&root(), ROOT_INO, b"bkt", 0o777).unwrap().ino;
    let remote_only = put(&ns, "remote-only", b"");
    let claims = put(&ns, "claims", b"x");
    ns.mkdir(&root(), ROOT_INO, b"upstream", 0o777).unwrap();
    let up = ns.bind_upstream(b"upstream", &binding()).unwrap();
    let r = fsck(&ns, false);
    assert!(r.is_clean(), "a bound bucket is healthy: {:#?}", r.problems);

    // A file whose bytes are said to be upstream, with nothing to fetch them.
    let mut n = inode(&ns, remote_only);
    n.size = 100;
    put_inode(&ns, &n);
    let remote = Extent { chunk: REMOTE_CHUNK, chunk_off: 0, len: 100, crc64: None };
    ns.debug_raw_put(Tree::Extents, &pair(remote_only, 0), &record::encode(&remote)).unwrap();
    // A file claiming to be an object of a bucket that is not bound.
    let rf = |bucket: u64, key: &[u8]| {
        Remote::File(RemoteFile { bucket, key: key.to_vec(), etag: "\"e\"".into(), size: 1, mtime: 0, synced_gen: 0 })
    };
    ns.debug_raw_put(Tree::Remote, &claims.to_be_bytes(), &record::encode(&rf(plain, b"claims"))).unwrap();
    // Records of an inode that does not exist, in every upstream tree.
    const GONE: u64 = 9_999_999;
    ns.debug_raw_put(Tree::Remote, &GONE.to_be_bytes(), &record::encode(&rf(up, b"gone"))).unwrap();
    let q = QueuedUpload {
        bucket: up,
        key: b"gone".to_vec(),
        due: 0,
        attempts: 0,
        replaces: None,
        error: None,
        poisoned: false,
    };
    ns.debug_raw_put(Tree::UploadQueue, &GONE.to_be_bytes(), &record::encode(&q)).unwrap();
    ns.debug_raw_put(Tree::Upstreams, &GONE.to_be_bytes(), &record::encode(&binding())).unwrap();

    let r = fsck(&ns, false);
    let mut found: Vec<u64> =
        r.problems.iter().filter(|p| p.kind == ProblemKind::BadUpstreamRecord).filter_map(|p| p.ino).collect();
    found.sort_unstable();
    let mut want = vec![remote_only, claims, GONE, GONE, GONE];
    want.sort_unstable();
    assert_eq!(found, want, "{:#?}", r.problems);
    assert_eq!(kinds(&r), BTreeSet::from([ProblemKind::BadUpstreamRecord]), "{:#?}", r.problems);

    let r = fsck(&ns, true);
    let mut left: Vec<u64> = r.remaining.iter().filter_map(|p| p.ino).collect();
    left.sort_unstable();
    assert_eq!(left, {
        let mut v = vec![remote_only, claims];
        v.sort_unstable();
        v
    });
    for tree in [Tree::Remote, Tree::UploadQueue, Tree::Upstreams] {
        assert!(ns.debug_raw_get(tree, &GONE.to_be_bytes()).unwrap().is_none(), "{tree:?} record of a missing inode");
    }
    assert_eq!(ns.upstream_bindings().unwrap().len(), 1, "the real binding stays");
}
