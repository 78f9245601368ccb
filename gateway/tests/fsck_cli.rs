//! `gateway fsck` as an operator runs it: exit statuses, the report text,
//! `--json`, `--repair` and its quarantine, a directory in use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use namespace::{Caller, Namespace, NamespaceConfig, PutOptions};

fn fsck(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("fsck")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env_remove("GATEWAY_DATA_DIR")
        .output()
        .expect("run gateway fsck")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("chunks")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

/// A data directory with two objects; returns the chunk file of `bkt/bad`.
fn populate(dir: &Path) -> PathBuf {
    let ns = Arc::new(Namespace::open(NamespaceConfig::new(dir)).unwrap().0);
    let root = Caller::root();
    ns.create_bucket(&root, b"bkt").unwrap();
    ns.put_object_bytes(&root, b"bkt", b"good", &vec![7u8; 300_000], PutOptions::default()).unwrap();
    let before = chunk_files(dir);
    ns.put_object_bytes(&root, b"bkt", b"dir/bad", &vec![9u8; 200_000], PutOptions::default()).unwrap();
    let after = chunk_files(dir);
    let new: Vec<_> = after.into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "one chunk for a 200 kB object");
    new.into_iter().next().unwrap()
}

#[test]
fn clean_damaged_repaired_then_clean_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad = populate(dir);

    let o = fsck(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), String::from_utf8_lossy(&o.stderr));
    let out = text(&o);
    assert!(out.contains("5 inodes (2 files, 3 directories"), "{out}");
    assert!(out.contains("problems: none") && out.contains("result: clean"), "{out}");
    assert!(!out.contains('\r') && !out.contains("\x1b["), "no progress bar when stdout is not a terminal");

    // A flipped bit in the data of bkt/dir/bad, and an old orphan chunk.
    let mut raw = std::fs::read(&bad).unwrap();
    let at = raw.len() - 100;
    raw[at] ^= 0x01;
    std::fs::write(&bad, &raw).unwrap();
    // Chunk 0xffff00 lives in shard (id >> 8) % 256 = ff.
    let orphan = dir.join("chunks").join("ff").join("0000000000ffff00");
    std::fs::write(&orphan, b"leftover").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    let o = fsck(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "damage exits 1: {}", text(&o));
    let out = text(&o);
    println!("{out}");
    assert!(out.contains("problems: 2"), "{out}");
    assert!(out.contains("ChunkCorrupt") && out.contains("[bkt/dir/bad]"), "{out}");
    assert!(out.contains("OrphanChunk: chunk 0000000000ffff00"), "{out}");
    assert!(out.contains("result: DAMAGED"), "{out}");
    assert!(bad.exists() && orphan.exists(), "a check changes nothing");

    // --json carries the same findings.
    let o = fsck(dir, &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let kinds: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["orphan_chunk", "chunk_corrupt"], "{v}");
    assert_eq!(v["files"], 2);

    // A grace longer than the orphan's age spares it.
    let o = fsck(dir, &["--grace-secs", "7200"]);
    assert!(!text(&o).contains("OrphanChunk"), "{}", text(&o));

    // Repair: the orphan goes, the damaged file is quarantined.
    let o = fsck(dir, &["--repair"]);
    assert_eq!(o.status.code(), Some(1), "damage was found: {}", text(&o));
    let out = text(&o);
    println!("{out}");
    assert!(out.contains("result: REPAIRED: 2 problems"), "{out}");
    assert!(out.contains("after repair: no problem remains"), "{out}");
    assert!(!orphan.exists());
    let q = dir.join("quarantine");
    let moved = q.join("chunks").join(bad.file_name().unwrap());
    assert_eq!(std::fs::read(&moved).unwrap(), raw, "the damaged chunk is kept, byte for byte");
    let report = std::fs::read_to_string(q.join("quarantine.jsonl")).unwrap();
    assert!(report.lines().any(|l| l.contains("\"what\":\"file\"") && l.contains("bkt/dir/bad")), "{report}");

    // Clean again; the quarantine is listed.
    let o = fsck(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    println!("{out}");
    assert!(out.contains("quarantined: 2 items"), "{out}");
    assert!(out.contains("file bkt/dir/bad"), "{out}");
    assert!(out.contains("result: clean"), "{out}");

    // The intact object is still there; the damaged one is gone.
    let ns = Arc::new(Namespace::open(NamespaceConfig::new(dir)).unwrap().0);
    let info = ns.head_object(&Caller::root(), b"bkt", b"good").unwrap();
    assert_eq!(ns.read(&Caller::root(), info.inode.ino, 0, 400_000).unwrap().0, vec![7u8; 300_000]);
    assert!(ns.head_object(&Caller::root(), b"bkt", b"dir/bad").is_err());
}

#[test]
fn a_directory_in_use_or_missing_is_an_error_not_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ns = Namespace::open(NamespaceConfig::new(dir)).unwrap().0;
    let t = Instant::now();
    let o = fsck(dir, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is in use"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(8), "fails fast: {:?}", t.elapsed());
    drop(ns);
    let o = fsck(&dir.join("missing"), &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a gateway data directory"));
    assert!(!dir.join("missing").exists(), "fsck creates nothing");
    let o = Command::new(env!("CARGO_BIN_EXE_gateway")).args(["fsck", "--grace-secs", "soon"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "usage errors are clap's 2");
}
