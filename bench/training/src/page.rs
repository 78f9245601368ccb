//! `gateway bench report`: saved runs turned into one markdown page, with
//! the machine, the command lines, the parameters, the results side by
//! side and the plots.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::plot::Plot;
use crate::report::{param_rows, size, Row, RunReport};
use crate::workload::Workload;
use crate::{BenchError, Result};

/// A run on the page: where its files are, what it measured, its plots.
pub struct PageRun {
    /// The run's directory (results.json and the plots).
    pub dir: PathBuf,
    /// Its report.
    pub report: RunReport,
    /// Its plots, in page order.
    pub plots: Vec<Plot>,
}

/// The file name of the page.
pub const PAGE_FILE: &str = "report.md";

/// Writes [`PAGE_FILE`] into `out` for `runs`, with `notes` (markdown)
/// under the title; returns its path.
pub fn write_page(out: &Path, runs: &[PageRun], notes: Option<&str>) -> Result<PathBuf> {
    let err =
        |p: &Path, e: &dyn std::fmt::Display| BenchError::Report { path: p.display().to_string(), why: e.to_string() };
    std::fs::create_dir_all(out).map_err(|e| err(out, &e))?;
    let path = out.join(PAGE_FILE);
    let text = page(out, runs, notes);
    std::fs::write(&path, text).map_err(|e| err(&path, &e))?;
    Ok(path)
}

/// The page's markdown.
pub fn page(out: &Path, runs: &[PageRun], notes: Option<&str>) -> String {
    let mut s = String::from("# Storage benchmark report\n\n");
    if let Some(n) = notes {
        s.push_str(n.trim_end());
        s.push_str("\n\n");
    }
    let _ = writeln!(
        s,
        "Made by `gateway bench report` from {} run(s). Ratios (`x first`) are MiB/s (ops/s where no bytes \
         move) against the run's first target. AU is accelerator utilisation as MLPerf Storage defines it; \
         the bar is MLPerf's (90%, cosmoflow 70%).\n",
        runs.len()
    );
    for (i, run) in runs.iter().enumerate() {
        run_section(&mut s, out, i + 1, run);
    }
    s
}

fn run_section(s: &mut String, out: &Path, n: usize, run: &PageRun) {
    let r = &run.report;
    let when = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(r.started_unix_s));
    let _ = writeln!(s, "## Run {n}: `{}`, {when}\n", r.command);
    if !r.command_line.is_empty() {
        let _ = writeln!(s, "```sh\n{}\n```\n", r.command_line.join(" "));
    }
    let h = &r.host;
    if !h.hostname.is_empty() || h.cpus > 0 {
        let _ = writeln!(
            s,
            "- Client machine: `{}`, Linux {}, {} x {}, {} memory",
            h.hostname,
            h.kernel,
            h.cpus,
            if h.cpu_model.is_empty() { "CPU" } else { &h.cpu_model },
            size(h.memory_bytes)
        );
    }
    let _ = writeln!(
        s,
        "- Seed {}, --scale {}, --sample-scale {}, {} accelerator(s), {} epoch(s)",
        r.seed, r.scaling.scale, r.scaling.sample_scale, r.scaling.accelerators, r.epochs
    );
    let _ = writeln!(
        s,
        "- Targets (ratios against the first): {}\n",
        r.targets.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(s, "### Workloads\n");
    params(s, &r.workloads);
    let _ = writeln!(s, "\n### Results\n");
    results(s, &r.rows);
    let not_dropped: Vec<&Row> = r.rows.iter().filter(|row| row.cache_dropped == Some(false)).collect();
    if !not_dropped.is_empty() {
        let _ = writeln!(
            s,
            "\nCaches not dropped before the checkpoint restore on: {} (a remote server's caches are out of the \
             client's reach; the restore may be served from its memory).",
            not_dropped.iter().map(|row| format!("`{}`", row.target)).collect::<Vec<_>>().join(", ")
        );
    }
    if !run.plots.is_empty() {
        let _ = writeln!(s, "\n### Plots\n");
        let rel = relative(out, &run.dir);
        for p in &run.plots {
            let png = rel.join(format!("{}.png", p.stem));
            let svg = rel.join(format!("{}.svg", p.stem));
            let _ = writeln!(s, "![{}]({})\n\n[SVG]({})\n", p.title, png.display(), svg.display());
        }
    }
    s.push('\n');
}

fn cell(v: &str) -> String {
    v.replace('|', "\\|")
}

fn params(s: &mut String, workloads: &[Workload]) {
    let _ = writeln!(s, "| workload | params | files | file | sample | batch | compute ms | samples/epoch | dataset |");
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for cells in param_rows(workloads) {
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
}

fn results(s: &mut String, rows: &[Row]) {
    let _ = writeln!(
        s,
        "| workload | phase | target | ops/s | MiB/s | p50 ms | p99 ms | p99.9 ms | AU % | bar % | pass | x first |"
    );
    let _ = writeln!(s, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|");
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.phase,
            cell(&r.target),
            r.ops_per_s,
            r.mib_per_s,
            ms(r.latency_us_p50),
            ms(r.latency_us_p99),
            ms(r.latency_us_p999),
            r.au_pct.map_or("-".into(), |a| format!("{a:.1}")),
            r.au_threshold_pct.map_or("-".into(), |a| format!("{a}")),
            r.au_pass.map_or("-", |p| if p { "yes" } else { "**no**" }),
            r.ratio_vs_first.map_or("-".into(), |x| format!("{x:.2}"))
        );
    }
}

/// `to` as seen from `from`, both made absolute; `to` itself when they
/// share nothing (another file system root).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(from), abs(to));
    let f: Vec<Component<'_>> = from.components().collect();
    let t: Vec<Component<'_>> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to;
    }
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_walk_up_then_down() {
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), PathBuf::new());
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b/run1")), PathBuf::from("run1"));
        assert_eq!(relative(Path::new("/a/b/page"), Path::new("/a/c/run1")), PathBuf::from("../../c/run1"));
    }

    #[test]
    fn a_pipe_in_a_target_does_not_split_the_cell() {
        assert_eq!(cell("s3://a|b"), "s3://a\\|b");
    }
}
