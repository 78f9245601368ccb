//! Upstream buckets end to end: gateway A is a plain gateway holding the
//! bucket `origin`; gateways B and C bind their bucket `cache` to it (a
//! real S3 server as the upstream, over HTTP, signed). Objects written to
//! A appear in B by S3 and NFS without an import; reads fetch and cache
//! them; writes and deletes through B reach A; changes made directly on A
//! (and through C) show in B after the revalidation time; with A down,
//! cached data is still served by both doors (also after B is killed and
//! restarted), uncached reads fail fast with S3 503 / NFS3ERR_JUKEBOX, and
//! everything works again once A is back.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use namespace::{CredentialSource, Upstream, UpstreamBinding, UpstreamError};
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioConnector;
use nfs3_client::Nfs3ConnectionBuilder;
use upstream_s3::{Credentials, S3Upstream, Tuning};

const A_KEY: (&str, &str) = ("AKUPSTREAMA", "secret-of-the-upstream-gateway");
const B_KEY: (&str, &str) = ("AKCACHEB", "secret-of-the-cache-gateway-b");
const C_KEY: (&str, &str) = ("AKCACHEC", "secret-of-the-cache-gateway-c");
/// B's chunk size: objects here span several fetch windows.
const CHUNK_BYTES: usize = 1 << 20;

/// A test client of `bucket` at `s3` (the product's own S3 client, without
/// retries, so that a 503 shows as one).
fn client(s3: SocketAddr, bucket: &str, key: (&str, &str)) -> S3Upstream {
    let b = UpstreamBinding {
        endpoint: format!("http://{s3}"),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        prefix: String::new(),
        virtual_host: false,
        ca_file: None,
        credentials: CredentialSource::Config,
        revalidate_secs: 0,
        upload_delay_secs: 0,
        write_back: false,
    };
    let creds = Credentials { access_key_id: key.0.into(), secret_access_key: key.1.into() };
    let tuning = Tuning { retries: 0, retry_window: Duration::from_secs(1), request_timeout: Duration::from_secs(60) };
    S3Upstream::with_tuning(&b, Some(creds), tuning).unwrap()
}

struct Bytes<'a>(&'a [u8]);

impl namespace::UploadBody for Bytes<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> namespace::NsResult<usize> {
        let rest = &self.0[(offset as usize).min(self.0.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

fn put(c: &S3Upstream, key: &str, data: &[u8]) {
    c.put(key, &Bytes(data), None).unwrap_or_else(|e| panic!("PUT {key}: {e}"));
}

fn get(c: &S3Upstream, key: &str, len: usize) -> Result<Vec<u8>, UpstreamError> {
    c.get_range(key, 0..len as u64, "")
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed).collect()
}

fn cache_config(a: SocketAddr, key: (&str, &str)) -> String {
    format!(
        "chunk_size_mib = 1\n[nfs_export_defaults]\nsquash = \"none\"\n\n[[upstream_bucket]]\nname = \"cache\"\nendpoint = \"http://{a}\"\nbucket = \"origin\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nrevalidate_secs = 1\n\
         upload_delay_secs = 2\n",
        key.0, key.1
    )
}

fn create_bucket(dir: &Path, name: &str) {
    let out = common::gateway().args(["bucket", "create", name, "--data-dir"]).arg(dir.join("data")).output().unwrap();
    assert!(out.status.success(), "bucket create: {}", String::from_utf8_lossy(&out.stderr));
}

/// Polls `key` on `c` until it holds `want` (uploads wait for B's quiet
/// delay of 2 s and its 1 s upload pass).
fn eventually(c: &S3Upstream, key: &str, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(c, key, want.len()) {
            Ok(got) if got == want => return,
            other => assert!(Instant::now() < deadline, "{key} never arrived: {:?}", other.map(|v| v.len())),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a `gateway` admin command against a data directory; its stdout.
fn admin(dir: &Path, args: &[&str]) -> String {
    let out = common::gateway().args(args).arg("--data-dir").arg(dir.join("data")).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `parent/name`, created.
fn subdir(parent: &Path, name: &str) -> std::path::PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Gateway A (the upstream) in `dir` with its bucket `origin`, and a
/// client of that bucket.
fn start_origin(dir: &Path) -> (common::Gateway, S3Upstream) {
    let gw = common::start(dir, "", A_KEY.0, A_KEY.1, "warn", &[]);
    create_bucket(dir, "origin");
    let origin = client(gw.s3, "origin", A_KEY);
    (gw, origin)
}

/// Waits past B's revalidation time (1 s).
fn past_revalidation() {
    std::thread::sleep(Duration::from_millis(1300));
}

/// An NFS session on `/cache` of a gateway.
struct Nfs {
    rt: tokio::runtime::Runtime,
    c: nfs3_client::Nfs3Client<nfs3_client::tokio::TokioIo<tokio::net::TcpStream>>,
    root: nfs_fh3,
}

impl Nfs {
    fn mount(addr: SocketAddr) -> Nfs {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let cred = auth_unix { stamp: 1, machinename: Opaque::owned(b"up".to_vec()), uid: 0, gid: 0, gids: vec![] };
        let conn = rt
            .block_on(
                Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/cache")
                    .connect_from_privileged_port(false)
                    .mount_port(addr.port())
                    .nfs3_port(addr.port())
                    .credential(opaque_auth::auth_unix(&cred))
                    .mount(),
            )
            .expect("mount /cache");
        let root = conn.root_nfs_fh3();
        Nfs { rt, c: conn.into_nfs3_client(), root }
    }

    fn lookup(&mut self, path: &str) -> Result<nfs_fh3, nfsstat3> {
        let mut fh = self.root.clone();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let args =
                LOOKUP3args { what: diropargs3 { dir: fh.clone(), name: filename3::from(comp.as_bytes().to_vec()) } };
            fh = match self.rt.block_on(self.c.lookup(&args)).unwrap() {
                Nfs3Result::Ok(ok) => ok.object,
                Nfs3Result::Err((s, _)) => return Err(s),
            };
        }
        Ok(fh)
    }

    fn read_all(&mut self, path: &str, len: usize) -> Result<Vec<u8>, nfsstat3> {
        let fh = self.lookup(path)?;
        let mut out = Vec::new();
        while out.len() < len {
            let args = READ3args { file: fh.clone(), offset: out.len() as u64, count: 256 << 10 };
            match self.rt.block_on(self.c.read(&args)).unwrap() {
                Nfs3Result::Ok(ok) => {
                    out.extend_from_slice(ok.data.as_ref());
                    if ok.eof {
                        break;
                    }
                }
                Nfs3Result::Err((s, _)) => return Err(s),
            }
        }
        Ok(out)
    }

    fn remove(&mut self, dir: &str, name: &str) -> Result<(), nfsstat3> {
        let dir = self.lookup(dir)?;
        let args = REMOVE3args { object: diropargs3 { dir, name: filename3::from(name.as_bytes().to_vec()) } };
        match self.rt.block_on(self.c.remove(&args)).unwrap() {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// Creates `dir/name`, writes `data` UNSTABLE and COMMITs it, as a
    /// kernel client writing a checkpoint does.
    fn write_file(&mut self, dir: &str, name: &str, data: &[u8]) {
        let dir = self.lookup(dir).unwrap();
        let how = createhow3::UNCHECKED(sattr3 { mode: Nfs3Option::Some(0o644), ..Default::default() });
        let args = CREATE3args { where_: diropargs3 { dir, name: filename3::from(name.as_bytes().to_vec()) }, how };
        let fh = match self.rt.block_on(self.c.create(&args)).unwrap() {
            Nfs3Result::Ok(ok) => ok.obj.unwrap(),
            Nfs3Result::Err((s, _)) => panic!("create {name}: {s:?}"),
        };
        for (i, piece) in data.chunks(256 << 10).enumerate() {
            let args = WRITE3args {
                file: fh.clone(),
                offset: (i * (256 << 10)) as u64,
                count: piece.len() as u32,
                stable: stable_how::UNSTABLE,
                data: Opaque::owned(piece.to_vec()),
            };
            assert!(matches!(self.rt.block_on(self.c.write(&args)).unwrap(), Nfs3Result::Ok(_)), "write {name}");
        }
        let commit = COMMIT3args { file: fh, offset: 0, count: 0 };
        assert!(matches!(self.rt.block_on(self.c.commit(&commit)).unwrap(), Nfs3Result::Ok(_)), "commit {name}");
    }

    fn rename(&mut self, dir: &str, from: &str, to: &str) -> Result<(), nfsstat3> {
        let d = self.lookup(dir)?;
        let args = RENAME3args {
            from: diropargs3 { dir: d.clone(), name: filename3::from(from.as_bytes().to_vec()) },
            to: diropargs3 { dir: d, name: filename3::from(to.as_bytes().to_vec()) },
        };
        match self.rt.block_on(self.c.rename(&args)).unwrap() {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    fn names(&mut self, path: &str) -> Vec<String> {
        let dir = if path.is_empty() { self.root.clone() } else { self.lookup(path).unwrap() };
        let args = READDIR3args { dir, cookie: 0, cookieverf: cookieverf3::default(), count: 64 << 10 };
        match self.rt.block_on(self.c.readdir(&args)).unwrap() {
            Nfs3Result::Ok(ok) => {
                let mut v: Vec<String> = ok
                    .reply
                    .entries
                    .0
                    .iter()
                    .map(|e| String::from_utf8_lossy(e.name.as_ref()).to_string())
                    .filter(|n| n != "." && n != "..")
                    .collect();
                v.sort();
                v
            }
            Nfs3Result::Err((s, _)) => panic!("readdir {path}: {s:?}"),
        }
    }
}

#[test]
fn upstream_bucket_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, db, dc) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    for d in [&da, &db, &dc] {
        std::fs::create_dir_all(d).unwrap();
    }
    // A on a fixed port, so that it can come back on the same address.
    let a_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let a_listen = format!("127.0.0.1:{a_port}");
    let mut gw_a = common::start_at(&da, "", A_KEY.0, A_KEY.1, "warn", &a_listen, &[]);
    create_bucket(&da, "origin");
    let origin = client(gw_a.s3, "origin", A_KEY);

    // A dataset already in the upstream before B exists.
    let big = pattern(1, 2 * CHUNK_BYTES + 654_321);
    let cold = pattern(2, CHUNK_BYTES + 17);
    put(&origin, "data/a.bin", &big);
    put(&origin, "data/cold.bin", &cold);
    put(&origin, "data/sub/b.txt", b"bee");
    put(&origin, "top.txt", b"top v1");

    let mut gw_b = common::start(&db, &cache_config(gw_a.s3, A_KEY), B_KEY.0, B_KEY.1, "info", &[]);
    let b = client(gw_b.s3, "cache", B_KEY);

    // Listing: the upstream's objects appear without an import.
    let top = b.list_dir("", 1000).unwrap();
    assert_eq!(top.dirs, vec!["data".to_string()]);
    assert_eq!(top.objects.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["top.txt"]);
    let data = b.list_dir("data/", 1000).unwrap();
    let mut names: Vec<_> = data.objects.iter().map(|o| (o.name.clone(), o.size)).collect();
    names.sort();
    assert_eq!(names, vec![("a.bin".into(), big.len() as u64), ("cold.bin".into(), cold.len() as u64)]);
    assert_eq!(data.dirs, vec!["sub".to_string()]);

    // Reads: a range in the middle first (fetches only its windows), then
    // the whole object; both doors see the same bytes.
    let mid = 1_500_000u64..1_600_000u64;
    assert_eq!(b.get_range("data/a.bin", mid.clone(), "").unwrap(), &big[mid.start as usize..mid.end as usize]);
    assert_eq!(get(&b, "data/a.bin", big.len()).unwrap(), big);
    let mut nfs = Nfs::mount(gw_b.nfs);
    assert_eq!(nfs.names(""), vec!["data", "top.txt"]);
    assert_eq!(nfs.names("data"), vec!["a.bin", "cold.bin", "sub"]);
    assert_eq!(nfs.read_all("data/a.bin", big.len()).unwrap(), big);
    assert_eq!(nfs.read_all("data/sub/b.txt", 3).unwrap(), b"bee");

    // Write-through: a PUT to B is in A when it is answered; one over the
    // single-PUT limit reaches A as a multipart upload.
    let ckpt = pattern(3, 3 * CHUNK_BYTES + 5);
    put(&b, "ckpt/step-1.bin", &ckpt);
    assert_eq!(get(&origin, "ckpt/step-1.bin", ckpt.len()).unwrap(), ckpt);
    let large = pattern(4, upstream_s3::SINGLE_PUT_BYTES_MAX as usize + 3 * CHUNK_BYTES + 1);
    put(&b, "ckpt/large.bin", &large);
    assert_eq!(get(&origin, "ckpt/large.bin", large.len()).unwrap(), large);
    // Deletes propagate, by S3 and by NFS.
    b.delete("top.txt").unwrap();
    assert_eq!(get(&origin, "top.txt", 6), Err(UpstreamError::NotFound));
    nfs.remove("ckpt", "large.bin").unwrap();
    assert_eq!(get(&origin, "ckpt/large.bin", 1), Err(UpstreamError::NotFound));

    // NFS writes reach the upstream once quiet (a checkpoint written to a
    // temporary name and renamed, as torch.save users do), renames of
    // uploaded files become copy + delete upstream, and a flush returns
    // when everything is up.
    let step2 = pattern(5, 2 * CHUNK_BYTES + 99);
    nfs.write_file("ckpt", "step-2.tmp", &step2);
    nfs.rename("ckpt", "step-2.tmp", "step-2.pt").unwrap();
    eventually(&origin, "ckpt/step-2.pt", &step2);
    assert_eq!(get(&origin, "ckpt/step-2.tmp", 1), Err(UpstreamError::NotFound));
    nfs.rename("ckpt", "step-2.pt", "step-2-final.pt").unwrap();
    eventually(&origin, "ckpt/step-2-final.pt", &step2);
    assert_eq!(get(&origin, "ckpt/step-2.pt", 1), Err(UpstreamError::NotFound));
    let step3 = pattern(6, CHUNK_BYTES / 2);
    nfs.write_file("ckpt", "step-3.pt", &step3);
    let flushed = admin(&db, &["cache", "flush", "cache/ckpt/"]);
    assert!(flushed.contains("1 file(s) uploaded"), "{flushed}");
    assert_eq!(get(&origin, "ckpt/step-3.pt", step3.len()).unwrap(), step3, "uploaded when flush returned");
    let status = admin(&db, &["cache", "status"]);
    assert!(status.contains("upload queue: 0 item(s)"), "{status}");
    // kill -9 with a dirty queue: the upload happens after the restart.
    let step4 = pattern(7, CHUNK_BYTES + 3);
    nfs.write_file("ckpt", "step-4.pt", &step4);
    drop(nfs);
    drop(gw_b);
    assert_eq!(get(&origin, "ckpt/step-4.pt", 1), Err(UpstreamError::NotFound), "uploaded before the kill");
    gw_b = common::start(&db, &cache_config(gw_a.s3, A_KEY), B_KEY.0, B_KEY.1, "info", &[]);
    let b = client(gw_b.s3, "cache", B_KEY);
    eventually(&origin, "ckpt/step-4.pt", &step4);
    let mut nfs = Nfs::mount(gw_b.nfs);

    // A local change racing an upstream change: neither is lost. B edits
    // an upstream file over NFS; before B's upload (2 s quiet) the object
    // changes in A; B's conditional upload fails and B keeps its version
    // under a conflict name, uploaded there.
    nfs.write_file("data/sub", "b.txt", b"local edit");
    put(&origin, "data/sub/b.txt", b"upstream edit");
    admin(&db, &["cache", "flush", "cache"]);
    admin(&db, &["cache", "flush", "cache"]);
    assert_eq!(get(&origin, "data/sub/b.txt", 13).unwrap(), b"upstream edit", "the upstream's version was overwritten");
    let sub = origin.list_dir("data/sub/", 100).unwrap();
    let kept: Vec<_> = sub.objects.iter().filter(|o| o.name.starts_with("b.txt.conflict-")).collect();
    assert_eq!(kept.len(), 1, "{:?}", sub.objects);
    assert_eq!(get(&origin, &format!("data/sub/{}", kept[0].name), 10).unwrap(), b"local edit");
    assert!(admin(&db, &["cache", "status"]).contains("1 conflict(s)"));
    past_revalidation();
    assert_eq!(nfs.read_all("data/sub/b.txt", 13).unwrap(), b"upstream edit", "B shows the upstream's version");

    // Changes made directly upstream show after the revalidation time.
    put(&origin, "data/sub/b.txt", b"bee v2");
    origin.delete("data/cold.bin").unwrap();
    put(&origin, "data/new.txt", b"new");
    past_revalidation();
    assert_eq!(get(&b, "data/sub/b.txt", 6).unwrap(), b"bee v2");
    assert_eq!(get(&b, "data/cold.bin", cold.len()), Err(UpstreamError::NotFound));
    assert_eq!(nfs.names("data"), vec!["a.bin", "new.txt", "sub"]);
    assert_eq!(nfs.read_all("data/new.txt", 3).unwrap(), b"new");
    put(&origin, "data/cold.bin", &cold); // back, for the outage below

    // Two gateways on one upstream bucket see each other's writes.
    let gw_c = common::start(&dc, &cache_config(gw_a.s3, A_KEY), C_KEY.0, C_KEY.1, "info", &[]);
    let c = client(gw_c.s3, "cache", C_KEY);
    assert_eq!(get(&c, "ckpt/step-1.bin", ckpt.len()).unwrap(), ckpt, "C reads what B wrote");
    put(&c, "from-c.txt", b"written through C");
    past_revalidation();
    assert_eq!(get(&b, "from-c.txt", 17).unwrap(), b"written through C", "B reads what C wrote");
    let mut nfs_c = Nfs::mount(gw_c.nfs);
    nfs.write_file("", "from-b-nfs.txt", b"written over NFS on B");
    admin(&db, &["cache", "flush", "cache"]);
    past_revalidation();
    assert_eq!(nfs_c.read_all("from-b-nfs.txt", 21).unwrap(), b"written over NFS on B", "C's NFS reads B's NFS write");
    assert_eq!(nfs.read_all("from-c.txt", 17).unwrap(), b"written through C", "B's NFS reads C's S3 write");
    drop(nfs_c);
    drop(gw_c);
    // B lists the object put back above (not read yet: uncached).
    assert_eq!(nfs.names("data"), vec!["a.bin", "cold.bin", "new.txt", "sub"]);

    // Upstream down: cached data is still served by both doors; an
    // uncached read fails at once with a retryable answer.
    drop(gw_a);
    past_revalidation();
    assert_eq!(get(&b, "data/a.bin", big.len()).unwrap(), big);
    assert_eq!(nfs.read_all("data/a.bin", big.len()).unwrap(), big);
    let t = Instant::now();
    match get(&b, "data/cold.bin", cold.len()) {
        Err(UpstreamError::Unavailable(why)) => assert!(why.contains("503"), "{why}"),
        other => panic!("uncached GET with the upstream down: {:?}", other.map(|v| v.len())),
    }
    assert_eq!(nfs.read_all("data/cold.bin", cold.len()), Err(nfsstat3::NFS3ERR_JUKEBOX));
    assert!(t.elapsed() < Duration::from_secs(30), "failing took {:?}", t.elapsed());

    // kill -9 of B: the cache survives the restart (upstream still down).
    drop(nfs);
    drop(gw_b);
    gw_b = common::start(&db, &cache_config(gw_a_addr(&a_listen), A_KEY), B_KEY.0, B_KEY.1, "info", &[]);
    let b = client(gw_b.s3, "cache", B_KEY);
    assert_eq!(get(&b, "data/a.bin", big.len()).unwrap(), big, "cached data after kill -9 and restart");
    let mut nfs = Nfs::mount(gw_b.nfs);
    assert_eq!(nfs.read_all("data/a.bin", big.len()).unwrap(), big);

    // The upstream returns: uncached reads work again.
    gw_a = common::start_at(&da, "", A_KEY.0, A_KEY.1, "warn", &a_listen, &[]);
    past_revalidation();
    assert_eq!(get(&b, "data/cold.bin", cold.len()).unwrap(), cold);
    assert_eq!(nfs.read_all("data/cold.bin", cold.len()).unwrap(), cold);

    // Cache fills are not fsync'd on the read path: a cached chunk lost
    // to a power loss reads as a miss. Every chunk file of B goes; B still
    // serves upstream files whole (from A), by both doors.
    let mut removed = 0;
    for dir in std::fs::read_dir(db.join("data/chunks")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed > 0, "B cached no chunk files");
    assert_eq!(get(&b, "data/a.bin", big.len()).unwrap(), big, "S3 GET with its cached chunks gone");
    assert_eq!(nfs.read_all("data/a.bin", big.len()).unwrap(), big, "NFS READ with its cached chunks gone");
    drop(gw_a);
}

fn gw_a_addr(listen: &str) -> SocketAddr {
    listen.parse().unwrap()
}

/// A cache smaller than the dataset stays within its capacity (clean
/// windows are evicted, reads stay correct); `cache warm` fetches a prefix
/// so that it is served with the upstream down; `cache evict` empties it.
#[test]
fn bounded_cache_warm_and_evict() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, dd) = (subdir(tmp.path(), "a"), subdir(tmp.path(), "d"));
    let (gw_a, origin) = start_origin(&da);
    let files: Vec<Vec<u8>> = (0..4).map(|i| pattern(10 + i, CHUNK_BYTES * 3 / 2)).collect();
    for (i, f) in files.iter().enumerate() {
        put(&origin, &format!("set/f{i}"), f);
    }
    let capacity = 3 * CHUNK_BYTES as u64;
    let config = format!("cache_capacity_mib = 3\n{}", cache_config(gw_a.s3, A_KEY));
    let gw_d = common::start(&dd, &config, B_KEY.0, B_KEY.1, "info", &[]);
    let d = client(gw_d.s3, "cache", B_KEY);
    for round in 0..2 {
        for (i, f) in files.iter().enumerate() {
            assert_eq!(&get(&d, &format!("set/f{i}"), f.len()).unwrap(), f, "round {round} f{i}");
        }
    }
    let status = admin(&dd, &["cache", "status"]);
    let used: u64 = status
        .split("used ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no used bytes in {status}"));
    assert!(used <= capacity, "cache holds {used} bytes over its capacity {capacity}: {status}");
    assert!(!status.contains(" 0 eviction(s)"), "6 MiB read through a 3 MiB cache evicted nothing: {status}");

    let evicted = admin(&dd, &["cache", "evict", "cache/set/"]);
    assert!(evicted.contains("of 4 file(s)"), "{evicted}");
    assert!(admin(&dd, &["cache", "status"]).contains("used 0 bytes"), "evict left data cached");

    let warmed = admin(&dd, &["cache", "warm", "cache/set/f1", "--parallel", "4"]);
    assert!(warmed.contains("1 file(s)") && warmed.contains(&format!("{} bytes fetched", files[1].len())), "{warmed}");
    assert!(warmed.contains("complete"), "{warmed}");
    // Warming again is a no-op (resumable: the cached part is skipped).
    let again = admin(&dd, &["cache", "warm", "cache/set/f1"]);
    assert!(again.contains(" 0 bytes fetched"), "{again}");
    // A cache with evicted, warmed and read-through windows is what fsck
    // expects (online, through the admin socket: exit 0 means clean).
    let checked = admin(&dd, &["fsck"]);
    assert!(!checked.contains("bad_upstream_record"), "{checked}");
    drop(gw_a);
    past_revalidation();
    assert_eq!(get(&d, "set/f1", files[1].len()).unwrap(), files[1], "warmed data with the upstream down");
    match get(&d, "set/f2", files[2].len()) {
        Err(UpstreamError::Unavailable(why)) => assert!(why.contains("503"), "{why}"),
        other => panic!("evicted data with the upstream down: {:?}", other.map(|v| v.len())),
    }
}

/// What the fault-injecting proxy does to new (and, on a change, cuts
/// existing) connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Forward both ways.
    Pass,
    /// Answer every request 503 and close.
    Http503,
    /// Accept, then close at once (a dropped connection).
    Drop,
    /// Accept and never answer.
    Stall,
    /// Forward, but cut the next response after 100 KiB (once), then pass.
    TruncateOnce,
    /// Forward the first 200 KiB of the next response, then hold the rest
    /// (the connection stays open) until the mode changes; every later
    /// connection stalls: a body that stops coming.
    HoldOnce,
}

/// Counts a held response until dropped.
struct Held(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A TCP proxy in front of the upstream that injects faults.
struct Proxy {
    addr: SocketAddr,
    mode: std::sync::Arc<std::sync::Mutex<(Fault, u64)>>,
    /// Responses held by [`Fault::HoldOnce`] whose connection is still open.
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = std::sync::Arc::new(std::sync::Mutex::new((Fault::Pass, 0u64)));
        let m = mode.clone();
        let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = held.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let (fault, generation) = *m.lock().unwrap();
                match fault {
                    Fault::TruncateOnce => m.lock().unwrap().0 = Fault::Pass,
                    Fault::HoldOnce => m.lock().unwrap().0 = Fault::Stall,
                    _ => {}
                }
                let m = m.clone();
                let h = h.clone();
                tokio::spawn(async move {
                    match fault {
                        Fault::Drop => {}
                        Fault::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
                        Fault::Http503 => {
                            let mut buf = vec![0u8; 64 << 10];
                            let _ = client.read(&mut buf).await;
                            let _ = client
                                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                        }
                        Fault::Pass | Fault::TruncateOnce | Fault::HoldOnce => {
                            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
                            let (mut cr, mut cw) = client.into_split();
                            let (mut sr, mut sw) = server.into_split();
                            let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                            let limit = match fault {
                                Fault::TruncateOnce => 100 << 10,
                                Fault::HoldOnce => 200 << 10,
                                _ => u64::MAX,
                            };
                            let down = async move {
                                let mut sent = 0u64;
                                let mut buf = vec![0u8; 16 << 10];
                                loop {
                                    let n = match sr.read(&mut buf).await {
                                        Ok(0) | Err(_) => return,
                                        Ok(n) => n,
                                    };
                                    let n = n.min((limit - sent) as usize);
                                    if cw.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                    sent += n as u64;
                                    if sent >= limit && fault == Fault::HoldOnce {
                                        // Held until the mode changes or the client hangs up.
                                        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                        let _held = Held(h.clone());
                                        std::future::pending::<()>().await;
                                    }
                                    if sent >= limit {
                                        return; // cut mid-body
                                    }
                                }
                            };
                            // A mode change cuts pooled connections too.
                            let changed = async {
                                while m.lock().unwrap().1 == generation {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            };
                            let mut up = up;
                            tokio::select! {
                                _ = down => {}
                                _ = changed => {}
                                _ = &mut up => {} // the client hung up
                            }
                            up.abort();
                        }
                    }
                });
            }
        });
        Proxy { addr, mode, held, _rt: rt }
    }

    /// Changes the mode; returns once connections of the old mode are cut
    /// (they poll every 20 ms), so that no pooled connection carries a
    /// request of the new mode the old way (regression: a readahead fetch
    /// sent right after a change went through a still-open connection).
    /// Responses held now (their connection still open).
    fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self, f: Fault) {
        {
            let mut m = self.mode.lock().unwrap();
            *m = (f, m.1 + 1);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Faults between the cache and its upstream: 503s, dropped and stalled
/// connections fail uncached reads fast with a retryable answer (S3 503,
/// NFS3ERR_JUKEBOX) and leave cached reads alone; a truncated body is
/// asked for again from where it stopped and never cached short; an
/// object that changes upstream between two windows of one read is never
/// mixed: the read fails, and the next one gets the new version whole; a
/// slow body is served as it arrives (regression: a window was fetched
/// whole before its first byte was served).
#[test]
fn faults_between_cache_and_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, de) = (subdir(tmp.path(), "a"), subdir(tmp.path(), "e"));
    let (gw_a, origin) = start_origin(&da);
    let one = pattern(20, 3 * CHUNK_BYTES);
    let two = pattern(21, 3 * CHUNK_BYTES);
    let three = pattern(22, CHUNK_BYTES);
    put(&origin, "f/one", &one);
    put(&origin, "f/two", &two);
    put(&origin, "f/three", &three);
    let proxy = Proxy::start(gw_a.s3);
    let config =
        format!("upstream_request_timeout_secs = 2\nupstream_retries = 1\n{}", cache_config(proxy.addr, A_KEY));
    let gw_e = common::start(&de, &config, B_KEY.0, B_KEY.1, "info", &[]);
    let e = client(gw_e.s3, "cache", B_KEY);
    let mut nfs = Nfs::mount(gw_e.nfs);
    assert_eq!(nfs.names("f"), vec!["one", "three", "two"]);
    assert_eq!(get(&e, "f/three", three.len()).unwrap(), three); // cached

    for fault in [Fault::Http503, Fault::Drop, Fault::Stall] {
        proxy.set(fault);
        past_revalidation();
        let t = Instant::now();
        match get(&e, "f/one", one.len()) {
            Err(UpstreamError::Unavailable(why)) => assert!(why.contains("503"), "{fault:?}: {why}"),
            other => panic!("{fault:?}: uncached GET answered {:?}", other.map(|v| v.len())),
        }
        assert_eq!(nfs.read_all("f/one", one.len()), Err(nfsstat3::NFS3ERR_JUKEBOX), "{fault:?}");
        assert!(t.elapsed() < Duration::from_secs(30), "{fault:?}: failing took {:?}", t.elapsed());
        assert_eq!(get(&e, "f/three", three.len()).unwrap(), three, "{fault:?}: cached data");
        assert_eq!(nfs.read_all("f/three", three.len()).unwrap(), three, "{fault:?}: cached data by NFS");
    }

    // A body cut short is retried; what is cached is the whole window.
    proxy.set(Fault::TruncateOnce);
    assert_eq!(get(&e, "f/one", one.len()).unwrap(), one);
    proxy.set(Fault::Stall);
    assert_eq!(get(&e, "f/one", one.len()).unwrap(), one, "served from the cache, all of it");
    proxy.set(Fault::Pass);

    // The object changes upstream between two windows of one NFS read.
    let fh = nfs.lookup("f/two").unwrap();
    let first = READ3args { file: fh.clone(), offset: 0, count: 64 << 10 };
    match nfs.rt.block_on(nfs.c.read(&first)).unwrap() {
        Nfs3Result::Ok(ok) => assert_eq!(ok.data.as_ref(), &two[..64 << 10]),
        Nfs3Result::Err((s, _)) => panic!("first window: {s:?}"),
    }
    let two_v2 = pattern(23, two.len());
    put(&origin, "f/two", &two_v2);
    let second = READ3args { file: fh.clone(), offset: CHUNK_BYTES as u64, count: 64 << 10 };
    match nfs.rt.block_on(nfs.c.read(&second)).unwrap() {
        Nfs3Result::Err((s, _)) => assert_eq!(s, nfsstat3::NFS3ERR_JUKEBOX),
        Nfs3Result::Ok(ok) => panic!("read bytes of a changed object: {} bytes", ok.data.as_ref().len()),
    }
    assert_eq!(get(&e, "f/two", two_v2.len()).unwrap(), two_v2, "the new version, whole");
    assert_eq!(nfs.read_all("f/two", two_v2.len()).unwrap(), two_v2);

    // Readahead: a reader that reads window 0 then window 1 is sequential,
    // so windows 2 and 3 are fetched in the background; with the upstream
    // stalled afterwards they are served, window 6 (never asked) is not.
    let seq = pattern(24, 8 * CHUNK_BYTES);
    put(&origin, "f/seq", &seq);
    past_revalidation();
    let cs = CHUNK_BYTES as u64;
    for w in 0..2u64 {
        let r = e.get_range("f/seq", w * cs..(w + 1) * cs, "").unwrap();
        assert_eq!(r, &seq[(w * cs) as usize..((w + 1) * cs) as usize]);
    }
    std::thread::sleep(Duration::from_secs(2));
    proxy.set(Fault::Stall);
    let ahead = e.get_range("f/seq", 2 * cs..4 * cs, "").expect("windows 2 and 3 were read ahead");
    assert_eq!(ahead, &seq[2 * CHUNK_BYTES..4 * CHUNK_BYTES]);
    assert!(e.get_range("f/seq", 6 * cs..7 * cs, "").is_err(), "window 6 was cached without being read");
    proxy.set(Fault::Pass);

    // Served while it arrives: with the upstream's body held after its
    // first 200 KiB (and the upstream stalled for any other request), the
    // first 64 KiB of an uncached window are served by NFS and S3 from the
    // bytes that arrived; its last 64 KiB never arrive, so that read fails
    // retryably. Once the upstream flows again the window is read whole.
    // (Its own gateway: listings trusted for 10 minutes, so that no
    // revalidation waits on the stalled upstream first.)
    let df = subdir(tmp.path(), "f");
    let slow = pattern(25, CHUNK_BYTES);
    put(&origin, "f/slow", &slow);
    let proxy = Proxy::start(gw_a.s3);
    let config = format!(
        "upstream_request_timeout_secs = 6\nupstream_retries = 0\n{}",
        cache_config(proxy.addr, A_KEY).replace("revalidate_secs = 1", "revalidate_secs = 600")
    );
    let gw_f = common::start(&df, &config, B_KEY.0, B_KEY.1, "info", &[]);
    let f = client(gw_f.s3, "cache", B_KEY);
    let mut nfs = Nfs::mount(gw_f.nfs);
    let fh = nfs.lookup("f/slow").unwrap();
    proxy.set(Fault::HoldOnce);
    let head = READ3args { file: fh.clone(), offset: 0, count: 64 << 10 };
    match nfs.rt.block_on(nfs.c.read(&head)).unwrap() {
        Nfs3Result::Ok(ok) => assert_eq!(ok.data.as_ref(), &slow[..64 << 10]),
        Nfs3Result::Err((s, _)) => panic!("the first 64 KiB of a held window: {s:?}"),
    }
    let first = f.get_range("f/slow", 0..64 << 10, "").expect("S3: the first 64 KiB of a held window");
    assert_eq!(first, &slow[..64 << 10]);
    assert_eq!(proxy.held(), 1, "both reads were answered while the window's fetch was still held");
    let tail = READ3args { file: fh.clone(), offset: cs - (64 << 10), count: 64 << 10 };
    match nfs.rt.block_on(nfs.c.read(&tail)).unwrap() {
        Nfs3Result::Err((s, _)) => assert_eq!(s, nfsstat3::NFS3ERR_JUKEBOX),
        Nfs3Result::Ok(_) => panic!("read bytes the upstream never sent"),
    }
    proxy.set(Fault::Pass);
    assert_eq!(nfs.read_all("f/slow", slow.len()).unwrap(), slow);
    proxy.set(Fault::Stall);
    assert_eq!(get(&f, "f/slow", slow.len()).unwrap(), slow, "cached whole");
    proxy.set(Fault::Pass);
}
