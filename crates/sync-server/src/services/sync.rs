//! Push: reads each change of a batch on its own, annotates it (trusted time, HLC clamping,
//! flags) and hands the batch to the store as one transaction.

use crate::auth::Caller;
use crate::clock::ServerClock;
use crate::storage::{
    DynStore, HazardAttach, PatrolAttach, PreparedBatch, PreparedFact, PreparedRejection,
    StoreResult,
};
use serde_json::Value;
use shared_core::hazard::{parse_event, EventBody, PhotoRole};
use shared_core::patrol::scan::{parse_run_event, parse_scan};
use shared_core::time::{batch_offset_ms, trusted_time, TimeEvidence};
use shared_core::validate::{content_hash, raw_id, validate_change};
use shared_core::validate::{Rejection, ValidChange};
use shared_core::wire::RejectCode;
use shared_core::wire::{FactRecord, PushRequest};
use shared_core::Flag;
use shared_core::{EstateId, FactId, FactKind, Role, UserId};
use std::collections::HashSet;
use std::str::FromStr;

/// Turns a readable batch into what the store writes. Never fails: a bad change becomes a
/// rejection beside the good ones.
pub fn prepare_batch(
    caller: &Caller,
    req: PushRequest,
    received_at: i64,
    clock: &ServerClock,
    max_drift_ms: u64,
    engineers: &HashSet<(EstateId, UserId)>,
    max_photo_bytes: u64,
) -> PreparedBatch {
    let offset = batch_offset_ms(received_at, req.sent_at.0);
    let mut facts = Vec::new();
    let mut rejections = Vec::new();
    let mut raw_by_index = Vec::with_capacity(req.changes.len());
    let len = req.changes.len();
    for (index, raw) in req.changes.into_iter().enumerate() {
        let read = validate_change(&raw, |e| caller.may_push_to(e))
            .and_then(|c| {
                if c.kind == FactKind::Photo {
                    crate::services::photos::validate_photo(&c.data, max_photo_bytes)?;
                }
                Ok(c)
            })
            .and_then(|c| hazard_meaning(caller, &c, engineers).map(|h| (c, h)))
            .and_then(|(c, h)| patrol_meaning(&c).map(|p| (c, h, p)));
        match read {
            Ok((c, hazard, patrol)) => {
                let t = trusted_time(TimeEvidence {
                    received_at,
                    sent_at: req.sent_at.0,
                    recorded_at: c.recorded_at.0,
                    age_ms: c.age_ms,
                });
                let observed = clock.observe(c.hlc, received_at, max_drift_ms);
                let mut flags = Vec::new();
                if observed.clamped {
                    flags.push(Flag::ClockAhead);
                }
                if t.clock_skew {
                    flags.push(Flag::ClockSkew);
                }
                flags.sort();
                let hash = content_hash(req.device_id, &c);
                facts.push(PreparedFact {
                    index,
                    record: FactRecord {
                        id: c.id,
                        kind: c.kind,
                        estate_id: c.estate_id,
                        device_id: req.device_id,
                        user_id: caller.user_id,
                        batch_id: req.batch_id,
                        seq: c.seq,
                        hlc: observed.effective,
                        hlc_sent: observed.clamped.then_some(c.hlc),
                        recorded_at: c.recorded_at,
                        age_ms: c.age_ms,
                        sent_at: req.sent_at,
                        received_at: shared_core::wire::Timestamp(received_at),
                        trusted_at: shared_core::wire::Timestamp(t.trusted_at),
                        clock_trust: t.clock_trust,
                        flags,
                        data: c.data,
                    },
                    content_hash: hash,
                    hazard,
                    patrol,
                });
                raw_by_index.push(Some(raw));
            }
            Err(rej) => {
                rejections.push(PreparedRejection {
                    index,
                    change_id: raw_id(&raw),
                    seq: raw
                        .get("seq")
                        .and_then(|s| s.as_u64())
                        .filter(|s| (1..=shared_core::validate::MAX_SEQ).contains(s)),
                    code: rej.code,
                    message: rej.message,
                    raw,
                });
                raw_by_index.push(None);
            }
        }
    }
    PreparedBatch {
        device_id: req.device_id,
        user_id: caller.user_id,
        batch_id: req.batch_id,
        received_at,
        clock_offset_ms: offset,
        len,
        facts,
        rejections,
        raw_by_index,
    }
}

/// What a scan or run event means for patrol coverage. A scan's or run event's shape is
/// checked here (a scan without a tag is refused); its anomalies are flagged later, never
/// refused.
pub fn patrol_meaning(c: &ValidChange) -> Result<Option<PatrolAttach>, Rejection> {
    match c.kind {
        FactKind::Scan => Ok(Some(PatrolAttach::Scan(parse_scan(&c.data)?))),
        FactKind::RunEvent => Ok(Some(PatrolAttach::RunEvent(parse_run_event(&c.data)?))),
        _ => Ok(None),
    }
}

/// What a valid change means for a hazard ticket: a `hazard_event`'s parsed body (or why it
/// cannot be read), a photo's link to the event it documents. Refusals here are of the
/// event's shape; the fold judges it at its place later.
pub fn hazard_meaning(
    caller: &Caller,
    c: &ValidChange,
    engineers: &HashSet<(EstateId, UserId)>,
) -> Result<Option<HazardAttach>, Rejection> {
    match c.kind {
        FactKind::HazardEvent => {
            let parsed = parse_event(&c.data)?;
            if let EventBody::Assign { assignee, .. } = &parsed.body {
                if !engineers.contains(&(c.estate_id, *assignee)) {
                    return Err(Rejection::new(
                        RejectCode::UnknownAssignee,
                        format!("data.assignee: {assignee} is not an engineer of this estate"),
                    ));
                }
            }
            let roles: Vec<Role> = caller
                .scope
                .roles
                .get(&c.estate_id)
                .map(|r| r.iter().copied().collect())
                .unwrap_or_default();
            Ok(Some(HazardAttach::Event {
                parsed: Box::new(parsed),
                roles,
            }))
        }
        FactKind::Photo => Ok(photo_link(&c.data)),
        _ => Ok(None),
    }
}

/// A photo's `subject` when it is a hazard event: `{kind: "hazard_event", id}` with a
/// `role` and a `sha256`. Anything else is not evidence (and not refused here).
fn photo_link(data: &Value) -> Option<HazardAttach> {
    let subject = data.get("subject")?;
    if subject.get("kind")?.as_str()? != "hazard_event" {
        return None;
    }
    let event_id = FactId::from_str(subject.get("id")?.as_str()?).ok()?;
    let role = data
        .get("role")
        .and_then(Value::as_str)
        .and_then(|r| PhotoRole::from_str(r).ok())
        .unwrap_or(PhotoRole::Other);
    let sha256 = data.get("sha256")?.as_str()?.to_ascii_lowercase();
    Some(HazardAttach::Photo {
        event_id,
        role,
        sha256,
    })
}

/// The (estate, assignee) pairs of `assign` events in a batch that name an engineer of the
/// estate: one lookup per distinct pair, before the batch is read.
pub async fn engineers_named(
    store: &DynStore,
    changes: &[Value],
) -> StoreResult<HashSet<(EstateId, UserId)>> {
    let mut pairs: HashSet<(EstateId, UserId)> = HashSet::new();
    for c in changes {
        let d = match c.get("data") {
            Some(d) if c.get("kind").and_then(Value::as_str) == Some("hazard_event") => d,
            _ => continue,
        };
        if d.get("action").and_then(Value::as_str) != Some("assign") {
            continue;
        }
        let estate = d
            .get("estate_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let user = d
            .get("assignee")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        if let (Some(e), Some(u)) = (estate, user) {
            pairs.insert((e, u));
        }
    }
    let mut out = HashSet::new();
    for (e, u) in pairs {
        if store.has_role(u, e, Role::Engineer).await? {
            out.insert((e, u));
        }
    }
    Ok(out)
}
