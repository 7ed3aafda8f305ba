//! Coverage totals and groups, max gaps, the checkpoint × hour heat map.
//!
//! coverage = (on_time + late) / (expected − excused); strict = on_time / (expected −
//! excused); verified = slots settled on time or late by a scan with `clock_trust =
//! verified` and no anomaly flag, over the same denominator. `expected` counts every slot of
//! the period except `pending` ones (not decided yet); a ratio with a zero denominator is
//! `None`.

use super::*;
use crate::wire::Timestamp;

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
    let _ = (eval, input, group_by);
    todo!()
}

/// Counts of a set of slot results (with the flags/verification of their scans).
pub fn counts<'a>(
    slots: impl IntoIterator<Item = &'a SlotResult>,
    input: &EvalInput<'_>,
) -> Counts {
    let _ = (slots, input);
    todo!()
}

/// Longest time without a valid scan of `checkpoint` inside the windows of the rules that
/// cover it, clipped to `[input.from, min(input.to, input.now))`, in ms. `None` when no rule
/// covers it in the period.
pub fn max_gap_ms(checkpoint: CheckpointId, input: &EvalInput<'_>) -> Option<i64> {
    let _ = (checkpoint, input);
    todo!()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    let _ = (date, tz);
    todo!()
}

/// The heat map of one local day: `eval` must cover the day's bounds.
pub fn heatmap(
    eval: &Evaluation,
    reference: &ReferenceSet,
    date: chrono::NaiveDate,
    tz: chrono_tz::Tz,
) -> Heatmap {
    let _ = (eval, reference, date, tz);
    todo!()
}
