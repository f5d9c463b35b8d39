//! What the store's suites share: unique names, and a PostgreSQL schema of its own per
//! case in the database of `PALISADE_TEST_PG_URL`.
#![allow(dead_code)] // each suite uses its part

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use palisade_store::{PgStore, StoreConfig};

pub(crate) fn unique(case: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let case: String = case.chars().take(24).collect();
    format!(
        "t_{case}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A schema of its own in the database of `PALISADE_TEST_PG_URL`, found through the
/// connections' search path (`options=-c search_path=…` in the URL).
pub(crate) struct Pg {
    pub(crate) base: String,
    pub(crate) schema: String,
    pub(crate) url: String,
}

impl Pg {
    /// `None` (and a note on stderr, once) when `PALISADE_TEST_PG_URL` is not set.
    pub(crate) fn new(case: &str) -> Option<Self> {
        let Ok(base) = std::env::var("PALISADE_TEST_PG_URL") else {
            static NOTE: std::sync::Once = std::sync::Once::new();
            // straight to stderr: the test harness captures print! and eprint!
            NOTE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: PALISADE_TEST_PG_URL is not set: the PostgreSQL cases of this suite are skipped (./test.sh starts a server and sets it)"
                );
            });
            return None;
        };
        let schema = unique(case);
        let mut c = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PALISADE_TEST_PG_URL: {e}"));
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Pg { base, schema, url })
    }

    pub(crate) fn config(&self, max_connections: u32) -> StoreConfig {
        StoreConfig {
            url: Some(self.url.clone()),
            max_connections,
            ..StoreConfig::default()
        }
    }

    pub(crate) fn node(&self) -> PgStore {
        PgStore::open(&self.url, 2, Duration::from_secs(30)).unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}
