//! `linkem --listen ADDR --to ADDR --rate-mib N --delay-ms D`: forwards
//! every connection accepted on `--listen` to `--to`, each direction of
//! each connection limited to `--rate-mib` MiB/s (a token bucket refilled
//! every millisecond) and every piece delayed by `--delay-ms` (one way).
//!
//! Why: the upstream cache is meant to sit in front of an object store
//! across a network, where one connection moves tens of MiB/s (S3 is
//! commonly quoted at 50-100 MiB/s per connection) after a round trip;
//! on one loopback machine without tc/netem, this proxy stands for that
//! link, so that a benchmark compares the cache with a direct client under
//! the same link. Not a test tool and not part of the product.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read from a socket at once.
const PIECE_BYTES: usize = 64 << 10;

#[derive(Parser, Debug, Clone, Copy)]
#[command(about = "TCP proxy emulating a network link (per-connection rate, one-way delay)")]
struct Args {
    /// Address to accept on.
    #[arg(long)]
    listen: SocketAddr,
    /// Address to forward to.
    #[arg(long)]
    to: SocketAddr,
    /// MiB/s per connection and direction (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    rate_mib: f64,
    /// One-way delay in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("linkem: {} -> {} ({:?} MiB/s, {} ms)", args.listen, args.to, args.rate_mib, args.delay_ms);
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(args.to).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pipe(cr, sw, args));
            pipe(sr, cw, args).await;
            up.abort();
        });
    }
}

/// Copies `from` to `to` at most `rate_mib` MiB/s, each piece sent
/// `delay_ms` after it was read (pieces in flight are not limited, as on a
/// link with a large window).
async fn pipe(mut from: impl AsyncReadExt + Unpin, mut to: impl AsyncWriteExt + Unpin + Send + 'static, args: Args) {
    let delay = Duration::from_secs_f64(args.delay_ms / 1000.0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, piece)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&piece).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let bytes_per_s = args.rate_mib * (1 << 20) as f64;
    let mut started = tokio::time::Instant::now();
    let mut sent = 0f64;
    let mut buf = vec![0u8; PIECE_BYTES];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if bytes_per_s > 0.0 && started + Duration::from_secs_f64(sent / bytes_per_s) < tokio::time::Instant::now() {
            // The link went idle: an idle link banks no bandwidth.
            (started, sent) = (tokio::time::Instant::now(), 0.0);
        }
        sent += n as f64;
        if bytes_per_s > 0.0 {
            // Wait until the link would have carried everything read so far.
            let at = started + Duration::from_secs_f64(sent / bytes_per_s);
            tokio::time::sleep_until(at).await;
        }
        if tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
