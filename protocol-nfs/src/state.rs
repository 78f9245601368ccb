//! What every connection shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use namespace::{Namespace, ROOT_INO};
use nfs3_types::nfs3::writeverf3;

use crate::drc::Drc;
use crate::exports::{ExportOptions, Exports};
use crate::handle::HandleKey;

/// Calls in flight across all connections: bounds the request records held
/// in memory (each at most `RECORD_BYTES_MAX`, about 1 MiB) to 256 MiB.
pub const NFS_CALLS_IN_FLIGHT_MAX: usize = 256;

/// Most bucket names remembered for mapping export inodes to options.
const BUCKET_NAME_CACHE_ENTRIES_MAX: usize = 65_536;

/// Server settings.
#[derive(Clone, Debug)]
pub struct NfsConfig {
    /// The export table.
    pub exports: Exports,
    /// Calls in flight per connection; more wait in the socket (TCP pushes
    /// back), they are never refused.
    pub in_flight_per_connection: usize,
    /// Connections served at once; more wait in the listen backlog.
    pub connections_max: usize,
}

impl Default for NfsConfig {
    fn default() -> Self {
        NfsConfig { exports: Exports::default(), in_flight_per_connection: 128, connections_max: 1024 }
    }
}

/// Shared state of the NFS front door.
pub struct NfsState {
    /// The namespace.
    pub ns: Arc<Namespace>,
    /// Settings.
    pub cfg: NfsConfig,
    /// Duplicate request cache.
    pub drc: Drc,
    /// The port that portmap GETPORT reports for NFS and MOUNT.
    pub port: u16,
    /// Server-wide call slots ([`NFS_CALLS_IN_FLIGHT_MAX`]).
    pub calls: Arc<Semaphore>,
    /// Signs and verifies file handles (derived from the data directory's
    /// secret, so handles survive restarts and cannot be forged).
    pub handles: HandleKey,
    /// Export root inode → bucket name, for per-export options.
    bucket_names: Mutex<HashMap<u64, Vec<u8>>>,
}

impl NfsState {
    /// State over `ns`; `port` is where NFS and MOUNT are served.
    pub fn new(ns: Arc<Namespace>, cfg: NfsConfig, port: u16) -> Self {
        NfsState {
            handles: HandleKey::derive(ns.secret()),
            ns,
            cfg,
            drc: Drc::default(),
            port,
            calls: Arc::new(Semaphore::new(NFS_CALLS_IN_FLIGHT_MAX)),
            bucket_names: Mutex::new(HashMap::new()),
        }
    }

    /// The write verifier of this boot.
    pub fn write_verifier(&self) -> writeverf3 {
        write_verifier(self.ns.boot_epoch())
    }

    /// Remembers that `ino` is the directory of bucket `name`.
    pub fn note_bucket(&self, ino: u64, name: &[u8]) {
        let mut m = self.bucket_names.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= BUCKET_NAME_CACHE_ENTRIES_MAX {
            m.clear();
        }
        m.insert(ino, name.to_vec());
    }

    /// Options of the export rooted at inode `export`; `None` when that is
    /// no export (any more): the handle is stale.
    pub fn export_options(&self, export: u64) -> Option<&ExportOptions> {
        let exports = &self.cfg.exports;
        if export == ROOT_INO {
            return Some(exports.options(b"/"));
        }
        if exports.uniform() {
            return Some(exports.options(b"/"));
        }
        let cached = self.bucket_names.lock().unwrap_or_else(|p| p.into_inner()).get(&export).cloned();
        let name = match cached {
            Some(n) => n,
            None => {
                // A handle from before a restart: find the bucket once.
                let (name, _) = self.ns.list_buckets().ok()?.into_iter().find(|(_, b)| b.ino == export)?;
                self.note_bucket(export, &name);
                name
            }
        };
        Some(exports.options(&[b"/", &name[..]].concat()))
    }
}

/// The write verifier for a boot epoch: distinct on every start (and
/// never equal to a handle generation's role), so clients re-send
/// uncommitted writes after a restart.
pub fn write_verifier(boot_epoch: u64) -> writeverf3 {
    writeverf3(boot_epoch.to_be_bytes())
}
