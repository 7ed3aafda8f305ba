//! Photo bytes: `PUT`, `HEAD` and `GET /v1/photos/{sha256}`, and the photos whose bytes an
//! estate still waits for. Metadata comes first (a `photo` fact): bytes are accepted only
//! for a hash the caller may see a photo fact of, and served to whoever may see one.

use crate::auth::Caller;
use crate::error::{AppError, AppResult, PhotoProblem, Problem};
use crate::http::AppState;
use crate::services::photos::{is_sha256, parse_range, sniff, SNIFF_LEN};
use crate::storage::{BlobRecord, MissingQuery, PhotoRecord};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared_core::wire::Timestamp;
use shared_core::{DeviceId, EstateId, FactId, UserId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/photos/{sha256}", get(get_photo).put(put_photo))
        .route("/v1/estates/{id}/photos/missing", get(list_missing))
}

/// Whether the caller may see this photo fact: its pusher, and overseers of its estate.
pub fn may_see(caller: &Caller, p: &PhotoRecord) -> bool {
    p.user_id == caller.user_id
        || caller
            .scope
            .roles
            .get(&p.estate_id)
            .is_some_and(|r| r.iter().any(|r| r.oversees()))
}

/// The hash from the path (lower-cased) and the photo facts of it the caller may see; 404
/// when there are none, so another estate's photos do not show they exist.
async fn visible(
    state: &AppState,
    caller: &Caller,
    sha256: &str,
) -> AppResult<(String, Vec<PhotoRecord>)> {
    if !is_sha256(sha256) {
        return Err(AppError::NotFound);
    }
    let sha = sha256.to_ascii_lowercase();
    let rows: Vec<PhotoRecord> = state
        .store
        .photos_by_sha(&sha)
        .await?
        .into_iter()
        .filter(|p| may_see(caller, p))
        .collect();
    if rows.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok((sha, rows))
}

/// What a stored photo is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhotoStored {
    pub sha256: String,
    pub bytes: u64,
    pub mime: String,
    /// False when the bytes were already held (nothing rewritten).
    pub created: bool,
}

/// A temporary upload file, removed on drop unless handed on.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &std::path::Path {
        self.0.as_deref().expect("temp file still held")
    }
    fn keep(mut self) -> PathBuf {
        self.0.take().expect("temp file still held")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn photo_err(problem: PhotoProblem, detail: impl Into<String>) -> AppError {
    AppError::Photo {
        problem,
        detail: detail.into(),
    }
}

/// Upload a photo's bytes. The body is streamed to a temporary file while it is hashed;
/// it is stored only if it hashes to `{sha256}`, is a JPEG, PNG, WebP or HEIC by its first
/// bytes, and has the size and type its photo fact declared. Idempotent: bytes already held
/// answer 200 without being rewritten.
#[utoipa::path(put, path = "/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the bytes, hex")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
    (status = 201, description = "stored", body = PhotoStored),
    (status = 200, description = "already held; nothing rewritten", body = PhotoStored),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no photo fact with this hash that the caller may see (push the metadata first)", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "larger than max_photo_bytes (photo-too-large)", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "not a JPEG, PNG, WebP or HEIC image (unsupported-photo-type)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "hash-mismatch, or metadata-mismatch (size or type not as declared)", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, sha256 = %sha256))]
pub async fn put_photo(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let (sha, rows) = visible(&state, &caller, &sha256).await?;
    if let Some(b) = state.store.photo_blob(&sha).await? {
        return Ok((StatusCode::OK, Json(stored(b, false))).into_response());
    }
    let max = state.config.max_photo_bytes;
    let too_large = || {
        photo_err(
            PhotoProblem::TooLarge,
            format!("a photo may have at most {max} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max {
            return Err(too_large());
        }
    }
    let dir = state.config.upload_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let tmp = TempFile(Some(dir.join(format!("put-{}", uuid::Uuid::new_v4()))));
    let mut file = tokio::fs::File::create(tmp.path())
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::InvalidJson(format!("reading the body: {e}")))?;
        len += chunk.len() as u64;
        if len > max {
            return Err(too_large());
        }
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    file.flush()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    file.sync_all()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    drop(file);
    let got = hex::encode(hasher.finalize());
    if got != sha {
        return Err(photo_err(
            PhotoProblem::HashMismatch,
            format!("the {len} bytes sent hash to {got}, not {sha}; nothing was stored"),
        ));
    }
    let Some(mime) = sniff(&head) else {
        return Err(photo_err(
            PhotoProblem::UnsupportedType,
            "the bytes are not a JPEG, PNG, WebP or HEIC image; nothing was stored",
        ));
    };
    check_declared(&rows, len, mime)?;
    let key = tmp.keep();
    state
        .blobs
        .put_file(&sha, &key)
        .await
        .map_err(AppError::Internal)?;
    let blob = BlobRecord {
        sha256: sha.clone(),
        bytes: len,
        mime: mime.to_owned(),
        stored_at: crate::clock::now_ms(),
    };
    let created = match state.store.record_photo_blob(&blob).await? {
        Some(touched) => {
            state.hub.notify(&touched);
            true
        }
        None => false,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored(blob, created))).into_response())
}

fn stored(b: BlobRecord, created: bool) -> PhotoStored {
    PhotoStored {
        sha256: b.sha256,
        bytes: b.bytes,
        mime: b.mime,
        created,
    }
}

/// The bytes must be what the caller's photo facts of this hash declared.
fn check_declared(rows: &[PhotoRecord], len: u64, mime: &str) -> AppResult<()> {
    for r in rows {
        if let Some(b) = r.bytes {
            if b != len {
                return Err(photo_err(
                    PhotoProblem::MetadataMismatch,
                    format!(
                        "photo {} declared {b} bytes; {len} were sent; nothing was stored",
                        r.id
                    ),
                ));
            }
        }
        if let Some(m) = &r.mime {
            if m != mime {
                return Err(photo_err(
                    PhotoProblem::MetadataMismatch,
                    format!(
                        "photo {} declared {m}; the bytes are {mime}; nothing was stored",
                        r.id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A photo's bytes (`HEAD`: its headers). `ETag` is the hash; the bytes never change, so
/// they may be cached privately for a year. `Range: bytes=a-b` answers 206.
#[utoipa::path(get, path = "/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the bytes, hex")),
    responses(
    (status = 200, description = "the bytes", content_type = "image/*"),
    (status = 206, description = "the range asked for", content_type = "image/*"),
    (status = 304, description = "If-None-Match matched"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no photo fact with this hash that the caller may see, or its bytes have not arrived", body = Problem, content_type = "application/problem+json"),
    (status = 416, description = "range-not-satisfiable", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, sha256 = %sha256))]
pub async fn get_photo(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let (sha, _) = visible(&state, &caller, &sha256).await?;
    let blob = state
        .store
        .photo_blob(&sha)
        .await?
        .ok_or(AppError::NotFound)?;
    let etag = format!("\"{sha}\"");
    let mut resp_headers = HeaderMap::new();
    let hv = |s: &str| HeaderValue::from_str(s).map_err(|e| AppError::Internal(e.into()));
    resp_headers.insert(header::ETAG, hv(&etag)?);
    resp_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, resp_headers).into_response());
    }
    resp_headers.insert(header::CONTENT_TYPE, hv(&blob.mime)?);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match parse_range(range, blob.bytes) {
        Ok(r) => r,
        Err(()) => {
            let mut resp = photo_err(
                PhotoProblem::RangeNotSatisfiable,
                format!("the photo has {} bytes", blob.bytes),
            )
            .into_response();
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes */{}", blob.bytes))?,
            );
            return Ok(resp);
        }
    };
    let stream = state
        .blobs
        .get(&sha, range)
        .await
        .map_err(AppError::Internal)?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "photo {sha} is recorded but not in the blob store"
            ))
        })?;
    let status = match range {
        Some((a, b)) => {
            resp_headers.insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes {a}-{b}/{}", blob.bytes))?,
            );
            resp_headers.insert(header::CONTENT_LENGTH, hv(&(b + 1 - a).to_string())?);
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            resp_headers.insert(header::CONTENT_LENGTH, hv(&blob.bytes.to_string())?);
            StatusCode::OK
        }
    };
    Ok((status, resp_headers, Body::from_stream(stream)).into_response())
}

/// A photo whose metadata arrived and whose bytes have not.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MissingPhoto {
    pub id: FactId,
    pub sha256: String,
    pub bytes: Option<u64>,
    pub mime: Option<String>,
    pub subject: serde_json::Value,
    pub role: String,
    pub user_id: UserId,
    pub received_at: Timestamp,
}

/// One handset's photos still to upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceMissing {
    pub device_id: DeviceId,
    pub photos: Vec<MissingPhoto>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MissingList {
    pub devices: Vec<DeviceMissing>,
}

/// Per device, the photos of the estate whose metadata arrived but whose bytes have not:
/// which handset still holds evidence. Overseers (supervisor, manager, admin) only.
#[utoipa::path(get, path = "/v1/estates/{id}/photos/missing", tag = "photos", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), responses(
    (status = 200, body = MissingList),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "not an overseer of the estate", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "not one of the caller's estates", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, estate = %estate))]
pub async fn list_missing(
    State(state): State<AppState>,
    caller: Caller,
    Path(estate): Path<EstateId>,
) -> AppResult<Json<MissingList>> {
    caller.require_role(
        estate,
        &[
            shared_core::Role::Supervisor,
            shared_core::Role::Manager,
            shared_core::Role::Admin,
        ],
    )?;
    let rows = state
        .store
        .photos_missing(&MissingQuery {
            estate: Some(estate),
            device: None,
        })
        .await?;
    let mut by_device: BTreeMap<DeviceId, Vec<MissingPhoto>> = BTreeMap::new();
    for r in rows {
        by_device
            .entry(r.device_id)
            .or_default()
            .push(MissingPhoto {
                id: r.id,
                sha256: r.sha256,
                bytes: r.bytes,
                mime: r.mime,
                subject: serde_json::json!({"kind": r.subject_kind, "id": r.subject_id}),
                role: r.role,
                user_id: r.user_id,
                received_at: Timestamp(r.received_at),
            });
    }
    Ok(Json(MissingList {
        devices: by_device
            .into_iter()
            .map(|(device_id, photos)| DeviceMissing { device_id, photos })
            .collect(),
    }))
}
