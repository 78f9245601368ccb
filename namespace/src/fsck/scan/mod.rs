//! One pass over the metadata (and, per [`Depth`], the chunk files): every
//! tree is read once, in a fixed order, into one [`ScanState`].
//!
//! The order matters, since each tree is checked against tallies of the
//! trees before it: inodes first (everything is checked against them),
//! then the namespace tree (dentries, dirscan), the reaping queue
//! (orphans), the S3 records (mpu_parts, mpu_uploads, objmeta), the
//! per-inode cross-check of all of those, then extents, the upstream
//! records (bindings, remote records, upload queue: against the inodes and
//! the files with remote extents), the chunk reference counts and the GC
//! queue, the files under `chunks/`, and last
//! the referenced chunks themselves. Problems are reported in that order.
//!
//! A scan writes nothing.

mod chunks;
mod dentries;
mod extents;
mod inodes;
mod leftovers;
mod objects;
mod state;
mod upstream;

pub(in crate::fsck) use state::{be_u64, show, Depth, Scan};

use state::ScanState;

use crate::fsck::report::{FsckOptions, FsckProgress};
use crate::{Namespace, NsResult};

impl Namespace {
    /// One pass over the metadata (and, per `depth`, the chunks).
    pub(in crate::fsck) fn fsck_scan(
        &self,
        opts: &FsckOptions,
        depth: Depth,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<Scan> {
        let mut st = ScanState::new(opts, depth, self.cfg.clock.now_ns());
        progress(FsckProgress::Phase { name: "metadata", total: 0, unit: "records" });
        st.scan_inodes(self, progress)?;
        st.scan_dentries(self, progress)?;
        st.scan_dirscan(self, progress)?;
        st.scan_orphans(self, progress)?;
        st.scan_parts(self, progress)?;
        st.scan_uploads(self, progress)?;
        st.scan_objmeta(self, progress)?;
        st.check_inodes();
        st.scan_extents(self, progress)?;
        st.scan_upstream(self, progress)?;
        st.scan_gc_queue(self, progress)?;
        st.scan_chunk_refs(self, progress)?;
        st.check_refcounts();
        if depth.list_files {
            st.scan_chunk_files(self, progress)?;
        }
        st.check_referenced_chunks(self, progress);
        Ok(st.found)
    }
}
