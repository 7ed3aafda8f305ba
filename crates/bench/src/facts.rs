//! The scan facts the benchmark sends, and the rows the raw baseline writes: one shape for
//! both, so the two phases store comparable rows.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// How old each fact is when it is sent (`age_ms`, and `recorded_at` that far back).
pub const AGE_MS: i64 = 5_000;

/// Feed positions of the raw baseline's SQLite rows start here, far above the server's.
pub const RAW_FEED_SEQ_BASE: i64 = 1_000_000_000_000;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// `"<13-digit ms>-<4 hex>"`.
pub fn hlc(ms: i64, counter: u16) -> String {
    format!("{ms:013}-{counter:04x}")
}

/// An NFC tag id that differs from fact to fact, like `04:00:01:2C`.
pub fn tag(seq: u64) -> String {
    format!(
        "04:{:02X}:{:02X}:{:02X}",
        (seq >> 16) & 0xff,
        (seq >> 8) & 0xff,
        seq & 0xff
    )
}

/// The `data` of a scan.
pub fn scan_data(estate_id: &str, seq: u64) -> Value {
    json!({ "estate_id": estate_id, "tag": tag(seq), "method": "nfc" })
}

/// One `scan` change as a handset sends it, recorded `AGE_MS` before `now`.
pub fn scan_change(seq: u64, estate_id: &str, now: i64) -> Value {
    let recorded = now - AGE_MS;
    json!({
        "kind": "scan",
        "id": Uuid::now_v7().to_string(),
        "seq": seq,
        "hlc": hlc(recorded, (seq & 0xffff) as u16),
        "recorded_at": rfc3339(recorded),
        "age_ms": AGE_MS,
        "data": scan_data(estate_id, seq),
    })
}

/// The body of `POST /v1/sync/push` for facts `first_seq..first_seq + n`.
pub fn push_body(
    device_id: Uuid,
    batch_id: Uuid,
    estate_id: &str,
    first_seq: u64,
    n: u64,
) -> Vec<u8> {
    let now = now_ms();
    let changes: Vec<Value> = (first_seq..first_seq + n)
        .map(|seq| scan_change(seq, estate_id, now))
        .collect();
    serde_json::to_vec(&json!({
        "device_id": device_id.to_string(),
        "batch_id": batch_id.to_string(),
        "sent_at": rfc3339(now),
        "changes": changes,
    }))
    .expect("a JSON value always serialises")
}

/// A `facts` row as the server would store a scan (content hash and time annotations
/// included), for the raw baseline. New ids; the same estate and user as the ingest phase.
#[derive(Clone, Debug)]
pub struct RawRow {
    pub id: Uuid,
    pub estate_id: Uuid,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub batch_id: Uuid,
    pub seq: i64,
    pub hlc: String,
    pub recorded_at: i64,
    pub age_ms: i64,
    pub sent_at: i64,
    pub received_at: i64,
    pub trusted_at: i64,
    pub data: Value,
    /// 64 hex digits, like a SHA-256.
    pub content_hash: String,
}

impl RawRow {
    pub fn new(
        estate_id: Uuid,
        user_id: Uuid,
        device_id: Uuid,
        batch_id: Uuid,
        seq: u64,
        now: i64,
    ) -> Self {
        let recorded = now - AGE_MS;
        let id = Uuid::now_v7();
        RawRow {
            id,
            estate_id,
            device_id,
            user_id,
            batch_id,
            seq: seq as i64,
            hlc: hlc(recorded, (seq & 0xffff) as u16),
            recorded_at: recorded,
            age_ms: AGE_MS,
            sent_at: now,
            received_at: now,
            trusted_at: recorded,
            data: scan_data(&estate_id.to_string(), seq),
            content_hash: format!("{}{}", id.simple(), Uuid::new_v4().simple()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_has_thirteen_digits_and_four_hex() {
        assert_eq!(hlc(1_732_240_200_123, 0x2a), "1732240200123-002a");
        assert_eq!(hlc(5, 0xffff), "0000000000005-ffff");
    }

    #[test]
    fn a_scan_change_has_the_wire_shape_and_about_200_bytes() {
        let estate = "0193a1b2-0000-7000-8000-000000000001";
        let c = scan_change(41, estate, 1_732_240_200_123);
        assert_eq!(c["kind"], "scan");
        assert_eq!(c["seq"], 41);
        assert_eq!(c["age_ms"], AGE_MS);
        assert_eq!(c["data"]["estate_id"], estate);
        assert_eq!(c["data"]["method"], "nfc");
        assert_eq!(c["recorded_at"], "2024-11-22T01:49:55.123Z");
        let id = Uuid::parse_str(c["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let len = serde_json::to_vec(&c).unwrap().len();
        assert!((180..=300).contains(&len), "{len} bytes");
    }

    #[test]
    fn a_push_body_numbers_its_changes_from_first_seq() {
        let body = push_body(Uuid::now_v7(), Uuid::now_v7(), "e", 101, 3);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let seqs: Vec<u64> = v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [101, 102, 103]);
        assert!(v["sent_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn raw_rows_have_fresh_ids_and_a_64_hex_hash() {
        let (e, u, d, b) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let a = RawRow::new(e, u, d, b, 1, 1_000_000);
        let c = RawRow::new(e, u, d, b, 2, 1_000_000);
        assert_ne!(a.id, c.id);
        assert_eq!(a.content_hash.len(), 64);
        assert!(a.content_hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.data["estate_id"], e.to_string());
    }
}
