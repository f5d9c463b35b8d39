//! Configuration reload (`SIGHUP`, `POST /api/reload`): the file is read again with the
//! command line's settings on top, checked as `palisade config check` checks it, and
//! only then applied. A file that does not load or check is refused with its error and
//! the running configuration stays in force.
//!
//! Applied live: the shield's policy with the parser's and the SDP limits (`[shield]`,
//! `[limits]`, `[sdp]`: every worker takes the new policy between two messages) and
//! the detectors' settings (`[detect]`). Everything else (listeners and `[server]`,
//! `[auth]`, `[registrar]`, `[tcp]`, `[tls]`, `[notify]`, `[evidence]`, `[admin]`,
//! `[hep]`, `[store]`) is read at start only: a change there is reported as needing a restart.
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;

use serde_json::{json, Value};

use super::router::Router;
use crate::config::{self, FileConfig};
use crate::messages::{DetectMsg, Inbound};

/// Where the configuration comes from: the file (if any) and the command line's
/// settings, applied over it at start and at every reload.
pub(crate) struct ConfigSource {
    pub(crate) path: Option<PathBuf>,
    pub(crate) flags: Box<dyn Fn(&mut FileConfig) + Send>,
}

fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// The sections of `new` that differ from `running`: (applied live, need a restart).
pub(super) fn changes(
    running: &FileConfig,
    new: &FileConfig,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut live = Vec::new();
    let mut restart = Vec::new();
    let mut note = |name, changed: bool, applies: bool| {
        if changed {
            if applies {
                live.push(name);
            } else {
                restart.push(name);
            }
        }
    };
    note("shield", differs(&running.shield, &new.shield), true);
    note("limits", differs(&running.limits, &new.limits), true);
    note("sdp", differs(&running.sdp, &new.sdp), true);
    note("detect", differs(&running.detect, &new.detect), true);
    note("server", differs(&running.server, &new.server), false);
    note("auth", differs(&running.auth, &new.auth), false);
    note(
        "registrar",
        differs(&running.registrar, &new.registrar),
        false,
    );
    note("tcp", differs(&running.tcp, &new.tcp), false);
    note("tls", differs(&running.tls, &new.tls), false);
    note("notify", differs(&running.notify, &new.notify), false);
    note("evidence", differs(&running.evidence, &new.evidence), false);
    note("admin", differs(&running.admin, &new.admin), false);
    note("hep", differs(&running.hep, &new.hep), false);
    note("store", differs(&running.store, &new.store), false);
    (live, restart)
}

/// Reads, checks and applies the configuration; the answer names what was applied and
/// what needs a restart, or is the reason the file was refused.
pub(super) fn reload(
    source: &ConfigSource,
    running: &mut FileConfig,
    router: &Router,
    detect: Option<&SyncSender<DetectMsg>>,
) -> Result<Value, String> {
    let mut new = config::load(source.path.as_ref()).map_err(|e| format!("{e:#}"))?;
    (source.flags)(&mut new);
    new.check().map_err(|e| format!("{e:#}"))?;
    let listens = new.listens().map_err(|e| format!("{e:#}"))?;
    let core = new.core(&listens).map_err(|e| format!("{e:#}"))?;
    let (live, restart) = changes(running, &new);
    if live
        .iter()
        .any(|s| matches!(*s, "shield" | "limits" | "sdp"))
    {
        router
            .try_send(Inbound::Policy(Box::new((core.shield, core.limits))))
            .map_err(|_| {
                "the workers did not take the new policy (queues full); nothing applied".to_string()
            })?;
        running.shield = new.shield;
        running.limits = new.limits;
        running.sdp = new.sdp;
    }
    if live.contains(&"detect") {
        match detect {
            Some(tx) => {
                let _ = tx.try_send(DetectMsg::Config(Box::new(new.detect.clone())));
            }
            None => {
                // detection was off at start: turning it on needs a restart
                return Ok(
                    json!({ "applied": live.iter().filter(|s| **s != "detect").collect::<Vec<_>>(), "restart_needed": restart.iter().chain(std::iter::once(&"detect")).collect::<Vec<_>>() }),
                );
            }
        }
        running.detect = new.detect;
    }
    Ok(json!({ "applied": live, "restart_needed": restart }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_sorted_into_live_and_restart() {
        let running = FileConfig::default();
        let text = "[shield]\nextra_headers = [\"X-Test\"]\n[server]\nworkers = 3\n";
        let new: FileConfig = toml::from_str(text).unwrap();
        let (live, restart) = changes(&running, &new);
        assert_eq!(live, ["shield"]);
        assert_eq!(restart, ["server"]);
        let (live, restart) = changes(&running, &FileConfig::default());
        assert!(live.is_empty() && restart.is_empty());
    }
}
