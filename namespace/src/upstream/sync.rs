//! Local changes reaching the upstream. S3 writes are write-through: the
//! object is published locally (durable, visible, queued in the same
//! transaction), then uploaded (`queue.rs`), and the request is answered
//! after the upstream acknowledged it. Deletes are made locally, then
//! upstream. Renames of files follow through the queue (a server-side copy
//! of a clean file, then a delete of the old key); renaming a non-empty
//! directory in a bound bucket is refused (known gap).

use super::{full_key, ns_error, UploadBody};
use crate::access::Caller;
use crate::record::Kind;
use crate::{Namespace, NsError, NsResult};

/// A file's bytes as an upload body, read through the namespace (remote
/// extents included).
pub(super) struct FileBody<'a> {
    pub(super) ns: &'a Namespace,
    pub(super) ino: u64,
    pub(super) size: u64,
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
    /// Write-through of an S3 write that published `ino` in bucket
    /// `bucket` (the publish queued it): uploads it now and answers after
    /// the upstream did. A no-op outside bound buckets and for write-back
    /// bindings.
    pub(crate) fn write_through(&self, bucket: u64, ino: u64) -> NsResult<()> {
        match self.bound(bucket) {
            // Write-back: the queued item (due now) goes in the background.
            None => Ok(()),
            Some(att) if att.binding.write_back => Ok(()),
            Some(_) => self.upload_now(ino),
        }
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

    /// Refuses a rename the upstream cannot follow yet: of a non-empty
    /// directory inside a bound bucket (its keys would all change).
    pub(crate) fn check_rename_upstream(&self, sdir: u64, sname: &[u8]) -> NsResult<()> {
        if self.key_in_dir(sdir, sname)?.is_none() {
            return Ok(());
        }
        let Some(e) = self.dentry(sdir, sname)? else { return Ok(()) };
        if e.kind == Kind::Dir && self.getattr(e.ino)?.entries > 0 {
            return Err(NsError::NotSupported("renaming a non-empty directory in an upstream-bound bucket".into()));
        }
        Ok(())
    }
}
