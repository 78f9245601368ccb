//! Byte-level ONC-RPC tests with a raw client: malformed and hostile
//! input, the duplicate request cache across reconnects, pipelining past
//! the in-flight cap, and connection-reset floods.

mod common;

use std::time::Duration;

use common::{open_exports, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NFS: u32 = 100_003;
const MOUNT: u32 = 100_005;

/// An XDR builder.
#[derive(Default, Clone)]
struct W(Vec<u8>);

impl W {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(self, v: u64) -> Self {
        self.u32((v >> 32) as u32).u32(v as u32)
    }
    fn opaque(mut self, d: &[u8]) -> Self {
        self = self.u32(d.len() as u32);
        self.0.extend_from_slice(d);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
}

/// A call header with AUTH_SYS uid/gid 0 and the given groups.
fn call(xid: u32, prog: u32, vers: u32, proc_: u32, gids: &[u32]) -> W {
    let mut cred = W::default().u32(1).opaque(b"wire").u32(0).u32(0).u32(gids.len() as u32);
    for g in gids {
        cred = cred.u32(*g);
    }
    W::default().u32(xid).u32(0).u32(2).u32(prog).u32(vers).u32(proc_).u32(1).opaque(&cred.0).u32(0).u32(0)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (0x8000_0000u32 | body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

async fn send(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&frame(body)).await.unwrap();
}

/// Reads one reply record; `None` if the server closed the connection.
async fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut h)).await.expect("reply in time").ok()?;
        let h = u32::from_be_bytes(h);
        let start = out.len();
        out.resize(start + (h & 0x7FFF_FFFF) as usize, 0);
        s.read_exact(&mut out[start..]).await.ok()?;
        if h & 0x8000_0000 != 0 {
            return Some(out);
        }
    }
}

fn word(r: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(r[i * 4..i * 4 + 4].try_into().unwrap())
}

/// reply_stat (word 2) and accept_stat (word 5) of an accepted reply.
fn stats(r: &[u8]) -> (u32, u32) {
    (word(r, 2), word(r, 5))
}

async fn mount_root(s: &mut TcpStream) -> Vec<u8> {
    send(s, &call(1, MOUNT, 3, 1, &[]).opaque(b"/data").0).await;
    let r = recv(s).await.unwrap();
    assert_eq!(stats(&r), (0, 0));
    assert_eq!(word(&r, 6), 0, "MNT3_OK");
    let len = word(&r, 7) as usize;
    r[32..32 + len].to_vec()
}

#[tokio::test]
async fn bad_programs_versions_procedures_and_arguments_get_rpc_answers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), open_exports()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    send(&mut s, &call(10, NFS, 4, 0, &[]).0).await;
    let r = recv(&mut s).await.unwrap();
    assert_eq!((stats(&r), word(&r, 6), word(&r, 7)), ((0, 2), 3, 3), "NFSv4 → PROG_MISMATCH(3,3)");
    send(&mut s, &call(11, 100_021, 4, 0, &[]).0).await;
    assert_eq!(stats(&recv(&mut s).await.unwrap()), (0, 1), "NLM → PROG_UNAVAIL");
    send(&mut s, &call(12, NFS, 3, 99, &[]).0).await;
    assert_eq!(stats(&recv(&mut s).await.unwrap()), (0, 3), "PROC_UNAVAIL");
    send(&mut s, &call(13, NFS, 3, 1, &[]).0).await; // GETATTR without its handle
    assert_eq!(stats(&recv(&mut s).await.unwrap()), (0, 4), "GARBAGE_ARGS");
    // A handle claiming 4 GiB in a tiny record.
    send(&mut s, &call(14, NFS, 3, 1, &[]).u32(0xFFFF_FFF0).0).await;
    assert_eq!(stats(&recv(&mut s).await.unwrap()), (0, 4));
    // The gids bomb: 17 groups, then a claim of 2^32-1 groups.
    send(&mut s, &call(15, NFS, 3, 0, &[7; 17]).0).await;
    let r = recv(&mut s).await.unwrap();
    assert_eq!((word(&r, 2), word(&r, 3), word(&r, 4)), (1, 1, 1), "MSG_DENIED AUTH_ERROR AUTH_BADCRED");
    let bomb_cred = W::default().u32(1).opaque(b"h").u32(0).u32(0).u32(u32::MAX);
    let bomb = W::default().u32(16).u32(0).u32(2).u32(NFS).u32(3).u32(0).u32(1).opaque(&bomb_cred.0).u32(0).u32(0);
    send(&mut s, &bomb.0).await;
    assert_eq!(word(&recv(&mut s).await.unwrap(), 2), 1);
    // An unsupported flavour (RPCSEC_GSS = 6).
    let gss = W::default().u32(17).u32(0).u32(2).u32(NFS).u32(3).u32(0).u32(6).opaque(b"x").u32(0).u32(0);
    send(&mut s, &gss.0).await;
    let r = recv(&mut s).await.unwrap();
    assert_eq!((word(&r, 2), word(&r, 4)), (1, 5), "AUTH_TOOWEAK");
    // The connection survived all of that.
    send(&mut s, &call(18, NFS, 3, 0, &[]).0).await;
    assert_eq!(stats(&recv(&mut s).await.unwrap()), (0, 0));
    // Portmap on the same port reports it for NFS 3 / TCP, 0 for others.
    send(&mut s, &call(19, 100_000, 2, 3, &[]).u32(NFS).u32(3).u32(6).u32(0).0).await;
    assert_eq!(word(&recv(&mut s).await.unwrap(), 6), srv.addr.port() as u32);
    send(&mut s, &call(20, 100_000, 2, 3, &[]).u32(NFS).u32(4).u32(6).u32(0).0).await;
    assert_eq!(word(&recv(&mut s).await.unwrap(), 6), 0);
    // UMNT returns void: the reply ends right after accept_stat.
    send(&mut s, &call(21, MOUNT, 3, 3, &[]).opaque(b"/data").0).await;
    assert_eq!(recv(&mut s).await.unwrap().len(), 24);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_and_malformed_records_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), open_exports()).await;
    let mut good = TcpStream::connect(srv.addr).await.unwrap();
    let mut bad = TcpStream::connect(srv.addr).await.unwrap();
    // A header claiming 2 GiB: the server must close, not allocate.
    bad.write_all(&0xFFFF_FFFFu32.to_be_bytes()).await.unwrap();
    assert!(recv(&mut bad).await.is_none(), "closed");
    let mut junk = TcpStream::connect(srv.addr).await.unwrap();
    send(&mut junk, &[0, 0, 0, 1, 0, 0, 0, 1]).await; // a REPLY, not a call
    assert!(recv(&mut junk).await.is_none());
    send(&mut good, &call(1, NFS, 3, 0, &[]).0).await;
    assert_eq!(stats(&recv(&mut good).await.unwrap()), (0, 0), "other connections are unaffected");
    // A flood of connect + reset does not stop the accept loop.
    for _ in 0..200 {
        let s = TcpStream::connect(srv.addr).await.unwrap();
        // Linger 0 makes the close an RST, which is the point here.
        #[allow(deprecated)]
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    }
    let mut after = TcpStream::connect(srv.addr).await.unwrap();
    send(&mut after, &call(2, NFS, 3, 0, &[]).0).await;
    assert_eq!(stats(&recv(&mut after).await.unwrap()), (0, 0));
    srv.stop().await;
}

#[tokio::test]
async fn a_retransmitted_create_after_a_reconnect_gets_the_original_reply() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), open_exports()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let root = mount_root(&mut s).await;
    // CREATE GUARDED "once" (mode 0644).
    let create = |xid| {
        call(xid, NFS, 3, 8, &[])
            .opaque(&root)
            .opaque(b"once")
            .u32(1)
            .u32(1)
            .u32(0o644)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(0)
    };
    send(&mut s, &create(77).0).await;
    let first = recv(&mut s).await.unwrap();
    assert_eq!(word(&first, 6), 0, "NFS3_OK");
    drop(s);
    // Same xid and arguments from a new connection (a new source port).
    let mut s2 = TcpStream::connect(srv.addr).await.unwrap();
    send(&mut s2, &create(77).0).await;
    let replay = recv(&mut s2).await.unwrap();
    assert_eq!(replay, first, "replayed byte for byte, not EXIST");
    // A new xid really executes, and fails as GUARDED must.
    send(&mut s2, &create(78).0).await;
    assert_eq!(word(&recv(&mut s2).await.unwrap(), 6), 17, "NFS3ERR_EXIST");
    srv.stop().await;
}

#[tokio::test]
async fn pipelined_calls_past_the_in_flight_cap_all_get_answers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), open_exports()).await; // cap: 16 per connection
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let root = mount_root(&mut s).await;
    let n = 500u32;
    let mut all = Vec::new();
    for xid in 1000..1000 + n {
        all.extend_from_slice(&frame(&call(xid, NFS, 3, 1, &[]).opaque(&root).0));
    }
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&all).await.unwrap() });
    let mut xids = Vec::new();
    for _ in 0..n {
        let mut h = [0u8; 4];
        rd.read_exact(&mut h).await.unwrap();
        let mut body = vec![0u8; (u32::from_be_bytes(h) & 0x7FFF_FFFF) as usize];
        rd.read_exact(&mut body).await.unwrap();
        assert_eq!(stats(&body), (0, 0), "never SYSTEM_ERR under load");
        assert_eq!(word(&body, 6), 0, "GETATTR OK");
        xids.push(word(&body, 0));
    }
    writer.await.unwrap();
    xids.sort();
    assert_eq!(xids, (1000..1000 + n).collect::<Vec<_>>());
    srv.stop().await;
}

#[tokio::test]
async fn unstable_writes_are_durable_after_commit_and_resent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), open_exports()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let root = mount_root(&mut s).await;
    send(
        &mut s,
        &call(2, NFS, 3, 8, &[])
            .opaque(&root)
            .opaque(b"ckpt")
            .u32(0)
            .u32(1)
            .u32(0o644)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(0)
            .0,
    )
    .await;
    let r = recv(&mut s).await.unwrap();
    assert_eq!(word(&r, 6), 0);
    let fh = r[36..36 + word(&r, 8) as usize].to_vec();
    let write = |xid, off: u64, data: &[u8]| {
        call(xid, NFS, 3, 7, &[]).opaque(&fh).u64(off).u32(data.len() as u32).u32(0).opaque(data)
    };
    send(&mut s, &write(3, 0, b"abcd").0).await;
    let w = recv(&mut s).await.unwrap();
    // WRITE3resok: status, wcc (pre FALSE, post TRUE + 84 bytes), count, committed, verf.
    let base = 6 + 1 + 1 + 1 + 21;
    assert_eq!((word(&w, base), word(&w, base + 1)), (4, 0), "count 4, UNSTABLE");
    let verf1 = w[(base + 2) * 4..(base + 4) * 4].to_vec();
    send(&mut s, &call(4, NFS, 3, 21, &[]).opaque(&fh).u64(0).u32(0).0).await;
    let c = recv(&mut s).await.unwrap();
    assert_eq!(word(&c, 6), 0);
    assert_eq!(&c[c.len() - 8..], &verf1[..], "COMMIT returns the same verifier: nothing to resend");
    drop(s);
    srv.stop().await;
    let srv = Server::start(dir.path(), open_exports()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    send(&mut s, &call(5, NFS, 3, 21, &[]).opaque(&fh).u64(0).u32(0).0).await;
    let c = recv(&mut s).await.unwrap();
    assert_ne!(&c[c.len() - 8..], &verf1[..], "after a restart the verifier differs: clients resend");
    let bucket = srv.ns.bucket(b"data").unwrap().ino;
    let f = srv.ns.lookup(&namespace::Caller::root(), bucket, b"ckpt").unwrap();
    let (data, _) = srv.ns.read(&namespace::Caller::root(), f.ino, 0, 100).unwrap();
    assert_eq!(data, b"abcd", "committed data survived the restart");
    srv.stop().await;
}
