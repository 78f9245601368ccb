//! Where a write lands, resolved once per request, and the one permission
//! walk over a key's directories.
//!
//! The early refusal ([`Namespace::check_put_access`], asked before any
//! data is received so a PUT of 5 GiB or a multipart upload that the
//! publish would refuse is refused at once) and the publishing transaction
//! run the same functions here: the first over committed state, the second
//! inside its transaction, where the answer counts (permissions can change
//! in between).

use super::Level;
use crate::access::{self, Caller, W, X};
use crate::path::{parse_key, ParsedKey};
use crate::record::{Dentry, Inode, Kind};
use crate::tx::Tx;
use crate::{Namespace, NsError, NsResult};

/// A write's destination: the bucket's directory and the key split into
/// its directories and leaf (`None` for a directory marker key ending in
/// '/'). Made once per request, so neither the early refusal nor the
/// publish resolves the bucket or parses the key again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutTarget {
    pub(crate) bucket_ino: u64,
    pub(crate) dirs: Vec<Vec<u8>>,
    pub(crate) leaf: Option<Vec<u8>>,
}

impl PutTarget {
    /// Parses `key` (invalid keys are refused here) under the bucket whose
    /// directory is inode `bucket_ino` (from [`Namespace::bucket`]).
    pub fn new(bucket_ino: u64, key: &[u8]) -> NsResult<Self> {
        Ok(Self::from_parsed(bucket_ino, &parse_key(key)?))
    }

    /// The key this target was made from.
    pub(crate) fn key(&self) -> Vec<u8> {
        let mut k = Vec::new();
        for d in &self.dirs {
            k.extend_from_slice(d);
            k.push(b'/');
        }
        if let Some(l) = &self.leaf {
            k.extend_from_slice(l);
        }
        k
    }

    pub(crate) fn from_parsed(bucket_ino: u64, parsed: &ParsedKey<'_>) -> Self {
        PutTarget {
            bucket_ino,
            dirs: parsed.dirs.iter().map(|c| c.to_vec()).collect(),
            leaf: parsed.leaf.map(|l| l.to_vec()),
        }
    }
}

/// Reads a key walk needs: from committed state (the early refusal) or
/// inside a transaction (the publish).
pub(crate) trait PathView {
    /// The entry `name` of directory `dir`, if any.
    fn entry(&mut self, dir: u64, name: &[u8]) -> NsResult<Option<Dentry>>;
    /// The inode `ino`.
    fn inode(&mut self, ino: u64) -> NsResult<Inode>;
}

impl PathView for Tx<'_> {
    fn entry(&mut self, dir: u64, name: &[u8]) -> NsResult<Option<Dentry>> {
        self.lookup(dir, name)
    }
    fn inode(&mut self, ino: u64) -> NsResult<Inode> {
        Tx::inode(self, ino)
    }
}

/// Committed state, read point by point outside any transaction.
struct Committed<'a>(&'a Namespace);

impl PathView for Committed<'_> {
    fn entry(&mut self, dir: u64, name: &[u8]) -> NsResult<Option<Dentry>> {
        self.0.dentry(dir, name)
    }
    fn inode(&mut self, ino: u64) -> NsResult<Inode> {
        self.0.getattr(ino)
    }
}

/// Walks the existing directories of `dirs` below `chain`'s last level
/// (the bucket), with search permission on each, pushing a level per
/// directory. At the first missing one it checks write permission on its
/// parent (the rest of the path would be made there) and returns its
/// index; `None` when every directory exists.
pub(crate) fn walk_dirs(
    v: &mut impl PathView,
    caller: &Caller,
    chain: &mut Vec<Level>,
    dirs: &[Vec<u8>],
) -> NsResult<Option<usize>> {
    for (i, comp) in dirs.iter().enumerate() {
        let parent = &chain.last().expect("the walk starts at the bucket").dir;
        access::check(caller, parent, X)?;
        match v.entry(parent.ino, comp)? {
            Some(d) if d.kind == Kind::Dir => {
                let dir = v.inode(d.ino)?;
                chain.push(Level { dir, name: comp.clone(), dentry: Some(d), dirty: false });
            }
            Some(_) => return Err(NsError::NotADirectory),
            None => {
                access::check(caller, parent, W)?;
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

/// The file a write of `leaf` in `parent` would replace, if any (search
/// permission on `parent`; a directory there is `IsADirectory`).
pub(crate) fn find_leaf(
    v: &mut impl PathView,
    caller: &Caller,
    parent: &Inode,
    leaf: &[u8],
) -> NsResult<Option<(Dentry, Inode)>> {
    access::check(caller, parent, X)?;
    match v.entry(parent.ino, leaf)? {
        Some(d) if d.kind == Kind::Dir => Err(NsError::IsADirectory),
        Some(d) => Ok(Some((d, v.inode(d.ino)?))),
        None => Ok(None),
    }
}

/// Write permission for the write itself: on the file it replaces (the
/// same permission a truncating open needs), else on the directory that
/// gains the name.
pub(crate) fn check_replace(caller: &Caller, parent: &Inode, existing: Option<&Inode>) -> NsResult<()> {
    match existing {
        Some(old) => access::check(caller, old, W),
        None => access::check(caller, parent, W),
    }
}

impl Namespace {
    /// `bucket/key` as a write target: parses the key, then resolves the
    /// bucket (`NotFound` when it does not exist).
    pub fn put_target(&self, bucket: &[u8], key: &[u8]) -> NsResult<PutTarget> {
        let parsed = parse_key(key)?;
        Ok(PutTarget::from_parsed(self.bucket(bucket)?.ino, &parsed))
    }

    /// Whether `caller` may write `target` as things stand: search on every
    /// existing directory on the path; write on the deepest existing
    /// directory when the key (or a directory above it) is new; write on
    /// the file when it replaces one. Advisory: the publish runs the same
    /// walk again in its transaction, and that is what counts.
    /// The walk reads committed state point by point: a file replaced by
    /// a concurrent overwrite between its lookup and its inode read is
    /// walked again, not reported gone.
    pub fn check_put_access(&self, caller: &Caller, target: &PutTarget) -> NsResult<()> {
        self.retry_replaced(|| {
            let mut v = Committed(self);
            let mut chain = vec![Level::bucket(self.getattr(target.bucket_ino)?)];
            if walk_dirs(&mut v, caller, &mut chain, &target.dirs)?.is_some() {
                return Ok(());
            }
            let Some(leaf) = &target.leaf else { return Ok(()) };
            let parent = &chain.last().expect("non-empty").dir;
            let existing = find_leaf(&mut v, caller, parent, leaf)?;
            check_replace(caller, parent, existing.as_ref().map(|e| &e.1))
        })
    }
}
