//! The server's secrets: a per-boot one from the operating system's random source
//! (nonces, transaction keys, tags), and the route key kept in the data directory.
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

/// The per-boot secret (nonces, transaction keys, tags) from the operating system's
/// random source. There is no fallback: a guessable secret would make nonces forgeable,
/// so the server refuses to start instead.
pub(super) fn random_secret() -> anyhow::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s)
        .map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    Ok(s)
}

/// The key of the dialog tokens in our Record-Route, kept in `<data_dir>/route.key` so
/// that calls set up before a restart can still be ended through this server. Created
/// (mode 0600) from the operating system's random source the first time.
pub(super) fn route_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("route.key");
    match std::fs::read(&path) {
        Ok(b) => b.try_into().map_err(|_| {
            anyhow::anyhow!(
                "{} is not 32 bytes; remove it to make a new one",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_secret()?;
            std::fs::create_dir_all(dir)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
