//! Route registration that remembers what it registered. Every REST route goes through
//! [`Routes::route`] with one of this module's [`get`]/[`post`]/[`delete`], so the list of
//! `(method, path)` pairs comes from the router itself ([`crate::endpoints`]) and a test can
//! check it against the authorization matrix: an endpoint cannot be added without its row.

use crate::AppState;
use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;

/// One registered REST endpoint: an HTTP method and axum's path pattern (`{id}` segments).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: String,
}

/// A method router together with the methods it answers.
pub(crate) struct Methods {
    methods: Vec<&'static str>,
    router: MethodRouter<AppState>,
}

pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(handler: H) -> Methods {
    Methods {
        methods: vec!["GET"],
        router: axum::routing::get(handler),
    }
}

pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(handler: H) -> Methods {
    Methods {
        methods: vec!["POST"],
        router: axum::routing::post(handler),
    }
}

pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(handler: H) -> Methods {
    Methods {
        methods: vec!["DELETE"],
        router: axum::routing::delete(handler),
    }
}

pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(handler: H) -> Methods {
    Methods {
        methods: vec!["PUT"],
        router: axum::routing::put(handler),
    }
}

impl Methods {
    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(mut self, handler: H) -> Self {
        self.methods.push("GET");
        self.router = self.router.get(handler);
        self
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(mut self, handler: H) -> Self {
        self.methods.push("POST");
        self.router = self.router.post(handler);
        self
    }
}

/// An axum router plus the endpoints registered on it.
#[derive(Default)]
pub(crate) struct Routes {
    router: Router<AppState>,
    endpoints: Vec<Endpoint>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn route(mut self, path: &str, methods: Methods) -> Self {
        self.endpoints
            .extend(methods.methods.iter().map(|method| Endpoint {
                method,
                path: path.to_string(),
            }));
        self.router = self.router.route(path, methods.router);
        self
    }

    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.endpoints.extend(other.endpoints);
        self.router = self.router.merge(other.router);
        self
    }

    /// Changes the router (e.g. adds a layer) without changing what is registered.
    pub(crate) fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub(crate) fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub(crate) fn into_router(self) -> Router<AppState> {
        self.router
    }
}
