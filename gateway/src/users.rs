//! S3 users: access keys with their secrets, the POSIX identity each key
//! acts as, and its per-bucket rights.
//!
//! Users come from two places: `[[user]]` tables in the configuration file
//! (fixed for the life of the process) and `<data>/users.toml`, which
//! `gateway user add|remove` edits and a running gateway re-reads on
//! request (admin socket) or on SIGHUP. The root key (environment or
//! `<data>/root-credentials`) is always uid 0 with admin rights.
//!
//! Secrets never reach logs: [`UserEntry`]'s `Debug` leaves them out, and
//! every file that holds one is created mode 0600.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use namespace::Caller;
use protocol_s3::{BucketRights, Credential, Right};
use serde::{Deserialize, Serialize};

/// The users file in the data directory.
pub const USERS_FILE: &str = "users.toml";
/// Most users in all (config file and users file together).
pub const USERS_MAX: usize = 10_000;
/// Longest user name.
const USER_NAME_BYTES_MAX: usize = 64;
/// Access keys are 3 to 128 characters of `[A-Za-z0-9_-]`.
const ACCESS_KEY_BYTES_MAX: usize = 128;
/// Secrets are 8 to 128 characters.
const SECRET_KEY_BYTES_MIN: usize = 8;
/// Longest secret.
const SECRET_KEY_BYTES_MAX: usize = 128;
/// Most supplementary groups (AUTH_SYS carries 16; the same bound here).
pub const GROUPS_MAX: usize = 16;
/// Most per-bucket rights entries of one user.
const BUCKET_RIGHTS_MAX: usize = 1000;

/// One user as written in TOML (config `[[user]]` or the users file).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// A name for people and logs.
    pub name: String,
    /// The access key id.
    pub access_key: String,
    /// The secret.
    pub secret_key: String,
    /// User id the key acts as; the default identity's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Primary group; the default identity's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Supplementary groups; the default identity's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<u32>>,
    /// Rights by bucket name (`*` = any other bucket): `read`, `write` or
    /// `admin`. Absent: `{ "*" = "write" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("groups", &self.groups)
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

/// The identity of keys that name no uid/gid of their own.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups.
    #[serde(default)]
    pub groups: Vec<u32>,
}

impl Default for Identity {
    /// `nobody`/`nogroup`: an unmapped key gets only what "other" may do.
    fn default() -> Self {
        Identity { uid: 65534, gid: 65534, groups: Vec::new() }
    }
}

/// The users file's shape.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    /// Format version of the file (1).
    #[serde(default = "users_file_version")]
    version: u32,
    #[serde(default)]
    user: Vec<UserEntry>,
}

fn users_file_version() -> u32 {
    1
}

/// Checks one entry; `what` names it in messages (`user[2]`, `users.toml`).
pub fn validate_entry(e: &UserEntry, what: &str) -> anyhow::Result<()> {
    if e.name.is_empty()
        || e.name.len() > USER_NAME_BYTES_MAX
        || !e.name.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        bail!("{what}.name: 1 to {USER_NAME_BYTES_MAX} characters of A-Z a-z 0-9 . _ -, got {:?}", e.name);
    }
    if e.access_key.len() < 3
        || e.access_key.len() > ACCESS_KEY_BYTES_MAX
        || !e.access_key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        bail!("{what}.access_key: 3 to {ACCESS_KEY_BYTES_MAX} characters of A-Z a-z 0-9 _ - (user {:?})", e.name);
    }
    if e.secret_key.len() < SECRET_KEY_BYTES_MIN
        || e.secret_key.len() > SECRET_KEY_BYTES_MAX
        || !e.secret_key.bytes().all(|c| c.is_ascii_graphic())
    {
        bail!(
            "{what}.secret_key: {SECRET_KEY_BYTES_MIN} to {SECRET_KEY_BYTES_MAX} printable ASCII characters (user {:?})",
            e.name
        );
    }
    if e.groups.as_ref().is_some_and(|g| g.len() > GROUPS_MAX) {
        bail!("{what}.groups: at most {GROUPS_MAX} supplementary groups (user {:?})", e.name);
    }
    rights_of(e).with_context(|| format!("{what}.buckets (user {:?})", e.name))?;
    Ok(())
}

/// The rights an entry grants.
pub fn rights_of(e: &UserEntry) -> anyhow::Result<BucketRights> {
    let Some(map) = &e.buckets else {
        return Ok(BucketRights([(protocol_s3::rights::ANY_BUCKET.to_string(), Right::Write)].into()));
    };
    if map.len() > BUCKET_RIGHTS_MAX {
        bail!("at most {BUCKET_RIGHTS_MAX} entries");
    }
    let mut out = BTreeMap::new();
    for (bucket, right) in map {
        let r = Right::parse(right)
            .ok_or_else(|| anyhow::anyhow!("bucket {bucket:?}: right must be read, write or admin, got {right:?}"))?;
        out.insert(bucket.clone(), r);
    }
    Ok(BucketRights(out))
}

/// The keyring's contents: the root key, then every user. Fails on a
/// repeated name or access key, naming it.
pub fn credentials(
    root: (&str, &str),
    configured: &[UserEntry],
    from_file: &[UserEntry],
    default: &Identity,
) -> anyhow::Result<Vec<Credential>> {
    let mut out = vec![Credential {
        access_key: root.0.to_string(),
        secret_key: root.1.to_string(),
        caller: Caller::root(),
        rights: BucketRights::admin_everywhere(),
    }];
    if configured.len() + from_file.len() > USERS_MAX {
        bail!("at most {USERS_MAX} users");
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::from([root.0.to_string()]);
    for (i, e) in configured.iter().enumerate() {
        validate_entry(e, &format!("user[{i}]"))?;
    }
    for e in from_file {
        validate_entry(e, USERS_FILE)?;
    }
    for e in configured.iter().chain(from_file) {
        if !names.insert(e.name.clone()) {
            bail!("user {:?} is defined twice", e.name);
        }
        if !keys.insert(e.access_key.clone()) {
            bail!("access key {:?} (user {:?}) is already in use", e.access_key, e.name);
        }
        out.push(Credential {
            access_key: e.access_key.clone(),
            secret_key: e.secret_key.clone(),
            caller: Caller {
                uid: e.uid.unwrap_or(default.uid),
                gid: e.gid.unwrap_or(default.gid),
                groups: e.groups.clone().unwrap_or_else(|| default.groups.clone()),
            },
            rights: rights_of(e)?,
        });
    }
    Ok(out)
}

/// Path of the users file.
pub fn users_path(data_dir: &Path) -> PathBuf {
    data_dir.join(USERS_FILE)
}

/// Reads the users file; a missing file is no users.
pub fn load_file(data_dir: &Path) -> anyhow::Result<Vec<UserEntry>> {
    let path = users_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let f: UsersFile = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if f.version != 1 {
        bail!("{}: unknown version {} (this gateway reads version 1)", path.display(), f.version);
    }
    Ok(f.user)
}

/// Writes the users file atomically (temp file mode 0600, fsync, rename,
/// directory fsync), so a crash leaves the old or the new list.
pub fn save_file(data_dir: &Path, users: &[UserEntry]) -> anyhow::Result<()> {
    let path = users_path(data_dir);
    let tmp = data_dir.join(format!(".{USERS_FILE}.tmp"));
    let text = toml::to_string(&UsersFile { version: 1, user: users.to_vec() })?;
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(b"# S3 users, managed by `gateway user add|remove`. Holds secrets: keep it mode 0600.\n")?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

/// A fresh access key: `GW` and 18 upper-case hex digits.
pub fn generate_access_key() -> String {
    format!("GW{}", hex::encode_upper(rand::random::<[u8; 9]>()))
}

/// A fresh secret: 40 hex digits (160 random bits).
pub fn generate_secret() -> String {
    hex::encode(rand::random::<[u8; 20]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, ak: &str) -> UserEntry {
        UserEntry {
            name: name.into(),
            access_key: ak.into(),
            secret_key: "secret-123".into(),
            uid: Some(1000),
            gid: None,
            groups: None,
            buckets: None,
        }
    }

    #[test]
    fn unmapped_fields_take_the_default_identity() {
        let d = Identity { uid: 7, gid: 8, groups: vec![9] };
        let c = credentials(("ROOT", "rootsecret"), &[entry("a", "AKA")], &[], &d).unwrap();
        assert_eq!(c[0].caller, Caller::root());
        assert_eq!(c[1].caller, Caller { uid: 1000, gid: 8, groups: vec![9] });
        assert_eq!(c[1].rights.on("any"), Some(Right::Write));
    }

    #[test]
    fn repeated_names_and_keys_are_refused_by_name() {
        let d = Identity::default();
        let e = credentials(("ROOT", "rootsecret"), &[entry("a", "AKA")], &[entry("a", "AKB")], &d).unwrap_err();
        assert!(e.to_string().contains("\"a\" is defined twice"), "{e}");
        let e = credentials(("ROOT", "rootsecret"), &[entry("a", "ROOT")], &[], &d).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
    }

    #[test]
    fn bad_entries_name_the_key_at_fault() {
        let mut e = entry("a", "AKA");
        e.secret_key = "short".into();
        assert!(validate_entry(&e, "user[0]").unwrap_err().to_string().starts_with("user[0].secret_key"));
        let mut e = entry("a", "AKA");
        e.buckets = Some([("data".to_string(), "owner".to_string())].into());
        let msg = format!("{:#}", validate_entry(&e, "user[0]").unwrap_err());
        assert!(msg.contains("user[0].buckets") && msg.contains("read, write or admin"), "{msg}");
    }

    #[test]
    fn the_users_file_round_trips_with_mode_0600_and_no_secret_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let users = vec![entry("a", "AKA"), entry("b", "AKB")];
        save_file(dir.path(), &users).unwrap();
        assert_eq!(load_file(dir.path()).unwrap(), users);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(users_path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", users[0]).contains("secret-123"));
    }
}
