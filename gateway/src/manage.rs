//! `gateway user add|list|remove` and `gateway bucket create|list|remove`:
//! they work on a data directory whether or not a gateway serves it. Users
//! live in `<data>/users.toml`, which the commands edit directly and then
//! ask a running gateway to re-read; bucket commands go through the admin
//! socket when a gateway runs and open the namespace themselves otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use namespace::{Namespace, NamespaceConfig};

use crate::admin::{self, Request};
use crate::users::{self, UserEntry};

/// Where the data directory is.
#[derive(clap::Args, Debug)]
pub struct DataDirArg {
    /// Data directory of the gateway (the one `gateway serve` uses).
    #[arg(long, env = "GATEWAY_DATA_DIR", default_value = "./gateway-data")]
    pub data_dir: PathBuf,
}

/// `gateway user ...`
#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Add an S3 user: prints its access key and secret (once).
    Add {
        /// User name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// uid the key acts as (default: the configured default identity).
        #[arg(long)]
        uid: Option<u32>,
        /// Primary gid (default: the configured default identity).
        #[arg(long)]
        gid: Option<u32>,
        /// Supplementary gids, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<u32>>,
        /// A right on a bucket, `BUCKET=read|write|admin` (`*` = any
        /// bucket); repeat for several. Default: `*=write`.
        #[arg(long = "bucket", value_name = "BUCKET=RIGHT")]
        buckets: Vec<String>,
        /// Access key to use (default: generated).
        #[arg(long)]
        access_key: Option<String>,
        /// Secret to use (default: generated). Prefer the environment
        /// variable: command lines are visible to other local users.
        #[arg(long, env = "GATEWAY_USER_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List S3 users (never their secrets).
    List {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Remove an S3 user; its key stops working at once on a running gateway.
    Remove {
        /// User name.
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

/// `gateway bucket ...`
#[derive(clap::Subcommand, Debug)]
pub enum BucketCmd {
    /// Create a bucket (a top-level directory).
    Create {
        /// Bucket name (S3 rules: 3-63 characters of a-z 0-9 . -).
        name: String,
        /// Owner uid.
        #[arg(long, default_value_t = 0)]
        uid: u32,
        /// Owner gid.
        #[arg(long, default_value_t = 0)]
        gid: u32,
        /// Permission bits in octal, e.g. 775 (default 755).
        #[arg(long, value_parser = parse_octal)]
        mode: Option<u32>,
        #[command(flatten)]
        upstream: UpstreamArgs,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List buckets with owner and mode.
    List {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Remove an empty bucket.
    Remove {
        /// Bucket name.
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

/// `gateway cache ...`
#[derive(clap::Subcommand, Debug)]
pub enum CacheCmd {
    /// Upstream bindings and the upload queue (items, dirty bytes,
    /// failing and poisoned uploads).
    Status {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Upload everything queued now; returns when it is all upstream
    /// (exit 1 if anything failed).
    Flush {
        /// BUCKET or BUCKET/PREFIX; every bound bucket when absent.
        target: Option<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Fetch a dataset into the cache before a job: everything under
    /// BUCKET/PREFIX not cached yet, in parallel, with a progress bar.
    /// Resumable: what is cached is skipped.
    Warm {
        /// BUCKET or BUCKET/PREFIX.
        target: String,
        /// Fetches at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Drop the cached data under BUCKET/PREFIX (files stay; their data is
    /// fetched again when read). Data not yet upstream is kept.
    Evict {
        /// BUCKET or BUCKET/PREFIX.
        target: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

/// Runs a `cache` command through the running gateway (status also offline).
pub fn cache(cmd: CacheCmd) -> anyhow::Result<()> {
    let (req, dir) = match cmd {
        CacheCmd::Status { dir } => (Request::CacheStatus, dir),
        CacheCmd::Flush { target, dir } => (Request::CacheFlush { target }, dir),
        CacheCmd::Warm { target, parallel, dir } => (Request::CacheWarm { target, parallel }, dir),
        CacheCmd::Evict { target, dir } => (Request::CacheEvict { target }, dir),
    };
    let bar = indicatif::ProgressBar::hidden();
    if matches!(req, Request::CacheWarm { .. }) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let answer = admin::call_with_progress(&dir.data_dir, &req, &mut |p| {
        bar.set_length(p.total_bytes);
        bar.set_position(p.done_bytes);
    })?;
    bar.finish_and_clear();
    print_answer(answer, &dir.data_dir, req)
}

/// Prints a running gateway's answer, or runs `req` offline when none
/// answered.
///
/// A gateway that is starting holds the data directory before its admin
/// socket listens: when the offline open finds the directory locked, the
/// socket is asked again for up to [`ADMIN_SOCKET_WAIT`] (a command run
/// right after `gateway serve` starts works; regression: the end-to-end
/// tests' `bucket create` raced the socket).
fn print_answer(answer: Option<admin::Response>, data_dir: &Path, req: Request) -> anyhow::Result<()> {
    let mut answer = answer;
    let deadline = std::time::Instant::now() + ADMIN_SOCKET_WAIT;
    let lines = loop {
        match answer {
            Some(r) if r.ok => break r.lines,
            Some(r) => bail!("{}", r.error),
            None => match offline(data_dir, req.clone()) {
                Ok(lines) => break lines,
                Err(e) if format!("{e:#}").contains("locked") && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    answer = admin::call(data_dir, &req)?;
                }
                Err(e) => return Err(e),
            },
        }
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// How long a command waits for a starting gateway's admin socket.
const ADMIN_SOCKET_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Flags binding a new bucket to an upstream object store.
#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// Serve this bucket from an upstream store: s3://BUCKET[/PREFIX]
    /// (needs --upstream-endpoint).
    #[arg(long)]
    upstream: Option<String>,
    /// Endpoint URL of the upstream store, e.g. https://rgw.example:8443.
    #[arg(long, requires = "upstream")]
    upstream_endpoint: Option<String>,
    /// Region for signatures.
    #[arg(long, default_value = "us-east-1", requires = "upstream")]
    upstream_region: String,
    /// Virtual-host addressing (BUCKET.host) instead of path style.
    #[arg(long, requires = "upstream")]
    upstream_virtual_host: bool,
    /// PEM file of CA certificates for a private TLS upstream.
    #[arg(long, requires = "upstream")]
    upstream_ca_file: Option<String>,
    /// Where the keys come from: env (AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY of the gateway), file:PATH, or anonymous.
    #[arg(long, default_value = "env", requires = "upstream")]
    upstream_credentials: String,
    /// Seconds listings and ETags are trusted; 0 asks on every use.
    #[arg(long, default_value_t = crate::upstream::DEFAULT_REVALIDATE_SECS, requires = "upstream")]
    revalidate_secs: u64,
    /// Seconds a file written over NFS stays unchanged before its upload.
    #[arg(long, default_value_t = crate::upstream::DEFAULT_UPLOAD_DELAY_SECS, requires = "upstream")]
    upload_delay_secs: u64,
    /// Answer S3 writes once durable here, upload in the background
    /// (default: write-through, answered after the upstream).
    #[arg(long, requires = "upstream")]
    upstream_write_back: bool,
}

impl UpstreamArgs {
    fn binding(&self) -> anyhow::Result<Option<namespace::UpstreamBinding>> {
        let Some(url) = &self.upstream else { return Ok(None) };
        let (bucket, prefix) = crate::upstream::parse_s3_url(url)?;
        let Some(endpoint) = self.upstream_endpoint.clone() else { bail!("--upstream needs --upstream-endpoint") };
        let b = namespace::UpstreamBinding {
            endpoint,
            region: self.upstream_region.clone(),
            bucket,
            prefix,
            virtual_host: self.upstream_virtual_host,
            ca_file: self.upstream_ca_file.clone(),
            credentials: crate::upstream::parse_credential_source(&self.upstream_credentials)?,
            revalidate_secs: self.revalidate_secs,
            upload_delay_secs: self.upload_delay_secs,
            write_back: self.upstream_write_back,
        };
        crate::upstream::check_binding(&b)?;
        Ok(Some(b))
    }
}

fn parse_octal(s: &str) -> Result<u32, String> {
    let t = s.trim_start_matches("0o");
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("{s:?} is not an octal mode up to 7777")),
    }
}

/// Runs a `user` command.
pub fn user(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add { name, uid, gid, groups, buckets, access_key, secret_key, dir } => {
            let mut rights = BTreeMap::new();
            for b in &buckets {
                let (bucket, right) =
                    b.split_once('=').with_context(|| format!("--bucket {b:?}: expected BUCKET=read|write|admin"))?;
                rights.insert(bucket.to_string(), right.to_string());
            }
            let generated = secret_key.is_none();
            let entry = UserEntry {
                name,
                access_key: access_key.unwrap_or_else(users::generate_access_key),
                secret_key: secret_key.unwrap_or_else(users::generate_secret),
                uid,
                gid,
                groups,
                buckets: (!rights.is_empty()).then_some(rights),
            };
            users::validate_entry(&entry, "user")?;
            ensure_dir(&dir.data_dir)?;
            let mut all = users::load_file(&dir.data_dir)?;
            if all.iter().any(|u| u.name == entry.name) {
                bail!("user {:?} already exists", entry.name);
            }
            if all.iter().any(|u| u.access_key == entry.access_key) {
                bail!("access key {:?} is already in use", entry.access_key);
            }
            all.push(entry.clone());
            users::save_file(&dir.data_dir, &all)?;
            println!("added user {}", entry.name);
            println!("  access key: {}", entry.access_key);
            if generated {
                println!("  secret key: {}  (shown once; kept in {})", entry.secret_key, users::USERS_FILE);
            }
            notify(&dir.data_dir)
        }
        UserCmd::List { dir } => {
            let all = users::load_file(&dir.data_dir)?;
            if all.is_empty() {
                println!("no users in {} (config-file users and the root key are not listed)", users::USERS_FILE);
            }
            for u in all {
                let show = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "default".into());
                let rights = users::rights_of(&u)?
                    .0
                    .iter()
                    .map(|(b, r)| format!("{b}={}", r.as_str()))
                    .collect::<Vec<_>>()
                    .join(",");
                let groups = u
                    .groups
                    .as_ref()
                    .map(|g| g.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(","))
                    .unwrap_or_else(|| "default".into());
                println!(
                    "{}\taccess_key={}\tuid={}\tgid={}\tgroups={}\tbuckets={}",
                    u.name,
                    u.access_key,
                    show(u.uid),
                    show(u.gid),
                    groups,
                    rights
                );
            }
            Ok(())
        }
        UserCmd::Remove { name, dir } => {
            let mut all = users::load_file(&dir.data_dir)?;
            let before = all.len();
            all.retain(|u| u.name != name);
            if all.len() == before {
                bail!("no user {name:?} in {}", users::users_path(&dir.data_dir).display());
            }
            users::save_file(&dir.data_dir, &all)?;
            println!("removed user {name}");
            notify(&dir.data_dir)
        }
    }
}

/// Tells a running gateway to re-read the users file.
fn notify(data_dir: &Path) -> anyhow::Result<()> {
    match admin::call(data_dir, &Request::ReloadUsers)? {
        Some(r) if r.ok => {
            println!("the running gateway reloaded its users ({})", r.lines.join("; "));
            Ok(())
        }
        Some(r) => bail!("the running gateway refused the new users file: {}", r.error),
        None => {
            println!("no gateway is running on {}: the change applies at its next start", data_dir.display());
            Ok(())
        }
    }
}

fn ensure_dir(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))
}

/// Runs a `bucket` command: through a running gateway, else offline.
pub fn bucket(cmd: BucketCmd) -> anyhow::Result<()> {
    let (req, dir) = match cmd {
        BucketCmd::Create { name, uid, gid, mode, upstream, dir } => {
            (Request::BucketCreate { name, uid, gid, mode, upstream: upstream.binding()? }, dir)
        }
        BucketCmd::List { dir } => (Request::BucketList, dir),
        BucketCmd::Remove { name, dir } => (Request::BucketRemove { name }, dir),
    };
    print_answer(admin::call(&dir.data_dir, &req)?, &dir.data_dir, req)
}

fn offline(data_dir: &Path, req: Request) -> anyhow::Result<Vec<String>> {
    if !data_dir.join("meta").exists() {
        if matches!(req, Request::BucketList | Request::CacheStatus) {
            bail!("{} is not a gateway data directory (no meta/)", data_dir.display());
        }
        ensure_dir(data_dir)?;
    }
    let mut cfg = NamespaceConfig::new(data_dir);
    // A running gateway holds the lock for good: ask its socket again soon
    // (print_answer) rather than waiting out the default.
    cfg.meta_lock_wait = std::time::Duration::from_secs(1);
    let (ns, _) = Namespace::open(cfg)
        .with_context(|| format!("opening {} (is a gateway without admin socket running?)", data_dir.display()))?;
    let out = match req {
        Request::BucketCreate { name, uid, gid, mode, upstream } => admin::create_bucket(&ns, &name, uid, gid, mode)
            .and_then(|l| match &upstream {
                Some(b) => admin::bind_bucket(&ns, &name, b, None).map(|u| vec![l, u]),
                None => Ok(vec![l]),
            }),
        Request::BucketRemove { name } => admin::remove_bucket(&ns, &name).map(|l| vec![l]),
        Request::BucketList => admin::list_buckets(&ns),
        Request::ReloadUsers | Request::Fsck { .. } => Ok(Vec::new()),
        Request::CacheStatus => crate::upstream::status_lines(&ns),
        Request::CacheFlush { .. } | Request::CacheWarm { .. } | Request::CacheEvict { .. } => {
            Err("this needs the running gateway (it holds the upstream clients)".into())
        }
    };
    ns.sync().context("flushing the data directory")?;
    out.map_err(|e| anyhow::anyhow!(e))
}
