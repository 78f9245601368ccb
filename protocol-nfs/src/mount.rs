//! MOUNT v3 (RFC 1813 appendix I) and a minimal portmapper (RFC 1833
//! version 2: NULL, GETPORT, DUMP) on the NFS port.
//!
//! MNT matches exports on whole path components (`/data` never matches
//! `/database`) and checks the client allow-list. UMNT and UMNTALL return
//! void: no status word (a peer's extra word broke strict clients). No
//! mount table is kept, so DUMP is empty; nothing here can block MNT.

use std::net::IpAddr;

use namespace::{Caller, Kind, ROOT_INO};
use nfs3_types::mount::{dirpath, export_node, fhandle3, mountres3, mountres3_ok, mountstat3, name};
use nfs3_types::portmap::{mapping, IPPROTO_TCP};
use nfs3_types::xdr_codec::{List, Opaque};

use crate::args::Args;
use crate::exports::canonical_path;
use crate::handle::FileHandle;
use crate::reply::{ProcReply, Status};
use crate::rpc::AcceptStat;
use crate::state::NfsState;

/// MOUNT's program number.
pub const MOUNT_PROGRAM: u32 = 100_005;
/// NFS's program number.
pub const NFS_PROGRAM: u32 = 100_003;
/// Portmapper's program number.
pub const PORTMAP_PROGRAM: u32 = 100_000;
/// AUTH_SYS, the flavour MNT advertises.
const AUTH_SYS: u32 = 1;

/// A MOUNT v3 procedure, numbered as on the wire (RFC 1813 appendix I).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountProc {
    /// 0: does nothing.
    Null = 0,
    /// 1: a path → the root handle of a mount.
    Mnt = 1,
    /// 2: the mount list (always empty here).
    Dump = 2,
    /// 3: forgets one mount (void: nothing is kept).
    Umnt = 3,
    /// 4: forgets a client's mounts (void).
    Umntall = 4,
    /// 5: the export list.
    Export = 5,
}

impl MountProc {
    /// Every procedure, in wire-number order (`ALL[n]` is number `n`).
    pub const ALL: [MountProc; 6] =
        [MountProc::Null, MountProc::Mnt, MountProc::Dump, MountProc::Umnt, MountProc::Umntall, MountProc::Export];

    /// The procedure numbered `n`, or `None` (answered `PROC_UNAVAIL`).
    pub fn from_u32(n: u32) -> Option<MountProc> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// The log field and metrics `proc` label, prefixed to tell it from
    /// the NFS procedures.
    pub fn name(self) -> &'static str {
        match self {
            MountProc::Null => "MOUNT_NULL",
            MountProc::Mnt => "MOUNT_MNT",
            MountProc::Dump => "MOUNT_DUMP",
            MountProc::Umnt => "MOUNT_UMNT",
            MountProc::Umntall => "MOUNT_UMNTALL",
            MountProc::Export => "MOUNT_EXPORT",
        }
    }
}

/// Serves MOUNT procedure `proc_`.
pub fn mount_call(st: &NfsState, client: IpAddr, proc_: u32, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
    let Some(p) = MountProc::from_u32(proc_) else {
        return Err(AcceptStat::ProcUnavail);
    };
    match p {
        MountProc::Null => Ok(ProcReply::void()),
        MountProc::Mnt => {
            let path = a.mount_path()?;
            Ok(ProcReply::mount(&mnt(st, client, &path)))
        }
        // An empty mount list.
        MountProc::Dump => Ok(ProcReply::plain(&List::<nfs3_types::mount::mountbody<'_, '_>>(Vec::new()))),
        MountProc::Umnt => {
            a.mount_path()?;
            Ok(ProcReply::void())
        }
        MountProc::Umntall => Ok(ProcReply::void()),
        MountProc::Export => Ok(ProcReply::plain(&exports(st))),
    }
}

/// Most path components below a bucket that MNT walks (the namespace's
/// directory depth limit is larger; mounting deeper is not useful).
const MOUNT_SUBDIR_DEPTH_MAX: usize = 64;

/// Splits a MNT path into its export (`/` or `/<bucket>`) and the
/// directories below it: `/data/imagenet/train` mounts `train` with the
/// options of export `/data`, as Linux nfsd mounts below an export.
fn split_mount_path(path: &[u8]) -> Option<(Vec<u8>, Vec<&[u8]>)> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    if comps.iter().any(|c| *c == b"." || *c == b"..") || comps.len() > MOUNT_SUBDIR_DEPTH_MAX + 1 {
        return None;
    }
    match comps.split_first() {
        None => Some((b"/".to_vec(), Vec::new())),
        Some((bucket, rest)) => Some((canonical_path(&[b"/", *bucket].concat())?, rest.to_vec())),
    }
}

fn mnt(st: &NfsState, client: IpAddr, path: &[u8]) -> mountres3<'static> {
    let Some((canon, below)) = split_mount_path(path) else {
        return mountres3::Err(mountstat3::MNT3ERR_NOENT);
    };
    let root = if canon == b"/" { st.ns.getattr(ROOT_INO) } else { st.ns.bucket(&canon[1..]) };
    let root = match root {
        Ok(r) => r,
        Err(_) => return mountres3::Err(mountstat3::MNT3ERR_NOENT),
    };
    if canon != b"/" {
        st.note_bucket(root.ino, &canon[1..]);
    }
    if !st.cfg.exports.options(&canon).allows(client) {
        tracing::info!(%client, path = %String::from_utf8_lossy(&canon), "MNT refused by the client allow-list");
        return mountres3::Err(mountstat3::MNT3ERR_ACCES);
    }
    // A directory below the export: walked as root (the allow-list above
    // is what guards MNT; every later call is checked as its caller).
    let mut dir = root.clone();
    for comp in below {
        dir = match st.ns.lookup(&Caller::root(), dir.ino, comp) {
            Ok(d) if d.kind == Kind::Dir => d,
            Ok(_) => return mountres3::Err(mountstat3::MNT3ERR_NOTDIR),
            Err(_) => return mountres3::Err(mountstat3::MNT3ERR_NOENT),
        };
    }
    let fh = FileHandle { fsid: st.ns.fsid(), export: root.ino, ino: dir.ino, generation: dir.generation };
    mountres3::Ok(mountres3_ok { fhandle: fhandle3(Opaque::owned(st.handles.seal(&fh))), auth_flavors: vec![AUTH_SYS] })
}

fn exports(st: &NfsState) -> List<export_node<'static, 'static>> {
    let mut paths = vec![b"/".to_vec()];
    if let Ok(buckets) = st.ns.list_buckets() {
        paths.extend(buckets.into_iter().map(|(n, _)| [b"/", &n[..]].concat()));
    }
    List(
        paths
            .into_iter()
            .map(|p| {
                let groups =
                    st.cfg.exports.options(&p).clients.iter().map(|c| name(Opaque::owned(c.to_string().into_bytes())));
                export_node { ex_dir: dirpath(Opaque::owned(p.clone())), ex_groups: List(groups.collect()) }
            })
            .collect(),
    )
}

/// Serves portmapper procedure `proc_`: NFS 3 and MOUNT 3 over TCP are
/// on our port; everything else is unregistered (port 0).
pub fn portmap_call(st: &NfsState, proc_: u32, a: &mut Args<'_>) -> Result<ProcReply, AcceptStat> {
    let ours = |prog: u32, vers: u32, prot: u32| {
        prot == IPPROTO_TCP && vers == 3 && (prog == NFS_PROGRAM || prog == MOUNT_PROGRAM)
    };
    match proc_ {
        0 => Ok(ProcReply::void()),
        3 => {
            let g = |a: &mut Args<'_>| a.u32().map_err(AcceptStat::from);
            let (prog, vers, prot, _port) = (g(a)?, g(a)?, g(a)?, g(a)?);
            let port = if ours(prog, vers, prot) { st.port as u32 } else { 0 };
            Ok(ProcReply { status: Status::Void, body: port.to_be_bytes().to_vec() })
        }
        4 => {
            let list = [NFS_PROGRAM, MOUNT_PROGRAM].map(|prog| mapping {
                prog,
                vers: 3,
                prot: IPPROTO_TCP,
                port: st.port as u32,
            });
            Ok(ProcReply::plain(&List(list.to_vec())))
        }
        _ => Err(AcceptStat::ProcUnavail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_procedures_round_trip_and_unknown_ones_are_none() {
        for (n, p) in MountProc::ALL.iter().enumerate() {
            assert_eq!(*p as usize, n);
            assert_eq!(MountProc::from_u32(n as u32), Some(*p));
        }
        assert_eq!(MountProc::from_u32(6), None);
    }
}
