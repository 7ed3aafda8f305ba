//! Sign-in: argon2 password hashes, short-lived JWT access tokens (HS256 pinned, `kid` for
//! rotation, `iss`/`aud`/`exp` checked), opaque rotating refresh tokens stored hashed, and
//! the [`Caller`] extractor every protected handler takes.

pub mod keys;
pub mod password;

use crate::error::AppError;
use crate::http::AppState;
use crate::storage::{Membership, SessionId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use shared_core::wire::{EstateMembership, UserInfo};
use shared_core::{DeviceId, EstateId, Role, Scope, UserId};
use std::collections::{BTreeMap, BTreeSet};

pub use keys::{Claims, Keys};

/// A new opaque refresh token: 256 random bits, base64url.
pub fn new_refresh_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What is stored for a refresh token: its SHA-256 (the token has 256 bits of entropy, so
/// a fast hash is enough; a database leak does not yield usable tokens).
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub session_id: SessionId,
    /// Every estate the caller belongs to, retired ones included (for tombstones).
    pub scope: Scope,
    /// Estates that are not retired.
    pub active: BTreeSet<EstateId>,
    pub memberships: Vec<Membership>,
}

impl Caller {
    pub fn from_memberships(
        user_id: UserId,
        device_id: DeviceId,
        session_id: SessionId,
        memberships: Vec<Membership>,
    ) -> Self {
        let mut roles: BTreeMap<EstateId, BTreeSet<Role>> = BTreeMap::new();
        let mut active = BTreeSet::new();
        for m in &memberships {
            roles.entry(m.estate.id).or_default().insert(m.role);
            if !m.retired {
                active.insert(m.estate.id);
            }
        }
        Self {
            user_id,
            device_id,
            session_id,
            scope: Scope::new(user_id, roles),
            active,
            memberships,
        }
    }

    /// May record facts in the estate: a member, and the estate is not retired.
    pub fn may_push_to(&self, estate: EstateId) -> bool {
        self.active.contains(&estate)
    }

    /// Requires `role` in `estate`. Another estate's id answers 404, not 403, so ids of
    /// estates the caller does not belong to are not confirmed to exist.
    pub fn require_role(&self, estate: EstateId, roles: &[Role]) -> Result<(), AppError> {
        if !self.active.contains(&estate) {
            return Err(AppError::NotFound);
        }
        if roles.iter().any(|r| self.scope.has_role(estate, *r)) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "role {} in estate {estate}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// Active estates where the caller holds one of `roles`.
    pub fn estates_with(&self, roles: &[Role]) -> Vec<EstateId> {
        self.active
            .iter()
            .copied()
            .filter(|e| roles.iter().any(|r| self.scope.has_role(*e, *r)))
            .collect()
    }
}

/// The user and estates parts of the login and `/v1/me` answers.
pub fn describe(
    user_id: UserId,
    username: &str,
    name: &str,
    memberships: &[Membership],
) -> (UserInfo, Vec<EstateMembership>) {
    let mut estates: Vec<EstateMembership> = Vec::new();
    let mut all_roles: BTreeSet<Role> = BTreeSet::new();
    for m in memberships.iter().filter(|m| !m.retired) {
        all_roles.insert(m.role);
        match estates.iter_mut().find(|e| e.id == m.estate.id) {
            Some(e) => e.roles.push(m.role),
            None => estates.push(EstateMembership {
                id: m.estate.id,
                name: m.estate.name.clone(),
                timezone: m.estate.timezone.clone(),
                roles: vec![m.role],
            }),
        }
    }
    for e in &mut estates {
        e.roles.sort();
        e.roles.dedup();
    }
    (
        UserInfo {
            id: user_id,
            username: username.to_owned(),
            name: name.to_owned(),
            roles: all_roles.into_iter().collect(),
        },
        estates,
    )
}

/// The console's session cookie (HttpOnly) and its CSRF companion (readable by the page).
pub const SESSION_COOKIE: &str = "ps_session";
pub const CSRF_COOKIE: &str = "ps_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn request_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Compares secrets without leaking where they differ through timing.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session id, user and device a request's credentials name: a Bearer access token,
/// or else the console's session cookie. With the cookie, a request that may change
/// something (any method but GET, HEAD and OPTIONS) must also carry the session's CSRF
/// token in `X-CSRF-Token`: another site can make the browser send the cookie, but it
/// cannot read the token.
fn credentials(
    parts: &Parts,
    state: &AppState,
) -> Result<(uuid::Uuid, uuid::Uuid, uuid::Uuid), AppError> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthorized(
                "the Authorization header must be: Bearer <access token>",
            ))?;
        let claims = state.keys.verify(token)?;
        return Ok((claims.sid, claims.sub, claims.did));
    }
    let cookie = request_cookie(&parts.headers, SESSION_COOKIE).ok_or(AppError::Unauthorized(
        "send Authorization: Bearer <access token>",
    ))?;
    let claims = state.keys.verify_console(&cookie)?;
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(sent, &claims.csrf) {
            return Err(AppError::Forbidden(
                "CSRF token missing or wrong: send the ps_csrf cookie's value in X-CSRF-Token"
                    .into(),
            ));
        }
    }
    Ok((claims.sid, claims.sub, claims.did))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let (sid, sub, did) = credentials(parts, state)?;
        let (session, memberships) = state
            .store
            .session_context(SessionId(sid))
            .await?
            .ok_or_else(|| AppError::InvalidToken("the session has ended; sign in again".into()))?;
        if session.user_id.0 != sub || session.device_id.0 != did {
            return Err(AppError::InvalidToken(
                "token does not match its session".into(),
            ));
        }
        Ok(Caller::from_memberships(
            session.user_id,
            session.device_id,
            session.id,
            memberships,
        ))
    }
}
