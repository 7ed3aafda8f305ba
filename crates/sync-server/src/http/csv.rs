//! CSV exports: content negotiation and cells a spreadsheet will not run.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// Does the client ask for CSV rather than JSON?
pub fn wants_csv(headers: &HeaderMap) -> bool {
    let mut csv_q: Option<f32> = None;
    let mut json_q: Option<f32> = None;
    for v in headers.get_all(header::ACCEPT) {
        let Ok(v) = v.to_str() else { continue };
        for range in v.split(',') {
            let mut parts = range.split(';');
            let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match mime.as_str() {
                "text/csv" => &mut csv_q,
                "application/json" => &mut json_q,
                _ => continue,
            };
            *slot = Some(slot.unwrap_or(0.0).max(q));
        }
    }
    match csv_q {
        Some(c) if c > 0.0 => match json_q {
            Some(j) => c > j,
            None => true,
        },
        _ => false,
    }
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-`, `@`, tab or carriage return is defused with `'` so a spreadsheet does not run it
/// as a formula.
pub fn csv_cell(s: &str) -> String {
    let defused;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        defused = format!("'{s}");
        defused.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub fn csv_row(cells: &[String], out: &mut String) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_cell(c));
    }
    out.push_str("\r\n");
}

/// A CSV body as a download named `filename`.
pub fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::VARY, "accept".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Does the query ask for a byte order mark (`bom=1` or `bom=true`)?
fn wants_bom(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .unwrap_or_default()
            .iter()
            .any(|(k, v)| k == "bom" && (v == "1" || v == "true"))
    })
}

/// `bom=1` on any CSV export puts a UTF-8 byte order mark first, so Excel opens Chinese
/// text as UTF-8 instead of the system code page (the web console's links ask for it).
/// Without it the bytes are unchanged, for programs that do not expect one.
pub async fn excel_bom(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let bom = wants_bom(req.uri().query());
    let resp = next.run(req).await;
    let is_csv = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    if !bom || !is_csv || !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body =
        futures::stream::once(async { Ok::<_, axum::Error>(bytes::Bytes::from_static(BOM)) })
            .chain(body.into_data_stream());
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

#[cfg(test)]
mod bom_tests {
    use super::wants_bom;

    #[test]
    fn bom_is_asked_for_by_the_query() {
        assert!(wants_bom(Some("from=2026-12-01&bom=1")));
        assert!(wants_bom(Some("bom=true")));
        assert!(!wants_bom(Some("bom=0")));
        assert!(!wants_bom(Some("nobom=1")));
        assert!(!wants_bom(None));
        assert!(!wants_bom(Some("%%%")));
    }
}
