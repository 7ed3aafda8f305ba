//! Compressed bodies (issue 5). Requests may be sent with `Content-Encoding: gzip` or
//! `zstd`: they are decompressed before any handler reads them, and the size limits hold
//! for the decompressed bytes (a small bomb is a 413, a corrupt stream a 400). Responses
//! are compressed with zstd or gzip when `Accept-Encoding` asks for one, except photos
//! (already compressed), partial content and answers under 32 bytes.

use crate::error::AppError;
use axum::extract::Request;
use axum::http::header::{CONTENT_ENCODING, CONTENT_RANGE};
use axum::http::{Extensions, HeaderMap, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

/// The request encodings the server decodes.
pub const REQUEST_ENCODINGS: [&str; 2] = ["gzip", "zstd"];

/// Refuses a `Content-Encoding` the server cannot decode with a problem+json 415 (rather
/// than a bare one), and drops `identity`, which means none.
pub async fn check_encoding(mut req: Request, next: Next) -> Response {
    if let Some(v) = req.headers().get(CONTENT_ENCODING) {
        let e = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if e == "identity" || e.is_empty() {
            req.headers_mut().remove(CONTENT_ENCODING);
        } else if !REQUEST_ENCODINGS.contains(&e.as_str()) {
            return AppError::UnsupportedEncoding(e).into_response();
        }
    }
    next.run(req).await
}

pub fn request_decompression() -> RequestDecompressionLayer {
    RequestDecompressionLayer::new()
        .gzip(true)
        .zstd(true)
        .no_br()
        .no_deflate()
}

/// Not for partial content: a byte range of a compressed body would not be the range
/// asked for.
fn whole_bodies(status: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    status != StatusCode::PARTIAL_CONTENT && !headers.contains_key(CONTENT_RANGE)
}

pub fn response_compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .gzip(true)
        .zstd(true)
        .no_br()
        .no_deflate()
        .compress_when(DefaultPredicate::new().and(whole_bodies))
}
