//! Configuration: flags, environment and an optional TOML file, validated
//! at start-up with messages that name the key at fault.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

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
    log_format: Option<String>,
    gc_interval_secs: Option<u64>,
    gc_grace_secs: Option<u64>,
    nfs_listen: Option<String>,
    portmap_listen: Option<String>,
    nfs_in_flight_per_connection: Option<usize>,
    nfs_export_defaults: Option<protocol_nfs::ExportOptions>,
    #[serde(default)]
    nfs_export: Vec<NamedExport>,
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
}

/// Default S3 address.
const DEFAULT_S3_LISTEN: &str = "127.0.0.1:9000";
/// Default NFS address (the standard NFS port, loopback only until told).
const DEFAULT_NFS_LISTEN: &str = "127.0.0.1:2049";
/// Most NFS calls in flight per connection that the config may ask for.
const NFS_IN_FLIGHT_MAX: usize = 4096;
/// Default period of the background GC.
const DEFAULT_GC_INTERVAL_SECS: u64 = 60;
/// Default grace of dropped chunks (readers of replaced data finish first).
const DEFAULT_GC_GRACE_SECS: u64 = 600;
/// Default drain deadline.
const DEFAULT_SHUTDOWN_DEADLINE_SECS: u64 = 30;

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
        let log_format = file.log_format.unwrap_or_else(|| "text".into());
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
        Ok(Config {
            nfs_listen,
            portmap_listen,
            nfs,
            data_dir,
            s3_listen,
            tls,
            region: file.region.unwrap_or_else(|| "us-east-1".into()),
            virtual_host_base: file.virtual_host_base,
            shutdown_deadline: Duration::from_secs(
                file.shutdown_deadline_secs.unwrap_or(DEFAULT_SHUTDOWN_DEADLINE_SECS),
            ),
            chunk_size_bytes: chunk_mib << 20,
            log_format,
            gc_interval: Duration::from_secs(file.gc_interval_secs.unwrap_or(DEFAULT_GC_INTERVAL_SECS).max(1)),
            gc_grace: Duration::from_secs(file.gc_grace_secs.unwrap_or(DEFAULT_GC_GRACE_SECS)),
        })
    }
}
