//! Observation of NFS, MOUNT and portmap calls: one log line per call (the
//! client address and xid identify it), per-procedure metrics, and the gauge
//! of open connections.
//!
//! Metric labels form closed sets: procedure names from fixed tables and
//! status names from RFC 1813 / RFC 5531, never anything a client sends.

use std::net::SocketAddr;
use std::time::Duration;

use nfs3_types::mount::mountstat3;
use nfs3_types::nfs3::nfsstat3;

use crate::mount::{MountProc, MOUNT_PROGRAM, NFS_PROGRAM, PORTMAP_PROGRAM};
use crate::nfs::Proc;
use crate::reply::Status;
use crate::rpc::AcceptStat;

/// The label of procedure `proc_` of program `prog`: NFS procedures by
/// their RFC 1813 names, MOUNT and portmap ones prefixed.
pub fn call_label(prog: u32, proc_: u32) -> &'static str {
    const PORTMAP: [&str; 6] =
        ["PORTMAP_NULL", "PORTMAP_SET", "PORTMAP_UNSET", "PORTMAP_GETPORT", "PORTMAP_DUMP", "PORTMAP_CALLIT"];
    match prog {
        NFS_PROGRAM => Proc::from_u32(proc_).map_or("UNKNOWN", Proc::name),
        MOUNT_PROGRAM => MountProc::from_u32(proc_).map_or("MOUNT_UNKNOWN", MountProc::name),
        PORTMAP_PROGRAM => PORTMAP.get(proc_ as usize).copied().unwrap_or("PORTMAP_UNKNOWN"),
        _ => "UNKNOWN",
    }
}

/// RFC 1813 `nfsstat3` names (exhaustive: a closed label set).
fn nfsstat_name(s: nfsstat3) -> &'static str {
    match s {
        nfsstat3::NFS3_OK => "NFS3_OK",
        nfsstat3::NFS3ERR_PERM => "NFS3ERR_PERM",
        nfsstat3::NFS3ERR_NOENT => "NFS3ERR_NOENT",
        nfsstat3::NFS3ERR_IO => "NFS3ERR_IO",
        nfsstat3::NFS3ERR_NXIO => "NFS3ERR_NXIO",
        nfsstat3::NFS3ERR_ACCES => "NFS3ERR_ACCES",
        nfsstat3::NFS3ERR_EXIST => "NFS3ERR_EXIST",
        nfsstat3::NFS3ERR_XDEV => "NFS3ERR_XDEV",
        nfsstat3::NFS3ERR_NODEV => "NFS3ERR_NODEV",
        nfsstat3::NFS3ERR_NOTDIR => "NFS3ERR_NOTDIR",
        nfsstat3::NFS3ERR_ISDIR => "NFS3ERR_ISDIR",
        nfsstat3::NFS3ERR_INVAL => "NFS3ERR_INVAL",
        nfsstat3::NFS3ERR_FBIG => "NFS3ERR_FBIG",
        nfsstat3::NFS3ERR_NOSPC => "NFS3ERR_NOSPC",
        nfsstat3::NFS3ERR_ROFS => "NFS3ERR_ROFS",
        nfsstat3::NFS3ERR_MLINK => "NFS3ERR_MLINK",
        nfsstat3::NFS3ERR_NAMETOOLONG => "NFS3ERR_NAMETOOLONG",
        nfsstat3::NFS3ERR_NOTEMPTY => "NFS3ERR_NOTEMPTY",
        nfsstat3::NFS3ERR_DQUOT => "NFS3ERR_DQUOT",
        nfsstat3::NFS3ERR_STALE => "NFS3ERR_STALE",
        nfsstat3::NFS3ERR_REMOTE => "NFS3ERR_REMOTE",
        nfsstat3::NFS3ERR_BADHANDLE => "NFS3ERR_BADHANDLE",
        nfsstat3::NFS3ERR_NOT_SYNC => "NFS3ERR_NOT_SYNC",
        nfsstat3::NFS3ERR_BAD_COOKIE => "NFS3ERR_BAD_COOKIE",
        nfsstat3::NFS3ERR_NOTSUPP => "NFS3ERR_NOTSUPP",
        nfsstat3::NFS3ERR_TOOSMALL => "NFS3ERR_TOOSMALL",
        nfsstat3::NFS3ERR_SERVERFAULT => "NFS3ERR_SERVERFAULT",
        nfsstat3::NFS3ERR_BADTYPE => "NFS3ERR_BADTYPE",
        nfsstat3::NFS3ERR_JUKEBOX => "NFS3ERR_JUKEBOX",
    }
}

/// RFC 1813 `mountstat3` names (exhaustive).
fn mountstat_name(s: mountstat3) -> &'static str {
    match s {
        mountstat3::MNT3_OK => "MNT3_OK",
        mountstat3::MNT3ERR_PERM => "MNT3ERR_PERM",
        mountstat3::MNT3ERR_NOENT => "MNT3ERR_NOENT",
        mountstat3::MNT3ERR_IO => "MNT3ERR_IO",
        mountstat3::MNT3ERR_ACCES => "MNT3ERR_ACCES",
        mountstat3::MNT3ERR_NOTDIR => "MNT3ERR_NOTDIR",
        mountstat3::MNT3ERR_INVAL => "MNT3ERR_INVAL",
        mountstat3::MNT3ERR_NAMETOOLONG => "MNT3ERR_NAMETOOLONG",
        mountstat3::MNT3ERR_NOTSUPP => "MNT3ERR_NOTSUPP",
        mountstat3::MNT3ERR_SERVERFAULT => "MNT3ERR_SERVERFAULT",
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

/// The status a call's result reports: the status its handler returned
/// with the body ([`Status`]: an NFS procedure's `nfsstat3`, MNT's
/// `mountstat3`), `OK` for void replies, the accept status when the call
/// was not executed.
pub fn call_status(result: Result<Status, AcceptStat>) -> &'static str {
    match result {
        Ok(Status::Nfs(s)) => nfsstat_name(s),
        Ok(Status::Mount(s)) => mountstat_name(s),
        Ok(Status::Void) => "OK",
        Err(s) => accept_name(s),
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

    /// Was `statuses_come_from_the_reply_body` (the same rows, read from
    /// packed bytes then): the handlers now hand the status over.
    #[test]
    fn statuses_come_from_the_handlers() {
        assert_eq!(call_status(Ok(Status::Nfs(nfsstat3::NFS3_OK))), "NFS3_OK");
        assert_eq!(call_status(Ok(Status::Nfs(nfsstat3::NFS3ERR_NOENT))), "NFS3ERR_NOENT");
        assert_eq!(call_status(Ok(Status::Nfs(nfsstat3::NFS3ERR_JUKEBOX))), "NFS3ERR_JUKEBOX");
        assert_eq!(call_status(Ok(Status::Void)), "OK");
        assert_eq!(call_status(Ok(Status::Mount(mountstat3::MNT3ERR_ACCES))), "MNT3ERR_ACCES");
        assert_eq!(call_status(Ok(Status::Mount(mountstat3::MNT3_OK))), "MNT3_OK");
        assert_eq!(call_status(Err(AcceptStat::GarbageArgs)), "GARBAGE_ARGS");
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
