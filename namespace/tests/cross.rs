//! Cross-protocol rules at the namespace level: full-object CRC64/NVME of
//! files changed through the POSIX side, and symlinks as S3 sees them.

mod common;

use common::*;
use namespace::{CreateMode, ListEntry, ListParams, PutOptions, SetAttr, ROOT_INO};

fn crc_of_read(ns: &std::sync::Arc<namespace::Namespace>, key: &str) -> (u64, Vec<u8>) {
    let (_, r) = ns.open_object(&root(), b"bkt", key.as_bytes()).unwrap();
    let mut buf = vec![0u8; r.size() as usize];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), buf.len());
    (r.full_crc64nvme(u64::MAX).unwrap().expect("unbounded budget"), buf)
}

fn assert_crc_matches(ns: &std::sync::Arc<namespace::Namespace>, key: &str) {
    let (crc, bytes) = crc_of_read(ns, key);
    assert_eq!(crc, chunkstore::crc64nvme(&bytes), "combined CRC of {key} ({} bytes)", bytes.len());
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn full_object_crc64nvme_of_posix_written_files_matches_their_bytes() {
    let (_d, ns, b) = fresh();
    let f = ns.create(&root(), b, b"ckpt", 0o644, CreateMode::Guarded).unwrap();
    // empty file
    assert_crc_matches(&ns, "ckpt");
    let mut rng = Rng(0x5eed_1234);
    let chunk = TEST_CHUNK_BYTES as u64;
    for round in 0..60u64 {
        let op = rng.below(10);
        if op < 7 {
            // random write, sometimes far past the end (a hole)
            let off = rng.below(6 * chunk);
            let len = 1 + rng.below(2 * chunk) as usize;
            ns.write(&root(), f.ino, off, &pattern(len, round)).unwrap();
        } else if op < 9 {
            // truncate down or extend with a hole
            let size = rng.below(7 * chunk);
            ns.setattr(&root(), f.ino, &SetAttr { size: Some(size), ..Default::default() }, None).unwrap();
        } else {
            // a write at a huge offset: a hole of gigabytes costs nothing
            ns.write(&root(), f.ino, (3 << 30) + rng.below(chunk), b"tail").unwrap();
            let (_, r) = ns.open_object(&root(), b"bkt", b"ckpt").unwrap();
            let crc = r.full_crc64nvme(u64::MAX).unwrap().unwrap();
            // Check the sparse file by streaming its bytes through a CRC.
            let mut streamed = chunkstore::crc64nvme(&[]);
            let mut buf = vec![0u8; 8 << 20];
            let mut off = 0;
            while off < r.size() {
                let n = r.read_at(off, &mut buf).unwrap();
                streamed = chunkstore::crc64nvme_combine(streamed, chunkstore::crc64nvme(&buf[..n]), n as u64);
                off += n as u64;
            }
            assert_eq!(crc, streamed, "sparse file of {} bytes", r.size());
            ns.setattr(&root(), f.ino, &SetAttr { size: Some(rng.below(5 * chunk)), ..Default::default() }, None)
                .unwrap();
            continue;
        }
        assert_crc_matches(&ns, "ckpt");
    }
}

#[test]
fn full_object_crc64nvme_reads_only_extents_whose_crc_is_unknown() {
    let (_d, ns, b) = fresh();
    let chunk = TEST_CHUNK_BYTES;
    let f = ns.create(&root(), b, b"f", 0o644, CreateMode::Guarded).unwrap();
    ns.write(&root(), f.ino, 0, &pattern(4 * chunk, 1)).unwrap();
    let (_, r) = ns.open_object(&root(), b"bkt", b"f").unwrap();
    // Whole chunks: every CRC is known, nothing is read.
    assert_eq!(r.full_crc64nvme(0).unwrap(), Some(chunkstore::crc64nvme(&pattern(4 * chunk, 1))));
    drop(r);
    // Overwrite 10 bytes inside chunk 1: its two trimmed pieces must be read.
    ns.write(&root(), f.ino, chunk as u64 + 100, b"0123456789").unwrap();
    let (_, r) = ns.open_object(&root(), b"bkt", b"f").unwrap();
    assert_eq!(r.full_crc64nvme(chunk as u64 - 11).unwrap(), None, "needs chunk - 10 bytes read");
    let crc = r.full_crc64nvme(chunk as u64 - 10).unwrap().expect("exactly the trimmed bytes are read");
    let mut want = pattern(4 * chunk, 1);
    want[chunk + 100..chunk + 110].copy_from_slice(b"0123456789");
    assert_eq!(crc, chunkstore::crc64nvme(&want));
}

#[test]
fn full_object_crc64nvme_of_s3_objects_equals_the_stored_one() {
    let (_d, ns, _b) = fresh();
    let data = pattern(5 * TEST_CHUNK_BYTES + 17, 9);
    ns.put_object_bytes(&root(), b"bkt", b"x/y", &data, PutOptions::default()).unwrap();
    let (crc, bytes) = crc_of_read(&ns, "x/y");
    assert_eq!(bytes, data);
    assert_eq!(crc, chunkstore::crc64nvme(&data));
}

fn list_all(ns: &namespace::Namespace, delim: Option<&str>) -> Vec<(String, u64, String)> {
    let p = ListParams {
        prefix: Vec::new(),
        delimiter: delim.map(|d| d.as_bytes().to_vec()),
        start_after: None,
        max_keys: 1000,
    };
    ns.list_objects(&root(), b"bkt", &p)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| match e {
            ListEntry::Object { key, info } => (String::from_utf8(key).unwrap(), info.inode.size, info.etag),
            ListEntry::CommonPrefix(p) => (format!("CP:{}", String::from_utf8(p).unwrap()), 0, String::new()),
        })
        .collect()
}

#[test]
fn symlinks_to_files_in_the_bucket_are_listed_as_the_target_and_others_are_not() {
    let (_d, ns, b) = fresh();
    let target = ns.put_object_bytes(&root(), b"bkt", b"data/real.bin", b"hello", PutOptions::default()).unwrap();
    let data = ns.lookup(&root(), b, b"data").unwrap();
    // served: relative link beside the file, one climbing with '..', a chain
    ns.symlink(&root(), data.ino, b"same-dir", b"real.bin", 0o777).unwrap();
    ns.symlink(&root(), b, b"top-link", b"data/real.bin", 0o777).unwrap();
    ns.mkdir(&root(), b, b"other", 0o755).unwrap();
    let other = ns.lookup(&root(), b, b"other").unwrap();
    ns.symlink(&root(), other.ino, b"up", b"../data/real.bin", 0o777).unwrap();
    ns.symlink(&root(), other.ino, b"chain", b"up", 0o777).unwrap();
    // not served: dangling, directory, escaping the bucket, absolute, loop
    ns.symlink(&root(), data.ino, b"dangling", b"nope", 0o777).unwrap();
    ns.symlink(&root(), data.ino, b"to-dir", b"../other", 0o777).unwrap();
    ns.symlink(&root(), data.ino, b"escape", b"../../bkt2/file", 0o777).unwrap();
    ns.symlink(&root(), data.ino, b"absolute", b"/etc/passwd", 0o777).unwrap();
    ns.symlink(&root(), data.ino, b"loop", b"loop", 0o777).unwrap();
    let b2 = ns.mkdir(&root(), ROOT_INO, b"bkt2", 0o777).unwrap();
    ns.put_object_bytes(&root(), b"bkt2", b"file", b"secret", PutOptions::default()).unwrap();
    let _ = b2;

    let listed = list_all(&ns, None);
    let keys: Vec<&str> = listed.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys, ["data/real.bin", "data/same-dir", "other/chain", "other/up", "top-link"]);
    for (k, size, etag) in &listed {
        assert_eq!((*size, etag.as_str()), (5, target.etag.as_str()), "{k} lists as its target");
        let (_, r) = ns.open_object(&root(), b"bkt", k.as_bytes()).unwrap();
        let mut buf = [0u8; 5];
        r.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }
    for k in ["data/dangling", "data/to-dir", "data/escape", "data/absolute", "data/loop"] {
        assert!(ns.open_object(&root(), b"bkt", k.as_bytes()).is_err(), "{k} is not served");
    }
    // With a delimiter, the link at the top is an object beside the prefixes.
    let top = list_all(&ns, Some("/"));
    let keys: Vec<&str> = top.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys, ["CP:data/", "CP:other/", "top-link"]);
}
