//! Patrol coverage between the handlers and the store: load what a period needs, evaluate it
//! with shared-core's pure functions, and raise missed-visit alerts.
//!
//! Nothing derived is stored: slots, their results, runs and flags are computed from the raw
//! scans, run events, excuses and the reference data as they stand, so a rule change or an
//! excuse recomputes the past, and a scan pushed days late counts where it belongs.

use crate::storage::{ChangeHub, DynStore, NewAlert, StoreResult};
use serde_json::json;
use shared_core::patrol::coverage::{self, CoverageReport, GroupBy, Heatmap};
use shared_core::patrol::{
    flags, runs, slots, EvalInput, Evaluation, Excuse, ReferenceSet, Run, ScanFlag, ScanObs,
    SlotResult, SlotStatus,
};
use shared_core::{AlertId, EstateId};

/// Longest period one coverage or slots call may cover.
pub const MAX_PERIOD_MS: i64 = 92 * 86_400_000;

/// Everything one evaluation reads, owned.
pub struct PeriodData {
    pub reference: ReferenceSet,
    pub tz: chrono_tz::Tz,
    pub from: i64,
    pub to: i64,
    pub now: i64,
    pub scans: Vec<ScanObs>,
    pub flags: Vec<Vec<ScanFlag>>,
    pub excuses: Vec<Excuse>,
    pub runs: Vec<Run>,
}

/// The estate's time zone, parsed (UTC if the stored name is not one chrono-tz knows).
pub fn zone_of(reference: &ReferenceSet) -> chrono_tz::Tz {
    reference.timezone.parse().unwrap_or(chrono_tz::UTC)
}

impl PeriodData {
    /// Loads the reference data, the scans around `[from, to)`, their flags, excuses and,
    /// with `counts` (when a count rule needs them), the runs.
    pub async fn load(
        store: &DynStore,
        estate: EstateId,
        from: i64,
        to: i64,
        now: i64,
        counts: bool,
    ) -> StoreResult<PeriodData> {
        let reference = store.reference(estate).await?;
        Self::load_with(store, reference, from, to, now, counts).await
    }

    /// As [`PeriodData::load`] with the reference data already read. Without `counts` the
    /// count rules' windows come out with no completed runs: only the coverage report shows
    /// them, and the heat map, slots and sweep need not read a day and a half more of scans.
    pub async fn load_with(
        store: &DynStore,
        reference: ReferenceSet,
        from: i64,
        to: i64,
        now: i64,
        counts: bool,
    ) -> StoreResult<PeriodData> {
        let estate = reference.estate_id;
        let tz = zone_of(&reference);
        let (mut scan_from, mut scan_to) = slots::scan_range(&reference, from, to);
        let runs_range = slots::runs_range(&reference, from, to).filter(|_| counts);
        if let Some((lo, hi)) = runs_range {
            scan_from = scan_from.min(lo);
            scan_to = scan_to.max(hi);
        }
        let scans = store.scans_between(estate, scan_from, scan_to).await?;
        let flags = flags::flag_scans(&scans, &reference);
        let excuses = store.excuses_between(estate, from, to).await?;
        let runs = match runs_range {
            Some((lo, hi)) => {
                let events = store.run_events_between(estate, lo, hi).await?;
                runs::fold_runs(&events, &scans, &reference)
            }
            None => Vec::new(),
        };
        Ok(PeriodData {
            reference,
            tz,
            from,
            to,
            now,
            scans,
            flags,
            excuses,
            runs,
        })
    }

    pub fn input(&self) -> EvalInput<'_> {
        EvalInput {
            reference: &self.reference,
            from: self.from,
            to: self.to,
            now: self.now,
            scans: &self.scans,
            flags: &self.flags,
            excuses: &self.excuses,
            runs: &self.runs,
        }
    }

    pub fn evaluate(&self) -> Evaluation {
        slots::evaluate(&self.input())
    }

    pub fn report(&self, group_by: Option<GroupBy>) -> CoverageReport {
        let eval = self.evaluate();
        coverage::report(&eval, &self.input(), group_by)
    }

    pub fn heatmap(&self, date: chrono::NaiveDate) -> Heatmap {
        let eval = self.evaluate();
        coverage::heatmap(&eval, &self.reference, date, self.tz)
    }
}

/// The alert a missed slot raises: one per rule, checkpoint and slot start, whatever the
/// number of sweeps or server instances.
pub fn missed_alert(reference: &ReferenceSet, slot: &SlotResult, now: i64) -> NewAlert {
    let s = &slot.spec;
    let checkpoint = reference
        .checkpoints
        .iter()
        .find(|c| c.id == s.checkpoint_id);
    let rule = reference.rules.iter().find(|r| r.id == s.rule_id);
    NewAlert {
        id: AlertId::new_v7(),
        estate_id: reference.estate_id,
        kind: "missed_visit".into(),
        subject_id: s.checkpoint_id.to_string(),
        dedupe_key: format!("missed_visit:{}:{}:{}", s.rule_id, s.checkpoint_id, s.start),
        target: "supervisor".into(),
        recipient_id: None,
        raised_at: now,
        data: json!({
            "rule_id": s.rule_id,
            "rule_name": rule.map(|r| r.name.as_str()),
            "checkpoint_id": s.checkpoint_id,
            "checkpoint_code": checkpoint.map(|c| c.code.as_str()),
            "checkpoint_name": checkpoint.map(|c| c.name.as_str()),
            "zone_id": checkpoint.and_then(|c| c.zone_id),
            "slot_start": shared_core::wire::Timestamp(s.start),
            "slot_end": shared_core::wire::Timestamp(s.end),
            "grace_end": shared_core::wire::Timestamp(s.end + s.grace_ms),
        }),
    }
}

/// Finalises the slots of every estate with rules over the last `lookback_ms`: each slot
/// whose grace has passed without a visit raises a `missed_visit` alert (once). Returns how
/// many alerts were new.
pub async fn sweep_missed(
    store: &DynStore,
    hub: &ChangeHub,
    now: i64,
    lookback_ms: i64,
) -> StoreResult<usize> {
    let mut raised = 0;
    for estate in store.patrol_estates().await? {
        let data = PeriodData::load(store, estate, now - lookback_ms, now, now, false).await?;
        let eval = data.evaluate();
        let alerts: Vec<NewAlert> = eval
            .slots
            .iter()
            .filter(|s| s.status == SlotStatus::Missed)
            .map(|s| missed_alert(&data.reference, s, now))
            .collect();
        if alerts.is_empty() {
            continue;
        }
        let touched = store.raise_alerts(&alerts).await?;
        if !touched.is_empty() {
            hub.notify(&touched);
            raised += alerts.len();
            tracing::info!(estate = %estate, "raised missed-visit alerts");
        }
    }
    Ok(raised)
}
