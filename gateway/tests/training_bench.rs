//! `gateway bench` end to end at a tiny scale: a real gateway on loopback
//! ports, then `bench prepare` and `bench run` of every workload against a
//! directory, the gateway over S3 and the gateway over NFS. The runner
//! checks every byte it reads against the seeded pattern (a mismatch fails
//! the run); the test also checks a file written by prepare directly, that
//! a corrupted byte is caught, that the JSON and CSV parse, and that the
//! plots (PNG and SVG) decode and the markdown page links them all.

use std::path::Path;
use std::process::Output;
use std::time::Instant;

mod common;

use common::{gateway, Gateway};

const ACCESS_KEY: &str = "AKBENCH";
const SECRET_KEY: &str = "bench-secret-8f3kQ";
const BUCKET: &str = "bench";
const SEED: &str = "7";

fn start(dir: &Path) -> Gateway {
    let data = dir.join("data");
    let out = gateway().args(["bucket", "create", BUCKET, "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "bucket create: {}", String::from_utf8_lossy(&out.stderr));
    common::start(dir, "[nfs_export_defaults]\nsquash = \"none\"\n", ACCESS_KEY, SECRET_KEY, "warn", &[])
}

/// `gateway bench <cmd> <targets> <tiny options>`.
fn bench(gw: &Gateway, cmd: &str, targets: &[String], extra: &[&str], out: &Path) -> Output {
    let scale = if extra.contains(&"--scale") { &[][..] } else { &["--scale", "0.0002"][..] };
    let o = gateway()
        .args(["bench", cmd])
        .args(targets)
        .args(scale)
        .args(["--seed", SEED, "--sample-scale", "0.001", "--accelerators", "2"])
        .args(["--workers", "4", "--compute-ms", "1", "--nfs-connections", "4", "--s3-list-keys", "40", "--quiet"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg("--endpoint")
        .arg(format!("http://{}", gw.s3))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    eprintln!("--- bench {cmd} stdout\n{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("--- bench {cmd} stderr\n{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn check_results(out: &Path, targets: &[String], phases: &[(&str, &str)]) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    for (w, p) in phases {
        for t in targets {
            let r = rows
                .iter()
                .find(|r| r["workload"] == *w && r["phase"] == *p && r["target"] == t.as_str())
                .unwrap_or_else(|| panic!("no row {w}/{p}/{t}"));
            assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
            assert_eq!(r["verified"], true);
            assert!(r["ratio_vs_first"].as_f64().is_some(), "{r}");
            if *p == "train" {
                let au = r["au_pct"].as_f64().unwrap();
                assert!(au > 0.0 && au <= 100.5, "{r}");
            }
        }
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "workload");
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), rows.len());
    for l in body {
        assert_eq!(l.split(',').count(), header.len(), "{l}");
    }
}

/// Every plot the page links exists: the PNG decodes to the plot's size
/// with more than one colour, the SVG is well-formed XML naming every
/// target in its legend.
fn check_plots(page_dir: &Path, page: &str, targets: &[String]) -> usize {
    let mut pngs = 0;
    for line in page.lines().filter(|l| l.starts_with("![")) {
        let link = &line[line.find("](").unwrap() + 2..line.len() - 1];
        let png = page_dir.join(link);
        let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap_or_else(|e| panic!("{link}: {e}")));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (960, 540), "{link}");
        let first = &buf[..3];
        assert!(buf.chunks(3).any(|px| px != first), "{link} is blank");
        let svg = std::fs::read_to_string(png.with_extension("svg")).unwrap();
        let mut r = quick_xml::Reader::from_str(&svg);
        let mut texts = String::new();
        loop {
            match r.read_event().unwrap_or_else(|e| panic!("{link} svg: {e}")) {
                quick_xml::events::Event::Eof => break,
                quick_xml::events::Event::Text(t) => texts.push_str(&t.unescape().unwrap()),
                _ => {}
            }
        }
        for t in targets {
            assert!(texts.contains(t.as_str()), "{link}: no legend for {t}");
        }
        pngs += 1;
    }
    pngs
}

#[test]
fn prepare_and_run_every_workload_on_file_s3_and_nfs() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let local = dir.path().join("local");
    let targets = vec![
        format!("file://{}", local.display()),
        format!("s3://{BUCKET}/s3run"),
        format!("nfs://127.0.0.1:{}/{BUCKET}/nfsrun", gw.nfs.port()),
    ];
    let t0 = Instant::now();
    let o = bench(&gw, "prepare", &targets, &[], &dir.path().join("prep"));
    assert!(o.status.success(), "prepare failed");
    check_results(
        &dir.path().join("prep"),
        &targets,
        &[("unet3d", "prepare"), ("resnet50", "prepare"), ("metadata", "prepare")],
    );
    // A prepared file holds exactly the pattern's bytes.
    let f = "cosmoflow/univ_0000003.tfrecord";
    let bytes = std::fs::read(local.join(f)).unwrap();
    let key = training_bench::pattern::content_key(SEED.parse().unwrap(), f);
    assert!(!bytes.is_empty());
    assert_eq!(training_bench::pattern::first_mismatch(key, 0, &bytes), None);

    let run_out = dir.path().join("run");
    let o = bench(&gw, "run", &targets, &[], &run_out);
    assert!(o.status.success(), "run failed");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("x first") && stdout.contains("real") && stdout.contains("scaled"), "{stdout}");
    check_results(
        &run_out,
        &targets,
        &[
            ("unet3d", "train"),
            ("resnet50", "train"),
            ("cosmoflow", "train"),
            ("shards", "train"),
            ("indexed", "train"),
            ("checkpoint", "write"),
            ("checkpoint", "read"),
            ("metadata", "list"),
            ("metadata", "stat"),
        ],
    );
    // Checkpoint files above one part: S3 multipart (two parts), NFS
    // writes spread over the connections, then COMMIT.
    let o = bench(&gw, "run", &targets[1..], &["-w", "checkpoint", "--scale", "0.0007"], &dir.path().join("mp"));
    assert!(o.status.success(), "multipart checkpoint failed");
    check_results(&dir.path().join("mp"), &targets[1..], &[("checkpoint", "write"), ("checkpoint", "read")]);
    // Only the directory's page cache can be dropped before the restore.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_out.join("results.json")).unwrap()).unwrap();
    let dropped: Vec<(String, bool)> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "read")
        .map(|r| (r["target"].as_str().unwrap().to_string(), r["cache_dropped"].as_bool().unwrap()))
        .collect();
    assert_eq!(dropped, vec![(targets[0].clone(), true), (targets[1].clone(), false), (targets[2].clone(), false)]);
    // The run's page: every plot of it, AU first; one throughput and one
    // latency plot per training workload.
    let page = std::fs::read_to_string(run_out.join("report.md")).unwrap();
    assert!(page.contains("![Accelerator utilisation"), "{page}");
    for w in ["unet3d", "resnet50", "cosmoflow", "shards", "indexed"] {
        assert!(page.contains(&format!("(latency-{w}-train.png)")), "{w}: {page}");
    }
    assert!(page.contains("(throughput-checkpoint-write.png)"), "{page}");
    assert!(page.contains(&format!("| checkpoint | read | `{}` |", targets[1])), "{page}");
    assert!(page.contains("Caches not dropped before the checkpoint restore on: "), "{page}");
    assert!(check_plots(&run_out, &page, &targets) >= 12);
    // `bench report` over the runs: the tables again, and one page with
    // every run's plots, linked from where the page is.
    let page_dir = dir.path().join("page");
    let r = gateway()
        .args(["bench", "report"])
        .arg(&run_out)
        .arg(dir.path().join("mp"))
        .arg("--out")
        .arg(&page_dir)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("checkpoint"));
    let page = std::fs::read_to_string(page_dir.join("report.md")).unwrap();
    assert!(page.contains("## Run 1: `run`") && page.contains("## Run 2: `run`"), "{page}");
    assert!(page.contains("(../mp/throughput-checkpoint-read.png)"), "{page}");
    assert!(check_plots(&page_dir, &page, &targets[1..]) >= 14);

    // The check is real: one flipped byte fails the run.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0x20;
    std::fs::write(local.join(f), &bad).unwrap();
    let o = bench(&gw, "run", &targets[..1], &["-w", "cosmoflow"], &dir.path().join("bad"));
    assert!(!o.status.success(), "a corrupted byte went unnoticed");
    assert!(String::from_utf8_lossy(&o.stderr).contains("verification failed"));
    // A run with another seed refuses the dataset.
    std::fs::write(local.join(f), &bytes).unwrap();
    let o = gateway()
        .args(["bench", "run"])
        .arg(&targets[0])
        .args(["-w", "cosmoflow", "--seed", "8", "--scale", "0.0002", "--sample-scale", "0.001", "--quiet"])
        .arg("--out")
        .arg(dir.path().join("seed"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("prepare"), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("end to end in {:?}", t0.elapsed());
}

/// A CA and a certificate it signed for `s3.test` and `*.s3.test`:
/// (CA PEM, certificate PEM, key PEM).
fn test_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["s3.test".to_string(), "*.s3.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// An `https://` endpoint with virtual-hosted-style requests
/// (`bench.s3.test`, resolved with `--resolve`), trusted through
/// `--ca-file`; the endpoint named in the target URL itself, next to a
/// second s3:// target on the plain endpoint given by `--endpoint`.
#[test]
fn s3_targets_over_tls_with_virtual_hosted_addressing() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificate();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let tls_dir = dir.path().join("tls");
    let out = gateway().args(["bucket", "create", BUCKET, "--data-dir"]).arg(tls_dir.join("data")).output().unwrap();
    assert!(out.status.success(), "bucket create: {}", String::from_utf8_lossy(&out.stderr));
    let config = format!(
        "virtual_host_base = \"s3.test\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let gw = common::start(&tls_dir, &config, ACCESS_KEY, SECRET_KEY, "warn", &[]);
    assert!(gw.stdout.iter().any(|l| l.starts_with("S3 listening on https://")), "{:?}", gw.stdout);
    let port = gw.s3.port();
    let tls_target = format!("s3://{BUCKET}/tls?endpoint=https://s3.test:{port}&addressing=virtual");
    let targets = vec![tls_target.clone()];
    let resolve = "bench.s3.test:127.0.0.1".to_string();
    let ca_file = dir.path().join("ca.pem").display().to_string();
    let args = ["-w", "cosmoflow,metadata", "--resolve", &resolve, "--ca-file", &ca_file];
    let o = bench(&gw, "prepare", &targets, &args, &dir.path().join("prep"));
    assert!(o.status.success(), "prepare over TLS failed");
    let o = bench(&gw, "run", &targets, &args, &dir.path().join("run"));
    assert!(o.status.success(), "run over TLS failed");
    check_results(
        &dir.path().join("run"),
        &targets,
        &[("cosmoflow", "train"), ("metadata", "list"), ("metadata", "stat")],
    );
    // The objects are where virtual-hosted requests put them: path-style
    // requests for bucket `bench`, prefix `tls` read the same dataset.
    let path_style = format!("s3://{BUCKET}/tls?endpoint=https://s3.test:{port}&addressing=path");
    let resolve_base = "s3.test:127.0.0.1".to_string();
    let o = bench(
        &gw,
        "run",
        std::slice::from_ref(&path_style),
        &["-w", "cosmoflow", "--resolve", &resolve_base, "--ca-file", &ca_file],
        &dir.path().join("path"),
    );
    assert!(o.status.success(), "path-style run of the virtual-hosted dataset failed");
    check_results(&dir.path().join("path"), &[path_style], &[("cosmoflow", "train")]);
    // Without the CA the handshake fails, and says so.
    let o = bench(&gw, "run", &targets, &["-w", "cosmoflow", "--resolve", &resolve], &dir.path().join("noca"));
    assert!(!o.status.success(), "an untrusted certificate was accepted");
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("unknownissuer"), "{err}");
}
