//! Configuration: flags, environment and an optional TOML file, validated
//! at start-up with messages that name the key at fault.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::users::{Identity, UserEntry};

/// Flags of `gateway serve`; each can also come from the environment.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Data directory (metadata and chunks). Created if missing.
    #[arg(long, env = "GATEWAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the S3 endpoint, e.g. 127.0.0.1:9000 (port 0 picks a free port).
    #[arg(long, env = "GATEWAY_S3_LISTEN")]
    pub s3_listen: Option<SocketAddr>,
    /// PEM certificate chain: serve HTTPS instead of HTTP (needs --tls-key).
    #[arg(long, env = "GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Address of the NFSv3 server (NFS, MOUNT and portmap on one port),
    /// e.g. 0.0.0.0:2049; `off` disables it.
    #[arg(long, env = "GATEWAY_NFS_LISTEN")]
    pub nfs_listen: Option<String>,
    /// Also answer portmap GETPORT on this address (e.g. 0.0.0.0:111), so
    /// that a plain `mount gw:/bucket /mnt` works.
    #[arg(long, env = "GATEWAY_PORTMAP_LISTEN")]
    pub portmap_listen: Option<SocketAddr>,
    /// TOML configuration file; flags and environment override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the metrics endpoint (/metrics, /healthz, /readyz),
    /// default 127.0.0.1:9095; `off` disables it.
    #[arg(long, env = "GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Log format: `text` (default) or `json` (one JSON object per line).
    #[arg(long, env = "GATEWAY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Region reported to clients (default us-east-1).
    #[arg(long, env = "GATEWAY_REGION")]
    pub region: Option<String>,
    /// Seconds SIGTERM waits for in-flight requests before exiting (default 30).
    #[arg(long, env = "GATEWAY_SHUTDOWN_DEADLINE_SECS")]
    pub shutdown_deadline_secs: Option<u64>,
    /// Seconds between background GC passes (default 60).
    #[arg(long, env = "GATEWAY_GC_INTERVAL_SECS")]
    pub gc_interval_secs: Option<u64>,
    /// Seconds dropped chunks survive before GC deletes them (default 600).
    #[arg(long, env = "GATEWAY_GC_GRACE_SECS")]
    pub gc_grace_secs: Option<u64>,
}

/// The TOML file's keys.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    s3_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    region: Option<String>,
    virtual_host_base: Option<String>,
    shutdown_deadline_secs: Option<u64>,
    chunk_size_mib: Option<usize>,
    cache_capacity_mib: Option<u64>,
    cache_dirty_limit_mib: Option<u64>,
    upstream_request_timeout_secs: Option<u64>,
    upstream_retries: Option<usize>,
    cache_free_space_min_mib: Option<u64>,
    free_space_reserved_mib: Option<u64>,
    log_format: Option<String>,
    metrics_listen: Option<String>,
    gc_interval_secs: Option<u64>,
    gc_grace_secs: Option<u64>,
    nfs_listen: Option<String>,
    portmap_listen: Option<String>,
    nfs_in_flight_per_connection: Option<usize>,
    nfs_export_defaults: Option<protocol_nfs::ExportOptions>,
    #[serde(default)]
    nfs_export: Vec<NamedExport>,
    s3_file_mode: Option<u32>,
    s3_dir_mode: Option<u32>,
    s3_default_identity: Option<Identity>,
    #[serde(default)]
    user: Vec<UserEntry>,
    #[serde(default)]
    upstream_bucket: Vec<crate::upstream::UpstreamBucketEntry>,
}

/// One `[[nfs_export]]` table: a path and its options.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct NamedExport {
    path: String,
    #[serde(flatten)]
    options: protocol_nfs::ExportOptions,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// S3 listen address.
    pub s3_listen: SocketAddr,
    /// TLS certificate and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Region reported to clients.
    pub region: String,
    /// Base domain for virtual-hosted-style requests.
    pub virtual_host_base: Option<String>,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_deadline: Duration,
    /// Chunk size for new data.
    pub chunk_size_bytes: usize,
    /// Free space data writes leave on the data volume for metadata.
    pub free_bytes_reserved: u64,
    /// Bytes of upstream data the cache keeps (0: bounded by the disk).
    pub cache_capacity_bytes: u64,
    /// Free space the cache leaves on the data volume.
    pub cache_free_bytes_min: u64,
    /// Bytes not yet upstream past which writes to bound buckets fail.
    pub cache_dirty_bytes_max: u64,
    /// Time limits and retries of upstream clients.
    pub upstream_tuning: upstream_s3::Tuning,
    /// `text` or `json`.
    pub log_format: String,
    /// Period of the background GC pass and orphan scan.
    pub gc_interval: Duration,
    /// How long dropped chunks survive before GC deletes them.
    pub gc_grace: Duration,
    /// NFS address; `None` when NFS is off.
    pub nfs_listen: Option<SocketAddr>,
    /// Extra portmap address (port 111).
    pub portmap_listen: Option<SocketAddr>,
    /// NFS server settings and exports.
    pub nfs: protocol_nfs::NfsConfig,
    /// Metrics and health address; `None` when off.
    pub metrics_listen: Option<SocketAddr>,
    /// Mode of files created over S3.
    pub s3_file_mode: u32,
    /// Mode of directories created implicitly over S3.
    pub s3_dir_mode: u32,
    /// Identity of S3 keys that name no uid/gid of their own.
    pub s3_default_identity: Identity,
    /// `[[user]]` tables of the configuration file (validated).
    pub users: Vec<UserEntry>,
    /// `[[upstream_bucket]]` tables (validated).
    pub upstream_buckets: Vec<crate::upstream::UpstreamBucketEntry>,
}

/// Default S3 address.
const DEFAULT_S3_LISTEN: &str = "127.0.0.1:9000";
/// Default metrics and health address (loopback only until told).
const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9095";
/// Default NFS address (the standard NFS port, loopback only until told).
const DEFAULT_NFS_LISTEN: &str = "127.0.0.1:2049";
/// Most NFS calls in flight per connection that the config may ask for.
const NFS_IN_FLIGHT_MAX: usize = 4096;
/// Longest upstream request time the config may ask for (one hour).
const UPSTREAM_TIMEOUT_SECS_MAX: u64 = 3600;
/// Most retries of an upstream request the config may ask for.
const UPSTREAM_RETRIES_MAX: usize = 10;
/// Default period of the background GC.
const DEFAULT_GC_INTERVAL_SECS: u64 = 60;
/// Free space data writes leave for the metadata store, in MiB (the chunk
/// store's own default).
const DEFAULT_FREE_SPACE_RESERVED_MIB: u64 = 256;
/// Most free space that may be reserved: 1 TiB, in MiB.
const FREE_SPACE_RESERVED_MIB_MAX: u64 = 1 << 20;
/// Default grace of dropped chunks (readers of replaced data finish first).
const DEFAULT_GC_GRACE_SECS: u64 = 600;
/// Default drain deadline.
const DEFAULT_SHUTDOWN_DEADLINE_SECS: u64 = 30;
/// Longest drain deadline the config may ask for (one hour).
const SHUTDOWN_DEADLINE_SECS_MAX: u64 = 3600;

/// A permission-bits key: at most 0o7777, the default when absent.
fn mode_key(key: &str, v: Option<u32>, default: u32) -> anyhow::Result<u32> {
    match v {
        None => Ok(default),
        Some(m) if m <= 0o7777 => Ok(m),
        Some(m) => bail!("{key}: permission bits are at most 0o7777, got {m:#o} (write modes as 0o644)"),
    }
}

impl Config {
    /// Merges file, environment and flags (flags win) and validates.
    pub fn load(args: ServeArgs) -> anyhow::Result<Config> {
        let file: File = match &args.config {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", p.display()))?
            }
            None => File::default(),
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./gateway-data"));
        let s3_listen = match args.s3_listen {
            Some(a) => a,
            None => file
                .s3_listen
                .as_deref()
                .unwrap_or(DEFAULT_S3_LISTEN)
                .parse()
                .context("s3_listen: not a socket address like 127.0.0.1:9000")?,
        };
        let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("tls_cert and tls_key: give both or neither"),
        };
        let chunk_mib = file.chunk_size_mib.unwrap_or(4);
        if chunk_mib == 0 || chunk_mib > 64 {
            bail!("chunk_size_mib: must be 1 to 64, got {chunk_mib}");
        }
        let reserved_mib = file.free_space_reserved_mib.unwrap_or(DEFAULT_FREE_SPACE_RESERVED_MIB);
        if reserved_mib > FREE_SPACE_RESERVED_MIB_MAX {
            bail!("free_space_reserved_mib: must be at most {FREE_SPACE_RESERVED_MIB_MAX}, got {reserved_mib}");
        }
        let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("log_format: must be \"text\" or \"json\", got {log_format:?}");
        }
        let nfs_text = args.nfs_listen.or(file.nfs_listen).unwrap_or_else(|| DEFAULT_NFS_LISTEN.into());
        let nfs_listen = if nfs_text == "off" {
            None
        } else {
            Some(nfs_text.parse().context("nfs_listen: not a socket address like 0.0.0.0:2049, nor \"off\"")?)
        };
        let portmap_listen = match args.portmap_listen {
            Some(a) => Some(a),
            None => file
                .portmap_listen
                .as_deref()
                .map(str::parse)
                .transpose()
                .context("portmap_listen: not a socket address like 0.0.0.0:111")?,
        };
        let in_flight = file.nfs_in_flight_per_connection.unwrap_or(128);
        if in_flight == 0 || in_flight > NFS_IN_FLIGHT_MAX {
            bail!("nfs_in_flight_per_connection: must be 1 to {NFS_IN_FLIGHT_MAX}, got {in_flight}");
        }
        let exports = protocol_nfs::Exports::new(
            file.nfs_export_defaults.unwrap_or_default(),
            file.nfs_export.into_iter().map(|e| (e.path, e.options)).collect(),
        )
        .context("nfs_export")?;
        let nfs = protocol_nfs::NfsConfig { exports, in_flight_per_connection: in_flight, ..Default::default() };
        let s3_file_mode = mode_key("s3_file_mode", file.s3_file_mode, 0o644)?;
        let s3_dir_mode = mode_key("s3_dir_mode", file.s3_dir_mode, 0o755)?;
        let s3_default_identity = file.s3_default_identity.unwrap_or_default();
        if s3_default_identity.groups.len() > crate::users::GROUPS_MAX {
            bail!("s3_default_identity.groups: at most {} groups", crate::users::GROUPS_MAX);
        }
        // Validates every entry and the uniqueness of names and keys; the
        // root key is checked against them again at start-up.
        crate::users::credentials(("", ""), &file.user, &[], &s3_default_identity)?;
        let region = args.region.or(file.region).unwrap_or_else(|| "us-east-1".into());
        if region.is_empty() || region.len() > 64 || !region.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            bail!("region: 1 to 64 characters of a-z 0-9 -, got {region:?}");
        }
        let shutdown_secs =
            args.shutdown_deadline_secs.or(file.shutdown_deadline_secs).unwrap_or(DEFAULT_SHUTDOWN_DEADLINE_SECS);
        if shutdown_secs > SHUTDOWN_DEADLINE_SECS_MAX {
            bail!("shutdown_deadline_secs: at most {SHUTDOWN_DEADLINE_SECS_MAX}, got {shutdown_secs}");
        }
        let gc_interval_secs = args.gc_interval_secs.or(file.gc_interval_secs).unwrap_or(DEFAULT_GC_INTERVAL_SECS);
        if gc_interval_secs == 0 {
            bail!("gc_interval_secs: must be at least 1");
        }
        let gc_grace_secs = args.gc_grace_secs.or(file.gc_grace_secs).unwrap_or(DEFAULT_GC_GRACE_SECS);
        let cache_capacity_bytes =
            file.cache_capacity_mib.unwrap_or(0).checked_mul(1 << 20).context("cache_capacity_mib: too large")?;
        let cache_free_bytes_min = file
            .cache_free_space_min_mib
            .unwrap_or(0)
            .checked_mul(1 << 20)
            .context("cache_free_space_min_mib: too large")?;
        let cache_dirty_bytes_max =
            file.cache_dirty_limit_mib.unwrap_or(0).checked_mul(1 << 20).context("cache_dirty_limit_mib: too large")?;
        let mut upstream_tuning = upstream_s3::Tuning::default();
        if let Some(t) = file.upstream_request_timeout_secs {
            if t == 0 || t > UPSTREAM_TIMEOUT_SECS_MAX {
                bail!("upstream_request_timeout_secs: 1 to {UPSTREAM_TIMEOUT_SECS_MAX}, got {t}");
            }
            upstream_tuning.request_timeout = Duration::from_secs(t);
        }
        if let Some(r) = file.upstream_retries {
            if r > UPSTREAM_RETRIES_MAX {
                bail!("upstream_retries: at most {UPSTREAM_RETRIES_MAX}, got {r}");
            }
            upstream_tuning.retries = r;
        }
        let mut upstream_names = std::collections::HashSet::new();
        for e in &file.upstream_bucket {
            e.binding()?;
            if !upstream_names.insert(e.name.clone()) {
                bail!("upstream_bucket {:?}: listed twice", e.name);
            }
        }
        let metrics_listen = crate::observe::parse_listen(
            &args.metrics_listen.or(file.metrics_listen).unwrap_or_else(|| DEFAULT_METRICS_LISTEN.into()),
        )?;
        Ok(Config {
            metrics_listen,
            s3_file_mode,
            s3_dir_mode,
            s3_default_identity,
            users: file.user,
            upstream_buckets: file.upstream_bucket,
            cache_capacity_bytes,
            cache_free_bytes_min,
            upstream_tuning,
            cache_dirty_bytes_max,
            nfs_listen,
            portmap_listen,
            nfs,
            data_dir,
            s3_listen,
            tls,
            region,
            virtual_host_base: file.virtual_host_base,
            shutdown_deadline: Duration::from_secs(shutdown_secs),
            chunk_size_bytes: chunk_mib << 20,
            free_bytes_reserved: reserved_mib << 20,
            log_format,
            gc_interval: Duration::from_secs(gc_interval_secs),
            gc_grace: Duration::from_secs(gc_grace_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn load(toml_text: &str, extra: &[&str]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, toml_text)?;
        let mut argv = vec!["gateway".to_string(), "--config".into(), path.display().to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Config::load(Cli::try_parse_from(argv)?.args)
    }

    #[test]
    fn the_example_file_parses_and_holds_the_defaults() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../gateway.example.toml")).unwrap();
        let c = load(&text, &[]).unwrap();
        let d = load("", &[]).unwrap();
        assert_eq!(c.s3_listen, d.s3_listen);
        assert_eq!((c.s3_file_mode, c.s3_dir_mode), (0o644, 0o755));
        assert_eq!(c.s3_default_identity, Identity::default());
        assert_eq!(c.shutdown_deadline, d.shutdown_deadline);
        assert_eq!(c.gc_grace, d.gc_grace);
        assert_eq!(c.chunk_size_bytes, d.chunk_size_bytes);
        assert_eq!(c.nfs_listen, d.nfs_listen);
        assert_eq!((c.cache_capacity_bytes, c.cache_free_bytes_min), (d.cache_capacity_bytes, d.cache_free_bytes_min));
        assert_eq!(c.upstream_tuning.request_timeout, d.upstream_tuning.request_timeout);
        assert_eq!(c.upstream_tuning.retries, d.upstream_tuning.retries);
    }

    /// A regression guard for the one place secrets live in the config:
    /// `Debug` of a loaded config (which start-up may log) never shows them.
    #[test]
    fn upstream_tables_validate_and_never_print_secrets() {
        let t = "[[upstream_bucket]]\nname = \"ds\"\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\n\
                 access_key_id = \"AKIDSHOWN\"\nsecret_access_key = \"very-secret-value\"\n";
        let c = load(t, &[]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-value") && !shown.contains("AKIDSHOWN"), "{shown}");
        let msg = |t: &str| format!("{:#}", load(t, &[]).unwrap_err());
        let half =
            "[[upstream_bucket]]\nname = \"ds\"\nendpoint = \"http://h\"\nbucket = \"b\"\naccess_key_id = \"x\"\n";
        assert!(msg(half).contains("both access_key_id and secret_access_key"), "{}", msg(half));
        let scheme = "[[upstream_bucket]]\nname = \"ds\"\nendpoint = \"ftp://h\"\nbucket = \"b\"\n";
        assert!(msg(scheme).contains("http://"), "{}", msg(scheme));
        let prefix = "[[upstream_bucket]]\nname = \"ds\"\nendpoint = \"http://h\"\nbucket = \"b\"\nprefix = \"p\"\n";
        assert!(msg(prefix).contains("prefix"), "{}", msg(prefix));
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let msg = |t: &str| format!("{:#}", load(t, &[]).unwrap_err());
        assert!(msg("s3_file_mode = 0o17777").contains("s3_file_mode"), "{}", msg("s3_file_mode = 0o17777"));
        assert!(msg("chunk_size_mib = 0").contains("chunk_size_mib"));
        assert!(msg("s3_listen = \"nowhere\"").contains("s3_listen"));
        assert!(msg("no_such_key = 1").contains("no_such_key"));
        assert!(msg("shutdown_deadline_secs = 99999").contains("shutdown_deadline_secs"));
        let dup = "[[user]]\nname = \"a\"\naccess_key = \"AK1\"\nsecret_key = \"12345678\"\n\
                   [[user]]\nname = \"a\"\naccess_key = \"AK2\"\nsecret_key = \"12345678\"\n";
        assert!(msg(dup).contains("defined twice"), "{}", msg(dup));
        let short = "[[user]]\nname = \"a\"\naccess_key = \"AK1\"\nsecret_key = \"1\"\n";
        assert!(msg(short).contains("user[0].secret_key"), "{}", msg(short));
    }

    #[test]
    fn flags_override_the_file() {
        let c = load("region = \"eu-west-1\"\ngc_grace_secs = 5", &["--region", "ap-south-1"]).unwrap();
        assert_eq!(c.region, "ap-south-1");
        assert_eq!(c.gc_grace, Duration::from_secs(5));
    }

    #[test]
    fn metrics_listen_and_log_format() {
        let d = load("", &[]).unwrap();
        assert_eq!(d.metrics_listen, Some("127.0.0.1:9095".parse().unwrap()));
        assert_eq!(d.log_format, "text");
        assert_eq!(load("metrics_listen = \"off\"", &[]).unwrap().metrics_listen, None);
        let c = load("metrics_listen = \"off\"\nlog_format = \"text\"", &["--metrics-listen", "0.0.0.0:9999"]).unwrap();
        assert_eq!(c.metrics_listen, Some("0.0.0.0:9999".parse().unwrap()));
        assert_eq!(load("", &["--log-format", "json"]).unwrap().log_format, "json");
        let msg = |t: &str| format!("{:#}", load(t, &[]).unwrap_err());
        assert!(msg("metrics_listen = \"everywhere\"").contains("metrics_listen"));
        assert!(msg("log_format = \"xml\"").contains("log_format"));
    }
}
