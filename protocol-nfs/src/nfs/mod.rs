//! NFSv3 procedures (RFC 1813) over the namespace.
//!
//! Every procedure resolves its handles (bad bytes → `BADHANDLE`, a
//! deleted inode or another generation → `STALE`), checks the export's
//! client allow-list and read-only flag, squashes the credential, and calls
//! the namespace, which enforces POSIX permissions. Error replies carry
//! their mandatory `post_op_attr`/`wcc_data`. Pre-operation attributes are
//! never reported (`pre_op_attr` FALSE): they could not be read atomically
//! with the change, and a wrong one would make clients trust stale caches.

use std::net::IpAddr;

use namespace::limits::{FILE_SIZE_BYTES_MAX, LINK_COUNT_MAX, NAME_LEN_BYTES_MAX};
use namespace::{Caller, CreateMode, Inode, Kind, SetAttr, SetTime, Stability, ROOT_INO};
use nfs3_types::nfs3::{
    self as t, cookieverf3, entry3, entryplus3, fattr3, filename3, ftype3, nfs_fh3, nfsstat3, nfstime3, post_op_attr,
    specdata3, stable_how, wcc_data, Nfs3Option, Nfs3Result,
};
use nfs3_types::xdr_codec::{List, Opaque, Void};

use crate::args::{self, Args, CreateHow, MknodType, Sattr};
use crate::exports::ExportOptions;
use crate::handle::{FileHandle, HandleError, NFS3_FH_BYTES_MAX};
use crate::reply::ProcReply;
use crate::rpc::xdr::XdrError;
use crate::rpc::{AcceptStat, Credential};
use crate::state::NfsState;
use crate::status::nfsstat;

mod procedure;

pub use procedure::Proc;

/// rtmax, rtpref, wtmax and wtpref: Linux derives rsize/wsize from them.
pub const IO_SIZE_BYTES: u32 = 1 << 20;
/// Preferred READDIR reply size.
pub const DIR_PREF_BYTES: u32 = 64 << 10;
/// Suggested multiple for I/O sizes (the chunk store's block size).
pub const IO_MULT_BYTES: u32 = 64 << 10;
/// Fixed bytes of a READDIR reply besides its entries: status, post_op_attr,
/// cookie verifier, list terminator, eof.
const READDIR_OVERHEAD_BYTES: usize = 4 + 88 + 8 + 4 + 4;
/// Bytes of a READDIRPLUS entry besides `entry3`: attributes and handle.
const PLUS_EXTRA_BYTES: usize = 88 + 4 + 4 + 32;
/// Cookies of the synthesized `.` and `..` entries; the namespace's own
/// cookies start above them.
const DOT_COOKIE: u64 = 1;
const DOTDOT_COOKIE: u64 = 2;

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

type Res<T> = Result<T, nfsstat3>;

/// A directory entry ready for a reply.
struct Listed {
    name: Vec<u8>,
    cookie: u64,
    ino: u64,
    /// Read only for READDIRPLUS, which returns attributes and a handle.
    inode: Option<Inode>,
}

fn garbage(_: XdrError) -> AcceptStat {
    AcceptStat::GarbageArgs
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

    /// Runs procedure `p`; `Err` is the RPC-level answer.
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

    fn getattr(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let res: t::GETATTR3res = match self.resolve(&fh) {
            Ok(r) => Nfs3Result::Ok(t::GETATTR3resok { obj_attributes: fattr(self.fsid(), &r.inode) }),
            Err(s) => Nfs3Result::Err((s, Void)),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn setattr(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let sattr = a.sattr().map_err(garbage)?;
        let guard = a.guard().map_err(garbage)?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            self.writable(&r)?;
            self.st.ns.setattr(&r.caller, r.inode.ino, &to_setattr(&sattr), guard.map(nanos)).map_err(|e| nfsstat(&e))
        })();
        let res: t::SETATTR3res = match out {
            Ok(n) => Nfs3Result::Ok(t::SETATTR3resok {
                obj_wcc: wcc_data { before: Nfs3Option::None, after: Nfs3Option::Some(fattr(self.fsid(), &n)) },
            }),
            Err(s) => Nfs3Result::Err((s, t::SETATTR3resfail { obj_wcc: self.wcc_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
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

    fn lookup(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            // The export root's parent is itself: a client cannot walk out.
            let name: &[u8] = if op.name == b".." && d.inode.ino == d.fh.export { b"." } else { &op.name };
            // Names are validated by the namespace (INVAL, NAMETOOLONG).
            let child = self.st.ns.lookup(&d.caller, d.inode.ino, name).map_err(|e| nfsstat(&e))?;
            Ok((d, child))
        })();
        let res: t::LOOKUP3res = match out {
            Ok((d, child)) => Nfs3Result::Ok(t::LOOKUP3resok {
                object: self.handle_for(d.fh.export, &child),
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &child)),
                dir_attributes: Nfs3Option::Some(fattr(self.fsid(), &d.inode)),
            }),
            Err(s) => Nfs3Result::Err((s, t::LOOKUP3resfail { dir_attributes: self.attrs_of_raw(&op.dir) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn access(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        use namespace::access::{granted, R, W, X};
        use t::{ACCESS3_DELETE, ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ};
        let fh = a.fh().map_err(garbage)?;
        let want = a.u32().map_err(garbage)?;
        let res: t::ACCESS3res = match self.resolve(&fh) {
            Ok(r) => {
                let g = granted(&r.caller, &r.inode, R | W | X);
                let mut bits = 0;
                if g & R != 0 {
                    bits |= ACCESS3_READ;
                }
                if g & W != 0 && !r.opts.read_only {
                    bits |= ACCESS3_MODIFY | ACCESS3_EXTEND;
                    if r.inode.kind == Kind::Dir {
                        bits |= ACCESS3_DELETE;
                    }
                }
                if g & X != 0 {
                    bits |= if r.inode.kind == Kind::Dir { ACCESS3_LOOKUP } else { ACCESS3_EXECUTE };
                }
                Nfs3Result::Ok(t::ACCESS3resok {
                    obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &r.inode)),
                    access: bits & want,
                })
            }
            Err(s) => Nfs3Result::Err((s, t::ACCESS3resfail { obj_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn readlink(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            if r.inode.kind != Kind::Symlink {
                return Err(nfsstat3::NFS3ERR_INVAL);
            }
            Ok(r.inode)
        })();
        let res: t::READLINK3res = match out {
            Ok(n) => Nfs3Result::Ok(t::READLINK3resok {
                symlink_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                data: t::nfspath3(Opaque::owned(n.target)),
            }),
            Err(s) => Nfs3Result::Err((s, t::READLINK3resfail { symlink_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn read(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let offset = a.u64().map_err(garbage)?;
        let count = a.u32().map_err(garbage)?.min(IO_SIZE_BYTES);
        let out = (|| {
            let r = self.resolve(&fh)?;
            let (data, eof) =
                self.st.ns.read(&r.caller, r.inode.ino, offset, count as usize).map_err(|e| nfsstat(&e))?;
            Ok((r.inode, data, eof))
        })();
        let res: t::READ3res = match out {
            Ok((n, data, eof)) => Nfs3Result::Ok(t::READ3resok {
                file_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                count: data.len() as u32,
                eof,
                data: Opaque::owned(data),
            }),
            Err(s) => Nfs3Result::Err((s, t::READ3resfail { file_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn write(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let offset = a.u64().map_err(garbage)?;
        let count = a.u32().map_err(garbage)?;
        let stable = a.u32().map_err(garbage)?;
        let data = a.write_data().map_err(garbage)?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            self.writable(&r)?;
            if count as usize != data.len() || stable > 2 {
                return Err(nfsstat3::NFS3ERR_INVAL);
            }
            // sync export: honour the request; async export: buffer all and
            // acknowledge FILE_SYNC, as Linux nfsd's `async`.
            let (how, committed) = match (r.opts.sync, stable) {
                (true, 0) => (Stability::Unstable, stable_how::UNSTABLE),
                (true, _) => (Stability::Durable, stable_how::FILE_SYNC),
                (false, _) => (Stability::Unstable, stable_how::FILE_SYNC),
            };
            let n = self.st.ns.write_with(&r.caller, r.inode.ino, offset, data, how).map_err(|e| nfsstat(&e))?;
            Ok((n, committed))
        })();
        let res: t::WRITE3res = match out {
            Ok((n, committed)) => Nfs3Result::Ok(t::WRITE3resok {
                file_wcc: wcc_data { before: Nfs3Option::None, after: Nfs3Option::Some(fattr(self.fsid(), &n)) },
                count,
                committed,
                verf: self.st.write_verifier(),
            }),
            Err(s) => Nfs3Result::Err((s, t::WRITE3resfail { file_wcc: self.wcc_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    /// Applies what a create's `sattr3` sets besides the mode.
    fn apply_rest(&self, caller: &Caller, n: Inode, s: &Sattr) -> Res<Inode> {
        let rest = SetAttr { mode: None, ..to_setattr(s) };
        let changes = rest.uid.is_some_and(|u| u != n.uid)
            || rest.gid.is_some_and(|g| g != n.gid)
            || rest.size.is_some_and(|z| z != n.size)
            || rest.atime.is_some()
            || rest.mtime.is_some();
        if !changes {
            return Ok(n);
        }
        self.st.ns.setattr(caller, n.ino, &rest, None).map_err(|e| nfsstat(&e))
    }

    /// The shared shape of CREATE, MKDIR and SYMLINK replies.
    fn made(&self, dir_raw: &[u8], out: Res<(u64, u64, Inode)>) -> (nfsstat3, t::CREATE3resok) {
        match out {
            Ok((export, dir, n)) => (
                nfsstat3::NFS3_OK,
                t::CREATE3resok {
                    obj: Nfs3Option::Some(self.handle_for(export, &n)),
                    obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                    dir_wcc: self.wcc(dir),
                },
            ),
            Err(s) => (
                s,
                t::CREATE3resok {
                    obj: Nfs3Option::None,
                    obj_attributes: Nfs3Option::None,
                    dir_wcc: self.wcc_of_raw(dir_raw),
                },
            ),
        }
    }

    /// Packs a CREATE-shaped result: the ok body, or only `dir_wcc`.
    fn pack_made(&self, (s, ok): (nfsstat3, t::CREATE3resok)) -> ProcReply {
        if s == nfsstat3::NFS3_OK {
            ProcReply::nfs(&Nfs3Result::<_, Void>::Ok(ok))
        } else {
            ProcReply::nfs(&Nfs3Result::<Void, _>::Err((s, ok.dir_wcc)))
        }
    }

    fn create(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let how = a.create_how().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            let (mode, ns_how, sattr) = match how {
                CreateHow::Unchecked(s) => (s.mode.unwrap_or(0o644), CreateMode::Unchecked, Some(s)),
                CreateHow::Guarded(s) => (s.mode.unwrap_or(0o644), CreateMode::Guarded, Some(s)),
                // The client sets the attributes with a SETATTR next.
                CreateHow::Exclusive(v) => (0o600, CreateMode::Exclusive(v), None),
            };
            let n = self.st.ns.create(&d.caller, d.inode.ino, &op.name, mode, ns_how).map_err(|e| nfsstat(&e))?;
            let n = match sattr {
                Some(s) => self.apply_rest(&d.caller, n, &s)?,
                None => n,
            };
            Ok((d.fh.export, d.inode.ino, n))
        })();
        Ok(self.pack_made(self.made(&op.dir, out)))
    }

    fn mkdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let s = a.sattr().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            let n =
                self.st.ns.mkdir(&d.caller, d.inode.ino, &op.name, s.mode.unwrap_or(0o755)).map_err(|e| nfsstat(&e))?;
            let n = self.apply_rest(&d.caller, n, &s)?;
            Ok((d.fh.export, d.inode.ino, n))
        })();
        Ok(self.pack_made(self.made(&op.dir, out)))
    }

    fn symlink(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let s = a.sattr().map_err(garbage)?;
        let target = a.symlink_target().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            let n = self
                .st
                .ns
                .symlink(&d.caller, d.inode.ino, &op.name, &target, s.mode.unwrap_or(0o777))
                .map_err(|e| nfsstat(&e))?;
            Ok((d.fh.export, d.inode.ino, n))
        })();
        Ok(self.pack_made(self.made(&op.dir, out)))
    }

    fn mknod(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let kind = a.mknod().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            Err(match kind {
                // Devices, sockets and FIFOs have no meaning for a dataset
                // that S3 also serves.
                MknodType::Device | MknodType::Special => nfsstat3::NFS3ERR_NOTSUPP,
                MknodType::Bad => nfsstat3::NFS3ERR_BADTYPE,
            })
        })();
        Ok(self.pack_made(self.made(&op.dir, out)))
    }

    fn unlink(&self, a: &mut Args<'_>, dir_op: bool) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop().map_err(garbage)?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            let r = if dir_op {
                self.st.ns.rmdir(&d.caller, d.inode.ino, &op.name)
            } else {
                self.st.ns.remove(&d.caller, d.inode.ino, &op.name)
            };
            r.map_err(|e| nfsstat(&e))
        })();
        // REMOVE3res and RMDIR3res have the same shape: wcc_data either way.
        let wcc = self.wcc_of_raw(&op.dir);
        Ok(match out {
            Ok(()) => ProcReply::nfs(&Nfs3Result::<_, Void>::Ok(wcc)),
            Err(s) => ProcReply::nfs(&Nfs3Result::<Void, _>::Err((s, wcc))),
        })
    }

    fn remove(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        self.unlink(a, false)
    }

    fn rmdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        self.unlink(a, true)
    }

    fn rename(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let from = a.dirop().map_err(garbage)?;
        let to = a.dirop().map_err(garbage)?;
        let out = (|| {
            let s = self.resolve(&from.dir)?;
            let d = self.resolve(&to.dir)?;
            self.writable(&s)?;
            self.writable(&d)?;
            if s.fh.export != d.fh.export {
                return Err(nfsstat3::NFS3ERR_XDEV);
            }
            self.st.ns.rename(&s.caller, s.inode.ino, &from.name, d.inode.ino, &to.name).map_err(|e| nfsstat(&e))
        })();
        let body = t::RENAME3resok { fromdir_wcc: self.wcc_of_raw(&from.dir), todir_wcc: self.wcc_of_raw(&to.dir) };
        Ok(match out {
            Ok(()) => ProcReply::nfs(&Nfs3Result::<_, Void>::Ok(body)),
            Err(s) => ProcReply::nfs(&Nfs3Result::<Void, _>::Err((s, body))),
        })
    }

    fn link(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let file = a.fh().map_err(garbage)?;
        let op = a.dirop().map_err(garbage)?;
        let out = (|| {
            let f = self.resolve(&file)?;
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            if f.fh.export != d.fh.export {
                return Err(nfsstat3::NFS3ERR_XDEV);
            }
            self.st.ns.link(&d.caller, f.inode.ino, d.inode.ino, &op.name).map_err(|e| nfsstat(&e))
        })();
        let res: t::LINK3res = match out {
            Ok(n) => Nfs3Result::Ok(t::LINK3resok {
                file_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                linkdir_wcc: self.wcc_of_raw(&op.dir),
            }),
            Err(s) => Nfs3Result::Err((
                s,
                t::LINK3resfail { file_attributes: self.attrs_of_raw(&file), linkdir_wcc: self.wcc_of_raw(&op.dir) },
            )),
        };
        Ok(ProcReply::nfs(&res))
    }

    /// Entries of `d` after `cookie`, `.` and `..` first, as many as
    /// `fits` accepts (called with each entry's name; returns false when
    /// full), and eof. With `plus`, each entry's inode is read by id (a
    /// point read) for its attributes and handle; plain READDIR reads none.
    fn dir_entries(
        &self,
        d: &Resolved<'_>,
        cookie: u64,
        max_entries: usize,
        plus: bool,
        mut fits: impl FnMut(&[u8]) -> bool,
    ) -> Res<(Vec<Listed>, bool)> {
        let ns = &self.st.ns;
        let mut out = Vec::new();
        if d.inode.kind != Kind::Dir {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        // Permission is the namespace's; ask it even for `.`-only pages.
        let (page, ns_eof) =
            ns.readdir(&d.caller, d.inode.ino, cookie.max(DOTDOT_COOKIE), max_entries).map_err(|e| nfsstat(&e))?;
        // The export root is its own parent, as LOOKUP ".." answers.
        let parent = if d.inode.ino == d.fh.export || d.inode.ino == ROOT_INO { d.inode.ino } else { d.inode.parent };
        let dots = [(&b"."[..], DOT_COOKIE, d.inode.ino), (&b".."[..], DOTDOT_COOKIE, parent)];
        let rest = page.iter().map(|e| (&e.name[..], e.cookie, e.ino));
        for (name, c, ino) in dots.into_iter().filter(|&(_, c, _)| cookie < c).chain(rest) {
            if !fits(name) {
                return Ok((out, false));
            }
            let inode = if plus {
                match ns.getattr(ino) {
                    Ok(n) => Some(n),
                    // Gone since the scan: skip it, as a listing taken a
                    // moment later would.
                    Err(_) => continue,
                }
            } else {
                None
            };
            out.push(Listed { name: name.to_vec(), cookie: c, ino, inode });
        }
        Ok((out, ns_eof))
    }

    fn readdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let cookie = a.u64().map_err(garbage)?;
        let _verf = a.verf().map_err(garbage)?;
        let count = a.u32().map_err(garbage)? as usize;
        let out = (|| {
            let d = self.resolve(&fh)?;
            let budget = count.min(IO_SIZE_BYTES as usize).saturating_sub(READDIR_OVERHEAD_BYTES);
            let mut used = 0usize;
            let fits = |name: &[u8]| {
                let size = 4 + 8 + 4 + name.len().div_ceil(4) * 4 + 8;
                if used + size > budget {
                    return false;
                }
                used += size;
                true
            };
            let (entries, eof) = self.dir_entries(&d, cookie, budget / 24 + 1, false, fits)?;
            if entries.is_empty() && !eof {
                return Err(nfsstat3::NFS3ERR_TOOSMALL);
            }
            Ok((d, entries, eof))
        })();
        let res: t::READDIR3res = match out {
            Ok((d, entries, eof)) => Nfs3Result::Ok(t::READDIR3resok {
                dir_attributes: Nfs3Option::Some(fattr(self.fsid(), &d.inode)),
                cookieverf: cookieverf3::default(),
                reply: t::dirlist3 {
                    entries: List(
                        entries
                            .into_iter()
                            .map(|e| entry3 { fileid: e.ino, name: filename3::from(e.name), cookie: e.cookie })
                            .collect(),
                    ),
                    eof,
                },
            }),
            Err(s) => Nfs3Result::Err((s, t::READDIR3resfail { dir_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn readdirplus(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let cookie = a.u64().map_err(garbage)?;
        let _verf = a.verf().map_err(garbage)?;
        let dircount = a.u32().map_err(garbage)? as usize;
        let maxcount = a.u32().map_err(garbage)? as usize;
        let out = (|| {
            let d = self.resolve(&fh)?;
            let budget = maxcount.min(IO_SIZE_BYTES as usize).saturating_sub(READDIR_OVERHEAD_BYTES);
            let (mut used, mut dir_used) = (0usize, 0usize);
            let fits = |name: &[u8]| {
                let base = 8 + 4 + name.len().div_ceil(4) * 4 + 8;
                let size = 4 + base + PLUS_EXTRA_BYTES;
                if used + size > budget || (dircount > 0 && dir_used + base > dircount) {
                    return false;
                }
                used += size;
                dir_used += base;
                true
            };
            let (entries, eof) = self.dir_entries(&d, cookie, budget / 150 + 1, true, fits)?;
            if entries.is_empty() && !eof {
                return Err(nfsstat3::NFS3ERR_TOOSMALL);
            }
            Ok((d, entries, eof))
        })();
        let res: t::READDIRPLUS3res = match out {
            Ok((d, entries, eof)) => {
                let export = d.fh.export;
                Nfs3Result::Ok(t::READDIRPLUS3resok {
                    dir_attributes: Nfs3Option::Some(fattr(self.fsid(), &d.inode)),
                    cookieverf: cookieverf3::default(),
                    reply: t::dirlistplus3 {
                        entries: List(
                            entries
                                .into_iter()
                                // `plus` listings carry every inode.
                                .filter_map(|e| {
                                    let n = e.inode?;
                                    Some(entryplus3 {
                                        fileid: e.ino,
                                        name: filename3::from(e.name),
                                        cookie: e.cookie,
                                        name_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                                        name_handle: Nfs3Option::Some(self.handle_for(export, &n)),
                                    })
                                })
                                .collect(),
                        ),
                        eof,
                    },
                })
            }
            Err(s) => Nfs3Result::Err((s, t::READDIRPLUS3resfail { dir_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn fsstat(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            let s = self.st.ns.fs_stats().map_err(|e| nfsstat(&e))?;
            Ok((r.inode, s))
        })();
        let res: t::FSSTAT3res = match out {
            Ok((n, s)) => Nfs3Result::Ok(t::FSSTAT3resok {
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                tbytes: s.total_bytes,
                fbytes: s.free_bytes,
                abytes: s.avail_bytes,
                tfiles: s.total_files,
                ffiles: s.free_files,
                afiles: s.avail_files,
                invarsec: 0,
            }),
            Err(s) => Nfs3Result::Err((s, t::FSSTAT3resfail { obj_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn fsinfo(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let res: t::FSINFO3res = match self.resolve(&fh) {
            Ok(r) => Nfs3Result::Ok(t::FSINFO3resok {
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &r.inode)),
                rtmax: IO_SIZE_BYTES,
                rtpref: IO_SIZE_BYTES,
                rtmult: IO_MULT_BYTES,
                wtmax: IO_SIZE_BYTES,
                wtpref: IO_SIZE_BYTES,
                wtmult: IO_MULT_BYTES,
                dtpref: DIR_PREF_BYTES,
                maxfilesize: FILE_SIZE_BYTES_MAX,
                time_delta: nfstime3 { seconds: 0, nseconds: 1 },
                properties: t::FSF3_LINK | t::FSF3_SYMLINK | t::FSF3_HOMOGENEOUS | t::FSF3_CANSETTIME,
            }),
            Err(s) => Nfs3Result::Err((s, t::FSINFO3resfail { obj_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn pathconf(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let res: t::PATHCONF3res = match self.resolve(&fh) {
            Ok(r) => Nfs3Result::Ok(t::PATHCONF3resok {
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &r.inode)),
                linkmax: LINK_COUNT_MAX,
                name_max: NAME_LEN_BYTES_MAX as u32,
                no_trunc: true,
                chown_restricted: true,
                case_insensitive: false,
                case_preserving: true,
            }),
            Err(s) => Nfs3Result::Err((s, t::PATHCONF3resfail { obj_attributes: self.attrs_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
    }

    fn commit(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh().map_err(garbage)?;
        let _offset = a.u64().map_err(garbage)?;
        let _count = a.u32().map_err(garbage)?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            // One barrier makes everything written so far durable: the
            // range asked for and more.
            self.st.ns.sync().map_err(|e| nfsstat(&e))?;
            Ok(r.inode.ino)
        })();
        let res: t::COMMIT3res = match out {
            Ok(ino) => Nfs3Result::Ok(t::COMMIT3resok { file_wcc: self.wcc(ino), verf: self.st.write_verifier() }),
            Err(s) => Nfs3Result::Err((s, t::COMMIT3resfail { file_wcc: self.wcc_of_raw(&fh) })),
        };
        Ok(ProcReply::nfs(&res))
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
