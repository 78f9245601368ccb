//! A gateway NFS server on a loopback port over a temporary data directory,
//! and clients for it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use namespace::{Caller, Namespace, NamespaceConfig};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use protocol_nfs::{ExportOptions, Exports, NfsConfig, NfsState, Squash};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub ns: Arc<Namespace>,
    pub state: Arc<NfsState>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<TaskTracker>,
}

/// Exports with no squashing (tests act as root and as users).
pub fn open_exports() -> Exports {
    Exports::new(ExportOptions { squash: Squash::None, ..Default::default() }, vec![]).unwrap()
}

impl Server {
    /// Starts a server over `dir` with the bucket `data` (created if missing).
    pub async fn start(dir: &Path, exports: Exports) -> Server {
        let d = dir.to_path_buf();
        let ns = tokio::task::spawn_blocking(move || {
            let (ns, _) = Namespace::open(NamespaceConfig::new(d)).expect("open namespace");
            if ns.bucket(b"data").is_err() {
                ns.create_bucket(&Caller::root(), b"data").unwrap();
            }
            ns
        })
        .await
        .unwrap();
        let ns = Arc::new(ns);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = NfsConfig { exports, in_flight_per_connection: 16, ..Default::default() };
        let state = Arc::new(NfsState::new(ns.clone(), cfg, addr.port()));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(protocol_nfs::serve(listener, state.clone(), shutdown.clone()));
        Server { addr, ns, state, shutdown, server }
    }

    /// Stops the server, drains it and flushes the namespace.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let tracker = self.server.await.unwrap();
        tracker.wait().await;
        let ns = self.ns;
        tokio::task::spawn_blocking(move || ns.sync().unwrap()).await.unwrap();
    }

    /// Mounts `path` as `uid`/`gid`.
    pub async fn mount(&self, path: &str, uid: u32, gid: u32) -> Nfs3Connection<TokioIo<TcpStream>> {
        self.try_mount(path, uid, gid).await.expect("mount")
    }

    /// Mounts, returning the error.
    pub async fn try_mount(
        &self,
        path: &str,
        uid: u32,
        gid: u32,
    ) -> Result<Nfs3Connection<TokioIo<TcpStream>>, nfs3_client::ConnectError> {
        let cred = auth_unix { stamp: 1, machinename: Opaque::owned(b"test".to_vec()), uid, gid, gids: vec![] };
        Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", path)
            .connect_from_privileged_port(false)
            .mount_port(self.addr.port())
            .nfs3_port(self.addr.port())
            .credential(opaque_auth::auth_unix(&cred))
            .mount()
            .await
    }
}
