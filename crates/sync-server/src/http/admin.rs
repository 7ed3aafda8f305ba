//! Administration: estates and the quarantine of rejected changes.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared_core::wire::{EstateRecord, NewEstate, QuarantinePage};
use shared_core::{EstateId, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/quarantine", get(list_quarantine))
        .route("/v1/admin/estates", post(create_estate))
        .route("/v1/admin/estates/{id}", delete(retire_estate))
}

pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Checks an estate name and IANA time zone.
pub fn check_estate(e: &NewEstate) -> Result<String, AppError> {
    let mut errors = Vec::new();
    let name = e.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        errors.push(FieldError {
            path: "name".into(),
            message: "must be 1 to 200 characters".into(),
        });
    }
    let tz = e
        .timezone
        .clone()
        .unwrap_or_else(|| DEFAULT_TIMEZONE.into());
    if tz.contains('\0') || tz.parse::<chrono_tz::Tz>().is_err() {
        errors.push(FieldError {
            path: "timezone".into(),
            message: format!("{tz:?} is not an IANA time zone such as Asia/Shanghai"),
        });
    }
    if errors.is_empty() {
        Ok(tz)
    } else {
        Err(AppError::Validation(errors))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QuarantineParams {
    /// Only changes pushed by members of this estate (default: every estate you administer).
    pub estate_id: Option<EstateId>,
    /// Only entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, default 100, at most 1,000.
    pub limit: Option<usize>,
}

/// Rejected changes, kept with their raw JSON and the reason, newest first. Admins only.
#[utoipa::path(get, path = "/v1/admin/quarantine", tag = "admin", security(("bearer" = [])), params(QuarantineParams), responses(
    (status = 200, body = QuarantinePage),
    (status = 403, description = "needs role admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn list_quarantine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<QuarantineParams>,
) -> AppResult<Json<QuarantinePage>> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::Validation(vec![FieldError {
            path: "limit".into(),
            message: "must be from 1 to 1000".into(),
        }]));
    }
    let estates = match p.estate_id {
        Some(e) => {
            caller.require_role(e, &[Role::Admin])?;
            vec![e]
        }
        None => {
            let e = caller.estates_with(&[Role::Admin]);
            if e.is_empty() {
                return Err(AppError::Forbidden("role admin".into()));
            }
            e
        }
    };
    let entries = state
        .store
        .list_quarantine(&estates, p.before, limit)
        .await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(QuarantinePage {
        entries,
        next_before,
    }))
}

/// Create an estate. The caller (an admin of some estate) becomes its admin.
#[utoipa::path(post, path = "/v1/admin/estates", tag = "admin", security(("bearer" = [])), request_body = NewEstate, responses(
    (status = 201, body = EstateRecord),
    (status = 403, description = "needs role admin", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_estate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewEstate>,
) -> AppResult<(StatusCode, Json<EstateRecord>)> {
    if caller.estates_with(&[Role::Admin]).is_empty() {
        return Err(AppError::Forbidden("role admin".into()));
    }
    let tz = check_estate(&req)?;
    let estate = state
        .store
        .create_estate(req.name.trim(), &tz, now_ms())
        .await?;
    state
        .store
        .add_membership(caller.user_id, estate.id, Role::Admin)
        .await?;
    state.hub.notify(&[estate.id]);
    Ok((StatusCode::CREATED, Json(estate)))
}

/// Retire an estate: it reaches handsets as a `delete` tombstone; nothing more can be pushed to it.
#[utoipa::path(delete, path = "/v1/admin/estates/{id}", tag = "admin", security(("bearer" = [])), params(("id" = EstateId, Path, description = "estate id")), responses(
    (status = 204, description = "retired"),
    (status = 403, description = "needs role admin in the estate", body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn retire_estate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(id, &[Role::Admin])?;
    state.store.retire_estate(id, now_ms()).await?;
    state.hub.notify(&[id]);
    Ok(StatusCode::NO_CONTENT)
}
