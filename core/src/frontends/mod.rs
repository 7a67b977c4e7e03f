//! Frontends built into the core, and the routing table for a configuration.
//!
//! Plugin-backed frontends (ActiveSync, MAPI, RPC, EWS, your own) register here from the
//! snapshot's plugin set, on the paths their manifests list.

pub mod autodiscover;

use std::sync::Arc;

use crate::config::Settings;
use crate::http::router::{AuthPolicy, Router};
use crate::plugins::frontend::PluginFrontend;
use crate::plugins::manifest::World;
use crate::plugins::{PluginRuntime, PluginSet};

/// Build the routing table for the enabled frontends of `settings`.
pub fn router_for(
    settings: &Settings,
    plugins: &Arc<PluginSet>,
    runtime: &PluginRuntime,
) -> Router {
    let mut router = Router::default();
    for name in settings.enabled_frontends() {
        if name == "autodiscover" {
            let fe = Arc::new(autodiscover::Autodiscover::new(settings));
            router.add("/autodiscover/", AuthPolicy::Basic, fe);
            continue;
        }
        let Some(plugin) = settings.config.frontends[name]
            .plugin
            .as_deref()
            .and_then(|p| plugins.get(p))
        else {
            continue;
        };
        if plugin.info.world != World::HttpFrontend {
            continue;
        }
        let fe = Arc::new(PluginFrontend::new(
            name,
            plugin.clone(),
            plugins.clone(),
            runtime.hub.clone(),
        ));
        for path in crate::config::plugin_routes(name, &plugin.manifest) {
            router.add(&path, AuthPolicy::Basic, fe.clone());
        }
    }
    router
}
