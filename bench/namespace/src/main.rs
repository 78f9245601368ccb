//! Benchmarks for the core (issue #2). Run with
//! `cargo run --release -p namespace-bench -- <what> [options]`
//! where <what> is one of:
//!
//! - `chunkstore [--mib 1024] [--runs 3]`: durable sequential write and
//!   read-back through the chunk store vs plain buffered file I/O + fsync on
//!   the same directory (page cache dropped with fadvise before reads);
//! - `chunk-sizes [--mib 512]`: the same for several chunk sizes;
//! - `ops [--n 5000]`: create, lookup, getattr, readdir page, rename rates;
//! - `list [--keys 10000]`: time of one 1000-key ListObjects page, and the
//!   peak RSS after loading the keys;
//! - `multipart [--mib 1024] [--part-mib 8]`: time of the metadata-only
//!   completion;
//! - `startup [--keys 1000000] [--runs 3] [--reuse]`: open time of a large
//!   namespace;
//! - `fsck [--mib 512]`: offline fsck rate over `--mib` MiB of 16 MiB
//!   objects plus 2,000 small ones (page cache warm from the writes);
//! - `crc`: CRC32C and CRC64/NVME rates (hardware acceleration check).
//!
//! `--dir D` puts the data under D (default: a temp dir under the target
//! directory, i.e. on the same disk as the repository). Figures are medians
//! of `--runs` runs.

mod crc;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkstore::{ChunkStore, ChunkStoreConfig, RealIo};
use namespace::{
    Caller, CompletePart, CreateMode, ListParams, Namespace, NamespaceConfig, ObjMeta, WriteCondition, ROOT_INO,
};

struct Args {
    what: String,
    mib: usize,
    runs: usize,
    n: usize,
    keys: usize,
    part_mib: usize,
    dir: PathBuf,
    reuse: bool,
}

fn parse() -> Args {
    let mut a = Args {
        what: String::new(),
        mib: 1024,
        runs: 3,
        n: 5000,
        keys: 10_000,
        part_mib: 8,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"),
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().expect("option needs a value");
        match x.as_str() {
            "--mib" => a.mib = val().parse().unwrap(),
            "--runs" => a.runs = val().parse().unwrap(),
            "--n" => a.n = val().parse().unwrap(),
            "--keys" => a.keys = val().parse().unwrap(),
            "--part-mib" => a.part_mib = val().parse().unwrap(),
            "--dir" => a.dir = PathBuf::from(val()),
            "--reuse" => a.reuse = true,
            w if !w.starts_with('-') => a.what = w.to_string(),
            o => panic!("unknown option {o}"),
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn mibps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn drop_cache(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = nix::fcntl::posix_fadvise(f.as_raw_fd(), 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
}

fn buffer(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761) as u8).collect()
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// One chunk-store run: (write MiB/s, read MiB/s) for `total` bytes.
fn chunk_run(dir: &Path, total: usize, chunk: usize) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    let mut cfg = ChunkStoreConfig::new(dir);
    cfg.chunk_size_bytes = chunk;
    let s = ChunkStore::open(&cfg, Arc::new(RealIo)).unwrap();
    let data = buffer(chunk);
    let n = total / chunk;
    let t = Instant::now();
    for id in 0..n as u64 {
        s.write_chunk(id, &data).unwrap();
    }
    let calls = t.elapsed();
    s.barrier().unwrap();
    let w = t.elapsed();
    if std::env::var("BENCH_VERBOSE").is_ok() {
        eprintln!("    chunk write calls {calls:?}, barrier {:?}", w - calls);
    }
    for id in 0..n as u64 {
        drop_cache(&s.path_of(id));
    }
    let mut buf = vec![0u8; chunk];
    let t = Instant::now();
    // A sequential reader keeps the next READ_AHEAD_BYTES announced, as
    // ObjectReader does.
    let ahead = namespace::read_ahead_chunks(chunk) as u64;
    for id in 0..ahead.min(n as u64) {
        s.prefetch(id);
    }
    for id in 0..n as u64 {
        s.prefetch(id + ahead);
        s.read(id, 0, &mut buf).unwrap();
    }
    let r = t.elapsed();
    (mibps(n * chunk, w), mibps(n * chunk, r))
}

/// Plain file I/O baseline: buffered 8 MiB writes + fsync, then reads.
fn plain_run(dir: &Path, total: usize) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("plain");
    let block = 8 << 20;
    let data = buffer(block);
    let t = Instant::now();
    let mut f = File::create(&p).unwrap();
    for _ in 0..total / block {
        f.write_all(&data).unwrap();
    }
    f.sync_all().unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
    let w = t.elapsed();
    drop(f);
    drop_cache(&p);
    let mut buf = vec![0u8; block];
    let f = File::open(&p).unwrap();
    let t = Instant::now();
    let mut off = 0u64;
    use std::os::unix::fs::FileExt;
    while (off as usize) < total {
        f.read_exact_at(&mut buf, off).unwrap();
        off += block as u64;
    }
    let r = t.elapsed();
    (mibps(total, w), mibps(total, r))
}

fn bench_chunkstore(a: &Args) {
    let total = a.mib << 20;
    let (mut cw, mut cr, mut pw, mut pr) = (vec![], vec![], vec![], vec![]);
    for run in 0..a.runs {
        // Alternate which side goes first, so that drift and burst budgets
        // of a shared disk hit both sides alike.
        for side in [run % 2, 1 - run % 2] {
            if side == 0 {
                let (w, r) = plain_run(&a.dir.join("plain"), total);
                pw.push(w);
                pr.push(r);
                let _ = std::fs::remove_dir_all(a.dir.join("plain"));
            } else {
                let (w, r) = chunk_run(&a.dir.join("chunks"), total, chunkstore::DEFAULT_CHUNK_SIZE_BYTES);
                cw.push(w);
                cr.push(r);
                let _ = std::fs::remove_dir_all(a.dir.join("chunks"));
            }
            if std::env::var("BENCH_VERBOSE").is_ok() {
                eprintln!("    run {run} side {side}: plain {pw:?} chunks {cw:?}");
            }
        }
    }
    let (cw, cr, pw, pr) = (median(cw), median(cr), median(pw), median(pr));
    println!("chunkstore {} MiB, {} runs, median MiB/s:", a.mib, a.runs);
    println!("  write durable: chunkstore {cw:.0}  plain+fsync {pw:.0}  ratio {:.2}", cw / pw);
    println!("  read:          chunkstore {cr:.0}  plain       {pr:.0}  ratio {:.2}", cr / pr);
    let _ = std::fs::remove_dir_all(&a.dir);
}

fn bench_chunk_sizes(a: &Args) {
    let total = a.mib << 20;
    println!("chunk size sweep, {} MiB each, median of {} runs (MiB/s):", a.mib, a.runs);
    for chunk_mib in [1usize, 2, 4, 8, 16, 32] {
        let (mut w, mut r) = (vec![], vec![]);
        for _ in 0..a.runs {
            let (x, y) = chunk_run(&a.dir.join("sweep"), total, chunk_mib << 20);
            w.push(x);
            r.push(y);
        }
        println!("  {chunk_mib:>2} MiB chunks: write {:.0}  read {:.0}", median(w), median(r));
    }
    let _ = std::fs::remove_dir_all(&a.dir);
}

fn open_ns(dir: &Path) -> Arc<Namespace> {
    let _ = std::fs::remove_dir_all(dir);
    let cfg = NamespaceConfig::new(dir);
    Arc::new(Namespace::open(cfg).unwrap().0)
}

fn rate(label: &str, n: usize, d: Duration) {
    println!(
        "  {label:<22} {:>9.0} ops/s  ({:.1} us/op)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64() * 1e6 / n as f64
    );
}

/// Runs `f(i)` for i in 0..n on `threads` threads; returns the wall time.
fn parallel(n: usize, threads: usize, f: impl Fn(usize) + Sync) -> Duration {
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            let f = &f;
            s.spawn(move || {
                let mut i = th;
                while i < n {
                    f(i);
                    i += threads;
                }
            });
        }
    });
    t.elapsed()
}

fn bench_ops(a: &Args) {
    let ns = open_ns(&a.dir.join("ops"));
    let r = Caller::root();
    let b = ns.mkdir(&r, ROOT_INO, b"bench", 0o755).unwrap().ino;
    let n = a.n;
    println!("namespace operations, n = {n} (each mutation durable before it returns):");
    let d = parallel(n, 1, |i| {
        ns.create(&r, b, format!("f{i:08}").as_bytes(), 0o644, CreateMode::Guarded).unwrap();
    });
    rate("create, 1 thread", n, d);
    let d = parallel(n, 8, |i| {
        ns.create(&r, b, format!("g{i:08}").as_bytes(), 0o644, CreateMode::Guarded).unwrap();
    });
    rate("create, 8 threads", n, d);
    let d = parallel(n, 1, |i| {
        ns.lookup(&r, b, format!("f{i:08}").as_bytes()).unwrap();
    });
    rate("lookup", n, d);
    let ino = ns.lookup(&r, b, b"f00000000").unwrap().ino;
    let d = parallel(n, 1, |_| {
        ns.getattr(ino).unwrap();
    });
    rate("getattr", n, d);
    // 2n entries; cookies start at 3. Pages start all over the directory.
    let pages = (n / 10).max(1);
    let span = (2 * n / 100).max(1);
    let d = parallel(pages, 1, |i| {
        let (page, _) = ns.readdir(&r, b, ((i * 37) % span * 100) as u64 + 2, 100).unwrap();
        assert!(!page.is_empty());
    });
    rate("readdir page of 100", pages, d);
    let d = parallel(n, 1, |i| {
        ns.rename(&r, b, format!("f{i:08}").as_bytes(), b, format!("r{i:08}").as_bytes()).unwrap();
    });
    rate("rename, 1 thread", n, d);
    let d = parallel(n, 8, |i| {
        ns.rename(&r, b, format!("g{i:08}").as_bytes(), b, format!("s{i:08}").as_bytes()).unwrap();
    });
    rate("rename, 8 threads", n, d);
    let _ = std::fs::remove_dir_all(&a.dir);
}

fn bench_list(a: &Args) {
    let r = Caller::root();
    let dirs = 1000.min(a.keys);
    let ns = if a.reuse {
        // A data directory an earlier `list --keys N --dir D` left behind.
        Arc::new(Namespace::open(NamespaceConfig::new(a.dir.join("list"))).unwrap().0)
    } else {
        let ns = open_ns(&a.dir.join("list"));
        let bucket = ns.create_bucket(&r, b"bench").unwrap().ino;
        // Keys d0000/k00000000 ...: 1000 directories, like a sharded dataset.
        let mut dir_inos = Vec::new();
        for d in 0..dirs {
            dir_inos.push(ns.mkdir(&r, bucket, format!("d{d:04}").as_bytes(), 0o755).unwrap().ino);
        }
        let t = Instant::now();
        parallel(a.keys, 8, |i| {
            ns.create(&r, dir_inos[i % dirs], format!("k{i:08}").as_bytes(), 0o644, CreateMode::Guarded).unwrap();
        });
        println!("loaded {} keys in {:.1}s; peak RSS {:.0} MiB", a.keys, t.elapsed().as_secs_f64(), peak_rss_mib());
        ns
    };
    let (mut cold, mut times) = (Vec::new(), Vec::new());
    for run in 0..9 {
        // Start pages at different points of the key space; time each page
        // first cold (as the first client to ask) and then warm.
        let d = (run * 97) % dirs;
        let p =
            ListParams { start_after: Some(format!("d{d:04}/").into_bytes()), max_keys: 1000, ..Default::default() };
        for pass in 0..2 {
            let t = Instant::now();
            let page = ns.list_objects(&r, b"bench", &p).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if pass == 0 {
                cold.push(ms)
            } else {
                times.push(ms)
            }
            assert_eq!(page.entries.len(), 1000.min(a.keys - (a.keys / dirs) * d));
        }
    }
    let mut delim_times = Vec::new();
    for run in 0..9 {
        let p = ListParams {
            prefix: format!("d{:04}/", (run * 97) % dirs).into_bytes(),
            delimiter: Some(b"/".to_vec()),
            max_keys: 1000,
            ..Default::default()
        };
        let t = Instant::now();
        ns.list_objects(&r, b"bench", &p).unwrap();
        delim_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "list one 1000-key page from {} keys: median {:.2} ms warm, {:.2} ms cold (with prefix+delimiter: {:.2} ms); peak RSS {:.0} MiB",
        a.keys,
        median(times),
        median(cold),
        median(delim_times),
        peak_rss_mib()
    );
}

fn bench_multipart(a: &Args) {
    let ns = open_ns(&a.dir.join("mpu"));
    let r = Caller::root();
    ns.create_bucket(&r, b"bench").unwrap();
    let part = buffer(a.part_mib << 20);
    let parts = a.mib / a.part_mib;
    let mut times = Vec::new();
    for run in 0..a.runs {
        let id = ns.create_upload(&r, b"bench", format!("obj{run}").as_bytes(), ObjMeta::default()).unwrap();
        let mut list = Vec::new();
        let t = Instant::now();
        for n in 1..=parts as u32 {
            let mut w = ns.object_writer();
            w.write(&part).unwrap();
            let info = ns.upload_part(&id, n, w.finish().unwrap()).unwrap();
            list.push(CompletePart { part_number: n, etag: info.etag });
        }
        let upload = t.elapsed();
        let t = Instant::now();
        let done = ns.complete_upload(&r, &id, &list, WriteCondition::None).unwrap();
        let c = t.elapsed();
        assert_eq!(done.info.inode.size, (parts * part.len()) as u64);
        println!(
            "  run {run}: parts uploaded at {:.0} MiB/s; complete {:.2} ms",
            mibps(parts * part.len(), upload),
            c.as_secs_f64() * 1e3
        );
        times.push(c.as_secs_f64() * 1e3);
    }
    println!("multipart complete of {} MiB in {} MiB parts: median {:.2} ms", a.mib, a.part_mib, median(times));
    let _ = std::fs::remove_dir_all(&a.dir);
}

/// Start-up time of a large namespace: `--keys` objects of 4 KiB, one
/// chunk file each, in 1000 directories (loaded with unstable writes and
/// one final sync, so loading takes minutes, not hours); then `--runs`
/// timed opens. `--reuse` skips loading (same `--dir`).
fn bench_startup(a: &Args) {
    let dir = a.dir.join("startup");
    if !a.reuse {
        let ns = open_ns(&dir);
        let r = Caller::root();
        let bucket = ns.create_bucket(&r, b"bench").unwrap().ino;
        let dirs = 1000.min(a.keys);
        let dir_inos: Vec<u64> =
            (0..dirs).map(|d| ns.mkdir(&r, bucket, format!("d{d:04}").as_bytes(), 0o755).unwrap().ino).collect();
        let data = buffer(4096);
        let t = Instant::now();
        parallel(a.keys, 8, |i| {
            let f =
                ns.create(&r, dir_inos[i % dirs], format!("k{i:08}").as_bytes(), 0o644, CreateMode::Guarded).unwrap();
            ns.write_with(&r, f.ino, 0, &data, namespace::Stability::Unstable).unwrap();
        });
        ns.sync().unwrap();
        println!("loaded {} objects of 4 KiB (a chunk each) in {:.1}s", a.keys, t.elapsed().as_secs_f64());
    }
    let mut times = Vec::new();
    for run in 0..a.runs {
        // As the gateway opens it: the orphan-chunk scan deferred to the
        // background, timed here on its own.
        let mut cfg = NamespaceConfig::new(&dir);
        cfg.defer_startup_orphan_scan = true;
        let t = Instant::now();
        let (ns, report) = Namespace::open(cfg).unwrap();
        let s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let n = ns.scan_orphan_chunks_from_before_start().unwrap();
        let scan = t.elapsed().as_secs_f64();
        println!(
            "open #{run}: {s:.2}s (then the background orphan scan: {scan:.2}s, {n} deleted), peak RSS {:.0} MiB, {report:?}",
            peak_rss_mib()
        );
        times.push(s);
        drop(ns);
    }
    println!("start-up with {} objects: median open {:.2}s", a.keys, median(times));
}

/// Offline fsck rate: `--mib` MiB of 16 MiB objects (4 MiB chunks) and
/// 2,000 small objects, verified right after being written (page cache
/// warm: a cold-cache figure needs the cache dropped by root).
fn bench_fsck(a: &Args) {
    let dir = a.dir.join("fsck");
    let _ = std::fs::remove_dir_all(&dir);
    let r = Caller::root();
    {
        let mut cfg = NamespaceConfig::new(&dir);
        cfg.chunk_size_bytes = 4 << 20;
        let ns = Arc::new(Namespace::open(cfg).unwrap().0);
        ns.create_bucket(&r, b"bkt").unwrap();
        let obj = buffer(16 << 20);
        for i in 0..a.mib / 16 {
            let key = format!("d{}/o{i}", i % 8);
            ns.put_object_bytes(&r, b"bkt", key.as_bytes(), &obj, Default::default()).unwrap();
        }
        for i in 0..2000 {
            ns.put_object_bytes(&r, b"bkt", format!("small/{i}").as_bytes(), b"tiny", Default::default()).unwrap();
        }
    }
    let mut cfg = NamespaceConfig::new(&dir);
    cfg.chunk_size_bytes = 4 << 20;
    let ns = Namespace::open_offline(cfg).unwrap();
    let t = Instant::now();
    let report = ns.fsck(&namespace::FsckOptions::default(), &mut |_| {}).unwrap();
    let s = t.elapsed().as_secs_f64();
    assert!(report.is_clean(), "{:#?}", report.problems);
    println!(
        "fsck: {} inodes, {} chunks, {} MiB verified in {s:.2} s = {:.0} MiB/s (page cache warm from the writes)",
        report.inodes,
        report.chunks_verified,
        report.bytes_verified >> 20,
        (report.bytes_verified >> 20) as f64 / s
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let a = parse();
    match a.what.as_str() {
        "chunkstore" => bench_chunkstore(&a),
        "chunk-sizes" => bench_chunk_sizes(&a),
        "ops" => bench_ops(&a),
        "list" => bench_list(&a),
        "multipart" => bench_multipart(&a),
        "startup" => bench_startup(&a),
        "fsck" => bench_fsck(&a),
        "crc" => crc::bench_crc(),
        _ => eprintln!("usage: namespace-bench chunkstore|chunk-sizes|ops|list|multipart|startup|fsck|crc [--mib N] [--runs N] [--n N] [--keys N] [--part-mib N] [--dir D]"),
    }
}
