//! Patrol coverage (巡更), DESIGN §6. Nothing here knows HTTP or SQL.
//!
//! - [`reference`]: zones, checkpoints with their tags, routes and rules of one estate; the
//!   checks that keep them consistent ([`reference::apply`]) and tag normalisation.
//! - [`import`]: checkpoint and route CSV files read into reference operations, every bad
//!   row reported with its line number.
//! - [`scan`]: the shape of `scan` and `run_event` facts.
//! - [`flags`]: anomaly flags of scans (they mark, never refuse).
//! - [`slots`]: rules expanded into visit slots in the estate's time zone, and each slot's
//!   result from the scans (by trusted time).
//! - [`coverage`]: totals and groups, the checkpoint × hour heat map, max gaps.
//! - [`runs`]: `run_event` facts and their scans folded into patrol runs.
//! - [`sim`]: a deterministic patrol simulator (an estate's plan and its guards' push
//!   batches) for the demo week and the coverage benchmark.
//!
//! Every result is a pure function of the reference data, the raw scans and the excuses,
//! so changing a rule or excusing a slot recomputes the past, and the arrival order of
//! scans never matters.

pub mod coverage;
pub mod flags;
pub mod import;
pub mod reference;
pub mod runs;
pub mod scan;
pub mod sim;
pub mod slots;

use crate::hlc::Hlc;
use crate::ids::{
    CheckpointId, DeviceId, EstateId, FactId, RouteId, RuleId, RunId, UserId, ZoneId,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest code, in characters.
pub const MAX_CODE: usize = 64;
/// Longest name, floor or reason, in characters.
pub const MAX_NAME: usize = 200;
/// Longest instructions, in characters.
pub const MAX_INSTRUCTIONS: usize = 2000;
/// Longest tag value as sent, in characters.
pub const MAX_TAG: usize = 512;
/// Most checkpoints on one route.
pub const MAX_ROUTE_LEN: usize = 500;
/// Default checkpoint radius when none is given, metres.
pub const DEFAULT_RADIUS_M: f64 = 30.0;
/// Default grace of an interval rule, minutes.
pub const DEFAULT_GRACE_MINUTES: u32 = 15;

// ------------------------------------------------------------------ reference data

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckpointClass {
    /// 重点巡更点: plant rooms, car park ramps, fire exits.
    Key,
    /// 一般巡更点.
    General,
}

impl CheckpointClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointClass::Key => "key",
            CheckpointClass::General => "general",
        }
    }
}

impl FromStr for CheckpointClass {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "key" => Ok(CheckpointClass::Key),
            "general" => Ok(CheckpointClass::General),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TagKind {
    /// An NFC tag, named by its UID (upper-case hex, no separators, once normalised).
    Nfc,
    /// A QR code, named by its payload (trimmed).
    Qr,
}

impl TagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TagKind::Nfc => "nfc",
            TagKind::Qr => "qr",
        }
    }
}

/// A tag fixed at a checkpoint. `value` is normalised ([`reference::normalise_tag`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tag {
    pub kind: TagKind,
    pub value: String,
}

impl Tag {
    /// The key a scan is resolved by: `nfc:04A2197C`, `qr:<payload>`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GeoPoint {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Zone {
    pub id: ZoneId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub estate_id: EstateId,
    pub code: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    pub id: CheckpointId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub estate_id: EstateId,
    pub zone_id: Option<ZoneId>,
    pub code: String,
    pub name: String,
    pub class: CheckpointClass,
    pub location: Option<GeoPoint>,
    /// A scan farther than this (plus its reported accuracy) is `outside_radius`.
    pub radius_m: f64,
    pub floor: Option<String>,
    pub instructions: Option<String>,
    /// Active tags; one tag value maps to one checkpoint of the estate.
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Route {
    pub id: RouteId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub estate_id: EstateId,
    pub code: String,
    pub name: String,
    /// In walking order; a checkpoint appears at most once.
    pub checkpoints: Vec<CheckpointId>,
    /// Strict routes must be walked in order (deviations are counted).
    pub strict: bool,
    pub expected_minutes: u32,
}

/// A local time of day, minutes after midnight (0..1440), written `"HH:MM"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(pub u16);

impl TimeOfDay {
    pub fn minutes(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for TimeOfDay {
    type Err = String;
    /// `"HH:MM"`, 00:00 to 23:59.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day HH:MM from 00:00 to 23:59");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A local-time window, anchored on each local date: `[date start, date end)`. An end at or
/// before the start wraps past midnight (22:00–06:00 ends the next morning); an end equal to
/// the start is the whole day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl Window {
    pub fn wraps_midnight(&self) -> bool {
        self.end <= self.start
    }
}

/// How late a visit may be and still count (`late` rather than `missed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Grace {
    /// A fixed number of minutes, e.g. `{"minutes": 15}`.
    Minutes(u32),
    /// A share of the period, e.g. `{"percent": 20}`.
    Percent(u32),
}

impl Grace {
    /// The grace in milliseconds for a period of `every_minutes`.
    pub fn ms(self, every_minutes: u32) -> i64 {
        match self {
            Grace::Minutes(m) => m as i64 * 60_000,
            Grace::Percent(p) => every_minutes as i64 * 60_000 * p as i64 / 100,
        }
    }
}

/// Which checkpoints an interval rule covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleTarget {
    /// Every checkpoint of a class: `{"class": "key"}`.
    Class(CheckpointClass),
    /// Every checkpoint of a zone: `{"zone": "<id>"}`.
    Zone(ZoneId),
    /// These checkpoints: `{"checkpoints": ["<id>", …]}`.
    Checkpoints(Vec<CheckpointId>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// Each targeted checkpoint visited once per `every_minutes` inside the window.
    Interval {
        target: RuleTarget,
        every_minutes: u32,
        /// `None`: [`DEFAULT_GRACE_MINUTES`].
        grace: Option<Grace>,
    },
    /// At least `min_runs` completed runs of a route started inside each window.
    Count {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        route_id: RouteId,
        min_runs: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    pub id: RuleId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub estate_id: EstateId,
    pub name: String,
    pub window: Window,
    #[serde(flatten)]
    pub kind: RuleKind,
}

impl Rule {
    /// The grace of an interval rule in ms (0 for count rules).
    pub fn grace_ms(&self) -> i64 {
        match &self.kind {
            RuleKind::Interval {
                every_minutes,
                grace,
                ..
            } => grace
                .unwrap_or(Grace::Minutes(DEFAULT_GRACE_MINUTES))
                .ms(*every_minutes),
            RuleKind::Count { .. } => 0,
        }
    }
}

/// An estate's reference data as it stands: what rules, coverage and imports read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSet {
    pub estate_id: EstateId,
    /// IANA time zone name, e.g. `Asia/Shanghai`.
    pub timezone: String,
    pub zones: Vec<Zone>,
    pub checkpoints: Vec<Checkpoint>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

impl ReferenceSet {
    pub fn empty(estate_id: EstateId, timezone: impl Into<String>) -> Self {
        ReferenceSet {
            estate_id,
            timezone: timezone.into(),
            zones: vec![],
            checkpoints: vec![],
            routes: vec![],
            rules: vec![],
        }
    }
}

/// The four collections of reference data (their names in pull and in URLs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefCollection {
    Zones,
    Checkpoints,
    Routes,
    Rules,
}

impl RefCollection {
    pub const ALL: [RefCollection; 4] = [
        RefCollection::Zones,
        RefCollection::Checkpoints,
        RefCollection::Routes,
        RefCollection::Rules,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RefCollection::Zones => "zones",
            RefCollection::Checkpoints => "checkpoints",
            RefCollection::Routes => "routes",
            RefCollection::Rules => "rules",
        }
    }
}

impl FromStr for RefCollection {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        RefCollection::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

/// One reference entity, whole.
#[derive(Clone, Debug, PartialEq)]
pub enum RefEntity {
    Zone(Zone),
    Checkpoint(Checkpoint),
    Route(Route),
    Rule(Rule),
}

impl RefEntity {
    pub fn collection(&self) -> RefCollection {
        match self {
            RefEntity::Zone(_) => RefCollection::Zones,
            RefEntity::Checkpoint(_) => RefCollection::Checkpoints,
            RefEntity::Route(_) => RefCollection::Routes,
            RefEntity::Rule(_) => RefCollection::Rules,
        }
    }
    pub fn id(&self) -> uuid::Uuid {
        match self {
            RefEntity::Zone(x) => x.id.0,
            RefEntity::Checkpoint(x) => x.id.0,
            RefEntity::Route(x) => x.id.0,
            RefEntity::Rule(x) => x.id.0,
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            RefEntity::Zone(x) => serde_json::to_value(x),
            RefEntity::Checkpoint(x) => serde_json::to_value(x),
            RefEntity::Route(x) => serde_json::to_value(x),
            RefEntity::Rule(x) => serde_json::to_value(x),
        };
        v.unwrap_or(serde_json::Value::Null)
    }
}

/// A change asked of the reference data: create or replace an entity, or retire one.
#[derive(Clone, Debug, PartialEq)]
pub enum RefOp {
    Put(RefEntity),
    Delete {
        collection: RefCollection,
        id: uuid::Uuid,
    },
}

/// A change [`reference::apply`] made, for the store to write (and pull to carry).
#[derive(Clone, Debug, PartialEq)]
pub struct RefChange {
    pub collection: RefCollection,
    pub id: uuid::Uuid,
    /// The entity's JSON for a put; `None` for a delete (tombstone).
    pub data: Option<serde_json::Value>,
}

/// Why a reference operation (or CSV row) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefError {
    /// Which operation (0-based index) or, from an import, which CSV line (1-based, the
    /// header is line 1).
    pub at: usize,
    /// Stable code: `invalid_value`, `missing_field`, `duplicate_code`, `duplicate_tag`,
    /// `unknown_zone`, `zone_in_other_estate`, `unknown_checkpoint`, `unknown_route`,
    /// `in_use`, `not_found`, `invalid_time`, `invalid_timezone`.
    pub code: String,
    /// The field at fault, e.g. `tags[0].value` or the CSV column name.
    pub field: String,
    pub message: String,
}

impl RefError {
    pub fn new(
        at: usize,
        code: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RefError {
            at,
            code: code.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

// ------------------------------------------------------------------ scans and runs

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScanMethod {
    Nfc,
    Qr,
}

/// Where the handset said it was when it scanned.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanLocation {
    pub lat: f64,
    pub lng: f64,
    pub accuracy_m: Option<f64>,
    /// The OS reported a mock (fake) location provider.
    pub mock: bool,
}

/// The meaning of a `scan` fact's `data` ([`scan::parse_scan`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ScanData {
    pub method: ScanMethod,
    /// As sent.
    pub tag_raw: String,
    /// The tag key it is resolved by ([`Tag::key`] of the normalised value).
    pub tag_key: String,
    pub run_id: Option<RunId>,
    pub location: Option<ScanLocation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunAction {
    Start,
    Finish,
    Abort,
}

impl RunAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RunAction::Start => "start",
            RunAction::Finish => "finish",
            RunAction::Abort => "abort",
        }
    }
}

impl FromStr for RunAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "start" => Ok(RunAction::Start),
            "finish" => Ok(RunAction::Finish),
            "abort" => Ok(RunAction::Abort),
            _ => Err(()),
        }
    }
}

/// The meaning of a `run_event` fact's `data` ([`scan::parse_run_event`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunEventData {
    pub run_id: RunId,
    pub action: RunAction,
    /// Required on `start`.
    pub route_id: Option<RouteId>,
    /// Required on `abort`.
    pub reason: Option<String>,
}

/// A scan as coverage reads it: from the store, resolved to a checkpoint when its tag is
/// known. The input of [`flags`], [`slots`] and [`runs`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScanObs {
    pub id: FactId,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub seq: u64,
    pub trusted_at: i64,
    /// `clock_trust = verified`.
    pub verified: bool,
    /// The fact was flagged `clock_skew` when pushed.
    pub clock_skew: bool,
    pub tag_key: String,
    pub checkpoint_id: Option<CheckpointId>,
    pub run_id: Option<RunId>,
    pub location: Option<ScanLocation>,
}

/// An anomaly of a scan (DESIGN §6). Flags mark; they never refuse a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScanFlag {
    OutsideRadius,
    MockLocation,
    ImpossibleSpeed,
    ClockSkew,
    SeqTimeDisorder,
    Burst,
    UnknownTag,
}

impl ScanFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanFlag::OutsideRadius => "outside_radius",
            ScanFlag::MockLocation => "mock_location",
            ScanFlag::ImpossibleSpeed => "impossible_speed",
            ScanFlag::ClockSkew => "clock_skew",
            ScanFlag::SeqTimeDisorder => "seq_time_disorder",
            ScanFlag::Burst => "burst",
            ScanFlag::UnknownTag => "unknown_tag",
        }
    }
}

/// A run event as the fold reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEventObs {
    pub fact_id: FactId,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub hlc: Hlc,
    pub trusted_at: i64,
    pub data: RunEventData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    InProgress,
    /// Finished with every checkpoint of the route scanned.
    Completed,
    /// Finished with checkpoints missing.
    Incomplete,
    Aborted,
}

/// A patrol run: its events and the scans that name it, folded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: RunId,
    pub route_id: Option<RouteId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub user_id: UserId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub device_id: DeviceId,
    pub status: RunStatus,
    /// Trusted time of the start (or of the first event/scan when the start is missing).
    pub started_at: crate::wire::Timestamp,
    pub finished_at: Option<crate::wire::Timestamp>,
    pub abort_reason: Option<String>,
    /// Checkpoints on the route.
    pub expected: u32,
    /// Of those, how many were scanned during the run.
    pub scanned: u32,
    /// `scanned / expected` (1 when the route is empty or unknown).
    pub coverage: f64,
    /// Route checkpoints not scanned, in route order.
    pub missed: Vec<CheckpointId>,
    /// On a strict route: scanned checkpoints out of route order (scanned minus the longest
    /// in-order subsequence). 0 on an any-order route.
    pub order_deviations: u32,
}

// ------------------------------------------------------------------ slots

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    OnTime,
    Late,
    Early,
    Missed,
    Excused,
    /// Not decided yet: its grace has not passed and no scan has settled it.
    Pending,
}

impl SlotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotStatus::OnTime => "on_time",
            SlotStatus::Late => "late",
            SlotStatus::Early => "early",
            SlotStatus::Missed => "missed",
            SlotStatus::Excused => "excused",
            SlotStatus::Pending => "pending",
        }
    }
}

impl FromStr for SlotStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [
            SlotStatus::OnTime,
            SlotStatus::Late,
            SlotStatus::Early,
            SlotStatus::Missed,
            SlotStatus::Excused,
            SlotStatus::Pending,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or(())
    }
}

/// A supervisor's excuse of one slot (a checkpoint closed for works, a guard called away).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Excuse {
    pub rule_id: RuleId,
    pub checkpoint_id: CheckpointId,
    /// The slot's start (epoch ms).
    pub slot_start: crate::wire::Timestamp,
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub by: UserId,
    pub at: crate::wire::Timestamp,
}

/// One expected visit: a checkpoint, by one interval rule, in `[start, end)` (UTC ms).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlotSpec {
    pub rule_id: RuleId,
    pub checkpoint_id: CheckpointId,
    pub start: i64,
    pub end: i64,
    /// `late` until `end + grace_ms`; `early` from `start - grace_ms`.
    pub grace_ms: i64,
}

/// A slot with its result.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotResult {
    pub spec: SlotSpec,
    pub status: SlotStatus,
    /// Index into the scans given to [`slots::evaluate`] of the scan that settled it.
    pub scan: Option<usize>,
    /// Set when excused (the status is then `Excused`, whatever the scans say).
    pub excuse: Option<Excuse>,
}

/// One window instance of a count rule, with its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountResult {
    pub rule_id: RuleId,
    pub route_id: RouteId,
    pub window_start: crate::wire::Timestamp,
    pub window_end: crate::wire::Timestamp,
    pub required: u32,
    /// Completed runs of the route started in the window.
    pub completed: u32,
    pub met: bool,
    /// The window has not ended yet (`met` may still become true).
    pub pending: bool,
}

/// Everything the evaluation of a period reads.
#[derive(Clone, Debug)]
pub struct EvalInput<'a> {
    pub reference: &'a ReferenceSet,
    /// Slots starting in `[from, to)` (UTC ms) are evaluated.
    pub from: i64,
    pub to: i64,
    /// Server time: slots whose grace has not passed and that no scan settled are `pending`.
    pub now: i64,
    /// Scans covering at least [`slots::scan_range`] of the period, any order.
    pub scans: &'a [ScanObs],
    /// Flags of each scan, parallel to `scans` ([`flags::flag_scans`]).
    pub flags: &'a [Vec<ScanFlag>],
    pub excuses: &'a [Excuse],
    /// Runs, for count rules.
    pub runs: &'a [Run],
}

/// The result of evaluating a period: every slot in start order (then rule, checkpoint),
/// every count-rule window.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub slots: Vec<SlotResult>,
    pub counts: Vec<CountResult>,
}
