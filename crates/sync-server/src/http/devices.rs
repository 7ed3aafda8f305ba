//! Handset sync health: what each device has delivered, and the gaps; revoking a lost
//! handset; who the estate's members are.

use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::http::AppState;
use crate::storage::DeviceRow;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared_core::wire::{DeviceList, DeviceStatus, EstateMember, MemberList, Timestamp};
use shared_core::{DeviceId, EstateId, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/estates/{id}/devices", get(list_devices))
        .route("/v1/devices/{id}/revoke", post(revoke_device))
        .route("/v1/estates/{id}/members", get(list_members))
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

/// Revoke a device (a lost or stolen handset): its sessions end at once, and it can never
/// sign in again. Managers and admins of an estate whose member used it last. Facts it
/// pushed are kept. Revoking twice is not an error.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "devices", security(("bearer" = [])),
    params(("id" = DeviceId, Path, description = "device id")), responses(
    (status = 200, body = DeviceStatus, description = "the device, now revoked"),
    (status = 403, description = "needs role manager or admin in an estate of the device's last user", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such device among your estates' devices", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, device = %id))]
pub async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<DeviceStatus>> {
    let device: DeviceId = id.parse().map_err(|_| AppError::NotFound)?;
    let row = state
        .store
        .get_device(device)
        .await?
        .ok_or(AppError::NotFound)?;
    let user = row.last_user_id.ok_or(AppError::NotFound)?;
    let theirs: Vec<EstateId> = state
        .store
        .memberships(user)
        .await?
        .into_iter()
        .filter(|m| !m.retired)
        .map(|m| m.estate.id)
        .collect();
    // Seen only by overseers of one of its user's estates; revoked only by its managers.
    let seen = theirs.iter().any(|e| {
        caller
            .require_role(*e, &[Role::Supervisor, Role::Manager, Role::Admin])
            .is_ok()
    });
    if !seen {
        return Err(AppError::NotFound);
    }
    if !theirs.iter().any(|e| {
        caller
            .require_role(*e, &[Role::Manager, Role::Admin])
            .is_ok()
    }) {
        return Err(AppError::Forbidden(
            "role manager or admin in an estate of the device's last user".into(),
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    state.store.revoke_device(device, now).await?;
    tracing::warn!(device = %device, by = %caller.user_id, "device revoked");
    let row = state
        .store
        .get_device(device)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(status(row)))
}

/// The estate's members and their roles (disabled accounts left out), e.g. the engineers a
/// ticket can be assigned to. Supervisors, managers and admins.
#[utoipa::path(get, path = "/v1/estates/{id}/members", tag = "devices", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), responses(
    (status = 200, body = MemberList),
    (status = 403, description = "needs role supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<MemberList>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &[Role::Supervisor, Role::Manager, Role::Admin])?;
    let mut members: Vec<EstateMember> = Vec::new();
    for row in state.store.list_members(estate).await? {
        match members.last_mut() {
            Some(m) if m.id == row.user_id => m.roles.push(row.role),
            _ => members.push(EstateMember {
                id: row.user_id,
                username: row.username,
                name: row.name,
                roles: vec![row.role],
            }),
        }
    }
    Ok(Json(MemberList { members }))
}
