//! Every NFSv3 and MOUNT procedure and its error paths, driven by the
//! `nfs3_client` crate (a strict decoder) against the real server.

mod common;

use common::{open_exports, Server};
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::Nfs3Client;
use protocol_nfs::{ExportOptions, Exports, Squash};
use tokio::net::TcpStream;

type Conn = Nfs3Client<TokioIo<TcpStream>>;

fn name(s: &[u8]) -> filename3<'static> {
    filename3::from(s.to_vec())
}

fn dirop(dir: &nfs_fh3, n: &[u8]) -> diropargs3<'static> {
    diropargs3 { dir: dir.clone(), name: name(n) }
}

fn sattr_mode(mode: u32) -> sattr3 {
    sattr3 { mode: Nfs3Option::Some(mode), ..Default::default() }
}

fn status<T, E>(r: &Nfs3Result<T, E>) -> nfsstat3 {
    match r {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => *s,
    }
}

async fn create(c: &mut Conn, dir: &nfs_fh3, n: &[u8], how: createhow3) -> CREATE3res {
    c.create(&CREATE3args { where_: dirop(dir, n), how }).await.unwrap()
}

async fn new_file(c: &mut Conn, dir: &nfs_fh3, n: &[u8]) -> nfs_fh3 {
    match create(c, dir, n, createhow3::GUARDED(sattr_mode(0o644))).await {
        Nfs3Result::Ok(ok) => ok.obj.unwrap(),
        Nfs3Result::Err((s, _)) => panic!("create {:?}: {s:?}", String::from_utf8_lossy(n)),
    }
}

async fn lookup(c: &mut Conn, dir: &nfs_fh3, n: &[u8]) -> LOOKUP3res {
    c.lookup(&LOOKUP3args { what: dirop(dir, n) }).await.unwrap()
}

async fn write(c: &mut Conn, f: &nfs_fh3, off: u64, data: &[u8], stable: stable_how) -> WRITE3res {
    c.write(&WRITE3args {
        file: f.clone(),
        offset: off,
        count: data.len() as u32,
        stable,
        data: Opaque::owned(data.to_vec()),
    })
    .await
    .unwrap()
}

async fn read(c: &mut Conn, f: &nfs_fh3, off: u64, count: u32) -> READ3res<'static> {
    c.read(&READ3args { file: f.clone(), offset: off, count }).await.unwrap()
}

async fn getattr(c: &mut Conn, f: &nfs_fh3) -> GETATTR3res {
    c.getattr(&GETATTR3args { object: f.clone() }).await.unwrap()
}

async fn mkdir(c: &mut Conn, dir: &nfs_fh3, n: &[u8], mode: u32) -> MKDIR3res {
    c.mkdir(&MKDIR3args { where_: dirop(dir, n), attributes: sattr_mode(mode) }).await.unwrap()
}

#[tokio::test]
async fn mount_resolves_exports_on_component_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let c = s.mount("/data", 0, 0).await;
    let root = c.root_nfs_fh3();
    let mut c = c.into_nfs3_client();
    let a = c.getattr(&GETATTR3args { object: root.clone() }).await.unwrap().unwrap();
    assert_eq!(a.obj_attributes.type_, ftype3::NF3DIR);
    assert!(s.try_mount("/dat", 0, 0).await.is_err(), "a prefix is not an export");
    assert!(s.try_mount("/data/sub", 0, 0).await.is_err(), "a missing directory does not mount");
    assert!(s.try_mount("/nope", 0, 0).await.is_err());
    assert!(s.try_mount("/", 0, 0).await.is_ok(), "the root export shows every bucket");
    assert!(s.try_mount("/data/", 0, 0).await.is_ok(), "a trailing slash is the same export");
    s.stop().await;
}

#[tokio::test]
async fn mount_of_a_directory_below_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let sub = mkdir(&mut c, &root, b"imagenet", 0o755).await.unwrap().obj.unwrap();
    let train = mkdir(&mut c, &sub, b"train", 0o755).await.unwrap().obj.unwrap();
    new_file(&mut c, &train, b"shard-0").await;
    new_file(&mut c, &sub, b"labels.txt").await;
    // Like nfsd below an export: the directory's handle, the bucket's options.
    let deep = s.mount("/data/imagenet/train", 0, 0).await;
    let deep_root = deep.root_nfs_fh3();
    assert_eq!(deep_root, train, "the mount's root is that directory");
    let mut d = deep.into_nfs3_client();
    assert_eq!(status(&lookup(&mut d, &deep_root, b"shard-0").await), nfsstat3::NFS3_OK);
    assert!(s.try_mount("/data/imagenet/labels.txt", 0, 0).await.is_err(), "a file is not a mount point");
    assert!(s.try_mount("/data/imagenet/../imagenet", 0, 0).await.is_err(), "no '..' in mount paths");
    assert!(s.try_mount("/data/nothing/here", 0, 0).await.is_err());
    s.stop().await;
}

#[tokio::test]
async fn write_read_commit_and_stability() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let f = new_file(&mut c, &root, b"f").await;
    let w = write(&mut c, &f, 0, b"hello ", stable_how::UNSTABLE).await.unwrap();
    assert_eq!(w.committed, stable_how::UNSTABLE);
    assert_eq!(w.count, 6);
    let w2 = write(&mut c, &f, 6, b"world", stable_how::FILE_SYNC).await.unwrap();
    assert_eq!(w2.committed, stable_how::FILE_SYNC);
    assert_eq!(w.verf, w2.verf, "one verifier per boot");
    let cm = c.commit(&COMMIT3args { file: f.clone(), offset: 0, count: 0 }).await.unwrap().unwrap();
    assert_eq!(cm.verf, w.verf);
    let r = read(&mut c, &f, 0, 100).await.unwrap();
    assert_eq!(&r.data[..], b"hello world");
    assert!(r.eof);
    let r = read(&mut c, &f, 0, 5).await.unwrap();
    assert_eq!((&r.data[..], r.eof), (&b"hello"[..], false));
    assert!(read(&mut c, &f, 100, 5).await.unwrap().eof, "past the end");
    // A hole reads as zeros; a write past EOF extends the file.
    write(&mut c, &f, 20, b"!", stable_how::UNSTABLE).await.unwrap();
    let r = read(&mut c, &f, 0, 100).await.unwrap();
    assert_eq!(&r.data[..], b"hello world\0\0\0\0\0\0\0\0\0!");
    // count must equal the data's length.
    let bad = c
        .write(&WRITE3args {
            file: f.clone(),
            offset: 0,
            count: 3,
            stable: stable_how::FILE_SYNC,
            data: Opaque::owned(b"abcdef".to_vec()),
        })
        .await
        .unwrap();
    assert_eq!(status(&bad), nfsstat3::NFS3ERR_INVAL);
    // A read of more than rtmax is clamped, never refused.
    let big = vec![7u8; 1 << 20];
    write(&mut c, &f, 0, &big, stable_how::UNSTABLE).await.unwrap();
    write(&mut c, &f, 1 << 20, &big, stable_how::UNSTABLE).await.unwrap();
    let r = read(&mut c, &f, 0, u32::MAX).await.unwrap();
    assert_eq!(r.count, 1 << 20);
    // WRITE on a directory.
    assert_eq!(status(&write(&mut c, &root, 0, b"x", stable_how::FILE_SYNC).await), nfsstat3::NFS3ERR_ISDIR);
    s.stop().await;
}

#[tokio::test]
async fn create_modes_unchecked_guarded_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let f = new_file(&mut c, &root, b"g").await;
    write(&mut c, &f, 0, b"keep", stable_how::FILE_SYNC).await.unwrap();
    let again = create(&mut c, &root, b"g", createhow3::GUARDED(sattr_mode(0o644))).await;
    assert_eq!(status(&again), nfsstat3::NFS3ERR_EXIST);
    let unchecked = create(&mut c, &root, b"g", createhow3::UNCHECKED(sattr_mode(0o644))).await.unwrap();
    assert_eq!(unchecked.obj.unwrap(), f, "UNCHECKED keeps the existing file");
    // UNCHECKED with size 0 truncates.
    let trunc = sattr3 { size: Nfs3Option::Some(0), ..sattr_mode(0o644) };
    let t = create(&mut c, &root, b"g", createhow3::UNCHECKED(trunc)).await.unwrap();
    assert_eq!(t.obj_attributes.unwrap().size, 0);
    let v = createverf3([1, 2, 3, 4, 5, 6, 7, 8]);
    let e1 = create(&mut c, &root, b"x", createhow3::EXCLUSIVE(v)).await.unwrap();
    let e2 = create(&mut c, &root, b"x", createhow3::EXCLUSIVE(v)).await.unwrap();
    assert_eq!(e1.obj.unwrap(), e2.obj.unwrap(), "a retransmitted exclusive create succeeds");
    let other = create(&mut c, &root, b"x", createhow3::EXCLUSIVE(createverf3([9; 8]))).await;
    assert_eq!(status(&other), nfsstat3::NFS3ERR_EXIST);
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let r = create(&mut c, &root, bad, createhow3::GUARDED(sattr_mode(0o644))).await;
        assert_eq!(status(&r), nfsstat3::NFS3ERR_INVAL, "name {bad:?}");
    }
    let long = vec![b'n'; 256];
    let r = create(&mut c, &root, &long, createhow3::GUARDED(sattr_mode(0o644))).await;
    assert_eq!(status(&r), nfsstat3::NFS3ERR_NAMETOOLONG);
    let r = c
        .mknod(&MKNOD3args {
            where_: dirop(&root, b"dev"),
            what: mknoddata3::NF3CHR(devicedata3 { dev_attributes: sattr3::default(), spec: specdata3::default() }),
        })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_NOTSUPP);
    s.stop().await;
}

#[tokio::test]
async fn directories_links_symlinks_rename() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let d = mkdir(&mut c, &root, b"d", 0o700).await.unwrap();
    assert_eq!(d.obj_attributes.clone().unwrap().mode, 0o700, "MKDIR honours the client's mode");
    let dfh = d.obj.unwrap();
    assert_eq!(status(&mkdir(&mut c, &root, b"d", 0o755).await), nfsstat3::NFS3ERR_EXIST);
    let f = new_file(&mut c, &dfh, b"f").await;
    // LOOKUP: found, missing, too long, `..`, and `..` at the export root.
    assert_eq!(lookup(&mut c, &dfh, b"f").await.unwrap().object, f);
    assert_eq!(status(&lookup(&mut c, &dfh, b"nope").await), nfsstat3::NFS3ERR_NOENT);
    assert_eq!(status(&lookup(&mut c, &dfh, &[b'a'; 300]).await), nfsstat3::NFS3ERR_NAMETOOLONG);
    assert_eq!(lookup(&mut c, &dfh, b"..").await.unwrap().object, root);
    assert_eq!(lookup(&mut c, &root, b"..").await.unwrap().object, root, "no walking out of the export");
    assert_eq!(status(&lookup(&mut c, &f, b"x").await), nfsstat3::NFS3ERR_NOTDIR);
    // RMDIR / REMOVE type checks.
    let rm = |n: &'static [u8]| REMOVE3args { object: dirop(&root, n) };
    assert_eq!(status(&c.remove(&rm(b"d")).await.unwrap()), nfsstat3::NFS3ERR_ISDIR);
    assert_eq!(status(&c.rmdir(&RMDIR3args { object: dirop(&root, b"d") }).await.unwrap()), nfsstat3::NFS3ERR_NOTEMPTY);
    assert_eq!(status(&c.rmdir(&RMDIR3args { object: dirop(&dfh, b"f") }).await.unwrap()), nfsstat3::NFS3ERR_NOTDIR);
    // LINK keeps nlink exact.
    let l = c.link(&LINK3args { file: f.clone(), link: dirop(&root, b"hard") }).await.unwrap().unwrap();
    assert_eq!(l.file_attributes.unwrap().nlink, 2);
    let l = c.link(&LINK3args { file: dfh.clone(), link: dirop(&root, b"dirlink") }).await.unwrap();
    assert_ne!(status(&l), nfsstat3::NFS3_OK, "no hard links to directories");
    // SYMLINK honours its mode and READLINK returns the target.
    let sl = c
        .symlink(&SYMLINK3args {
            where_: dirop(&root, b"sl"),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(Opaque::owned(b"d/f".to_vec())),
            },
        })
        .await
        .unwrap()
        .unwrap();
    let slfh = sl.obj.unwrap();
    let rl = c.readlink(&READLINK3args { symlink: slfh.clone() }).await.unwrap().unwrap();
    assert_eq!(&rl.data.0[..], b"d/f");
    assert_eq!(status(&c.readlink(&READLINK3args { symlink: f.clone() }).await.unwrap()), nfsstat3::NFS3ERR_INVAL);
    // RENAME: across directories, replacing, and never into itself.
    let g = new_file(&mut c, &root, b"g").await;
    c.rename(&RENAME3args { from: dirop(&root, b"g"), to: dirop(&dfh, b"f") }).await.unwrap().unwrap();
    assert_eq!(lookup(&mut c, &dfh, b"f").await.unwrap().object, g, "the rename replaced f");
    assert_eq!(getattr(&mut c, &f).await.unwrap().obj_attributes.nlink, 1, "f lives on as `hard`");
    let sub = mkdir(&mut c, &dfh, b"sub", 0o755).await.unwrap().obj.unwrap();
    let r = c.rename(&RENAME3args { from: dirop(&root, b"d"), to: dirop(&sub, b"loop") }).await.unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_INVAL);
    // The handle survives a rename of its directory.
    c.rename(&RENAME3args { from: dirop(&root, b"d"), to: dirop(&root, b"e") }).await.unwrap().unwrap();
    assert!(getattr(&mut c, &g).await.unwrap().obj_attributes.fileid > 0);
    // A removed file's handle is stale.
    c.remove(&REMOVE3args { object: dirop(&root, b"hard") }).await.unwrap().unwrap();
    assert_eq!(status(&getattr(&mut c, &f).await), nfsstat3::NFS3ERR_STALE);
    s.stop().await;
}

#[tokio::test]
async fn setattr_guard_truncate_and_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    c.setattr(&SETATTR3args { object: root.clone(), new_attributes: sattr_mode(0o777), guard: Nfs3Option::None })
        .await
        .unwrap()
        .unwrap();
    let f = new_file(&mut c, &root, b"f").await;
    write(&mut c, &f, 0, b"0123456789", stable_how::FILE_SYNC).await.unwrap();
    let a = getattr(&mut c, &f).await.unwrap().obj_attributes;
    let stale = nfstime3 { seconds: a.ctime.seconds, nseconds: a.ctime.nseconds.wrapping_add(1) };
    let r = c
        .setattr(&SETATTR3args {
            object: f.clone(),
            new_attributes: sattr3 { size: Nfs3Option::Some(3), ..Default::default() },
            guard: Nfs3Option::Some(stale),
        })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_NOT_SYNC);
    assert_eq!(getattr(&mut c, &f).await.unwrap().obj_attributes.size, 10, "a failed guard changes nothing");
    let r = c
        .setattr(&SETATTR3args {
            object: f.clone(),
            new_attributes: sattr3 { size: Nfs3Option::Some(3), ..Default::default() },
            guard: Nfs3Option::Some(a.ctime),
        })
        .await
        .unwrap()
        .unwrap();
    let after = r.obj_wcc.after.unwrap();
    assert_eq!(after.size, 3);
    assert!((after.mtime.seconds, after.mtime.nseconds) > (a.mtime.seconds, a.mtime.nseconds), "mtime moves");
    // Root may chown; a user may not give a file away.
    c.setattr(&SETATTR3args {
        object: f.clone(),
        new_attributes: sattr3 { uid: Nfs3Option::Some(1000), gid: Nfs3Option::Some(1000), ..Default::default() },
        guard: Nfs3Option::None,
    })
    .await
    .unwrap()
    .unwrap();
    let mut u = s.mount("/data", 1000, 1000).await.into_nfs3_client();
    let r = u
        .setattr(&SETATTR3args {
            object: f.clone(),
            new_attributes: sattr3 { uid: Nfs3Option::Some(0), ..Default::default() },
            guard: Nfs3Option::None,
        })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_PERM);
    let mut other = s.mount("/data", 2000, 2000).await.into_nfs3_client();
    let r = other
        .setattr(&SETATTR3args { object: f.clone(), new_attributes: sattr_mode(0o777), guard: Nfs3Option::None })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_PERM, "only the owner changes the mode");
    s.stop().await;
}

#[tokio::test]
async fn permissions_and_access_follow_posix() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let secret = new_file(&mut c, &root, b"secret").await;
    c.setattr(&SETATTR3args { object: secret.clone(), new_attributes: sattr_mode(0o600), guard: Nfs3Option::None })
        .await
        .unwrap()
        .unwrap();
    let mut u = s.mount("/data", 1000, 1000).await.into_nfs3_client();
    // The bucket is root's, 0755: a user cannot create in it or read 0600.
    let r = create(&mut u, &root, b"mine", createhow3::GUARDED(sattr_mode(0o644))).await;
    assert_eq!(status(&r), nfsstat3::NFS3ERR_ACCES);
    assert_eq!(status(&read(&mut u, &secret, 0, 10).await), nfsstat3::NFS3ERR_ACCES);
    let all = ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_LOOKUP | ACCESS3_DELETE | ACCESS3_EXECUTE;
    let acc = u.access(&ACCESS3args { object: secret.clone(), access: all }).await.unwrap().unwrap();
    assert_eq!(acc.access, 0, "ACCESS computes, never echoes");
    let acc = u.access(&ACCESS3args { object: root.clone(), access: all }).await.unwrap().unwrap();
    assert_eq!(acc.access, ACCESS3_READ | ACCESS3_LOOKUP);
    let acc = c.access(&ACCESS3args { object: secret.clone(), access: all }).await.unwrap().unwrap();
    assert_eq!(acc.access, ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND);
    // A directory the user owns: files made there are theirs.
    let home = mkdir(&mut c, &root, b"home", 0o755).await.unwrap().obj.unwrap();
    c.setattr(&SETATTR3args {
        object: home.clone(),
        new_attributes: sattr3 { uid: Nfs3Option::Some(1000), gid: Nfs3Option::Some(1000), ..Default::default() },
        guard: Nfs3Option::None,
    })
    .await
    .unwrap()
    .unwrap();
    let mine = create(&mut u, &home, b"mine", createhow3::GUARDED(sattr_mode(0o644))).await.unwrap();
    let a = mine.obj_attributes.unwrap();
    assert_eq!((a.uid, a.gid), (1000, 1000));
    s.stop().await;
}

#[tokio::test]
async fn readdir_pages_are_complete_and_cookies_survive_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let d = mkdir(&mut c, &root, b"many", 0o755).await.unwrap().obj.unwrap();
    let mut want: Vec<String> = (0..600).map(|i| format!("file-{i:04}")).collect();
    for n in &want {
        new_file(&mut c, &d, n.as_bytes()).await;
    }
    let mut seen = Vec::new();
    let (mut cookie, mut pages) = (0u64, 0);
    loop {
        let r = c
            .readdir(&READDIR3args { dir: d.clone(), cookie, cookieverf: cookieverf3::default(), count: 1024 })
            .await
            .unwrap()
            .unwrap();
        pages += 1;
        for e in &r.reply.entries.0 {
            seen.push(String::from_utf8(e.name.0.to_vec()).unwrap());
            cookie = e.cookie;
        }
        // Delete an entry that was already returned, and one ahead.
        if pages == 3 {
            c.remove(&REMOVE3args { object: dirop(&d, seen.last().unwrap().as_bytes()) }).await.unwrap().unwrap();
            c.remove(&REMOVE3args { object: dirop(&d, b"file-0599") }).await.unwrap().unwrap();
            want.retain(|n| n != "file-0599");
        }
        if r.reply.eof {
            break;
        }
    }
    assert!(pages > 10, "small pages: {pages}");
    seen.retain(|n| n != "." && n != "..");
    assert_eq!(seen, want, "every name exactly once, in creation order, deletes honoured");
    // READDIRPLUS: handles and attributes for every entry.
    let r = c
        .readdirplus(&READDIRPLUS3args {
            dir: d.clone(),
            cookie: 0,
            cookieverf: cookieverf3([9; 8]),
            dircount: 4096,
            maxcount: 65536,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(r.reply.entries.0.len() > 20);
    for e in r.reply.entries.0.iter().filter(|e| e.name.0.as_ref() != b"." && e.name.0.as_ref() != b"..") {
        let fh = e.name_handle.clone().unwrap();
        let attr = e.name_attributes.clone().unwrap();
        assert_eq!(attr.fileid, e.fileid);
        assert_eq!(lookup(&mut c, &d, &e.name.0).await.unwrap().object, fh);
    }
    // Too small for even one entry.
    let r = c
        .readdir(&READDIR3args { dir: d.clone(), cookie: 0, cookieverf: cookieverf3::default(), count: 50 })
        .await
        .unwrap();
    assert_eq!(status(&r), nfsstat3::NFS3ERR_TOOSMALL);
    s.stop().await;
}

#[tokio::test]
async fn fs_info_stat_pathconf_report_real_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let i = c.fsinfo(&FSINFO3args { fsroot: root.clone() }).await.unwrap().unwrap();
    assert_eq!((i.rtmax, i.rtpref, i.wtmax, i.wtpref), (1 << 20, 1 << 20, 1 << 20, 1 << 20));
    assert!(i.maxfilesize >= 1 << 40);
    assert_eq!(i.time_delta, nfstime3 { seconds: 0, nseconds: 1 });
    assert_ne!(i.properties & FSF3_LINK, 0);
    let st = c.fsstat(&FSSTAT3args { fsroot: root.clone() }).await.unwrap().unwrap();
    let vfs = nix_statvfs(dir.path());
    assert_eq!(st.tbytes, vfs, "total bytes of the data volume");
    assert!(st.fbytes > 0 && st.fbytes <= st.tbytes && st.tfiles > 0);
    let p = c.pathconf(&PATHCONF3args { object: root.clone() }).await.unwrap().unwrap();
    assert_eq!(p.name_max, 255);
    assert!(p.no_trunc && p.chown_restricted && p.case_preserving && !p.case_insensitive);
    c.null().await.unwrap();
    s.stop().await;
}

fn nix_statvfs(p: &std::path::Path) -> u64 {
    let out = std::process::Command::new("stat").args(["-f", "-c", "%b %S"]).arg(p).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<u64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    v[0] * v[1]
}

#[tokio::test]
async fn handles_survive_restarts_and_bad_handles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let f = new_file(&mut c, &root, b"persist").await;
    let w = write(&mut c, &f, 0, b"unstable", stable_how::UNSTABLE).await.unwrap();
    c.commit(&COMMIT3args { file: f.clone(), offset: 0, count: 0 }).await.unwrap().unwrap();
    drop(c);
    s.stop().await;
    let s = Server::start(dir.path(), open_exports()).await;
    let mut c = s.mount("/data", 0, 0).await.into_nfs3_client();
    let r = read(&mut c, &f, 0, 100).await.unwrap();
    assert_eq!(&r.data[..], b"unstable", "the old handle reads after a restart");
    let w2 = write(&mut c, &f, 0, b"x", stable_how::UNSTABLE).await.unwrap();
    assert_ne!(w.verf, w2.verf, "the write verifier changes on every restart");
    let garbage = nfs_fh3 { data: Opaque::owned(vec![1, 2, 3]) };
    assert_eq!(status(&getattr(&mut c, &garbage).await), nfsstat3::NFS3ERR_BADHANDLE);
    let too_long = nfs_fh3 { data: Opaque::owned(vec![1; 65]) };
    assert_eq!(status(&getattr(&mut c, &too_long).await), nfsstat3::NFS3ERR_BADHANDLE);
    // A handle the server signed for another generation of the inode (as
    // one kept from before a delete would be) is stale; edited bytes do
    // not verify at all (tests/handles.rs has the full set of edits).
    let mut fh = s.state.handles.open(&f.data).unwrap();
    fh.generation ^= 1;
    let other_generation = nfs_fh3 { data: Opaque::owned(s.state.handles.seal(&fh)) };
    assert_eq!(status(&getattr(&mut c, &other_generation).await), nfsstat3::NFS3ERR_STALE);
    let mut forged = f.data.to_vec();
    forged[28] ^= 1;
    assert_eq!(status(&getattr(&mut c, &nfs_fh3 { data: Opaque::owned(forged) }).await), nfsstat3::NFS3ERR_BADHANDLE);
    s.stop().await;
}

#[tokio::test]
async fn export_options_read_only_allow_list_and_squash() {
    let dir = tempfile::tempdir().unwrap();
    let exports = Exports::new(
        ExportOptions { squash: Squash::Root, ..Default::default() },
        vec![
            ("/data".into(), ExportOptions { read_only: true, ..Default::default() }),
            ("/".into(), ExportOptions { clients: vec!["10.9.0.0/16".parse().unwrap()], ..Default::default() }),
        ],
    )
    .unwrap();
    let s = Server::start(dir.path(), exports).await;
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let r = create(&mut c, &root, b"f", createhow3::GUARDED(sattr_mode(0o644))).await;
    assert_eq!(status(&r), nfsstat3::NFS3ERR_ROFS);
    let acc = c.access(&ACCESS3args { object: root.clone(), access: ACCESS3_MODIFY | ACCESS3_READ }).await;
    assert_eq!(acc.unwrap().unwrap().access, ACCESS3_READ, "no MODIFY on a read-only export");
    assert!(s.try_mount("/", 0, 0).await.is_err(), "127.0.0.1 is not in the root export's allow-list");
    // A handle minted under the root export is refused on every call too.
    let fh = protocol_nfs::handle::FileHandle {
        fsid: s.ns.fsid(),
        export: namespace::ROOT_INO,
        ino: namespace::ROOT_INO,
        generation: s.ns.getattr(namespace::ROOT_INO).unwrap().generation,
    };
    let forged = nfs_fh3 { data: Opaque::owned(s.state.handles.seal(&fh)) };
    assert_eq!(status(&getattr(&mut c, &forged).await), nfsstat3::NFS3ERR_ACCES);
    s.stop().await;
    // root_squash: root's new files belong to the anonymous user.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), Exports::default()).await;
    s.ns.setattr(
        &namespace::Caller::root(),
        s.ns.bucket(b"data").unwrap().ino,
        &namespace::SetAttr { mode: Some(0o777), ..Default::default() },
        None,
    )
    .unwrap();
    let conn = s.mount("/data", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let a = create(&mut c, &root, b"squashed", createhow3::GUARDED(sattr_mode(0o644))).await.unwrap();
    let a = a.obj_attributes.unwrap();
    assert_eq!((a.uid, a.gid), (65534, 65534));
    s.stop().await;
}

#[tokio::test]
async fn root_export_mkdir_makes_buckets_only_with_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    let conn = s.mount("/", 0, 0).await;
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    mkdir(&mut c, &root, b"new-bucket", 0o755).await.unwrap();
    assert!(s.ns.bucket(b"new-bucket").is_ok());
    assert_eq!(status(&mkdir(&mut c, &root, b"Bad_Name", 0o755).await), nfsstat3::NFS3ERR_INVAL);
    let r = create(&mut c, &root, b"file-at-root", createhow3::GUARDED(sattr_mode(0o644))).await;
    assert_eq!(status(&r), nfsstat3::NFS3ERR_INVAL, "only buckets live at the root");
    let mut names = Vec::new();
    let r = c
        .readdirplus(&READDIRPLUS3args {
            dir: root.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            dircount: 65536,
            maxcount: 65536,
        })
        .await
        .unwrap()
        .unwrap();
    for e in r.reply.entries.0 {
        names.push(String::from_utf8(e.name.0.to_vec()).unwrap());
    }
    assert_eq!(names, [".", "..", "data", "new-bucket"]);
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_only_knows_the_portmapper_finds_nfs_and_mount() {
    use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), open_exports()).await;
    // No NFS or MOUNT port given: the client asks portmap GETPORT, which
    // answers on the same port (or on 111 with --portmap-listen).
    let conn = nfs3_client::Nfs3ConnectionBuilder::new(nfs3_client::tokio::TokioConnector, "127.0.0.1", "/data")
        .connect_from_privileged_port(false)
        .portmapper_port(s.addr.port())
        .credential(opaque_auth::auth_unix(&auth_unix::default()))
        .mount()
        .await
        .expect("mount through the portmapper");
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    assert_eq!(getattr(&mut c, &root).await.unwrap().obj_attributes.type_, ftype3::NF3DIR);
    s.stop().await;
}
