//! Exports and their options. Every bucket is an export (`/bucket`) and
//! the root `/` is one too; each gets the default options unless the
//! configuration names it.
//!
//! AUTH_SYS ids are asserted by the client, so the client allow-list is the
//! real security boundary; it is checked at MNT **and on every call**,
//! because handles work without MNT.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use namespace::Caller;
use serde::Deserialize;

use crate::rpc::Credential;

/// Default anonymous uid and gid (`nobody`/`nogroup`, as Linux nfsd).
pub const ANON_ID_DEFAULT: u32 = 65534;

/// How caller identities are squashed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Squash {
    /// Ids are taken as the client asserts them.
    None,
    /// uid 0 and gid 0 become the anonymous ids (the default, as nfsd).
    #[default]
    Root,
    /// Every caller becomes the anonymous user.
    All,
}

/// Options of one export.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportOptions {
    /// Refuse every change with `NFS3ERR_ROFS`.
    pub read_only: bool,
    /// Client addresses or networks allowed; empty allows every client.
    pub clients: Vec<IpNet>,
    /// Identity squashing.
    pub squash: Squash,
    /// uid that squashed callers (and AUTH_NONE) act as.
    pub anonuid: u32,
    /// gid that squashed callers (and AUTH_NONE) act as.
    pub anongid: u32,
    /// `true` (the default): stable writes are durable before the reply.
    /// `false` (`async`, as Linux nfsd): every write is acknowledged as
    /// FILE_SYNC once it is visible, and made durable by the next barrier;
    /// a crash can lose acknowledged writes. Faster, not crash safe.
    pub sync: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            read_only: false,
            clients: Vec::new(),
            squash: Squash::Root,
            anonuid: ANON_ID_DEFAULT,
            anongid: ANON_ID_DEFAULT,
            sync: true,
        }
    }
}

impl ExportOptions {
    /// Whether `addr` may use this export.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.clients.is_empty() || self.clients.iter().any(|net| net.contains(&addr))
    }

    /// The namespace caller for a credential, after squashing.
    pub fn caller(&self, cred: &Credential) -> Caller {
        let anon = Caller { uid: self.anonuid, gid: self.anongid, groups: Vec::new() };
        match cred {
            Credential::None => anon,
            Credential::Sys { uid, gid, gids, .. } => match self.squash {
                Squash::All => anon,
                Squash::Root => Caller {
                    uid: if *uid == 0 { self.anonuid } else { *uid },
                    gid: if *gid == 0 { self.anongid } else { *gid },
                    groups: gids.iter().map(|&g| if g == 0 { self.anongid } else { g }).collect(),
                },
                Squash::None => Caller { uid: *uid, gid: *gid, groups: gids.clone() },
            },
        }
    }
}

/// The export table: defaults plus options for named exports.
#[derive(Clone, Debug, Default)]
pub struct Exports {
    defaults: ExportOptions,
    named: BTreeMap<String, ExportOptions>,
}

/// A configuration error in the export table.
#[derive(Debug, thiserror::Error)]
#[error("export {path:?}: {why}")]
pub struct ExportError {
    /// The export's path as configured.
    pub path: String,
    /// What is wrong.
    pub why: String,
}

impl Exports {
    /// An export table; `named` maps `/` or `/bucket` to its options.
    pub fn new(defaults: ExportOptions, named: Vec<(String, ExportOptions)>) -> Result<Self, ExportError> {
        let mut map = BTreeMap::new();
        for (path, opts) in named {
            let canon = canonical_path(path.as_bytes())
                .ok_or_else(|| ExportError { path: path.clone(), why: "must be \"/\" or \"/<bucket>\"".into() })?;
            let canon =
                String::from_utf8(canon).map_err(|_| ExportError { path: path.clone(), why: "not UTF-8".into() })?;
            if map.insert(canon, opts).is_some() {
                return Err(ExportError { path, why: "listed twice".into() });
            }
        }
        Ok(Exports { defaults, named: map })
    }

    /// Options of the export at `path` (`/` or `/bucket`).
    pub fn options(&self, path: &[u8]) -> &ExportOptions {
        std::str::from_utf8(path).ok().and_then(|p| self.named.get(p)).unwrap_or(&self.defaults)
    }

    /// Whether every export has the default options (no name lookups needed).
    pub fn uniform(&self) -> bool {
        self.named.is_empty()
    }
}

/// `/`, `/bucket` or `/bucket/` → `/` or `/bucket`; anything deeper or
/// malformed → `None`. Matching is on whole path components, so `/data`
/// never matches `/database`.
pub fn canonical_path(path: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    if path.first() != Some(&b'/') {
        return None;
    }
    match trimmed.as_slice() {
        [] => Some(b"/".to_vec()),
        [bucket] if *bucket != b"." && *bucket != b".." => Some([b"/", *bucket].concat()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_match_networks_and_mapped_addresses() {
        let opts = ExportOptions { clients: vec!["10.0.0.0/8".parse().unwrap()], ..Default::default() };
        assert!(opts.allows("10.1.2.3".parse().unwrap()));
        assert!(opts.allows("::ffff:10.1.2.3".parse().unwrap()), "IPv4-mapped IPv6");
        assert!(!opts.allows("192.168.0.1".parse().unwrap()));
        assert!(ExportOptions::default().allows("::1".parse().unwrap()), "empty list allows all");
    }

    #[test]
    fn squashing_follows_the_option() {
        let root = Credential::Sys { machine: vec![], uid: 0, gid: 0, gids: vec![0, 5] };
        let user = Credential::Sys { machine: vec![], uid: 1000, gid: 100, gids: vec![7] };
        let d = ExportOptions::default();
        assert_eq!(d.caller(&root), Caller { uid: 65534, gid: 65534, groups: vec![65534, 5] });
        assert_eq!(d.caller(&user), Caller { uid: 1000, gid: 100, groups: vec![7] });
        assert_eq!(d.caller(&Credential::None).uid, 65534);
        let none = ExportOptions { squash: Squash::None, ..Default::default() };
        assert_eq!(none.caller(&root).uid, 0);
        let all = ExportOptions { squash: Squash::All, anonuid: 9, anongid: 8, ..Default::default() };
        assert_eq!(all.caller(&user), Caller { uid: 9, gid: 8, groups: vec![] });
    }

    #[test]
    fn export_paths_match_on_component_boundaries() {
        assert_eq!(canonical_path(b"/"), Some(b"/".to_vec()));
        assert_eq!(canonical_path(b"//data/"), Some(b"/data".to_vec()));
        assert_eq!(canonical_path(b"/data/sub"), None);
        assert_eq!(canonical_path(b"data"), None);
        assert_eq!(canonical_path(b"/.."), None);
        let ex = Exports::new(
            ExportOptions::default(),
            vec![("/data".into(), ExportOptions { read_only: true, ..Default::default() })],
        )
        .unwrap();
        assert!(ex.options(b"/data").read_only);
        assert!(!ex.options(b"/database").read_only);
        assert!(Exports::new(ExportOptions::default(), vec![("/a/b".into(), ExportOptions::default())]).is_err());
    }
}
