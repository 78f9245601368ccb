//! Observation of NFS, MOUNT and portmap calls: one log line per call (the
//! client address and xid identify it), per-procedure metrics, and the gauge
//! of open connections.
//!
//! Metric labels form closed sets: procedure names from fixed tables and
//! status names from RFC 1813 / RFC 5531, never anything a client sends.

use std::net::SocketAddr;
use std::time::Duration;

use crate::mount::{MOUNT_PROGRAM, NFS_PROGRAM, PORTMAP_PROGRAM};
use crate::nfs::proc_name;
use crate::rpc::AcceptStat;

/// The label of procedure `proc_` of program `prog`: NFS procedures by
/// their RFC 1813 names, MOUNT and portmap ones prefixed.
pub fn call_label(prog: u32, proc_: u32) -> &'static str {
    const MOUNT: [&str; 6] = ["MOUNT_NULL", "MOUNT_MNT", "MOUNT_DUMP", "MOUNT_UMNT", "MOUNT_UMNTALL", "MOUNT_EXPORT"];
    const PORTMAP: [&str; 6] =
        ["PORTMAP_NULL", "PORTMAP_SET", "PORTMAP_UNSET", "PORTMAP_GETPORT", "PORTMAP_DUMP", "PORTMAP_CALLIT"];
    match prog {
        NFS_PROGRAM => proc_name(proc_),
        MOUNT_PROGRAM => MOUNT.get(proc_ as usize).copied().unwrap_or("MOUNT_UNKNOWN"),
        PORTMAP_PROGRAM => PORTMAP.get(proc_ as usize).copied().unwrap_or("PORTMAP_UNKNOWN"),
        _ => "UNKNOWN",
    }
}

/// RFC 1813 `nfsstat3` names.
fn nfsstat_name(n: u32) -> &'static str {
    match n {
        0 => "NFS3_OK",
        1 => "NFS3ERR_PERM",
        2 => "NFS3ERR_NOENT",
        5 => "NFS3ERR_IO",
        6 => "NFS3ERR_NXIO",
        13 => "NFS3ERR_ACCES",
        17 => "NFS3ERR_EXIST",
        18 => "NFS3ERR_XDEV",
        19 => "NFS3ERR_NODEV",
        20 => "NFS3ERR_NOTDIR",
        21 => "NFS3ERR_ISDIR",
        22 => "NFS3ERR_INVAL",
        27 => "NFS3ERR_FBIG",
        28 => "NFS3ERR_NOSPC",
        30 => "NFS3ERR_ROFS",
        31 => "NFS3ERR_MLINK",
        63 => "NFS3ERR_NAMETOOLONG",
        66 => "NFS3ERR_NOTEMPTY",
        69 => "NFS3ERR_DQUOT",
        70 => "NFS3ERR_STALE",
        71 => "NFS3ERR_REMOTE",
        10001 => "NFS3ERR_BADHANDLE",
        10002 => "NFS3ERR_NOT_SYNC",
        10003 => "NFS3ERR_BAD_COOKIE",
        10004 => "NFS3ERR_NOTSUPP",
        10005 => "NFS3ERR_TOOSMALL",
        10006 => "NFS3ERR_SERVERFAULT",
        10007 => "NFS3ERR_BADTYPE",
        10008 => "NFS3ERR_JUKEBOX",
        _ => "NFS3ERR_OTHER",
    }
}

/// RFC 1813 `mountstat3` names.
fn mountstat_name(n: u32) -> &'static str {
    match n {
        0 => "MNT3_OK",
        1 => "MNT3ERR_PERM",
        2 => "MNT3ERR_NOENT",
        5 => "MNT3ERR_IO",
        13 => "MNT3ERR_ACCES",
        20 => "MNT3ERR_NOTDIR",
        22 => "MNT3ERR_INVAL",
        63 => "MNT3ERR_NAMETOOLONG",
        10004 => "MNT3ERR_NOTSUPP",
        10006 => "MNT3ERR_SERVERFAULT",
        _ => "MNT3ERR_OTHER",
    }
}

/// RFC 5531 `accept_stat` names for calls that were not executed.
fn accept_name(s: AcceptStat) -> &'static str {
    match s {
        AcceptStat::Success => "SUCCESS",
        AcceptStat::ProgUnavail => "PROG_UNAVAIL",
        AcceptStat::ProgMismatch => "PROG_MISMATCH",
        AcceptStat::ProcUnavail => "PROC_UNAVAIL",
        AcceptStat::GarbageArgs => "GARBAGE_ARGS",
        AcceptStat::SystemErr => "SYSTEM_ERR",
    }
}

/// The status a call's result reports: for NFS procedures (but NULL) and
/// MNT the leading `nfsstat3`/`mountstat3` of the reply body; `OK` for
/// void replies; the accept status when the call was not executed.
pub fn call_status(prog: u32, proc_: u32, result: Result<&[u8], AcceptStat>) -> &'static str {
    let body = match result {
        Ok(b) => b,
        Err(s) => return accept_name(s),
    };
    let stat = body.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    match (prog, proc_, stat) {
        (NFS_PROGRAM, 1.., Some(n)) => nfsstat_name(n),
        (MOUNT_PROGRAM, 1, Some(n)) => mountstat_name(n),
        _ => "OK",
    }
}

/// Whether `status` (from [`call_status`]) means success.
fn is_ok(status: &str) -> bool {
    matches!(status, "NFS3_OK" | "MNT3_OK" | "OK")
}

/// One finished call.
pub struct CallRecord {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The RPC transaction id.
    pub xid: u32,
    /// The procedure label ([`call_label`]).
    pub proc_: &'static str,
    /// The status ([`call_status`]).
    pub status: &'static str,
    /// Bytes of the call record.
    pub bytes_in: u64,
    /// Bytes of the framed reply.
    pub bytes_out: u64,
    /// Time from dispatch to the reply being ready.
    pub elapsed: Duration,
}

impl CallRecord {
    /// Writes the call's log line and metrics.
    pub fn emit(&self) {
        let duration_ms = (self.elapsed.as_secs_f64() * 1e6).round() / 1e3;
        let ok = is_ok(self.status);
        if self.status == "NFS3ERR_IO" || self.status == "NFS3ERR_SERVERFAULT" || self.status == "SYSTEM_ERR" {
            tracing::warn!(client = %self.peer, xid = self.xid, proc = self.proc_, status = self.status,
                bytes_in = self.bytes_in, bytes_out = self.bytes_out, duration_ms, "nfs call");
        } else {
            tracing::info!(client = %self.peer, xid = self.xid, proc = self.proc_, status = self.status,
                bytes_in = self.bytes_in, bytes_out = self.bytes_out, duration_ms, "nfs call");
        }
        metrics::counter!("gateway_nfs_calls_total", "proc" => self.proc_).increment(1);
        if !ok {
            metrics::counter!("gateway_nfs_errors_total", "proc" => self.proc_, "status" => self.status).increment(1);
        }
        metrics::counter!("gateway_nfs_received_bytes_total", "proc" => self.proc_).increment(self.bytes_in);
        metrics::counter!("gateway_nfs_sent_bytes_total", "proc" => self.proc_).increment(self.bytes_out);
        metrics::histogram!("gateway_nfs_call_duration_seconds", "proc" => self.proc_)
            .record(self.elapsed.as_secs_f64());
    }
}

/// Counts a call answered from the duplicate request cache (`replayed`) or
/// dropped because the original is still running.
pub fn duplicate(peer: SocketAddr, xid: u32, proc_: &'static str, replayed: bool) {
    let outcome = if replayed { "replayed" } else { "dropped" };
    tracing::debug!(client = %peer, xid, proc = proc_, outcome, "nfs duplicate request");
    metrics::counter!("gateway_nfs_duplicate_requests_total", "outcome" => outcome).increment(1);
}

/// Counts a call refused before dispatch (program or version not served).
pub fn refused(peer: SocketAddr, xid: u32, prog: u32, vers: u32) {
    tracing::debug!(client = %peer, xid, prog, vers, "nfs call refused: program or version not served");
    metrics::counter!("gateway_nfs_refused_calls_total").increment(1);
}

/// Counts an open connection for as long as it lives.
pub struct ConnectionGauge(());

impl ConnectionGauge {
    /// Counts one more open connection.
    pub fn open() -> Self {
        metrics::gauge!("gateway_nfs_connections_active").increment(1.0);
        metrics::counter!("gateway_nfs_connections_total").increment(1);
        ConnectionGauge(())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!("gateway_nfs_connections_active").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_the_reply_body() {
        assert_eq!(call_status(NFS_PROGRAM, 1, Ok(&[0, 0, 0, 0, 9])), "NFS3_OK");
        assert_eq!(call_status(NFS_PROGRAM, 3, Ok(&[0, 0, 0, 2])), "NFS3ERR_NOENT");
        assert_eq!(call_status(NFS_PROGRAM, 7, Ok(&10008u32.to_be_bytes())), "NFS3ERR_JUKEBOX");
        assert_eq!(call_status(NFS_PROGRAM, 0, Ok(&[])), "OK");
        assert_eq!(call_status(MOUNT_PROGRAM, 1, Ok(&13u32.to_be_bytes())), "MNT3ERR_ACCES");
        assert_eq!(call_status(MOUNT_PROGRAM, 1, Ok(&[0, 0, 0, 0, 1])), "MNT3_OK");
        assert_eq!(call_status(MOUNT_PROGRAM, 5, Ok(&[0, 0, 0, 1])), "OK");
        assert_eq!(call_status(PORTMAP_PROGRAM, 3, Ok(&[0, 0, 8, 1])), "OK");
        assert_eq!(call_status(NFS_PROGRAM, 6, Err(AcceptStat::GarbageArgs)), "GARBAGE_ARGS");
    }

    #[test]
    fn labels_are_a_closed_set() {
        assert_eq!(call_label(NFS_PROGRAM, 6), "READ");
        assert_eq!(call_label(NFS_PROGRAM, 99), "UNKNOWN");
        assert_eq!(call_label(MOUNT_PROGRAM, 1), "MOUNT_MNT");
        assert_eq!(call_label(MOUNT_PROGRAM, 42), "MOUNT_UNKNOWN");
        assert_eq!(call_label(PORTMAP_PROGRAM, 3), "PORTMAP_GETPORT");
        assert_eq!(call_label(7, 0), "UNKNOWN");
    }
}
