//! The storage gateway binary.
//!
//! `gateway serve` opens (or creates) a data directory and serves it over
//! S3 and NFSv3; see `--help` and README.md.

mod admin;
mod config;
mod credentials;
mod fsck;
mod manage;
mod observe;
mod server;
mod upstream;
mod users;

use clap::{Parser, Subcommand};

/// One dataset, two front doors: S3 over HTTP(S) and NFSv3.
#[derive(Parser)]
#[command(name = "gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a data directory over S3 and NFSv3.
    Serve(config::ServeArgs),
    /// Manage S3 users (access keys, identities, bucket rights).
    #[command(subcommand)]
    User(manage::UserCmd),
    /// Manage buckets (through a running gateway, or offline).
    #[command(subcommand)]
    Bucket(manage::BucketCmd),
    /// Upstream buckets' cache: status, flush of queued uploads.
    #[command(subcommand)]
    Cache(manage::CacheCmd),
    /// Check a data directory (chunks, checksums, counts, orphans) and
    /// optionally repair it; exits 0 when clean, 1 on damage, 3 when it
    /// cannot run.
    Fsck(fsck::FsckArgs),
    /// Training-pattern storage benchmark: prepare a dataset, replay
    /// MLPerf Storage-like I/O against file://, s3:// and nfs:// targets
    /// with simulated accelerators, report side by side.
    #[command(subcommand)]
    Bench(training_bench::cli::BenchCmd),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(args) => {
            let cfg = config::Config::load(args)?;
            init_tracing(&cfg.log_format);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("gateway").build()?;
            rt.block_on(server::run(cfg))
        }
        Cmd::User(cmd) => manage::user(cmd),
        Cmd::Bucket(cmd) => manage::bucket(cmd),
        Cmd::Cache(cmd) => manage::cache(cmd),
        Cmd::Fsck(args) => std::process::exit(fsck::main(args)),
        Cmd::Bench(cmd) => Ok(training_bench::cli::main(cmd)?),
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
