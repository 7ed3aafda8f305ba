//! Photos: what a `photo` fact must say, what its bytes may be (sniffed, not trusted from a
//! header), and the byte ranges a `GET` may ask for.

use serde_json::Value;
use shared_core::validate::Rejection;
use shared_core::wire::RejectCode;

/// The MIME types a photo may have; the bytes are sniffed to match.
pub const MIMES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heic"];
/// What a photo may belong to.
pub const SUBJECT_KINDS: [&str; 3] = ["scan", "hazard_event", "finding"];
/// What a photo shows.
pub const ROLES: [&str; 5] = ["before", "after", "verification", "evidence", "other"];

/// A photo fact's metadata, as the server records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoMeta {
    /// Lower-case hex.
    pub sha256: String,
    pub bytes: Option<u64>,
    pub mime: Option<String>,
    pub subject_kind: String,
    pub subject_id: String,
    pub role: String,
}

/// Whether `s` is a SHA-256 in hex (either case).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn missing(path: &str) -> Rejection {
    Rejection::new(RejectCode::MissingField, format!("data.{path} is required"))
}
fn wrong(path: &str, want: &str) -> Rejection {
    Rejection::new(RejectCode::WrongType, format!("data.{path} must be {want}"))
}
fn invalid(path: &str, why: impl std::fmt::Display) -> Rejection {
    Rejection::new(RejectCode::InvalidValue, format!("data.{path}: {why}"))
}

fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn req_str<'a>(obj: &'a Value, key: &str, path: &str) -> Result<&'a str, Rejection> {
    field(obj, key)
        .ok_or_else(|| missing(path))?
        .as_str()
        .ok_or_else(|| wrong(path, "a string"))
}

fn opt_positive(obj: &Value, key: &str) -> Result<Option<u64>, Rejection> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => {
            let n = match v.as_u64() {
                Some(n) => n,
                None if v.is_number() => return Err(invalid(key, "must be a whole number from 1")),
                None => return Err(wrong(key, "a whole number")),
            };
            if n == 0 || n > 1_000_000 {
                return Err(invalid(key, "must be from 1 to 1000000"));
            }
            Ok(Some(n))
        }
    }
}

/// Reads and checks a `photo` fact's `data`. Shape errors are refused with the usual codes:
/// `missing_field`, `wrong_type`, `invalid_value`.
pub fn validate_photo(data: &Value, max_bytes: u64) -> Result<PhotoMeta, Rejection> {
    let sha = req_str(data, "sha256", "sha256")?;
    if !is_sha256(sha) {
        return Err(invalid("sha256", "must be 64 hexadecimal digits"));
    }
    let bytes_v = field(data, "bytes").ok_or_else(|| missing("bytes"))?;
    let bytes = match bytes_v.as_u64() {
        Some(n) => n,
        None if bytes_v.is_number() => {
            return Err(invalid("bytes", "must be a whole number from 1"))
        }
        None => return Err(wrong("bytes", "a whole number")),
    };
    if bytes == 0 || bytes > max_bytes {
        return Err(invalid("bytes", format!("must be from 1 to {max_bytes}")));
    }
    let mime = req_str(data, "mime", "mime")?;
    if !MIMES.contains(&mime) {
        return Err(invalid(
            "mime",
            format!("must be one of {}", MIMES.join(", ")),
        ));
    }
    opt_positive(data, "width")?;
    opt_positive(data, "height")?;
    if let Some(t) = field(data, "taken_at") {
        let s = t.as_str().ok_or_else(|| wrong("taken_at", "a string"))?;
        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
            return Err(invalid("taken_at", "must be an RFC 3339 timestamp"));
        }
    }
    if let Some(loc) = field(data, "location") {
        if !loc.is_object() {
            return Err(wrong("location", "an object"));
        }
        for (key, limit) in [("lat", 90.0), ("lng", 180.0)] {
            let path = format!("location.{key}");
            let v = field(loc, key).ok_or_else(|| missing(&path))?;
            let x = v.as_f64().ok_or_else(|| wrong(&path, "a number"))?;
            if !(-limit..=limit).contains(&x) {
                return Err(invalid(&path, format!("must be from -{limit} to {limit}")));
            }
        }
        if let Some(a) = field(loc, "accuracy_m") {
            let x = a
                .as_f64()
                .ok_or_else(|| wrong("location.accuracy_m", "a number"))?;
            if x < 0.0 {
                return Err(invalid("location.accuracy_m", "must not be negative"));
            }
        }
    }
    let subject = field(data, "subject").ok_or_else(|| missing("subject"))?;
    if !subject.is_object() {
        return Err(wrong("subject", "an object"));
    }
    let kind = req_str(subject, "kind", "subject.kind")?;
    if !SUBJECT_KINDS.contains(&kind) {
        return Err(invalid(
            "subject.kind",
            format!("must be one of {}", SUBJECT_KINDS.join(", ")),
        ));
    }
    let id = req_str(subject, "id", "subject.id")?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid("subject.id", "must be a UUID"))?;
    let role = req_str(data, "role", "role")?;
    if !ROLES.contains(&role) {
        return Err(invalid(
            "role",
            format!("must be one of {}", ROLES.join(", ")),
        ));
    }
    Ok(PhotoMeta {
        sha256: sha.to_ascii_lowercase(),
        bytes: Some(bytes),
        mime: Some(mime.to_owned()),
        subject_kind: kind.to_owned(),
        subject_id: id.to_string(),
        role: role.to_owned(),
    })
}

/// The metadata of a stored photo fact, read leniently (the service checked it on the way
/// in; facts stored before the checks existed are read as far as they go).
pub fn read_meta(data: &Value) -> Option<PhotoMeta> {
    let sha = data.get("sha256")?.as_str()?;
    if !is_sha256(sha) {
        return None;
    }
    let subject = data.get("subject");
    Some(PhotoMeta {
        sha256: sha.to_ascii_lowercase(),
        bytes: data.get("bytes").and_then(Value::as_u64),
        mime: data.get("mime").and_then(Value::as_str).map(str::to_owned),
        subject_kind: subject
            .and_then(|s| s.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        subject_id: subject
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        role: data
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("other")
            .to_owned(),
    })
}

/// The image type of the first bytes of a file, if it is one a photo may be.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        if [b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"]
            .iter()
            .any(|b| brand == *b)
        {
            return Some("image/heic");
        }
    }
    None
}

/// How many leading bytes [`sniff`] needs.
pub const SNIFF_LEN: usize = 12;

/// A `Range: bytes=…` header against a file of `len` bytes: `Ok(None)` for no usable range
/// (serve it all: absent, not `bytes`, or several ranges), `Ok(Some((start, end)))` inclusive,
/// `Err(())` when unsatisfiable (416).
#[allow(clippy::result_unit_err)]
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        return Ok(Some((len.saturating_sub(n), len - 1)));
    }
    let start: u64 = a.parse().map_err(|_| ())?;
    if start >= len {
        return Err(());
    }
    let end = if b.is_empty() {
        len - 1
    } else {
        let e: u64 = b.parse().map_err(|_| ())?;
        if e < start {
            return Err(());
        }
        e.min(len - 1)
    };
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "estate_id": "0190f0f0-0000-7000-8000-000000000001",
            "sha256": "AB".repeat(32),
            "bytes": 1000,
            "mime": "image/jpeg",
            "width": 4032, "height": 3024,
            "taken_at": "2026-11-22T01:30:00Z",
            "location": {"lat": 22.5, "lng": 114.0, "accuracy_m": 5},
            "subject": {"kind": "hazard_event", "id": "0190f0f0-0000-7000-8000-000000000002"},
            "role": "before"
        })
    }

    fn code(data: Value) -> RejectCode {
        validate_photo(&data, 20 * 1024 * 1024).unwrap_err().code
    }

    #[test]
    fn a_full_photo_is_read_and_its_hash_lower_cased() {
        let m = validate_photo(&good(), 20 * 1024 * 1024).unwrap();
        assert_eq!(m.sha256, "ab".repeat(32));
        assert_eq!(m.bytes, Some(1000));
        assert_eq!(m.subject_kind, "hazard_event");
        assert_eq!(m.role, "before");
    }

    #[test]
    fn shape_errors_have_their_codes() {
        for key in ["sha256", "bytes", "mime", "subject", "role"] {
            let mut d = good();
            d.as_object_mut().unwrap().remove(key);
            assert_eq!(code(d), RejectCode::MissingField, "{key}");
        }
        let cases: Vec<(&str, Value, RejectCode)> = vec![
            ("sha256", json!(7), RejectCode::WrongType),
            ("sha256", json!("abc"), RejectCode::InvalidValue),
            ("sha256", json!("g".repeat(64)), RejectCode::InvalidValue),
            ("bytes", json!("1"), RejectCode::WrongType),
            ("bytes", json!(0), RejectCode::InvalidValue),
            ("bytes", json!(-5), RejectCode::InvalidValue),
            (
                "bytes",
                json!(20 * 1024 * 1024 + 1),
                RejectCode::InvalidValue,
            ),
            ("mime", json!("image/gif"), RejectCode::InvalidValue),
            ("width", json!(0), RejectCode::InvalidValue),
            ("height", json!("x"), RejectCode::WrongType),
            ("taken_at", json!("yesterday"), RejectCode::InvalidValue),
            (
                "location",
                json!({"lat": 91, "lng": 0}),
                RejectCode::InvalidValue,
            ),
            ("location", json!({"lat": 1}), RejectCode::MissingField),
            ("location", json!([1, 2]), RejectCode::WrongType),
            ("subject", json!("x"), RejectCode::WrongType),
            (
                "subject",
                json!({"kind": "patrol", "id": "0190f0f0-0000-7000-8000-000000000002"}),
                RejectCode::InvalidValue,
            ),
            (
                "subject",
                json!({"kind": "scan", "id": "nope"}),
                RejectCode::InvalidValue,
            ),
            ("subject", json!({"kind": "scan"}), RejectCode::MissingField),
            ("role", json!("selfie"), RejectCode::InvalidValue),
        ];
        for (key, v, want) in cases {
            let mut d = good();
            d[key] = v.clone();
            assert_eq!(code(d), want, "{key} = {v}");
        }
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let mut d = good();
        for key in ["width", "height", "taken_at", "location"] {
            d.as_object_mut().unwrap().remove(key);
        }
        assert!(validate_photo(&d, 20 * 1024 * 1024).is_ok());
    }

    #[test]
    fn sniffing_knows_the_four_types_and_nothing_else() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0d"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("image/heic"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0"), Some("image/heic"));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), None);
        assert_eq!(sniff(b"GIF89a......"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn ranges_are_read_like_rfc_9110_says() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Ok(Some((0, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=x-"), 100), Err(()));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
    }
}
