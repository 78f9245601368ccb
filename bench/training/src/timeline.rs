//! Throughput over time: bytes and operations completed per time bucket of
//! a phase, for the throughput plots.
//!
//! The run's length is not known in advance, so the buckets start at
//! [`limits::TIMELINE_BUCKET_MS_START`] and, when a phase outlasts
//! [`limits::TIMELINE_BUCKETS_MAX`] of them, neighbours are merged and the
//! width doubles: memory stays bounded and a long run keeps its whole
//! shape at a coarser grain.

use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::limits;

/// A phase's completions per bucket, as stored in `results.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Width of a bucket, milliseconds (0: nothing recorded).
    pub width_ms: u64,
    /// Bytes completed in each bucket, from the phase's start.
    pub bytes: Vec<u64>,
    /// Operations completed in each bucket.
    pub ops: Vec<u64>,
}

impl Series {
    /// The same completions in at most `buckets` buckets (neighbours
    /// merged, the width doubling), for a plot that stays readable.
    pub fn coarsened(&self, buckets: usize) -> Series {
        let mut s = self.clone();
        while s.bytes.len() > buckets.max(1) && s.width_ms > 0 {
            s.bytes = merge_pairs(&s.bytes);
            s.ops = merge_pairs(&s.ops);
            s.width_ms *= 2;
        }
        s
    }

    /// `(seconds at the bucket's end, rate per second)` for each bucket:
    /// MiB/s when `bytes`, else operations/s. The last bucket is partial,
    /// so its rate is over the part the phase lasted (`total_s`).
    pub fn rates(&self, bytes: bool, total_s: f64) -> Vec<(f64, f64)> {
        if self.width_ms == 0 {
            return Vec::new();
        }
        let w = self.width_ms as f64 / 1000.0;
        let values = if bytes { &self.bytes } else { &self.ops };
        let scale = if bytes { (1u64 << 20) as f64 } else { 1.0 };
        let n = values.len();
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let start = i as f64 * w;
                let end = if i + 1 == n { total_s.max(start + 1e-3).min(start + w) } else { start + w };
                (end, v as f64 / scale / (end - start))
            })
            .collect()
    }
}

fn merge_pairs(v: &[u64]) -> Vec<u64> {
    v.chunks(2).map(|c| c.iter().sum()).collect()
}

/// The recorder behind a [`Series`].
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    series: Series,
}

impl Timeline {
    /// An empty timeline starting now.
    pub fn new() -> Timeline {
        Timeline::starting(Instant::now())
    }

    fn starting(start: Instant) -> Timeline {
        Timeline { start, series: Series { width_ms: limits::TIMELINE_BUCKET_MS_START, ..Series::default() } }
    }

    /// Counts `bytes` and `ops` completed at `at`.
    pub fn add(&mut self, at: Instant, bytes: u64, ops: u64) {
        let ms = at.saturating_duration_since(self.start).as_millis() as u64;
        let mut i = (ms / self.series.width_ms) as usize;
        while i >= limits::TIMELINE_BUCKETS_MAX {
            self.coarsen();
            i = (ms / self.series.width_ms) as usize;
        }
        let s = &mut self.series;
        if s.bytes.len() <= i {
            s.bytes.resize(i + 1, 0);
            s.ops.resize(i + 1, 0);
        }
        s.bytes[i] += bytes;
        s.ops[i] += ops;
    }

    /// Merges neighbouring buckets; the width doubles.
    fn coarsen(&mut self) {
        let s = &mut self.series;
        s.bytes = merge_pairs(&s.bytes);
        s.ops = merge_pairs(&s.ops);
        s.width_ms *= 2;
    }

    /// What was recorded.
    pub fn series(&self) -> Series {
        self.series.clone()
    }
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::new()
    }
}

/// What a phase's tasks report completions to: its progress bar and its
/// timeline. Cheap to clone; clones share both.
#[derive(Clone)]
pub struct Meter {
    bar: ProgressBar,
    timeline: Arc<Mutex<Timeline>>,
}

impl Meter {
    /// A meter starting now, drawing on `bar`.
    pub fn new(bar: ProgressBar) -> Meter {
        Meter { bar, timeline: Arc::new(Mutex::new(Timeline::new())) }
    }

    /// One operation of `bytes` completed; the bar advances by `bar_units`
    /// (bytes, or 1 for bars that count operations).
    pub fn done(&self, bytes: u64, bar_units: u64) {
        self.bar.inc(bar_units);
        self.timeline.lock().expect("timeline lock").add(Instant::now(), bytes, 1);
    }

    /// The bar, to grow its length.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Clears the bar; returns the timeline.
    pub fn finish(&self) -> Series {
        self.bar.finish_and_clear();
        self.timeline.lock().expect("timeline lock").series()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn completions_land_in_their_bucket() {
        let t0 = Instant::now();
        let mut t = Timeline::starting(t0);
        let w = limits::TIMELINE_BUCKET_MS_START;
        t.add(t0, 10, 1);
        t.add(t0 + Duration::from_millis(w - 1), 5, 1);
        t.add(t0 + Duration::from_millis(3 * w), 7, 2);
        let s = t.series();
        assert_eq!(s.width_ms, w);
        assert_eq!(s.bytes, vec![15, 0, 0, 7]);
        assert_eq!(s.ops, vec![2, 0, 0, 2]);
    }

    #[test]
    fn a_long_phase_coarsens_and_keeps_every_byte() {
        let t0 = Instant::now();
        let mut t = Timeline::starting(t0);
        let w = limits::TIMELINE_BUCKET_MS_START;
        let n = 5 * limits::TIMELINE_BUCKETS_MAX as u64;
        for i in 0..n {
            t.add(t0 + Duration::from_millis(i * w), 3, 1);
        }
        let s = t.series();
        assert!(s.bytes.len() <= limits::TIMELINE_BUCKETS_MAX, "{} buckets", s.bytes.len());
        assert_eq!(s.width_ms, 8 * w, "5x the buckets needs three doublings");
        assert_eq!(s.bytes.iter().sum::<u64>(), 3 * n);
        assert_eq!(s.ops.iter().sum::<u64>(), n);
        assert_eq!(s.bytes[0], 3 * 8, "a full bucket holds eight of the first width");
    }

    #[test]
    fn rates_are_per_second_and_the_last_bucket_is_partial() {
        let s = Series { width_ms: 500, bytes: vec![1 << 20, 1 << 20], ops: vec![4, 1] };
        let r = s.rates(true, 0.75);
        assert_eq!(r, vec![(0.5, 2.0), (0.75, 4.0)]);
        let r = s.rates(false, 1.0);
        assert_eq!(r, vec![(0.5, 8.0), (1.0, 2.0)]);
        assert!(Series::default().rates(true, 1.0).is_empty());
    }

    #[test]
    fn coarsening_for_a_plot_keeps_the_totals() {
        let s = Series { width_ms: 10, bytes: (1..=9).collect(), ops: vec![1; 9] };
        let c = s.coarsened(4);
        assert_eq!(c.width_ms, 40);
        assert_eq!(c.bytes, vec![1 + 2 + 3 + 4, 5 + 6 + 7 + 8, 9]);
        assert_eq!(c.ops, vec![4, 4, 1]);
        assert_eq!(s.coarsened(100), s);
    }
}
