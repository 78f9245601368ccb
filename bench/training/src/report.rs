//! Results: one [`Row`] per (workload, phase, target); the side-by-side
//! terminal table with ratios against the first target, and the JSON and
//! CSV files of a run.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::timeline::Series;
use crate::workload::{Kind, Scaling, Workload};
use crate::{BenchError, Result};

/// Format version of the JSON report. 2 added the host, the command line,
/// latency CDFs, timelines and `cache_dropped`; version 1 reports still
/// read (those fields empty).
pub const REPORT_VERSION: u32 = 2;

/// One measured phase of one workload on one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Workload name.
    pub workload: String,
    /// `prepare`, `train`, `write`, `read`, `list` or `stat`.
    pub phase: String,
    /// Target URL.
    pub target: String,
    /// Samples (train), files (prepare, write, list, stat) or parts (read).
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time of the phase.
    pub seconds: f64,
    /// `ops` per second.
    pub ops_per_s: f64,
    /// MiB per second.
    pub mib_per_s: f64,
    /// Request latency percentiles, microseconds (a request is one call on
    /// the target: a sample read, a part read, a file write, a stat).
    pub latency_us_p50: u64,
    /// 99th percentile.
    pub latency_us_p99: u64,
    /// 99.9th percentile.
    pub latency_us_p999: u64,
    /// Largest.
    pub latency_us_max: u64,
    /// Simulated accelerators.
    pub accelerators: u32,
    /// Requests in flight (per accelerator for train).
    pub workers: u32,
    /// Compute per batch (train).
    pub compute_ms: f64,
    /// Accelerator utilisation, percent (train).
    pub au_pct: Option<f64>,
    /// The MLPerf bar for AU.
    pub au_threshold_pct: Option<f64>,
    /// Whether AU cleared the bar.
    pub au_pass: Option<bool>,
    /// Whether every byte read was checked against the pattern.
    pub verified: bool,
    /// MiB/s (or ops/s where no bytes move) relative to the first target's
    /// row for the same workload and phase.
    pub ratio_vs_first: Option<f64>,
    /// Whether the target's caches were dropped before this phase (the
    /// checkpoint restore; only a `file://` target's page cache can be).
    #[serde(default)]
    pub cache_dropped: Option<bool>,
    /// Latency CDF: `(quantile, microseconds)`, see [`latency_cdf`].
    #[serde(default)]
    pub latency_cdf_us: Vec<(f64, u64)>,
    /// Completions over time, for the throughput plot.
    #[serde(default)]
    pub timeline: Series,
}

impl Row {
    /// A row from a phase's counts and latency histogram.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: Kind,
        phase: &str,
        target: &str,
        ops: u64,
        bytes: u64,
        elapsed: Duration,
        hist: &Histogram<u64>,
        workers: u32,
        accelerators: u32,
        verified: bool,
    ) -> Row {
        let s = elapsed.as_secs_f64().max(1e-9);
        Row {
            workload: kind.name().into(),
            phase: phase.into(),
            target: target.into(),
            ops,
            bytes,
            seconds: s,
            ops_per_s: ops as f64 / s,
            mib_per_s: bytes as f64 / s / (1 << 20) as f64,
            latency_us_p50: hist.value_at_quantile(0.5),
            latency_us_p99: hist.value_at_quantile(0.99),
            latency_us_p999: hist.value_at_quantile(0.999),
            latency_us_max: hist.max(),
            accelerators,
            workers,
            compute_ms: 0.0,
            au_pct: None,
            au_threshold_pct: None,
            au_pass: None,
            verified,
            ratio_vs_first: None,
            cache_dropped: None,
            latency_cdf_us: latency_cdf(hist),
            timeline: Series::default(),
        }
    }

    /// Whether the phase moves bytes (its rate is MiB/s) or only
    /// operations (ops/s: list, stat).
    pub fn moves_bytes(&self) -> bool {
        self.bytes > 0
    }

    fn rate(&self) -> f64 {
        if self.moves_bytes() {
            self.mib_per_s
        } else {
            self.ops_per_s
        }
    }
}

/// The CDF of a latency histogram: the latency at every percentile up to
/// the 99th, then at [`limits::LATENCY_CDF_TAIL_QUANTILES`]; empty for an
/// empty histogram.
pub fn latency_cdf(hist: &Histogram<u64>) -> Vec<(f64, u64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    (0..100)
        .map(|p| f64::from(p) / 100.0)
        .chain(limits::LATENCY_CDF_TAIL_QUANTILES)
        .map(|q| (q, hist.value_at_quantile(q)))
        .collect()
}

/// A latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, limits::LATENCY_US_MAX, limits::LATENCY_SIGFIGS).expect("valid histogram bounds")
}

/// Fills `ratio_vs_first`: each row against the row of the first target
/// (in `targets` order) with the same workload and phase.
pub fn fill_ratios(rows: &mut [Row], targets: &[String]) {
    let Some(first) = targets.first() else { return };
    let base: Vec<(String, String, f64)> =
        rows.iter().filter(|r| &r.target == first).map(|r| (r.workload.clone(), r.phase.clone(), r.rate())).collect();
    for r in rows.iter_mut() {
        r.ratio_vs_first = base
            .iter()
            .find(|(w, p, _)| *w == r.workload && *p == r.phase)
            .filter(|(_, _, b)| *b > 0.0)
            .map(|(_, _, b)| r.rate() / b);
    }
}

/// Everything a run produced, as written to `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// `prepare` or `run`.
    pub command: String,
    /// Unix time the run started.
    pub started_unix_s: u64,
    /// Seed.
    pub seed: u64,
    /// Scaling.
    pub scaling: Scaling,
    /// Epochs of training workloads.
    pub epochs: u32,
    /// Targets in order; ratios are against the first.
    pub targets: Vec<String>,
    /// The workloads with real and scaled parameters.
    pub workloads: Vec<Workload>,
    /// Results.
    pub rows: Vec<Row>,
    /// The machine the benchmark ran on.
    #[serde(default)]
    pub host: Host,
    /// The command line that produced the report.
    #[serde(default)]
    pub command_line: Vec<String>,
}

/// The machine a run measured from (the client side; a remote target's
/// machine is the user's to describe).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Host name.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model, from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: u32,
    /// Memory, bytes (MemTotal).
    pub memory_bytes: u64,
}

impl Host {
    /// The machine this runs on, from /proc; unknown fields stay empty.
    pub fn this() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let memory_kib: u64 = field(&meminfo, "MemTotal").trim_end_matches("kB").trim().parse().unwrap_or_default();
        Host {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model: field(&cpuinfo, "model name"),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            memory_bytes: memory_kib * 1024,
        }
    }
}

/// `b` bytes in the largest binary unit that keeps a number >= 1.
pub fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The workloads' real and scaled parameters, a row of cells each:
/// workload, real/scaled, files, file size, sample size, batch, compute
/// ms, samples per epoch, dataset size.
pub fn param_rows(workloads: &[Workload]) -> Vec<[String; 9]> {
    let mut rows = Vec::new();
    for w in workloads {
        for (label, p) in [("real", &w.real), ("scaled", &w.scaled)] {
            rows.push([
                w.kind.name().to_string(),
                label.to_string(),
                p.files.to_string(),
                size(p.file_bytes),
                size(p.sample_bytes),
                p.batch_size.to_string(),
                p.compute_ms.to_string(),
                p.samples_per_epoch().to_string(),
                size(p.dataset_bytes()),
            ]);
        }
    }
    rows
}

/// The workloads' real and scaled parameters side by side.
pub fn params_table(workloads: &[Workload]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<11} {:<7} {:>9} {:>10} {:>10} {:>6} {:>9} {:>12} {:>10}",
        "workload", "params", "files", "file", "sample", "batch", "compute", "samples/ep", "dataset"
    );
    for [w, label, files, file, sample, batch, compute, per_epoch, dataset] in param_rows(workloads) {
        let _ = writeln!(
            s,
            "{w:<11} {label:<7} {files:>9} {file:>10} {sample:>10} {batch:>6} {compute:>7}ms {per_epoch:>12} {dataset:>10}"
        );
    }
    s
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// The results side by side.
pub fn results_table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<11} {:<8} {:<40} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>7} {:>5} {:>7}",
        "workload",
        "phase",
        "target",
        "ops/s",
        "MiB/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "compute ms",
        "AU %",
        "pass",
        "x first"
    );
    for r in rows {
        let au = r.au_pct.map_or("-".to_string(), |a| format!("{a:.1}"));
        let pass = r.au_pass.map_or("-", |p| if p { "yes" } else { "NO" });
        let ratio = r.ratio_vs_first.map_or("-".to_string(), |x| format!("{x:.2}"));
        let target =
            if r.target.len() > 40 { format!("...{}", &r.target[r.target.len() - 37..]) } else { r.target.clone() };
        let _ = writeln!(
            s,
            "{:<11} {:<8} {:<40} {:>10.1} {:>10.1} {:>9} {:>9} {:>9} {:>10} {:>7} {:>5} {:>7}",
            r.workload,
            r.phase,
            target,
            r.ops_per_s,
            r.mib_per_s,
            ms(r.latency_us_p50),
            ms(r.latency_us_p99),
            ms(r.latency_us_p999),
            if r.au_pct.is_some() { format!("{}", r.compute_ms) } else { "-".into() },
            au,
            pass,
            ratio
        );
    }
    for r in rows.iter().filter(|r| r.cache_dropped == Some(false)) {
        let _ = writeln!(
            s,
            "note: {} {} on {}: caches not dropped before the restore (a remote server's are out of reach)",
            r.workload, r.phase, r.target
        );
    }
    s
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "workload,phase,target,ops,bytes,seconds,ops_per_s,mib_per_s,latency_us_p50,latency_us_p99,latency_us_p999,latency_us_max,accelerators,workers,compute_ms,au_pct,au_threshold_pct,au_pass,verified,ratio_vs_first";

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// The rows as CSV, with a header line.
pub fn to_csv(rows: &[Row]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.6},{:.3},{:.3},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&r.workload),
            csv_field(&r.phase),
            csv_field(&r.target),
            r.ops,
            r.bytes,
            r.seconds,
            r.ops_per_s,
            r.mib_per_s,
            r.latency_us_p50,
            r.latency_us_p99,
            r.latency_us_p999,
            r.latency_us_max,
            r.accelerators,
            r.workers,
            r.compute_ms,
            opt(r.au_pct.map(|a| format!("{a:.3}"))),
            opt(r.au_threshold_pct),
            opt(r.au_pass),
            r.verified,
            opt(r.ratio_vs_first.map(|a| format!("{a:.4}")))
        );
    }
    s
}

/// Writes `results.json` and `results.csv` into `dir` (created if missing).
pub fn write_files(dir: &Path, report: &RunReport) -> Result<()> {
    let err =
        |p: &Path, e: &dyn std::fmt::Display| BenchError::Report { path: p.display().to_string(), why: e.to_string() };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| err(&json, &e))?;
    std::fs::write(&json, text).map_err(|e| err(&json, &e))?;
    let csv = dir.join("results.csv");
    std::fs::write(&csv, to_csv(&report.rows)).map_err(|e| err(&csv, &e))?;
    Ok(())
}

/// Reads a run's `results.json` back.
pub fn read_json(dir: &Path) -> Result<RunReport> {
    let json = dir.join("results.json");
    let err = |why: String| BenchError::Report { path: json.display().to_string(), why };
    let text = std::fs::read_to_string(&json).map_err(|e| err(e.to_string()))?;
    let r: RunReport = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    if r.version == 0 || r.version > REPORT_VERSION {
        return Err(err(format!("report version {}; this build reads 1 to {REPORT_VERSION}", r.version)));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, mib: f64) -> Row {
        let mut h = new_histogram();
        h.record(1000).unwrap();
        let mut r = Row::new(Kind::Unet3d, "train", target, 10, 1 << 20, Duration::from_secs(1), &h, 4, 1, true);
        r.mib_per_s = mib;
        r
    }

    #[test]
    fn ratios_are_against_the_first_target() {
        let mut rows = vec![row("file:///a", 100.0), row("s3://b", 50.0), row("nfs://h/e", 200.0)];
        let targets: Vec<String> = rows.iter().map(|r| r.target.clone()).collect();
        fill_ratios(&mut rows, &targets);
        let ratios: Vec<Option<f64>> = rows.iter().map(|r| r.ratio_vs_first).collect();
        assert_eq!(ratios, vec![Some(1.0), Some(0.5), Some(2.0)]);
    }

    #[test]
    fn csv_has_one_line_per_row_and_fixed_columns() {
        let rows = vec![row("file:///a,b", 1.0), row("s3://b", 2.0)];
        let csv = to_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER);
        assert!(lines[1].contains("\"file:///a,b\""), "a comma is quoted: {}", lines[1]);
        assert_eq!(lines[2].split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(rows[0].latency_us_p50, 1000);
    }
}
