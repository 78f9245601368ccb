//! `gateway fsck`: checks a data directory (see `namespace::fsck` for what
//! is checked and how repair works) and prints a report.
//!
//! Offline, it opens the directory itself without running recovery, so it
//! sees exactly what a crash or a stop left. A directory a running gateway
//! holds is locked: fsck says so at once instead of waiting.
//!
//! Exit status: 0 clean; 1 problems found (with `--repair`: found, and
//! repaired or quarantined as the report says; run again to confirm);
//! 2 bad command line; 3 the check could not run (directory missing or in
//! use, I/O error).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use namespace::{FsckOptions, FsckProgress, FsckReport, Namespace, NamespaceConfig, NsError};

use crate::manage::DataDirArg;

/// Exit status: nothing wrong.
pub const EXIT_CLEAN: i32 = 0;
/// Exit status: problems found.
pub const EXIT_DAMAGE: i32 = 1;
/// Exit status: the check could not run.
pub const EXIT_ERROR: i32 = 3;
/// Default grace for leftovers: the gateway's `gc_grace_secs`.
const DEFAULT_GRACE_SECS: u64 = 600;
/// How long fsck waits for a data directory's lock before saying it is in
/// use (a gateway that just stopped releases it at once).
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// `gateway fsck` arguments.
#[derive(clap::Args, Debug)]
pub struct FsckArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Fix what can be fixed: delete leftovers older than the grace
    /// (unreferenced chunk files, unreaped inodes), recount, and quarantine
    /// damaged data under <data>/quarantine/ (damaged files are unlinked and
    /// listed in quarantine/quarantine.jsonl). Offline only.
    #[arg(long)]
    repair: bool,
    /// Unreferenced chunks and unlinked inodes younger than this are work in
    /// flight, not problems.
    #[arg(long, default_value_t = DEFAULT_GRACE_SECS, value_name = "SECONDS")]
    grace_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Why a check could not run.
#[derive(Debug)]
pub enum FsckFailure {
    /// A running gateway (or another tool) holds the data directory.
    InUse(String),
    /// No data directory there.
    Missing,
    /// Anything else.
    Other(String),
}

/// Runs `gateway fsck`; returns the exit status.
pub fn main(args: FsckArgs) -> i32 {
    let data_dir = args.dir.data_dir.clone();
    let opts = FsckOptions { repair: args.repair, grace: Duration::from_secs(args.grace_secs), online: false };
    let started = Instant::now();
    // A running gateway holds the directory: check its live namespace
    // through the admin socket instead (read-only; repair needs it stopped).
    let online = if args.repair {
        Ok(None)
    } else {
        crate::admin::call(&data_dir, &crate::admin::Request::Fsck { grace_secs: args.grace_secs })
    };
    let result = match online {
        Ok(Some(r)) if r.ok => match r.fsck {
            Some(report) => Ok(report),
            None => Err(FsckFailure::Other("the running gateway sent no report".into())),
        },
        Ok(Some(r)) => Err(FsckFailure::Other(format!("the running gateway refused: {}", r.error))),
        Ok(None) => check_offline(&data_dir, &opts),
        Err(e) => Err(FsckFailure::Other(format!("{e:#}"))),
    };
    match result {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let written = if args.json {
                serde_json::to_writer_pretty(&mut out, &report)
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(out))
            } else {
                render(&report, &data_dir, started.elapsed(), &mut out)
            };
            if let Err(e) = written.and_then(|_| out.flush()) {
                eprintln!("gateway fsck: writing the report: {e}");
                return EXIT_ERROR;
            }
            exit_code(&report)
        }
        Err(FsckFailure::InUse(why)) => {
            let hint = if args.repair {
                "Repair needs exclusive access: stop the gateway, then run it again."
            } else {
                "No admin socket answered, so it was not checked online either."
            };
            eprintln!("gateway fsck: {} is in use ({why}).\n{hint}", data_dir.display());
            EXIT_ERROR
        }
        Err(FsckFailure::Missing) => {
            eprintln!("gateway fsck: {} is not a gateway data directory (no meta/ and chunks/)", data_dir.display());
            EXIT_ERROR
        }
        Err(FsckFailure::Other(e)) => {
            eprintln!("gateway fsck: {}: {e}", data_dir.display());
            EXIT_ERROR
        }
    }
}

/// The exit status for a report.
pub fn exit_code(report: &FsckReport) -> i32 {
    if report.is_clean() {
        EXIT_CLEAN
    } else {
        EXIT_DAMAGE
    }
}

/// Opens `data_dir` for inspection (failing fast when it is locked) and
/// checks it, with a progress bar on a terminal.
pub fn check_offline(data_dir: &Path, opts: &FsckOptions) -> Result<FsckReport, FsckFailure> {
    let mut cfg = NamespaceConfig::new(data_dir);
    cfg.meta_lock_wait = LOCK_WAIT;
    cfg.gc_grace = opts.grace;
    let ns = match Namespace::open_offline(cfg) {
        Ok(ns) => ns,
        Err(NsError::NotFound) => return Err(FsckFailure::Missing),
        Err(NsError::Unavailable(why)) => return Err(FsckFailure::InUse(why)),
        Err(e) => return Err(FsckFailure::Other(e.to_string())),
    };
    let bar = Bar::new();
    let report = ns.fsck(opts, &mut |p| bar.update(p)).map_err(|e| FsckFailure::Other(e.to_string()));
    bar.finish();
    report
}

/// A progress bar on stderr, only when stdout and stderr are terminals.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new() -> Self {
        if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(pb))
    }

    fn update(&self, p: FsckProgress) {
        let Some(pb) = &self.0 else { return };
        match p {
            FsckProgress::Phase { name, total, unit } => {
                let style = if total > 0 && unit == "bytes" {
                    ProgressStyle::with_template("{msg:>18} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                } else if total > 0 {
                    ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len}")
                } else {
                    ProgressStyle::with_template("{msg:>18} {spinner} {pos} {prefix}")
                };
                if let Ok(style) = style {
                    pb.set_style(style.progress_chars("=> "));
                }
                pb.set_length(total);
                pb.set_position(0);
                pb.set_prefix(unit);
                pb.set_message(name);
            }
            FsckProgress::Advance(n) => pb.inc(n),
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// The human report.
pub fn render(report: &FsckReport, data_dir: &Path, took: Duration, out: &mut dyn Write) -> std::io::Result<()> {
    let mode = match (report.online, report.repair) {
        (true, _) => "online, read-only",
        (false, true) => "offline, repair",
        (false, false) => "offline, check only",
    };
    writeln!(
        out,
        "fsck of {} ({mode}, grace {} s, {:.1} s)",
        data_dir.display(),
        report.grace_secs,
        took.as_secs_f64()
    )?;
    writeln!(
        out,
        "  metadata: {} inodes ({} files, {} directories, {} symlinks, {} multipart parts), {} entries, {} extents",
        report.inodes,
        report.files,
        report.directories,
        report.symlinks,
        report.staging_inodes,
        report.dentries,
        report.extents
    )?;
    writeln!(
        out,
        "  chunks:   {} referenced, {} verified ({}), {} files on disk ({}), {} unreferenced but in flight or queued for GC",
        report.chunks_referenced,
        report.chunks_verified,
        human_bytes(report.bytes_verified),
        report.chunk_files,
        human_bytes(report.chunk_file_bytes),
        report.chunks_unreferenced_ok
    )?;
    if report.orphan_inodes_in_grace > 0 {
        writeln!(out, "  {} unlinked inodes waiting to be reaped (within the grace)", report.orphan_inodes_in_grace)?;
    }
    let n = report.problems.len() as u64 + report.problems_omitted;
    if n == 0 {
        writeln!(out, "problems: none")?;
    } else {
        writeln!(out, "problems: {n}")?;
        for p in &report.problems {
            writeln!(out, "  - {p}")?;
            if let Some(r) = &p.repair {
                writeln!(out, "      repaired: {r}")?;
            } else if report.repair {
                writeln!(out, "      not repaired")?;
            }
        }
        if report.problems_omitted > 0 {
            writeln!(out, "  ... and {} more", report.problems_omitted)?;
        }
    }
    if report.repair && n > 0 {
        if report.remaining.is_empty() {
            writeln!(out, "after repair: no problem remains")?;
        } else {
            writeln!(out, "after repair, still: {}", report.remaining.len())?;
            for p in &report.remaining {
                writeln!(out, "  - {p}")?;
            }
        }
    }
    if !report.quarantined.is_empty() {
        let q = data_dir.join(namespace::QUARANTINE_DIR).join(namespace::QUARANTINE_REPORT);
        writeln!(
            out,
            "quarantined: {} items (listed in {})",
            report.quarantined.len() as u64 + report.quarantined_omitted,
            q.display()
        )?;
        for r in &report.quarantined {
            let what = match (r.what.as_str(), r.paths.is_empty()) {
                ("file" | "part", false) => format!("{} {} (inode {})", r.what, r.paths.join(", "), r.ino.unwrap_or(0)),
                ("file" | "part", true) => format!("{} inode {}", r.what, r.ino.unwrap_or(0)),
                ("chunk", _) => format!(
                    "chunk {:016x}{}",
                    r.chunk.unwrap_or(0),
                    r.moved_to.as_deref().map(|m| format!(" -> {m}")).unwrap_or_default()
                ),
                _ => format!("{} {}", r.what, r.record.as_deref().unwrap_or("")),
            };
            writeln!(out, "  - {what}: {}", r.problem)?;
        }
    }
    let verdict = match (n, report.repair) {
        (0, _) => "clean".to_string(),
        (_, false) => format!("DAMAGED: {n} problems (gateway fsck --repair fixes or quarantines them)"),
        (_, true) if report.remaining.is_empty() => format!("REPAIRED: {n} problems fixed or quarantined"),
        (_, true) => format!("DAMAGED: {} problems could not be repaired", report.remaining.len()),
    };
    writeln!(out, "result: {verdict}")
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
