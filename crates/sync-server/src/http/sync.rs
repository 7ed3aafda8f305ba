//! `POST /v1/sync/push` and `GET /v1/sync/pull`.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::http::extract::{parse_json, ApiQuery, JsonBytes};
use crate::http::AppState;
use crate::services::cursor::Cursor;
use crate::services::sync::{engineers_named, prepare_batch};
use crate::storage::{FeedPage, FeedPos, FeedScope, PushOutcome};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared_core::wire::{PullResponse, PushRequest, PushResponse};
use std::time::Duration;
use tokio::time::Instant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sync/push", post(push))
        .route("/v1/sync/pull", get(pull))
}

/// Push a batch of facts. One transaction per batch; one result per change, in order.
#[utoipa::path(post, path = "/v1/sync/push", tag = "sync", security(("bearer" = [])), request_body = PushRequest, responses(
    (status = 200, description = "every change answered: accepted, duplicate or rejected (and quarantined)", body = PushResponse),
    (status = 400, description = "not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "device_id is not the token's device", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "more than max_changes changes or max_bytes bytes", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "the envelope is unreadable", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(device = %caller.device_id, batch = tracing::field::Empty, changes = tracing::field::Empty))]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> AppResult<Json<PushResponse>> {
    // At most `max_concurrent_pushes` are worked on at once; the rest wait here holding
    // only their bytes (a parsed batch is ~20× larger), first come first served.
    let _permit = state
        .push_permits
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let req: PushRequest = parse_json(&body)?;
    drop(body);
    let span = tracing::Span::current();
    span.record("batch", tracing::field::display(&req.batch_id));
    span.record("changes", req.changes.len());
    if req.device_id != caller.device_id {
        return Err(AppError::DeviceMismatch);
    }
    let max = state.config.max_batch_changes;
    if req.changes.len() > max {
        return Err(AppError::BatchTooLarge {
            max_changes: max,
            max_bytes: state.config.max_batch_bytes,
            detail: format!(
                "{} changes in one batch; at most {max}: split the batch",
                req.changes.len()
            ),
        });
    }
    // A batch sent again (its answer was lost) is answered from the stored answer before
    // anything else: no checking of its changes, no write lock.
    let replayed = state
        .store
        .push_answer(caller.device_id, req.batch_id)
        .await?;
    let mut response = match replayed {
        Some(response) => response,
        None => {
            let engineers = engineers_named(&state.store, &req.changes).await?;
            let batch = prepare_batch(
                &caller,
                req,
                now_ms(),
                &state.clock,
                state.config.max_clock_drift_ms,
                &engineers,
                state.config.max_photo_bytes,
            );
            // Run the transaction in its own task: a handset that drops the connection
            // mid-push does not abort a commit under way, and its retry of the batch id
            // gets the answer.
            let store = state.store.clone();
            let outcome = tokio::spawn(async move { store.apply_push(batch).await })
                .await
                .map_err(|e| AppError::Internal(e.into()))??;
            match outcome {
                PushOutcome::Stored { response, touched } => {
                    state.hub.notify(&touched);
                    response
                }
                PushOutcome::Replayed(response) => response,
            }
        }
    };
    // The bytes this handset still owes: photos it pushed whose bytes are not held.
    let mut missing: Vec<String> = state
        .store
        .photos_missing(&crate::storage::MissingQuery {
            estate: None,
            device: Some(caller.device_id),
        })
        .await?
        .into_iter()
        .map(|p| p.sha256)
        .collect();
    missing.sort();
    missing.dedup();
    response.photos_missing = missing;
    response.hlc = state.clock.tick();
    Ok(Json(response))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PullParams {
    /// The `cursor` of the previous answer; empty or absent to start from the beginning.
    pub cursor: Option<String>,
    /// At most this many changes (default 1,000, at most 5,000).
    pub limit: Option<usize>,
    /// Seconds to wait for a change when there is none yet (long-poll; at most 60).
    pub wait: Option<u64>,
}

fn feed_scope(caller: &Caller) -> FeedScope {
    FeedScope {
        user_id: caller.user_id,
        full: caller.scope.overseen_estates(),
        own: caller.scope.member_estates(),
        engineer: caller.scope.engineer_estates(),
    }
}

/// Changes since the cursor, in commit order, scoped to the caller's estates and role.
#[utoipa::path(get, path = "/v1/sync/pull", tag = "sync", security(("bearer" = [])), params(PullParams), responses(
    (status = 200, body = PullResponse),
    (status = 400, description = "unreadable cursor", body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 410, description = "the cursor must reset (type ends in must-reset): pull again with no cursor", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad limit or wait", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PullParams>,
) -> AppResult<Json<PullResponse>> {
    let cfg = &state.config;
    let mut errors = Vec::new();
    let limit = p.limit.unwrap_or(cfg.default_pull_limit);
    if limit == 0 || limit > cfg.max_pull_limit {
        errors.push(FieldError {
            path: "limit".into(),
            message: format!("must be from 1 to {}", cfg.max_pull_limit),
        });
    }
    let wait = p.wait.unwrap_or(0);
    if wait > cfg.max_pull_wait_secs {
        errors.push(FieldError {
            path: "wait".into(),
            message: format!("must be from 0 to {} seconds", cfg.max_pull_wait_secs),
        });
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }

    let fingerprint = caller.scope.fingerprint();
    let now = now_ms();
    let pos = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => FeedPos::default(),
        Some(c) => {
            let c = Cursor::decode(c)?;
            let floor = state.store.feed_floor().await?;
            c.check(
                &fingerprint,
                floor,
                now,
                cfg.tombstone_retention_days as i64 * 86_400_000,
            )?;
            c.pos()
        }
    };

    let scope = feed_scope(&caller);
    let deadline = Instant::now() + Duration::from_secs(wait);
    // A long-poll subscribes before its first read: a commit after the subscription wakes
    // it, one before is in the read. (Subscribing after an empty read meant a second read
    // on every parked request: with thousands of handsets re-parking after each change,
    // a third of the feed reads a change caused.)
    let mut subscription = (wait > 0).then(|| {
        state
            .hub
            .subscribe(scope.full.iter().chain(scope.own.iter()).copied())
    });
    let page: FeedPage = loop {
        let page = state.store.pull(&scope, pos, limit).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if !page.items.is_empty() || remaining.is_zero() {
            break page;
        }
        let Some(sub) = subscription.as_mut() else {
            break page;
        };
        // Rows held back behind an open transaction: look again shortly.
        let nap = if page.held_back {
            remaining.min(Duration::from_millis(50))
        } else {
            remaining
        };
        tokio::select! {
            _ = sub.changed() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = state.shutdown.cancelled() => break page,
        }
    };

    let last = page.items.last().map(|i| i.pos).unwrap_or(pos);
    Ok(Json(PullResponse {
        cursor: Cursor::new(last, fingerprint, now_ms()).encode(),
        has_more: page.has_more,
        changes: page.items.into_iter().map(|i| i.change).collect(),
        hlc: state.clock.tick(),
    }))
}
