//! Handset sync health: what each device has delivered, and the gaps.

use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::http::AppState;
use crate::storage::DeviceRow;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use shared_core::wire::{DeviceList, DeviceStatus, Timestamp};
use shared_core::{EstateId, Role};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/estates/{id}/devices", get(list_devices))
}

fn status(d: DeviceRow) -> DeviceStatus {
    DeviceStatus {
        missing_seqs: d
            .max_seq
            .saturating_sub(d.acked_through_seq)
            .saturating_sub(d.held_above_ack),
        id: d.id,
        name: d.name,
        platform: d.platform,
        app_version: d.app_version,
        last_user_id: d.last_user_id,
        first_seen_at: Timestamp(d.first_seen_at),
        last_seen_at: Timestamp(d.last_seen_at),
        acked_through_seq: d.acked_through_seq,
        max_seq: d.max_seq,
        last_clock_offset_ms: d.last_clock_offset_ms,
        revoked: d.revoked,
    }
}

/// Devices last used by members of the estate, with their acknowledged seq and gaps.
#[utoipa::path(get, path = "/v1/estates/{id}/devices", tag = "devices", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), responses(
    (status = 200, body = DeviceList),
    (status = 403, description = "needs role supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<DeviceList>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &[Role::Supervisor, Role::Manager, Role::Admin])?;
    let devices = state
        .store
        .list_devices(estate)
        .await?
        .into_iter()
        .map(status)
        .collect();
    Ok(Json(DeviceList { devices }))
}
