//! One error type for the HTTP layer, rendered as RFC 9457 `application/problem+json`.
//! Client-safe text goes in the body; an internal cause is logged once, here.

use crate::storage::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use shared_core::wire::RejectCode;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// Where in the request body, e.g. `changes[3].seq` or `device_id`.
    pub path: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A `Content-Encoding` the server does not decode.
    #[error("unsupported content encoding: {0}")]
    UnsupportedEncoding(String),
    /// A compressed body that does not decompress.
    #[error("undecodable body: {0}")]
    BadEncoding(String),
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("device mismatch")]
    DeviceMismatch,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("batch too large")]
    BatchTooLarge {
        max_changes: usize,
        max_bytes: usize,
        detail: String,
    },
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    #[error("cursor must reset: {0}")]
    MustReset(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A hazard event refused online, with the code a push would have answered.
    #[error("hazard event rejected ({}): {message}", code.as_str())]
    HazardRejected { code: RejectCode, message: String },
    /// An alert that is already closed.
    #[error("alert already closed: {0}")]
    AlertClosed(String),
    /// Photo bytes refused: too large, not the hash, not an image, not what the metadata said.
    #[error("photo refused: {detail}")]
    Photo {
        problem: PhotoProblem,
        detail: String,
    },
    /// Reference data refused (zones, checkpoints, routes, rules): every reason, each with
    /// its code, field and the operation or CSV line at fault.
    #[error("reference data refused")]
    Reference(Vec<shared_core::patrol::RefError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The status of refused reference data: 404 when what it names is gone, 409 when it
/// collides with what is stored (a code or tag taken, an entity in use), else 422.
fn reference_status(errors: &[shared_core::patrol::RefError]) -> StatusCode {
    let all = |codes: &[&str]| {
        !errors.is_empty() && errors.iter().all(|e| codes.contains(&e.code.as_str()))
    };
    if all(&["not_found"]) {
        StatusCode::NOT_FOUND
    } else if all(&["duplicate_code", "duplicate_tag", "in_use"]) {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// Why photo bytes were refused (each its own problem `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoProblem {
    /// 413 `photo-too-large`.
    TooLarge,
    /// 422 `hash-mismatch`: the bytes do not hash to the URL's sha256.
    HashMismatch,
    /// 415 `unsupported-photo-type`: not JPEG, PNG, WebP or HEIC by their first bytes.
    UnsupportedType,
    /// 422 `metadata-mismatch`: size or type differ from the photo fact's.
    MetadataMismatch,
    /// 416 `range-not-satisfiable`.
    RangeNotSatisfiable,
    /// 409 `upload-offset-mismatch`: a resumed part does not start where the server is.
    OffsetMismatch,
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Other(e) => AppError::Internal(e),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// The problem slug of a rejection code: its name with `-` for `_`, so a client reads the
/// same code online (`/problems/role-forbidden`, `code: "role_forbidden"`) as through sync.
pub fn reject_slug(code: RejectCode) -> &'static str {
    match code {
        RejectCode::NotAnObject => "not-an-object",
        RejectCode::MissingField => "missing-field",
        RejectCode::WrongType => "wrong-type",
        RejectCode::UnknownKind => "unknown-kind",
        RejectCode::InvalidId => "invalid-id",
        RejectCode::InvalidSeq => "invalid-seq",
        RejectCode::InvalidHlc => "invalid-hlc",
        RejectCode::InvalidTimestamp => "invalid-timestamp",
        RejectCode::InvalidAge => "invalid-age",
        RejectCode::UnknownEstate => "unknown-estate",
        RejectCode::InvalidText => "invalid-text",
        RejectCode::IdConflict => "id-conflict",
        RejectCode::InvalidValue => "invalid-value",
        RejectCode::InvalidTransition => "invalid-transition",
        RejectCode::RoleForbidden => "role-forbidden",
        RejectCode::NotAssignee => "not-assignee",
        RejectCode::EvidenceRequired => "evidence-required",
        RejectCode::SelfVerification => "self-verification",
        RejectCode::PlanRequired => "plan-required",
        RejectCode::DueInPast => "due-in-past",
        RejectCode::AlreadyReported => "already-reported",
        RejectCode::NotReported => "not-reported",
        RejectCode::UnknownAssignee => "unknown-assignee",
    }
}

/// Who may not (403), what collides with the ticket as it is (409), what is wrong with the
/// event itself (422).
fn reject_status(code: RejectCode) -> StatusCode {
    match code {
        RejectCode::RoleForbidden | RejectCode::NotAssignee | RejectCode::SelfVerification => {
            StatusCode::FORBIDDEN
        }
        RejectCode::InvalidTransition | RejectCode::AlreadyReported | RejectCode::IdConflict => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn reject_title(code: RejectCode) -> &'static str {
    match code {
        RejectCode::RoleForbidden => "Your role may not take this action",
        RejectCode::NotAssignee => "Only the assignee may take this action",
        RejectCode::SelfVerification => "The person who fixed it may not verify it",
        RejectCode::InvalidTransition => "The action is not allowed in the ticket's state",
        RejectCode::AlreadyReported => "The hazard is already reported",
        RejectCode::IdConflict => "The event id is taken by other content",
        RejectCode::EvidenceRequired => "A required photo is missing",
        RejectCode::PlanRequired => "A major hazard needs its rectification plan",
        RejectCode::DueInPast => "The due date is not in the future",
        RejectCode::UnknownAssignee => "The assignee is not an engineer of the estate",
        RejectCode::NotReported => "The hazard is not reported",
        _ => "The hazard event is not valid",
    }
}

impl AppError {
    /// The stable problem `type` slug (documented in docs/PROTOCOL.md).
    pub fn slug(&self) -> &'static str {
        match self {
            AppError::InvalidJson(_) => "invalid-json",
            AppError::Validation(_) => "validation",
            AppError::UnsupportedMediaType => "unsupported-media-type",
            AppError::UnsupportedEncoding(_) => "unsupported-encoding",
            AppError::BadEncoding(_) => "bad-encoding",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::InvalidToken(_) => "invalid-token",
            AppError::InvalidCredentials => "invalid-credentials",
            AppError::RefreshTokenReused => "refresh-token-reused",
            AppError::Forbidden(_) => "forbidden",
            AppError::DeviceMismatch => "device-mismatch",
            AppError::NotFound => "not-found",
            AppError::MethodNotAllowed => "method-not-allowed",
            AppError::Conflict(_) => "conflict",
            AppError::BatchTooLarge { .. } => "batch-too-large",
            AppError::InvalidCursor(_) => "invalid-cursor",
            AppError::MustReset(_) => "must-reset",
            AppError::Unavailable(_) => "unavailable",
            AppError::HazardRejected { code, .. } => reject_slug(*code),
            AppError::AlertClosed(_) => "alert-closed",
            AppError::Photo { problem, .. } => match problem {
                PhotoProblem::TooLarge => "photo-too-large",
                PhotoProblem::HashMismatch => "hash-mismatch",
                PhotoProblem::UnsupportedType => "unsupported-photo-type",
                PhotoProblem::MetadataMismatch => "metadata-mismatch",
                PhotoProblem::RangeNotSatisfiable => "range-not-satisfiable",
                PhotoProblem::OffsetMismatch => "upload-offset-mismatch",
            },
            AppError::Reference(e) => match reference_status(e) {
                StatusCode::NOT_FOUND => "not-found",
                StatusCode::CONFLICT => "reference-conflict",
                _ => "invalid-reference",
            },
            AppError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidJson(_) | AppError::InvalidCursor(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::UnsupportedMediaType | AppError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            AppError::BadEncoding(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_)
            | AppError::InvalidToken(_)
            | AppError::InvalidCredentials
            | AppError::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::DeviceMismatch => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::MustReset(_) => StatusCode::GONE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::HazardRejected { code, .. } => reject_status(*code),
            AppError::AlertClosed(_) => StatusCode::CONFLICT,
            AppError::Photo { problem, .. } => match problem {
                PhotoProblem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                PhotoProblem::HashMismatch | PhotoProblem::MetadataMismatch => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                PhotoProblem::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                PhotoProblem::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
                PhotoProblem::OffsetMismatch => StatusCode::CONFLICT,
            },
            AppError::Reference(e) => reference_status(e),
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::InvalidJson(_) => "The request body is not valid JSON",
            AppError::Validation(_) => "The request has invalid fields",
            AppError::UnsupportedMediaType => "The request body must be application/json",
            AppError::UnsupportedEncoding(_) => {
                "The request body's Content-Encoding is not supported"
            }
            AppError::BadEncoding(_) => "The compressed request body could not be decompressed",
            AppError::Unauthorized(_) => "Authentication required",
            AppError::InvalidToken(_) => "The access token is not valid",
            AppError::InvalidCredentials => "Wrong username or password",
            AppError::RefreshTokenReused => "Refresh token already used",
            AppError::Forbidden(_) => "Not allowed",
            AppError::DeviceMismatch => "The batch is for another device",
            AppError::NotFound => "Not found",
            AppError::MethodNotAllowed => "Method not allowed",
            AppError::Conflict(_) => "Conflict",
            AppError::BatchTooLarge { .. } => "The batch is too large",
            AppError::InvalidCursor(_) => "The cursor is not valid",
            AppError::MustReset(_) => "The cursor can no longer be used",
            AppError::Unavailable(_) => "Service unavailable",
            AppError::HazardRejected { code, .. } => reject_title(*code),
            AppError::AlertClosed(_) => "The alert is already closed",
            AppError::Photo { problem, .. } => match problem {
                PhotoProblem::TooLarge => "The photo is too large",
                PhotoProblem::HashMismatch => "The bytes do not match the photo's SHA-256",
                PhotoProblem::UnsupportedType => {
                    "The bytes are not a JPEG, PNG, WebP or HEIC image"
                }
                PhotoProblem::MetadataMismatch => {
                    "The bytes are not what the photo's metadata says"
                }
                PhotoProblem::RangeNotSatisfiable => "The range is outside the photo",
                PhotoProblem::OffsetMismatch => "The part does not start where the upload stands",
            },
            AppError::Reference(_) => "The reference data was refused; nothing was changed",
            AppError::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> String {
        match self {
            AppError::InvalidJson(m) => m.clone(),
            AppError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            AppError::UnsupportedMediaType => "send Content-Type: application/json".into(),
            AppError::UnsupportedEncoding(e) => {
                format!("{e:?} is not supported; send gzip, zstd or an uncompressed body")
            }
            AppError::BadEncoding(m) => m.clone(),
            AppError::Unauthorized(m) => (*m).into(),
            AppError::InvalidToken(m) => m.clone(),
            AppError::InvalidCredentials => "check the username and password".into(),
            AppError::RefreshTokenReused => {
                "this refresh token was already exchanged; the device's session has been revoked, sign in again".into()
            }
            AppError::Forbidden(m) => m.clone(),
            AppError::DeviceMismatch => {
                "device_id must be the device this access token was issued to".into()
            }
            AppError::NotFound => "no such resource, or not in your estates".into(),
            AppError::MethodNotAllowed => "this path does not take that method".into(),
            AppError::Conflict(m) => m.clone(),
            AppError::BatchTooLarge { detail, .. } => detail.clone(),
            AppError::InvalidCursor(m) => m.clone(),
            AppError::MustReset(m) => format!(
                "{m}; start again with an empty cursor and keep your unpushed facts"
            ),
            AppError::Unavailable(_) => "the database is unreachable; retry later".into(),
            AppError::HazardRejected { message, .. } => message.clone(),
            AppError::AlertClosed(m) => m.clone(),
            AppError::Photo { detail, .. } => detail.clone(),
            AppError::Reference(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            AppError::Internal(_) => "something went wrong on the server; it has been logged".into(),
        }
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("/problems/{}", self.slug()),
            "title": self.title(),
            "status": self.status().as_u16(),
            "detail": self.detail(),
        });
        match self {
            AppError::Validation(errors) => body["errors"] = json!(errors),
            AppError::Reference(errors) => body["errors"] = json!(errors),
            AppError::BatchTooLarge {
                max_changes,
                max_bytes,
                ..
            } => {
                body["max_changes"] = json!(max_changes);
                body["max_bytes"] = json!(max_bytes);
            }
            AppError::Forbidden(m) => body["missing"] = json!(m),
            AppError::HazardRejected { code, .. } => body["code"] = json!(code.as_str()),
            _ => {}
        }
        body
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            AppError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => tracing::debug!(problem = self.slug(), "client error"),
        }
        let status = self.status();
        let mut resp = (status, self.body().to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"patrol-sync\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_type_status_and_extras() {
        let b = AppError::BatchTooLarge {
            max_changes: 1000,
            max_bytes: 1 << 20,
            detail: "x".into(),
        }
        .body();
        assert_eq!(b["type"], "/problems/batch-too-large");
        assert_eq!(b["status"], 413);
        assert_eq!(b["max_changes"], 1000);
        let v = AppError::Validation(vec![FieldError {
            path: "device_id".into(),
            message: "required".into(),
        }])
        .body();
        assert_eq!(v["errors"][0]["path"], "device_id");
        assert!(AppError::MustReset("old".into())
            .slug()
            .ends_with("must-reset"));
    }

    #[test]
    fn hazard_rejections_carry_their_code() {
        let e = AppError::HazardRejected {
            code: RejectCode::RoleForbidden,
            message: "a guard may not assign".into(),
        };
        let b = e.body();
        assert_eq!(b["type"], "/problems/role-forbidden");
        assert_eq!(b["status"], 403);
        assert_eq!(b["code"], "role_forbidden");
        assert_eq!(b["detail"], "a guard may not assign");
        for (code, status) in [
            (RejectCode::NotAssignee, 403),
            (RejectCode::SelfVerification, 403),
            (RejectCode::InvalidTransition, 409),
            (RejectCode::AlreadyReported, 409),
            (RejectCode::IdConflict, 409),
            (RejectCode::EvidenceRequired, 422),
            (RejectCode::PlanRequired, 422),
            (RejectCode::DueInPast, 422),
            (RejectCode::MissingField, 422),
            (RejectCode::WrongType, 422),
            (RejectCode::InvalidValue, 422),
            (RejectCode::InvalidTimestamp, 422),
            (RejectCode::UnknownAssignee, 422),
            (RejectCode::NotReported, 422),
        ] {
            let e = AppError::HazardRejected {
                code,
                message: String::new(),
            };
            assert_eq!(e.status().as_u16(), status, "{}", code.as_str());
            assert_eq!(e.slug(), code.as_str().replace('_', "-"));
        }
        assert_eq!(AppError::AlertClosed("x".into()).status().as_u16(), 409);
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let b = AppError::Internal(anyhow::anyhow!("password=hunter2 at db")).body();
        assert!(!b.to_string().contains("hunter2"));
    }
}

/// The RFC 9457 problem body, for the API document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `/problems/<slug>`: stable per kind of error.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Validation errors, one per field.
    pub errors: Option<Vec<FieldError>>,
    /// With a hazard event's rejection: the rejection code, as a push would answer it
    /// (`role_forbidden`, `evidence_required`, ...).
    pub code: Option<String>,
    /// With `batch-too-large`: the limits.
    pub max_changes: Option<usize>,
    pub max_bytes: Option<usize>,
}
