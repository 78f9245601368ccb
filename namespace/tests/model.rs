//! Model-based property test: random sequences of namespace operations,
//! restarts included, run against the real namespace (sled + chunk files)
//! and a simple in-memory model; every result and the whole observable
//! state (tree, attributes that matter, file bytes, S3 listing) must agree.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 64).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use common::*;
use namespace::{CreateMode, Kind, ListEntry, ListParams, Namespace, NsError, PutOptions, SetAttr};
use proptest::prelude::*;

const DIRS: [&str; 4] = ["", "d1", "d2", "d1/d3"];
const NAMES: [&str; 4] = ["a", "b", "d1", "d3"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize, usize),
    Mkdir(usize, usize),
    Write(usize, usize, u32, u32, u8),
    Truncate(usize, usize, u32),
    Remove(usize, usize),
    Rmdir(usize, usize),
    Rename(usize, usize, usize, usize),
    Link(usize, usize, usize, usize),
    Put(usize, usize, u32, u8),
    Delete(usize, usize),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DIRS.len();
    let n = 0..NAMES.len();
    prop_oneof![
        3 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        3 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        4 => (d.clone(), n.clone(), 0u32..150_000, 0u32..70_000, any::<u8>()).prop_map(|(d, n, o, l, s)| Op::Write(d, n, o, l, s)),
        2 => (d.clone(), n.clone(), 0u32..200_000).prop_map(|(d, n, s)| Op::Truncate(d, n, s)),
        2 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Remove(d, n)),
        2 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Rmdir(d, n)),
        3 => (d.clone(), n.clone(), d.clone(), n.clone()).prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
        1 => (d.clone(), n.clone(), d.clone(), n.clone()).prop_map(|(a, b, c, e)| Op::Link(a, b, c, e)),
        3 => (d.clone(), n.clone(), 0u32..150_000, any::<u8>()).prop_map(|(d, n, l, s)| Op::Put(d, n, l, s)),
        2 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Delete(d, n)),
        1 => Just(Op::Restart),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum MNode {
    Dir { auto: bool },
    File(u64),
}

/// The model: paths relative to the bucket, and file contents by file id
/// (hard links share an id).
#[derive(Default, Debug)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    files: HashMap<u64, Vec<u8>>,
    next_fid: u64,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

impl Model {
    fn is_dir(&self, p: &str) -> bool {
        p.is_empty() || matches!(self.nodes.get(p), Some(MNode::Dir { .. }))
    }
    fn children(&self, dir: &str) -> Vec<String> {
        self.nodes.keys().filter(|k| parent_of(k) == dir && !k.is_empty()).cloned().collect()
    }
    fn adopt(&mut self, dir: &str) {
        if let Some(MNode::Dir { auto }) = self.nodes.get_mut(dir) {
            *auto = false;
        }
    }
    fn new_file(&mut self, data: Vec<u8>) -> u64 {
        self.next_fid += 1;
        self.files.insert(self.next_fid, data);
        self.next_fid
    }
    fn gc(&mut self) {
        let live: std::collections::HashSet<u64> =
            self.nodes.values().filter_map(|n| if let MNode::File(f) = n { Some(*f) } else { None }).collect();
        self.files.retain(|f, _| live.contains(f));
    }

    /// Applies `op`; returns whether it should succeed.
    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::Create(d, n) | Op::Mkdir(d, n) => {
                let (dir, p) = (DIRS[d], join(DIRS[d], NAMES[n]));
                if !self.is_dir(dir) || self.nodes.contains_key(&p) {
                    return false;
                }
                let node = if matches!(op, Op::Create(..)) {
                    MNode::File(self.new_file(vec![]))
                } else {
                    MNode::Dir { auto: false }
                };
                self.nodes.insert(p, node);
                self.adopt(dir);
                true
            }
            Op::Write(d, n, off, len, seed) => {
                let Some(MNode::File(f)) = self.nodes.get(&join(DIRS[d], NAMES[n])).cloned() else { return false };
                let data = self.files.get_mut(&f).unwrap();
                let end = (off + len) as usize;
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[off as usize..end].copy_from_slice(&pattern(len as usize, seed as u64));
                true
            }
            Op::Truncate(d, n, size) => {
                let Some(MNode::File(f)) = self.nodes.get(&join(DIRS[d], NAMES[n])).cloned() else { return false };
                self.files.get_mut(&f).unwrap().resize(size as usize, 0);
                true
            }
            Op::Remove(d, n) => {
                let p = join(DIRS[d], NAMES[n]);
                if !self.is_dir(DIRS[d]) || !matches!(self.nodes.get(&p), Some(MNode::File(_))) {
                    return false;
                }
                self.nodes.remove(&p);
                self.adopt(DIRS[d]);
                self.gc();
                true
            }
            Op::Rmdir(d, n) => {
                let p = join(DIRS[d], NAMES[n]);
                if !self.is_dir(DIRS[d])
                    || !matches!(self.nodes.get(&p), Some(MNode::Dir { .. }))
                    || !self.children(&p).is_empty()
                {
                    return false;
                }
                self.nodes.remove(&p);
                self.adopt(DIRS[d]);
                true
            }
            Op::Rename(sd, sn, dd, dn) => {
                let (sp, dp) = (join(DIRS[sd], NAMES[sn]), join(DIRS[dd], NAMES[dn]));
                if !self.is_dir(DIRS[sd]) || !self.is_dir(DIRS[dd]) {
                    return false;
                }
                let Some(src) = self.nodes.get(&sp).cloned() else { return false };
                let dst = self.nodes.get(&dp).cloned();
                if let (MNode::File(a), Some(MNode::File(b))) = (&src, &dst) {
                    if a == b {
                        return true; // same file: nothing happens
                    }
                }
                if sp == dp {
                    return true;
                }
                let src_dir = matches!(src, MNode::Dir { .. });
                if src_dir && (DIRS[dd] == sp || DIRS[dd].starts_with(&format!("{sp}/"))) {
                    return false;
                }
                match (&src, &dst) {
                    (MNode::Dir { .. }, Some(MNode::File(_))) | (MNode::File(_), Some(MNode::Dir { .. })) => {
                        return false
                    }
                    (MNode::Dir { .. }, Some(MNode::Dir { .. })) if !self.children(&dp).is_empty() => return false,
                    _ => {}
                }
                let moved: Vec<(String, MNode)> = self
                    .nodes
                    .iter()
                    .filter(|(k, _)| *k == &sp || k.starts_with(&format!("{sp}/")))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.nodes.remove(&dp);
                for (k, _) in &moved {
                    self.nodes.remove(k);
                }
                for (k, v) in moved {
                    self.nodes.insert(format!("{dp}{}", &k[sp.len()..]), v);
                }
                self.adopt(DIRS[sd]);
                self.adopt(DIRS[dd]);
                self.gc();
                true
            }
            Op::Link(sd, sn, dd, dn) => {
                let (sp, dp) = (join(DIRS[sd], NAMES[sn]), join(DIRS[dd], NAMES[dn]));
                let Some(MNode::File(f)) = self.nodes.get(&sp).cloned() else { return false };
                if !self.is_dir(DIRS[dd]) || self.nodes.contains_key(&dp) {
                    return false;
                }
                self.nodes.insert(dp, MNode::File(f));
                self.adopt(DIRS[dd]);
                true
            }
            Op::Put(d, n, len, seed) => {
                let p = join(DIRS[d], NAMES[n]);
                let mut prefix = String::new();
                for comp in DIRS[d].split('/').filter(|c| !c.is_empty()) {
                    prefix = join(&prefix, comp);
                    match self.nodes.get(&prefix) {
                        Some(MNode::Dir { .. }) => {}
                        Some(MNode::File(_)) => return false,
                        None => {}
                    }
                }
                if matches!(self.nodes.get(&p), Some(MNode::Dir { .. })) {
                    return false;
                }
                let mut prefix = String::new();
                for comp in DIRS[d].split('/').filter(|c| !c.is_empty()) {
                    prefix = join(&prefix, comp);
                    self.nodes.entry(prefix.clone()).or_insert(MNode::Dir { auto: true });
                }
                let f = self.new_file(pattern(len as usize, seed as u64));
                self.nodes.insert(p, MNode::File(f));
                self.gc();
                true
            }
            Op::Delete(d, n) => {
                let p = join(DIRS[d], NAMES[n]);
                if !self.is_dir(DIRS[d]) || !matches!(self.nodes.get(&p), Some(MNode::File(_))) {
                    return true; // S3 deletes of missing keys succeed
                }
                self.nodes.remove(&p);
                let mut dir = DIRS[d].to_string();
                while !dir.is_empty()
                    && self.nodes.get(&dir) == Some(&MNode::Dir { auto: true })
                    && self.children(&dir).is_empty()
                {
                    self.nodes.remove(&dir);
                    dir = parent_of(&dir).to_string();
                }
                self.gc();
                true
            }
            Op::Restart => true,
        }
    }
}

/// Resolves a bucket-relative path to an inode id.
fn resolve(ns: &Namespace, bucket: u64, p: &str) -> Option<u64> {
    let mut ino = bucket;
    for c in p.split('/').filter(|c| !c.is_empty()) {
        ino = ns.lookup(&root(), ino, c.as_bytes()).ok()?.ino;
    }
    Some(ino)
}

fn run_real(ns: &Arc<Namespace>, b: u64, op: &Op) -> Result<(), NsError> {
    let r = root();
    let dir = |d: usize| resolve(ns, b, DIRS[d]).ok_or(NsError::NotFound);
    let file = |d: usize, n: usize| resolve(ns, b, &join(DIRS[d], NAMES[n])).ok_or(NsError::NotFound);
    match *op {
        Op::Create(d, n) => ns.create(&r, dir(d)?, NAMES[n].as_bytes(), 0o644, CreateMode::Guarded).map(|_| ()),
        Op::Mkdir(d, n) => ns.mkdir(&r, dir(d)?, NAMES[n].as_bytes(), 0o755).map(|_| ()),
        Op::Write(d, n, off, len, seed) => {
            ns.write(&r, file(d, n)?, off as u64, &pattern(len as usize, seed as u64)).map(|_| ())
        }
        Op::Truncate(d, n, size) => {
            ns.setattr(&r, file(d, n)?, &SetAttr { size: Some(size as u64), ..Default::default() }, None).map(|_| ())
        }
        Op::Remove(d, n) => ns.remove(&r, dir(d)?, NAMES[n].as_bytes()),
        Op::Rmdir(d, n) => ns.rmdir(&r, dir(d)?, NAMES[n].as_bytes()),
        Op::Rename(sd, sn, dd, dn) => ns.rename(&r, dir(sd)?, NAMES[sn].as_bytes(), dir(dd)?, NAMES[dn].as_bytes()),
        Op::Link(sd, sn, dd, dn) => ns.link(&r, file(sd, sn)?, dir(dd)?, NAMES[dn].as_bytes()).map(|_| ()),
        Op::Put(d, n, len, seed) => ns
            .put_object_bytes(
                &r,
                b"bkt",
                join(DIRS[d], NAMES[n]).as_bytes(),
                &pattern(len as usize, seed as u64),
                PutOptions::default(),
            )
            .map(|_| ()),
        Op::Delete(d, n) => ns.delete_object(&r, b"bkt", join(DIRS[d], NAMES[n]).as_bytes()),
        Op::Restart => Ok(()),
    }
}

/// Compares the whole observable state.
fn compare(ns: &Namespace, b: u64, m: &Model) -> Result<(), TestCaseError> {
    let mut real = BTreeMap::new();
    let mut stack = vec![(b, String::new())];
    while let Some((ino, path)) = stack.pop() {
        let (entries, eof) = ns.readdir(&root(), ino, 0, 1000).unwrap();
        prop_assert!(eof);
        prop_assert_eq!(ns.getattr(ino).unwrap().entries, entries.len() as u64);
        for e in entries {
            let p = join(&path, std::str::from_utf8(&e.name).unwrap());
            match e.kind {
                Kind::Dir => {
                    stack.push((e.ino, p.clone()));
                    real.insert(p, None);
                }
                _ => {
                    let (data, _) = ns.read(&root(), e.ino, 0, 1 << 20).unwrap();
                    prop_assert_eq!(ns.getattr(e.ino).unwrap().size, data.len() as u64);
                    real.insert(p, Some(data));
                }
            }
        }
    }
    let want: BTreeMap<String, Option<Vec<u8>>> = m
        .nodes
        .iter()
        .map(|(k, v)| (k.clone(), if let MNode::File(f) = v { Some(m.files[f].clone()) } else { None }))
        .collect();
    prop_assert_eq!(real.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, v) in &want {
        prop_assert!(real[k] == *v, "content of {} differs", k);
    }
    let page = ns.list_objects(&root(), b"bkt", &ListParams { max_keys: 1000, ..Default::default() }).unwrap();
    let listed: Vec<String> = page
        .entries
        .iter()
        .map(|e| match e {
            ListEntry::Object { key, .. } => String::from_utf8(key.clone()).unwrap(),
            ListEntry::CommonPrefix(p) => panic!("no delimiter given, got prefix {p:?}"),
        })
        .collect();
    let mut want_keys: Vec<String> = want.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
    want_keys.sort();
    prop_assert_eq!(listed, want_keys);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        max_shrink_iters: 200,
        .. ProptestConfig::default()
    })]

    #[test]
    fn namespace_matches_model(ops in proptest::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut ns = open(dir.path());
        let b = ns.mkdir(&root(), namespace::ROOT_INO, b"bkt", 0o755).unwrap().ino;
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            if let Op::Restart = op {
                drop(ns);
                ns = open(dir.path());
            }
            let expect = model.apply(op);
            let got = run_real(&ns, b, op);
            prop_assert_eq!(got.is_ok(), expect, "step {} {:?}: real {:?}", i, op, got);
            compare(&ns, b, &model)?;
        }
        let report = ns.check_integrity().unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
