//! The quarantine: `<data>/quarantine/`, where repair puts what it takes
//! out of the namespace, and its report `quarantine.jsonl` (one
//! [`QuarantineRecord`] per line, version [`QUARANTINE_RECORD_VERSION`]).
//!
//! This module owns every file fsck writes outside the stores: report
//! lines, salvaged bytes (`lost/<ino>`) and quarantined chunk files
//! (`chunks/<id>`, moved by the chunk store). It decides nothing; repair
//! calls it, and it imports nothing else from fsck.
//!
//! Invariant: each report line is appended and fsync'd (file and
//! directory) before the metadata change it describes, so an interrupted
//! repair is never silent. (A damaged chunk file is moved first and
//! recorded right after: the move changes no metadata and loses nothing.)

use std::io::{BufRead, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use metastore::Direction;

use crate::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::full_scan::SCAN_PAGE_ROWS;
use crate::record::{self, Extent, Inode, Kind};
use crate::{keys, Namespace, NsError, NsResult};

/// Quarantine records read back into a report (the newest ones).
const QUARANTINE_RECORDS_MAX: usize = 10_000;
/// Version of a quarantine report line.
pub const QUARANTINE_RECORD_VERSION: u8 = 1;
/// Name of the quarantine directory inside the data directory.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Name of the quarantine report inside [`QUARANTINE_DIR`].
pub const QUARANTINE_REPORT: &str = "quarantine.jsonl";

/// A line of the quarantine report, `<data>/quarantine/quarantine.jsonl`:
/// what repair took out of the namespace, so an operator can find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// Record version ([`QUARANTINE_RECORD_VERSION`]).
    pub v: u8,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
    /// `"file"` (unlinked), `"part"` (a multipart part dropped), `"chunk"`
    /// (moved into `quarantine/chunks/`) or `"record"` (a metadata record
    /// deleted; `raw_hex` holds its bytes).
    pub what: String,
    /// The file's former paths (`bucket/key`), when it had names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The inode, for files and parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// The chunk, for chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u64>,
    /// Where the bytes went (a quarantined chunk file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// The metadata tree and key (hex) of a deleted record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The deleted record's value (hex, at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    /// What was wrong.
    pub problem: String,
}

impl QuarantineRecord {
    /// A record of `problem`, stamped now; the caller fills in the rest.
    pub(super) fn new(problem: &str) -> Self {
        let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        QuarantineRecord {
            v: QUARANTINE_RECORD_VERSION,
            at_unix_secs: at,
            what: String::new(),
            paths: Vec::new(),
            ino: None,
            chunk: None,
            moved_to: None,
            record: None,
            raw_hex: None,
            problem: problem.to_string(),
        }
    }
}

impl Namespace {
    /// `<data>/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.cfg.data_dir.join(QUARANTINE_DIR)
    }

    /// Copies the bytes of inode `ino` (a file, or a symlink's target) into
    /// `<qdir>/lost/<ino>` (`.symlink-target` for a symlink), as far as its
    /// extents decode and its chunks verify, and fsyncs the copy and the
    /// directory. Returns the copy's path and the offsets of the extents
    /// that could not be read (left as zeros).
    pub(super) fn copy_to_lost(&self, qdir: &Path, ino: u64, inode: &Inode) -> NsResult<(PathBuf, Vec<u64>)> {
        use std::os::unix::fs::FileExt;
        let io = |e: std::io::Error| NsError::Internal(format!("salvaging inode {ino} into {}: {e}", qdir.display()));
        let lost = qdir.join("lost");
        std::fs::create_dir_all(&lost).map_err(io)?;
        let mut dest = lost.join(ino.to_string());
        if inode.kind == Kind::Symlink {
            dest.set_extension("symlink-target");
        }
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&dest).map_err(io)?;
        let mut unreadable = Vec::new();
        if inode.kind == Kind::Symlink {
            f.write_all_at(&inode.target, 0).map_err(io)?;
        } else {
            let mut from = keys::pair(ino, 0).to_vec();
            let hi = keys::pair(ino, u64::MAX);
            let mut first = true;
            loop {
                let lo = if first { Bound::Included(&from[..]) } else { Bound::Excluded(&from[..]) };
                let rows = self.meta.scan(
                    Tree::Extents,
                    (lo, Bound::Included(&hi[..])),
                    SCAN_PAGE_ROWS,
                    Direction::Forward,
                )?;
                first = false;
                for (k, v) in &rows {
                    let (_, off) = keys::unpair(k);
                    let Ok(e) = record::decode::<Extent>("extent", v) else {
                        unreadable.push(off);
                        continue;
                    };
                    let mut buf = vec![0u8; e.len as usize];
                    match self.chunks.read(e.chunk, e.chunk_off as u64, &mut buf) {
                        Ok(()) => f.write_all_at(&buf, off).map_err(io)?,
                        Err(_) => unreadable.push(off),
                    }
                }
                match rows.last() {
                    Some((k, _)) if rows.len() == SCAN_PAGE_ROWS => from = k.clone(),
                    _ => break,
                }
            }
            f.set_len(inode.size).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        std::fs::File::open(&lost).and_then(|d| d.sync_all()).map_err(io)?;
        Ok((dest, unreadable))
    }

    /// Moves a damaged chunk file into `<qdir>/chunks/` and records it in
    /// the quarantine report. Returns what was done.
    pub(super) fn quarantine_chunk(&self, qdir: &Path, chunk: u64, why: &str) -> NsResult<String> {
        let dest = self.chunks.quarantine(chunk, &qdir.join("chunks"))?;
        let rec = QuarantineRecord {
            what: "chunk".into(),
            chunk: Some(chunk),
            moved_to: dest.as_ref().map(|d| d.display().to_string()),
            ..QuarantineRecord::new(why)
        };
        append_quarantine(qdir, &rec)?;
        Ok(match dest {
            Some(d) => format!("moved to {}", d.display()),
            None => "no file to move".into(),
        })
    }
}

/// Appends one line to the quarantine report and fsyncs it, before the
/// action it describes, so an interrupted repair is never silent.
pub(super) fn append_quarantine(qdir: &Path, rec: &QuarantineRecord) -> NsResult<()> {
    let io = |e: std::io::Error| NsError::Internal(format!("quarantine report in {}: {e}", qdir.display()));
    std::fs::create_dir_all(qdir).map_err(io)?;
    let path = qdir.join(QUARANTINE_REPORT);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    let mut line = serde_json::to_vec(rec).map_err(|e| NsError::Internal(e.to_string()))?;
    line.push(b'\n');
    f.write_all(&line).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::File::open(qdir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// The newest quarantine records (lines that do not parse are skipped).
pub(super) fn read_quarantine(qdir: &Path) -> NsResult<(Vec<QuarantineRecord>, u64)> {
    let path = qdir.join(QUARANTINE_REPORT);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(NsError::Internal(format!("reading {}: {e}", path.display()))),
    };
    let mut out = std::collections::VecDeque::new();
    let mut omitted = 0;
    for line in std::io::BufReader::new(f).split(b'\n') {
        let line = line.map_err(|e| NsError::Internal(format!("reading {}: {e}", path.display())))?;
        if let Ok(r) = serde_json::from_slice::<QuarantineRecord>(&line) {
            out.push_back(r);
            if out.len() > QUARANTINE_RECORDS_MAX {
                out.pop_front();
                omitted += 1;
            }
        }
    }
    Ok((out.into(), omitted))
}
