//! S3 listing: every key under a prefix, in UTF-8 byte order, with an
//! optional delimiter, resumable from any key.
//!
//! Keys are not stored flat: a key is a path of dentries. Within one
//! directory the dentry keys are `name` for files and `name/` for
//! directories, so a scan of one directory comes out in full-key order
//! (`a-c` < `a.d` < `a/` < `a0`) and a depth-first walk that descends into
//! a directory when it meets `name/` emits keys in exact S3 order. Seeking
//! to a key descends one level per path component, each a range seek, so a
//! page costs O(depth · log n + page) whatever the bucket size.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use metastore::Direction;

use crate::tree::Tree;

use crate::access::{self, Caller, R, X};
use crate::limits::PAGE_ENTRIES_MAX;
use crate::object::ObjectInfo;
use crate::record::{Dentry, Kind, FLAG_S3_MARKER};
use crate::{keys, Namespace, NsError, NsResult};

/// Dentries fetched per directory scan step.
const SCAN_PAGE_ENTRIES: usize = 256;

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: Vec<u8>,
    /// Fold keys whose rest (after the prefix) holds this into one common
    /// prefix ending with it.
    pub delimiter: Option<Vec<u8>>,
    /// Only keys (and common prefixes) strictly after this.
    pub start_after: Option<Vec<u8>>,
    /// Most entries (objects plus common prefixes) to return.
    pub max_keys: usize,
}

/// One listing row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListEntry {
    /// An object (a file, or a marker directory as `dir/`).
    Object {
        /// The key.
        key: Vec<u8>,
        /// Size, ETag, metadata.
        info: Box<ObjectInfo>,
    },
    /// Keys folded at the delimiter.
    CommonPrefix(Vec<u8>),
}

impl ListEntry {
    /// The key or prefix.
    pub fn key(&self) -> &[u8] {
        match self {
            ListEntry::Object { key, .. } => key,
            ListEntry::CommonPrefix(p) => p,
        }
    }
}

/// A page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects and common prefixes, in key order.
    pub entries: Vec<ListEntry>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// Pass as `start_after` to continue (set when truncated). For a common
    /// prefix it is the prefix followed by 0xFF, which sorts after every key
    /// under it (0xFF never occurs in UTF-8).
    pub next_start_after: Option<Vec<u8>>,
}

/// One directory being walked.
struct Frame {
    dir: u64,
    /// Key prefix of this directory's entries ("" for the bucket).
    path: Vec<u8>,
    /// Resume position: entry keys strictly after (or at, if inclusive) this.
    after: Option<(Vec<u8>, bool)>,
    buf: VecDeque<(Vec<u8>, Dentry)>,
    done: bool,
}

/// An entry met by the walk.
struct Item {
    key: Vec<u8>,
    dentry: Dentry,
}

/// Depth-first walk over a bucket in key order.
struct Walk<'a> {
    ns: &'a Namespace,
    caller: &'a Caller,
    stack: Vec<Frame>,
    /// A directory entry to yield before continuing (inclusive seeks).
    pending: Option<Item>,
    /// The directory just yielded; descended into on the next step unless
    /// [`Walk::skip_last_dir`] is called.
    descend: Option<Item>,
    /// Directories of an upstream-bound bucket already listed upstream by
    /// this walk (seeks revisit directories; one listing each suffices).
    refreshed: std::collections::HashSet<u64>,
}

impl<'a> Walk<'a> {
    fn frame(dir: u64, path: Vec<u8>, after: Option<(Vec<u8>, bool)>) -> Frame {
        Frame { dir, path, after, buf: VecDeque::new(), done: false }
    }

    /// Brings `dir` up to date with the upstream (bound buckets only),
    /// once per walk.
    fn refresh(&mut self, dir: u64) -> NsResult<()> {
        if self.refreshed.insert(dir) {
            match self.ns.getattr(dir) {
                Ok(d) => self.ns.refresh_dir(&d)?,
                Err(NsError::Stale) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Positions the walk at the first key > `target` (>= if `inclusive`).
    fn seek(&mut self, bucket: u64, target: &[u8], inclusive: bool) -> NsResult<()> {
        self.stack.clear();
        self.pending = None;
        self.descend = None;
        let mut dir = bucket;
        let mut path = Vec::new();
        let mut rest = target;
        loop {
            self.refresh(dir)?;
            let Some(slash) = rest.iter().position(|&c| c == b'/') else {
                self.stack.push(Self::frame(dir, path, Some((rest.to_vec(), inclusive))));
                return Ok(());
            };
            let head = &rest[..=slash];
            let key = keys::dentry(dir, &head[..slash], true);
            let child = match self.ns.meta.get(Tree::Dentries, &key)? {
                Some(v) => crate::record::decode::<Dentry>("dentry", &v)?,
                None => {
                    self.stack.push(Self::frame(dir, path, Some((rest.to_vec(), inclusive))));
                    return Ok(());
                }
            };
            self.stack.push(Self::frame(dir, path.clone(), Some((head.to_vec(), false))));
            path.extend_from_slice(head);
            rest = &rest[slash + 1..];
            if rest.is_empty() && inclusive {
                // The directory's own key equals the target: yield it first.
                self.pending = Some(Item { key: path.clone(), dentry: child });
                return Ok(());
            }
            if !self.may_enter(child.ino)? {
                return Ok(());
            }
            dir = child.ino;
        }
    }

    /// Whether the caller may list this directory (S3 listings silently
    /// skip subtrees they cannot read and search).
    fn may_enter(&self, dir: u64) -> NsResult<bool> {
        match self.ns.getattr(dir) {
            Ok(d) => Ok(access::granted(self.caller, &d, R | X) == R | X),
            Err(NsError::Stale) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Do not descend into the directory just yielded.
    fn skip_last_dir(&mut self) {
        self.descend = None;
    }

    fn next(&mut self) -> NsResult<Option<Item>> {
        if let Some(d) = self.descend.take() {
            if self.may_enter(d.dentry.ino)? {
                self.refresh(d.dentry.ino)?;
                self.stack.push(Self::frame(d.dentry.ino, d.key, None));
            }
        }
        if let Some(p) = self.pending.take() {
            if p.dentry.kind == Kind::Dir {
                self.descend = Some(Item { key: p.key.clone(), dentry: p.dentry });
            }
            return Ok(Some(p));
        }
        loop {
            let Some(top) = self.stack.last_mut() else { return Ok(None) };
            if top.buf.is_empty() && !top.done {
                let lo = match &top.after {
                    Some((a, incl)) => {
                        let k = keys::dentry(top.dir, a, false);
                        if *incl {
                            Bound::Included(k)
                        } else {
                            Bound::Excluded(k)
                        }
                    }
                    None => Bound::Included(top.dir.to_be_bytes().to_vec()),
                };
                let hi = keys::id(top.dir + 1);
                let lo_ref = match &lo {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let rows = self.ns.meta.scan(
                    Tree::Dentries,
                    (lo_ref, Bound::Excluded(&hi)),
                    SCAN_PAGE_ENTRIES,
                    Direction::Forward,
                )?;
                top.done = rows.len() < SCAN_PAGE_ENTRIES;
                for (k, v) in rows {
                    let entry_key = k[8..].to_vec();
                    top.buf.push_back((entry_key, crate::record::decode("dentry", &v)?));
                }
            }
            let Some((entry_key, dentry)) = top.buf.pop_front() else {
                self.stack.pop();
                continue;
            };
            top.after = Some((entry_key.clone(), false));
            let name = entry_key.strip_suffix(b"/").unwrap_or(&entry_key);
            if std::str::from_utf8(name).is_err() {
                // S3 cannot express it: hidden, counted, never mangled.
                self.ns.hidden_names.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut key = top.path.clone();
            key.extend_from_slice(&entry_key);
            if dentry.kind == Kind::Dir {
                self.descend = Some(Item { key: key.clone(), dentry });
            }
            return Ok(Some(Item { key, dentry }));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Namespace {
    /// Lists `bucket` as S3 ListObjects does.
    pub fn list_objects(&self, caller: &Caller, bucket: &[u8], p: &ListParams) -> NsResult<ListPage> {
        let b = self.bucket(bucket)?;
        access::check(caller, &b, R | X)?;
        let max = p.max_keys.min(PAGE_ENTRIES_MAX);
        let mut page = ListPage::default();
        let mut walk =
            Walk { ns: self, caller, stack: Vec::new(), pending: None, descend: None, refreshed: Default::default() };
        match &p.start_after {
            Some(s) if s.as_slice() >= p.prefix.as_slice() => walk.seek(b.ino, s, false)?,
            _ => walk.seek(b.ino, &p.prefix, true)?,
        }
        let delim = p.delimiter.as_deref().filter(|d| !d.is_empty());
        while let Some(item) = walk.next()? {
            if !item.key.starts_with(&p.prefix) {
                if item.key.as_slice() > p.prefix.as_slice() {
                    break; // key order: nothing later can match the prefix
                }
                continue;
            }
            let rest = &item.key[p.prefix.len()..];
            if let Some(i) = delim.and_then(|d| find(rest, d).map(|i| i + d.len())) {
                let cp = item.key[..p.prefix.len() + i].to_vec();
                let mut resume = cp.clone();
                resume.push(0xFF);
                if item.dentry.kind == Kind::Dir && item.key == cp {
                    walk.skip_last_dir();
                } else {
                    walk.seek(b.ino, &resume, false)?;
                }
                if p.start_after.as_ref().is_some_and(|s| cp <= *s) {
                    continue; // the listing resumed inside this prefix
                }
                if page.entries.len() == max {
                    page.truncated = true;
                    break;
                }
                page.next_start_after = Some(resume);
                page.entries.push(ListEntry::CommonPrefix(cp));
                continue;
            }
            let inode = match item.dentry.kind {
                // Listed as its target when GET would serve it: the fully
                // resolved target is a regular file inside this bucket.
                // Dangling, directory, escaping and absolute links are not.
                Kind::Symlink => match self.resolve_key(caller, bucket, &item.key) {
                    Ok(target) => target,
                    Err(
                        NsError::NotFound
                        | NsError::Stale
                        | NsError::PermissionDenied
                        | NsError::NotADirectory
                        | NsError::InvalidName(_)
                        | NsError::NameTooLong
                        | NsError::KeyTooLong,
                    ) => continue,
                    Err(e) => return Err(e),
                },
                Kind::Dir => {
                    let d = match self.getattr(item.dentry.ino) {
                        Ok(d) => d,
                        Err(NsError::Stale) => continue,
                        Err(e) => return Err(e),
                    };
                    if !d.has(FLAG_S3_MARKER) {
                        continue;
                    }
                    d
                }
                Kind::File => match self.getattr(item.dentry.ino) {
                    Ok(f) => f,
                    Err(NsError::Stale) => continue, // removed while we walked
                    Err(e) => return Err(e),
                },
            };
            if page.entries.len() == max {
                page.truncated = true;
                break;
            }
            page.next_start_after = Some(item.key.clone());
            let info = match self.object_info(inode) {
                // Replaced while we walked: list the version there now.
                Err(NsError::Stale) => {
                    match self.resolve_key(caller, bucket, &item.key).and_then(|n| self.object_info(n)) {
                        Ok(info) => info,
                        Err(NsError::Stale | NsError::NotFound) => continue,
                        Err(e) => return Err(e),
                    }
                }
                other => other?,
            };
            page.entries.push(ListEntry::Object { key: item.key, info: Box::new(info) });
        }
        if !page.truncated {
            page.next_start_after = None;
        }
        Ok(page)
    }
}
