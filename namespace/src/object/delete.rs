//! DELETE of a key, and the pruning of directories S3 made implicitly
//! that the delete left empty, in the same transaction.

use super::{write_back, Level};
use crate::access::{self, Caller, W, X};
use crate::clock::Nanos;
use crate::dirops::remove_empty_dir;
use crate::path::parse_key;
use crate::record::{Kind, FLAG_AUTO_CREATED, FLAG_HAS_OBJMETA, FLAG_S3_MARKER};
use crate::tree::Tree;
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

impl Namespace {
    /// DELETE: removes the file at `bucket/key`, and then every directory
    /// above it that S3 created implicitly and that is now empty, in the
    /// same transaction. Missing keys succeed (S3 answers 204 either way).
    pub fn delete_object(&self, caller: &Caller, bucket: &[u8], key: &[u8]) -> NsResult<()> {
        let Ok(parsed) = parse_key(key) else { return Ok(()) };
        let bucket_ino = self.bucket(bucket)?.ino;
        let bound = self.bound(bucket_ino).is_some();
        if bound {
            // See the upstream's objects along the key first: a key not
            // found locally after this is not upstream either.
            match self.resolve_key(caller, bucket, key) {
                Ok(_) | Err(NsError::NotFound | NsError::Stale | NsError::PermissionDenied) => {}
                Err(e) => return Err(e),
            }
        }
        let now = self.now();
        let mut removed = false;
        let orphaned = self.txn(|tx| {
            removed = false;
            let mut chain = vec![Level { dir: tx.dir(bucket_ino)?, name: Vec::new(), dentry: None, dirty: false }];
            for comp in &parsed.dirs {
                let parent = &chain.last().expect("non-empty").dir;
                access::check(caller, parent, X)?;
                match tx.lookup(parent.ino, comp)? {
                    Some(d) if d.kind == Kind::Dir => {
                        chain.push(Level { dir: tx.inode(d.ino)?, name: comp.to_vec(), dentry: Some(d), dirty: false })
                    }
                    _ => return Ok(false),
                }
            }
            let mut orphaned = false;
            match parsed.leaf {
                Some(leaf) => {
                    let parent = chain.last_mut().expect("non-empty");
                    let Some(d) = tx.lookup(parent.dir.ino, leaf)? else { return Ok(false) };
                    if d.kind == Kind::Dir {
                        return Ok(false); // `a` names a directory: no such object
                    }
                    access::check(caller, &parent.dir, W | X)?;
                    let mut victim = tx.inode(d.ino)?;
                    access::check_sticky(caller, &parent.dir, &victim)?;
                    tx.remove_entry(&mut parent.dir, leaf, &d, now)?;
                    parent.dirty = true;
                    orphaned = tx.drop_link(&mut victim, now)?;
                    removed = true;
                }
                None => {
                    if chain.len() == 1 {
                        return Ok(false);
                    }
                    let last = chain.last_mut().expect("non-empty");
                    if !last.dir.has(FLAG_S3_MARKER) && last.dir.entries > 0 {
                        return Ok(false);
                    }
                    removed = last.dir.has(FLAG_S3_MARKER);
                    last.dir.flags &= !(FLAG_S3_MARKER | FLAG_HAS_OBJMETA);
                    last.dirty = true;
                    tx.del(Tree::ObjMeta, &keys::id(last.dir.ino))?;
                    if last.dir.entries == 0 {
                        // The marker was all that held it: remove it, as
                        // deleting a file needs write access to its parent.
                        let parent = &chain[chain.len() - 2].dir;
                        access::check(caller, parent, W | X)?;
                        remove_last_level(tx, &mut chain, now)?;
                    }
                }
            }
            prune_auto_dirs(tx, caller, &mut chain, now)?;
            write_back(tx, &chain)?;
            Ok(orphaned)
        })?;
        self.finish_unlink(orphaned)?;
        if bound && removed {
            self.delete_through(bucket_ino, key)?;
        }
        Ok(())
    }
}

/// Removes, bottom up, empty directories that S3 created implicitly (never
/// buckets, markers or directories NFS made or touched).
fn prune_auto_dirs(tx: &mut Tx<'_>, caller: &Caller, chain: &mut Vec<Level>, now: Nanos) -> NsResult<()> {
    while chain.len() > 1 {
        let last = chain.last().expect("len > 1");
        let d = &last.dir;
        if d.entries != 0 || !d.has(FLAG_AUTO_CREATED) || d.has(FLAG_S3_MARKER) {
            break;
        }
        if access::check(caller, &chain[chain.len() - 2].dir, W | X).is_err() {
            break; // not allowed to remove it: leave it, as rmdir would
        }
        remove_last_level(tx, chain, now)?;
    }
    Ok(())
}

/// Removes the (empty) directory at the end of a key walk from its parent.
fn remove_last_level(tx: &mut Tx<'_>, chain: &mut Vec<Level>, now: Nanos) -> NsResult<()> {
    assert!(chain.len() > 1, "the bucket is never removed by a key walk");
    let level = chain.pop().expect("len > 1");
    let parent = chain.last_mut().expect("len >= 1");
    let dentry = level.dentry.expect("non-bucket levels have a dentry");
    remove_empty_dir(tx, &mut parent.dir, &level.name, &dentry, &level.dir, now)?;
    parent.dirty = true;
    Ok(())
}
