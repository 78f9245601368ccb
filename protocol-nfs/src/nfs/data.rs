//! Data procedures: READ, WRITE and COMMIT on files, READLINK on
//! symlinks.

use namespace::{Kind, Stability};
use nfs3_types::nfs3::{self as t, nfsstat3, stable_how, wcc_data, Nfs3Option};
use nfs3_types::xdr_codec::Opaque;

use super::{answer, fattr, Ctx, IO_SIZE_BYTES};
use crate::args::Args;
use crate::reply::ProcReply;
use crate::rpc::AcceptStat;
use crate::status::nfsstat;

impl Ctx<'_> {
    pub(super) fn readlink(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            if r.inode.kind != Kind::Symlink {
                return Err(nfsstat3::NFS3ERR_INVAL);
            }
            Ok(r.inode)
        })();
        answer(
            out,
            |n| t::READLINK3resok {
                symlink_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                data: t::nfspath3(Opaque::owned(n.target)),
            },
            || t::READLINK3resfail { symlink_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn read(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let offset = a.u64()?;
        let count = a.u32()?.min(IO_SIZE_BYTES);
        let out = (|| {
            let r = self.resolve(&fh)?;
            let (data, eof) =
                self.st.ns.read(&r.caller, r.inode.ino, offset, count as usize).map_err(|e| nfsstat(&e))?;
            Ok((r.inode, data, eof))
        })();
        answer(
            out,
            |(n, data, eof)| t::READ3resok {
                file_attributes: Nfs3Option::Some(fattr(self.fsid(), &n)),
                count: data.len() as u32,
                eof,
                data: Opaque::owned(data),
            },
            || t::READ3resfail { file_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn write(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let offset = a.u64()?;
        let count = a.u32()?;
        let stable = a.u32()?;
        let data = a.write_data()?;
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
        answer(
            out,
            |(n, committed)| t::WRITE3resok {
                file_wcc: wcc_data { before: Nfs3Option::None, after: Nfs3Option::Some(fattr(self.fsid(), &n)) },
                count,
                committed,
                verf: self.st.write_verifier(),
            },
            || t::WRITE3resfail { file_wcc: self.wcc_of_raw(&fh) },
        )
    }

    pub(super) fn commit(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let _offset = a.u64()?;
        let _count = a.u32()?;
        let out = (|| {
            let r = self.resolve(&fh)?;
            // One barrier makes everything written so far durable: the
            // range asked for and more.
            self.st.ns.sync().map_err(|e| nfsstat(&e))?;
            Ok(r.inode.ino)
        })();
        answer(
            out,
            |ino| t::COMMIT3resok { file_wcc: self.wcc(ino), verf: self.st.write_verifier() },
            || t::COMMIT3resfail { file_wcc: self.wcc_of_raw(&fh) },
        )
    }
}
