//! Training-pattern storage benchmark (issue #14).
//!
//! Generates MLPerf Storage-like datasets, replays training I/O patterns
//! against any mix of `file://`, `s3://` and `nfs://` targets with the same
//! seed, simulates accelerators (DLIO's accelerator utilisation), and
//! reports side by side. The gateway binary wires it in as `gateway bench`;
//! the server's crates carry none of this client code.
//!
//! Code map:
//! - [`workload`]: real MLPerf parameters, scaling, dataset layout, epoch
//!   plans (shuffles, batches, record offsets);
//! - [`pattern`]: the seeded generator and the content of every byte;
//! - [`targets`]: the [`targets::Target`] trait and its file, S3 and NFS
//!   implementations;
//! - [`runner`]: prepare, the accelerator simulation, checkpoint and
//!   metadata phases;
//! - [`report`]: rows, ratios, the terminal table, JSON and CSV;
//! - [`timeline`]: throughput over time, in bounded buckets;
//! - [`plot`]: the PNG/SVG plots (plotters);
//! - [`page`]: the markdown page of `bench report`;
//! - [`cli`]: `prepare`, `run`, `report`;
//! - [`limits`]: every size and count.

pub mod cli;
mod error;
pub mod limits;
pub mod page;
pub mod pattern;
pub mod plot;
pub mod report;
pub mod runner;
pub mod targets;
pub mod timeline;
pub mod workload;

pub use error::{BenchError, Result};
