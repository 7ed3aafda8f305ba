//! Coverage totals and groups, max gaps, the checkpoint × hour heat map.
//!
//! coverage = (on_time + late) / (expected − excused); strict = on_time / (expected −
//! excused); verified = slots settled on time or late by a scan with `clock_trust =
//! verified` and no anomaly flag, over the same denominator. `expected` counts every slot of
//! the period except `pending` ones (not decided yet); a ratio with a zero denominator is
//! `None`.

use super::slots::{local_date, local_instant, scans_by_checkpoint, targets, window_instances};
use super::*;
use crate::wire::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Checkpoint,
    Zone,
    /// A slot counts once for every route its checkpoint is on.
    Route,
    /// By the user whose scan settled the slot; unsettled slots (missed, excused) go to a
    /// row with no guard.
    Guard,
    /// Local hour of the slot's start, `00`..`23`.
    Hour,
    /// Local date of the slot's start, `2026-11-22`.
    Day,
}

impl FromStr for GroupBy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "checkpoint" => Ok(GroupBy::Checkpoint),
            "zone" => Ok(GroupBy::Zone),
            "route" => Ok(GroupBy::Route),
            "guard" => Ok(GroupBy::Guard),
            "hour" => Ok(GroupBy::Hour),
            "day" => Ok(GroupBy::Day),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    /// Decided slots (every status but `pending`).
    pub expected: u64,
    pub on_time: u64,
    pub late: u64,
    pub early: u64,
    pub missed: u64,
    pub excused: u64,
    /// Not decided yet; not in `expected`.
    pub pending: u64,
    /// Settled on time or late by a verified, anomaly-free scan.
    pub verified: u64,
    pub coverage: Option<f64>,
    pub strict_coverage: Option<f64>,
    pub verified_coverage: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupRow {
    /// The group's key: an id, a user id (`null` for unsettled slots of `guard`), an hour
    /// `"03"` or a date `"2026-11-22"`.
    pub key: Option<String>,
    /// A readable label: `code name` of a checkpoint, zone or route; the key otherwise.
    pub label: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// `group_by=checkpoint` only: the longest time without a valid scan inside the rule
    /// windows of the period, in minutes.
    pub max_gap_minutes: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoverageReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub timezone: String,
    pub group_by: Option<GroupBy>,
    pub totals: Counts,
    pub groups: Vec<GroupRow>,
    /// Count rules' windows in the period (≥ N complete runs).
    pub count_rules: Vec<CountResult>,
}

/// Totals and, when `group_by` is given, one row per group (ordered by label, the
/// no-guard row last). Pure: the same evaluation gives the same report.
pub fn report(
    eval: &Evaluation,
    input: &EvalInput<'_>,
    group_by: Option<GroupBy>,
) -> CoverageReport {
    let tz = super::reference::parse_timezone(&input.reference.timezone).unwrap_or(chrono_tz::UTC);
    let reference = input.reference;
    let totals = counts(&eval.slots, input);
    let mut groups = Vec::new();
    if let Some(g) = group_by {
        // key → (label, slots)
        let mut by: BTreeMap<Option<String>, (String, Vec<usize>)> = BTreeMap::new();
        let mut add = |key: Option<String>, label: String, s: usize| {
            by.entry(key)
                .or_insert_with(|| (label, Vec::new()))
                .1
                .push(s)
        };
        let checkpoints: HashMap<CheckpointId, &Checkpoint> =
            reference.checkpoints.iter().map(|c| (c.id, c)).collect();
        let zones: HashMap<ZoneId, &Zone> = reference.zones.iter().map(|z| (z.id, z)).collect();
        let mut routes_of: HashMap<CheckpointId, Vec<&Route>> = HashMap::new();
        for r in &reference.routes {
            for cp in &r.checkpoints {
                routes_of.entry(*cp).or_default().push(r);
            }
        }
        for (i, s) in eval.slots.iter().enumerate() {
            let cp = checkpoints.get(&s.spec.checkpoint_id);
            match g {
                GroupBy::Checkpoint => {
                    let label = cp.map(|c| format!("{} {}", c.code, c.name));
                    let id = s.spec.checkpoint_id.to_string();
                    add(Some(id.clone()), label.unwrap_or(id), i);
                }
                GroupBy::Zone => match cp.and_then(|c| c.zone_id) {
                    Some(z) => {
                        let label = zones
                            .get(&z)
                            .map(|z| format!("{} {}", z.code, z.name))
                            .unwrap_or_else(|| z.to_string());
                        add(Some(z.to_string()), label, i)
                    }
                    None => add(None, "(no zone)".into(), i),
                },
                GroupBy::Route => match routes_of.get(&s.spec.checkpoint_id) {
                    Some(rs) => {
                        for r in rs {
                            add(Some(r.id.to_string()), format!("{} {}", r.code, r.name), i);
                        }
                    }
                    None => add(None, "(no route)".into(), i),
                },
                GroupBy::Guard => {
                    let settled = matches!(
                        s.status,
                        SlotStatus::OnTime | SlotStatus::Late | SlotStatus::Early
                    );
                    match s.scan.and_then(|i| input.scans.get(i)).filter(|_| settled) {
                        Some(x) => {
                            let u = x.user_id.to_string();
                            add(Some(u.clone()), u, i)
                        }
                        None => add(None, "(no guard)".into(), i),
                    }
                }
                GroupBy::Hour => {
                    let h = local_hour(tz, s.spec.start);
                    add(Some(h.clone()), h, i)
                }
                GroupBy::Day => {
                    let d = local_date(tz, s.spec.start).to_string();
                    add(Some(d.clone()), d, i)
                }
            }
        }
        let gaps = if g == GroupBy::Checkpoint {
            Some(Gaps::new(input, tz))
        } else {
            None
        };
        for (key, (label, slots)) in by {
            let max_gap_minutes = gaps.as_ref().and_then(|gaps| {
                let cp = eval.slots[*slots.first()?].spec.checkpoint_id;
                gaps.max_gap_ms(cp).map(|ms| ms as f64 / 60_000.0)
            });
            groups.push(GroupRow {
                key,
                label,
                counts: counts(slots.iter().map(|&i| &eval.slots[i]), input),
                max_gap_minutes,
            });
        }
        // Ordered by label; the row without a key last.
        groups.sort_by(|a, b| {
            (a.key.is_none(), &a.label, &a.key).cmp(&(b.key.is_none(), &b.label, &b.key))
        });
        if matches!(g, GroupBy::Hour | GroupBy::Day) {
            groups.sort_by(|a, b| a.key.cmp(&b.key));
        }
    }
    CoverageReport {
        from: Timestamp(input.from),
        to: Timestamp(input.to),
        timezone: reference.timezone.clone(),
        group_by,
        totals,
        groups,
        count_rules: eval.counts.clone(),
    }
}

/// Counts of a set of slot results (with the flags/verification of their scans).
pub fn counts<'a>(
    slots: impl IntoIterator<Item = &'a SlotResult>,
    input: &EvalInput<'_>,
) -> Counts {
    let mut c = Counts::default();
    for s in slots {
        match s.status {
            SlotStatus::OnTime => c.on_time += 1,
            SlotStatus::Late => c.late += 1,
            SlotStatus::Early => c.early += 1,
            SlotStatus::Missed => c.missed += 1,
            SlotStatus::Excused => c.excused += 1,
            SlotStatus::Pending => c.pending += 1,
        }
        if s.status != SlotStatus::Pending {
            c.expected += 1;
        }
        if matches!(s.status, SlotStatus::OnTime | SlotStatus::Late) {
            if let Some(i) = s.scan {
                let clean = input.flags.get(i).is_none_or(|f| f.is_empty());
                if input.scans.get(i).is_some_and(|x| x.verified) && clean {
                    c.verified += 1;
                }
            }
        }
    }
    let denom = c.expected.saturating_sub(c.excused);
    let ratio = |n: u64| (denom > 0).then(|| n as f64 / denom as f64);
    c.coverage = ratio(c.on_time + c.late);
    c.strict_coverage = ratio(c.on_time);
    c.verified_coverage = ratio(c.verified);
    c
}

/// Longest time without a valid scan of `checkpoint` inside the windows of the rules that
/// cover it, clipped to `[input.from, min(input.to, input.now))`, in ms. `None` when no rule
/// covers it in the period.
pub fn max_gap_ms(checkpoint: CheckpointId, input: &EvalInput<'_>) -> Option<i64> {
    let tz = super::reference::parse_timezone(&input.reference.timezone).unwrap_or(chrono_tz::UTC);
    Gaps::new(input, tz).max_gap_ms(checkpoint)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatCell {
    /// The worst status of the slots starting in this hour (missed > late > early >
    /// pending > excused > on_time); `None` when no slot starts in it.
    pub status: Option<SlotStatus>,
    pub slots: u32,
    pub on_time: u32,
    pub late: u32,
    pub early: u32,
    pub missed: u32,
    pub excused: u32,
    pub pending: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatRow {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub checkpoint_id: CheckpointId,
    pub code: String,
    pub name: String,
    pub class: CheckpointClass,
    /// One per entry of [`Heatmap::hours`].
    pub cells: Vec<HeatCell>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heatmap {
    /// The local date shown.
    pub date: String,
    pub timezone: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Column labels, one per real hour of the local day (23 or 25 on a DST change):
    /// `"00"`…`"23"`, a repeated hour written `"01"` then `"01*"`.
    pub hours: Vec<String>,
    /// The start of each column (UTC).
    pub hour_starts: Vec<Timestamp>,
    /// Checkpoints covered by a rule that day, by code.
    pub rows: Vec<HeatRow>,
}

/// The UTC bounds `[from, to)` of a local date in `tz` (23, 24 or 25 hours long).
pub fn local_day_bounds(date: chrono::NaiveDate, tz: chrono_tz::Tz) -> (i64, i64) {
    let next = date.succ_opt().unwrap_or(date);
    (local_instant(tz, date, 0), local_instant(tz, next, 0))
}

/// The heat map of one local day: `eval` must cover the day's bounds.
pub fn heatmap(
    eval: &Evaluation,
    reference: &ReferenceSet,
    date: chrono::NaiveDate,
    tz: chrono_tz::Tz,
) -> Heatmap {
    let (from, to) = local_day_bounds(date, tz);
    let mut hour_starts = Vec::new();
    let mut hours: Vec<String> = Vec::new();
    let mut t = from;
    while t < to {
        let mut label = local_hour(tz, t);
        if hours.contains(&label) {
            label.push('*');
        }
        hours.push(label);
        hour_starts.push(Timestamp(t));
        t += 3_600_000;
    }
    let column = |at: i64| {
        let c = hour_starts.partition_point(|h| h.0 <= at);
        c.checked_sub(1)
    };
    let mut rows: BTreeMap<(String, CheckpointId), HeatRow> = BTreeMap::new();
    let checkpoints: HashMap<CheckpointId, &Checkpoint> =
        reference.checkpoints.iter().map(|c| (c.id, c)).collect();
    for s in &eval.slots {
        if s.spec.start < from || s.spec.start >= to {
            continue;
        }
        let (Some(cp), Some(col)) = (checkpoints.get(&s.spec.checkpoint_id), column(s.spec.start))
        else {
            continue;
        };
        let row = rows
            .entry((cp.code.clone(), cp.id))
            .or_insert_with(|| HeatRow {
                checkpoint_id: cp.id,
                code: cp.code.clone(),
                name: cp.name.clone(),
                class: cp.class,
                cells: vec![HeatCell::default(); hour_starts.len()],
            });
        let cell = &mut row.cells[col];
        cell.slots += 1;
        match s.status {
            SlotStatus::OnTime => cell.on_time += 1,
            SlotStatus::Late => cell.late += 1,
            SlotStatus::Early => cell.early += 1,
            SlotStatus::Missed => cell.missed += 1,
            SlotStatus::Excused => cell.excused += 1,
            SlotStatus::Pending => cell.pending += 1,
        }
        if cell.status.is_none_or(|w| severity(s.status) > severity(w)) {
            cell.status = Some(s.status);
        }
    }
    Heatmap {
        date: date.to_string(),
        timezone: reference.timezone.clone(),
        from: Timestamp(from),
        to: Timestamp(to),
        hours,
        hour_starts,
        rows: rows.into_values().collect(),
    }
}

/// How bad a status looks on the heat map: missed > late > early > pending > excused >
/// on_time.
fn severity(s: SlotStatus) -> u8 {
    match s {
        SlotStatus::OnTime => 0,
        SlotStatus::Excused => 1,
        SlotStatus::Pending => 2,
        SlotStatus::Early => 3,
        SlotStatus::Late => 4,
        SlotStatus::Missed => 5,
    }
}

/// The local hour of an instant, `"00"`..`"23"`.
fn local_hour(tz: chrono_tz::Tz, at: i64) -> String {
    use chrono::TimeZone;
    match tz.timestamp_millis_opt(at) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%H").to_string()
        }
        chrono::LocalResult::None => "??".into(),
    }
}

/// What max gaps read: each checkpoint's scan times and the rule windows covering it.
struct Gaps<'a> {
    input: &'a EvalInput<'a>,
    tz: chrono_tz::Tz,
    scans: HashMap<CheckpointId, Vec<usize>>,
}

impl<'a> Gaps<'a> {
    fn new(input: &'a EvalInput<'a>, tz: chrono_tz::Tz) -> Self {
        Gaps {
            input,
            tz,
            scans: scans_by_checkpoint(input.scans),
        }
    }

    fn max_gap_ms(&self, checkpoint: CheckpointId) -> Option<i64> {
        let input = self.input;
        let reference = input.reference;
        let lo = input.from;
        let hi = input.to.min(input.now);
        if lo >= hi {
            return None;
        }
        // The windows of the rules covering it, clipped and merged.
        let mut windows: Vec<(i64, i64)> = Vec::new();
        let mut seen = HashSet::new();
        for rule in &reference.rules {
            let RuleKind::Interval { target, .. } = &rule.kind else {
                continue;
            };
            if !targets(target, reference).any(|c| c.id == checkpoint) || !seen.insert(rule.window)
            {
                continue;
            }
            for (s, e) in window_instances(rule.window, self.tz, lo, hi) {
                windows.push((s.max(lo), e.min(hi)));
            }
        }
        if windows.is_empty() {
            return None;
        }
        windows.sort();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (s, e) in windows {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let empty = Vec::new();
        let list = self.scans.get(&checkpoint).unwrap_or(&empty);
        let times: Vec<i64> = list.iter().map(|&i| input.scans[i].trusted_at).collect();
        let mut max = 0;
        for (s, e) in merged {
            let mut prev = s;
            let first = times.partition_point(|&t| t < s);
            for &t in times[first..].iter().take_while(|&&t| t < e) {
                max = max.max(t - prev);
                prev = t;
            }
            max = max.max(e - prev);
        }
        Some(max)
    }
}
