//! Photo bytes: `PUT`, `HEAD` and `GET /v1/photos/{sha256}`, and the photos whose bytes an
//! estate still waits for. Metadata comes first (a `photo` fact): bytes are accepted only
//! for a hash the caller may see a photo fact of, and served to whoever may see one.

use crate::auth::Caller;
use crate::error::{AppError, AppResult, PhotoProblem, Problem};
use crate::http::extract::ApiQuery;
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
        .route(
            "/v1/photos/{sha256}",
            get(get_photo).head(head_photo).put(put_photo),
        )
        .route("/v1/estates/{id}/photos/missing", get(list_missing))
}

/// Whether the caller may see this photo fact as its pusher or an overseer of its estate.
pub fn may_see(caller: &Caller, p: &PhotoRecord) -> bool {
    p.user_id == caller.user_id
        || caller
            .scope
            .roles
            .get(&p.estate_id)
            .is_some_and(|r| r.iter().any(|r| r.oversees()))
}

/// Whether the caller may see the photo through its subject: a hazard event of a ticket the
/// caller may see (the assigned engineer sees the guard's before photo; the reporter the
/// after photo).
async fn may_see_subject(state: &AppState, caller: &Caller, p: &PhotoRecord) -> AppResult<bool> {
    if p.subject_kind != "hazard_event" || !caller.scope.contains(p.estate_id) {
        return Ok(false);
    }
    let Ok(event) = p.subject_id.parse::<FactId>() else {
        return Ok(false);
    };
    let Some(hazard) = state.store.hazard_of_event(event).await? else {
        return Ok(false);
    };
    Ok(match state.store.get_hazard(hazard).await? {
        Some(t) => t.estate_id == p.estate_id && crate::services::hazards::may_view(caller, &t),
        None => false,
    })
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
    let mut rows: Vec<PhotoRecord> = Vec::new();
    for p in state.store.photos_by_sha(&sha).await? {
        if may_see(caller, &p) || may_see_subject(state, caller, &p).await? {
            rows.push(p);
        }
    }
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

/// Largest write buffered per upload file.
const UPLOAD_BUF: usize = 64 * 1024;

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
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let dir = state.config.upload_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;

    if let Some(cr) = headers.get(header::CONTENT_RANGE) {
        let (a, b, total) = cr
            .to_str()
            .ok()
            .and_then(parse_content_range)
            .ok_or_else(|| bad_field("Content-Range", "must be `bytes FIRST-LAST/TOTAL`"))?;
        if total > max {
            return Err(too_large());
        }
        return put_part(&state, &caller, &sha, &rows, (a, b, total), body).await;
    }

    let tmp = TempFile(Some(dir.join(format!("put-{}", uuid::Uuid::new_v4()))));
    let mut file = tokio::fs::File::create(tmp.path())
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    // tokio buffers up to 2 MiB per file for its blocking writes; 50 uploads at once would
    // hold 100 MiB. Small writes keep memory flat (the body arrives in small chunks anyway).
    file.set_max_buf_size(UPLOAD_BUF);
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad_field("body", format!("the upload broke off: {e}")))?;
        len += chunk.len() as u64;
        if len > max {
            return Err(too_large());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    file.sync_all()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    drop(file);
    finish(&state, &sha, &rows, tmp).await
}

fn bad_field(path: &str, message: impl Into<String>) -> AppError {
    AppError::Validation(vec![crate::error::FieldError {
        path: path.into(),
        message: message.into(),
    }])
}

/// `bytes FIRST-LAST/TOTAL` (RFC 9110 §14.4), inclusive, LAST < TOTAL.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b, total): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, total.parse().ok()?);
    (a <= b && b < total).then_some((a, b, total))
}

/// Where a resumable upload of `sha` by this device waits (`total` bytes announced).
fn part_path(state: &AppState, caller: &Caller, sha: &str, total: u64) -> PathBuf {
    state
        .config
        .upload_dir()
        .join(format!("{sha}-{}-{total}.part", caller.device_id))
}

/// How many bytes of a resumable upload the server holds (0 when none).
async fn held_offset(state: &AppState, caller: &Caller, sha: &str) -> u64 {
    let Ok(mut rd) = tokio::fs::read_dir(state.config.upload_dir()).await else {
        return 0;
    };
    let prefix = format!("{sha}-{}-", caller.device_id);
    while let Ok(Some(e)) = rd.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".part") {
            if let Ok(m) = e.metadata().await {
                return m.len();
            }
        }
    }
    0
}

fn offset_headers(offset: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("upload-offset", HeaderValue::from(offset));
    if offset > 0 {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes=0-{}", offset - 1)) {
            h.insert(header::RANGE, v);
        }
    }
    h
}

/// One part of a resumable upload (HTTP `Content-Range` uploads): appended to the partial
/// file if it starts where that file ends; the last part verifies and stores the photo.
/// Whatever arrives of a part that breaks off is kept, so the next part resumes there.
async fn put_part(
    state: &AppState,
    caller: &Caller,
    sha: &str,
    rows: &[PhotoRecord],
    (first, last, total): (u64, u64, u64),
    body: Body,
) -> AppResult<Response> {
    let path = part_path(state, caller, sha, total);
    let held = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len(),
        Err(_) => 0,
    };
    if first != held && first != 0 {
        let mut resp = photo_err(
            PhotoProblem::OffsetMismatch,
            format!("the server holds {held} bytes of this upload; send the part from byte {held}"),
        )
        .into_response();
        resp.headers_mut().extend(offset_headers(held));
        return Ok(resp);
    }
    // From byte 0: (re)start the upload.
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(first != 0)
        .truncate(first == 0)
        .open(&path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    file.set_max_buf_size(UPLOAD_BUF);
    let want = last + 1 - first;
    let mut got: u64 = 0;
    let mut stream = body.into_data_stream();
    let mut broke = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                broke = Some(e.to_string());
                break;
            }
        };
        let room = (want - got).min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..room])
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        got += room as u64;
        if room < chunk.len() {
            broke = Some(format!(
                "the part has more than the {want} bytes its Content-Range says"
            ));
            break;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    drop(file);
    let offset = first + got;
    if let Some(why) = broke {
        let mut resp =
            bad_field("body", format!("{why}; the server holds {offset} bytes")).into_response();
        resp.headers_mut().extend(offset_headers(offset));
        return Ok(resp);
    }
    if offset < total {
        let mut h = offset_headers(offset);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok((
            StatusCode::ACCEPTED,
            h,
            Json(serde_json::json!({ "sha256": sha, "offset": offset, "total": total })),
        )
            .into_response());
    }
    // Complete: the same checks as a whole upload.
    finish(state, sha, rows, TempFile(Some(path))).await
}

/// Checks a complete upload file (hash, sniffed type, declared size and type) and stores
/// it; on any refusal the file is removed and nothing is stored.
async fn finish(
    state: &AppState,
    sha: &str,
    rows: &[PhotoRecord],
    tmp: TempFile,
) -> AppResult<Response> {
    let (got, head, len) = hash_file(tmp.path())
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
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
    check_declared(rows, len, mime)?;
    // The thumbnail, once, from the local file before it goes to the store. A photo that
    // cannot be decoded (HEIC, or a damaged file) is stored without one.
    let thumb = TempFile(Some(tmp.path().with_extension("thumb")));
    let (src, dest, m) = (
        tmp.path().to_path_buf(),
        thumb.path().to_path_buf(),
        mime.to_owned(),
    );
    let permit = crate::services::thumbs::permits()
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let made = tokio::task::spawn_blocking(move || {
        crate::services::thumbs::make_thumbnail(&src, &dest, &m)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    drop(permit);
    match made {
        Ok(()) => {
            let t = thumb.keep();
            state
                .blobs
                .put_file(&crate::services::thumbs::thumb_key(sha), &t)
                .await
                .map_err(AppError::Internal)?;
        }
        Err(e) => tracing::info!(error = %e, "no thumbnail"),
    }
    let key = tmp.keep();
    state
        .blobs
        .put_file(sha, &key)
        .await
        .map_err(AppError::Internal)?;
    let blob = BlobRecord {
        sha256: sha.to_owned(),
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

/// SHA-256 (hex), the first bytes and the length of a file, read in blocks.
async fn hash_file(path: &std::path::Path) -> std::io::Result<(String, Vec<u8>, u64)> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; UPLOAD_BUF];
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), head, len))
}

/// Removes partial uploads untouched for longer than `max_age`; returns how many.
pub async fn expire_uploads(dir: &std::path::Path, max_age: std::time::Duration) -> u64 {
    let Ok(mut rd) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let mut n = 0;
    while let Ok(Some(e)) = rd.next_entry().await {
        let Ok(m) = e.metadata().await else { continue };
        let old = m
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if m.is_file() && old && tokio::fs::remove_file(e.path()).await.is_ok() {
            n += 1;
        }
    }
    n
}

/// `HEAD`: the headers of `GET` when the bytes are stored; otherwise `404` with
/// `Upload-Offset` (and `Range: bytes=0-N`) saying how much of a resumable upload from this
/// device the server holds, so the handset resumes from there.
#[utoipa::path(head, path = "/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the bytes, hex")),
    responses(
    (status = 200, description = "stored: the headers GET would send"),
    (status = 404, description = "not stored (Upload-Offset: bytes of a resumable upload held), or not visible")))]
pub async fn head_photo(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    query: ApiQuery<GetParams>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let (sha, _) = visible(&state, &caller, &sha256).await?;
    if state.store.photo_blob(&sha).await?.is_none() {
        let offset = held_offset(&state, &caller, &sha).await;
        return Ok((StatusCode::NOT_FOUND, offset_headers(offset)).into_response());
    }
    let resp = get_photo(State(state), caller, Path(sha256), query, headers).await?;
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct GetParams {
    /// `thumb`: the 320 px JPEG thumbnail (404 when there is none, e.g. for HEIC);
    /// `original` or absent: the photo.
    pub size: Option<String>,
}

/// A photo's bytes (`HEAD`: its headers). `ETag` is the hash; the bytes never change, so
/// they may be cached privately for a year. `Range: bytes=a-b` answers 206.
#[utoipa::path(get, path = "/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the bytes, hex"), GetParams),
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
    ApiQuery(params): ApiQuery<GetParams>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let (sha, _) = visible(&state, &caller, &sha256).await?;
    let mut blob = state
        .store
        .photo_blob(&sha)
        .await?
        .ok_or(AppError::NotFound)?;
    let (key, etag) = match params.size.as_deref() {
        None | Some("original") => (sha.clone(), format!("\"{sha}\"")),
        Some("thumb") => {
            let key = crate::services::thumbs::thumb_key(&sha);
            blob.bytes = state
                .blobs
                .size(&key)
                .await
                .map_err(AppError::Internal)?
                .ok_or(AppError::NotFound)?;
            blob.mime = "image/jpeg".into();
            (key, format!("\"{sha}-thumb\""))
        }
        Some(_) => return Err(bad_field("size", "must be `thumb` or `original`")),
    };
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
        .get(&key, range)
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

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges_of_upload_parts() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range("bytes 90-99/100"), Some((90, 99, 100)));
        assert_eq!(parse_content_range("bytes 90-100/100"), None);
        assert_eq!(parse_content_range("bytes 9-3/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
        assert_eq!(parse_content_range("items 0-9/100"), None);
        assert_eq!(parse_content_range("bytes x-9/100"), None);
    }
}
