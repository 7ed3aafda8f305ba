//! Rules expanded into visit slots, and each slot's result from the scans.
//!
//! An interval rule's window is anchored on every local date of the estate's zone: a local
//! time that does not exist (spring forward) is the first instant after the gap, an
//! ambiguous one (fall back) the earlier instant. The window is cut into slots of
//! `every_minutes` of real elapsed time from its start (the last one ends at the window's
//! end), so a DST night has one hourly slot fewer or more.
//!
//! Matching, per rule and checkpoint, by trusted time, each scan settling at most one slot
//! of the rule:
//! 1. `on_time`: the earliest scan in `[start, end)`;
//! 2. `late`: otherwise the earliest unused scan in `[end, end + grace)`, taken from the
//!    next slot only when that slot keeps another scan of its own (so it stays on time);
//! 3. `early`: otherwise the latest unused scan in `[start − grace, start)`;
//! 4. `missed` once `end + grace` has passed (`pending` before);
//! 5. `excused` when a supervisor excused the slot, whatever the scans.
//!
//! A slot's result depends only on the scans within about two slots of it, and the
//! evaluation of a period expands the slots around it too, so evaluating any period that
//! contains a slot gives that slot the same result.

use super::*;
use crate::wire::Timestamp;
use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use std::collections::HashMap;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// How far past a count-rule window's end a run's scans and events are read (a run started
/// at the end of the window may finish later).
pub const RUN_TAIL_MS: i64 = 12 * HOUR_MS;

/// The UTC instant of a local date and time in `tz`: the earlier instant when ambiguous, the
/// first instant after the gap when it does not exist.
pub fn local_instant(tz: chrono_tz::Tz, date: NaiveDate, minutes: u32) -> i64 {
    let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN);
    let mut naive = NaiveDateTime::new(date, time);
    // Gaps are at most a few hours and on whole minutes in every real zone.
    for _ in 0..=(26 * 60) {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.timestamp_millis(),
            LocalResult::Ambiguous(a, _) => return a.timestamp_millis(),
            LocalResult::None => naive += Duration::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to reading the time as UTC.
    NaiveDateTime::new(date, time).and_utc().timestamp_millis()
}

/// The local date of an instant in `tz`.
pub fn local_date(tz: chrono_tz::Tz, at: i64) -> NaiveDate {
    match tz.timestamp_millis_opt(at) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.date_naive(),
        LocalResult::None => chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.date_naive())
            .unwrap_or_default(),
    }
}

/// The instances `[start, end)` of a window that overlap `[from, to)`, in time order.
pub fn window_instances(window: Window, tz: chrono_tz::Tz, from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    // A window instance lasts at most a day (25 h on a DST change), so it starts at most a
    // day before `from`.
    let mut date = local_date(tz, from - DAY_MS - HOUR_MS);
    let last = local_date(tz, to + HOUR_MS);
    while date <= last {
        let start = local_instant(tz, date, window.start.minutes());
        let end_date = if window.wraps_midnight() {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        let end = local_instant(tz, end_date, window.end.minutes());
        if end > start && end > from && start < to {
            out.push((start, end));
        }
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    out
}

/// The checkpoints an interval rule covers, in reference order.
pub fn targets<'a>(
    target: &'a RuleTarget,
    reference: &'a ReferenceSet,
) -> impl Iterator<Item = &'a Checkpoint> + 'a {
    reference.checkpoints.iter().filter(move |c| match target {
        RuleTarget::Class(class) => c.class == *class,
        RuleTarget::Zone(z) => c.zone_id == Some(*z),
        RuleTarget::Checkpoints(ids) => ids.contains(&c.id),
    })
}

/// The largest `every + grace` of the interval rules, in ms (0 without any).
fn max_span_ms(reference: &ReferenceSet) -> i64 {
    reference
        .rules
        .iter()
        .filter_map(|r| match &r.kind {
            RuleKind::Interval { every_minutes, .. } => {
                Some(*every_minutes as i64 * 60_000 + r.grace_ms())
            }
            RuleKind::Count { .. } => None,
        })
        .max()
        .unwrap_or(0)
}

/// The slots an evaluation of `[from, to)` matches: the period's and two slots' worth on
/// each side, so the period's results are the same whatever period is asked.
fn match_range(reference: &ReferenceSet, from: i64, to: i64) -> (i64, i64) {
    let m = max_span_ms(reference);
    (from - 2 * m, to + 2 * m)
}

/// The trusted-time range of scans the slots of `[from, to)` need.
pub fn scan_range(reference: &ReferenceSet, from: i64, to: i64) -> (i64, i64) {
    let m = max_span_ms(reference);
    let (lo, hi) = match_range(reference, from, to);
    (lo - m, hi + m)
}

/// The trusted-time range of run events (and the scans naming their runs) the count rules'
/// windows starting in `[from, to)` need; `None` without count rules.
pub fn runs_range(reference: &ReferenceSet, from: i64, to: i64) -> Option<(i64, i64)> {
    let counts = reference
        .rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::Count { .. }));
    // A window starting before `to` ends within a day (25 h on a DST change); its runs are
    // read to RUN_TAIL_MS after that.
    counts.then_some((from, to + DAY_MS + HOUR_MS + RUN_TAIL_MS))
}

/// The slot boundaries of one interval rule in `[from, to)` (slots starting there).
fn rule_slots(
    rule: &Rule,
    every_minutes: u32,
    tz: chrono_tz::Tz,
    from: i64,
    to: i64,
) -> Vec<(i64, i64)> {
    let every = every_minutes.max(1) as i64 * 60_000;
    let mut out = Vec::new();
    for (ws, we) in window_instances(rule.window, tz, from, to) {
        let mut t = ws;
        while t < we {
            let end = (t + every).min(we);
            if t >= from && t < to {
                out.push((t, end));
            }
            t = end;
        }
    }
    out
}

/// Every slot of the interval rules starting in `[from, to)`, ordered by start, rule,
/// checkpoint.
pub fn expand_slots(
    reference: &ReferenceSet,
    tz: chrono_tz::Tz,
    from: i64,
    to: i64,
) -> Vec<SlotSpec> {
    let mut out = Vec::new();
    for rule in &reference.rules {
        let RuleKind::Interval {
            target,
            every_minutes,
            ..
        } = &rule.kind
        else {
            continue;
        };
        let grace_ms = rule.grace_ms();
        let bounds = rule_slots(rule, *every_minutes, tz, from, to);
        for cp in targets(target, reference) {
            out.extend(bounds.iter().map(|&(start, end)| SlotSpec {
                rule_id: rule.id,
                checkpoint_id: cp.id,
                start,
                end,
                grace_ms,
            }));
        }
    }
    out.sort_by(|a, b| {
        (a.start, a.rule_id, a.checkpoint_id).cmp(&(b.start, b.rule_id, b.checkpoint_id))
    });
    out
}

/// The order scans are matched in: trusted time, then seq, device and id (so equal times
/// are still decided the same way whatever order the store returned them in).
fn scan_key(s: &ScanObs) -> (i64, u64, DeviceId, FactId) {
    (s.trusted_at, s.seq, s.device_id, s.id)
}

/// Scans of each checkpoint, as indices into `scans`, in [`scan_key`] order.
pub(crate) fn scans_by_checkpoint(scans: &[ScanObs]) -> HashMap<CheckpointId, Vec<usize>> {
    let mut by: HashMap<CheckpointId, Vec<usize>> = HashMap::new();
    for (i, s) in scans.iter().enumerate() {
        if let Some(cp) = s.checkpoint_id {
            by.entry(cp).or_default().push(i);
        }
    }
    for list in by.values_mut() {
        list.sort_by_key(|&i| scan_key(&scans[i]));
    }
    by
}

/// Matches one rule's slots of one checkpoint (in time order, non-overlapping) against the
/// checkpoint's scans (indices in time order). Returns, per slot, the status (without
/// excuses) and the settling scan.
fn match_slots(
    slots: &[(i64, i64)],
    grace_ms: i64,
    now: i64,
    scans: &[ScanObs],
    list: &[usize],
) -> Vec<(SlotStatus, Option<usize>)> {
    let at = |k: usize| scans[list[k]].trusted_at;
    // Position in `list` of the first scan at or after `t`.
    let first_at = |t: i64| list.partition_point(|&i| scans[i].trusted_at < t);
    let mut used = vec![false; list.len()];
    // Each slot's own scans: [lo, hi) of `list`.
    let own: Vec<(usize, usize)> = slots
        .iter()
        .map(|&(s, e)| (first_at(s), first_at(e)))
        .collect();
    // How many of a slot's own scans were taken by the slot before it (as late).
    let mut taken = vec![0usize; slots.len()];
    let mut result: Vec<(SlotStatus, Option<usize>)> =
        vec![(SlotStatus::Missed, None); slots.len()];

    // 1. on time (provisional: the slot before may take the first scan as late).
    // 2. late, in time order.
    for k in 0..slots.len() {
        let (lo, hi) = own[k];
        if lo + taken[k] < hi {
            continue;
        }
        let (_, end) = slots[k];
        let mut j = first_at(end);
        while j < list.len() && at(j) < end + grace_ms {
            if used[j] {
                j += 1;
                continue;
            }
            // Is it the own scan of a later slot? Then only if that slot keeps another.
            let owner = (k + 1..slots.len())
                .take_while(|&n| slots[n].0 < end + grace_ms)
                .find(|&n| own[n].0 <= j && j < own[n].1);
            match owner {
                Some(n) => {
                    let (nlo, nhi) = own[n];
                    // The first unused scan of `n` is its own on-time scan.
                    if j == nlo + taken[n] && nhi - nlo - taken[n] >= 2 {
                        taken[n] += 1;
                        used[j] = true;
                        result[k] = (SlotStatus::Late, Some(list[j]));
                    }
                    break;
                }
                None => {
                    used[j] = true;
                    result[k] = (SlotStatus::Late, Some(list[j]));
                    break;
                }
            }
        }
    }
    for k in 0..slots.len() {
        let (lo, hi) = own[k];
        let first = lo + taken[k];
        if first < hi {
            used[first] = true;
            result[k] = (SlotStatus::OnTime, Some(list[first]));
        }
    }
    // 3. early, and 4. missed or pending.
    for k in 0..slots.len() {
        if result[k].1.is_some() {
            continue;
        }
        let (start, end) = slots[k];
        if now < end + grace_ms {
            result[k] = (SlotStatus::Pending, None);
            continue;
        }
        let lo = first_at(start - grace_ms);
        let hi = first_at(start);
        if let Some(j) = (lo..hi).rev().find(|&j| !used[j]) {
            used[j] = true;
            result[k] = (SlotStatus::Early, Some(list[j]));
        } else {
            result[k] = (SlotStatus::Missed, None);
        }
    }
    result
}

/// Evaluates the period: slot results and count-rule windows.
pub fn evaluate(input: &EvalInput<'_>) -> Evaluation {
    let reference = input.reference;
    let tz = super::reference::parse_timezone(&reference.timezone).unwrap_or(chrono_tz::UTC);
    let (mlo, mhi) = match_range(reference, input.from, input.to);
    let by_cp = scans_by_checkpoint(input.scans);
    let excuses: HashMap<(RuleId, CheckpointId, i64), &Excuse> = input
        .excuses
        .iter()
        .map(|e| ((e.rule_id, e.checkpoint_id, e.slot_start.0), e))
        .collect();
    let empty = Vec::new();
    let mut slots = Vec::new();
    let mut counts = Vec::new();
    for rule in &reference.rules {
        match &rule.kind {
            RuleKind::Interval {
                target,
                every_minutes,
                ..
            } => {
                let grace_ms = rule.grace_ms();
                let bounds = rule_slots(rule, *every_minutes, tz, mlo, mhi);
                for cp in targets(target, reference) {
                    let list = by_cp.get(&cp.id).unwrap_or(&empty);
                    let matched = match_slots(&bounds, grace_ms, input.now, input.scans, list);
                    for (&(start, end), (status, scan)) in bounds.iter().zip(matched) {
                        if start < input.from || start >= input.to {
                            continue;
                        }
                        let excuse = excuses.get(&(rule.id, cp.id, start)).map(|e| (*e).clone());
                        let status = if excuse.is_some() {
                            SlotStatus::Excused
                        } else {
                            status
                        };
                        slots.push(SlotResult {
                            spec: SlotSpec {
                                rule_id: rule.id,
                                checkpoint_id: cp.id,
                                start,
                                end,
                                grace_ms,
                            },
                            status,
                            scan,
                            excuse,
                        });
                    }
                }
            }
            RuleKind::Count { route_id, min_runs } => {
                for (ws, we) in window_instances(rule.window, tz, input.from, input.to) {
                    if ws < input.from || ws >= input.to {
                        continue;
                    }
                    let completed = input
                        .runs
                        .iter()
                        .filter(|r| {
                            r.route_id == Some(*route_id)
                                && r.status == RunStatus::Completed
                                && r.started_at.0 >= ws
                                && r.started_at.0 < we
                        })
                        .count() as u32;
                    let met = completed >= *min_runs;
                    counts.push(CountResult {
                        rule_id: rule.id,
                        route_id: *route_id,
                        window_start: Timestamp(ws),
                        window_end: Timestamp(we),
                        required: *min_runs,
                        completed,
                        met,
                        pending: !met && input.now < we,
                    });
                }
            }
        }
    }
    slots.sort_by(|a, b| {
        (a.spec.start, a.spec.rule_id, a.spec.checkpoint_id).cmp(&(
            b.spec.start,
            b.spec.rule_id,
            b.spec.checkpoint_id,
        ))
    });
    counts.sort_by_key(|a| (a.window_start.0, a.rule_id));
    Evaluation { slots, counts }
}
