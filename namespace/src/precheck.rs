//! Early permission checks for S3 writes: whether a caller may create or
//! replace a key, asked before any data is received, so a PUT of 5 GiB or a
//! multipart upload that the publish would refuse is refused at once.
//!
//! Advisory only: permissions can change between this check and the
//! publish, so the publishing transaction checks again and is what counts.

use crate::access::{self, Caller, W, X};
use crate::path::parse_key;
use crate::record::Kind;
use crate::{Namespace, NsError, NsResult};

impl Namespace {
    /// Whether `caller` may write `bucket/key` as things stand: search on
    /// every existing directory on the path; write on the deepest existing
    /// directory when the key (or a directory above it) is new; write on the
    /// file when it replaces one. The same rules the publish applies.
    pub fn check_put_access(&self, caller: &Caller, bucket: &[u8], key: &[u8]) -> NsResult<()> {
        let parsed = parse_key(key)?;
        let mut dir = self.bucket(bucket)?;
        for comp in &parsed.dirs {
            access::check(caller, &dir, X)?;
            match self.dentry(dir.ino, comp)? {
                Some(d) if d.kind == Kind::Dir => dir = self.getattr(d.ino)?,
                Some(_) => return Err(NsError::NotADirectory),
                // The rest of the path would be created under `dir`.
                None => return access::check(caller, &dir, W),
            }
        }
        let Some(leaf) = parsed.leaf else { return Ok(()) };
        access::check(caller, &dir, X)?;
        match self.dentry(dir.ino, leaf)? {
            Some(d) if d.kind == Kind::Dir => Err(NsError::IsADirectory),
            Some(d) => access::check(caller, &self.getattr(d.ino)?, W),
            None => access::check(caller, &dir, W),
        }
    }
}
