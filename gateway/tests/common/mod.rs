//! The gateway binary on loopback ports (port 0) for end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running gateway; killed when dropped (a test that fails half-way).
pub struct Gateway {
    /// The process.
    pub child: Child,
    /// S3 address.
    pub s3: SocketAddr,
    /// NFS (and MOUNT, portmap) address.
    pub nfs: SocketAddr,
    /// Metrics address.
    pub metrics: SocketAddr,
    /// What it printed on stdout up to "NFS listening on".
    pub stdout: Vec<String>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address printed after `prefix` on one of `lines`.
pub fn addr_after(lines: &[String], prefix: &str) -> Option<SocketAddr> {
    let line = lines.iter().find(|l| l.starts_with(prefix))?;
    let rest = line[prefix.len()..].trim_start_matches("http://").trim_start_matches("https://");
    rest.split_whitespace().next()?.parse().ok()
}

/// The binary under test.
pub fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

/// Starts `gateway serve` on `dir/data` with S3, NFS and metrics on port 0,
/// `config` as its TOML file (written to `dir/gateway.toml`), the root key
/// `access_key`/`secret_key`, `GATEWAY_LOG=log` and `extra` arguments;
/// stderr goes to `dir/stderr.log`. Returns once NFS is listening (at most
/// 60 s), with the addresses it printed.
pub fn start(dir: &Path, config: &str, access_key: &str, secret_key: &str, log: &str, extra: &[&str]) -> Gateway {
    start_at(dir, config, access_key, secret_key, log, "127.0.0.1:0", extra)
}

/// [`start`] with the S3 endpoint on `s3_listen` (a restarted gateway
/// that must come back on its old address).
pub fn start_at(
    dir: &Path,
    config: &str,
    access_key: &str,
    secret_key: &str,
    log: &str,
    s3_listen: &str,
    extra: &[&str],
) -> Gateway {
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = gateway()
        .args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--s3-listen", s3_listen, "--nfs-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--config")
        .arg(&config_path)
        .env("GATEWAY_ACCESS_KEY", access_key)
        .env("GATEWAY_SECRET_KEY", secret_key)
        .env("GATEWAY_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the gateway binary");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.iter().any(|l: &String| l.starts_with("NFS listening on ")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start: stdout {lines:?}, stderr {}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                );
            }
        }
    }
    Gateway {
        s3: addr_after(&lines, "S3 listening on ").expect("S3 address"),
        nfs: addr_after(&lines, "NFS listening on ").expect("NFS address"),
        metrics: addr_after(&lines, "Metrics listening on ").expect("metrics address"),
        stdout: lines,
        child,
    }
}
