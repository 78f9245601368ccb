//! Root credentials: from GATEWAY_ACCESS_KEY / GATEWAY_SECRET_KEY, or
//! generated on first start and kept in the data directory (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context};

/// File holding generated root credentials.
const CREDENTIALS_FILE: &str = "root-credentials";

/// Root access key and secret, and whether they were just generated.
pub fn root(data_dir: &Path) -> anyhow::Result<(String, String, bool)> {
    if let (Ok(ak), Ok(sk)) = (std::env::var("GATEWAY_ACCESS_KEY"), std::env::var("GATEWAY_SECRET_KEY")) {
        if ak.is_empty() || sk.len() < 8 {
            bail!("GATEWAY_ACCESS_KEY must be non-empty and GATEWAY_SECRET_KEY at least 8 characters");
        }
        return Ok((ak, sk, false));
    }
    let path = data_dir.join(CREDENTIALS_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut lines = text.lines();
        if let (Some(ak), Some(sk)) = (lines.next(), lines.next()) {
            return Ok((ak.trim().to_string(), sk.trim().to_string(), false));
        }
        bail!("{} is malformed: expected the access key and the secret on two lines", path.display());
    }
    let (ak, sk) = (crate::users::generate_access_key(), crate::users::generate_secret());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{ak}\n{sk}")?;
    f.sync_all()?;
    Ok((ak, sk, true))
}
