//! The DigitalOcean-v2-shaped HTTP API. [`app`] builds the whole router; every error becomes a
//! response in `error.rs`; handlers only check, record in the catalog and hand long work to the
//! jobs. What drydock adds beyond DigitalOcean's surface lives under `/drydock/v1`.

mod auth;
mod compress;
mod dashboard;
mod error;
mod extract;
mod metrics;
mod page;
mod policy;
mod routes;
mod scopes;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use drydock_catalog::Catalog;
use drydock_jobs::{Clock, Jobs};
use drydock_schedule::cost::Prices;

pub use error::{ApiError, ApiResult};
pub use scopes::validate as validate_scope;

/// Request bodies larger than this are refused: every body the API takes is a small JSON object.
pub const BODY_BYTES_MAX: usize = 256 << 10;

#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// `https` or `http`: how links in listings are written.
    pub scheme: &'static str,
    /// Requests a token may make per hour (DigitalOcean's default is 5,000).
    pub rate_limit_per_hour: u32,
    pub droplet_limit: u32,
    /// What usage and the retention simulator's estimates cost.
    pub prices: Prices,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings { scheme: "https", rate_limit_per_hour: 5000, droplet_limit: 10_000, prices: Prices::default() }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub jobs: Arc<Jobs>,
    pub settings: Arc<ApiSettings>,
    /// The scheduler's clock: backup windows, `backups_since` and expiry dates are on it.
    pub clock: Clock,
    pub(crate) limits: Arc<auth::RateLimits>,
    /// Blocking work admitted at once, in arrival order. More threads than this only contend
    /// for SQLite and the two cores, and the slowest request waits longest.
    blocking_slots: Arc<tokio::sync::Semaphore>,
}

/// Catalog reads and writes running at once on blocking threads (see `AppState::blocking`).
const BLOCKING_SLOTS: usize = 4;

impl AppState {
    pub fn new(catalog: Arc<Catalog>, jobs: Arc<Jobs>, settings: ApiSettings) -> Self {
        AppState {
            catalog,
            jobs,
            settings: Arc::new(settings),
            clock: Clock::system(),
            limits: Arc::new(auth::RateLimits::default()),
            blocking_slots: Arc::new(tokio::sync::Semaphore::new(BLOCKING_SLOTS)),
        }
    }

    /// The same state on another clock (the scheduler's, when it is not the wall clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs catalog or job work on a blocking thread: SQLite and the engine block.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let state = self.clone();
        // The semaphore is fair (first come, first served) and never closed.
        let _slot =
            self.blocking_slots.acquire().await.map_err(|_| {
                ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down")
            })?;
        match tokio::task::spawn_blocking(move || work(&state)).await {
            Ok(result) => result,
            Err(e) => Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
        }
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let authenticated = routes::v2()
        .merge(routes::extensions())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(authenticated)
        .merge(routes::public())
        .merge(dashboard::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn(auth::request_id))
        .layer(middleware::from_fn(compress::zstd))
        .with_state(state)
}
