//! Corral's HTTP layer: the router ([`router::router`]), authentication ([`auth`]), the one
//! error body ([`error`]), extractors and the handlers of both dialects and the admin API.

pub mod auth;
pub mod conditional;
pub mod edge;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod ratelimit;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod serve;
pub mod state;
pub mod webhooks;

pub use auth::{AuthConfig, Claims};
pub use edge::EdgeOptions;
pub use router::{MetricsEndpoint, metrics_router, openapi, router, router_with};
pub use serve::{ServeOptions, serve};
pub use state::AppState;
pub use webhooks::WebhookOptions;
