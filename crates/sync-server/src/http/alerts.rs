//! Alerts (hazard escalations, missed visits): listed per estate, closed only with a comment.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::AppState;
use crate::services::hazards::{oversees, roles_in};
use crate::storage::{AlertQuery, CloseAlert};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shared_core::wire::Alert;
use shared_core::{AlertId, EstateId, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/estates/{id}/alerts", get(list_alerts))
        .route("/v1/alerts/{id}/close", post(close_alert))
}

/// Longest closing comment, in characters.
pub const MAX_COMMENT: usize = 2000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// true: only open alerts; false or absent: open and closed.
    pub open: Option<bool>,
    /// At most this many, newest first; default 100, at most 1,000.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// Newest first.
    pub alerts: Vec<Alert>,
}

/// The estate's alerts, newest first. Supervisors, managers and admins see every alert of
/// the estate; other members only the alerts addressed to them.
#[utoipa::path(get, path = "/v1/estates/{id}/alerts", tag = "alerts", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), AlertParams), responses(
    (status = 200, body = AlertList),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad open or limit", body = Problem, content_type = "application/problem+json")))]
pub async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<AlertParams>,
) -> AppResult<Json<AlertList>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &Role::ALL)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::Validation(vec![FieldError {
            path: "limit".into(),
            message: "must be from 1 to 1000".into(),
        }]));
    }
    let q = AlertQuery {
        estate,
        recipient: (!oversees(&caller, estate)).then_some(caller.user_id),
        open_only: p.open.unwrap_or(false),
        limit,
    };
    let alerts = state.store.list_alerts(&q).await?;
    Ok(Json(AlertList { alerts }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseAlertRequest {
    /// What was done about it: required, not blank, at most 2,000 characters.
    pub comment: String,
}

fn check_comment(c: &str) -> AppResult<()> {
    let message = if c.trim().is_empty() {
        "required: say what was done about the alert"
    } else if c.chars().count() > MAX_COMMENT {
        "must be at most 2000 characters"
    } else if c.contains('\0') {
        "must not contain NUL characters"
    } else {
        return Ok(());
    };
    Err(AppError::Validation(vec![FieldError {
        path: "comment".into(),
        message: message.into(),
    }]))
}

/// Close an alert with a comment. Overseers of its estate, or the person it is addressed to.
#[utoipa::path(post, path = "/v1/alerts/{id}/close", tag = "alerts", security(("bearer" = [])),
    params(("id" = AlertId, Path, description = "alert id")), request_body = CloseAlertRequest, responses(
    (status = 200, description = "closed", body = Alert),
    (status = 403, description = "neither an overseer of its estate nor its recipient", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such alert, or not in your estates", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "alert-closed: it was already closed", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "the comment is missing, blank or too long", body = Problem, content_type = "application/problem+json")))]
pub async fn close_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CloseAlertRequest>,
) -> AppResult<Json<Alert>> {
    let id: AlertId = id.parse().map_err(|_| AppError::NotFound)?;
    let alert = state.store.get_alert(id).await?.ok_or(AppError::NotFound)?;
    if roles_in(&caller, alert.estate_id).is_empty() {
        return Err(AppError::NotFound);
    }
    if !oversees(&caller, alert.estate_id) && alert.recipient_id != Some(caller.user_id) {
        return Err(AppError::Forbidden(format!(
            "role supervisor, manager or admin in estate {}, or to be the alert's recipient",
            alert.estate_id
        )));
    }
    check_comment(&req.comment)?;
    match state
        .store
        .close_alert(id, caller.user_id, &req.comment, now_ms())
        .await?
    {
        CloseAlert::Closed(a) => {
            state.hub.notify(&[a.estate_id]);
            Ok(Json(a))
        }
        CloseAlert::AlreadyClosed(a) => Err(AppError::AlertClosed(format!(
            "alert {} was closed at {}",
            a.id,
            a.closed_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        ))),
        CloseAlert::NotFound => Err(AppError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_must_say_something_briefly() {
        assert!(check_comment("fixed the door").is_ok());
        assert!(check_comment(&"字".repeat(MAX_COMMENT)).is_ok());
        for bad in ["", "   \n", &"x".repeat(MAX_COMMENT + 1), "a\0b"] {
            match check_comment(bad) {
                Err(AppError::Validation(e)) => assert_eq!(e[0].path, "comment"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
