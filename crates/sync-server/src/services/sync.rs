//! Push: reads each change of a batch on its own, annotates it (trusted time, HLC clamping,
//! flags) and hands the batch to the store as one transaction.

use crate::auth::Caller;
use crate::clock::ServerClock;
use crate::storage::{PreparedBatch, PreparedFact, PreparedRejection};
use shared_core::time::{batch_offset_ms, trusted_time, TimeEvidence};
use shared_core::validate::{content_hash, raw_id, validate_change};
use shared_core::wire::{FactRecord, PushRequest};
use shared_core::Flag;

/// Turns a readable batch into what the store writes. Never fails: a bad change becomes a
/// rejection beside the good ones.
pub fn prepare_batch(
    caller: &Caller,
    req: PushRequest,
    received_at: i64,
    clock: &ServerClock,
    max_drift_ms: u64,
) -> PreparedBatch {
    let offset = batch_offset_ms(received_at, req.sent_at.0);
    let mut facts = Vec::new();
    let mut rejections = Vec::new();
    let mut raw_by_index = Vec::with_capacity(req.changes.len());
    let len = req.changes.len();
    for (index, raw) in req.changes.into_iter().enumerate() {
        match validate_change(&raw, |e| caller.may_push_to(e)) {
            Ok(c) => {
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
