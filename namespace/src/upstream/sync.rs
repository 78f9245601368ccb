//! Local changes reaching the upstream. S3 writes are write-through: the
//! object is published locally (durable, visible), then uploaded, and the
//! request is answered after the upstream acknowledged it; the file is
//! then clean (its `remote` record names the uploaded ETag). Deletes are
//! made locally, then upstream.
//!
//! Known gap (see ARCHITECTURE.md): files written over NFS stay local
//! (dirty) until the persistent upload queue lands; renames in a bound
//! bucket are refused for directories and for files already upstream.

use super::{full_key, ns_error, UploadBody};
use crate::access::Caller;
use crate::record::{Inode, Kind, Remote, RemoteFile};
use crate::tree::Tree;
use crate::{keys, Namespace, NsError, NsResult};

/// A file's bytes as an upload body, read through the namespace (remote
/// extents included).
struct FileBody<'a> {
    ns: &'a Namespace,
    ino: u64,
    size: u64,
}

impl UploadBody for FileBody<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> NsResult<usize> {
        let (data, _) = self.ns.read(&Caller::root(), self.ino, offset, buf.len())?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

impl Namespace {
    /// Write-through of an S3 write that published `inode` at `key` of
    /// bucket `bucket`: uploads it and records it as clean. A no-op
    /// outside bound buckets.
    pub(crate) fn write_through(&self, bucket: u64, key: &[u8], inode: &Inode) -> NsResult<()> {
        let Some(att) = self.bound(bucket) else { return Ok(()) };
        if inode.kind != Kind::File {
            // A directory marker: upstream directories are implicit in
            // their keys (known gap: empty markers are not mirrored).
            return Ok(());
        }
        let full = full_key(&att.binding, key)?;
        let size = inode.size;
        let body = FileBody { ns: self, ino: inode.ino, size };
        let etag = att.client()?.put(&full, &body).map_err(ns_error)?;
        let rec =
            RemoteFile { bucket, key: key.to_vec(), etag, size, mtime: inode.mtime, synced_gen: inode.content_gen };
        let ino = inode.ino;
        self.txn(|tx| {
            // Changed again meanwhile: that change is not upstream yet.
            match tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? {
                Some(n) if n.content_gen == rec.synced_gen => {
                    tx.put(Tree::Remote, &keys::id(ino), &Remote::File(rec.clone()))
                }
                _ => Ok(()),
            }
        })?;
        self.commit_barrier()
    }

    /// After a local delete of `key` in bucket `bucket`: deletes it
    /// upstream. A no-op outside bound buckets.
    pub(crate) fn delete_through(&self, bucket: u64, key: &[u8]) -> NsResult<()> {
        let Some(att) = self.bound(bucket) else { return Ok(()) };
        att.client()?.delete(&full_key(&att.binding, key)?).map_err(ns_error)
    }

    /// The upstream key of `name` in directory `dir`, when `dir` is in a
    /// bound bucket.
    pub(crate) fn key_in_dir(&self, dir: u64, name: &[u8]) -> NsResult<Option<(u64, Vec<u8>)>> {
        if !self.upstream.any() {
            return Ok(None);
        }
        let d = self.getattr(dir)?;
        Ok(self.dir_remote(&d)?.map(|(bucket, mut key)| {
            key.extend_from_slice(name);
            (bucket, key)
        }))
    }

    /// Refuses a rename the upstream cannot follow yet: of a directory, or
    /// of a file that is already upstream, inside a bound bucket.
    pub(crate) fn check_rename_upstream(&self, sdir: u64, sname: &[u8]) -> NsResult<()> {
        if self.key_in_dir(sdir, sname)?.is_none() {
            return Ok(());
        }
        let Some(e) = self.dentry(sdir, sname)? else { return Ok(()) };
        let upstream = e.kind == Kind::Dir || matches!(self.remote(e.ino)?, Some(Remote::File(_)));
        if upstream {
            return Err(NsError::NotSupported(
                "renaming a directory, or a file already upstream, in an upstream-bound bucket".into(),
            ));
        }
        Ok(())
    }
}
