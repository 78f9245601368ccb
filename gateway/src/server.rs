//! Wiring: open the namespace, bind the S3 and NFS listeners, run until SIGTERM or
//! Ctrl-C, drain within the deadline, flush the stores.

use std::sync::Arc;

use anyhow::Context;
use namespace::{Namespace, NamespaceConfig};
use protocol_nfs::NfsState;
use protocol_s3::{CertStore, Credential, Keyring, S3State};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::observe::{Health, Phase};

/// How long a scrape in progress at the very end may take to finish.
const METRICS_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the gateway until a shutdown signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let (ak, sk, generated) = crate::credentials::root(&cfg.data_dir)?;
    let mut ns_cfg = NamespaceConfig::new(&cfg.data_dir);
    ns_cfg.chunk_size_bytes = cfg.chunk_size_bytes;
    ns_cfg.free_bytes_reserved = cfg.free_bytes_reserved;
    ns_cfg.cache_capacity_bytes = cfg.cache_capacity_bytes;
    ns_cfg.cache_free_bytes_min = cfg.cache_free_bytes_min;
    ns_cfg.cache_dirty_bytes_max = cfg.cache_dirty_bytes_max;
    ns_cfg.gc_grace = cfg.gc_grace;
    ns_cfg.default_file_mode = cfg.s3_file_mode;
    ns_cfg.default_dir_mode = cfg.s3_dir_mode;
    // Listing every chunk file takes seconds with millions of objects: it
    // runs in the background once the doors are open (see below).
    ns_cfg.defer_startup_orphan_scan = true;
    // Users are checked before the data directory is opened, so a bad
    // users file stops start-up with a message, not a half-started server.
    let root = (ak.clone(), sk.clone());
    let (configured, default_identity, data_dir) =
        (cfg.users.clone(), cfg.s3_default_identity.clone(), cfg.data_dir.clone());
    let load_keys = move || -> anyhow::Result<Vec<Credential>> {
        let from_file = crate::users::load_file(&data_dir)?;
        crate::users::credentials((&root.0, &root.1), &configured, &from_file, &default_identity)
    };
    let creds = load_keys()?;
    // The metrics endpoint comes up first: /healthz answers and /readyz
    // says 503 while recovery runs.
    let health = Arc::new(Health::default());
    let metrics_shutdown = CancellationToken::new();
    let metrics_server = match cfg.metrics_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a).await.with_context(|| format!("metrics_listen: binding {a}"))?;
            let handle = crate::observe::install_recorder()?;
            println!("Metrics listening on http://{} (/metrics, /healthz, /readyz)", l.local_addr()?);
            Some(tokio::spawn(crate::observe::serve(l, handle, health.clone(), metrics_shutdown.clone())))
        }
        None => None,
    };
    let opening = std::time::Instant::now();
    let (ns, report) =
        tokio::task::spawn_blocking(move || Namespace::open(ns_cfg)).await?.context("opening the data directory")?;
    tracing::info!(
        created = report.created,
        boot_epoch = report.boot_epoch,
        unlinked_inodes_reaped = report.orphans_reaped,
        orphan_chunks_deleted = report.orphan_chunks_deleted,
        expired_chunks_deleted = report.gc_chunks_deleted,
        ms = opening.elapsed().as_millis() as u64,
        "recovery done: {}",
        recovery_summary(&report)
    );
    let ns = Arc::new(ns);
    ns.start_upstream_workers(crate::upstream::READAHEAD_THREADS);
    let (upstreams, tuning) = (cfg.upstream_buckets.clone(), cfg.upstream_tuning);
    let ns2 = ns.clone();
    let bound = tokio::task::spawn_blocking(move || crate::upstream::setup(&ns2, &upstreams, tuning))
        .await?
        .context("setting up upstream buckets")?;
    for line in bound {
        tracing::info!("upstream {line}");
    }
    health.attach(ns.clone());
    let certs = match &cfg.tls {
        Some((c, k)) => {
            let (cert, key) = read_pem(c, k)?;
            Some(Arc::new(CertStore::from_pem(&cert, &key).map_err(|e| anyhow::anyhow!("tls: {e}"))?))
        }
        None => None,
    };
    let tls = match &certs {
        Some(store) => Some(protocol_s3::tls::acceptor(store.clone()).map_err(|e| anyhow::anyhow!("tls: {e}"))?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.s3_listen)
        .await
        .with_context(|| format!("s3_listen: binding {}", cfg.s3_listen))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(S3State {
        ns: ns.clone(),
        keys: Keyring::new(creds),
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
    let load_keys = Arc::new(load_keys);
    let reload_users = {
        let (state, load_keys) = (state.clone(), load_keys.clone());
        move || -> anyhow::Result<String> {
            let creds = load_keys()?;
            let n = creds.len();
            state.keys.replace(creds);
            tracing::info!(keys = n, "S3 users reloaded");
            Ok(format!("{n} access keys active"))
        }
    };
    let admin_listener = crate::admin::bind(&cfg.data_dir)?;
    let admin_ctx = Arc::new(crate::admin::AdminCtx {
        ns: ns.clone(),
        reload_users: Box::new(reload_users.clone()),
        upstream_tuning: cfg.upstream_tuning,
    });
    let admin = tokio::spawn(crate::admin::serve(admin_listener, admin_ctx, shutdown.clone()));
    let hup = tokio::spawn(reload_on_sighup(cfg.tls.clone(), certs, reload_users, shutdown.clone()));
    let server = tokio::spawn(protocol_s3::serve(listener, tls, state, shutdown.clone()));
    let gc = tokio::spawn(gc_loop(ns.clone(), cfg.gc_interval, shutdown.clone()));
    let uploads = tokio::spawn(crate::upstream::upload_loop(ns.clone(), shutdown.clone()));
    let leftovers = {
        let ns = ns.clone();
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            match ns.scan_orphan_chunks_from_before_start() {
                Ok(n) => tracing::info!(
                    orphan_chunks_deleted = n,
                    ms = t.elapsed().as_millis() as u64,
                    "start-up scan: deleted {n} unreferenced chunk file(s) left by the previous run"
                ),
                Err(e) => tracing::warn!(error = %e, "start-up orphan chunk scan failed; the periodic scan will retry"),
            }
        })
    };
    health.set(Phase::Ready);
    tracing::info!("ready: recovery done and every listener bound");
    wait_for_signal().await?;
    health.set(Phase::Draining);
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
    let _ = uploads.await;
    let _ = leftovers.await;
    let _ = admin.await;
    let _ = hup.await;
    let _ = std::fs::remove_file(crate::admin::socket_path(&cfg.data_dir));
    tokio::task::spawn_blocking(move || ns.sync()).await?.context("final flush")?;
    metrics_shutdown.cancel();
    if let Some(m) = metrics_server {
        if let Ok(tracker) = m.await {
            let _ = tokio::time::timeout(METRICS_DRAIN, tracker.wait()).await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// What start-up recovery did, in words for the log.
fn recovery_summary(r: &namespace::RecoveryReport) -> String {
    if r.created {
        return "new data directory".into();
    }
    if r.orphans_reaped == 0 && r.orphan_chunks_deleted == 0 && r.gc_chunks_deleted == 0 {
        return "clean (nothing left over from the last run)".into();
    }
    format!(
        "freed {} unlinked inode(s) (files deleted while open or replaced before a crash), deleted {} unreferenced \
         chunk file(s) (writes interrupted before their commit) and {} chunk(s) past their GC grace",
        r.orphans_reaped, r.orphan_chunks_deleted, r.gc_chunks_deleted
    )
}

fn read_pem(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let c = std::fs::read(cert).with_context(|| format!("tls_cert: reading {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("tls_key: reading {}", key.display()))?;
    Ok((c, k))
}

/// SIGHUP re-reads the TLS certificate and key (open connections keep
/// theirs; new handshakes get the new one) and the users file. A file
/// that fails to load is logged and the old one stays in use.
async fn reload_on_sighup(
    tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    certs: Option<Arc<CertStore>>,
    reload_users: impl Fn() -> anyhow::Result<String>,
    shutdown: CancellationToken,
) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: no reloads");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = hup.recv() => if r.is_none() { return },
        }
        tracing::info!("SIGHUP: reloading TLS certificate and users");
        if let (Some((c, k)), Some(store)) = (&tls_files, &certs) {
            match read_pem(c, k).and_then(|(cert, key)| store.reload(&cert, &key).map_err(|e| anyhow::anyhow!(e))) {
                Ok(()) => tracing::info!(cert = %c.display(), "TLS certificate reloaded"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "TLS reload failed; the old certificate stays"),
            }
        }
        if let Err(e) = reload_users() {
            tracing::warn!(error = %format!("{e:#}"), "users reload failed; the old users stay");
        }
    }
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
        let started = std::time::Instant::now();
        let res = tokio::task::spawn_blocking(move || -> Result<_, namespace::NsError> {
            Ok((ns.run_gc()?, ns.scan_orphan_chunks(ns.orphan_chunk_grace())?))
        })
        .await;
        if let Ok(Ok((report, orphans))) = &res {
            metrics::counter!("gateway_gc_passes_total").increment(1);
            metrics::counter!("gateway_gc_chunks_deleted_total").increment(report.chunks_deleted);
            metrics::counter!("gateway_gc_orphan_chunks_deleted_total").increment(*orphans);
            metrics::counter!("gateway_gc_uploads_expired_total").increment(report.uploads_expired);
            metrics::histogram!("gateway_gc_pass_duration_seconds").record(started.elapsed().as_secs_f64());
        } else {
            metrics::counter!("gateway_gc_failures_total").increment(1);
        }
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
