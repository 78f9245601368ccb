//! The namespace's trees: what each holds and how its keys are laid out,
//! and the metadata store seen through them.
//!
//! Architecture invariant: the metastore knows trees only as opaque ids and
//! on-disk names ([`SCHEMA`]); their meaning lives here, with the key
//! encodings in `keys.rs` and the value records in `record.rs`. A new tree
//! is a variant here, appended to [`Tree::ALL`] (never reorder: the index
//! is the id, the name is on disk).

use std::ops::{Bound, Deref};
use std::sync::Arc;

use metastore::{Direction, Entry, MetaStore, Schema, TreeId};

/// The named trees (keyspaces) of the schema.
///
/// A handful of trees, never one per directory or bucket: sled's space
/// amplification grows with the number of trees, and one transaction spans
/// all of them ([`metastore::SCHEMA_TREES_MAX`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Format marker, filesystem id, boot epoch, the data directory's secret.
    Sys,
    /// Inode records keyed by big-endian inode id.
    Inodes,
    /// Directory entries: parent ‖ name ‖ ('/' if the child is a directory).
    Dentries,
    /// Readdir order: parent ‖ cookie.
    Dirscan,
    /// File extents: inode ‖ file offset.
    Extents,
    /// Reference counts of chunks: chunk id.
    ChunkRefs,
    /// S3 object metadata: inode.
    ObjMeta,
    /// Multipart uploads: upload id.
    MpuUploads,
    /// Multipart uploads by key, for ListMultipartUploads.
    MpuByKey,
    /// Multipart parts: upload id ‖ part number.
    MpuParts,
    /// Chunks waiting for garbage collection: not-before time ‖ chunk id.
    GcChunks,
    /// Unlinked inodes whose extents are still being freed.
    Orphans,
    /// Upstream bindings of buckets: bucket inode.
    Upstreams,
    /// Upstream keys of files and directories of bound buckets: inode.
    Remote,
    /// Files of bound buckets waiting to be uploaded: inode.
    UploadQueue,
}

/// On-disk names of [`Tree::ALL`], in order: what the metastore is opened
/// with. Never change a name: it is part of the format.
pub const SCHEMA: Schema = &[
    "sys",
    "inodes",
    "dentries",
    "dirscan",
    "extents",
    "chunk_refs",
    "objmeta",
    "mpu_uploads",
    "mpu_by_key",
    "mpu_parts",
    "gc_chunks",
    "orphans",
    "upstreams",
    "remote",
    "upload_queue",
];

impl Tree {
    /// Every tree, in schema order.
    pub const ALL: [Tree; 15] = [
        Tree::Sys,
        Tree::Inodes,
        Tree::Dentries,
        Tree::Dirscan,
        Tree::Extents,
        Tree::ChunkRefs,
        Tree::ObjMeta,
        Tree::MpuUploads,
        Tree::MpuByKey,
        Tree::MpuParts,
        Tree::GcChunks,
        Tree::Orphans,
        Tree::Upstreams,
        Tree::Remote,
        Tree::UploadQueue,
    ];

    /// The metastore's id of this tree.
    pub fn id(self) -> TreeId {
        TreeId(self as u8)
    }

    /// The on-disk name of the tree (also names it in errors).
    pub fn name(self) -> &'static str {
        SCHEMA[self as usize]
    }
}

/// The metadata store, addressed by [`Tree`]. Point reads and scans take
/// the namespace's trees; everything else is the store's own (`Deref`).
#[derive(Clone)]
pub(crate) struct Meta(Arc<dyn MetaStore>);

impl Meta {
    /// Wraps a store opened with [`SCHEMA`].
    pub(crate) fn new(store: Arc<dyn MetaStore>) -> Self {
        Meta(store)
    }

    /// Point read of `key` in `tree`.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> metastore::Result<Option<Vec<u8>>> {
        self.0.get(tree.id(), key)
    }

    /// Ordered scan of `range` in `tree` (see [`MetaStore::scan`]).
    pub(crate) fn scan(
        &self,
        tree: Tree,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
        dir: Direction,
    ) -> metastore::Result<Vec<Entry>> {
        self.0.scan(tree.id(), range, limit, dir)
    }
}

impl Deref for Meta {
    type Target = dyn MetaStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_has_its_schema_name_at_its_index() {
        assert_eq!(Tree::ALL.len(), SCHEMA.len());
        for (i, t) in Tree::ALL.iter().enumerate() {
            assert_eq!(t.id(), TreeId(i as u8));
            assert_eq!(t.name(), SCHEMA[i]);
        }
        // The names are the on-disk format of every existing data directory.
        assert_eq!(Tree::ChunkRefs.name(), "chunk_refs");
        assert_eq!(Tree::Orphans.name(), "orphans");
    }
}
