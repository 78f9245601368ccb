//! POSIX-style operations on directories and attributes. These are the
//! operations NFS calls; S3 object operations live in `object/`.
//!
//! Every mutation here is a single metadata transaction of point reads and
//! writes, followed by the durability barrier before it returns.

use metastore::Direction;

use crate::tree::Tree;

use crate::access::{self, Caller, R, W, X};
use crate::clock::Nanos;
use crate::data::{apply_truncate, require_file};
use crate::limits::{DIR_DEPTH_MAX, LINK_COUNT_MAX, PAGE_ENTRIES_MAX, SYMLINK_TARGET_BYTES_MAX};
use crate::ns::{new_inode, ROOT_INO};
use crate::path::{validate_bucket_name, validate_name};
use crate::record::{Dentry, DirScan, Inode, Kind, FLAG_AUTO_CREATED};
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// How CREATE treats an existing name (NFSv3 `createmode3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    /// An existing file is returned as is.
    Unchecked,
    /// An existing name is `AlreadyExists`.
    Guarded,
    /// Atomic exclusive create; the verifier makes a retransmission succeed.
    Exclusive([u8; 8]),
}

/// A time to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The server's current time.
    ServerNow,
    /// A time the client chose.
    Client(Nanos),
}

/// Attributes to change; `None` leaves one alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner (root only).
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size: truncates or extends with a hole.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// One directory entry from [`Namespace::readdir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Entry name (arbitrary bytes but '/' and NUL).
    pub name: Vec<u8>,
    /// The child.
    pub ino: u64,
    /// Its kind.
    pub kind: Kind,
    /// Resume a listing after this entry by passing this cookie.
    pub cookie: u64,
}

/// The first cookie an entry gets (1 and 2 stand for `.` and `..`): a
/// readdir from a cookie below it starts a listing.
const FIRST_ENTRY_COOKIE: u64 = 3;

/// NFS clients touching an auto-created directory adopt it: it will no
/// longer vanish when S3 deletes its last key.
fn adopt(dir: &mut Inode) {
    dir.flags &= !FLAG_AUTO_CREATED;
}

fn not_at_root(dir: u64) -> NsResult<()> {
    if dir == ROOT_INO {
        return Err(NsError::InvalidArgument("only buckets (directories) may live at the root".into()));
    }
    Ok(())
}

/// Group of a new inode: the directory's if it is setgid (BSD semantics).
fn new_gid(caller: &Caller, dir: &Inode) -> u32 {
    if dir.mode & 0o2000 != 0 {
        dir.gid
    } else {
        caller.gid
    }
}

impl Namespace {
    /// Looks `name` up in directory `dir` (`.` and `..` included).
    pub fn lookup(&self, caller: &Caller, dir: u64, name: &[u8]) -> NsResult<Inode> {
        let d = self.getattr(dir)?;
        if d.kind != Kind::Dir {
            return Err(NsError::NotADirectory);
        }
        access::check(caller, &d, X)?;
        match name {
            b"." => return Ok(d),
            b".." => return self.getattr(if dir == ROOT_INO { ROOT_INO } else { d.parent }),
            _ => validate_name(name)?,
        }
        self.refresh_dir(&d)?;
        let dentry = self.dentry(dir, name)?.ok_or(NsError::NotFound)?;
        self.getattr(dentry.ino)
    }

    /// Point lookup of a dentry outside a transaction.
    pub(crate) fn dentry(&self, dir: u64, name: &[u8]) -> NsResult<Option<Dentry>> {
        for is_dir in [true, false] {
            if let Some(v) = self.meta.get(Tree::Dentries, &keys::dentry(dir, name, is_dir))? {
                return Ok(Some(crate::record::decode("dentry", &v)?));
            }
        }
        Ok(None)
    }

    /// Creates a regular file.
    pub fn create(&self, caller: &Caller, dir: u64, name: &[u8], mode: u32, how: CreateMode) -> NsResult<Inode> {
        validate_name(name)?;
        not_at_root(dir)?;
        let existing = |tx: &mut Tx<'_>, e: &Dentry| {
            let existing = tx.inode(e.ino)?;
            match how {
                CreateMode::Guarded => Err(NsError::AlreadyExists),
                CreateMode::Exclusive(v) if existing.verifier == Some(v) && existing.kind == Kind::File => {
                    Ok(existing) // a retransmission of our own exclusive create
                }
                CreateMode::Exclusive(_) => Err(NsError::AlreadyExists),
                CreateMode::Unchecked if existing.kind == Kind::Dir => Err(NsError::IsADirectory),
                CreateMode::Unchecked => Ok(existing),
            }
        };
        let upstream = self.key_in_dir(dir, name)?;
        self.add_new(caller, dir, name, existing, upstream, |ino, d, now| {
            let mut f = new_inode(ino, Kind::File, mode, caller.uid, new_gid(caller, d), now);
            if let CreateMode::Exclusive(v) = how {
                f.verifier = Some(v);
            }
            f
        })
    }

    /// The transaction shared by create, mkdir and symlink: `build` makes
    /// the new inode from its id and the directory; `existing` decides what
    /// an existing name means.
    fn add_new(
        &self,
        caller: &Caller,
        dir: u64,
        name: &[u8],
        mut existing: impl FnMut(&mut Tx<'_>, &Dentry) -> NsResult<Inode>,
        upstream: Option<(u64, Vec<u8>)>,
        build: impl Fn(u64, &Inode, Nanos) -> Inode,
    ) -> NsResult<Inode> {
        let ino = self.alloc_id()?;
        let now = self.now();
        let made = self.txn(|tx| {
            let mut d = tx.dir(dir)?;
            access::check(caller, &d, W | X)?;
            if let Some(e) = tx.lookup(dir, name)? {
                return existing(tx, &e);
            }
            let child = build(ino, &d, now);
            tx.add_entry(&mut d, name, ino, child.kind, None, now)?;
            adopt(&mut d);
            tx.put_inode(&d)?;
            tx.put_inode(&child)?;
            if let (Some((bucket, key)), Kind::File) = (&upstream, child.kind) {
                // A new file of a bound bucket is uploaded once quiet.
                let due = now.saturating_add(self.quiet_ns(*bucket));
                self.queue_put(tx, ino, *bucket, key.clone(), due, None)?;
            }
            Ok(child)
        })?;
        self.commit_barrier()?;
        Ok(made)
    }

    /// Creates a directory. At the root a directory is a bucket, so its name
    /// must be a valid bucket name.
    pub fn mkdir(&self, caller: &Caller, dir: u64, name: &[u8], mode: u32) -> NsResult<Inode> {
        if dir == ROOT_INO {
            validate_bucket_name(name)?;
        } else {
            validate_name(name)?;
        }
        let taken = |_: &mut Tx<'_>, _: &Dentry| Err(NsError::AlreadyExists);
        self.add_new(caller, dir, name, taken, None, |ino, d, now| {
            let mut c = new_inode(ino, Kind::Dir, mode | (d.mode & 0o2000), caller.uid, new_gid(caller, d), now);
            c.parent = dir;
            c
        })
    }

    /// Creates a symbolic link.
    pub fn symlink(&self, caller: &Caller, dir: u64, name: &[u8], target: &[u8], mode: u32) -> NsResult<Inode> {
        validate_name(name)?;
        not_at_root(dir)?;
        if target.is_empty() || target.contains(&0) {
            return Err(NsError::InvalidArgument("symlink target is empty or holds NUL".into()));
        }
        if target.len() > SYMLINK_TARGET_BYTES_MAX {
            return Err(NsError::TooLarge(format!("symlink target over {SYMLINK_TARGET_BYTES_MAX} bytes")));
        }
        let taken = |_: &mut Tx<'_>, _: &Dentry| Err(NsError::AlreadyExists);
        self.add_new(caller, dir, name, taken, None, |ino, d, now| {
            let mut l = new_inode(ino, Kind::Symlink, mode, caller.uid, new_gid(caller, d), now);
            l.target = target.to_vec();
            l.size = target.len() as u64;
            l
        })
    }

    /// The target of a symlink.
    pub fn readlink(&self, ino: u64) -> NsResult<Vec<u8>> {
        let l = self.getattr(ino)?;
        if l.kind != Kind::Symlink {
            return Err(NsError::InvalidArgument("not a symlink".into()));
        }
        Ok(l.target)
    }

    /// Adds a hard link `dir/name` to the non-directory `ino`.
    pub fn link(&self, caller: &Caller, ino: u64, dir: u64, name: &[u8]) -> NsResult<Inode> {
        validate_name(name)?;
        not_at_root(dir)?;
        let now = self.now();
        let linked = self.txn(|tx| {
            let mut f = tx.inode(ino)?;
            if f.kind == Kind::Dir {
                return Err(NsError::IsADirectory);
            }
            if f.nlink == 0 {
                return Err(NsError::Stale);
            }
            if f.nlink >= LINK_COUNT_MAX {
                return Err(NsError::TooManyLinks);
            }
            let mut d = tx.dir(dir)?;
            access::check(caller, &d, W | X)?;
            if tx.lookup(dir, name)?.is_some() {
                return Err(NsError::AlreadyExists);
            }
            tx.add_entry(&mut d, name, ino, f.kind, None, now)?;
            adopt(&mut d);
            f.nlink += 1;
            f.ctime = now;
            tx.put_inode(&d)?;
            tx.put_inode(&f)?;
            Ok(f)
        })?;
        self.commit_barrier()?;
        Ok(linked)
    }

    /// Removes a non-directory entry. The file's data is freed when its last
    /// link goes (readers holding pinned extents finish first: GC grace).
    pub fn remove(&self, caller: &Caller, dir: u64, name: &[u8]) -> NsResult<()> {
        validate_name(name)?;
        let upstream_key = self.key_in_dir(dir, name)?;
        let now = self.now();
        let orphaned = self.txn(|tx| {
            let mut d = tx.dir(dir)?;
            access::check(caller, &d, W | X)?;
            let e = tx.lookup(dir, name)?.ok_or(NsError::NotFound)?;
            if e.kind == Kind::Dir {
                return Err(NsError::IsADirectory);
            }
            let mut victim = tx.inode(e.ino)?;
            access::check_sticky(caller, &d, &victim)?;
            tx.remove_entry(&mut d, name, &e, now)?;
            adopt(&mut d);
            tx.put_inode(&d)?;
            tx.drop_link(&mut victim, now)
        })?;
        self.finish_unlink(orphaned)?;
        match upstream_key {
            Some((bucket, key)) => self.delete_through(bucket, &key),
            None => Ok(()),
        }
    }

    /// After a transaction that may have unlinked a file's last name: make
    /// it durable, then free the orphan's extents.
    pub(crate) fn finish_unlink(&self, orphaned: bool) -> NsResult<()> {
        self.commit_barrier()?;
        if orphaned {
            self.reap_orphans()?;
        }
        Ok(())
    }

    /// Removes an empty directory (plain POSIX; at the root: an empty bucket).
    pub fn rmdir(&self, caller: &Caller, dir: u64, name: &[u8]) -> NsResult<()> {
        match name {
            b"." => return Err(NsError::InvalidArgument("cannot remove '.'".into())),
            b".." => return Err(NsError::NotEmpty),
            _ => validate_name(name)?,
        }
        let now = self.now();
        self.txn(|tx| {
            let mut d = tx.dir(dir)?;
            access::check(caller, &d, W | X)?;
            let e = tx.lookup(dir, name)?.ok_or(NsError::NotFound)?;
            if e.kind != Kind::Dir {
                return Err(NsError::NotADirectory);
            }
            let victim = tx.inode(e.ino)?;
            access::check_sticky(caller, &d, &victim)?;
            remove_empty_dir(tx, &mut d, name, &e, &victim, now)?;
            adopt(&mut d);
            tx.put_inode(&d)
        })?;
        self.commit_barrier()
    }

    /// Renames atomically, across directories too; replaces a compatible
    /// target as POSIX says and refuses to move a directory into itself.
    pub fn rename(&self, caller: &Caller, sdir: u64, sname: &[u8], ddir: u64, dname: &[u8]) -> NsResult<()> {
        validate_name(sname)?;
        validate_name(dname)?;
        if sdir == ROOT_INO || ddir == ROOT_INO {
            // Buckets are made and removed, never renamed or moved.
            return Err(NsError::NotPermitted);
        }
        self.check_rename_upstream(sdir, sname)?;
        // In a bound bucket the file's upload follows it to its new key.
        let dest = self.key_in_dir(ddir, dname)?;
        let now = self.now();
        let orphaned = self.txn(|tx| {
            let mut sd = tx.dir(sdir)?;
            access::check(caller, &sd, W | X)?;
            let se = tx.lookup(sdir, sname)?.ok_or(NsError::NotFound)?;
            let mut src = tx.inode(se.ino)?;
            access::check_sticky(caller, &sd, &src)?;
            let same_dir = sdir == ddir;
            let mut dd = if same_dir { None } else { Some(tx.dir(ddir)?) };
            if let Some(dd) = &dd {
                access::check(caller, dd, W | X)?;
            }
            let de = tx.lookup(ddir, dname)?;
            if let Some(de) = &de {
                if de.ino == se.ino {
                    return Ok(false); // both names are the same file: nothing to do
                }
            }
            if src.kind == Kind::Dir && !same_dir {
                // '..' of the moved directory changes: it must be writable.
                access::check(caller, &src, W)?;
                // Refuse to move a directory under itself: walk up from the
                // destination to the root. A walk that reaches neither the
                // source nor the root within DIR_DEPTH_MAX steps proves
                // nothing, so it refuses too (letting it through once cut a
                // subtree off as a cycle; regression test in tests/posix.rs).
                let mut cur = ddir;
                let mut reached_root = false;
                for _ in 0..DIR_DEPTH_MAX {
                    if cur == src.ino {
                        return Err(NsError::InvalidArgument("cannot move a directory into itself".into()));
                    }
                    if cur == ROOT_INO {
                        reached_root = true;
                        break;
                    }
                    cur = tx.inode(cur)?.parent;
                }
                if !reached_root {
                    return Err(NsError::InvalidArgument(format!(
                        "cannot move a directory under one more than {DIR_DEPTH_MAX} levels deep"
                    )));
                }
            }
            let mut orphaned = false;
            let mut cookie = if same_dir { Some(se.cookie) } else { None };
            if let Some(de) = de {
                let mut target = tx.inode(de.ino)?;
                let td: &mut Inode = dd.as_mut().unwrap_or(&mut sd);
                access::check_sticky(caller, td, &target)?;
                match (src.kind == Kind::Dir, target.kind == Kind::Dir) {
                    (true, false) => return Err(NsError::NotADirectory),
                    (false, true) => return Err(NsError::IsADirectory),
                    (true, true) => remove_empty_dir(tx, td, dname, &de, &target, now)?,
                    (false, false) => {
                        tx.remove_entry(td, dname, &de, now)?;
                        orphaned = tx.drop_link(&mut target, now)?;
                    }
                }
                if !same_dir {
                    cookie = Some(de.cookie);
                }
            }
            tx.remove_entry(&mut sd, sname, &se, now)?;
            {
                let td: &mut Inode = dd.as_mut().unwrap_or(&mut sd);
                tx.add_entry(td, dname, src.ino, src.kind, cookie, now)?;
                adopt(td);
            }
            adopt(&mut sd);
            if src.kind == Kind::Dir {
                src.parent = ddir;
            }
            src.ctime = now;
            tx.put_inode(&src)?;
            match (&dest, src.kind) {
                (Some((bucket, key)), Kind::File) => self.queue_renamed(tx, src.ino, *bucket, key.clone(), now)?,
                // An (empty) directory's key is found again from its name.
                (Some(_), Kind::Dir) => tx.del(Tree::Remote, &keys::id(src.ino))?,
                _ => {}
            }
            tx.put_inode(&sd)?;
            if let Some(dd) = &dd {
                tx.put_inode(dd)?;
            }
            Ok(orphaned)
        })?;
        self.finish_unlink(orphaned)
    }

    /// Lists `dir` after `cookie` (0 = from the start), at most `max`
    /// entries; returns the entries and whether the end was reached.
    /// Cookies are per-directory and monotonic: a listing resumes correctly
    /// after its last entry was deleted, and new entries come last.
    pub fn readdir(&self, caller: &Caller, dir: u64, cookie: u64, max: usize) -> NsResult<(Vec<DirEntry>, bool)> {
        let d = self.getattr(dir)?;
        if d.kind != Kind::Dir {
            return Err(NsError::NotADirectory);
        }
        access::check(caller, &d, R)?;
        if cookie < FIRST_ENTRY_COOKIE {
            self.refresh_dir(&d)?; // a listing starts: see the upstream's
        }
        let max = max.clamp(1, PAGE_ENTRIES_MAX);
        let start = keys::pair(dir, cookie.saturating_add(1));
        let end = keys::pair(dir, u64::MAX);
        let rows = self.meta.scan(
            Tree::Dirscan,
            (std::ops::Bound::Included(&start[..]), std::ops::Bound::Included(&end[..])),
            max + 1,
            Direction::Forward,
        )?;
        let eof = rows.len() <= max;
        let mut out = Vec::with_capacity(rows.len().min(max));
        for (k, v) in rows.into_iter().take(max) {
            let (_, cookie) = keys::unpair(&k);
            let s: DirScan = crate::record::decode("dirscan", &v)?;
            out.push(DirEntry { name: s.name, ino: s.ino, kind: s.kind, cookie });
        }
        Ok((out, eof))
    }

    /// Changes attributes. `guard`: fail with `NotSync` unless the ctime is
    /// still this value (NFS SETATTR guard), changing nothing.
    pub fn setattr(&self, caller: &Caller, ino: u64, set: &SetAttr, guard: Option<Nanos>) -> NsResult<Inode> {
        if let Some(size) = set.size {
            if size > crate::limits::FILE_SIZE_BYTES_MAX {
                return Err(NsError::TooLarge(format!("size {size} over the file size limit")));
            }
        }
        if set.size.is_some() {
            self.make_local(ino)?; // a changed upstream file is whole here first
        }
        // Truncation rewrites extents, so it runs under the extent lock.
        let _lock = set.size.map(|_| self.extent_locks.get(ino).write().unwrap_or_else(|p| p.into_inner()));
        let plan = match set.size {
            Some(size) => self.extents_from(ino, size)?,
            None => Vec::new(),
        };
        let now = self.now();
        let gc_at = self.gc_at_ms(now);
        let updated = self.txn(|tx| {
            let mut n = tx.inode(ino)?;
            if n.nlink == 0 && n.kind != Kind::Dir {
                return Err(NsError::Stale);
            }
            if let Some(g) = guard {
                if n.ctime != g {
                    return Err(NsError::NotSync);
                }
            }
            let owner = caller.is_root() || caller.uid == n.uid;
            if let Some(mode) = set.mode {
                if !owner {
                    return Err(NsError::NotPermitted);
                }
                let mut mode = mode & 0o7777;
                if !caller.is_root() && n.kind == Kind::File && !caller.in_group(set.gid.unwrap_or(n.gid)) {
                    mode &= !0o2000; // as Linux: no setgid for a group you are not in
                }
                n.mode = mode;
            }
            if let Some(uid) = set.uid {
                if uid != n.uid && !caller.is_root() {
                    return Err(NsError::NotPermitted);
                }
            }
            if let Some(gid) = set.gid {
                if gid != n.gid && !(caller.is_root() || (caller.uid == n.uid && caller.in_group(gid))) {
                    return Err(NsError::NotPermitted);
                }
            }
            let chown = set.uid.is_some_and(|u| u != n.uid) || set.gid.is_some_and(|g| g != n.gid);
            if chown && n.kind == Kind::File && !caller.is_root() {
                n.mode &= !0o6000;
            }
            n.uid = set.uid.unwrap_or(n.uid);
            n.gid = set.gid.unwrap_or(n.gid);
            if let Some(size) = set.size {
                require_file(&n)?;
                access::check_data(caller, &n, W)?;
                if size != n.size {
                    apply_truncate(tx, ino, size, &plan, gc_at)?;
                    n.content_gen += 1;
                    self.queue_dirty(tx, ino, now, size.saturating_sub(n.size))?;
                }
                n.size = size;
                n.mtime = now;
            }
            for (which, t) in [(0, set.atime), (1, set.mtime)] {
                let Some(t) = t else { continue };
                let value = match t {
                    SetTime::Client(v) if owner => v,
                    SetTime::Client(_) => return Err(NsError::NotPermitted),
                    SetTime::ServerNow => {
                        if !owner {
                            access::check(caller, &n, W)?;
                        }
                        now
                    }
                };
                if which == 0 {
                    n.atime = value;
                } else {
                    n.mtime = value;
                }
            }
            n.ctime = now;
            adopt(&mut n);
            tx.put_inode(&n)?;
            Ok(n)
        })?;
        self.commit_barrier()?;
        Ok(updated)
    }

    /// Creates a bucket owned by `owner`. S3 authorization decides who may;
    /// no POSIX check on the root applies.
    pub fn create_bucket(&self, owner: &Caller, name: &[u8]) -> NsResult<Inode> {
        validate_bucket_name(name)?;
        self.mkdir(&Caller { uid: 0, gid: 0, groups: vec![] }, ROOT_INO, name, 0o755).and_then(|b| {
            if owner.is_root() {
                return Ok(b);
            }
            let set = SetAttr { uid: Some(owner.uid), gid: Some(owner.gid), ..SetAttr::default() };
            self.setattr(&Caller::root(), b.ino, &set, None)
        })
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, name: &[u8]) -> NsResult<()> {
        validate_bucket_name(name).map_err(|_| NsError::NotFound)?;
        self.rmdir(&Caller::root(), ROOT_INO, name)
    }

    /// The bucket's directory inode.
    pub fn bucket(&self, name: &[u8]) -> NsResult<Inode> {
        let e = self.meta.get(Tree::Dentries, &keys::dentry(ROOT_INO, name, true))?.ok_or(NsError::NotFound)?;
        let d: Dentry = crate::record::decode("dentry", &e)?;
        self.getattr(d.ino)
    }

    /// Every bucket, in name order.
    pub fn list_buckets(&self) -> NsResult<Vec<(Vec<u8>, Inode)>> {
        let mut out = Vec::new();
        let mut cookie = 0;
        loop {
            let (page, eof) = self.readdir(&Caller::root(), ROOT_INO, cookie, PAGE_ENTRIES_MAX)?;
            for e in &page {
                if e.kind == Kind::Dir {
                    out.push((e.name.clone(), self.getattr(e.ino)?));
                }
            }
            match page.last() {
                Some(last) if !eof => cookie = last.cookie,
                _ => break,
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Removes the empty directory `victim` (entry `e` named `name` in `d`)
/// and its records.
pub(crate) fn remove_empty_dir(
    tx: &mut Tx<'_>,
    d: &mut Inode,
    name: &[u8],
    e: &Dentry,
    victim: &Inode,
    now: Nanos,
) -> NsResult<()> {
    if victim.entries != 0 {
        return Err(NsError::NotEmpty);
    }
    tx.remove_entry(d, name, e, now)?;
    tx.del(Tree::Inodes, &keys::id(victim.ino))?;
    tx.del(Tree::Remote, &keys::id(victim.ino))?;
    tx.del(Tree::Upstreams, &keys::id(victim.ino))?;
    tx.del(Tree::ObjMeta, &keys::id(victim.ino))
}
