//! Every size and count the benchmark accepts or uses, in one place, units
//! last. Options are checked against these at the edge (`Config::validate`)
//! and asserted inside.

/// Smallest `--scale` (fraction of the MLPerf dataset size).
pub const SCALE_MIN: f64 = 1e-6;
/// Largest `--scale`: 1.0 is the real MLPerf dataset; more is allowed for
/// datasets larger than the reference (MLPerf wants >= 5x client RAM).
pub const SCALE_MAX: f64 = 100.0;
/// Smallest `--sample-scale` (fraction of the MLPerf sample size).
pub const SAMPLE_SCALE_MIN: f64 = 1e-6;
/// Largest `--sample-scale`.
pub const SAMPLE_SCALE_MAX: f64 = 10.0;
/// A scaled sample or record is never smaller than this.
pub const SAMPLE_BYTES_MIN: u64 = 512;
/// A single sample, record or read is never larger than this (it is held in
/// memory whole while it is verified).
pub const SAMPLE_BYTES_MAX: u64 = 1 << 30;
/// Files of one workload's dataset.
pub const FILES_PER_WORKLOAD_MAX: u64 = 50_000_000;
/// Reads per epoch of the `indexed` workload.
pub const INDEXED_READS_PER_EPOCH_MAX: u64 = 100_000_000;
/// Simulated accelerators (`--accelerators`).
pub const ACCELERATORS_MAX: u32 = 4096;
/// Concurrent reads per accelerator (`--workers`).
pub const WORKERS_MAX: u32 = 1024;
/// Requests in flight for prepare and metadata stats when `--workers` is
/// not given.
pub const WORKERS_DEFAULT: u32 = 16;
/// Parts each checkpoint reader has in flight when `--workers` is not given.
pub const CHECKPOINT_READ_PARTS_IN_FLIGHT_DEFAULT: u32 = 4;
/// Batches a simulated data loader may read ahead of its accelerator
/// (DLIO's `prefetch_size`).
pub const PREFETCH_BATCHES: usize = 2;
/// Epochs per run (`--epochs`).
pub const EPOCHS_MAX: u32 = 1000;
/// Simulated compute time per batch (`--compute-ms`).
pub const COMPUTE_MS_MAX: f64 = 600_000.0;
/// Part size of streamed writes: S3 multipart parts, and the buffer of
/// file and NFS writes. 8 MiB, as s3torchconnector and Mountpoint use; it
/// is above S3's 5 MiB part minimum.
pub const PART_BYTES: u64 = 8 << 20;
/// S3 multipart parts of one object uploaded at once.
pub const PARTS_IN_FLIGHT_MAX: usize = 4;
/// S3 caps an object at 10,000 parts.
pub const S3_PARTS_MAX: u64 = 10_000;
/// Keys per ListObjectsV2 page at most (the S3 maximum, and the default).
pub const S3_LIST_KEYS_PER_PAGE_MAX: u32 = 1000;
/// Default `--s3-connections`.
pub const S3_CONNECTIONS_DEFAULT: u32 = 64;
/// Connections to an S3 endpoint (`--s3-connections`).
pub const S3_CONNECTIONS_MAX: u32 = 1024;
/// An S3 error body kept for the error message.
pub const S3_ERROR_BODY_BYTES_MAX: usize = 512;
/// Default `--nfs-connections`.
pub const NFS_CONNECTIONS_DEFAULT: u32 = 8;
/// Connections to an NFS server (`--nfs-connections`).
pub const NFS_CONNECTIONS_MAX: u32 = 256;
/// An NFS READ or WRITE carries at most this much, whatever the server's
/// FSINFO allows.
pub const NFS_IO_BYTES_MAX: u32 = 1 << 20;
/// READDIRPLUS reply size asked for.
pub const NFS_READDIR_BYTES: u32 = 64 << 10;
/// Directory depth of a dataset path (`<prefix>/<workload>/<file>`).
pub const PATH_COMPONENTS_MAX: usize = 64;
/// Request latencies are recorded from 1 microsecond up to this.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant figures of the latency histogram.
pub const LATENCY_SIGFIGS: u8 = 3;
/// Width of a throughput-timeline bucket when a phase starts; it doubles
/// whenever the phase outlasts [`TIMELINE_BUCKETS_MAX`] buckets.
pub const TIMELINE_BUCKET_MS_START: u64 = 10;
/// Buckets of one phase's throughput timeline at most.
pub const TIMELINE_BUCKETS_MAX: usize = 1024;
/// A latency CDF keeps the latency at every percentile up to the 99th,
/// then at these quantiles of the tail (the last is the largest latency).
pub const LATENCY_CDF_TAIL_QUANTILES: [f64; 5] = [0.995, 0.999, 0.9995, 0.9999, 1.0];
/// Steps of a throughput plot at most (finer timelines are merged).
pub const PLOT_BUCKETS_MAX: usize = 60;
/// Runs one `bench report` page takes at most.
pub const REPORT_RUNS_MAX: usize = 100;
/// Bytes of read buffers a `file://` target keeps for reuse at most.
pub const READ_BUFFER_POOL_BYTES_MAX: usize = 256 << 20;
/// Files a `file://` target keeps open between reads at most.
pub const FILES_KEPT_OPEN_MAX: usize = 64;
