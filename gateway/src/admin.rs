//! The admin socket: a unix socket in `<data>/run/` (a 0700 directory,
//! socket mode 0600) through which `gateway user|bucket|fsck` commands
//! reach a running gateway. The data directory is locked while a gateway
//! runs (sled holds a file lock), so the commands cannot open it
//! themselves; through the socket they act on the live namespace instead.
//!
//! Protocol: one JSON request line per connection, one JSON response line.
//! Only local users who can reach the data directory's `run/` can connect,
//! which is the same set that could read the root credentials there.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use namespace::{Caller, Namespace, NsError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Directory of the socket, inside the data directory.
const RUN_DIR: &str = "run";
/// The socket's file name.
const SOCKET_NAME: &str = "admin.sock";
/// Longest request line.
const REQUEST_BYTES_MAX: usize = 64 << 10;
/// Time a client has to send its request.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin requests served at once.
const ADMIN_CONNECTIONS_MAX: usize = 8;

/// What a command asks of the running gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Re-read `<data>/users.toml` and replace the S3 keys.
    ReloadUsers,
    /// Create a bucket owned by `uid`/`gid`, with `mode` when given.
    BucketCreate {
        /// Bucket name.
        name: String,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Permission bits.
        mode: Option<u32>,
        /// Bind the new bucket to this upstream.
        #[serde(default)]
        upstream: Option<namespace::UpstreamBinding>,
    },
    /// Delete an empty bucket.
    BucketRemove {
        /// Bucket name.
        name: String,
    },
    /// List buckets.
    BucketList,
    /// Upstream bindings and the upload queue.
    CacheStatus,
    /// Upload everything queued (of `target`, `BUCKET[/PREFIX]`) now.
    CacheFlush {
        /// Bucket and key prefix; every bound bucket when absent.
        target: Option<String>,
    },
    /// Fetch everything under `BUCKET[/PREFIX]` not cached yet.
    CacheWarm {
        /// Bucket and key prefix.
        target: String,
        /// Fetches at once.
        parallel: usize,
    },
    /// Evict the cached data under `BUCKET[/PREFIX]`.
    CacheEvict {
        /// Bucket and key prefix.
        target: String,
    },
    /// Check the live namespace, read-only (problems are confirmed by a
    /// second look, since the namespace changes meanwhile).
    Fsck {
        /// Leftovers younger than this are work in flight.
        grace_secs: u64,
    },
}

/// The answer: output lines, or an error message.
#[derive(Debug, Deserialize, Serialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Lines to print.
    #[serde(default)]
    pub lines: Vec<String>,
    /// What went wrong, when `ok` is false.
    #[serde(default)]
    pub error: String,
    /// The report of an online fsck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsck: Option<namespace::FsckReport>,
    /// A progress line of a long request (more lines follow; the last
    /// line of every answer has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// How far a long request (a cache warm) has come.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Progress {
    /// Bytes done.
    pub done_bytes: u64,
    /// Bytes in all.
    pub total_bytes: u64,
}

impl Response {
    fn ok(lines: Vec<String>) -> Self {
        Response { ok: true, lines, error: String::new(), fsck: None, progress: None }
    }
    fn err(e: impl std::fmt::Display) -> Self {
        Response { ok: false, lines: Vec::new(), error: e.to_string(), fsck: None, progress: None }
    }
}

/// Path of the admin socket of a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(RUN_DIR).join(SOCKET_NAME)
}

/// Binds the admin socket, replacing a stale one (the data directory's
/// lock, taken before this runs, proves no other gateway uses it).
pub fn bind(data_dir: &Path) -> anyhow::Result<UnixListener> {
    let run = data_dir.join(RUN_DIR);
    std::fs::create_dir_all(&run).with_context(|| format!("creating {}", run.display()))?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).with_context(|| format!("binding admin socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// What the admin socket acts on.
pub struct AdminCtx {
    /// The live namespace.
    pub ns: Arc<Namespace>,
    /// Re-reads the users file into the S3 keyring; returns a summary.
    pub reload_users: Box<dyn Fn() -> anyhow::Result<String> + Send + Sync>,
    /// Time limits of upstream clients made for new bound buckets.
    pub upstream_tuning: upstream_s3::Tuning,
}

/// Serves admin requests until `shutdown`.
pub async fn serve(listener: UnixListener, ctx: Arc<AdminCtx>, shutdown: CancellationToken) {
    // Admin connections are short; nobody waits for them at shutdown.
    let tracker = TaskTracker::new();
    acceptor::accept_loop(listener, "admin socket", ADMIN_CONNECTIONS_MAX, shutdown, &tracker, move |stream, _| {
        let ctx = ctx.clone();
        async move {
            let (r, mut w) = stream.into_split();
            let mut line = Vec::new();
            let mut reader = tokio::io::BufReader::new(r).take(REQUEST_BYTES_MAX as u64 + 1);
            let read = tokio::time::timeout(REQUEST_READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
            let resp = match read {
                Ok(Ok(_)) if line.len() > REQUEST_BYTES_MAX => Response::err("request too long"),
                Ok(Ok(_)) => match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => {
                        tracing::info!(?req, "admin request");
                        let ctx = ctx.clone();
                        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
                        let mut task = tokio::task::spawn_blocking(move || {
                            let report = |p: Progress| {
                                let _ = ptx.send(p);
                            };
                            handle(&ctx, req, &report)
                        });
                        // Progress lines go out while the request runs.
                        let done = loop {
                            tokio::select! {
                                Some(p) = prx.recv() => {
                                    let line = Response { progress: Some(p), ..Response::ok(Vec::new()) };
                                    let mut out = serde_json::to_vec(&line).unwrap_or_default();
                                    out.push(b'\n');
                                    let _ = w.write_all(&out).await;
                                }
                                r = &mut task => break r,
                            }
                        };
                        done.unwrap_or_else(|e| Response::err(format!("admin task failed: {e}")))
                    }
                    Err(e) => Response::err(format!("bad request: {e}")),
                },
                Ok(Err(e)) => Response::err(format!("reading request: {e}")),
                Err(_) => Response::err("timed out reading the request"),
            };
            let mut out = serde_json::to_vec(&resp).unwrap_or_default();
            out.push(b'\n');
            let _ = w.write_all(&out).await;
        }
    })
    .await;
}

fn handle(ctx: &AdminCtx, req: Request, progress: &(dyn Fn(Progress) + Sync)) -> Response {
    match req {
        Request::ReloadUsers => match (ctx.reload_users)() {
            Ok(summary) => Response::ok(vec![summary]),
            Err(e) => Response::err(format!("{e:#}")),
        },
        Request::BucketCreate { name, uid, gid, mode, upstream } => {
            let made = create_bucket(&ctx.ns, &name, uid, gid, mode).and_then(|line| match &upstream {
                Some(b) => bind_bucket(&ctx.ns, &name, b, Some(ctx.upstream_tuning)).map(|l| vec![line, l]),
                None => Ok(vec![line]),
            });
            match made {
                Ok(lines) => Response::ok(lines),
                Err(e) => Response::err(e),
            }
        }
        Request::BucketRemove { name } => match remove_bucket(&ctx.ns, &name) {
            Ok(line) => Response::ok(vec![line]),
            Err(e) => Response::err(e),
        },
        Request::BucketList => match list_buckets(&ctx.ns) {
            Ok(lines) => Response::ok(lines),
            Err(e) => Response::err(e),
        },
        Request::CacheStatus => match crate::upstream::status_lines(&ctx.ns) {
            Ok(lines) => Response::ok(lines),
            Err(e) => Response::err(e),
        },
        Request::CacheFlush { target } => match crate::upstream::flush(&ctx.ns, target.as_deref()) {
            Ok(line) => Response::ok(vec![line]),
            Err(e) => Response::err(e),
        },
        Request::CacheWarm { target, parallel } => {
            match crate::upstream::warm(&ctx.ns, &target, parallel, &|p: namespace::WarmProgress| {
                progress(Progress { done_bytes: p.done_bytes, total_bytes: p.total_bytes })
            }) {
                Ok(line) => Response::ok(vec![line]),
                Err(e) => Response::err(e),
            }
        }
        Request::CacheEvict { target } => match crate::upstream::evict(&ctx.ns, &target) {
            Ok(line) => Response::ok(vec![line]),
            Err(e) => Response::err(e),
        },
        Request::Fsck { grace_secs } => {
            let opts = namespace::FsckOptions { repair: false, grace: Duration::from_secs(grace_secs), online: true };
            match ctx.ns.fsck(&opts, &mut |_| {}) {
                Ok(report) => Response { fsck: Some(report), ..Response::ok(Vec::new()) },
                Err(e) => Response::err(format!("fsck: {e}")),
            }
        }
    }
}

/// Creates a bucket (shared by the socket and the offline CLI).
pub fn create_bucket(ns: &Namespace, name: &str, uid: u32, gid: u32, mode: Option<u32>) -> Result<String, String> {
    let b = ns.create_bucket(&Caller { uid, gid, groups: Vec::new() }, name.as_bytes()).map_err(|e| match e {
        NsError::AlreadyExists => format!("bucket {name:?} already exists"),
        NsError::InvalidName(m) => format!("{name:?} is not a valid bucket name: {m}"),
        e => format!("creating bucket {name:?}: {e}"),
    })?;
    if let Some(m) = mode {
        let set = namespace::SetAttr { mode: Some(m), ..Default::default() };
        ns.setattr(&Caller::root(), b.ino, &set, None).map_err(|e| format!("setting mode: {e}"))?;
    }
    Ok(format!(
        "created bucket {name} (owner {uid}:{gid}{})",
        mode.map(|m| format!(", mode {m:o}")).unwrap_or_default()
    ))
}

/// Binds the (new, empty) bucket `name` to an upstream; `attach` also
/// builds and attaches its client (a running gateway; offline, the next
/// start does).
pub fn bind_bucket(
    ns: &Namespace,
    name: &str,
    b: &namespace::UpstreamBinding,
    attach: Option<upstream_s3::Tuning>,
) -> Result<String, String> {
    crate::upstream::check_binding(b).map_err(|e| format!("{e:#}"))?;
    let ino = ns.bind_upstream(name.as_bytes(), b).map_err(|e| format!("binding bucket {name:?}: {e}"))?;
    if let Some(tuning) = attach {
        crate::upstream::attach(ns, ino, b, None, tuning).map_err(|e| format!("bucket {name:?}: {e:#}"))?;
    }
    Ok(crate::upstream::describe(name, b))
}

/// Removes an empty bucket.
pub fn remove_bucket(ns: &Namespace, name: &str) -> Result<String, String> {
    ns.delete_bucket(name.as_bytes()).map_err(|e| match e {
        NsError::NotFound => format!("no bucket {name:?}"),
        NsError::NotEmpty => format!("bucket {name:?} is not empty"),
        e => format!("removing bucket {name:?}: {e}"),
    })?;
    Ok(format!("removed bucket {name}"))
}

/// One line per bucket: name, owner, mode, creation time.
pub fn list_buckets(ns: &Namespace) -> Result<Vec<String>, String> {
    let buckets = ns.list_buckets().map_err(|e| format!("listing buckets: {e}"))?;
    Ok(buckets
        .into_iter()
        .map(|(name, i)| {
            format!("{}\towner {}:{}\tmode {:o}", String::from_utf8_lossy(&name), i.uid, i.gid, i.mode & 0o7777)
        })
        .collect())
}

/// Sends `req` to the gateway running on `data_dir`; `None` when none is
/// listening there.
pub fn call(data_dir: &Path, req: &Request) -> anyhow::Result<Option<Response>> {
    call_with_progress(data_dir, req, &mut |_| {})
}

/// [`call`], handing progress lines of a long request to `on_progress`.
pub fn call_with_progress(
    data_dir: &Path,
    req: &Request,
    on_progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Option<Response>> {
    let path = socket_path(data_dir);
    let mut s = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(None)
        }
        Err(e) => return Err(e).with_context(|| format!("connecting to {}", path.display())),
    };
    s.set_read_timeout(Some(Duration::from_secs(3600)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reader = BufReader::new(s);
    loop {
        let mut resp = String::new();
        reader.read_line(&mut resp).context("reading the gateway's answer")?;
        let r: Response = serde_json::from_str(&resp).context("the gateway's answer is not valid JSON")?;
        match r.progress {
            Some(p) => on_progress(p),
            None => return Ok(Some(r)),
        }
    }
}
