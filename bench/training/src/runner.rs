//! Prepare and run: writes datasets, replays epochs with simulated
//! accelerators, and measures.
//!
//! The accelerator model is DLIO's: each accelerator has a data loader with
//! `workers` reads in flight (DLIO's `read_threads`) that may run up to
//! [`limits::PREFETCH_BATCHES`] batches ahead; the accelerator takes a
//! batch, "computes" for `compute_ms` (a sleep), and takes the next.
//! Accelerator utilisation (AU) = compute time / wall time, skipping the
//! first step of each epoch (whose wait is the pipeline filling), averaged
//! over accelerators.
//!
//! Time is tokio's clock, so tests run the simulation with paused time.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::pattern;
use crate::report::{new_histogram, Row};
use crate::targets::{Content, Target};
use crate::timeline::Meter;
use crate::workload::{FileSpec, Kind, Workload};
use crate::{BenchError, Result};

/// What a run does, beyond the workloads' parameters.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Seed of the dataset and the access order.
    pub seed: u64,
    /// Simulated accelerators.
    pub accelerators: u32,
    /// Reads in flight per accelerator; `None`: the workload's DLIO
    /// `read_threads`. For prepare, checkpoint and metadata: requests in
    /// flight.
    pub workers: Option<u32>,
    /// Compute per batch; `None`: the workload's MLPerf H100 value.
    pub compute_ms: Option<f64>,
    /// Epochs of training workloads.
    pub epochs: u32,
    /// Check every byte read against the pattern.
    pub verify: bool,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

impl RunOptions {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if let Some(w) = self.workers {
            if w == 0 || w > limits::WORKERS_MAX {
                return Err(BenchError::Invalid(format!("--workers {w} outside 1..={}", limits::WORKERS_MAX)));
            }
        }
        if let Some(c) = self.compute_ms {
            if !(0.0..=limits::COMPUTE_MS_MAX).contains(&c) {
                return Err(BenchError::Invalid(format!("--compute-ms {c} outside 0..={}", limits::COMPUTE_MS_MAX)));
            }
        }
        if self.epochs == 0 || self.epochs > limits::EPOCHS_MAX {
            return Err(BenchError::Invalid(format!("--epochs {} outside 1..={}", self.epochs, limits::EPOCHS_MAX)));
        }
        Ok(())
    }

    fn workers_for(&self, w: &Workload) -> u32 {
        self.workers.unwrap_or(w.scaled.read_threads)
    }
}

/// The manifest `prepare` leaves next to each dataset, so `run` can refuse
/// a dataset made with other parameters.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this record.
    pub version: u32,
    /// The seed of the content.
    pub seed: u64,
    /// The workload and its parameters.
    pub workload: Workload,
}

/// Format version of [`Manifest`].
const MANIFEST_VERSION: u32 = 1;

fn manifest_path(kind: Kind) -> String {
    format!("{}.manifest.json", kind.name())
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, limits::LATENCY_US_MAX);
    h.record(us).expect("clamped into the histogram's range");
}

fn bar(show: bool, total: u64, label: String) -> ProgressBar {
    bar_with(show, total, label, "{prefix:40} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
}

fn bar_with(show: bool, total: u64, label: String, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total);
    b.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    b.set_prefix(label);
    b
}

/// Writes the datasets of `workloads` (all but checkpoint, which `run`
/// writes) and their manifests; returns one row per workload with the
/// write rate.
pub async fn prepare(target: &Arc<dyn Target>, workloads: &[Workload], opts: &RunOptions) -> Result<Vec<Row>> {
    target.prepare_root().await?;
    let mut rows = Vec::new();
    for w in workloads.iter().filter(|w| w.kind != Kind::Checkpoint) {
        let layout = w.layout();
        let workers = opts.workers.unwrap_or(limits::WORKERS_DEFAULT);
        let total: u64 = layout.iter().map(|f| f.bytes).sum();
        let meter = Meter::new(bar(opts.progress, total, format!("prepare {} {}", w.kind.name(), target.url())));
        let start = Instant::now();
        let mut hist = new_histogram();
        let seed = opts.seed;
        let mut results = futures_util::stream::iter(layout.into_iter().map(|f| {
            let t = target.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let content = Content::Pattern { key: f.key(seed), bytes: f.bytes };
                t.write(&f.path, content, false).await?;
                Ok::<_, BenchError>((t0.elapsed(), f.bytes))
            })
        }))
        .buffer_unordered(workers as usize);
        let mut ops = 0;
        while let Some(r) = results.next().await {
            let (d, bytes) = joined(r)?;
            record(&mut hist, d);
            meter.done(bytes, bytes);
            ops += 1;
        }
        let timeline = meter.finish();
        let manifest = Manifest { version: MANIFEST_VERSION, seed: opts.seed, workload: w.clone() };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        target.write(&manifest_path(w.kind), Content::Literal(Bytes::from(json)), true).await?;
        let mut row = Row::new(
            w.kind,
            "prepare",
            target.url(),
            ops,
            total,
            start.elapsed(),
            &hist,
            workers,
            opts.accelerators,
            opts.verify,
        );
        row.timeline = timeline;
        rows.push(row);
    }
    Ok(rows)
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match r {
        Ok(r) => r,
        Err(e) => Err(BenchError::Io { op: "task", path: String::new(), source: std::io::Error::other(e) }),
    }
}

/// Checks that `target` holds `w`'s dataset for `seed`.
async fn check_manifest(target: &Arc<dyn Target>, w: &Workload, seed: u64) -> Result<()> {
    let err = |why: String| BenchError::Dataset { target: target.url().into(), workload: w.kind.name().into(), why };
    let path = manifest_path(w.kind);
    let size = target.stat(&path).await.map_err(|e| err(format!("no manifest ({e})")))?;
    let raw = target.read(&path, 0, size).await?;
    let m: Manifest = serde_json::from_slice(&raw).map_err(|e| err(format!("bad manifest: {e}")))?;
    // Only what defines the bytes matters: file names and sizes and the
    // seed. Batch size, compute time, read threads and reads per epoch may
    // differ between prepare and run.
    if m.version != MANIFEST_VERSION || m.seed != seed || m.workload.layout() != w.layout() {
        return Err(err(format!(
            "prepared with seed {} and {} files of {} bytes, this run wants seed {seed} and {} files of {} bytes",
            m.seed, m.workload.scaled.files, m.workload.scaled.file_bytes, w.scaled.files, w.scaled.file_bytes
        )));
    }
    Ok(())
}

/// Runs one workload on one target; returns its rows.
pub async fn run(target: &Arc<dyn Target>, w: &Workload, opts: &RunOptions) -> Result<Vec<Row>> {
    opts.validate()?;
    match w.kind {
        Kind::Checkpoint => checkpoint(target, w, opts).await,
        Kind::Metadata => {
            check_manifest(target, w, opts.seed).await?;
            metadata(target, w, opts).await
        }
        _ => {
            check_manifest(target, w, opts.seed).await?;
            Ok(vec![training(target, w, opts).await?])
        }
    }
}

/// What one accelerator measured.
struct RankStats {
    hist: Histogram<u64>,
    samples: u64,
    bytes: u64,
    /// Compute time, first step of each epoch excluded.
    compute: Duration,
    /// Wall time, first step of each epoch excluded.
    wall: Duration,
}

/// One read, checked.
async fn read_checked(
    t: Arc<dyn Target>,
    file: FileSpec,
    offset: u64,
    len: u64,
    seed: u64,
    verify: bool,
) -> Result<(Duration, u64)> {
    let t0 = Instant::now();
    let data = t.read(&file.path, offset, len).await?;
    let d = t0.elapsed();
    if data.len() as u64 != len {
        return Err(BenchError::Mismatch {
            path: file.path,
            offset: offset + data.len() as u64,
            why: format!("short read: {} of {len} bytes", data.len()),
        });
    }
    if verify {
        if let Some(at) = pattern::first_mismatch(file.key(seed), offset, &data) {
            return Err(BenchError::Mismatch { path: file.path, offset: at, why: "content differs".into() });
        }
    }
    Ok((d, len))
}

async fn training(target: &Arc<dyn Target>, w: &Workload, opts: &RunOptions) -> Result<Row> {
    let layout = Arc::new(w.layout());
    let workers = opts.workers_for(w);
    let compute = Duration::from_secs_f64(opts.compute_ms.unwrap_or(w.scaled.compute_ms) / 1000.0);
    let meter = Meter::new(bar(opts.progress, 0, format!("{} {}", w.kind.name(), target.url())));
    let start = Instant::now();
    let mut ranks: Vec<RankStats> = (0..opts.accelerators)
        .map(|_| RankStats {
            hist: new_histogram(),
            samples: 0,
            bytes: 0,
            compute: Duration::ZERO,
            wall: Duration::ZERO,
        })
        .collect();
    for epoch in 0..opts.epochs {
        let plan = w.epoch_plan(opts.seed, epoch, opts.accelerators, workers);
        meter.bar().inc_length(plan.iter().flatten().flatten().map(|r| r.len).sum());
        let mut tasks = Vec::new();
        for batches in plan {
            let (t, layout, meter) = (target.clone(), layout.clone(), meter.clone());
            let (seed, verify) = (opts.seed, opts.verify);
            tasks.push(tokio::spawn(async move {
                accelerator(t, layout, batches, workers, compute, seed, verify, meter).await
            }));
        }
        for (rank, task) in tasks.into_iter().enumerate() {
            let s = joined(task.await)?;
            let r = &mut ranks[rank];
            r.hist.add(&s.hist).expect("same bounds");
            r.samples += s.samples;
            r.bytes += s.bytes;
            r.compute += s.compute;
            r.wall += s.wall;
        }
    }
    let timeline = meter.finish();
    let elapsed = start.elapsed();
    let mut hist = new_histogram();
    let (mut samples, mut bytes) = (0, 0);
    let mut aus = Vec::new();
    for r in &ranks {
        hist.add(&r.hist).expect("same bounds");
        samples += r.samples;
        bytes += r.bytes;
        if !r.wall.is_zero() {
            aus.push(100.0 * r.compute.as_secs_f64() / r.wall.as_secs_f64());
        }
    }
    let mut row = Row::new(
        w.kind,
        "train",
        target.url(),
        samples,
        bytes,
        elapsed,
        &hist,
        workers,
        opts.accelerators,
        opts.verify,
    );
    row.compute_ms = compute.as_secs_f64() * 1000.0;
    row.timeline = timeline;
    if !aus.is_empty() {
        let au = aus.iter().sum::<f64>() / aus.len() as f64;
        row.au_pct = Some(au);
        row.au_threshold_pct = Some(w.scaled.au_threshold_pct);
        row.au_pass = Some(au >= w.scaled.au_threshold_pct);
    }
    Ok(row)
}

/// What has come in of one batch's reads.
struct BatchSoFar {
    hist: Histogram<u64>,
    bytes: u64,
    reads: usize,
}

impl Default for BatchSoFar {
    fn default() -> BatchSoFar {
        BatchSoFar { hist: new_histogram(), bytes: 0, reads: 0 }
    }
}

/// One accelerator and its data loader, for one epoch.
#[allow(clippy::too_many_arguments)]
async fn accelerator(
    t: Arc<dyn Target>,
    layout: Arc<Vec<FileSpec>>,
    batches: Vec<Vec<crate::workload::Read>>,
    workers: u32,
    compute: Duration,
    seed: u64,
    verify: bool,
    meter: Meter,
) -> Result<RankStats> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Histogram<u64>, u64, u64)>>(limits::PREFETCH_BATCHES);
    let loader = tokio::spawn(async move {
        // `workers` reads in flight whatever order they finish in (a slow
        // read holds its own slot only); a batch goes to the accelerator
        // once all its reads are in, batches in order. Reads are issued at
        // most PREFETCH_BATCHES batches past the one being assembled, and
        // the channel holds at most PREFETCH_BATCHES finished batches.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        let mut pending: Vec<BatchSoFar> = sizes.iter().map(|_| BatchSoFar::default()).collect();
        let mut reads =
            batches.into_iter().enumerate().flat_map(|(b, rs)| rs.into_iter().map(move |r| (b, r))).peekable();
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut next_batch = 0;
        while next_batch < sizes.len() {
            while in_flight.len() < workers as usize {
                match reads.next_if(|(b, _)| *b <= next_batch + limits::PREFETCH_BATCHES) {
                    Some((b, r)) => {
                        let (t, file) = (t.clone(), layout[r.file as usize].clone());
                        let read = tokio::spawn(read_checked(t, file, r.offset, r.len, seed, verify));
                        in_flight.push(async move { (b, joined(read.await)) });
                    }
                    None => break,
                }
            }
            // An empty batch is complete at once; otherwise wait for a read.
            if pending[next_batch].reads < sizes[next_batch] {
                let Some((b, done)) = in_flight.next().await else {
                    unreachable!("reads of unfinished batches are in flight")
                };
                match done {
                    Ok((d, n)) => {
                        let p = &mut pending[b];
                        record(&mut p.hist, d);
                        p.bytes += n;
                        p.reads += 1;
                        meter.done(n, n);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            while next_batch < sizes.len() && pending[next_batch].reads == sizes[next_batch] {
                let b = std::mem::take(&mut pending[next_batch]);
                if tx.send(Ok((b.hist, b.reads as u64, b.bytes))).await.is_err() {
                    return;
                }
                next_batch += 1;
            }
        }
    });
    let mut stats =
        RankStats { hist: new_histogram(), samples: 0, bytes: 0, compute: Duration::ZERO, wall: Duration::ZERO };
    let mut last = Instant::now();
    let mut step = 0u64;
    while let Some(batch) = rx.recv().await {
        let (hist, samples, bytes) = batch?;
        stats.hist.add(&hist).expect("same bounds");
        stats.samples += samples;
        stats.bytes += bytes;
        let c0 = Instant::now();
        if !compute.is_zero() {
            tokio::time::sleep(compute).await;
        }
        let now = Instant::now();
        if step > 0 {
            stats.compute += now - c0;
            stats.wall += now - last;
        }
        last = now;
        step += 1;
    }
    let _ = loader.await;
    Ok(stats)
}

/// N writers each write one file (durably), then N readers read them back.
async fn checkpoint(target: &Arc<dyn Target>, w: &Workload, opts: &RunOptions) -> Result<Vec<Row>> {
    target.prepare_root().await?;
    let layout = w.layout();
    let total: u64 = layout.iter().map(|f| f.bytes).sum();
    let n = layout.len() as u32;
    // Write: all writers at once, each a whole file with sync.
    let meter = Meter::new(bar(opts.progress, total, format!("checkpoint write {}", target.url())));
    let start = Instant::now();
    let mut hist = new_histogram();
    let mut writes = Vec::new();
    for f in layout.iter().cloned() {
        let (t, seed, meter) = (target.clone(), opts.seed, meter.clone());
        writes.push(tokio::spawn(async move {
            let t0 = Instant::now();
            t.write(&f.path, Content::Pattern { key: f.key(seed), bytes: f.bytes }, true).await?;
            meter.done(f.bytes, f.bytes);
            Ok::<_, BenchError>(t0.elapsed())
        }));
    }
    for task in writes {
        record(&mut hist, joined(task.await)?);
    }
    let timeline = meter.finish();
    let mut rows = vec![Row::new(
        w.kind,
        "write",
        target.url(),
        u64::from(n),
        total,
        start.elapsed(),
        &hist,
        n,
        opts.accelerators,
        opts.verify,
    )];
    rows[0].timeline = timeline;
    // MLPerf drops caches before the restore, so that it reads from the
    // storage and not from what the write left in memory.
    let mut dropped = true;
    for f in &layout {
        dropped &= target.drop_cache(&f.path).await?;
    }
    // Restore: every reader streams its file in parts, `workers` parts in
    // flight per reader; latency is per part.
    let workers = opts.workers.unwrap_or(limits::CHECKPOINT_READ_PARTS_IN_FLIGHT_DEFAULT);
    let meter = Meter::new(bar(opts.progress, total, format!("checkpoint read {}", target.url())));
    let start = Instant::now();
    let mut reads = Vec::new();
    for f in layout.iter().cloned() {
        let (t, seed, verify, meter) = (target.clone(), opts.seed, opts.verify, meter.clone());
        reads.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let parts = (0..f.bytes.div_ceil(limits::PART_BYTES)).map(|i| {
                let off = i * limits::PART_BYTES;
                let len = limits::PART_BYTES.min(f.bytes - off);
                tokio::spawn(read_checked(t.clone(), f.clone(), off, len, seed, verify))
            });
            let mut s = futures_util::stream::iter(parts).buffered(workers as usize);
            while let Some(r) = s.next().await {
                let (d, b) = joined(r)?;
                record(&mut hist, d);
                meter.done(b, b);
            }
            Ok::<_, BenchError>(hist)
        }));
    }
    let mut hist = new_histogram();
    for task in reads {
        hist.add(&joined(task.await)?).expect("same bounds");
    }
    let timeline = meter.finish();
    let parts = hist.len();
    let mut row = Row::new(
        w.kind,
        "read",
        target.url(),
        parts,
        total,
        start.elapsed(),
        &hist,
        n * workers,
        opts.accelerators,
        opts.verify,
    );
    row.timeline = timeline;
    row.cache_dropped = Some(dropped);
    rows.push(row);
    // Not measured: a full-size checkpoint is 105 GB, too much to leave
    // behind on every run.
    for f in &layout {
        target.delete(&f.path).await?;
    }
    Ok(rows)
}

/// Lists the dataset's directory, then stats every file.
async fn metadata(target: &Arc<dyn Target>, w: &Workload, opts: &RunOptions) -> Result<Vec<Row>> {
    let layout = w.layout();
    let dir = w.kind.name();
    let start = Instant::now();
    let mut hist = new_histogram();
    let t0 = Instant::now();
    let listed = target.list(dir).await?;
    record(&mut hist, t0.elapsed());
    let mut want: Vec<(String, u64)> = layout.iter().map(|f| (f.path.clone(), f.bytes)).collect();
    let mut got: Vec<(String, u64)> = listed.into_iter().map(|e| (format!("{dir}/{}", e.name), e.bytes)).collect();
    want.sort();
    got.sort();
    if opts.verify && want != got {
        return Err(BenchError::Dataset {
            target: target.url().into(),
            workload: dir.into(),
            why: format!("listing has {} files, the layout {}; or sizes differ", got.len(), want.len()),
        });
    }
    let n = got.len() as u64;
    let mut rows =
        vec![Row::new(w.kind, "list", target.url(), n, 0, start.elapsed(), &hist, 1, opts.accelerators, opts.verify)];
    let workers = opts.workers.unwrap_or(limits::WORKERS_DEFAULT);
    let meter = Meter::new(bar_with(
        opts.progress,
        n,
        format!("metadata stat {}", target.url()),
        "{prefix:40} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    ));
    let start = Instant::now();
    let mut hist = new_histogram();
    let stats = layout.into_iter().map(|f| {
        let t = target.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let size = t.stat(&f.path).await?;
            if size != f.bytes {
                return Err(BenchError::Mismatch {
                    path: f.path,
                    offset: size,
                    why: format!("size, want {}", f.bytes),
                });
            }
            Ok::<_, BenchError>(t0.elapsed())
        })
    });
    let mut s = futures_util::stream::iter(stats).buffer_unordered(workers as usize);
    while let Some(r) = s.next().await {
        record(&mut hist, joined(r)?);
        meter.done(0, 1);
    }
    let timeline = meter.finish();
    let mut row =
        Row::new(w.kind, "stat", target.url(), n, 0, start.elapsed(), &hist, workers, opts.accelerators, opts.verify);
    row.timeline = timeline;
    rows.push(row);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{BoxFuture, Entry};
    use crate::workload::Scaling;

    /// A target that serves the pattern after a fixed delay per read.
    struct SlowTarget {
        seed: u64,
        read_delay: Duration,
    }

    impl Target for SlowTarget {
        fn url(&self) -> &str {
            "mem://slow"
        }
        fn prepare_root(&self) -> BoxFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn write<'a>(&'a self, _: &'a str, _: Content, _: bool) -> BoxFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn read<'a>(&'a self, path: &'a str, offset: u64, len: u64) -> BoxFuture<'a, Bytes> {
            Box::pin(async move {
                tokio::time::sleep(self.read_delay).await;
                let key = pattern::content_key(self.seed, path);
                Ok(Bytes::from(pattern::bytes_at(key, offset, len as usize)))
            })
        }
        fn list<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Vec<Entry>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn stat<'a>(&'a self, _: &'a str) -> BoxFuture<'a, u64> {
            Box::pin(async { Ok(0) })
        }
        fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    async fn au(read_ms: u64, compute_ms: f64, workers: u32, accelerators: u32) -> Row {
        let s = Scaling { scale: 0.0001, sample_scale: 0.001, accelerators };
        let w = Workload::new(Kind::Cosmoflow, &s).unwrap(); // 52 files, batch 1
        let t: Arc<dyn Target> = Arc::new(SlowTarget { seed: 3, read_delay: Duration::from_millis(read_ms) });
        let opts = RunOptions {
            seed: 3,
            accelerators,
            workers: Some(workers),
            compute_ms: Some(compute_ms),
            epochs: 2,
            verify: true,
            progress: false,
        };
        training(&t, &w, &opts).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn au_is_one_when_storage_keeps_up() {
        // Four reads of 10 ms in flight deliver a sample every 2.5 ms; the
        // accelerator needs one every 4 ms.
        let r = au(10, 4.0, 4, 1).await;
        let a = r.au_pct.unwrap();
        assert!(a > 99.0, "AU {a}");
        assert_eq!(r.au_pass, Some(true));
        assert_eq!(r.ops, 2 * 52, "two epochs of every sample");
    }

    #[tokio::test(start_paused = true)]
    async fn au_is_compute_over_step_time_when_storage_is_slow() {
        // One read of 10 ms at a time: a step takes 10 ms, 4 of them compute.
        let r = au(10, 4.0, 1, 1).await;
        let a = r.au_pct.unwrap();
        assert!((a - 40.0).abs() < 1.0, "AU {a}");
        assert_eq!(r.au_pass, Some(false), "cosmoflow's bar is 70%");
        assert!((r.latency_us_p50 as f64 - 10_000.0).abs() < 50.0, "p50 {}", r.latency_us_p50);
        // Two accelerators with a loader each: the same per accelerator.
        let r = au(10, 4.0, 1, 2).await;
        assert!((r.au_pct.unwrap() - 40.0).abs() < 1.0, "AU {:?}", r.au_pct);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_byte_fails_the_run() {
        let s = Scaling { scale: 0.0001, sample_scale: 0.001, accelerators: 1 };
        let w = Workload::new(Kind::Cosmoflow, &s).unwrap();
        // The target serves seed 3's bytes; the run expects seed 4's.
        let t: Arc<dyn Target> = Arc::new(SlowTarget { seed: 3, read_delay: Duration::ZERO });
        let opts = RunOptions {
            seed: 4,
            accelerators: 1,
            workers: Some(2),
            compute_ms: Some(0.0),
            epochs: 1,
            verify: true,
            progress: false,
        };
        match training(&t, &w, &opts).await {
            Err(BenchError::Mismatch { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
