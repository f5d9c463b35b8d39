//! The `[store]` section of the configuration and the one place that picks a backend.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::{PgStore, Records, SqliteStore, Storage, StoreError};

/// Connections a node opens to PostgreSQL at most, by default (`[store] max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// How long a store operation waits for a free connection before it fails, by default
/// (`[store] checkout_timeout_ms`).
pub const DEFAULT_CHECKOUT_TIMEOUT_MS: u64 = 5_000;
/// How long the storage thread gathers binding changes before it writes them in one
/// synced append, by default (`[store] commit_window_ms`): what a kill -9 or a power cut
/// can lose of the bindings acknowledged last.
pub(crate) const DEFAULT_COMMIT_WINDOW_MS: u64 = 50;
/// The longest commit window the configuration accepts.
pub(crate) const MAX_COMMIT_WINDOW_MS: u64 = 10_000;

/// Where Palisade keeps its state.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user[:password]@host[:port]/database` for a database that nodes
    /// share; absent: SQLite files under the data directory (the default).
    pub url: Option<String>,
    /// Connections this node opens to PostgreSQL at most (at least 1).
    pub max_connections: u32,
    /// How long an operation waits for a free connection, in milliseconds.
    pub checkout_timeout_ms: u64,
    /// The group-commit window of binding writes, in milliseconds (1 to 10,000).
    pub commit_window_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            checkout_timeout_ms: DEFAULT_CHECKOUT_TIMEOUT_MS,
            commit_window_ms: DEFAULT_COMMIT_WINDOW_MS,
        }
    }
}

/// The URL with its password (in the user part or a `password=` parameter) replaced by
/// `***`, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("checkout_timeout_ms", &self.checkout_timeout_ms)
            .field("commit_window_ms", &self.commit_window_ms)
            .finish()
    }
}

impl StoreConfig {
    /// What can be checked without connecting (`palisade config check`): a URL is a
    /// PostgreSQL one the client reads, and at least one connection is allowed. The
    /// errors never repeat the URL, which may hold a password.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.max_connections == 0 {
            return Err(StoreError::Config(
                "[store] max_connections must be at least 1".into(),
            ));
        }
        if !(1..=MAX_COMMIT_WINDOW_MS).contains(&self.commit_window_ms) {
            return Err(StoreError::Config(format!(
                "[store] commit_window_ms must be from 1 to {MAX_COMMIT_WINDOW_MS} (milliseconds)"
            )));
        }
        if let Some(url) = &self.url {
            crate::pg::check_url(url)?;
            url.parse::<postgres::Config>()
                .map_err(|e| StoreError::Url(crate::causes(&e)))?;
        }
        Ok(())
    }

    /// The group-commit window of binding writes as a duration.
    pub fn commit_window(&self) -> Duration {
        Duration::from_millis(self.commit_window_ms)
    }

    /// The checkout timeout as a duration.
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
    }
}

/// Opens the store `cfg` names: PostgreSQL when it has a URL (which must be a
/// `postgres://` or `postgresql://` one), otherwise SQLite under `data_dir`.
pub fn open_storage(
    cfg: &StoreConfig,
    data_dir: &Path,
) -> Result<Box<dyn Storage + Send>, StoreError> {
    match &cfg.url {
        None => Ok(Box::new(SqliteStore::open(data_dir)?)),
        Some(url) => Ok(Box::new(PgStore::open(
            url,
            cfg.max_connections,
            cfg.checkout_timeout(),
        )?)),
    }
}

/// Opens the records (calls, registrations, findings, blocks, notifications) `cfg`
/// names: PostgreSQL's database when it has a URL, otherwise SQLite's `records.db`
/// under `data_dir`. Each call opens a pool of its own on PostgreSQL: a process opens
/// it once and clones the handle (or keeps the [`PgStore`] it opened for [`Storage`],
/// which implements both).
pub fn open_records(
    cfg: &StoreConfig,
    data_dir: &Path,
) -> Result<Box<dyn Records + Send>, StoreError> {
    match &cfg.url {
        None => Ok(Box::new(SqliteStore::open_records(data_dir)?)),
        Some(url) => Ok(Box::new(PgStore::open(
            url,
            cfg.max_connections,
            cfg.checkout_timeout(),
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: StoreConfig = toml::from_str("").unwrap();
        assert_eq!(c, StoreConfig::default());
        assert_eq!((c.url, c.max_connections), (None, 8));
        let c: StoreConfig =
            toml::from_str("url = \"postgres://p@127.0.0.1:5433/palisade\"\nmax_connections = 3")
                .unwrap();
        assert_eq!(c.max_connections, 3);
        let e = toml::from_str::<StoreConfig>("max_conections = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_conections"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://pal:s3cret@db:5432/palisade?sslmode=disable&password=x"),
            "postgres://pal:***@db:5432/palisade?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("postgres://pal@db/p"), "postgres://pal@db/p");
        let c = StoreConfig {
            url: Some("postgresql://a:b@h/d".into()),
            ..StoreConfig::default()
        };
        assert!(!format!("{c:?}").contains(":b@"));
    }

    #[test]
    fn a_url_of_another_database_is_refused() {
        let c = StoreConfig {
            url: Some("sqlite:///var/lib/palisade/palisade.db".into()),
            ..StoreConfig::default()
        };
        let e = open_storage(&c, Path::new("/nonexistent")).err().unwrap();
        assert!(matches!(e, StoreError::Url(_)), "{e}");
        assert!(e.to_string().contains("sqlite://"), "{e}");
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("sqlite://") && e.contains("[store] url"), "{e}");
    }

    #[test]
    fn a_configuration_is_checked_without_connecting() {
        StoreConfig::default().check().unwrap();
        let pg = |url: &str| StoreConfig {
            url: Some(url.into()),
            ..StoreConfig::default()
        };
        pg("postgres://pal:s3cret@127.0.0.1:1/palisade")
            .check()
            .unwrap();
        for (c, says) in [
            (pg("postgres://pal:s3cret@db:port/palisade"), "[store] url"),
            (pg("db.example.org"), "not a URL"),
            (
                StoreConfig {
                    max_connections: 0,
                    ..StoreConfig::default()
                },
                "max_connections",
            ),
        ] {
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains("s3cret"), "{e}");
        }
    }
}
