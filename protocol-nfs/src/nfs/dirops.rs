//! Directory operations: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
//! RMDIR, RENAME and LINK.
//!
//! Handles minted here (LOOKUP, CREATE/MKDIR/SYMLINK) go through
//! `Ctx::handle_for`, so crossing from `/` into a bucket hands out the
//! bucket's export; RENAME and LINK across exports are `XDEV`.

use namespace::{Caller, CreateMode, Inode, SetAttr};
use nfs3_types::nfs3::{self as t, nfsstat3, Nfs3Option};

use super::{answer, fattr, to_setattr, Ctx, Res};
use crate::args::{Args, CreateHow, MknodType, Sattr};
use crate::reply::ProcReply;
use crate::rpc::AcceptStat;
use crate::status::nfsstat;

impl Ctx<'_> {
    pub(super) fn lookup(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            // The export root's parent is itself: a client cannot walk out.
            let name: &[u8] = if op.name == b".." && d.inode.ino == d.fh.export { b"." } else { &op.name };
            // Names are validated by the namespace (INVAL, NAMETOOLONG).
            let child = self.st.ns.lookup(&d.caller, d.inode.ino, name).map_err(|e| nfsstat(&e))?;
            Ok((d, child))
        })();
        answer(
            out,
            |(d, child)| t::LOOKUP3resok {
                object: self.handle_for(d.fh.export, &child),
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &child)),
                dir_attributes: Nfs3Option::Some(fattr(self.fsid(), &d.inode)),
            },
            || t::LOOKUP3resfail { dir_attributes: self.attrs_of_raw(&op.dir) },
        )
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

    /// The reply of CREATE, MKDIR, SYMLINK and MKNOD (the four share one
    /// shape): from `out` = (export, directory inode, new inode), the new
    /// handle and attributes with the directory's `wcc_data`; on error
    /// only the `wcc_data` of the directory handle `dir_raw`.
    fn made(&self, dir_raw: &[u8], out: Res<(u64, u64, Inode)>) -> Result<ProcReply, AcceptStat> {
        answer(
            out,
            |(export, dir, n)| t::CREATE3resok {
                obj: Nfs3Option::Some(self.handle_for(export, &n)),
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                dir_wcc: self.wcc(dir),
            },
            || t::CREATE3resfail { dir_wcc: self.wcc_of_raw(dir_raw) },
        )
    }

    pub(super) fn create(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
        let how = a.create_how()?;
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
        self.made(&op.dir, out)
    }

    pub(super) fn mkdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
        let s = a.sattr()?;
        let out = (|| {
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            let n =
                self.st.ns.mkdir(&d.caller, d.inode.ino, &op.name, s.mode.unwrap_or(0o755)).map_err(|e| nfsstat(&e))?;
            let n = self.apply_rest(&d.caller, n, &s)?;
            Ok((d.fh.export, d.inode.ino, n))
        })();
        self.made(&op.dir, out)
    }

    pub(super) fn symlink(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
        let s = a.sattr()?;
        let target = a.symlink_target()?;
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
        self.made(&op.dir, out)
    }

    pub(super) fn mknod(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
        let kind = a.mknod()?;
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
        self.made(&op.dir, out)
    }

    /// REMOVE (`dir_op` false) or RMDIR (true).
    fn unlink(&self, a: &mut Args<'_>, dir_op: bool) -> Result<ProcReply, AcceptStat> {
        let op = a.dirop()?;
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
        answer(out, |()| self.wcc_of_raw(&op.dir), || self.wcc_of_raw(&op.dir))
    }

    pub(super) fn remove(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        self.unlink(a, false)
    }

    pub(super) fn rmdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        self.unlink(a, true)
    }

    pub(super) fn rename(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let from = a.dirop()?;
        let to = a.dirop()?;
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
        // Ok and fail bodies have the same shape: both directories' wcc_data.
        let wccs = || t::RENAME3resok { fromdir_wcc: self.wcc_of_raw(&from.dir), todir_wcc: self.wcc_of_raw(&to.dir) };
        answer(out, |()| wccs(), wccs)
    }

    pub(super) fn link(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let file = a.fh()?;
        let op = a.dirop()?;
        let out = (|| {
            let f = self.resolve(&file)?;
            let d = self.resolve(&op.dir)?;
            self.writable(&d)?;
            if f.fh.export != d.fh.export {
                return Err(nfsstat3::NFS3ERR_XDEV);
            }
            self.st.ns.link(&d.caller, f.inode.ino, d.inode.ino, &op.name).map_err(|e| nfsstat(&e))
        })();
        answer(
            out,
            |n| t::LINK3resok {
                file_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                linkdir_wcc: self.wcc_of_raw(&op.dir),
            },
            || t::LINK3resfail { file_attributes: self.attrs_of_raw(&file), linkdir_wcc: self.wcc_of_raw(&op.dir) },
        )
    }
}
