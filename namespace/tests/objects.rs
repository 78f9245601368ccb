//! S3-style objects, listings and multipart uploads over the namespace.

mod common;

use common::*;
use namespace::{
    Caller, CompletePart, CreateMode, ListEntry, ListParams, NsError, ObjMeta, PutOptions, SetAttr, WriteCondition,
};

fn put(ns: &std::sync::Arc<namespace::Namespace>, key: &str, data: &[u8]) -> namespace::ObjectInfo {
    ns.put_object_bytes(&root(), b"bkt", key.as_bytes(), data, PutOptions::default()).unwrap()
}

fn get(ns: &std::sync::Arc<namespace::Namespace>, key: &str) -> Vec<u8> {
    let (_, r) = ns.open_object(&root(), b"bkt", key.as_bytes()).unwrap();
    let mut buf = vec![0u8; r.size() as usize];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), buf.len());
    buf
}

fn keys(page: &namespace::ListPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| match e {
            ListEntry::Object { key, .. } => String::from_utf8(key.clone()).unwrap(),
            ListEntry::CommonPrefix(p) => format!("CP:{}", String::from_utf8(p.clone()).unwrap()),
        })
        .collect()
}

fn list(
    ns: &namespace::Namespace,
    prefix: &str,
    delim: Option<&str>,
    after: Option<&[u8]>,
    max: usize,
) -> namespace::ListPage {
    let p = ListParams {
        prefix: prefix.as_bytes().to_vec(),
        delimiter: delim.map(|d| d.as_bytes().to_vec()),
        start_after: after.map(|a| a.to_vec()),
        max_keys: max,
    };
    ns.list_objects(&root(), b"bkt", &p).unwrap()
}

#[test]
fn put_get_head_with_md5_etag_and_metadata() {
    let (_d, ns, _b) = fresh();
    let data = pattern(300_000, 4);
    let meta = ObjMeta {
        content_type: Some("text/plain".into()),
        user_meta: vec![("color".into(), "blue".into())],
        ..Default::default()
    };
    let info =
        ns.put_object_bytes(&root(), b"bkt", b"dir/sub/obj", &data, PutOptions { meta, ..Default::default() }).unwrap();
    assert_eq!(info.etag, format!("{:x}", md5_of(&data)));
    assert_eq!(get(&ns, "dir/sub/obj"), data);
    let head = ns.head_object(&root(), b"bkt", b"dir/sub/obj").unwrap();
    assert_eq!(head.inode.size, 300_000);
    assert_eq!(head.meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(head.meta.user_meta, vec![("color".to_string(), "blue".to_string())]);
    // the same file is visible through the POSIX side, as a path
    let b = ns.bucket(b"bkt").unwrap().ino;
    let dir = ns.lookup(&root(), b, b"dir").unwrap();
    let sub = ns.lookup(&root(), dir.ino, b"sub").unwrap();
    let f = ns.lookup(&root(), sub.ino, b"obj").unwrap();
    assert_eq!(ns.read(&root(), f.ino, 0, 400_000).unwrap().0, data);
    assert!(matches!(ns.head_object(&root(), b"bkt", b"dir/sub/none"), Err(NsError::NotFound)));
    assert!(matches!(ns.head_object(&root(), b"bkt", b"dir"), Err(NsError::NotFound)), "a directory is not an object");
    assert!(matches!(ns.head_object(&root(), b"nobkt", b"x"), Err(NsError::NotFound)));
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(data).into())
}

#[test]
fn overwrite_is_atomic_and_readers_keep_their_version() {
    let (_d, ns, _b) = fresh();
    put(&ns, "k", &pattern(200_000, 1));
    let (_, old_reader) = ns.open_object(&root(), b"bkt", b"k").unwrap();
    let old_ino = old_reader.inode.ino;
    let new = put(&ns, "k", &pattern(100_000, 2));
    assert_ne!(new.inode.ino, old_ino, "an overwrite publishes a new inode");
    assert_eq!(get(&ns, "k"), pattern(100_000, 2));
    // the reader opened before the overwrite still reads the old bytes whole
    let mut buf = vec![0u8; 200_000];
    assert_eq!(old_reader.read_at(0, &mut buf).unwrap(), 200_000);
    assert_eq!(buf, pattern(200_000, 1));
    // ... even after a GC pass, because the reader pins the chunks
    let report = ns.run_gc().unwrap();
    assert_eq!(report.chunks_deleted, 0);
    assert!(matches!(ns.getattr(old_ino), Err(NsError::Stale)), "the old handle is stale at once");
    drop(old_reader);
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

#[test]
fn conditional_puts() {
    let (_d, ns, _b) = fresh();
    let first = ns
        .put_object_bytes(
            &root(),
            b"bkt",
            b"c",
            b"1",
            PutOptions { condition: WriteCondition::IfNoneMatchStar, ..Default::default() },
        )
        .unwrap();
    let again = ns.put_object_bytes(
        &root(),
        b"bkt",
        b"c",
        b"2",
        PutOptions { condition: WriteCondition::IfNoneMatchStar, ..Default::default() },
    );
    assert!(matches!(again, Err(NsError::PreconditionFailed)));
    let stale = ns.put_object_bytes(
        &root(),
        b"bkt",
        b"c",
        b"3",
        PutOptions { condition: WriteCondition::IfMatch("nope".into()), ..Default::default() },
    );
    assert!(matches!(stale, Err(NsError::PreconditionFailed)));
    ns.put_object_bytes(
        &root(),
        b"bkt",
        b"c",
        b"4",
        PutOptions { condition: WriteCondition::IfMatch(first.etag.clone()), ..Default::default() },
    )
    .unwrap();
    assert_eq!(get(&ns, "c"), b"4");
    // the overwritten version's chunk is queued for GC; remember the count
    let baseline = ns.check_integrity().unwrap().chunks_unreferenced;
    let again = ns.put_object_bytes(
        &root(),
        b"bkt",
        b"c",
        b"6",
        PutOptions { condition: WriteCondition::IfNoneMatchStar, ..Default::default() },
    );
    assert!(matches!(again, Err(NsError::PreconditionFailed)));
    let missing = ns.put_object_bytes(
        &root(),
        b"bkt",
        b"zz",
        b"5",
        PutOptions { condition: WriteCondition::IfMatch("x".into()), ..Default::default() },
    );
    assert!(matches!(missing, Err(NsError::NotFound)));
    // failed puts leave no chunks behind
    let r = ns.check_integrity().unwrap();
    assert!(r.problems.is_empty());
    assert_eq!(r.chunks_unreferenced, baseline);
}

#[test]
fn etag_follows_content_after_posix_writes_and_metadata_survives() {
    let (_d, ns, _b) = fresh();
    let meta = ObjMeta { content_type: Some("application/x-ckpt".into()), ..Default::default() };
    let info =
        ns.put_object_bytes(&root(), b"bkt", b"ckpt", b"abcdef", PutOptions { meta, ..Default::default() }).unwrap();
    ns.write(&root(), info.inode.ino, 2, b"Z").unwrap();
    let h1 = ns.head_object(&root(), b"bkt", b"ckpt").unwrap();
    assert_ne!(h1.etag, info.etag);
    assert!(h1.etag.contains('-'), "non-MD5 ETags carry a dash");
    assert_eq!(h1.meta.content_type.as_deref(), Some("application/x-ckpt"), "metadata follows the inode");
    ns.write(&root(), info.inode.ino, 2, b"Y").unwrap();
    let h2 = ns.head_object(&root(), b"bkt", b"ckpt").unwrap();
    assert_ne!(h2.etag, h1.etag, "every content change changes the ETag");
    // a stale If-Match always fails
    let r = ns.put_object_bytes(
        &root(),
        b"bkt",
        b"ckpt",
        b"x",
        PutOptions { condition: WriteCondition::IfMatch(info.etag), ..Default::default() },
    );
    assert!(matches!(r, Err(NsError::PreconditionFailed)));
}

#[test]
fn keys_that_cannot_be_paths_are_rejected() {
    let (_d, ns, _b) = fresh();
    for bad in ["", "/a", "a//b", "a/./b", "a/../b", "..", "a/b\0"] {
        let r = ns.put_object_bytes(&root(), b"bkt", bad.as_bytes(), b"x", PutOptions::default());
        assert!(matches!(r, Err(NsError::InvalidName(_))), "{bad:?}: {r:?}");
        assert!(matches!(ns.head_object(&root(), b"bkt", bad.as_bytes()), Err(NsError::NotFound)), "{bad:?}");
        ns.delete_object(&root(), b"bkt", bad.as_bytes()).unwrap();
    }
    let long_comp = format!("a/{}", "x".repeat(256));
    assert!(matches!(
        ns.put_object_bytes(&root(), b"bkt", long_comp.as_bytes(), b"x", PutOptions::default()),
        Err(NsError::NameTooLong)
    ));
    let long_key = "abcdefg/".repeat(128) + "x";
    assert!(matches!(
        ns.put_object_bytes(&root(), b"bkt", long_key.as_bytes(), b"x", PutOptions::default()),
        Err(NsError::KeyTooLong)
    ));
    let ok_key = "abcdefg/".repeat(127) + "x";
    put(&ns, &ok_key, b"fits");
    // file vs directory conflicts
    put(&ns, "a", b"file");
    assert!(matches!(
        ns.put_object_bytes(&root(), b"bkt", b"a/b", b"x", PutOptions::default()),
        Err(NsError::NotADirectory)
    ));
    put(&ns, "d/e", b"x");
    assert!(matches!(
        ns.put_object_bytes(&root(), b"bkt", b"d", b"x", PutOptions::default()),
        Err(NsError::IsADirectory)
    ));
    let marker_with_data = ns.put_object_bytes(&root(), b"bkt", b"m/", b"data", PutOptions::default());
    assert!(matches!(marker_with_data, Err(NsError::InvalidArgument(_))));
    let big_meta = ObjMeta { user_meta: vec![("k".into(), "v".repeat(2048))], ..Default::default() };
    let r = ns.put_object_bytes(&root(), b"bkt", b"meta", b"x", PutOptions { meta: big_meta, ..Default::default() });
    assert!(matches!(r, Err(NsError::TooLarge(_))));
}

#[test]
fn auto_created_directories_vanish_but_others_stay() {
    let (_d, ns, b) = fresh();
    put(&ns, "x/y/z/obj", b"1");
    ns.delete_object(&root(), b"bkt", b"x/y/z/obj").unwrap();
    assert!(
        matches!(ns.lookup(&root(), b, b"x"), Err(NsError::NotFound)),
        "implicit parents removed with the last key"
    );
    // a directory made over NFS stays
    let keep = ns.mkdir(&root(), b, b"keep", 0o755).unwrap();
    put(&ns, "keep/inner/obj", b"1");
    ns.delete_object(&root(), b"bkt", b"keep/inner/obj").unwrap();
    assert!(ns.lookup(&root(), b, b"keep").is_ok());
    assert!(matches!(ns.lookup(&root(), keep.ino, b"inner"), Err(NsError::NotFound)));
    // an auto-created directory touched over NFS is adopted and stays
    put(&ns, "adopt/obj", b"1");
    let adopt = ns.lookup(&root(), b, b"adopt").unwrap();
    ns.create(&root(), adopt.ino, b"nfs-file", 0o644, CreateMode::Guarded).unwrap();
    ns.remove(&root(), adopt.ino, b"nfs-file").unwrap();
    ns.delete_object(&root(), b"bkt", b"adopt/obj").unwrap();
    assert!(ns.lookup(&root(), b, b"adopt").is_ok());
    // a marker directory stays until its marker is deleted
    ns.put_object_bytes(&root(), b"bkt", b"mk/", b"", PutOptions::default()).unwrap();
    put(&ns, "mk/obj", b"1");
    ns.delete_object(&root(), b"bkt", b"mk/obj").unwrap();
    assert!(ns.head_object(&root(), b"bkt", b"mk/").is_ok());
    ns.delete_object(&root(), b"bkt", b"mk/").unwrap();
    assert!(matches!(ns.lookup(&root(), b, b"mk"), Err(NsError::NotFound)));
    // deleting a missing key succeeds
    ns.delete_object(&root(), b"bkt", b"never/was").unwrap();
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

#[test]
fn listing_is_in_byte_order_across_directories() {
    let (_d, ns, b) = fresh();
    for k in ["a/b", "a-c", "a.d", "a0", "a/b/c", "b", "a/a"] {
        // "a/b" and "a/b/c" conflict: skip the conflicting one
        let _ = ns.put_object_bytes(&root(), b"bkt", k.as_bytes(), b"x", PutOptions::default());
    }
    ns.mkdir(&root(), b, b"empty", 0o755).unwrap();
    let all = list(&ns, "", None, None, 100);
    assert_eq!(keys(&all), vec!["a-c", "a.d", "a/a", "a/b", "a0", "b"]);
    let delim = list(&ns, "", Some("/"), None, 100);
    assert_eq!(keys(&delim), vec!["a-c", "a.d", "CP:a/", "a0", "b", "CP:empty/"], "empty NFS dirs are common prefixes");
    let pre = list(&ns, "a", Some("/"), None, 100);
    assert_eq!(keys(&pre), vec!["a-c", "a.d", "CP:a/", "a0"]);
    let inside = list(&ns, "a/", Some("/"), None, 100);
    assert_eq!(keys(&inside), vec!["a/a", "a/b"]);
    let other_delim = list(&ns, "", Some("."), None, 100);
    assert_eq!(keys(&other_delim), vec!["a-c", "CP:a.", "a/a", "a/b", "a0", "b"]);
    let after = list(&ns, "", None, Some(b"a/a"), 100);
    assert_eq!(keys(&after), vec!["a/b", "a0", "b"]);
}

#[test]
fn listing_pages_resume_and_hide_invalid_utf8() {
    let (_d, ns, b) = fresh();
    let mut model = Vec::new();
    for i in 0..60 {
        let k = format!("d{}/f{:02}", i % 4, i);
        put(&ns, &k, b"v");
        model.push(k);
    }
    model.sort();
    ns.create(&root(), b, &[0xff, b'b', b'a', b'd'], 0o644, CreateMode::Guarded).unwrap();
    let mut got = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = list(&ns, "", None, after.as_deref(), 7);
        got.extend(keys(&page));
        if !page.truncated {
            break;
        }
        after = page.next_start_after.clone();
    }
    assert_eq!(got, model);
    assert!(ns.hidden_name_count() >= 1);
    // delimiter pages resume past a common prefix without repeating it
    let p1 = list(&ns, "", Some("/"), None, 2);
    assert_eq!(keys(&p1), vec!["CP:d0/", "CP:d1/"]);
    assert!(p1.truncated);
    let p2 = list(&ns, "", Some("/"), p1.next_start_after.as_deref(), 10);
    assert_eq!(keys(&p2), vec!["CP:d2/", "CP:d3/"]);
    assert!(!p2.truncated);
}

#[test]
fn multipart_complete_splices_without_copying() {
    let (_d, ns, _b) = fresh();
    let meta = ObjMeta { content_type: Some("application/octet-stream".into()), ..Default::default() };
    let id = ns.create_upload(&root(), b"bkt", b"big/object", meta).unwrap();
    let part_len = 5 << 20;
    let mut parts = Vec::new();
    let mut whole = Vec::new();
    for n in 1..=3u32 {
        let data = pattern(if n == 3 { 1000 } else { part_len }, n as u64);
        let mut w = ns.object_writer();
        w.write(&data).unwrap();
        let info = ns.upload_part(&id, n, w.finish().unwrap()).unwrap();
        parts.push(CompletePart { part_number: n, etag: format!("\"{}\"", info.etag) });
        whole.extend_from_slice(&data);
    }
    // re-uploading a part replaces it
    let mut w = ns.object_writer();
    w.write(&pattern(1000, 99)).unwrap();
    let again = ns.upload_part(&id, 3, w.finish().unwrap()).unwrap();
    parts[2].etag = again.etag.clone();
    whole.truncate(2 * part_len);
    whole.extend_from_slice(&pattern(1000, 99));
    let (_, listed, truncated) = ns.list_parts(&id, 0, 100).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(!truncated);
    let (uploads, _) = ns.list_uploads(b"bkt", b"big/", None, 10).unwrap();
    assert_eq!(uploads.len(), 1);
    let bad_order = [parts[1].clone(), parts[0].clone()];
    assert!(matches!(
        ns.complete_upload(&root(), &id, &bad_order, WriteCondition::None),
        Err(NsError::InvalidPartOrder)
    ));
    let bad_etag = [CompletePart { part_number: 1, etag: "0".repeat(32) }];
    assert!(matches!(ns.complete_upload(&root(), &id, &bad_etag, WriteCondition::None), Err(NsError::InvalidPart(_))));
    let chunks_before = ns.check_integrity().unwrap().chunks_referenced;
    let done = ns.complete_upload(&root(), &id, &parts, WriteCondition::None).unwrap();
    assert!(!done.repeated);
    assert!(done.info.etag.ends_with("-3"));
    assert_eq!(get(&ns, "big/object"), whole);
    let after = ns.check_integrity().unwrap();
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    assert_eq!(after.chunks_referenced, chunks_before, "no chunk was copied");
    let head = ns.head_object(&root(), b"bkt", b"big/object").unwrap();
    assert_eq!(head.meta.part_layout, vec![(part_len as u64, 2), (1000, 1)]);
    // a repeated completion answers the same object
    let rep = ns.complete_upload(&root(), &id, &parts, WriteCondition::None).unwrap();
    assert!(rep.repeated);
    assert_eq!(rep.info.etag, done.info.etag);
    assert!(matches!(ns.list_parts(&id, 0, 10), Err(NsError::NoSuchUpload)));
}

#[test]
fn multipart_small_parts_abort_and_unknown_ids() {
    let (_d, ns, _b) = fresh();
    let id = ns.create_upload(&root(), b"bkt", b"k", ObjMeta::default()).unwrap();
    for n in 1..=2 {
        let mut w = ns.object_writer();
        w.write(b"tiny").unwrap();
        ns.upload_part(&id, n, w.finish().unwrap()).unwrap();
    }
    let (_, parts, _) = ns.list_parts(&id, 0, 10).unwrap();
    let list: Vec<_> =
        parts.iter().map(|p| CompletePart { part_number: p.part_number, etag: p.etag.clone() }).collect();
    assert!(matches!(ns.complete_upload(&root(), &id, &list, WriteCondition::None), Err(NsError::PartTooSmall(_))));
    let mut w = ns.object_writer();
    w.write(b"x").unwrap();
    assert!(matches!(ns.upload_part(&id, 0, w.finish().unwrap()), Err(NsError::InvalidArgument(_))));
    ns.abort_upload(&id).unwrap();
    assert!(matches!(ns.abort_upload(&id), Err(NsError::NoSuchUpload)));
    assert!(matches!(ns.list_parts("zz", 0, 1), Err(NsError::NoSuchUpload)));
    let r = ns.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.chunks_referenced, 0, "aborted parts are released");
}

#[test]
fn s3_permissions_follow_posix() {
    let (_d, ns, b) = fresh();
    let alice = Caller::user(1000, 1000);
    let bob = Caller::user(1001, 1001);
    let d = ns.mkdir(&alice, b, b"private", 0o700).unwrap();
    let _ = d;
    ns.put_object_bytes(&alice, b"bkt", b"private/x", b"secret", PutOptions::default()).unwrap();
    assert!(matches!(ns.head_object(&bob, b"bkt", b"private/x"), Err(NsError::PermissionDenied)));
    assert!(matches!(
        ns.put_object_bytes(&bob, b"bkt", b"private/y", b"x", PutOptions::default()),
        Err(NsError::PermissionDenied)
    ));
    assert!(matches!(ns.delete_object(&bob, b"bkt", b"private/x"), Err(NsError::PermissionDenied)));
    // listings silently skip what the caller cannot search
    let page = ns.list_objects(&bob, b"bkt", &ListParams { max_keys: 100, ..Default::default() }).unwrap();
    assert!(page.entries.is_empty());
    // an overwrite keeps the owner and mode NFS set
    let f = ns.head_object(&alice, b"bkt", b"private/x").unwrap();
    ns.setattr(&alice, f.inode.ino, &SetAttr { mode: Some(0o600), ..Default::default() }, None).unwrap();
    let over = ns.put_object_bytes(&alice, b"bkt", b"private/x", b"new", PutOptions::default()).unwrap();
    assert_eq!((over.inode.uid, over.inode.mode), (1000, 0o600));
}

#[test]
fn copy_shares_chunks_and_survives_source_removal() {
    let (_d, ns, _b) = fresh();
    let data = pattern(300_000, 12);
    let src = put(&ns, "src", &data);
    let before = ns.check_integrity().unwrap();
    let (info, reader) = ns.open_object(&root(), b"bkt", b"src").unwrap();
    let copy = ns.copy_object(&root(), &reader, &info.etag, b"bkt", b"dst/copy", PutOptions::default()).unwrap();
    drop(reader);
    assert_eq!(copy.etag, src.etag, "an MD5 ETag carries over");
    let after = ns.check_integrity().unwrap();
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    assert_eq!(after.chunks_referenced, before.chunks_referenced, "no chunk was written for the copy");
    // deleting the source leaves the copy whole, even after GC
    ns.delete_object(&root(), b"bkt", b"src").unwrap();
    ns.run_gc().unwrap();
    assert_eq!(get(&ns, "dst/copy"), data);
    // a source changed in place gets a real MD5 computed for the copy
    let f = ns.head_object(&root(), b"bkt", b"dst/copy").unwrap();
    ns.write(&root(), f.inode.ino, 0, b"XY").unwrap();
    let (info, reader) = ns.open_object(&root(), b"bkt", b"dst/copy").unwrap();
    assert!(info.etag.contains('-'));
    let again = ns.copy_object(&root(), &reader, &info.etag, b"bkt", b"third", PutOptions::default()).unwrap();
    let mut want = data.clone();
    want[..2].copy_from_slice(b"XY");
    assert_eq!(again.etag, format!("{:x}", md5_of(&want)));
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

/// Regression: a chunk queued for GC whose reference count went back up
/// (a copy shared it while its source was deleted) must not be deleted.
#[test]
fn gc_keeps_a_queued_chunk_that_was_referenced_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.gc_grace = std::time::Duration::ZERO;
    let ns = std::sync::Arc::new(namespace::Namespace::open(cfg).unwrap().0);
    ns.create_bucket(&root(), b"bkt").unwrap();
    let data = pattern(100_000, 5);
    put(&ns, "src", &data);
    let (info, reader) = ns.open_object(&root(), b"bkt", b"src").unwrap();
    ns.delete_object(&root(), b"bkt", b"src").unwrap(); // chunks queued, pinned by the reader
    ns.copy_object(&root(), &reader, &info.etag, b"bkt", b"copy", PutOptions::default()).unwrap();
    drop(reader);
    let r = ns.run_gc().unwrap();
    assert_eq!(r.chunks_deleted, 0);
    assert_eq!(get(&ns, "copy"), data);
    assert!(ns.check_integrity().unwrap().problems.is_empty());
}

/// Regression: a GET racing an overwrite of its key answered "not found"
/// when the inode it resolved was replaced before it opened it (found by
/// the boto3 suite's concurrent-overwrite test).
#[test]
fn readers_racing_overwrites_always_get_a_whole_version() {
    let (_d, ns, _b) = fresh();
    let versions: Vec<Vec<u8>> = (0..4).map(|i| pattern(70_000 + i * 10, i as u64)).collect();
    put(&ns, "hot", &versions[0]);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..60 {
                put(&ns, "hot", &versions[i % versions.len()]);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let (info, r) = ns.open_object(&root(), b"bkt", b"hot").expect("a version, never NotFound");
                    let mut buf = vec![0u8; r.size() as usize];
                    r.read_at(0, &mut buf).unwrap();
                    assert!(versions.contains(&buf), "a whole version");
                    assert_eq!(info.etag, format!("{:x}", md5_of(&buf)));
                    ns.head_object(&root(), b"bkt", b"hot").expect("HEAD never NotFound");
                }
            });
        }
    });
}

/// Regression: a PUT racing an overwrite of its key answered NoSuchKey
/// ("removed while being accessed") when the file its access check looked
/// up was replaced before the check read its inode (found by the boto3
/// suite's concurrent-overwrite test, writers side).
#[test]
fn writers_racing_overwrites_never_see_the_key_gone() {
    let (_d, ns, _b) = fresh();
    let versions: Vec<Vec<u8>> = (0..4).map(|i| pattern(70_000 + i * 10, i as u64)).collect();
    put(&ns, "hot", &versions[0]);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..60 {
                put(&ns, "hot", &versions[i % versions.len()]);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let target = ns.put_target(b"bkt", b"hot").unwrap();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    ns.check_put_access(&root(), &target).expect("the access check never finds the key gone");
                }
            });
        }
    });
}

/// Regression: deleting a `dir/` marker used to flag the directory as
/// auto-created so pruning would remove it; when pruning was refused, a
/// directory NFS had made kept that flag and vanished with a later S3
/// delete. Now the marker delete removes the empty directory itself, or
/// fails with AccessDenied and changes nothing.
#[test]
fn refused_marker_delete_never_makes_an_nfs_directory_vanish() {
    let (_d, ns, b) = fresh();
    ns.setattr(&root(), b, &namespace::SetAttr { mode: Some(0o755), ..Default::default() }, None).unwrap();
    let nfs_dir = ns.mkdir(&root(), b, b"d", 0o777).unwrap();
    let bob = Caller::user(1001, 1001);
    ns.put_object_bytes(&bob, b"bkt", b"d/", b"", PutOptions::default()).unwrap();
    let r = ns.delete_object(&bob, b"bkt", b"d/");
    assert!(matches!(r, Err(NsError::PermissionDenied)), "{r:?}");
    assert!(ns.head_object(&root(), b"bkt", b"d/").is_ok(), "a refused delete keeps the marker");
    put(&ns, "d/x", b"1");
    ns.delete_object(&root(), b"bkt", b"d/x").unwrap();
    assert_eq!(ns.lookup(&root(), b, b"d").unwrap().ino, nfs_dir.ino, "the NFS-made directory stays");
    ns.delete_object(&root(), b"bkt", b"d/").unwrap();
    assert!(
        matches!(ns.lookup(&root(), b, b"d"), Err(NsError::NotFound)),
        "an empty marker directory goes with its marker"
    );
}

/// Regression: part 1 uploaded again after the other parts finished, with
/// the client listing both of its uploads (in the order they finished).
/// The last upload of a part number wins; the earlier entry does not make
/// the completion fail with InvalidPartOrder.
#[test]
fn multipart_part_uploaded_again_last_upload_wins() {
    let (_d, ns, _b) = fresh();
    let min = namespace::limits::PART_SIZE_BYTES_MIN as usize;
    let id = ns.create_upload(&root(), b"bkt", b"again", ObjMeta::default()).unwrap();
    let upload = |n: u32, data: &[u8]| {
        let mut w = ns.object_writer();
        w.write(data).unwrap();
        ns.upload_part(&id, n, w.finish().unwrap()).unwrap()
    };
    let first = upload(1, &vec![b'B'; min]);
    let second = upload(2, b"tail");
    let again = upload(1, &vec![b'A'; min]);
    let entry = |p: &namespace::PartInfo| CompletePart { part_number: p.part_number, etag: format!("\"{}\"", p.etag) };
    // Descending numbers are still refused, and so is a stale last entry.
    for bad in [vec![entry(&second), entry(&again)], vec![entry(&again), entry(&second), entry(&again)]] {
        assert!(matches!(ns.complete_upload(&root(), &id, &bad, WriteCondition::None), Err(NsError::InvalidPartOrder)));
    }
    let stale_last = vec![entry(&again), entry(&first), entry(&second)];
    assert!(matches!(
        ns.complete_upload(&root(), &id, &stale_last, WriteCondition::None),
        Err(NsError::InvalidPart(_))
    ));
    let list = vec![entry(&first), entry(&again), entry(&second)];
    let done = ns.complete_upload(&root(), &id, &list, WriteCondition::None).unwrap();
    let mut want = vec![b'A'; min];
    want.extend_from_slice(b"tail");
    assert_eq!(get(&ns, "again"), want);
    assert!(done.info.etag.ends_with("-2"), "two parts, not three: {}", done.info.etag);
    let r = ns.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn completion_entries_keep_the_last_of_each_part_number() {
    let e = |n: u32| CompletePart { part_number: n, etag: String::new() };
    assert_eq!(namespace::completion_entries(&[e(1), e(2), e(3)]).unwrap(), vec![0, 1, 2]);
    assert_eq!(namespace::completion_entries(&[e(1), e(1), e(2), e(2), e(2), e(5)]).unwrap(), vec![1, 4, 5]);
    assert!(matches!(namespace::completion_entries(&[e(2), e(1)]), Err(NsError::InvalidPartOrder)));
    assert!(matches!(namespace::completion_entries(&[e(1), e(2), e(1)]), Err(NsError::InvalidPartOrder)));
}
