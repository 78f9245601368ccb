//! The TCP server: accept loop, per-connection reader and writer, and the
//! RPC dispatch to NFS, MOUNT and portmap.
//!
//! Per connection, a reader takes a permit from a semaphore **before** it
//! reads the next record, so when `in_flight_per_connection` calls are
//! running the socket is simply not read and TCP pushes back; no call is
//! ever refused for load. Calls run on the blocking pool (the namespace
//! fsyncs) and may finish out of order; a writer task sends their replies.
//! A malformed record closes only its own connection; a panicking handler
//! is answered `SYSTEM_ERR` and its DRC entry released. A server-wide cap
//! ([`NFS_CALLS_IN_FLIGHT_MAX`]) bounds the records held in memory across
//! all connections (each up to `RECORD_BYTES_MAX`). On shutdown the
//! reader stops, in-flight calls finish and their replies are flushed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::args::Args;
use crate::drc::{DrcKey, Lookup};
use crate::mount::{mount_call, portmap_call, MOUNT_PROGRAM, NFS_PROGRAM, PORTMAP_PROGRAM};
use crate::nfs::{Ctx, Proc};
use crate::observe::{call_label, call_status, CallRecord, ConnectionGauge};
use crate::rpc::{decode_call, frame_reply, read_record, AcceptStat, Call, Reply, RECORD_BYTES_MAX};
use crate::state::NfsState;
pub use crate::state::NFS_CALLS_IN_FLIGHT_MAX;

/// Serves NFS, MOUNT and portmap on `listener` until `shutdown`; returns
/// the tracker of the connections, closed, to wait on for the drain.
pub async fn serve(listener: TcpListener, state: Arc<NfsState>, shutdown: CancellationToken) -> TaskTracker {
    let tracker = TaskTracker::new();
    let (connections_max, sd) = (state.cfg.connections_max, shutdown.clone());
    acceptor::accept_loop(listener, "NFS", connections_max, sd, &tracker, move |stream, peer| {
        let _ = stream.set_nodelay(true);
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            let _gauge = ConnectionGauge::open();
            connection(stream, peer, state, shutdown).await;
        }
    })
    .await;
    tracker.close();
    tracker
}

async fn connection(stream: TcpStream, peer: SocketAddr, state: Arc<NfsState>, shutdown: CancellationToken) {
    let client = peer.ip();
    let (mut rd, mut wr) = stream.into_split();
    let in_flight = state.cfg.in_flight_per_connection.max(1);
    let (tx, mut rx) = mpsc::channel::<Framed>(in_flight);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if wr.write_all(&reply).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let slots = Arc::new(Semaphore::new(in_flight));
    let calls = TaskTracker::new();
    loop {
        // A slot on this connection and one of the server's, both before
        // the record is read: excess calls wait in the socket.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            s = slots.clone().acquire_owned() => s.expect("semaphore never closed"),
        };
        let global = tokio::select! {
            _ = shutdown.cancelled() => break,
            s = state.calls.clone().acquire_owned() => s.expect("semaphore never closed"),
        };
        let record = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = read_record(&mut rd, RECORD_BYTES_MAX) => r,
        };
        let record = match record {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(%client, error = %e, "closing NFS connection");
                break;
            }
        };
        let call = match decode_call(&record) {
            Ok(c) => c,
            Err(e) => match Reply::for_error(&e) {
                Some(reply) => {
                    let _ = tx.send(Arc::new(frame_reply(&reply))).await;
                    continue;
                }
                None => {
                    tracing::debug!(%client, error = %e, "unparseable RPC; closing the connection");
                    break;
                }
            },
        };
        let (state, tx) = (state.clone(), tx.clone());
        calls.spawn(async move {
            let _slots = (slot, global);
            if let Some(reply) = execute(state, peer, call, record).await {
                let _ = tx.send(reply).await;
            }
        });
    }
    calls.close();
    calls.wait().await;
    drop(tx);
    let _ = writer.await;
}

/// A reply record, framed; shared with the DRC, which replays it as is.
type Framed = Arc<Vec<u8>>;

/// Runs one call; `None` means send nothing (a duplicate still running).
/// Writes the call's log line and metrics (see [`crate::observe`]).
async fn execute(state: Arc<NfsState>, peer: SocketAddr, call: Call, record: Vec<u8>) -> Option<Framed> {
    let client: IpAddr = peer.ip();
    let xid = call.xid;
    let refuse = |reply: Vec<u8>| {
        crate::observe::refused(peer, xid, call.prog, call.vers);
        Some(Arc::new(frame_reply(&reply)))
    };
    match (call.prog, call.vers) {
        (NFS_PROGRAM, 3) | (MOUNT_PROGRAM, 3) | (PORTMAP_PROGRAM, 2) => {}
        (NFS_PROGRAM, _) | (MOUNT_PROGRAM, _) => return refuse(Reply::prog_mismatch(xid, 3, 3)),
        (PORTMAP_PROGRAM, _) => return refuse(Reply::prog_mismatch(xid, 2, 2)),
        // NLM (100021), NFS_ACL (100227) and the rest: not served
        // (clients mount with `nolock`).
        _ => {
            crate::observe::refused(peer, xid, call.prog, call.vers);
            return Some(Arc::new(Reply::accepted_framed(xid, AcceptStat::ProgUnavail, &[])));
        }
    }
    // The NFS procedure, parsed once (dispatch, DRC and label use it);
    // `None` for other programs and for unknown numbers (PROC_UNAVAIL).
    let nfs_proc = if call.prog == NFS_PROGRAM { Proc::from_u32(call.proc_) } else { None };
    let label = match nfs_proc {
        Some(p) => p.name(),
        None => call_label(call.prog, call.proc_),
    };
    let cached = nfs_proc.is_some_and(|p| !p.is_idempotent());
    let key = cached.then(|| {
        DrcKey::new(client, xid, call.prog, call.vers, call.proc_, &record[call.args_offset.min(record.len())..])
    });
    if let Some(k) = &key {
        match state.drc.begin(k.clone()) {
            Lookup::Execute => {}
            Lookup::Drop => {
                crate::observe::duplicate(peer, xid, label, false);
                return None;
            }
            Lookup::Replay(bytes) => {
                crate::observe::duplicate(peer, xid, label, true);
                return Some(bytes);
            }
        }
    }
    let started = std::time::Instant::now();
    let st = state.clone();
    let prog = call.prog;
    let proc_ = call.proc_;
    let bytes_in = record.len() as u64;
    let result = tokio::task::spawn_blocking(move || {
        let mut args = Args::new(&record, call.args_offset);
        match prog {
            NFS_PROGRAM => match nfs_proc {
                Some(p) => Ctx::new(&st, client, &call.cred).call(p, &mut args),
                None => Err(AcceptStat::ProcUnavail),
            },
            MOUNT_PROGRAM => mount_call(&st, client, proc_, &mut args),
            _ => portmap_call(&st, proc_, &mut args),
        }
    })
    .await;
    let (reply, status) = match result {
        Ok(Ok(r)) => {
            let status = call_status(Ok(r.status));
            (Arc::new(Reply::accepted_framed(xid, AcceptStat::Success, &r.body)), status)
        }
        Ok(Err(stat)) => (Arc::new(Reply::accepted_framed(xid, stat, &[])), call_status(Err(stat))),
        Err(e) => {
            tracing::error!(client = %peer, xid, proc = label, error = %e, "NFS handler failed");
            if let Some(k) = &key {
                state.drc.forget(k);
            }
            let reply = Arc::new(Reply::accepted_framed(xid, AcceptStat::SystemErr, &[]));
            let status = call_status(Err(AcceptStat::SystemErr));
            CallRecord {
                peer,
                xid,
                proc_: label,
                status,
                bytes_in,
                bytes_out: reply.len() as u64,
                elapsed: started.elapsed(),
            }
            .emit();
            return Some(reply);
        }
    };
    CallRecord { peer, xid, proc_: label, status, bytes_in, bytes_out: reply.len() as u64, elapsed: started.elapsed() }
        .emit();
    if let Some(k) = &key {
        state.drc.complete(k, reply.clone());
    }
    Some(reply)
}
