//! Typed point access to records inside a metadata transaction.

use metastore::{Abort, MetaError, MetaStore, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Nanos;
use crate::keys;
use crate::record::{self, ChunkRef, Dentry, DirScan, Inode, Kind, Orphan};
use crate::tree::Tree;
use crate::{NsError, NsResult};

/// Runs `body` in one metadata transaction; the body's error aborts it and
/// is returned as is. The body may run more than once.
pub(crate) fn run<T>(store: &dyn MetaStore, mut body: impl FnMut(&mut Tx<'_>) -> NsResult<T>) -> NsResult<T> {
    let mut out: Option<NsResult<T>> = None;
    let res = store.transact(&mut |t| {
        let mut tx = Tx { t };
        let r = body(&mut tx);
        let failed = r.is_err();
        out = Some(r);
        if failed {
            Err(Abort)
        } else {
            Ok(())
        }
    });
    match res {
        Ok(()) | Err(MetaError::Aborted) => out.expect("transaction body ran"),
        Err(e) => Err(e.into()),
    }
}

/// A transaction with typed helpers.
pub(crate) struct Tx<'a> {
    t: &'a mut dyn Txn,
}

impl Tx<'_> {
    pub(crate) fn get<T: DeserializeOwned>(&mut self, tree: Tree, key: &[u8]) -> NsResult<Option<T>> {
        match self.t.get(tree.id(), key)? {
            Some(v) => Ok(Some(record::decode(tree.name(), &v)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn put<T: Serialize>(&mut self, tree: Tree, key: &[u8], v: &T) -> NsResult<()> {
        Ok(self.t.put(tree.id(), key, &record::encode(v))?)
    }

    pub(crate) fn del(&mut self, tree: Tree, key: &[u8]) -> NsResult<()> {
        Ok(self.t.del(tree.id(), key)?)
    }

    /// The inode, or `Stale` when it no longer exists.
    pub(crate) fn inode(&mut self, ino: u64) -> NsResult<Inode> {
        self.get(Tree::Inodes, &keys::id(ino))?.ok_or(NsError::Stale)
    }

    pub(crate) fn put_inode(&mut self, inode: &Inode) -> NsResult<()> {
        self.put(Tree::Inodes, &keys::id(inode.ino), inode)
    }

    /// A live directory, or `Stale` / `NotADirectory`.
    pub(crate) fn dir(&mut self, ino: u64) -> NsResult<Inode> {
        let d = self.inode(ino)?;
        if d.kind != Kind::Dir {
            return Err(NsError::NotADirectory);
        }
        Ok(d)
    }

    /// Looks `name` up in `dir`, probing the file form and the directory
    /// form of the key (a file and a directory of one name cannot coexist).
    pub(crate) fn lookup(&mut self, dir: u64, name: &[u8]) -> NsResult<Option<Dentry>> {
        if let Some(d) = self.get::<Dentry>(Tree::Dentries, &keys::dentry(dir, name, true))? {
            return Ok(Some(d));
        }
        self.get(Tree::Dentries, &keys::dentry(dir, name, false))
    }

    /// Adds `name -> child` to `dir` (the caller writes `dir` back). A
    /// `cookie` is reused when an entry is replaced in place.
    pub(crate) fn add_entry(
        &mut self,
        dir: &mut Inode,
        name: &[u8],
        child: u64,
        kind: Kind,
        cookie: Option<u64>,
        now: Nanos,
    ) -> NsResult<u64> {
        let cookie = match cookie {
            Some(c) => c,
            None => {
                let c = dir.next_cookie;
                dir.next_cookie += 1;
                c
            }
        };
        let is_dir = kind == Kind::Dir;
        self.put(Tree::Dentries, &keys::dentry(dir.ino, name, is_dir), &Dentry { ino: child, kind, cookie })?;
        self.put(Tree::Dirscan, &keys::pair(dir.ino, cookie), &DirScan { name: name.to_vec(), ino: child, kind })?;
        dir.entries += 1;
        dir.size = dir.entries;
        if is_dir {
            dir.nlink += 1;
        }
        dir.mtime = now;
        dir.ctime = now;
        Ok(cookie)
    }

    /// Removes `name` from `dir` (the caller writes `dir` back).
    pub(crate) fn remove_entry(&mut self, dir: &mut Inode, name: &[u8], d: &Dentry, now: Nanos) -> NsResult<()> {
        let is_dir = d.kind == Kind::Dir;
        self.del(Tree::Dentries, &keys::dentry(dir.ino, name, is_dir))?;
        self.del(Tree::Dirscan, &keys::pair(dir.ino, d.cookie))?;
        assert!(dir.entries > 0, "directory {} entry count underflow", dir.ino);
        dir.entries -= 1;
        dir.size = dir.entries;
        if is_dir {
            assert!(dir.nlink > 2, "directory {} link count underflow", dir.ino);
            dir.nlink -= 1;
        }
        dir.mtime = now;
        dir.ctime = now;
        Ok(())
    }

    /// Drops one link of a non-directory; at zero links the inode becomes an
    /// orphan whose extents the reaper frees after the commit.
    pub(crate) fn drop_link(&mut self, inode: &mut Inode, now: Nanos) -> NsResult<bool> {
        assert!(inode.nlink > 0, "inode {} link count underflow", inode.ino);
        inode.nlink -= 1;
        inode.ctime = now;
        self.put_inode(inode)?;
        if inode.nlink == 0 {
            self.put(Tree::Orphans, &keys::id(inode.ino), &Orphan { since: now })?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Adds `delta` references to `chunk`. At zero the chunk is queued for
    /// GC no earlier than `gc_at_ms`; the zero-count record stays until GC
    /// deletes the chunk, so the orphan scan can tell "queued" from "never
    /// referenced".
    /// Remote extents reference no chunk: for them this does nothing.
    pub(crate) fn ref_chunk(&mut self, chunk: u64, delta: i64, gc_at_ms: u64) -> NsResult<()> {
        if chunk == crate::record::REMOTE_CHUNK {
            return Ok(());
        }
        let key = keys::id(chunk);
        let cur = self.get::<ChunkRef>(Tree::ChunkRefs, &key)?.map_or(0, |r| r.count);
        let next = cur as i64 + delta;
        if next < 0 {
            return Err(NsError::Corrupt(format!("chunk {chunk:016x} reference count below zero")));
        }
        self.put(Tree::ChunkRefs, &key, &ChunkRef { count: next as u64 })?;
        if next == 0 {
            self.put(Tree::GcChunks, &keys::pair(gc_at_ms, chunk), &())?;
        }
        Ok(())
    }
}
