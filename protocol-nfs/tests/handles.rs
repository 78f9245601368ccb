//! File handles are bound to their export and cannot be forged: hand-built
//! handles through the `nfs3_client` crate (swapped export, inode and
//! generation; truncated, padded and old-format handles), and what the
//! root export reaches inside a bucket whose own export is narrower.

mod common;

use common::Server;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::Nfs3Client;
use protocol_nfs::{ExportOptions, Exports, Squash};
use tokio::net::TcpStream;

type Conn = Nfs3Client<TokioIo<TcpStream>>;

/// Byte range of the export field in a handle (version 2 layout).
const EXPORT_BYTES: std::ops::Range<usize> = 9..17;
/// Byte range of the inode field.
const INO_BYTES: std::ops::Range<usize> = 17..25;
/// Byte range of the generation field.
const GENERATION_BYTES: std::ops::Range<usize> = 25..29;

fn status<T, E>(r: &Nfs3Result<T, E>) -> nfsstat3 {
    match r {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => *s,
    }
}

fn fh(bytes: Vec<u8>) -> nfs_fh3 {
    nfs_fh3 { data: Opaque::owned(bytes) }
}

async fn lookup(c: &mut Conn, dir: &nfs_fh3, n: &[u8]) -> nfs_fh3 {
    match c.lookup(&LOOKUP3args { what: diropargs3 { dir: dir.clone(), name: filename3::from(n.to_vec()) } }).await {
        Ok(Nfs3Result::Ok(ok)) => ok.object,
        other => panic!("lookup {:?}: {:?}", String::from_utf8_lossy(n), other.map(|r| status(&r))),
    }
}

async fn write(c: &mut Conn, f: &nfs_fh3, data: &[u8]) -> nfsstat3 {
    let r = c
        .write(&WRITE3args {
            file: f.clone(),
            offset: 0,
            count: data.len() as u32,
            stable: stable_how::FILE_SYNC,
            data: Opaque::owned(data.to_vec()),
        })
        .await
        .unwrap();
    status(&r)
}

async fn getattr(c: &mut Conn, f: &nfs_fh3) -> nfsstat3 {
    status(&c.getattr(&GETATTR3args { object: f.clone() }).await.unwrap())
}

/// `/priv` read-only and `/pub` read-write for the same client, each a
/// bucket holding one file `f` with known bytes.
async fn two_exports(dir: &std::path::Path) -> Server {
    let exports = Exports::new(
        ExportOptions { squash: Squash::None, ..Default::default() },
        vec![("/priv".into(), ExportOptions { squash: Squash::None, read_only: true, ..Default::default() })],
    )
    .unwrap();
    let s = Server::start(dir, exports).await;
    for bucket in [&b"priv"[..], b"pub"] {
        let b = s.ns.create_bucket(&namespace::Caller::root(), bucket).unwrap();
        let f = s.ns.create(&namespace::Caller::root(), b.ino, b"f", 0o666, namespace::CreateMode::Guarded).unwrap();
        s.ns.write(&namespace::Caller::root(), f.ino, 0, b"original").unwrap();
    }
    s
}

fn contents(s: &Server, bucket: &[u8]) -> Vec<u8> {
    let b = s.ns.bucket(bucket).unwrap();
    let f = s.ns.lookup(&namespace::Caller::root(), b.ino, b"f").unwrap();
    s.ns.read(&namespace::Caller::root(), f.ino, 0, 64).unwrap().0
}

/// Regression test for the hole reported in issue #16: a client that may
/// only read `/priv` wrote it by replacing the export field of a `/priv`
/// handle with `/pub`'s.
#[tokio::test]
async fn a_read_only_export_cannot_be_written_through_an_edited_handle() {
    let dir = tempfile::tempdir().unwrap();
    let s = two_exports(dir.path()).await;
    let pub_root = s.mount("/pub", 0, 0).await.root_nfs_fh3();
    let conn = s.mount("/priv", 0, 0).await;
    let priv_root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let f = lookup(&mut c, &priv_root, b"f").await;
    assert_eq!(write(&mut c, &f, b"CHANGED!").await, nfsstat3::NFS3ERR_ROFS);

    let mut edited = f.data.to_vec();
    edited[EXPORT_BYTES].copy_from_slice(&pub_root.data[EXPORT_BYTES]);
    assert_ne!(edited, f.data.to_vec(), "the two exports have different export fields");
    assert_eq!(write(&mut c, &fh(edited), b"CHANGED!").await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_eq!(contents(&s, b"priv"), b"original", "the read-only export's file is unchanged");
    s.stop().await;
}

#[tokio::test]
async fn swapped_inodes_generations_and_bad_lengths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = two_exports(dir.path()).await;
    let conn = s.mount("/pub", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let f = lookup(&mut c, &root, b"f").await;
    assert_eq!(getattr(&mut c, &f).await, nfsstat3::NFS3_OK);

    // Another inode of the same export, named by editing the inode field:
    // the bucket directory (which the client holds) for the file.
    let mut swapped_ino = f.data.to_vec();
    swapped_ino[INO_BYTES].copy_from_slice(&root.data[INO_BYTES]);
    swapped_ino[GENERATION_BYTES].copy_from_slice(&root.data[GENERATION_BYTES]);
    assert_eq!(getattr(&mut c, &fh(swapped_ino)).await, nfsstat3::NFS3ERR_BADHANDLE);
    // An inode the client never looked up (the other bucket's file).
    let priv_f = s.ns.lookup(&namespace::Caller::root(), s.ns.bucket(b"priv").unwrap().ino, b"f").unwrap();
    let mut unseen = f.data.to_vec();
    unseen[INO_BYTES].copy_from_slice(&priv_f.ino.to_be_bytes());
    unseen[GENERATION_BYTES].copy_from_slice(&priv_f.generation.to_be_bytes());
    assert_eq!(getattr(&mut c, &fh(unseen.clone())).await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_eq!(write(&mut c, &fh(unseen), b"CHANGED!").await, nfsstat3::NFS3ERR_BADHANDLE);
    // Another generation.
    let mut generation = f.data.to_vec();
    generation[GENERATION_BYTES.end - 1] ^= 1;
    assert_eq!(getattr(&mut c, &fh(generation)).await, nfsstat3::NFS3ERR_BADHANDLE);
    // Truncated and padded.
    let good = f.data.to_vec();
    assert_eq!(getattr(&mut c, &fh(good[..good.len() - 1].to_vec())).await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_eq!(getattr(&mut c, &fh([&good[..], &[0]].concat())).await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_eq!(getattr(&mut c, &fh([&good[..], &[0; 19]].concat())).await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_eq!(getattr(&mut c, &fh(Vec::new())).await, nfsstat3::NFS3ERR_BADHANDLE);
    // A handle in the old unsigned format (version 1, 29 bytes) is stale:
    // the client looks the path up again or remounts.
    let mut v1 = good[..29].to_vec();
    v1[0] = 1;
    assert_eq!(getattr(&mut c, &fh(v1)).await, nfsstat3::NFS3ERR_STALE);
    // The MAC covers everything: the untouched handle still works.
    assert_eq!(getattr(&mut c, &f).await, nfsstat3::NFS3_OK);
    assert_eq!(contents(&s, b"priv"), b"original");
    s.stop().await;
}

/// The root export shows every bucket, but a bucket's own export options
/// govern its files whichever mount the client walked in from.
#[tokio::test]
async fn the_root_export_reaches_into_a_bucket_only_on_the_buckets_terms() {
    let dir = tempfile::tempdir().unwrap();
    let s = two_exports(dir.path()).await;
    let conn = s.mount("/", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let priv_dir = lookup(&mut c, &root, b"priv").await;
    let pub_dir = lookup(&mut c, &root, b"pub").await;
    let priv_f = lookup(&mut c, &priv_dir, b"f").await;
    let pub_f = lookup(&mut c, &pub_dir, b"f").await;
    assert_eq!(write(&mut c, &priv_f, b"CHANGED!").await, nfsstat3::NFS3ERR_ROFS, "/priv is read-only via / too");
    assert_eq!(write(&mut c, &pub_f, b"written!").await, nfsstat3::NFS3_OK);
    assert_eq!(contents(&s, b"priv"), b"original");
    assert_eq!(contents(&s, b"pub"), b"written!");
    s.ns.create_bucket(&namespace::Caller::root(), b"pub2").unwrap();
    let pub2_dir = lookup(&mut c, &root, b"pub2").await;
    // Moving a file between buckets would carry it past its export's
    // options: buckets are separate exports, so RENAME across them is XDEV
    // (`mv` copies and removes instead), as between two mounts.
    let r = c
        .rename(&RENAME3args {
            from: diropargs3 { dir: pub_dir.clone(), name: filename3::from(b"f".to_vec()) },
            to: diropargs3 { dir: pub2_dir.clone(), name: filename3::from(b"moved".to_vec()) },
        })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_XDEV);
    s.stop().await;
}
