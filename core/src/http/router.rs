//! The path routing table. Built from each configuration snapshot: enabled frontends
//! register the path prefixes they serve; a reload builds a new table and swaps it in, so a
//! request always sees one table start to end.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use switchboard_auth::Identity;

use super::body::Body;
use crate::state::{Shared, Snapshot};

/// Who must be authenticated before a route's frontend sees the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Anyone (health checks).
    Public,
    /// HTTP Basic against the credential chain.
    Basic,
}

/// What a frontend gets with each request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The authenticated user, for routes with [`AuthPolicy::Basic`].
    pub identity: Option<Identity>,
    /// That user with the password they logged in with, for mail connectors granted
    /// `pass_password` (never logged; gone with the request).
    pub secret: Option<crate::plugins::caps::credentials::UserSecret>,
    /// Hands a parked request to its connection (HTTP/1.1 keep-alive requests only; see
    /// [`super::detach`]).
    pub detach: Option<super::detach::Detacher>,
    /// The configuration snapshot this request runs under.
    pub snapshot: Arc<Snapshot>,
    /// Server-wide state (storage, auth).
    pub shared: Arc<Shared>,
}

impl RequestContext {
    /// The most body bytes a frontend may read: its own cap, never above `http.max_body_bytes`.
    pub fn body_limit(&self, frontend_cap: u64) -> u64 {
        frontend_cap.min(self.snapshot.settings.config.http.max_body_bytes)
    }
}

/// A protocol frontend reachable over HTTP.
pub trait HttpFrontend: Send + Sync + std::fmt::Debug + 'static {
    /// Name as in `[frontends.<name>]`; also the `protocol` field of request spans.
    fn name(&self) -> &str;
    /// Answer one request. Errors are answered, not returned: the frontend knows its
    /// protocol's failure format.
    fn handle(
        &self,
        req: Request<Incoming>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Response<Body>>;
}

/// One entry of the table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Lower-cased path prefix.
    pub prefix: String,
    /// Authentication required first.
    pub auth: AuthPolicy,
    /// The handler.
    pub frontend: Arc<dyn HttpFrontend>,
}

/// Path prefix → frontend, longest prefix first, matched case-insensitively (Exchange
/// clients are inconsistent about `/Autodiscover/` vs `/autodiscover/`).
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Add a route.
    pub fn add(&mut self, prefix: &str, auth: AuthPolicy, frontend: Arc<dyn HttpFrontend>) {
        self.routes.push(Route {
            prefix: prefix.to_ascii_lowercase(),
            auth,
            frontend,
        });
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    }

    /// The route serving `path`, if any.
    pub fn lookup(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            path.len() >= r.prefix.len()
                && path.as_bytes()[..r.prefix.len()].eq_ignore_ascii_case(r.prefix.as_bytes())
        })
    }

    /// Every registered prefix with its frontend name (for `status`).
    pub fn table(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .map(|r| (r.prefix.clone(), r.frontend.name().to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Named(&'static str);
    impl HttpFrontend for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn handle(
            &self,
            _: Request<Incoming>,
            _: RequestContext,
        ) -> BoxFuture<'static, Response<Body>> {
            Box::pin(async { super::super::body::text(http::StatusCode::OK, "") })
        }
    }

    #[test]
    fn longest_prefix_wins_case_insensitively() {
        let mut r = Router::default();
        r.add("/a/", AuthPolicy::Public, Arc::new(Named("short")));
        r.add("/a/b/", AuthPolicy::Public, Arc::new(Named("long")));
        r.add("/Autodiscover/", AuthPolicy::Basic, Arc::new(Named("ad")));
        assert_eq!(r.lookup("/a/b/c").unwrap().frontend.name(), "long");
        assert_eq!(r.lookup("/a/x").unwrap().frontend.name(), "short");
        assert_eq!(
            r.lookup("/AUTODISCOVER/autodiscover.xml")
                .unwrap()
                .frontend
                .name(),
            "ad"
        );
        assert!(r.lookup("/a").is_none());
        assert!(r.lookup("/é").is_none());
    }
}
