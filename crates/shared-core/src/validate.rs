//! Reading one change of a push batch: the envelope and the common fields. Each change is read
//! on its own from raw JSON, so a bad change is rejected alone, with a stable code and the
//! path of the field at fault, and never blocks the good ones beside it.

use crate::fact::FactKind;
use crate::hlc::Hlc;
use crate::ids::{DeviceId, EstateId, FactId};
use crate::wire::{RejectCode, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `seq` must fit a JavaScript number exactly.
pub const MAX_SEQ: u64 = 1 << 53;
/// An age beyond a year is not a monotonic clock reading anyone should trust.
pub const MAX_AGE_MS: i64 = 366 * 24 * 3600 * 1000;

/// A change whose envelope and common fields are sound.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidChange {
    pub kind: FactKind,
    pub id: FactId,
    pub seq: u64,
    pub hlc: Hlc,
    pub recorded_at: Timestamp,
    pub age_ms: Option<i64>,
    pub estate_id: EstateId,
    pub data: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(Rejection::new(
            RejectCode::MissingField,
            format!("{name}: required"),
        )),
        Some(v) => Ok(v),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, name: &str, path: &str) -> Result<&'a str, Rejection> {
    field(obj, name)
        .map_err(|r| Rejection::new(r.code, format!("{path}: required")))?
        .as_str()
        .ok_or_else(|| Rejection::new(RejectCode::WrongType, format!("{path}: must be a string")))
}

/// Reads a change. `may_use_estate` says whether the caller may record facts in an estate.
pub fn validate_change(
    raw: &Value,
    may_use_estate: impl Fn(EstateId) -> bool,
) -> Result<ValidChange, Rejection> {
    let obj = raw
        .as_object()
        .ok_or_else(|| Rejection::new(RejectCode::NotAnObject, "a change must be a JSON object"))?;

    let kind_s = string(obj, "kind", "kind")?;
    let kind: FactKind = kind_s.parse().map_err(|_| {
        Rejection::new(
            RejectCode::UnknownKind,
            format!("kind: unknown kind {kind_s:?}; known kinds are scan, hazard_event, photo, run_event"),
        )
    })?;

    let id_s = string(obj, "id", "id")?;
    let id = uuid::Uuid::parse_str(id_s)
        .ok()
        .filter(|u| u.get_version_num() == 7)
        .map(FactId)
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::InvalidId,
                format!("id: {id_s:?} is not a UUIDv7"),
            )
        })?;

    let seq_v = field(obj, "seq")?;
    let seq = match seq_v.as_u64() {
        Some(n) if (1..=MAX_SEQ).contains(&n) => n,
        _ if seq_v.is_number() => {
            return Err(Rejection::new(
                RejectCode::InvalidSeq,
                "seq: must be a whole number from 1 to 2^53",
            ))
        }
        _ => {
            return Err(Rejection::new(
                RejectCode::WrongType,
                "seq: must be a number",
            ))
        }
    };

    let hlc_s = string(obj, "hlc", "hlc")?;
    let hlc: Hlc = hlc_s.parse().map_err(|e: crate::hlc::HlcParseError| {
        Rejection::new(RejectCode::InvalidHlc, format!("hlc: {e}"))
    })?;

    let rec_s = string(obj, "recorded_at", "recorded_at")?;
    let recorded_at = Timestamp::parse(rec_s).ok_or_else(|| {
        Rejection::new(
            RejectCode::InvalidTimestamp,
            format!("recorded_at: {rec_s:?} is not an RFC 3339 timestamp"),
        )
    })?;

    let age_ms = match obj.get("age_ms") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if (0..=MAX_AGE_MS).contains(&n) => Some(n),
            Some(_) => {
                return Err(Rejection::new(
                    RejectCode::InvalidAge,
                    "age_ms: must be from 0 to a year in milliseconds",
                ))
            }
            None => {
                return Err(Rejection::new(
                    RejectCode::WrongType,
                    "age_ms: must be a whole number",
                ))
            }
        },
    };

    let data = field(obj, "data")?;
    let data_obj = data
        .as_object()
        .ok_or_else(|| Rejection::new(RejectCode::WrongType, "data: must be an object"))?;
    let estate_s = string(data_obj, "estate_id", "data.estate_id")?;
    let estate_id = uuid::Uuid::parse_str(estate_s)
        .ok()
        .map(EstateId)
        .filter(|e| may_use_estate(*e))
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::UnknownEstate,
                format!("data.estate_id: {estate_s:?} is not an estate you belong to"),
            )
        })?;

    if let Some(path) = find_nul(data, "data") {
        return Err(Rejection::new(
            RejectCode::InvalidText,
            format!("{path}: text must not contain NUL characters"),
        ));
    }

    Ok(ValidChange {
        kind,
        id,
        seq,
        hlc,
        recorded_at,
        age_ms,
        estate_id,
        data: data.clone(),
    })
}

/// The path of the first string (key or value) holding a NUL character, if any.
fn find_nul(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_nul(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = format!("{path}.{}", k.replace('\0', "\\u0000"));
            if k.contains('\0') {
                Some(p)
            } else {
                find_nul(x, &p)
            }
        }),
        _ => None,
    }
}

/// Text safe for any backend: NUL characters written as `\u0000`.
pub fn storable_text(s: &str) -> String {
    s.replace('\0', "\\u0000")
}

/// The change's `id` as sent, if it is a string: used to answer and quarantine changes
/// that failed validation.
pub fn raw_id(raw: &Value) -> Option<String> {
    raw.get("id").and_then(Value::as_str).map(storable_text)
}

/// The content that makes two sends of the same fact "the same". `age_ms` is left out on
/// purpose: it is the fact's age at send time, so an honest re-send carries a larger one.
pub fn content_hash(device_id: DeviceId, c: &ValidChange) -> String {
    // serde_json's maps are sorted by key, so this serialisation is canonical.
    let canonical = serde_json::json!([
        device_id.to_string(),
        c.kind.as_str(),
        c.id.to_string(),
        c.seq,
        c.hlc.to_string(),
        c.recorded_at.0,
        c.data,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ESTATE: &str = "0193a1b2-0000-7000-8000-000000000001";

    fn good() -> Value {
        json!({
            "kind": "scan",
            "id": "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
            "seq": 1041,
            "hlc": "1732240200123-0000",
            "recorded_at": "2026-11-22T01:30:00.000Z",
            "age_ms": 5400000,
            "data": { "estate_id": ESTATE, "tag": "04:A2:19:7C", "method": "nfc" }
        })
    }

    fn mine(e: EstateId) -> bool {
        e.to_string() == ESTATE
    }

    fn with(path: &[&str], v: Value) -> Value {
        let mut c = good();
        let mut cur = &mut c;
        for p in &path[..path.len() - 1] {
            cur = cur.get_mut(*p).unwrap();
        }
        let last = path[path.len() - 1];
        if v.is_null() {
            cur.as_object_mut().unwrap().remove(last);
        } else {
            cur[last] = v;
        }
        c
    }

    fn code(v: Value) -> RejectCode {
        validate_change(&v, mine).unwrap_err().code
    }

    #[test]
    fn a_good_change_is_read() {
        let c = validate_change(&good(), mine).unwrap();
        assert_eq!(c.kind, FactKind::Scan);
        assert_eq!(c.seq, 1041);
        assert_eq!(c.age_ms, Some(5_400_000));
        assert_eq!(c.estate_id.to_string(), ESTATE);
    }

    #[test]
    fn each_bad_field_has_its_own_code() {
        assert_eq!(code(json!([1])), RejectCode::NotAnObject);
        assert_eq!(
            code(with(&["kind"], json!("teleport"))),
            RejectCode::UnknownKind
        );
        assert_eq!(code(with(&["kind"], json!(3))), RejectCode::WrongType);
        assert_eq!(code(with(&["kind"], Value::Null)), RejectCode::MissingField);
        assert_eq!(code(with(&["id"], json!("nope"))), RejectCode::InvalidId);
        // A valid UUID of another version is still not a UUIDv7.
        assert_eq!(
            code(with(&["id"], json!("6ba7b810-9dad-41d1-80b4-00c04fd430c8"))),
            RejectCode::InvalidId
        );
        assert_eq!(code(with(&["seq"], json!(0))), RejectCode::InvalidSeq);
        assert_eq!(code(with(&["seq"], json!(-4))), RejectCode::InvalidSeq);
        assert_eq!(code(with(&["seq"], json!(1.5))), RejectCode::InvalidSeq);
        assert_eq!(code(with(&["seq"], json!("7"))), RejectCode::WrongType);
        assert_eq!(code(with(&["seq"], Value::Null)), RejectCode::MissingField);
        assert_eq!(
            code(with(&["hlc"], json!("yesterday"))),
            RejectCode::InvalidHlc
        );
        assert_eq!(
            code(with(&["recorded_at"], json!("22/11/2026"))),
            RejectCode::InvalidTimestamp
        );
        assert_eq!(code(with(&["age_ms"], json!(-1))), RejectCode::InvalidAge);
        assert_eq!(code(with(&["age_ms"], json!("1"))), RejectCode::WrongType);
        assert_eq!(code(with(&["data"], json!("x"))), RejectCode::WrongType);
        assert_eq!(
            code(with(&["data", "estate_id"], Value::Null)),
            RejectCode::MissingField
        );
        assert_eq!(
            code(with(
                &["data", "estate_id"],
                json!("0193a1b2-0000-7000-8000-000000000999")
            )),
            RejectCode::UnknownEstate
        );
    }

    #[test]
    fn age_is_optional() {
        let c = validate_change(&with(&["age_ms"], Value::Null), mine).unwrap();
        assert_eq!(c.age_ms, None);
    }

    #[test]
    fn content_hash_ignores_age_and_key_order_but_not_content() {
        let dev = DeviceId(uuid::Uuid::from_u128(9));
        let a = validate_change(&good(), mine).unwrap();
        let older = validate_change(&with(&["age_ms"], json!(9_000_000)), mine).unwrap();
        assert_eq!(content_hash(dev, &a), content_hash(dev, &older));
        let reordered: Value = serde_json::from_str(
            r#"{"data":{"method":"nfc","tag":"04:A2:19:7C","estate_id":"0193a1b2-0000-7000-8000-000000000001"},
                "age_ms":5400000,"recorded_at":"2026-11-22T09:30:00.000+08:00","hlc":"1732240200123-0000",
                "seq":1041,"id":"0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","kind":"scan"}"#,
        )
        .unwrap();
        let b = validate_change(&reordered, mine).unwrap();
        assert_eq!(content_hash(dev, &a), content_hash(dev, &b));
        let changed = validate_change(&with(&["data", "tag"], json!("04:A2:19:7D")), mine).unwrap();
        assert_ne!(content_hash(dev, &a), content_hash(dev, &changed));
        assert_ne!(
            content_hash(dev, &a),
            content_hash(DeviceId(uuid::Uuid::from_u128(8)), &a)
        );
    }
}
