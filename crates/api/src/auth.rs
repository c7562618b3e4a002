//! Request ids, bearer tokens and rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{Team, Token};

use crate::AppState;
use crate::error::{ApiError, REQUEST_ID};
use crate::scopes;

/// Who is calling: the team and token a valid bearer token belongs to.
#[derive(Clone, Debug)]
pub struct Caller {
    pub team: Team,
    pub token: Token,
}

impl Caller {
    /// Full access: the scope `*` (or `*:*`, or DigitalOcean's legacy `write`).
    pub fn has_full_access(&self) -> bool {
        self.token.scopes.iter().any(|s| s == "*" || s == "*:*" || s == "write")
    }

    /// Requires at least one of `scopes` (DigitalOcean lists alternatives per endpoint).
    pub fn require(&self, any_of: &[&str]) -> Result<(), ApiError> {
        if any_of.iter().any(|wanted| scopes::allows(&self.token.scopes, wanted)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "You are not authorized to perform this operation: the token needs the scope {}",
                any_of.join(" or ")
            )))
        }
    }
}

/// Gives every request an id, returned in `x-request-id` and in error bodies.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = uuid_like();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) as u64;
    format!("{:016x}-{:08x}", nanos, NEXT.fetch_add(1, Ordering::Relaxed) as u32)
}

/// Per-token request counts in the current hour.
#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<i64, (u64, u32)>>,
}

const WINDOW_SECS: u64 = 3600;

impl RateLimits {
    /// Counts one request; returns (remaining, reset epoch) or `None` when over the limit.
    fn take(&self, token: i64, limit: u32) -> (Option<u32>, u64) {
        let now = now_secs();
        let window = now - now % WINDOW_SECS;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let entry = windows.entry(token).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let reset = window_reset(now);
        if entry.1 >= limit {
            return (None, reset);
        }
        entry.1 += 1;
        (Some(limit - entry.1), reset)
    }
}

/// Checks the bearer token, the rate limit, and makes the [`Caller`] available to handlers.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|s| s.trim().to_string());
    let limit = state.settings.rate_limit_per_hour;
    // Without a valid token there is no bucket to count against: the headers show a full one.
    let unauthorized =
        || rate_headers(ApiError::unauthorized().into_response(), limit, limit, window_reset(now_secs()));
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return unauthorized();
    };
    let found = state.blocking(move |state| Ok(state.catalog.authenticate(&secret)?)).await;
    let (team, token) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return unauthorized(),
        Err(e) => return e.into_response(),
    };
    let (remaining, reset) = state.limits.take(token.id, limit);
    let response = match remaining {
        Some(_) => {
            request.extensions_mut().insert(Caller { team, token });
            next.run(request).await
        }
        None => {
            let mut response =
                ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded.").into_response();
            let wait = reset.saturating_sub(now_secs());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
    };
    rate_headers(response, limit, remaining.unwrap_or(0), reset)
}

/// DigitalOcean's rate-limit headers, as integers (pydo fails on anything else).
fn rate_headers(mut response: Response, limit: u32, remaining: u32, reset: u64) -> Response {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset));
    response
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// When the hour window holding `now` ends.
fn window_reset(now: u64) -> u64 {
    now - now % WINDOW_SECS + WINDOW_SECS
}
