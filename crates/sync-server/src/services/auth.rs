//! Login, refresh-token rotation and logout.

use crate::auth::{describe, hash_refresh_token, new_refresh_token, password, Caller};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError};
use crate::http::AppState;
use crate::storage::{DeviceUpsert, NewSession, RotateOutcome, SessionId, UserRow};
use shared_core::wire::{LoginRequest, MeResponse, TokenResponse};

const MAX_FIELD: usize = 200;
const MAX_PASSWORD: usize = 1024;

fn check_login(req: &LoginRequest) -> AppResult<()> {
    let mut errors = Vec::new();
    if req.username.trim().is_empty() || req.username.len() > MAX_FIELD {
        errors.push(FieldError {
            path: "username".into(),
            message: format!("must be 1 to {MAX_FIELD} characters"),
        });
    }
    if req.password.is_empty() || req.password.len() > MAX_PASSWORD {
        errors.push(FieldError {
            path: "password".into(),
            message: format!("must be 1 to {MAX_PASSWORD} characters"),
        });
    }
    for (path, v) in [
        ("device.name", &req.device.name),
        ("device.platform", &req.device.platform),
        ("device.app_version", &req.device.app_version),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > MAX_FIELD) {
            errors.push(FieldError {
                path: path.into(),
                message: format!("at most {MAX_FIELD} characters"),
            });
        }
    }
    let texts = [
        ("username", Some(&req.username)),
        ("password", Some(&req.password)),
        ("device.name", req.device.name.as_ref()),
        ("device.platform", req.device.platform.as_ref()),
        ("device.app_version", req.device.app_version.as_ref()),
    ];
    for (path, v) in texts {
        if v.is_some_and(|s| s.contains('\0')) {
            errors.push(FieldError {
                path: path.into(),
                message: "must not contain NUL characters".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

async fn tokens_for(
    state: &AppState,
    user: UserRow,
    session: SessionId,
    device: shared_core::DeviceId,
    refresh_token: String,
) -> AppResult<TokenResponse> {
    let user_id = user.id;
    let memberships = state.store.memberships(user_id).await?;
    let (user_info, estates) = describe(user.id, &user.username, &user.name, &memberships);
    let access = state
        .keys
        .issue(user_id.0, session.0, device.0, now_ms() / 1000)?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.keys.access_ttl_secs,
        user: user_info,
        estates,
        hlc: state.clock.tick(),
    })
}

pub async fn login(state: &AppState, req: LoginRequest) -> AppResult<TokenResponse> {
    Ok(login_if(state, req, |_| true)
        .await?
        .expect("everyone is admitted"))
}

/// Signs in like [`login`], but only a user whose memberships `admit` accepts: `None` when
/// the password is right and `admit` refuses. Nothing is recorded then (no device, no
/// session).
pub async fn login_if(
    state: &AppState,
    req: LoginRequest,
    admit: impl Fn(&[crate::storage::Membership]) -> bool,
) -> AppResult<Option<TokenResponse>> {
    check_login(&req)?;
    let user = state
        .store
        .find_user_by_username(req.username.trim())
        .await?;
    let ok = password::verify(
        req.password.clone(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => return Err(AppError::InvalidCredentials),
    };
    if state
        .store
        .get_device(req.device.id)
        .await?
        .is_some_and(|d| d.revoked)
    {
        return Err(AppError::Forbidden(
            "this device has been revoked by a manager".into(),
        ));
    }
    if !admit(&state.store.memberships(user.id).await?) {
        return Ok(None);
    }
    let now = now_ms();
    state
        .store
        .upsert_device(DeviceUpsert {
            id: req.device.id,
            name: req.device.name.clone(),
            platform: req.device.platform.clone(),
            app_version: req.device.app_version.clone(),
            user_id: user.id,
            now,
        })
        .await?;
    let refresh = new_refresh_token();
    let session = SessionId(uuid::Uuid::now_v7());
    state
        .store
        .create_session(NewSession {
            id: session,
            user_id: user.id,
            device_id: req.device.id,
            refresh_hash: hash_refresh_token(&refresh),
            refresh_expires_at: now + refresh_ttl_ms(state),
            now,
        })
        .await?;
    tracing::info!(user = %user.id, device = %req.device.id, "signed in");
    tokens_for(state, user, session, req.device.id, refresh)
        .await
        .map(Some)
}

fn refresh_ttl_ms(state: &AppState) -> i64 {
    state.config.refresh_token_ttl_days as i64 * 24 * 3600 * 1000
}

pub async fn refresh(state: &AppState, token: &str) -> AppResult<TokenResponse> {
    if token.is_empty() || token.len() > 200 || token.contains('\0') {
        return Err(AppError::InvalidToken("unknown refresh token".into()));
    }
    let now = now_ms();
    let new_token = new_refresh_token();
    match state
        .store
        .rotate_refresh_token(
            &hash_refresh_token(token),
            &hash_refresh_token(&new_token),
            now + refresh_ttl_ms(state),
            now,
        )
        .await?
    {
        RotateOutcome::Rotated(s) => {
            let user = state
                .store
                .find_user(s.user_id)
                .await?
                .ok_or_else(|| AppError::InvalidToken("the user no longer exists".into()))?;
            tokens_for(state, user, s.id, s.device_id, new_token).await
        }
        RotateOutcome::Reused(sid) => {
            tracing::warn!(session = %sid.0, "refresh token reused: session revoked");
            Err(AppError::RefreshTokenReused)
        }
        RotateOutcome::Invalid => Err(AppError::InvalidToken(
            "the refresh token is unknown, expired or revoked; sign in again".into(),
        )),
    }
}

pub async fn logout(state: &AppState, caller: &Caller) -> AppResult<()> {
    state
        .store
        .revoke_session(caller.session_id, "logout", now_ms())
        .await?;
    Ok(())
}

pub async fn me(state: &AppState, caller: &Caller) -> AppResult<MeResponse> {
    let user = state
        .store
        .find_user(caller.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (user_info, estates) = describe(user.id, &user.username, &user.name, &caller.memberships);
    Ok(MeResponse {
        user: user_info,
        estates,
        device_id: caller.device_id,
        hlc: state.clock.tick(),
    })
}
