//! The RPC call header (RFC 5531 §9) and the replies to calls that cannot
//! be dispatched. Credentials are bounded as RFC 5531 and Linux do: an
//! opaque_auth body of at most 400 bytes, a machine name of at most 255
//! bytes, at most 16 supplementary groups.

use super::xdr::{XdrError, XdrReader, XdrWriter};

/// Longest opaque_auth body (RFC 5531).
pub const AUTH_BODY_BYTES_MAX: usize = 400;
/// Longest AUTH_SYS machine name.
pub const MACHINE_NAME_BYTES_MAX: usize = 255;
/// Most AUTH_SYS supplementary groups.
pub const AUTH_SYS_GIDS_MAX: usize = 16;

const MSG_CALL: u32 = 0;
const MSG_REPLY: u32 = 1;
const RPC_VERSION: u32 = 2;
const AUTH_NONE: u32 = 0;
const AUTH_SYS: u32 = 1;
/// Record-marking bit of a record's last fragment.
const LAST_FRAGMENT_BIT: u32 = 0x8000_0000;

/// The caller's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// AUTH_NONE.
    None,
    /// AUTH_SYS: client-asserted ids.
    Sys {
        /// Machine name.
        machine: Vec<u8>,
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Supplementary groups.
        gids: Vec<u32>,
    },
}

/// A decoded call header; the procedure's arguments start at `args_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Transaction id.
    pub xid: u32,
    /// Program.
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure.
    pub proc_: u32,
    /// Credential.
    pub cred: Credential,
    /// Offset of the arguments in the record.
    pub args_offset: usize,
}

/// RFC 5531 `auth_stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStat {
    /// Bad credential (seal broken).
    BadCred = 1,
    /// The flavour is not accepted.
    TooWeak = 5,
}

/// RFC 5531 `accept_stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStat {
    /// Executed.
    Success = 0,
    /// Program not served.
    ProgUnavail = 1,
    /// Version not served.
    ProgMismatch = 2,
    /// Procedure unknown.
    ProcUnavail = 3,
    /// Arguments could not be decoded.
    GarbageArgs = 4,
    /// Server failure.
    SystemErr = 5,
}

/// Why a call cannot be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Not even an xid and message type: close the connection.
    #[error("unparseable record: {0}")]
    Unparseable(XdrError),
    /// A reply or other non-call message: close the connection.
    #[error("not a call")]
    NotACall,
    /// RPC version other than 2: answer RPC_MISMATCH.
    #[error("RPC version mismatch")]
    RpcMismatch {
        /// The call's xid.
        xid: u32,
    },
    /// Credential refused: answer AUTH_ERROR.
    #[error("authentication error")]
    Auth {
        /// The call's xid.
        xid: u32,
        /// Why.
        stat: AuthStat,
    },
}

/// Decodes the call header of a record.
pub fn decode_call(record: &[u8]) -> Result<Call, CallError> {
    let mut r = XdrReader::new(record);
    let xid = r.u32().map_err(CallError::Unparseable)?;
    if r.u32().map_err(CallError::Unparseable)? != MSG_CALL {
        return Err(CallError::NotACall);
    }
    if r.u32().map_err(CallError::Unparseable)? != RPC_VERSION {
        return Err(CallError::RpcMismatch { xid });
    }
    let bad = |_| CallError::Auth { xid, stat: AuthStat::BadCred };
    let prog = r.u32().map_err(bad)?;
    let vers = r.u32().map_err(bad)?;
    let proc_ = r.u32().map_err(bad)?;
    let flavor = r.u32().map_err(bad)?;
    let body = r.opaque(AUTH_BODY_BYTES_MAX).map_err(bad)?;
    let cred = match flavor {
        AUTH_NONE => Credential::None,
        AUTH_SYS => decode_auth_sys(body).map_err(bad)?,
        _ => return Err(CallError::Auth { xid, stat: AuthStat::TooWeak }),
    };
    // The verifier: any flavour, bounded like a credential.
    r.u32().map_err(bad)?;
    r.opaque(AUTH_BODY_BYTES_MAX).map_err(bad)?;
    Ok(Call { xid, prog, vers, proc_, cred, args_offset: r.position() })
}

fn decode_auth_sys(body: &[u8]) -> Result<Credential, XdrError> {
    let mut r = XdrReader::new(body);
    let _stamp = r.u32()?;
    let machine = r.opaque(MACHINE_NAME_BYTES_MAX)?.to_vec();
    let uid = r.u32()?;
    let gid = r.u32()?;
    let gids = r.u32_array(AUTH_SYS_GIDS_MAX)?;
    Ok(Credential::Sys { machine, uid, gid, gids })
}

/// Builds reply messages.
pub struct Reply;

impl Reply {
    /// An accepted reply with `stat`, followed by `body` (the procedure's
    /// results for SUCCESS; for PROG_MISMATCH the low and high versions).
    pub fn accepted(xid: u32, stat: AcceptStat, body: &[u8]) -> Vec<u8> {
        let mut w = XdrWriter::default();
        w.u32(xid).u32(MSG_REPLY).u32(0).u32(AUTH_NONE).opaque(&[]).u32(stat as u32);
        w.buf.extend_from_slice(body);
        w.buf
    }
    /// [`Reply::accepted`] already framed as a one-fragment record, built in
    /// one buffer: a READ reply's megabyte is copied once, not twice.
    pub fn accepted_framed(xid: u32, stat: AcceptStat, body: &[u8]) -> Vec<u8> {
        const HEADER_BYTES: usize = 24;
        let len = u32::try_from(HEADER_BYTES + body.len())
            .ok()
            .filter(|&l| l < LAST_FRAGMENT_BIT)
            .expect("replies are bounded far below 2 GiB");
        let mut w = XdrWriter { buf: Vec::with_capacity(4 + len as usize) };
        w.u32(LAST_FRAGMENT_BIT | len);
        w.u32(xid).u32(MSG_REPLY).u32(0).u32(AUTH_NONE).opaque(&[]).u32(stat as u32);
        w.buf.extend_from_slice(body);
        w.buf
    }
    /// PROG_MISMATCH with the versions served.
    pub fn prog_mismatch(xid: u32, low: u32, high: u32) -> Vec<u8> {
        let mut v = XdrWriter::default();
        v.u32(low).u32(high);
        Self::accepted(xid, AcceptStat::ProgMismatch, &v.buf)
    }
    /// The denied reply for a [`CallError`] that has one; `None` means
    /// close the connection.
    pub fn for_error(e: &CallError) -> Option<Vec<u8>> {
        let mut w = XdrWriter::default();
        match *e {
            CallError::Unparseable(_) | CallError::NotACall => return None,
            CallError::RpcMismatch { xid } => {
                w.u32(xid).u32(MSG_REPLY).u32(1).u32(0).u32(RPC_VERSION).u32(RPC_VERSION);
            }
            CallError::Auth { xid, stat } => {
                w.u32(xid).u32(MSG_REPLY).u32(1).u32(1).u32(stat as u32);
            }
        }
        Some(w.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(rpcvers: u32, flavor: u32, cred: &[u8]) -> Vec<u8> {
        let mut w = XdrWriter::default();
        w.u32(0x1234).u32(MSG_CALL).u32(rpcvers).u32(100003).u32(3).u32(1).u32(flavor).opaque(cred).u32(0).opaque(&[]);
        w.u32(0xABCD); // first argument word
        w.buf
    }

    fn auth_sys(machine: &[u8], gids: &[u32]) -> Vec<u8> {
        let mut w = XdrWriter::default();
        w.u32(7).opaque(machine).u32(1000).u32(100).u32(gids.len() as u32);
        for g in gids {
            w.u32(*g);
        }
        w.buf
    }

    #[test]
    fn decodes_auth_sys_calls() {
        let rec = call(2, AUTH_SYS, &auth_sys(b"gpu-host-1", &[10, 20]));
        let c = decode_call(&rec).unwrap();
        assert_eq!((c.xid, c.prog, c.vers, c.proc_), (0x1234, 100003, 3, 1));
        assert_eq!(
            c.cred,
            Credential::Sys { machine: b"gpu-host-1".to_vec(), uid: 1000, gid: 100, gids: vec![10, 20] }
        );
        assert_eq!(&rec[c.args_offset..], &0xABCDu32.to_be_bytes());
        assert_eq!(decode_call(&call(2, AUTH_NONE, &[])).unwrap().cred, Credential::None);
    }

    #[test]
    fn absurd_credentials_are_refused_without_allocating() {
        let too_many = auth_sys(b"h", &[0; 17]);
        assert_eq!(
            decode_call(&call(2, AUTH_SYS, &too_many)),
            Err(CallError::Auth { xid: 0x1234, stat: AuthStat::BadCred })
        );
        // A 60-byte credential that claims 0xFFFFFFFF groups.
        let mut w = XdrWriter::default();
        w.u32(7).opaque(b"h").u32(0).u32(0).u32(u32::MAX);
        assert!(matches!(decode_call(&call(2, AUTH_SYS, &w.buf)), Err(CallError::Auth { .. })));
        let long_name = auth_sys(&[b'x'; 256], &[]);
        assert!(matches!(decode_call(&call(2, AUTH_SYS, &long_name)), Err(CallError::Auth { .. })));
        assert_eq!(decode_call(&call(2, 6, &[])), Err(CallError::Auth { xid: 0x1234, stat: AuthStat::TooWeak }));
    }

    #[test]
    fn bad_headers_get_the_right_answer() {
        assert_eq!(decode_call(&call(3, AUTH_NONE, &[])), Err(CallError::RpcMismatch { xid: 0x1234 }));
        assert!(matches!(decode_call(&[0, 0]), Err(CallError::Unparseable(_))));
        let mut reply = call(2, AUTH_NONE, &[]);
        reply[7] = 1; // msg_type REPLY
        assert_eq!(decode_call(&reply), Err(CallError::NotACall));
        let denied = Reply::for_error(&CallError::RpcMismatch { xid: 9 }).unwrap();
        assert_eq!(denied, [9u32, 1, 1, 0, 2, 2].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<_>>());
        assert!(Reply::for_error(&CallError::NotACall).is_none());
        let ok = Reply::accepted(5, AcceptStat::Success, &[0, 0, 0, 1]);
        assert_eq!(ok, [5u32, 1, 0, 0, 0, 0, 1].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<_>>());
        let framed = Reply::accepted_framed(5, AcceptStat::Success, &[0, 0, 0, 1]);
        assert_eq!(framed, crate::rpc::record::frame_reply(&ok), "same bytes as accepted + frame_reply");
    }
}
