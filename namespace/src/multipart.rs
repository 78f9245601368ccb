//! Multipart uploads. Parts are staged in hidden inodes (one per part,
//! extents at offsets from 0); completion moves their extents into one new
//! file at cumulative offsets in the publishing transaction: metadata only,
//! no data is copied, whatever the part sizes.

use std::ops::Bound;
use std::sync::Arc;

use md5::{Digest, Md5};
use metastore::Direction;

use crate::tree::Tree;

use crate::access::Caller;
use crate::clock::Nanos;
use crate::limits::{
    OBJECT_SIZE_BYTES_MAX, PAGE_ENTRIES_MAX, PART_LAYOUT_RUNS_MAX, PART_NUMBER_MAX, PART_SIZE_BYTES_MAX,
    PART_SIZE_BYTES_MIN,
};
use crate::ns::new_inode;
use crate::object::{check_meta_limits, ObjectInfo, Publish, PutTarget, RefMode, StagedObject, WriteCondition};
use crate::path::parse_key;
use crate::record::{Extent, Kind, ObjMeta, Orphan, Part, Upload, UploadState, FLAG_STAGING};
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// An upload as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// Upload id (32 hex digits).
    pub upload_id: String,
    /// Object key.
    pub key: Vec<u8>,
    /// Creation time.
    pub initiated: Nanos,
    /// Initiator.
    pub uid: u32,
}

/// A part as listed or as returned by an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number (1..=10000).
    pub part_number: u32,
    /// Bytes.
    pub size: u64,
    /// MD5 hex, unquoted.
    pub etag: String,
    /// Upload time.
    pub last_modified: Nanos,
    /// Checksums supplied with the part.
    pub checksums: Vec<crate::record::Checksum>,
}

/// A part named in a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletePart {
    /// Part number.
    pub part_number: u32,
    /// The ETag the client got for it (quotes allowed).
    pub etag: String,
}

/// The result of a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedUpload {
    /// The new object.
    pub info: ObjectInfo,
    /// Whether this answered a repeat of an earlier, successful completion.
    pub repeated: bool,
}

/// The entries of a completion's part list that count, as indices into
/// it: part numbers must not descend (else `InvalidPartOrder`), and of
/// entries naming the same part number only the last counts. A part
/// uploaded again while its first upload was still running is listed
/// twice by clients that record each upload as it finishes (ceph's
/// s3-tests `test_multipart_resend_first_finishes_last`); the last
/// upload of a part number wins, and it is the one listed last.
pub fn completion_entries(list: &[CompletePart]) -> NsResult<Vec<usize>> {
    if list.windows(2).any(|w| w[0].part_number > w[1].part_number) {
        return Err(NsError::InvalidPartOrder);
    }
    Ok((0..list.len())
        .filter(|&i| list.get(i + 1).is_none_or(|next| next.part_number != list[i].part_number))
        .collect())
}

fn parse_upload_id(id: &str) -> NsResult<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(id, &mut out).map_err(|_| NsError::NoSuchUpload)?;
    Ok(out)
}

fn load_upload(ns: &Namespace, id: &[u8; 16]) -> NsResult<Upload> {
    let v = ns.meta.get(Tree::MpuUploads, id)?.ok_or(NsError::NoSuchUpload)?;
    crate::record::decode("upload", &v)
}

impl Namespace {
    /// Starts a multipart upload of `bucket/key`; returns its id.
    pub fn create_upload(&self, caller: &Caller, bucket: &[u8], key: &[u8], meta: ObjMeta) -> NsResult<String> {
        let parsed = parse_key(key)?;
        if parsed.leaf.is_none() {
            return Err(NsError::InvalidArgument("a directory marker key cannot be uploaded in parts".into()));
        }
        check_meta_limits(&meta)?;
        let b = self.bucket(bucket)?;
        // Refused now rather than at Complete, after every part was sent.
        self.check_put_access(caller, &PutTarget::from_parsed(b.ino, &parsed))?;
        let id: [u8; 16] = rand::random();
        let now = self.now();
        let up = Upload {
            bucket: b.ino,
            bucket_name: bucket.to_vec(),
            key: key.to_vec(),
            created: now,
            uid: caller.uid,
            gid: caller.gid,
            meta,
            state: UploadState::Open,
        };
        self.txn(|tx| {
            tx.put(Tree::MpuUploads, &id, &up)?;
            tx.put(Tree::MpuByKey, &keys::upload_by_key(b.ino, key, now, &id), &())
        })?;
        self.commit_barrier()?;
        Ok(hex::encode(id))
    }

    /// Stores part `part_number` of an upload (replacing an earlier one).
    pub fn upload_part(&self, upload_id: &str, part_number: u32, mut staged: StagedObject) -> NsResult<PartInfo> {
        self.upload_part_with(upload_id, part_number, &mut staged, Vec::new())
    }

    /// [`Namespace::upload_part`] with checksums the client supplied.
    pub fn upload_part_with(
        &self,
        upload_id: &str,
        part_number: u32,
        staged: &mut StagedObject,
        checksums: Vec<crate::record::Checksum>,
    ) -> NsResult<PartInfo> {
        if part_number == 0 || part_number > PART_NUMBER_MAX {
            return Err(NsError::InvalidArgument(format!("part number must be 1..={PART_NUMBER_MAX}")));
        }
        if staged.size > PART_SIZE_BYTES_MAX {
            return Err(NsError::TooLarge(format!("part over {PART_SIZE_BYTES_MAX} bytes")));
        }
        let id = parse_upload_id(upload_id)?;
        let _lock = self.upload_locks.get(&id).lock().unwrap_or_else(|p| p.into_inner());
        let staging_ino = self.alloc_id()?;
        let now = self.now();
        let gc_at = self.gc_at_ms(now);
        let part =
            Part { size: staged.size, etag: hex::encode(staged.md5), staging_ino, last_modified: now, checksums };
        let replaced = self.txn(|tx| {
            let up: Upload = tx.get(Tree::MpuUploads, &id)?.ok_or(NsError::NoSuchUpload)?;
            if up.state != UploadState::Open {
                return Err(NsError::NoSuchUpload);
            }
            let pkey = keys::part(&id, part_number);
            let old: Option<Part> = tx.get(Tree::MpuParts, &pkey)?;
            if let Some(old) = &old {
                tx.put(Tree::Orphans, &keys::id(old.staging_ino), &Orphan { since: now })?;
            }
            let mut holder = new_inode(staging_ino, Kind::File, 0, up.uid, up.gid, now);
            holder.nlink = 0;
            holder.flags = FLAG_STAGING;
            holder.size = staged.size;
            tx.put_inode(&holder)?;
            for (off, e) in &staged.extents {
                tx.put(Tree::Extents, &keys::pair(staging_ino, *off), e)?;
                tx.ref_chunk(e.chunk, 1, gc_at)?;
            }
            tx.put(Tree::MpuParts, &pkey, &part)?;
            Ok(old.is_some())
        })?;
        staged.mark_consumed();
        self.commit_barrier()?;
        if replaced {
            self.reap_orphans()?;
        }
        Ok(PartInfo {
            part_number,
            size: part.size,
            etag: part.etag,
            last_modified: part.last_modified,
            checksums: part.checksums,
        })
    }

    fn all_parts(&self, id: &[u8; 16]) -> NsResult<Vec<(u32, Part)>> {
        let (parts, _) = self.list_parts_raw(id, 0, PART_NUMBER_MAX as usize)?;
        Ok(parts)
    }

    fn list_parts_raw(&self, id: &[u8; 16], after: u32, max: usize) -> NsResult<(Vec<(u32, Part)>, bool)> {
        let lo = keys::part(id, after);
        let hi = keys::part(id, u32::MAX);
        let rows = self.meta.scan(
            Tree::MpuParts,
            (Bound::Excluded(&lo), Bound::Included(&hi)),
            max + 1,
            Direction::Forward,
        )?;
        let truncated = rows.len() > max;
        let mut out = Vec::new();
        for (k, v) in rows.into_iter().take(max) {
            let no = u32::from_be_bytes(k[16..20].try_into().expect("4"));
            out.push((no, crate::record::decode("part", &v)?));
        }
        Ok((out, truncated))
    }

    /// Parts of an open upload after `after`, at most `max`; and whether
    /// more follow.
    pub fn list_parts(&self, upload_id: &str, after: u32, max: usize) -> NsResult<(UploadInfo, Vec<PartInfo>, bool)> {
        let id = parse_upload_id(upload_id)?;
        let up = load_upload(self, &id)?;
        if up.state != UploadState::Open {
            return Err(NsError::NoSuchUpload);
        }
        let (parts, truncated) = self.list_parts_raw(&id, after, max.clamp(1, PAGE_ENTRIES_MAX))?;
        let parts = parts
            .into_iter()
            .map(|(n, p)| PartInfo {
                part_number: n,
                size: p.size,
                etag: p.etag,
                last_modified: p.last_modified,
                checksums: p.checksums,
            })
            .collect();
        let info = UploadInfo { upload_id: upload_id.to_string(), key: up.key, initiated: up.created, uid: up.uid };
        Ok((info, parts, truncated))
    }

    /// Open uploads in `bucket` whose key starts with `prefix`, in key then
    /// time order, after (`key_marker`, `upload_marker`).
    pub fn list_uploads(
        &self,
        bucket: &[u8],
        prefix: &[u8],
        key_marker: Option<&[u8]>,
        max: usize,
    ) -> NsResult<(Vec<UploadInfo>, bool)> {
        let b = self.bucket(bucket)?;
        let mut lo = b.ino.to_be_bytes().to_vec();
        lo.extend_from_slice(key_marker.unwrap_or(prefix).max(prefix));
        if key_marker.is_some() {
            lo.push(1); // past every upload of the marker key (NUL-separated)
        }
        let hi = keys::id(b.ino + 1);
        let max = max.clamp(1, PAGE_ENTRIES_MAX);
        let rows = self.meta.scan(
            Tree::MpuByKey,
            (Bound::Included(&lo), Bound::Excluded(&hi)),
            max + 1,
            Direction::Forward,
        )?;
        let mut out = Vec::new();
        for (k, _) in &rows {
            let body = &k[8..];
            let nul = body.len() - 1 - 8 - 16;
            let key = &body[..nul];
            if !key.starts_with(prefix) {
                break;
            }
            let id: [u8; 16] = body[nul + 9..].try_into().expect("16");
            let up = load_upload(self, &id)?;
            out.push(UploadInfo { upload_id: hex::encode(id), key: key.to_vec(), initiated: up.created, uid: up.uid });
        }
        let truncated = out.len() > max;
        out.truncate(max);
        Ok((out, truncated))
    }

    /// Abandons an upload and frees its parts.
    pub fn abort_upload(&self, upload_id: &str) -> NsResult<()> {
        let id = parse_upload_id(upload_id)?;
        let _lock = self.upload_locks.get(&id).lock().unwrap_or_else(|p| p.into_inner());
        let parts = self.all_parts(&id)?;
        let now = self.now();
        self.txn(|tx| {
            let up: Upload = tx.get(Tree::MpuUploads, &id)?.ok_or(NsError::NoSuchUpload)?;
            if up.state != UploadState::Open {
                return Err(NsError::NoSuchUpload);
            }
            for (no, p) in &parts {
                tx.del(Tree::MpuParts, &keys::part(&id, *no))?;
                tx.put(Tree::Orphans, &keys::id(p.staging_ino), &Orphan { since: now })?;
            }
            tx.del(Tree::MpuByKey, &keys::upload_by_key(up.bucket, &up.key, up.created, &id))?;
            tx.del(Tree::MpuUploads, &id)
        })?;
        self.commit_barrier()?;
        self.reap_orphans()?;
        Ok(())
    }

    /// Completes an upload: the listed parts, in ascending order, become one
    /// object at the upload's key, published atomically. A repeat of a
    /// successful completion returns the same object while it is still
    /// at the key.
    pub fn complete_upload(
        self: &Arc<Self>,
        caller: &Caller,
        upload_id: &str,
        list: &[CompletePart],
        condition: WriteCondition,
    ) -> NsResult<CompletedUpload> {
        self.complete_upload_with(caller, upload_id, list, condition, Vec::new())
    }

    /// [`Namespace::complete_upload`] storing `checksums` (computed by the
    /// caller from the parts' checksums) with the object.
    pub fn complete_upload_with(
        self: &Arc<Self>,
        caller: &Caller,
        upload_id: &str,
        list: &[CompletePart],
        condition: WriteCondition,
        checksums: Vec<crate::record::Checksum>,
    ) -> NsResult<CompletedUpload> {
        let id = parse_upload_id(upload_id)?;
        let _lock = self.upload_locks.get(&id).lock().unwrap_or_else(|p| p.into_inner());
        let up = load_upload(self, &id)?;
        let bucket_name = up.bucket_name.clone();
        if let UploadState::Completed { ino, .. } = &up.state {
            let current = self.resolve_key(caller, &bucket_name, &up.key).ok();
            return match current {
                Some(inode) if inode.ino == *ino => match self.object_info(inode) {
                    Ok(info) => Ok(CompletedUpload { info, repeated: true }),
                    // Overwritten since the resolve: as if it had been before.
                    Err(NsError::Stale) => Err(NsError::NoSuchUpload),
                    Err(e) => Err(e),
                },
                _ => Err(NsError::NoSuchUpload),
            };
        }
        if list.is_empty() {
            return Err(NsError::InvalidPart("a completion needs at least one part".into()));
        }
        let list: Vec<CompletePart> = completion_entries(list)?.into_iter().map(|i| list[i].clone()).collect();
        let list = list.as_slice();
        let all = self.all_parts(&id)?;
        let mut extents: Vec<(u64, Extent)> = Vec::new();
        let mut moved: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut md5s = Md5::new();
        let mut layout: Vec<(u64, u32)> = Vec::new();
        let mut offset = 0u64;
        for (i, want) in list.iter().enumerate() {
            let part = all
                .iter()
                .find(|(n, _)| *n == want.part_number)
                .map(|(_, p)| p)
                .ok_or_else(|| NsError::InvalidPart(format!("part {} was not uploaded", want.part_number)))?;
            if want.etag.trim_matches('"') != part.etag {
                return Err(NsError::InvalidPart(format!("part {} ETag does not match", want.part_number)));
            }
            if i + 1 < list.len() && part.size < PART_SIZE_BYTES_MIN {
                return Err(NsError::PartTooSmall(format!("part {} is {} bytes", want.part_number, part.size)));
            }
            let ext = self.extents_overlapping(part.staging_ino, 0, u64::MAX)?;
            moved.push((part.staging_ino, ext.iter().map(|(o, _)| *o).collect()));
            extents.extend(ext.into_iter().map(|(o, e)| (offset + o, e)));
            let mut digest = [0u8; 16];
            hex::decode_to_slice(&part.etag, &mut digest)
                .map_err(|_| NsError::Corrupt("part ETag is not hex".into()))?;
            md5s.update(digest);
            match layout.last_mut() {
                Some((size, n)) if *size == part.size => *n += 1,
                _ => layout.push((part.size, 1)),
            }
            offset += part.size;
        }
        if offset > OBJECT_SIZE_BYTES_MAX {
            return Err(NsError::TooLarge(format!("object over {OBJECT_SIZE_BYTES_MAX} bytes")));
        }
        if layout.len() > PART_LAYOUT_RUNS_MAX {
            layout.clear(); // too irregular to remember; partNumber reads then answer the whole object
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), list.len());
        let listed: Vec<u64> = moved.iter().map(|(s, _)| *s).collect();
        let unlisted: Vec<(u32, u64)> =
            all.iter().filter(|(_, p)| !listed.contains(&p.staging_ino)).map(|(n, p)| (*n, p.staging_ino)).collect();
        let mut meta = up.meta.clone();
        meta.etag = etag.clone();
        meta.part_layout = layout;
        meta.checksums = checksums;
        let now = self.now();
        let publisher = Caller { uid: caller.uid, gid: caller.gid, groups: caller.groups.clone() };
        let target = self.put_target(&bucket_name, &up.key)?;
        let info = self.publish(
            &publisher,
            &target,
            Publish { extents: &extents, size: offset, refs: RefMode::Move, meta, condition },
            |tx: &mut Tx<'_>, ino| {
                let cur: Upload = tx.get(Tree::MpuUploads, &id)?.ok_or(NsError::NoSuchUpload)?;
                if cur.state != UploadState::Open {
                    return Err(NsError::NoSuchUpload);
                }
                for (staging, offs) in &moved {
                    for off in offs {
                        tx.del(Tree::Extents, &keys::pair(*staging, *off))?;
                    }
                    tx.del(Tree::Inodes, &keys::id(*staging))?;
                }
                for (no, staging) in &unlisted {
                    tx.put(Tree::Orphans, &keys::id(*staging), &Orphan { since: now })?;
                    tx.del(Tree::MpuParts, &keys::part(&id, *no))?;
                }
                for w in list {
                    tx.del(Tree::MpuParts, &keys::part(&id, w.part_number))?;
                }
                tx.del(Tree::MpuByKey, &keys::upload_by_key(cur.bucket, &cur.key, cur.created, &id))?;
                let done = Upload { state: UploadState::Completed { ino, etag: etag.clone() }, created: now, ..cur };
                tx.put(Tree::MpuUploads, &id, &done)
            },
        )?;
        if !unlisted.is_empty() {
            self.reap_orphans()?;
        }
        self.write_through(target.bucket_ino, info.inode.ino)?;
        Ok(CompletedUpload { info, repeated: false })
    }
}
