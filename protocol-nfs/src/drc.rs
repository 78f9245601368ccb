//! Duplicate request cache.
//!
//! A client retransmits a call whose reply it did not see (a dropped
//! connection, a timeout). Re-executing a non-idempotent call would answer
//! wrongly (`EXIST` for a CREATE that worked, `NOENT` for a REMOVE), so the
//! first execution's reply bytes are kept and **replayed**. A duplicate that
//! arrives while the original is still running is dropped: the client
//! retransmits again later and then gets the reply.
//!
//! Key: client IP, xid, program, version, procedure and a hash of the
//! argument bytes. The port is left out so that a retransmission on a new
//! connection (after a reconnect from another port) still matches.
//! Bounds: entries and bytes globally and entries per client; entries are
//! kept at least [`DRC_AGE_MIN`] unless a bound forces them out, oldest
//! first. Lookups are O(1).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most cached replies in all.
pub const DRC_ENTRIES_MAX: usize = 32_768;
/// Most cached reply bytes in all.
pub const DRC_BYTES_MAX: usize = 64 << 20;
/// Most cached replies per client address.
pub const DRC_ENTRIES_PER_CLIENT_MAX: usize = 8_192;
/// Completed entries younger than this are evicted only when a bound forces it.
pub const DRC_AGE_MIN: Duration = Duration::from_secs(120);

/// Identifies one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DrcKey {
    client: IpAddr,
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    args_hash: u64,
}

impl DrcKey {
    /// The key of a call from `client` with argument bytes `args`.
    pub fn new(client: IpAddr, xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Self {
        // WRITE arguments carry up to 1 MiB: a hardware CRC, not SipHash,
        // keeps this off the profile. Collisions need the same client,
        // xid and procedure too.
        let args_hash = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, args);
        DrcKey { client: client.to_canonical(), xid, prog, vers, proc_, args_hash }
    }
}

enum Slot {
    InProgress,
    Done(Arc<Vec<u8>>),
}

struct Entry {
    slot: Slot,
    /// Matches the queue record that owns this entry.
    seq: u64,
}

/// What to do with a call.
pub enum Lookup {
    /// First sight: execute it, then [`Drc::complete`] or [`Drc::forget`].
    Execute,
    /// The original is still running: send nothing.
    Drop,
    /// Already answered: send these bytes again.
    Replay(Arc<Vec<u8>>),
}

#[derive(Default)]
struct Inner {
    map: HashMap<DrcKey, Entry>,
    /// Insertion order for age and bound eviction: (seq, key, when).
    order: VecDeque<(u64, DrcKey, Instant)>,
    per_client: HashMap<IpAddr, usize>,
    bytes: usize,
    next_seq: u64,
}

/// The cache; shared by every connection.
#[derive(Default)]
pub struct Drc {
    inner: Mutex<Inner>,
}

impl Drc {
    /// Registers a call, or says how to treat a duplicate.
    pub fn begin(&self, key: DrcKey) -> Lookup {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.expire(Instant::now());
        if let Some(e) = g.map.get(&key) {
            return match &e.slot {
                Slot::InProgress => Lookup::Drop,
                Slot::Done(bytes) => Lookup::Replay(bytes.clone()),
            };
        }
        let client = key.client;
        while g.map.len() >= DRC_ENTRIES_MAX
            || g.per_client.get(&client).copied().unwrap_or(0) >= DRC_ENTRIES_PER_CLIENT_MAX
        {
            if !g.evict_oldest() {
                break;
            }
        }
        let seq = g.next_seq;
        g.next_seq += 1;
        g.order.push_back((seq, key.clone(), Instant::now()));
        *g.per_client.entry(client).or_default() += 1;
        g.map.insert(key, Entry { slot: Slot::InProgress, seq });
        Lookup::Execute
    }

    /// Stores the reply of an executed call.
    pub fn complete(&self, key: &DrcKey, reply: Arc<Vec<u8>>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let len = reply.len();
        if let Some(e) = g.map.get_mut(key) {
            e.slot = Slot::Done(reply);
            g.bytes += len;
        }
        while g.bytes > DRC_BYTES_MAX {
            if !g.evict_oldest() {
                break;
            }
        }
    }

    /// Drops a call's entry (its handler failed without a reply to keep).
    pub fn forget(&self, key: &DrcKey) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.remove(key);
    }

    /// Entries held (tests, metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn remove(&mut self, key: &DrcKey) {
        if let Some(e) = self.map.remove(key) {
            if let Slot::Done(b) = &e.slot {
                self.bytes -= b.len();
            }
            if let Some(n) = self.per_client.get_mut(&key.client) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&key.client);
                }
            }
        }
    }

    /// Removes the oldest live entry; false when none is left.
    fn evict_oldest(&mut self) -> bool {
        while let Some((seq, key, _)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// Drops completed entries older than the minimum age.
    fn expire(&mut self, now: Instant) {
        while let Some((seq, key, at)) = self.order.front() {
            if now.duration_since(*at) < DRC_AGE_MIN {
                break;
            }
            let (seq, key) = (*seq, key.clone());
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.seq == seq && matches!(e.slot, Slot::Done(_))) {
                self.remove(&key);
            } else if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                // Still running after two minutes: keep tracking it.
                self.order.push_back((seq, key, now));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(xid: u32, args: &[u8]) -> DrcKey {
        DrcKey::new("10.0.0.1".parse().unwrap(), xid, 100003, 3, 8, args)
    }

    #[test]
    fn duplicates_are_dropped_while_running_and_replayed_after() {
        let drc = Drc::default();
        assert!(matches!(drc.begin(key(1, b"a")), Lookup::Execute));
        assert!(matches!(drc.begin(key(1, b"a")), Lookup::Drop));
        assert!(matches!(drc.begin(key(1, b"b")), Lookup::Execute), "same xid, other arguments");
        drc.complete(&key(1, b"a"), Arc::new(b"reply".to_vec()));
        match drc.begin(key(1, b"a")) {
            Lookup::Replay(r) => assert_eq!(&r[..], b"reply"),
            _ => panic!("expected a replay"),
        }
        drc.forget(&key(1, b"b"));
        assert!(matches!(drc.begin(key(1, b"b")), Lookup::Execute), "a forgotten call runs again");
    }

    #[test]
    fn a_retransmission_from_another_port_matches() {
        // The key holds only the address: ports never enter it.
        let drc = Drc::default();
        let a = DrcKey::new("::ffff:127.0.0.1".parse().unwrap(), 9, 100003, 3, 8, b"x");
        let b = DrcKey::new("127.0.0.1".parse().unwrap(), 9, 100003, 3, 8, b"x");
        assert!(matches!(drc.begin(a.clone()), Lookup::Execute));
        drc.complete(&a, Arc::new(vec![1]));
        assert!(matches!(drc.begin(b), Lookup::Replay(_)));
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let drc = Drc::default();
        for i in 0..(DRC_ENTRIES_PER_CLIENT_MAX as u32 + 100) {
            let k = key(i, b"");
            drc.begin(k.clone());
            drc.complete(&k, Arc::new(vec![0; 8]));
        }
        assert_eq!(drc.len(), DRC_ENTRIES_PER_CLIENT_MAX);
        // The oldest went first.
        assert!(matches!(drc.begin(key(0, b"")), Lookup::Execute));
        let big = key(u32::MAX, b"big");
        drc.begin(big.clone());
        drc.complete(&big, Arc::new(vec![0; DRC_BYTES_MAX + 1]));
        assert!(drc.inner.lock().unwrap().bytes <= DRC_BYTES_MAX);
    }
}
