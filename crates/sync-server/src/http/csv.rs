//! CSV exports: content negotiation and cells a spreadsheet will not run.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

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
