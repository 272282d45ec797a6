//! The admin token: taken from `RESIZER_ADMIN_TOKEN`, or generated on first
//! start, printed once and kept only as a hash in the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use resizer_api::HashedSecret;
use resizer_core::api_key::KeyHash;
use resizer_core::ids::{random_bytes, to_hex};

const HASH_FILE: &str = "admin_token.sha256";
/// Shortest admin token accepted from the environment.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Resolves the admin token for this data directory.
pub fn resolve(data_dir: &Path) -> anyhow::Result<HashedSecret> {
    if let Ok(token) = std::env::var("RESIZER_ADMIN_TOKEN")
        && !token.is_empty()
    {
        // The token opens every tenant's data; wrong guesses are throttled per
        // address, but a short one is still found by a patient botnet.
        if token.chars().count() < MIN_TOKEN_CHARS {
            anyhow::bail!(
                "RESIZER_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters (e.g. `head -c 24 /dev/urandom | base64`)"
            );
        }
        return Ok(HashedSecret::from_secret(&token));
    }
    let path = data_dir.join(HASH_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let hash = KeyHash::from_hex(text.trim()).with_context(|| {
            format!(
                "{} is corrupt; delete it to generate a new admin token",
                path.display()
            )
        })?;
        return Ok(HashedSecret::from_hash(hash));
    }
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes);
    let token = format!("rsza_{}", to_hex(&bytes));
    let admin = HashedSecret::from_secret(&token);
    write_private(&path, &admin.hash().to_hex())?;
    // Printed once, on stdout, and never logged.
    let mut out = std::io::stdout().lock();
    writeln!(out, "admin_token={token}")?;
    writeln!(
        out,
        "(generated admin token; shown only this once. Set RESIZER_ADMIN_TOKEN to choose your own.)"
    )?;
    out.flush()?;
    Ok(admin)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
