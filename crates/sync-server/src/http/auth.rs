//! `POST /v1/auth/login|refresh|logout`, `GET /v1/me`.

use crate::auth::Caller;
use crate::error::{AppResult, Problem};
use crate::http::extract::ApiJson;
use crate::http::AppState;
use crate::services;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared_core::wire::{LoginRequest, MeResponse, RefreshRequest, TokenResponse};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/me", get(me))
}

/// Sign in on a device: a 15-minute access token and a rotating refresh token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "wrong username or password", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(device = %req.device.id))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenResponse>> {
    Ok(Json(services::auth::login(&state, req).await?))
}

/// Exchange a refresh token for new tokens. Each refresh token works once; presenting a
/// used one again revokes the device's session (someone copied it).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "unknown, expired, revoked or reused token", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenResponse>> {
    Ok(Json(
        services::auth::refresh(&state, &req.refresh_token).await?,
    ))
}

/// End this device's session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])), responses(
    (status = 204, description = "signed out"),
    (status = 401, body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> AppResult<StatusCode> {
    services::auth::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: user, roles and estates.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = MeResponse),
    (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> AppResult<Json<MeResponse>> {
    Ok(Json(services::auth::me(&state, &caller).await?))
}
