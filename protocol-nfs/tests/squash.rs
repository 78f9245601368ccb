//! Who gets in through AUTH_SYS: a client chooses its own uid, gid and
//! groups, so an export's `squash` is the only thing between a forged
//! credential and the files. Driven by `nfs3_client` with hand-built
//! credentials.

mod common;

use common::Server;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};
use protocol_nfs::{ExportOptions, Exports, Squash};
use tokio::net::TcpStream;

type Conn = Nfs3Client<TokioIo<TcpStream>>;

/// Mounts `/data` with an AUTH_SYS credential of the client's choosing.
async fn mount_as(s: &Server, uid: u32, gid: u32, gids: Vec<u32>) -> (nfs_fh3, Conn) {
    let cred = auth_unix { stamp: 1, machinename: Opaque::owned(b"forger".to_vec()), uid, gid, gids };
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/data")
        .connect_from_privileged_port(false)
        .mount_port(s.addr.port())
        .nfs3_port(s.addr.port())
        .credential(opaque_auth::auth_unix(&cred))
        .mount()
        .await
        .expect("mount");
    (conn.root_nfs_fh3(), conn.into_nfs3_client())
}

async fn read_status(c: &mut Conn, dir: &nfs_fh3, name: &[u8]) -> nfsstat3 {
    let what = diropargs3 { dir: dir.clone(), name: filename3::from(name.to_vec()) };
    let f = match c.lookup(&LOOKUP3args { what }).await.unwrap() {
        Nfs3Result::Ok(ok) => ok.object,
        Nfs3Result::Err((s, _)) => return s,
    };
    match c.read(&READ3args { file: f, offset: 0, count: 64 }).await.unwrap() {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => s,
    }
}

/// A file only its owner (uid 1000) and group 2000 may read.
fn group_file(s: &Server) {
    let root = namespace::Caller::root();
    let b = s.ns.bucket(b"data").unwrap().ino;
    let f = s.ns.create(&root, b, b"team", 0o640, namespace::CreateMode::Guarded).unwrap();
    s.ns.write(&root, f.ino, 0, b"secret").unwrap();
    let set = namespace::SetAttr { uid: Some(1000), gid: Some(2000), mode: Some(0o640), ..Default::default() };
    s.ns.setattr(&root, f.ino, &set, None).unwrap();
}

#[tokio::test]
async fn forged_groups_do_not_pass_a_squash_all_export() {
    let dir = tempfile::tempdir().unwrap();
    let all = ExportOptions { squash: Squash::All, ..Default::default() };
    let s = Server::start(dir.path(), Exports::new(all, vec![]).unwrap()).await;
    group_file(&s);
    // The owner's uid, the file's group as primary and supplementary, and
    // root: every credential acts as the anonymous user.
    for (uid, gid, gids) in [(1000, 2000, vec![2000]), (4242, 4242, vec![2000, 0]), (0, 0, vec![0, 2000])] {
        let (root, mut c) = mount_as(&s, uid, gid, gids.clone()).await;
        assert_eq!(
            read_status(&mut c, &root, b"team").await,
            nfsstat3::NFS3ERR_ACCES,
            "uid {uid} gid {gid} groups {gids:?} on a squash=all export"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn without_squash_the_same_groups_are_trusted() {
    // The control for the test above: the credentials it forges do grant
    // access where the export trusts client ids (`squash = "none"`).
    let dir = tempfile::tempdir().unwrap();
    let none = ExportOptions { squash: Squash::None, ..Default::default() };
    let s = Server::start(dir.path(), Exports::new(none, vec![]).unwrap()).await;
    group_file(&s);
    let (root, mut c) = mount_as(&s, 4242, 4242, vec![2000]).await;
    assert_eq!(read_status(&mut c, &root, b"team").await, nfsstat3::NFS3_OK);
    let (root, mut c) = mount_as(&s, 4242, 4242, vec![]).await;
    assert_eq!(read_status(&mut c, &root, b"team").await, nfsstat3::NFS3ERR_ACCES);
    s.stop().await;
}

#[tokio::test]
async fn root_squash_maps_root_but_keeps_other_groups() {
    // squash = "root" (the default), as Linux nfsd's root_squash: uid 0 and
    // gid 0 become the anonymous ids; other supplementary groups stay.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), Exports::default()).await;
    group_file(&s);
    let (root, mut c) = mount_as(&s, 0, 0, vec![0]).await;
    assert_eq!(read_status(&mut c, &root, b"team").await, nfsstat3::NFS3ERR_ACCES, "root is squashed");
    let (root, mut c) = mount_as(&s, 0, 0, vec![2000]).await;
    assert_eq!(read_status(&mut c, &root, b"team").await, nfsstat3::NFS3_OK, "group 2000 is not root's");
    s.stop().await;
}
