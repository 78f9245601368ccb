//! Wiring: open the namespace, bind the S3 and NFS listeners, run until SIGTERM or
//! Ctrl-C, drain within the deadline, flush the stores.

use std::sync::Arc;

use anyhow::Context;
use namespace::{Caller, Namespace, NamespaceConfig};
use protocol_nfs::NfsState;
use protocol_s3::{Credential, Keyring, S3State};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Runs the gateway until a shutdown signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let (ak, sk, generated) = crate::credentials::root(&cfg.data_dir)?;
    let mut ns_cfg = NamespaceConfig::new(&cfg.data_dir);
    ns_cfg.chunk_size_bytes = cfg.chunk_size_bytes;
    ns_cfg.gc_grace = cfg.gc_grace;
    let (ns, report) =
        tokio::task::spawn_blocking(move || Namespace::open(ns_cfg)).await?.context("opening the data directory")?;
    tracing::info!(?report, "recovery done");
    let ns = Arc::new(ns);
    let tls = match &cfg.tls {
        Some((c, k)) => {
            let cert = std::fs::read(c).with_context(|| format!("tls_cert: reading {}", c.display()))?;
            let key = std::fs::read(k).with_context(|| format!("tls_key: reading {}", k.display()))?;
            Some(protocol_s3::tls_acceptor(&cert, &key).map_err(|e| anyhow::anyhow!("tls: {e}"))?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.s3_listen)
        .await
        .with_context(|| format!("s3_listen: binding {}", cfg.s3_listen))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(S3State {
        ns: ns.clone(),
        keys: Keyring::new([Credential { access_key: ak.clone(), secret_key: sk.clone(), caller: Caller::root() }]),
        region: cfg.region.clone(),
        virtual_host_base: cfg.virtual_host_base.clone(),
    });
    if generated {
        println!("Generated root credentials (kept in {}/root-credentials, mode 0600):", cfg.data_dir.display());
        println!("  access key: {ak}");
        println!("  secret key: {sk}");
    } else {
        println!("Root access key: {ak} (secret from the environment or {}/root-credentials)", cfg.data_dir.display());
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("S3 listening on {scheme}://{addr}");
    let shutdown = CancellationToken::new();
    let mut nfs_servers = Vec::new();
    if let Some(nfs_addr) = cfg.nfs_listen {
        let nfs_listener =
            tokio::net::TcpListener::bind(nfs_addr).await.with_context(|| format!("nfs_listen: binding {nfs_addr}"))?;
        let nfs_addr = nfs_listener.local_addr()?;
        let nfs_state = Arc::new(NfsState::new(ns.clone(), cfg.nfs.clone(), nfs_addr.port()));
        println!("NFS listening on {nfs_addr} (NFSv3, MOUNT v3 and portmap on one port)");
        println!(
            "  mount with: mount -t nfs -o vers=3,tcp,port={p},mountport={p},mountproto=tcp,nolock HOST:/BUCKET /mnt",
            p = nfs_addr.port()
        );
        if let Some(pm) = cfg.portmap_listen {
            let pm_listener =
                tokio::net::TcpListener::bind(pm).await.with_context(|| format!("portmap_listen: binding {pm}"))?;
            println!("Portmap listening on {}", pm_listener.local_addr()?);
            nfs_servers.push(tokio::spawn(protocol_nfs::serve(pm_listener, nfs_state.clone(), shutdown.clone())));
        }
        nfs_servers.push(tokio::spawn(protocol_nfs::serve(nfs_listener, nfs_state, shutdown.clone())));
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    let server = tokio::spawn(protocol_s3::serve(listener, tls, state, shutdown.clone()));
    let gc = tokio::spawn(gc_loop(ns.clone(), cfg.gc_interval, shutdown.clone()));
    wait_for_signal().await?;
    tracing::info!(deadline_secs = cfg.shutdown_deadline.as_secs(), "shutting down: draining requests");
    shutdown.cancel();
    let tracker = server.await?;
    let mut nfs_trackers = Vec::new();
    for s in nfs_servers {
        nfs_trackers.push(s.await?);
    }
    let second = tokio::spawn(async {
        // A second signal exits at once; everything acknowledged is durable.
        let _ = wait_for_signal().await;
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(1);
    });
    let drain = async {
        tracker.wait().await;
        for t in &nfs_trackers {
            t.wait().await;
        }
    };
    if tokio::time::timeout(cfg.shutdown_deadline, drain).await.is_err() {
        tracing::warn!("drain deadline passed with requests in flight");
    }
    second.abort();
    let _ = gc.await;
    tokio::task::spawn_blocking(move || ns.sync()).await?.context("final flush")?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}

/// Reclaims space while running: GC of dropped chunks past their grace, and
/// the orphan scan for chunks a crashed or failed write left behind.
async fn gc_loop(ns: Arc<Namespace>, every: std::time::Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let ns = ns.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<_, namespace::NsError> {
            Ok((ns.run_gc()?, ns.scan_orphan_chunks(ns.orphan_chunk_grace())?))
        })
        .await;
        match res {
            Ok(Ok((report, orphans))) if report.chunks_deleted > 0 || orphans > 0 => {
                tracing::info!(?report, orphan_chunks_deleted = orphans, "gc pass");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "gc pass failed"),
            Err(e) => tracing::warn!(error = %e, "gc task failed"),
        }
    }
}
