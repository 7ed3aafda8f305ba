//! Extractors whose rejections are problem+json: malformed JSON is 400, a wrong field is
//! 422 with `errors: [{path, message}]`, an oversized body is 413 stating the limits.

use crate::error::{AppError, FieldError};
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub struct ApiJson<T>(pub T);

/// Splits serde's "missing field `x`" into the path of the field itself.
fn field_error(path: String, message: String) -> FieldError {
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            let full = if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return FieldError {
                path: full,
                message: "required".into(),
            };
        }
    }
    let path = if path == "." { String::new() } else { path };
    // serde appends " at line L column C" to data errors: the path already says where.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    FieldError { path, message }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        // Trailing bytes after the value make the whole body malformed: a batch followed
        // by garbage must not be half-read and stored.
        Ok(v) => de
            .end()
            .map(|()| v)
            .map_err(|e| AppError::InvalidJson(e.to_string())),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(AppError::InvalidJson(inner.to_string()))
            } else {
                Err(AppError::Validation(vec![field_error(
                    path,
                    inner.to_string(),
                )]))
            }
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body's bytes, read but not parsed: the content type checked and the push size
/// limit held (for the decompressed body). The push parses it once it may go on.
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(AppError::UnsupportedMediaType);
        }
        let limit = state.config.max_batch_bytes;
        // The limit holds for the decompressed body (see `http::compression`).
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                if is_length_limit(&e) {
                    AppError::BatchTooLarge {
                        max_changes: state.config.max_batch_changes,
                        max_bytes: limit,
                        detail: format!(
                            "the body is larger than {limit} bytes (decompressed); split the batch"
                        ),
                    }
                } else {
                    AppError::BadEncoding(format!("the body could not be read: {e}"))
                }
            })?;
        Ok(JsonBytes(bytes))
    }
}

/// Whether a body error is the length limit (rather than, say, a corrupt gzip stream).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Query strings, with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(ApiQuery).map_err(|e| {
            AppError::Validation(vec![FieldError {
                path: "query".into(),
                message: e.to_string(),
            }])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_core::wire::PushRequest;

    #[test]
    fn missing_and_wrong_fields_name_their_path() {
        let e = parse_json::<PushRequest>(br#"{"batch_id":"0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","sent_at":"2026-11-22T01:30:00Z","changes":[]}"#).unwrap_err();
        match e {
            AppError::Validation(errs) => assert_eq!(errs[0].path, "device_id"),
            other => panic!("{other:?}"),
        }
        let e = parse_json::<PushRequest>(br#"{"device_id":"0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","batch_id":"0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","sent_at":"2026-11-22T01:30:00Z","changes":{}}"#).unwrap_err();
        match e {
            AppError::Validation(errs) => assert_eq!(errs[0].path, "changes"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<PushRequest>(b"{\"device_id\": "),
            Err(AppError::InvalidJson(_))
        ));
    }
}
