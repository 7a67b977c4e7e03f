//! Frontends built into the core, and the routing table for a configuration.
//!
//! Plugin-backed frontends (ActiveSync, MAPI, RPC, EWS, SIP) register here too once the plugin
//! host exists; until then config validation refuses to enable them.

pub mod autodiscover;

use std::sync::Arc;

use crate::config::Settings;
use crate::http::router::{AuthPolicy, Router};

/// Build the routing table for the enabled frontends of `settings`.
pub fn router_for(settings: &Settings) -> Router {
    let mut router = Router::default();
    for name in settings.enabled_frontends() {
        if name == "autodiscover" {
            let fe = Arc::new(autodiscover::Autodiscover::new(settings));
            router.add("/autodiscover/", AuthPolicy::Basic, fe);
        }
    }
    router
}
