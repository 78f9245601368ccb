//! Attribute procedures: GETATTR, SETATTR, ACCESS, FSSTAT, FSINFO and
//! PATHCONF.

use namespace::limits::{FILE_SIZE_BYTES_MAX, LINK_COUNT_MAX, NAME_LEN_BYTES_MAX};
use namespace::Kind;
use nfs3_types::nfs3::{self as t, nfstime3, wcc_data, Nfs3Option};
use nfs3_types::xdr_codec::Void;

use super::{answer, fattr, nanos, to_setattr, Ctx, DIR_PREF_BYTES, IO_MULT_BYTES, IO_SIZE_BYTES};
use crate::args::Args;
use crate::reply::ProcReply;
use crate::rpc::AcceptStat;
use crate::status::nfsstat;

impl Ctx<'_> {
    pub(super) fn getattr(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        answer(self.resolve(&fh), |r| t::GETATTR3resok { obj_attributes: fattr(self.fsid(), &r.inode) }, || Void)
    }

    pub(super) fn setattr(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let sattr = a.sattr()?;
        let guard = a.guard()?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            self.writable(&r)?;
            self.st.ns.setattr(&r.caller, r.inode.ino, &to_setattr(&sattr), guard.map(nanos)).map_err(|e| nfsstat(&e))
        })();
        answer(
            out,
            |n| t::SETATTR3resok {
                obj_wcc: wcc_data { before: Nfs3Option::None, after: Nfs3Option::Some(fattr(self.fsid(), &n)) },
            },
            || t::SETATTR3resfail { obj_wcc: self.wcc_of_raw(&fh) },
        )
    }

    pub(super) fn access(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        use namespace::access::{granted, R, W, X};
        use t::{ACCESS3_DELETE, ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ};
        let fh = a.fh()?;
        let want = a.u32()?;
        answer(
            self.resolve(&fh),
            |r| {
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
                t::ACCESS3resok { obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &r.inode)), access: bits & want }
            },
            || t::ACCESS3resfail { obj_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn fsstat(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            let s = self.st.ns.fs_stats().map_err(|e| nfsstat(&e))?;
            Ok((r.inode, s))
        })();
        answer(
            out,
            |(n, s)| t::FSSTAT3resok {
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                tbytes: s.total_bytes,
                fbytes: s.free_bytes,
                abytes: s.avail_bytes,
                tfiles: s.total_files,
                ffiles: s.free_files,
                afiles: s.avail_files,
                invarsec: 0,
            },
            || t::FSSTAT3resfail { obj_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn fsinfo(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        answer(
            self.resolve(&fh),
            |r| t::FSINFO3resok {
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
            },
            || t::FSINFO3resfail { obj_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn pathconf(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        answer(
            self.resolve(&fh),
            |r| t::PATHCONF3resok {
                obj_attributes: Nfs3Option::Some(fattr(self.fsid(), &r.inode)),
                linkmax: LINK_COUNT_MAX,
                name_max: NAME_LEN_BYTES_MAX as u32,
                no_trunc: true,
                chown_restricted: true,
                case_insensitive: false,
                case_preserving: true,
            },
            || t::PATHCONF3resfail { obj_attributes: self.attrs_of_raw(&fh) },
        )
    }
}
