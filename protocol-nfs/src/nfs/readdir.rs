//! Directory listings: READDIR and READDIRPLUS.
//!
//! Both emit `.` (cookie 1) and `..` (cookie 2), then the namespace's
//! per-directory monotonic cookies (≥ 3) from an O(log n) seek. The cookie
//! verifier is constant (0) and never checked, so no listing ever gets
//! `BAD_COOKIE`. Replies fill to `count` (READDIR) or `dircount` and
//! `maxcount` (READDIRPLUS) and answer `TOOSMALL` when not one entry fits.

use namespace::{Inode, Kind, ROOT_INO};
use nfs3_types::nfs3::{self as t, cookieverf3, entry3, entryplus3, filename3, nfsstat3, Nfs3Option};
use nfs3_types::xdr_codec::List;

use super::{answer, fattr, Ctx, Res, Resolved, IO_SIZE_BYTES};
use crate::args::Args;
use crate::reply::ProcReply;
use crate::rpc::AcceptStat;
use crate::status::nfsstat;

/// Fixed bytes of a READDIR reply besides its entries: status, post_op_attr,
/// cookie verifier, list terminator, eof.
const READDIR_OVERHEAD_BYTES: usize = 4 + 88 + 8 + 4 + 4;
/// Bytes of a READDIRPLUS entry besides `entry3`: attributes and handle.
const PLUS_EXTRA_BYTES: usize = 88 + 4 + 4 + 32;
/// Cookies of the synthesized `.` and `..` entries; the namespace's own
/// cookies start above them.
const DOT_COOKIE: u64 = 1;
const DOTDOT_COOKIE: u64 = 2;

/// A directory entry ready for a reply.
struct Listed {
    name: Vec<u8>,
    cookie: u64,
    ino: u64,
    /// Read only for READDIRPLUS, which returns attributes and a handle.
    inode: Option<Inode>,
}

impl Ctx<'_> {
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

    pub(super) fn readdir(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let cookie = a.u64()?;
        let _verf = a.verf()?;
        let count = a.u32()? as usize;
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
        answer(
            out,
            |(d, entries, eof)| t::READDIR3resok {
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
            },
            || t::READDIR3resfail { dir_attributes: self.attrs_of_raw(&fh) },
        )
    }

    pub(super) fn readdirplus(&self, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
        let fh = a.fh()?;
        let cookie = a.u64()?;
        let _verf = a.verf()?;
        let dircount = a.u32()? as usize;
        let maxcount = a.u32()? as usize;
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
        answer(
            out,
            |(d, entries, eof)| {
                let export = d.fh.export;
                t::READDIRPLUS3resok {
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
                }
            },
            || t::READDIRPLUS3resfail { dir_attributes: self.attrs_of_raw(&fh) },
        )
    }
}
