//! `nfs://HOST[:PORT]/EXPORT/PATH`: a user-space NFSv3 client
//! (`nfs3_client`) over `--nfs-connections` TCP connections. An
//! `nfs3_client` connection carries one call at a time, so calls in flight
//! = connections; a call takes the next connection round-robin. Large
//! reads and writes are split into FSINFO-sized (at most
//! [`limits::NFS_IO_BYTES_MAX`]) calls spread over the connections, as the
//! kernel client spreads rsize-sized READs over its slots.
//!
//! Writes are UNSTABLE followed by one COMMIT when the caller asks for
//! durability (checkpoint), as `write()` + `fsync()` over a kernel mount
//! does. File handles are cached per path (directories and files), so a
//! read costs one READ, not a LOOKUP walk; `stat` does a fresh LOOKUP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

use super::{BoxFuture, Content, Entry, Target, TargetOptions};
use crate::limits;
use crate::{BenchError, Result};

type Conn = Nfs3Client<TokioIo<TcpStream>>;

/// An NFSv3 export (and a directory inside it).
pub struct NfsTarget {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    conns: Vec<tokio::sync::Mutex<Conn>>,
    next: AtomicUsize,
    /// Handle of the target's root directory (export + path).
    root: nfs_fh3,
    /// Cached handles by path relative to the root.
    handles: Mutex<HashMap<String, nfs_fh3>>,
    rsize: u32,
    wsize: u32,
}

fn nfs_err(op: &'static str, path: &str, why: impl std::fmt::Debug) -> BenchError {
    BenchError::Nfs { op, path: path.into(), why: format!("{why:?}") }
}

/// An NFS result's OK value, or the status as an error.
fn ok<T, E>(op: &'static str, path: &str, r: Nfs3Result<T, E>) -> Result<T> {
    match r {
        Nfs3Result::Ok(v) => Ok(v),
        Nfs3Result::Err((s, _)) => Err(nfs_err(op, path, s)),
    }
}

fn dirop(dir: &nfs_fh3, name: &str) -> diropargs3<'static> {
    diropargs3 { dir: dir.clone(), name: filename3::from(name.as_bytes().to_vec()) }
}

impl NfsTarget {
    /// Mounts `export` at `host` (`port` for both MOUNT and NFS, or the
    /// portmapper), opens `--nfs-connections` connections, and resolves
    /// (creating if missing) `path` inside the export.
    pub async fn connect(
        url: &str,
        host: &str,
        port: Option<u16>,
        export: &str,
        path: &str,
        opts: &TargetOptions,
    ) -> Result<NfsTarget> {
        let cred = auth_unix {
            stamp: 1,
            machinename: Opaque::owned(b"training-bench".to_vec()),
            uid: opts.nfs_uid,
            gid: opts.nfs_gid,
            gids: vec![],
        };
        let mut conns = Vec::new();
        let mut root = None;
        for _ in 0..opts.nfs_connections {
            let mut b = Nfs3ConnectionBuilder::new(TokioConnector, host, export)
                .connect_from_privileged_port(false)
                .credential(opaque_auth::auth_unix(&cred));
            if let Some(p) = port {
                b = b.mount_port(p).nfs3_port(p);
            }
            let c = b.mount().await.map_err(|e| nfs_err("MOUNT", export, e))?;
            root.get_or_insert_with(|| c.root_nfs_fh3());
            conns.push(tokio::sync::Mutex::new(c.into_nfs3_client()));
        }
        let export_root = root.expect("at least one connection");
        let mut inner = Inner {
            url: url.into(),
            conns,
            next: AtomicUsize::new(0),
            root: export_root.clone(),
            handles: Mutex::new(HashMap::new()),
            rsize: limits::NFS_IO_BYTES_MAX,
            wsize: limits::NFS_IO_BYTES_MAX,
        };
        let info = {
            let mut c = inner.conns[0].lock().await;
            c.fsinfo(&FSINFO3args { fsroot: export_root.clone() }).await.map_err(|e| nfs_err("FSINFO", export, e))?
        };
        let info = ok("FSINFO", export, info)?;
        inner.rsize = info.rtmax.clamp(4096, limits::NFS_IO_BYTES_MAX);
        inner.wsize = info.wtmax.clamp(4096, limits::NFS_IO_BYTES_MAX);
        let mut dir = export_root;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            dir = inner.lookup_or_mkdir(&dir, comp, path).await?;
        }
        inner.root = dir;
        Ok(NfsTarget { inner: Arc::new(inner) })
    }
}

impl Inner {
    /// A free connection if there is one (starting round-robin), else
    /// the next one in turn, waited for.
    async fn conn(&self) -> tokio::sync::MutexGuard<'_, Conn> {
        let n = self.conns.len();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            if let Ok(g) = self.conns[(i + k) % n].try_lock() {
                return g;
            }
        }
        self.conns[i].lock().await
    }

    async fn lookup(&self, dir: &nfs_fh3, name: &str, path: &str) -> Result<LOOKUP3resok> {
        let r = self.conn().await.lookup(&LOOKUP3args { what: dirop(dir, name) }).await;
        ok("LOOKUP", path, r.map_err(|e| nfs_err("LOOKUP", path, e))?)
    }

    async fn lookup_or_mkdir(&self, dir: &nfs_fh3, name: &str, path: &str) -> Result<nfs_fh3> {
        match self.lookup(dir, name, path).await {
            Ok(r) => return Ok(r.object),
            Err(BenchError::Nfs { ref why, .. }) if why.contains("NOENT") => {}
            Err(e) => return Err(e),
        }
        let attrs = sattr3 { mode: Nfs3Option::Some(0o755), ..Default::default() };
        let r = self.conn().await.mkdir(&MKDIR3args { where_: dirop(dir, name), attributes: attrs }).await;
        match r.map_err(|e| nfs_err("MKDIR", path, e))? {
            Nfs3Result::Ok(ok) => match ok.obj {
                Nfs3Option::Some(fh) => Ok(fh),
                Nfs3Option::None => Ok(self.lookup(dir, name, path).await?.object),
            },
            // Another writer made it first.
            Nfs3Result::Err((nfsstat3::NFS3ERR_EXIST, _)) => Ok(self.lookup(dir, name, path).await?.object),
            Nfs3Result::Err((s, _)) => Err(nfs_err("MKDIR", path, s)),
        }
    }

    /// The handle of directory `dir` (relative), made if `create`.
    async fn dir(&self, dir: &str, create: bool) -> Result<nfs_fh3> {
        let mut fh = self.root.clone();
        let mut sofar = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty()) {
            if !sofar.is_empty() {
                sofar.push('/');
            }
            sofar.push_str(comp);
            let cached = self.handles.lock().expect("handle cache").get(&sofar).cloned();
            fh = match cached {
                Some(h) => h,
                None => {
                    let h = if create {
                        self.lookup_or_mkdir(&fh, comp, &sofar).await?
                    } else {
                        self.lookup(&fh, comp, &sofar).await?.object
                    };
                    self.handles.lock().expect("handle cache").insert(sofar.clone(), h.clone());
                    h
                }
            };
        }
        Ok(fh)
    }

    /// The handle of file `path`, cached.
    async fn file(&self, path: &str) -> Result<nfs_fh3> {
        if let Some(h) = self.handles.lock().expect("handle cache").get(path).cloned() {
            return Ok(h);
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let d = self.dir(dir, false).await?;
        let h = self.lookup(&d, name, path).await?.object;
        self.handles.lock().expect("handle cache").insert(path.into(), h.clone());
        Ok(h)
    }

    async fn read_chunk(&self, fh: &nfs_fh3, path: &str, offset: u64, count: u32) -> Result<(Vec<u8>, bool)> {
        let r = self.conn().await.read(&READ3args { file: fh.clone(), offset, count }).await;
        let r = ok("READ", path, r.map_err(|e| nfs_err("READ", path, e))?)?;
        Ok((r.data.to_vec(), r.eof))
    }
}

impl Target for NfsTarget {
    fn url(&self) -> &str {
        &self.inner.url
    }

    fn prepare_root(&self) -> BoxFuture<'_, ()> {
        // The root was resolved (and made) at connect.
        Box::pin(async { Ok(()) })
    }

    fn write<'a>(&'a self, path: &'a str, content: Content, sync: bool) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let me = &self.inner;
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let d = me.dir(dir, true).await?;
            // UNCHECKED with size 0: create or truncate.
            let attrs = sattr3 { mode: Nfs3Option::Some(0o644), size: Nfs3Option::Some(0), ..Default::default() };
            let r = me
                .conn()
                .await
                .create(&CREATE3args { where_: dirop(&d, name), how: createhow3::UNCHECKED(attrs) })
                .await;
            let created = ok("CREATE", path, r.map_err(|e| nfs_err("CREATE", path, e))?)?;
            let fh = match created.obj {
                Nfs3Option::Some(fh) => fh,
                Nfs3Option::None => me.lookup(&d, name, path).await?.object,
            };
            me.handles.lock().expect("handle cache").insert(path.into(), fh.clone());
            let wsize = u64::from(me.wsize);
            let n = content.len().div_ceil(wsize);
            let stable = stable_how::UNSTABLE;
            let writes = (0..n).map(|i| {
                let (fh, content) = (fh.clone(), content.clone());
                async move {
                    let off = i * wsize;
                    let data = content.part(off, wsize.min(content.len() - off));
                    let args = WRITE3args {
                        file: fh,
                        offset: off,
                        count: data.len() as u32,
                        stable,
                        data: Opaque::owned(data.to_vec()),
                    };
                    let r = me.conn().await.write(&args).await;
                    let w = ok("WRITE", path, r.map_err(|e| nfs_err("WRITE", path, e))?)?;
                    if w.count != args.count {
                        return Err(nfs_err("WRITE", path, format!("short write {} of {}", w.count, args.count)));
                    }
                    Ok::<_, BenchError>(())
                }
            });
            let mut s = futures_util::stream::iter(writes).buffer_unordered(me.conns.len());
            while let Some(r) = s.next().await {
                r?;
            }
            drop(s);
            if sync {
                let r = me.conn().await.commit(&COMMIT3args { file: fh, offset: 0, count: 0 }).await;
                ok("COMMIT", path, r.map_err(|e| nfs_err("COMMIT", path, e))?)?;
            }
            Ok(())
        })
    }

    fn read<'a>(&'a self, path: &'a str, offset: u64, len: u64) -> BoxFuture<'a, Bytes> {
        Box::pin(async move {
            let me = &self.inner;
            let fh = me.file(path).await?;
            let rsize = u64::from(me.rsize);
            let chunks = (0..len.div_ceil(rsize)).map(|i| {
                let fh = fh.clone();
                async move {
                    let off = offset + i * rsize;
                    let count = rsize.min(offset + len - off) as u32;
                    let mut got = Vec::with_capacity(count as usize);
                    // A server may return less than asked: ask again for the rest.
                    loop {
                        let want = count - got.len() as u32;
                        let (data, eof) = me.read_chunk(&fh, path, off + got.len() as u64, want).await?;
                        got.extend_from_slice(&data);
                        if eof || data.is_empty() || got.len() as u32 >= count {
                            break;
                        }
                    }
                    Ok::<_, BenchError>(got)
                }
            });
            let mut s = futures_util::stream::iter(chunks).buffered(me.conns.len());
            let mut out = Vec::with_capacity(len as usize);
            while let Some(r) = s.next().await {
                let chunk = r?;
                let short = (chunk.len() as u64) < rsize;
                out.extend_from_slice(&chunk);
                if short {
                    break;
                }
            }
            out.truncate(len as usize);
            Ok(Bytes::from(out))
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            let me = &self.inner;
            let d = me.dir(dir, false).await?;
            let mut out = Vec::new();
            let (mut cookie, mut verf) = (0u64, cookieverf3::default());
            loop {
                let args = READDIRPLUS3args {
                    dir: d.clone(),
                    cookie,
                    cookieverf: verf,
                    dircount: limits::NFS_READDIR_BYTES,
                    maxcount: limits::NFS_READDIR_BYTES,
                };
                let r = me.conn().await.readdirplus(&args).await;
                let r = ok("READDIRPLUS", dir, r.map_err(|e| nfs_err("READDIRPLUS", dir, e))?)?;
                verf = r.cookieverf;
                for e in r.reply.entries.0 {
                    cookie = e.cookie;
                    let name = String::from_utf8_lossy(e.name.as_ref()).into_owned();
                    if name == "." || name == ".." {
                        continue;
                    }
                    if let Nfs3Option::Some(a) = e.name_attributes {
                        if matches!(a.type_, ftype3::NF3REG) {
                            out.push(Entry { name, bytes: a.size });
                        }
                    }
                }
                if r.reply.eof {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let me = &self.inner;
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let d = me.dir(dir, false).await?;
            let r = me.lookup(&d, name, path).await?;
            match r.obj_attributes {
                Nfs3Option::Some(a) => Ok(a.size),
                Nfs3Option::None => {
                    let r = me.conn().await.getattr(&GETATTR3args { object: r.object }).await;
                    Ok(ok("GETATTR", path, r.map_err(|e| nfs_err("GETATTR", path, e))?)?.obj_attributes.size)
                }
            }
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let me = &self.inner;
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let d = me.dir(dir, false).await?;
            me.handles.lock().expect("handle cache").remove(path);
            let r = me.conn().await.remove(&REMOVE3args { object: dirop(&d, name) }).await;
            match r.map_err(|e| nfs_err("REMOVE", path, e))? {
                Nfs3Result::Ok(_) | Nfs3Result::Err((nfsstat3::NFS3ERR_NOENT, _)) => Ok(()),
                Nfs3Result::Err((s, _)) => Err(nfs_err("REMOVE", path, s)),
            }
        })
    }
}
