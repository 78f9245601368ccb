//! The workloads: their real parameters (MLPerf Storage's DLIO configs for
//! the H100 where MLPerf has one), the `--scale`/`--sample-scale` scaling,
//! the dataset layout (file names and sizes) and the per-epoch access
//! order (shuffles, batches per accelerator, record offsets).
//!
//! Architecture invariant: a layout and an epoch plan are pure functions of
//! (workload, scaled parameters, seed, epoch, accelerators, workers); the
//! runner and `prepare` never draw random numbers of their own.

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::pattern::{content_key, Rng};
use crate::{BenchError, Result};

/// The workloads of issue #14.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// MLPerf unet3d: one ~140 MB sample per file, read whole, batch 7.
    Unet3d,
    /// MLPerf resnet50: TFRecord files of 1,251 ~115 KB samples, read sample
    /// by sample in shuffled order, batch 400.
    Resnet50,
    /// MLPerf cosmoflow: one 2.8 MB sample per file, batch 1.
    Cosmoflow,
    /// WebDataset-style 256 MiB tar shards read sequentially, one shard per
    /// worker.
    Shards,
    /// Random reads of 4 KiB-2 MiB records at random offsets of large token
    /// files (an indexed dataset, as LLM pre-training uses).
    Indexed,
    /// Checkpoint: N writers each write one large file (S3 multipart or
    /// write+fsync), then restore by reading them back; the files are
    /// deleted afterwards.
    Checkpoint,
    /// List and stat every file of a many-small-files dataset.
    Metadata,
}

impl Kind {
    /// Every workload, in report order.
    pub const ALL: [Kind; 7] =
        [Kind::Unet3d, Kind::Resnet50, Kind::Cosmoflow, Kind::Shards, Kind::Indexed, Kind::Checkpoint, Kind::Metadata];

    /// The lowercase name, also the dataset directory.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unet3d => "unet3d",
            Kind::Resnet50 => "resnet50",
            Kind::Cosmoflow => "cosmoflow",
            Kind::Shards => "shards",
            Kind::Indexed => "indexed",
            Kind::Checkpoint => "checkpoint",
            Kind::Metadata => "metadata",
        }
    }

    /// Where the real parameters come from.
    pub fn source(self) -> &'static str {
        match self {
            Kind::Unet3d => "MLPerf Storage configs/dlio/workload/unet3d_h100.yaml",
            Kind::Resnet50 => "MLPerf Storage configs/dlio/workload/resnet50_h100.yaml",
            Kind::Cosmoflow => "MLPerf Storage configs/dlio/workload/cosmoflow_h100.yaml",
            Kind::Shards => "not MLPerf: webdataset defaults, chosen for this benchmark",
            Kind::Indexed => "not MLPerf: Megatron-style indexed token files, chosen for this benchmark",
            Kind::Checkpoint => "MLPerf Storage checkpointing llama3-8b (105 GB over 8 ranks)",
            Kind::Metadata => "not MLPerf: cosmoflow's file count with 4 KiB files",
        }
    }

    /// Whether the workload is a training loop (batches, accelerators, AU)
    /// rather than a write/restore or a listing.
    pub fn is_training(self) -> bool {
        !matches!(self, Kind::Checkpoint | Kind::Metadata)
    }

    /// The real (unscaled) parameters.
    pub fn real(self) -> Params {
        let base = Params {
            files: 0,
            file_bytes: 0,
            samples_per_file: 1,
            sample_bytes: 0,
            read_bytes_min: 0,
            reads_per_epoch: 0,
            batch_size: 1,
            compute_ms: 0.0,
            read_threads: 4,
            au_threshold_pct: 90.0,
            epochs: 5,
        };
        match self {
            Kind::Unet3d => Params {
                files: 168,
                file_bytes: 146_600_628,
                sample_bytes: 146_600_628,
                batch_size: 7,
                compute_ms: 323.0,
                ..base
            },
            Kind::Resnet50 => Params {
                files: 1024,
                samples_per_file: 1251,
                sample_bytes: 114_660,
                file_bytes: 1251 * 114_660,
                batch_size: 400,
                compute_ms: 224.0,
                read_threads: 8,
                ..base
            },
            Kind::Cosmoflow => Params {
                files: 524_288,
                file_bytes: 2_828_486,
                sample_bytes: 2_828_486,
                batch_size: 1,
                compute_ms: 3.5,
                au_threshold_pct: 70.0,
                ..base
            },
            Kind::Shards => Params {
                files: 1024,
                samples_per_file: 256,
                sample_bytes: 1 << 20,
                file_bytes: 256 << 20,
                batch_size: 32,
                compute_ms: 100.0,
                ..base
            },
            Kind::Indexed => Params {
                files: 8,
                file_bytes: 8 << 30,
                samples_per_file: 0,
                sample_bytes: 2 << 20,
                read_bytes_min: 4 << 10,
                reads_per_epoch: 100_000,
                batch_size: 64,
                compute_ms: 100.0,
                ..base
            },
            Kind::Checkpoint => Params {
                files: 8,
                file_bytes: 105_000_000_000 / 8,
                sample_bytes: 105_000_000_000 / 8,
                au_threshold_pct: 0.0,
                epochs: 1,
                ..base
            },
            Kind::Metadata => Params {
                files: 524_288,
                file_bytes: 4096,
                sample_bytes: 4096,
                au_threshold_pct: 0.0,
                epochs: 1,
                ..base
            },
        }
    }
}

/// A workload's parameters, real or scaled. Sizes in bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Files in the dataset (for checkpoint: writers, one file each).
    pub files: u64,
    /// Size of every file.
    pub file_bytes: u64,
    /// Samples (records) per file; 0 for `indexed`, whose reads are not
    /// records.
    pub samples_per_file: u64,
    /// Size of one sample; for `indexed`, the largest read.
    pub sample_bytes: u64,
    /// `indexed` only: the smallest read.
    pub read_bytes_min: u64,
    /// `indexed` only: reads per epoch.
    pub reads_per_epoch: u64,
    /// Samples per batch, per accelerator.
    pub batch_size: u64,
    /// Simulated compute time per batch (DLIO `computation_time`).
    pub compute_ms: f64,
    /// Reads in flight per accelerator (DLIO `read_threads`).
    pub read_threads: u32,
    /// The accelerator-utilisation bar the run must clear (MLPerf: 90%,
    /// cosmoflow 70%); 0 when AU does not apply.
    pub au_threshold_pct: f64,
    /// Epochs of the MLPerf run (`--epochs` sets the benchmark's own).
    pub epochs: u32,
}

impl Params {
    /// Samples (or reads) per epoch.
    pub fn samples_per_epoch(&self) -> u64 {
        if self.samples_per_file == 0 {
            self.reads_per_epoch
        } else {
            self.files * self.samples_per_file
        }
    }

    /// Bytes of the dataset.
    pub fn dataset_bytes(&self) -> u64 {
        self.files * self.file_bytes
    }
}

/// How a run scales the real parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    /// Multiplies the dataset size: file counts, `indexed` reads per
    /// epoch, and the checkpoint size.
    pub scale: f64,
    /// Multiplies sample, record, shard and token-file sizes (not the
    /// checkpoint, which `scale` sizes).
    pub sample_scale: f64,
    /// Simulated accelerators; a training dataset has at least two batches
    /// per accelerator, so that AU (which skips the first step) exists.
    pub accelerators: u32,
}

impl Scaling {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(limits::SCALE_MIN..=limits::SCALE_MAX).contains(&self.scale) {
            return Err(BenchError::Invalid(format!(
                "--scale {} outside {}..={}",
                self.scale,
                limits::SCALE_MIN,
                limits::SCALE_MAX
            )));
        }
        if !(limits::SAMPLE_SCALE_MIN..=limits::SAMPLE_SCALE_MAX).contains(&self.sample_scale) {
            return Err(BenchError::Invalid(format!(
                "--sample-scale {} outside {}..={}",
                self.sample_scale,
                limits::SAMPLE_SCALE_MIN,
                limits::SAMPLE_SCALE_MAX
            )));
        }
        if self.accelerators == 0 || self.accelerators > limits::ACCELERATORS_MAX {
            return Err(BenchError::Invalid(format!(
                "--accelerators {} outside 1..={}",
                self.accelerators,
                limits::ACCELERATORS_MAX
            )));
        }
        Ok(())
    }
}

fn scaled(v: u64, by: f64, min: u64) -> u64 {
    ((v as f64 * by).round() as u64).max(min)
}

/// Rounds a size to a multiple of 512 (a sector), at least 512.
fn sector(v: u64) -> u64 {
    (v / 512).max(1) * 512
}

/// A workload with its real and scaled parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Which one.
    pub kind: Kind,
    /// MLPerf's (or this benchmark's reference) parameters.
    pub real: Params,
    /// What this run uses.
    pub scaled: Params,
}

impl Workload {
    /// Scales `kind`'s real parameters.
    pub fn new(kind: Kind, s: &Scaling) -> Result<Workload> {
        s.validate()?;
        let real = kind.real();
        let mut p = real.clone();
        let sample = |b: u64| scaled(b, s.sample_scale, limits::SAMPLE_BYTES_MIN).min(limits::SAMPLE_BYTES_MAX);
        match kind {
            Kind::Unet3d | Kind::Cosmoflow | Kind::Resnet50 | Kind::Shards => {
                p.sample_bytes = sample(real.sample_bytes);
                p.file_bytes = p.sample_bytes * p.samples_per_file;
                // At least two batches per accelerator.
                let samples_min = 2 * p.batch_size * u64::from(s.accelerators);
                let files_min = samples_min.div_ceil(p.samples_per_file);
                p.files = scaled(real.files, s.scale, files_min);
            }
            Kind::Indexed => {
                p.sample_bytes = sector(sample(real.sample_bytes));
                p.read_bytes_min = sector(sample(real.read_bytes_min)).min(p.sample_bytes);
                p.file_bytes = sector(scaled(real.file_bytes, s.sample_scale, 4 * p.sample_bytes));
                p.files = scaled(real.files, s.scale, 1);
                p.reads_per_epoch = scaled(real.reads_per_epoch, s.scale, 2 * p.batch_size * u64::from(s.accelerators));
            }
            Kind::Checkpoint => {
                p.file_bytes = scaled(real.file_bytes, s.scale, limits::SAMPLE_BYTES_MIN);
                p.sample_bytes = p.file_bytes;
            }
            Kind::Metadata => {
                p.files = scaled(real.files, s.scale, 1);
                p.file_bytes = sample(real.file_bytes);
                p.sample_bytes = p.file_bytes;
            }
        }
        if p.files > limits::FILES_PER_WORKLOAD_MAX {
            return Err(BenchError::Invalid(format!(
                "{}: {} files is more than {}; lower --scale",
                kind.name(),
                p.files,
                limits::FILES_PER_WORKLOAD_MAX
            )));
        }
        if p.reads_per_epoch > limits::INDEXED_READS_PER_EPOCH_MAX {
            return Err(BenchError::Invalid(format!("{}: too many reads per epoch; lower --scale", kind.name())));
        }
        if kind == Kind::Checkpoint && p.file_bytes.div_ceil(limits::PART_BYTES) > limits::S3_PARTS_MAX {
            return Err(BenchError::Invalid("checkpoint: a file would need more than 10,000 S3 parts".into()));
        }
        Ok(Workload { kind, real, scaled: p })
    }

    /// The dataset: every file's path (relative to the target root) and size.
    pub fn layout(&self) -> Vec<FileSpec> {
        let p = &self.scaled;
        let (stem, ext) = match self.kind {
            Kind::Unet3d => ("img", "npz"),
            Kind::Resnet50 => ("train", "tfrecord"),
            Kind::Cosmoflow => ("univ", "tfrecord"),
            Kind::Shards => ("shard", "tar"),
            Kind::Indexed => ("tokens", "bin"),
            Kind::Checkpoint => ("rank", "pt"),
            Kind::Metadata => ("f", "bin"),
        };
        (0..p.files)
            .map(|i| FileSpec { path: format!("{}/{stem}_{i:07}.{ext}", self.kind.name()), bytes: p.file_bytes })
            .collect()
    }

    /// The reads of one epoch: for each accelerator, its batches in order,
    /// each a list of reads. `workers` matters only to `shards`, where each
    /// worker streams its own shard.
    pub fn epoch_plan(&self, seed: u64, epoch: u32, accelerators: u32, workers: u32) -> Vec<Vec<Vec<Read>>> {
        assert!(self.kind.is_training(), "{} has no epochs", self.kind.name());
        assert!(accelerators > 0 && workers > 0);
        let p = &self.scaled;
        let n = accelerators as usize;
        let mut rng = Rng::new(seed, 0x5EED_0000 ^ (u64::from(epoch) << 8) ^ self.kind as u64);
        let mut per_rank: Vec<Vec<Read>> = vec![Vec::new(); n];
        match self.kind {
            Kind::Unet3d | Kind::Cosmoflow | Kind::Resnet50 => {
                // DLIO: shuffle samples globally, then batch b goes to rank
                // b mod n.
                let mut samples: Vec<(u64, u64)> =
                    (0..p.files).flat_map(|f| (0..p.samples_per_file).map(move |s| (f, s))).collect();
                rng.shuffle(&mut samples);
                for (b, chunk) in samples.chunks(p.batch_size as usize).enumerate() {
                    per_rank[b % n].extend(chunk.iter().map(|&(f, s)| Read {
                        file: f,
                        offset: s * p.sample_bytes,
                        len: p.sample_bytes,
                    }));
                }
            }
            Kind::Shards => {
                // Shards shuffled and dealt to ranks; within a rank, each of
                // `workers` streams takes the next shard and reads it front
                // to back; the streams interleave, one sample each in turn.
                let mut shards: Vec<u64> = (0..p.files).collect();
                rng.shuffle(&mut shards);
                for (rank, reads) in per_rank.iter_mut().enumerate() {
                    let mine: Vec<u64> = shards.iter().copied().skip(rank).step_by(n).collect();
                    for group in mine.chunks(workers as usize) {
                        for s in 0..p.samples_per_file {
                            for &f in group {
                                reads.push(Read { file: f, offset: s * p.sample_bytes, len: p.sample_bytes });
                            }
                        }
                    }
                }
            }
            Kind::Indexed => {
                let all: Vec<Read> = (0..p.reads_per_epoch)
                    .map(|_| {
                        let len = rng.range_inclusive(p.read_bytes_min / 512, p.sample_bytes / 512) * 512;
                        let file = rng.below(p.files);
                        let offset = rng.below((p.file_bytes - len) / 512 + 1) * 512;
                        Read { file, offset, len }
                    })
                    .collect();
                for (b, chunk) in all.chunks(p.batch_size as usize).enumerate() {
                    per_rank[b % n].extend_from_slice(chunk);
                }
            }
            Kind::Checkpoint | Kind::Metadata => unreachable!("checked above"),
        }
        per_rank.into_iter().map(|reads| reads.chunks(p.batch_size as usize).map(<[Read]>::to_vec).collect()).collect()
    }
}

/// One file of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// Path relative to the target root, `<workload>/<name>`.
    pub path: String,
    /// Size.
    pub bytes: u64,
}

impl FileSpec {
    /// The key of its content for `seed`.
    pub fn key(&self, seed: u64) -> u64 {
        content_key(seed, &self.path)
    }
}

/// One read of a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Index into the layout.
    pub file: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: Kind, scale: f64, sample_scale: f64, acc: u32) -> Workload {
        Workload::new(kind, &Scaling { scale, sample_scale, accelerators: acc }).unwrap()
    }

    #[test]
    fn real_parameters_are_mlperf() {
        let u = Kind::Unet3d.real();
        assert_eq!((u.batch_size, u.compute_ms, u.au_threshold_pct), (7, 323.0, 90.0));
        let r = Kind::Resnet50.real();
        assert_eq!((r.samples_per_file, r.batch_size, r.compute_ms), (1251, 400, 224.0));
        let c = Kind::Cosmoflow.real();
        assert_eq!((c.batch_size, c.au_threshold_pct), (1, 70.0));
        assert_eq!(Kind::Shards.real().file_bytes, 256 << 20);
    }

    #[test]
    fn scale_one_is_real() {
        for k in Kind::ALL {
            assert_eq!(w(k, 1.0, 1.0, 1).scaled, k.real(), "{k:?}");
        }
    }

    #[test]
    fn scaling_keeps_two_batches_per_accelerator() {
        let u = w(Kind::Unet3d, 1e-6, 0.001, 4);
        assert_eq!(u.scaled.files, 2 * 7 * 4);
        assert_eq!(u.scaled.sample_bytes, 146_601);
        let r = w(Kind::Resnet50, 1e-6, 0.001, 2);
        assert_eq!(r.scaled.files, 2, "1,600 samples need 2 files of 1,251");
        assert_eq!(r.scaled.file_bytes, 1251 * r.scaled.sample_bytes);
        let s = w(Kind::Shards, 1e-6, 1e-6, 1);
        assert_eq!(s.scaled.sample_bytes, limits::SAMPLE_BYTES_MIN);
    }

    #[test]
    fn layout_names_and_sizes() {
        let c = w(Kind::Cosmoflow, 0.0001, 0.01, 1);
        let l = c.layout();
        assert_eq!(l.len() as u64, c.scaled.files);
        assert_eq!(l[0].path, "cosmoflow/univ_0000000.tfrecord");
        assert!(l.iter().all(|f| f.bytes == c.scaled.file_bytes));
    }

    #[test]
    fn epoch_plan_covers_every_sample_once_in_batches() {
        for acc in [1u32, 3] {
            let r = w(Kind::Resnet50, 0.002, 0.001, acc);
            let p = &r.scaled;
            let plan = r.epoch_plan(9, 0, acc, 8);
            assert_eq!(plan.len(), acc as usize);
            let mut seen: Vec<(u64, u64)> = Vec::new();
            for rank in &plan {
                for (i, batch) in rank.iter().enumerate() {
                    assert!(batch.len() as u64 <= p.batch_size);
                    if i + 1 < rank.len() {
                        assert_eq!(batch.len() as u64, p.batch_size, "only a rank's last batch is short");
                    }
                    for rd in batch {
                        assert_eq!(rd.len, p.sample_bytes);
                        assert_eq!(rd.offset % p.sample_bytes, 0, "record offsets on record boundaries");
                        assert!(rd.offset + rd.len <= p.file_bytes);
                        seen.push((rd.file, rd.offset));
                    }
                }
            }
            let n = seen.len() as u64;
            assert_eq!(n, p.samples_per_epoch());
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len() as u64, n, "no sample twice");
        }
    }

    #[test]
    fn epoch_plan_is_seeded() {
        let r = w(Kind::Resnet50, 0.002, 0.001, 1);
        assert_eq!(r.epoch_plan(1, 0, 1, 8), r.epoch_plan(1, 0, 1, 8), "same seed, same order");
        assert_ne!(r.epoch_plan(1, 0, 1, 8), r.epoch_plan(2, 0, 1, 8), "another seed");
        assert_ne!(r.epoch_plan(1, 0, 1, 8), r.epoch_plan(1, 1, 1, 8), "each epoch reshuffles");
        // Not in file order: resnet50 reads sample by sample, shuffled.
        let first: Vec<u64> = r.epoch_plan(1, 0, 1, 8)[0][0].iter().map(|r| r.offset).take(10).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_ne!(first, sorted);
    }

    #[test]
    fn shards_stream_sequentially_per_worker() {
        let s = w(Kind::Shards, 0.004, 0.001, 1); // 4 shards of 256 samples
        assert_eq!(s.scaled.files, 4);
        let plan = s.epoch_plan(5, 0, 1, 2);
        let reads: Vec<Read> = plan[0].iter().flatten().copied().collect();
        assert_eq!(reads.len() as u64, 4 * 256);
        // Per shard, offsets strictly increase by one sample.
        for f in 0..4 {
            let offs: Vec<u64> = reads.iter().filter(|r| r.file == f).map(|r| r.offset).collect();
            assert_eq!(offs, (0..256).map(|i| i * s.scaled.sample_bytes).collect::<Vec<_>>());
        }
        // Two streams interleave: the first two reads are two shards' starts.
        assert_ne!(reads[0].file, reads[1].file);
        assert_eq!((reads[0].offset, reads[1].offset), (0, 0));
    }

    #[test]
    fn indexed_reads_stay_inside_files() {
        let x = w(Kind::Indexed, 0.01, 0.001, 2);
        let p = &x.scaled;
        assert!(p.read_bytes_min >= 512 && p.read_bytes_min <= p.sample_bytes);
        let reads: Vec<Read> = x.epoch_plan(3, 0, 2, 4).into_iter().flatten().flatten().collect();
        assert_eq!(reads.len() as u64, p.reads_per_epoch);
        for r in &reads {
            assert!(r.file < p.files);
            assert!(r.len >= p.read_bytes_min && r.len <= p.sample_bytes, "{r:?}");
            assert!(r.offset + r.len <= p.file_bytes, "{r:?}");
            assert_eq!(r.offset % 512, 0);
        }
        let lens: std::collections::BTreeSet<u64> = reads.iter().map(|r| r.len).collect();
        assert!(lens.len() > 1, "sizes vary");
    }

    #[test]
    fn bad_scaling_is_refused() {
        let bad = |scale, sample_scale, accelerators| {
            Workload::new(Kind::Unet3d, &Scaling { scale, sample_scale, accelerators })
        };
        assert!(bad(0.0, 1.0, 1).is_err());
        assert!(bad(1.0, 0.0, 1).is_err());
        assert!(bad(1.0, 1.0, 0).is_err());
        assert!(bad(f64::NAN, 1.0, 1).is_err());
    }
}
