/// The named trees (keyspaces) of the schema.
///
/// A handful of trees, never one per directory or bucket: sled's space
/// amplification grows with the number of trees, and one transaction can span
/// at most 14 of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Format marker, filesystem id, boot epoch, counters.
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
}

impl Tree {
    /// Every tree, in a fixed order (engines index arrays with it).
    pub const ALL: [Tree; 12] = [
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
    ];

    /// Position of this tree in [`Tree::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The on-disk name of the tree. Never change one: it is part of the format.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Sys => "sys",
            Tree::Inodes => "inodes",
            Tree::Dentries => "dentries",
            Tree::Dirscan => "dirscan",
            Tree::Extents => "extents",
            Tree::ChunkRefs => "chunk_refs",
            Tree::ObjMeta => "objmeta",
            Tree::MpuUploads => "mpu_uploads",
            Tree::MpuByKey => "mpu_by_key",
            Tree::MpuParts => "mpu_parts",
            Tree::GcChunks => "gc_chunks",
            Tree::Orphans => "orphans",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    #[test]
    fn all_is_indexed_in_order() {
        for (i, t) in Tree::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }
}
