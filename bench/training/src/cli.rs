//! `gateway bench prepare|run|report`: the options and what each command
//! does. The gateway binary only flattens [`BenchCmd`] into its own CLI and
//! calls [`main`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::page::{self, PageRun};
use crate::plot;
use crate::report::{self, Host, RunReport, REPORT_VERSION};
use crate::runner::{self, RunOptions};
use crate::targets::{self, resolve, Addressing, Target, TargetOptions};
use crate::workload::{Kind, Scaling, Workload};
use crate::{limits, BenchError, Result};

/// `gateway bench ...`
#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// Write the datasets of the chosen workloads to every target, once;
    /// `run` reuses them (same --seed, --scale, --sample-scale,
    /// --accelerators).
    Prepare(RunArgs),
    /// Replay the workloads' training I/O against every target with the
    /// same pattern and seed, simulate accelerators, and report side by
    /// side (terminal table, results.json, results.csv in --out).
    Run(RunArgs),
    /// Turn saved runs into one markdown page (report.md) with the plots:
    /// prints each run's tables and redraws its plots (PNG and SVG) in its
    /// directory.
    Report {
        /// Run directories (a run's --out), or directories whose
        /// subdirectories are runs.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where report.md goes (default: the first DIR).
        #[arg(long)]
        out: Option<PathBuf>,
        /// A markdown file put on the page under its title: how the
        /// targets were set up, versions, anything the runs cannot know.
        #[arg(long)]
        notes: Option<PathBuf>,
    },
}

/// Options of `prepare` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Targets: `file:///PATH` (a directory or a kernel NFS mount),
    /// `s3://BUCKET/PREFIX` (at --endpoint, or
    /// `s3://BUCKET/PREFIX?endpoint=URL&addressing=virtual`), `nfs://HOST[:PORT]/EXPORT/PATH`
    /// (user-space NFSv3; the first path component is the export). Ratios
    /// are against the first.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Workloads, comma-separated: unet3d, resnet50, cosmoflow, shards,
    /// indexed, checkpoint, metadata. Default: all.
    #[arg(long, short = 'w', value_delimiter = ',', value_enum)]
    pub workloads: Vec<Kind>,
    /// Seed of the dataset content and of every shuffle; same seed, same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Dataset size as a fraction of MLPerf's: file counts, indexed reads
    /// per epoch, checkpoint size. Each training dataset keeps at least two
    /// batches per accelerator.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Sample, record, shard and token-file size as a fraction of MLPerf's.
    #[arg(long, default_value_t = 1.0)]
    pub sample_scale: f64,
    /// Simulated accelerators, each with its own data loader.
    #[arg(long, default_value_t = 1)]
    pub accelerators: u32,
    /// Reads in flight per accelerator (default: the workload's DLIO
    /// read_threads); for prepare, checkpoint and metadata, requests in
    /// flight (default 16; checkpoint reads 4 parts per reader).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Compute per batch in milliseconds (default: the MLPerf H100 value
    /// of each workload: unet3d 323, resnet50 224, cosmoflow 3.5).
    #[arg(long)]
    pub compute_ms: Option<f64>,
    /// Epochs of each training workload (MLPerf runs 5).
    #[arg(long, default_value_t = 1)]
    pub epochs: u32,
    /// Do not check the bytes read against the pattern (saves CPU on fast
    /// targets; sizes are still checked).
    #[arg(long)]
    pub no_verify: bool,
    /// Directory for results.json and results.csv (default:
    /// bench-results/<command>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// S3 endpoint, `http://HOST[:PORT]` or `https://HOST[:PORT]`, of the
    /// s3:// targets that do not name their own (`?endpoint=URL`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// How S3 requests name the bucket, for s3:// targets that do not say
    /// (`&addressing=virtual`).
    #[arg(long, value_enum, default_value_t = Addressing::Path)]
    pub s3_addressing: Addressing,
    /// PEM file of CA certificates to trust for https:// endpoints, besides
    /// the system's (a private CA, a self-signed gateway).
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub ca_file: Option<PathBuf>,
    /// Resolve HOST to ADDR for S3 connections, as curl's --resolve
    /// (virtual-hosted names without DNS records); repeatable.
    #[arg(long, value_name = "HOST:ADDR", value_parser = resolve::parse_resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// S3 access key.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: Option<String>,
    /// S3 secret key (prefer the environment variable).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// S3 signing region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// S3 connections (and requests in flight) at most.
    #[arg(long, default_value_t = limits::S3_CONNECTIONS_DEFAULT)]
    pub s3_connections: u32,
    /// Keys per ListObjectsV2 page asked for (max-keys; S3 allows 1 to
    /// 1000). Smaller pages measure pagination.
    #[arg(long, default_value_t = limits::S3_LIST_KEYS_PER_PAGE_MAX)]
    pub s3_list_keys: u32,
    /// NFS connections; each carries one call at a time, so this bounds
    /// NFS calls in flight.
    #[arg(long, default_value_t = limits::NFS_CONNECTIONS_DEFAULT)]
    pub nfs_connections: u32,
    /// uid of the NFS AUTH_SYS credential.
    #[arg(long, default_value_t = 0)]
    pub nfs_uid: u32,
    /// gid of the NFS AUTH_SYS credential.
    #[arg(long, default_value_t = 0)]
    pub nfs_gid: u32,
    /// No progress bars, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    fn workloads(&self) -> Result<Vec<Workload>> {
        let mut kinds = if self.workloads.is_empty() { Kind::ALL.to_vec() } else { self.workloads.clone() };
        kinds.sort();
        kinds.dedup();
        let s = Scaling { scale: self.scale, sample_scale: self.sample_scale, accelerators: self.accelerators };
        kinds.into_iter().map(|k| Workload::new(k, &s)).collect()
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            seed: self.seed,
            accelerators: self.accelerators,
            workers: self.workers,
            compute_ms: self.compute_ms,
            epochs: self.epochs,
            verify: !self.no_verify,
            progress: !self.quiet && std::io::stderr().is_terminal(),
        }
    }

    fn target_options(&self) -> Result<TargetOptions> {
        if self.s3_connections == 0 || self.s3_connections > limits::S3_CONNECTIONS_MAX {
            return Err(BenchError::Invalid(format!("--s3-connections outside 1..={}", limits::S3_CONNECTIONS_MAX)));
        }
        if self.s3_list_keys == 0 || self.s3_list_keys > limits::S3_LIST_KEYS_PER_PAGE_MAX {
            return Err(BenchError::Invalid(format!(
                "--s3-list-keys outside 1..={}",
                limits::S3_LIST_KEYS_PER_PAGE_MAX
            )));
        }
        if self.nfs_connections == 0 || self.nfs_connections > limits::NFS_CONNECTIONS_MAX {
            return Err(BenchError::Invalid(format!("--nfs-connections outside 1..={}", limits::NFS_CONNECTIONS_MAX)));
        }
        Ok(TargetOptions {
            endpoint: self.endpoint.clone(),
            s3_addressing: self.s3_addressing,
            ca_file: self.ca_file.clone(),
            resolve: self.resolve.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: self.region.clone(),
            s3_connections: self.s3_connections,
            s3_list_keys: self.s3_list_keys,
            nfs_connections: self.nfs_connections,
            nfs_uid: self.nfs_uid,
            nfs_gid: self.nfs_gid,
        })
    }
}

/// Runs a `bench` command to completion; prints to stdout.
pub fn main(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Report { dirs, out, notes } => {
            let notes = match &notes {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| BenchError::Report { path: p.display().to_string(), why: e.to_string() })?,
                ),
                None => None,
            };
            let mut runs = Vec::new();
            for dir in run_dirs(&dirs)? {
                let report = report::read_json(&dir)?;
                println!("{}:", dir.display());
                print!("{}", report::params_table(&report.workloads));
                println!();
                print!("{}", report::results_table(&report.rows));
                println!();
                let plots = plot::write_plots(&dir, &report)?;
                runs.push(PageRun { dir, report, plots });
            }
            let out = out.unwrap_or_else(|| dirs[0].clone());
            let page = page::write_page(&out, &runs, notes.as_deref())?;
            println!("report: {}", page.display());
            Ok(())
        }
        BenchCmd::Prepare(args) => run_blocking("prepare", args),
        BenchCmd::Run(args) => run_blocking("run", args),
    }
}

fn run_blocking(command: &str, args: RunArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench")
        .build()
        .map_err(|e| BenchError::Io { op: "runtime", path: String::new(), source: e })?;
    let report = rt.block_on(execute(command, &args))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench-results").join(format!("{command}-{}", report.started_unix_s)));
    report::write_files(&out, &report)?;
    let plots = plot::write_plots(&out, &report)?;
    let page = page::write_page(&out, &[PageRun { dir: out.clone(), report, plots }], None)?;
    println!("results: {}/results.json, results.csv; plots and {}", out.display(), page.display());
    Ok(())
}

/// The run directories named by `dirs`: each one holding a results.json,
/// or its subdirectories that hold one (sorted by name).
fn run_dirs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut runs = Vec::new();
    for d in dirs {
        if d.join("results.json").is_file() {
            runs.push(d.clone());
            continue;
        }
        let err = |e: std::io::Error| BenchError::Report { path: d.display().to_string(), why: e.to_string() };
        let mut sub: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("results.json").is_file())
            .collect();
        if sub.is_empty() {
            return Err(BenchError::Report {
                path: d.display().to_string(),
                why: "no results.json here or in its subdirectories".into(),
            });
        }
        sub.sort();
        runs.extend(sub);
    }
    if runs.len() > limits::REPORT_RUNS_MAX {
        return Err(BenchError::Invalid(format!(
            "{} runs; one page takes {} at most",
            runs.len(),
            limits::REPORT_RUNS_MAX
        )));
    }
    Ok(runs)
}

/// The command line with the value of `--secret-key` replaced: it is
/// written into results.json and onto report pages, which get shared.
fn redacted(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in args {
        if out.last().is_some_and(|prev| prev == "--secret-key") {
            out.push("<redacted>".into());
        } else if a.starts_with("--secret-key=") {
            out.push("--secret-key=<redacted>".into());
        } else {
            out.push(a);
        }
    }
    out
}

/// Prepares or runs (`command`) every workload on every target, printing
/// the tables; returns the report (not yet written).
pub async fn execute(command: &str, args: &RunArgs) -> Result<RunReport> {
    let workloads = args.workloads()?;
    let opts = args.options();
    opts.validate()?;
    let topts = args.target_options()?;
    let started_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    print!("{}", report::params_table(&workloads));
    println!();
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    for url in &args.targets {
        targets.push(targets::open(url, &topts).await?);
    }
    let mut rows = Vec::new();
    for w in &workloads {
        for t in &targets {
            if command == "prepare" {
                rows.extend(runner::prepare(t, std::slice::from_ref(w), &opts).await?);
            } else {
                rows.extend(runner::run(t, w, &opts).await?);
            }
        }
    }
    let urls: Vec<String> = targets.iter().map(|t| t.url().to_string()).collect();
    report::fill_ratios(&mut rows, &urls);
    print!("{}", report::results_table(&rows));
    Ok(RunReport {
        version: REPORT_VERSION,
        command: command.into(),
        started_unix_s,
        seed: args.seed,
        scaling: Scaling { scale: args.scale, sample_scale: args.sample_scale, accelerators: args.accelerators },
        epochs: args.epochs,
        targets: urls,
        workloads,
        rows,
        host: Host::this(),
        command_line: redacted(std::env::args()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_never_reaches_the_report() {
        let args =
            ["gateway", "bench", "run", "s3://b", "--secret-key", "s3cr3t", "--secret-key=s3cr3t", "--seed", "1"];
        let got = redacted(args.iter().map(|a| a.to_string()));
        assert!(!got.iter().any(|a| a.contains("s3cr3t")), "{got:?}");
        assert_eq!(got.len(), args.len());
        assert_eq!(got[5], "<redacted>");
        assert_eq!(&got[7..], ["--seed", "1"]);
    }
}
