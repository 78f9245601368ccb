//! Time, behind a trait so tests control it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// A source of wall-clock time.
pub trait Clock: Send + Sync {
    /// Current time in nanoseconds since the epoch.
    fn now_ns(&self) -> Nanos;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> Nanos {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(pub std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock at `ns`.
    pub fn at(ns: Nanos) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(ns))
    }
    /// Moves the clock forward.
    pub fn advance_ns(&self, ns: i64) {
        self.0.fetch_add(ns, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> Nanos {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
