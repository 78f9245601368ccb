//! NFSv3 procedures (RFC 1813) over the namespace: the call context, handle
//! resolution and the dispatch over [`Proc`]; the procedures themselves
//! live in one module per family:
//!
//! - `attrs`: GETATTR, SETATTR, ACCESS, FSSTAT, FSINFO, PATHCONF.
//! - `dirops`: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR,
//!   RENAME, LINK.
//! - `readdir`: READDIR, READDIRPLUS.
//! - `data`: READ, WRITE, COMMIT, READLINK.
//!
//! Each procedure decodes its arguments (undecodable: `GARBAGE_ARGS`),
//! runs its work as one `Result<_, nfsstat3>` and hands it to `answer`,
//! which packs the ok or the fail body behind the status.
//!
//! Every procedure resolves its handles (bad bytes → `BADHANDLE`, a
//! deleted inode or another generation → `STALE`), checks the export's
//! client allow-list and read-only flag, squashes the credential, and calls
//! the namespace, which enforces POSIX permissions. Error replies carry
//! their mandatory `post_op_attr`/`wcc_data`. Pre-operation attributes are
//! never reported (`pre_op_attr` FALSE): they could not be read atomically
//! with the change, and a wrong one would make clients trust stale caches.

use std::net::IpAddr;

use namespace::{Caller, Inode, Kind, SetAttr, SetTime, ROOT_INO};
use nfs3_types::nfs3::{
    fattr3, ftype3, nfs_fh3, nfsstat3, nfstime3, post_op_attr, specdata3, wcc_data, Nfs3Option, Nfs3Result,
};
use nfs3_types::xdr_codec::{Opaque, Pack};

use crate::args::{self, Args, Sattr};
use crate::exports::ExportOptions;
use crate::handle::{FileHandle, HandleError, NFS3_FH_BYTES_MAX};
use crate::reply::ProcReply;
use crate::rpc::{AcceptStat, Credential};
use crate::state::NfsState;
use crate::status::nfsstat;

mod attrs;
mod data;
mod dirops;
mod procedure;
mod readdir;

pub use procedure::Proc;

/// rtmax, rtpref, wtmax and wtpref: Linux derives rsize/wsize from them.
pub const IO_SIZE_BYTES: u32 = 1 << 20;
/// Preferred READDIR reply size.
pub const DIR_PREF_BYTES: u32 = 64 << 10;
/// Suggested multiple for I/O sizes (the chunk store's block size).
pub const IO_MULT_BYTES: u32 = 64 << 10;

/// The export of a handle minted for inode `child` found under export
/// `parent_export`. Crossing from the root export into a bucket switches to
/// the bucket's export (the only children of the root are buckets), as
/// Linux nfsd's `crossmnt` hands out the child export's handles: a bucket's
/// own export options (`read_only`, `squash`, `clients`) govern its files
/// whichever mount the client walked in from, so `/` never reaches inside
/// a bucket further than the bucket's own export allows.
fn child_export(parent_export: u64, child: u64) -> u64 {
    if parent_export == ROOT_INO && child != ROOT_INO {
        child
    } else {
        parent_export
    }
}

fn time(ns: i64) -> nfstime3 {
    let ns = ns.max(0);
    nfstime3 { seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX), nseconds: (ns % 1_000_000_000) as u32 }
}

fn nanos(t: args::Time) -> i64 {
    t.seconds as i64 * 1_000_000_000 + t.nseconds.min(999_999_999) as i64
}

/// The attributes of an inode.
pub fn fattr(fsid: u64, n: &Inode) -> fattr3 {
    let (type_, size) = match n.kind {
        Kind::File => (ftype3::NF3REG, n.size),
        Kind::Dir => (ftype3::NF3DIR, 4096),
        Kind::Symlink => (ftype3::NF3LNK, n.target.len() as u64),
    };
    fattr3 {
        type_,
        mode: n.mode & 0o7777,
        nlink: n.nlink.max(1),
        uid: n.uid,
        gid: n.gid,
        size,
        // Space used is not tracked per file (holes are free, shared
        // chunks are shared); the size rounded up to 4 KiB stands in.
        used: size.div_ceil(4096) * 4096,
        rdev: specdata3::default(),
        fsid,
        fileid: n.ino,
        atime: time(n.atime),
        mtime: time(n.mtime),
        ctime: time(n.ctime),
    }
}

fn set_time(t: args::SetTime) -> Option<SetTime> {
    match t {
        args::SetTime::DontChange => None,
        args::SetTime::ServerTime => Some(SetTime::ServerNow),
        args::SetTime::ClientTime(t) => Some(SetTime::Client(nanos(t))),
    }
}

fn to_setattr(s: &Sattr) -> SetAttr {
    SetAttr { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: set_time(s.atime), mtime: set_time(s.mtime) }
}

/// A resolved handle: the inode, its export and the caller as that export
/// sees it.
struct Resolved<'s> {
    fh: FileHandle,
    inode: Inode,
    opts: &'s ExportOptions,
    caller: Caller,
}

/// One call being served.
pub struct Ctx<'s> {
    st: &'s NfsState,
    client: IpAddr,
    cred: &'s Credential,
}

/// What a procedure's work ends in: a value for the ok body, or the status
/// of the fail body.
type Res<T> = Result<T, nfsstat3>;

/// The reply shape all NFS procedures share: the status, then the ok body
/// built from `out`'s value, or the fail body. `fail` runs only on error,
/// after the work (its post-operation attributes are read then).
fn answer<T, O: Pack, F: Pack>(
    out: Res<T>,
    ok: impl FnOnce(T) -> O,
    fail: impl FnOnce() -> F,
) -> Result<ProcReply, AcceptStat> {
    let res = match out {
        Ok(v) => Nfs3Result::Ok(ok(v)),
        Err(s) => Nfs3Result::Err((s, fail())),
    };
    Ok(ProcReply::nfs(&res))
}

impl<'s> Ctx<'s> {
    /// A call from `client` with `cred`.
    pub fn new(st: &'s NfsState, client: IpAddr, cred: &'s Credential) -> Self {
        Ctx { st, client, cred }
    }

    fn fsid(&self) -> u64 {
        self.st.ns.fsid()
    }

    fn resolve(&self, raw: &[u8]) -> Res<Resolved<'s>> {
        if raw.len() > NFS3_FH_BYTES_MAX {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let fh = self.st.handles.open(raw).map_err(|e| match e {
            HandleError::Malformed => nfsstat3::NFS3ERR_BADHANDLE,
            HandleError::OldFormat => nfsstat3::NFS3ERR_STALE,
        })?;
        if fh.fsid != self.fsid() {
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        // Invariant of minting (`child_export`): under the root export only
        // the root directory itself is named; everything below it carries
        // its bucket's export. A verified handle always keeps it.
        if fh.export == ROOT_INO && fh.ino != ROOT_INO {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let opts = self.st.export_options(fh.export).ok_or(nfsstat3::NFS3ERR_STALE)?;
        if !opts.allows(self.client) {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        let inode = self.st.ns.getattr(fh.ino).map_err(|e| nfsstat(&e))?;
        if inode.generation != fh.generation {
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        Ok(Resolved { fh, inode, opts, caller: opts.caller(self.cred) })
    }

    /// A signed handle for `n`, found in a directory resolved under
    /// export `export`.
    fn handle_for(&self, export: u64, n: &Inode) -> nfs_fh3 {
        let fh =
            FileHandle { fsid: self.fsid(), export: child_export(export, n.ino), ino: n.ino, generation: n.generation };
        nfs_fh3 { data: Opaque::owned(self.st.handles.seal(&fh)) }
    }

    fn attrs(&self, ino: u64) -> post_op_attr {
        match self.st.ns.getattr(ino) {
            Ok(n) => Nfs3Option::Some(fattr(self.fsid(), &n)),
            Err(_) => Nfs3Option::None,
        }
    }

    fn wcc(&self, ino: u64) -> wcc_data {
        wcc_data { before: Nfs3Option::None, after: self.attrs(ino) }
    }

    fn writable(&self, r: &Resolved<'_>) -> Res<()> {
        if r.opts.read_only {
            Err(nfsstat3::NFS3ERR_ROFS)
        } else {
            Ok(())
        }
    }

    /// Post-op attributes of whatever a raw handle names, if anything
    /// (only for handles we signed: error replies must not reveal the
    /// attributes of inodes the client never looked up).
    fn wcc_of_raw(&self, raw: &[u8]) -> wcc_data {
        match self.st.handles.open(raw) {
            Ok(fh) if fh.fsid == self.fsid() => self.wcc(fh.ino),
            _ => wcc_data::default(),
        }
    }

    fn attrs_of_raw(&self, raw: &[u8]) -> post_op_attr {
        self.wcc_of_raw(raw).after
    }

    /// Runs procedure `p`; `Err` is the RPC-level answer (`GARBAGE_ARGS`).
    pub fn call(&self, p: Proc, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        match p {
            Proc::Null => Ok(ProcReply::void()),
            Proc::Getattr => self.getattr(a),
            Proc::Setattr => self.setattr(a),
            Proc::Lookup => self.lookup(a),
            Proc::Access => self.access(a),
            Proc::Readlink => self.readlink(a),
            Proc::Read => self.read(a),
            Proc::Write => self.write(a),
            Proc::Create => self.create(a),
            Proc::Mkdir => self.mkdir(a),
            Proc::Symlink => self.symlink(a),
            Proc::Mknod => self.mknod(a),
            Proc::Remove => self.remove(a),
            Proc::Rmdir => self.rmdir(a),
            Proc::Rename => self.rename(a),
            Proc::Link => self.link(a),
            Proc::Readdir => self.readdir(a),
            Proc::Readdirplus => self.readdirplus(a),
            Proc::Fsstat => self.fsstat(a),
            Proc::Fsinfo => self.fsinfo(a),
            Proc::Pathconf => self.pathconf(a),
            Proc::Commit => self.commit(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_with_nanoseconds() {
        assert_eq!(time(1_500_000_000_123_456_789), nfstime3 { seconds: 1_500_000_000, nseconds: 123_456_789 });
        assert_eq!(time(-5), nfstime3 { seconds: 0, nseconds: 0 });
        assert_eq!(nanos(args::Time { seconds: 2, nseconds: 3 }), 2_000_000_003);
    }
}
