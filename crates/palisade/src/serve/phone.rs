//! The browser softphone on the admin listener: `/phone` (the page), `/phone/jssip.js`
//! (JsSIP from npm, bundled reproducibly by `crates/palisade/phone/build.mjs`) and
//! `/phone/config.json` (the domain and the `ws:`/`wss:` listeners the page connects
//! to). Public like the dashboard's page: the phone authenticates to the SIP server with
//! its account's digest credentials, not with the admin token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::routing::get;
use axum::{Json, Router as Routes};
use palisade_core::Transport;
use serde_json::{json, Value};

const PAGE: &str = include_str!("../../assets/phone.html");
const JSSIP: &str = include_str!("../../assets/jssip.js");

/// What the page is told: the SIP domain, and where to connect.
pub(super) struct PhoneSetup {
    pub(super) domain: String,
    /// The `ws:`/`wss:` listening addresses.
    pub(super) listeners: Vec<(Transport, SocketAddr)>,
}

impl PhoneSetup {
    fn config(&self) -> Value {
        let websockets: Vec<Value> = self
            .listeners
            .iter()
            .filter(|(t, _)| t.websocket())
            .map(|(t, a)| {
                // an unspecified address: the host the page itself came from
                let host = (!a.ip().is_unspecified()).then(|| match a {
                    SocketAddr::V4(v) => v.ip().to_string(),
                    SocketAddr::V6(v) => format!("[{}]", v.ip()),
                });
                json!({"scheme": t.param(), "host": host, "port": a.port()})
            })
            .collect();
        json!({"domain": self.domain, "websockets": websockets})
    }
}

/// The softphone's routes.
pub(super) fn routes(setup: &PhoneSetup) -> Routes {
    let config = Arc::new(setup.config());
    Routes::new()
        .route(
            "/phone",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
        )
        .route(
            "/phone/jssip.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    JSSIP,
                )
            }),
        )
        .route(
            "/phone/config.json",
            get(move || {
                let c = config.clone();
                async move { Json((*c).clone()) }
            }),
        )
}
