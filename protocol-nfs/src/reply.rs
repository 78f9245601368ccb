//! A procedure's answer: the packed reply body and the status it reports.
//!
//! Handlers return a [`ProcReply`], so the log line and the metrics take
//! the status from the handler that chose it instead of reading it back
//! out of the packed bytes.

use nfs3_types::mount::{mountres3, mountstat3};
use nfs3_types::nfs3::{nfsstat3, Nfs3Result};
use nfs3_types::xdr_codec::Pack;

/// The status a procedure's reply reports (what [`crate::observe`] logs).
#[derive(Clone, Copy, Debug)]
pub enum Status {
    /// An NFS procedure's leading `nfsstat3` (every one but NULL).
    Nfs(nfsstat3),
    /// MNT's leading `mountstat3`.
    Mount(mountstat3),
    /// A reply with no status word: NULL, UMNT, UMNTALL, DUMP, EXPORT and
    /// the portmapper's.
    Void,
}

/// A procedure's reply body, packed, with the status it carries.
#[derive(Debug)]
pub struct ProcReply {
    /// What the body reports: for `Nfs` and `Mount`, the body's leading
    /// status word.
    pub status: Status,
    /// The packed reply body (the RPC header is added by the server).
    pub body: Vec<u8>,
}

impl ProcReply {
    /// An empty (void) reply.
    pub fn void() -> Self {
        ProcReply { status: Status::Void, body: Vec::new() }
    }

    /// A reply with no status word: `v` packed as is.
    pub fn plain(v: &impl Pack) -> Self {
        ProcReply { status: Status::Void, body: pack(v) }
    }

    /// An NFS procedure's result: its status and its packed body.
    pub fn nfs<T: Pack, E: Pack>(res: &Nfs3Result<T, E>) -> Self {
        let status = match res {
            Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
            Nfs3Result::Err((s, _)) => *s,
        };
        ProcReply { status: Status::Nfs(status), body: pack(res) }
    }

    /// MNT's result: its status and its packed body.
    pub fn mount(res: &mountres3<'_>) -> Self {
        let status = match res {
            mountres3::Ok(_) => mountstat3::MNT3_OK,
            mountres3::Err(s) => *s,
        };
        ProcReply { status: Status::Mount(status), body: pack(res) }
    }
}

/// Packs a reply body (`nfs3_types`' encoder) into a fresh buffer.
pub fn pack(v: &impl Pack) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.packed_size());
    v.pack(&mut out).expect("packing into a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use nfs3_types::xdr_codec::Void;

    use super::*;

    fn leading_word(body: &[u8]) -> u32 {
        u32::from_be_bytes(body[..4].try_into().expect("4 bytes"))
    }

    /// The status a reply carries is the one its body starts with, as
    /// clients read it.
    #[test]
    fn the_status_is_the_bodys_leading_word() {
        let ok = ProcReply::nfs(&Nfs3Result::<u32, Void>::Ok(9));
        assert!(matches!(ok.status, Status::Nfs(nfsstat3::NFS3_OK)));
        assert_eq!(ok.body, [0, 0, 0, 0, 0, 0, 0, 9]);
        let err = ProcReply::nfs(&Nfs3Result::<Void, u32>::Err((nfsstat3::NFS3ERR_JUKEBOX, 1)));
        assert!(matches!(err.status, Status::Nfs(nfsstat3::NFS3ERR_JUKEBOX)));
        assert_eq!(leading_word(&err.body), 10008);
        let mnt = ProcReply::mount(&mountres3::Err(mountstat3::MNT3ERR_ACCES));
        assert!(matches!(mnt.status, Status::Mount(mountstat3::MNT3ERR_ACCES)));
        assert_eq!(leading_word(&mnt.body), 13);
        assert!(matches!(ProcReply::void().status, Status::Void));
    }
}
