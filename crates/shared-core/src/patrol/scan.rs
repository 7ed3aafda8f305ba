//! The shape of `scan` and `run_event` facts.

use super::*;
use crate::validate::Rejection;
use serde_json::Value;

/// Reads a scan's `data`: `tag` (string, 1..=512 chars), `method` (`nfc` | `qr`),
/// optional `run_id` (UUID), optional `location` `{lat, lng, accuracy_m?, mock?}`.
pub fn parse_scan(data: &Value) -> Result<ScanData, Rejection> {
    let _ = data;
    todo!()
}

/// Reads a run event's `data`: `run_id`, `action` (`start` | `finish` | `abort`),
/// `route_id` (required on start), `reason` (required on abort).
pub fn parse_run_event(data: &Value) -> Result<RunEventData, Rejection> {
    let _ = data;
    todo!()
}
