//! The HTTP API. Each feature is a module with its own `routes()`, merged here; the router
//! is built apart from serving, so tests can call it without a socket.

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod compression;
pub mod console;
pub mod csv;
pub mod devices;
pub mod extract;
pub mod hazards;
pub mod health;
pub mod patrol;
pub mod photos;
pub mod sync;

use crate::auth::Keys;
use crate::clock::ServerClock;
use crate::config::Config;
use crate::error::AppError;
use crate::storage::{ChangeHub, DynStore};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub const HLC_HEADER: &str = "patrol-hlc";

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub keys: Arc<Keys>,
    pub clock: Arc<ServerClock>,
    pub hub: ChangeHub,
    pub config: Arc<Config>,
    /// Where photo bytes live.
    pub blobs: crate::blobs::DynBlobStore,
    /// Cancelled on shutdown: long-polls answer at once instead of holding it up.
    pub shutdown: CancellationToken,
    /// `max_concurrent_pushes` permits: a push holds one from parsing its body to its answer.
    pub push_permits: Arc<tokio::sync::Semaphore>,
}

/// Every response carries the server's HLC, errors included.
async fn hlc_header(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&state.clock.tick().to_string()) {
        resp.headers_mut()
            .insert(HeaderName::from_static(HLC_HEADER), v);
    }
    resp
}

async fn not_found() -> AppError {
    AppError::NotFound
}

pub fn router(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(health::routes())
        .merge(auth::routes())
        .merge(sync::routes())
        .merge(admin::routes())
        .merge(devices::routes())
        .merge(hazards::routes())
        .merge(alerts::routes())
        .merge(photos::routes())
        .merge(patrol::routes())
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(compression::request_decompression())
        .layer(middleware::from_fn(compression::check_encoding))
        .layer(middleware::from_fn(csv::excel_bom))
        .layer(middleware::from_fn_with_state(state.clone(), hlc_header))
        .layer(compression::response_compression())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_default();
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_response(
                    |resp: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = resp.status().as_u16(),
                            latency_ms = latency.as_millis() as u64,
                            "answered"
                        );
                    },
                ),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}
