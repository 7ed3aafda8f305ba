//! Hazard rectification (隐患整改), DESIGN §7: a ticket is the fold of its events in HLC
//! order. Nothing here knows HTTP or SQL; the server feeds events in and stores what comes
//! out, and a handset can run the same fold offline.
//!
//! - [`parse_event`] reads one event's `data` (shape only: it needs no ticket).
//! - [`fold`] folds a hazard's events into a [`Ticket`] with its timeline: each event is
//!   accepted or rejected *at its place* (state, role, assignee, evidence, plan, due date).
//! - [`escalations_due`] says which escalation steps a ticket has reached.
//! - [`stats`] summarises tickets for the tracker.

mod escalation;
mod fold;
mod parse;
mod stats;

pub use escalation::{escalations_due, EscalationDue};
pub use fold::{allowed_roles, fold, report_rejection, ticket_code};
pub use parse::parse_event;
pub use stats::{stats, AssigneeStats, GroupStats, HazardStats, TicketSummary};

use crate::hlc::{FactOrder, Hlc};
use crate::ids::{DeviceId, EstateId, FactId, HazardId, UserId};
use crate::roles::Role;
use crate::wire::{RejectCode, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest title, category, reason or note, in characters.
pub const MAX_TEXT: usize = 2000;
/// Longest title or category, in characters.
pub const MAX_SHORT_TEXT: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// 一般隐患
    General,
    /// 重大隐患: needs a rectification plan.
    Major,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::General => "general",
            Grade::Major => "major",
        }
    }
}

impl std::str::FromStr for Grade {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "general" => Ok(Grade::General),
            "major" => Ok(Grade::Major),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HazardState {
    Reported,
    Assigned,
    InRectification,
    ExtensionRequested,
    PendingVerification,
    Closed,
    Cancelled,
}

impl HazardState {
    pub const ALL: [HazardState; 7] = [
        HazardState::Reported,
        HazardState::Assigned,
        HazardState::InRectification,
        HazardState::ExtensionRequested,
        HazardState::PendingVerification,
        HazardState::Closed,
        HazardState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HazardState::Reported => "reported",
            HazardState::Assigned => "assigned",
            HazardState::InRectification => "in_rectification",
            HazardState::ExtensionRequested => "extension_requested",
            HazardState::PendingVerification => "pending_verification",
            HazardState::Closed => "closed",
            HazardState::Cancelled => "cancelled",
        }
    }

    /// Neither closed nor cancelled.
    pub fn is_open(self) -> bool {
        !matches!(self, HazardState::Closed | HazardState::Cancelled)
    }
}

impl std::str::FromStr for HazardState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        HazardState::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Report,
    Edit,
    Assign,
    Start,
    Plan,
    RequestExtension,
    ApproveExtension,
    DenyExtension,
    SubmitFix,
    VerifyPass,
    VerifyFail,
    Cancel,
    Reopen,
    Comment,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::Report,
        Action::Edit,
        Action::Assign,
        Action::Start,
        Action::Plan,
        Action::RequestExtension,
        Action::ApproveExtension,
        Action::DenyExtension,
        Action::SubmitFix,
        Action::VerifyPass,
        Action::VerifyFail,
        Action::Cancel,
        Action::Reopen,
        Action::Comment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Edit => "edit",
            Action::Assign => "assign",
            Action::Start => "start",
            Action::Plan => "plan",
            Action::RequestExtension => "request_extension",
            Action::ApproveExtension => "approve_extension",
            Action::DenyExtension => "deny_extension",
            Action::SubmitFix => "submit_fix",
            Action::VerifyPass => "verify_pass",
            Action::VerifyFail => "verify_fail",
            Action::Cancel => "cancel",
            Action::Reopen => "reopen",
            Action::Comment => "comment",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Action::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

/// What a photo shows, as evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PhotoRole {
    /// The hazard as found (needed to report where the estate requires it).
    Before,
    /// The fix (needed to submit a fix).
    After,
    /// The verifier's own photo (needed to pass verification).
    Verification,
    /// Anything else.
    Other,
}

impl PhotoRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoRole::Before => "before",
            PhotoRole::After => "after",
            PhotoRole::Verification => "verification",
            PhotoRole::Other => "other",
        }
    }
}

impl std::str::FromStr for PhotoRole {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "before" => Ok(PhotoRole::Before),
            "after" => Ok(PhotoRole::After),
            "verification" => Ok(PhotoRole::Verification),
            "other" => Ok(PhotoRole::Other),
            _ => Err(()),
        }
    }
}

/// A photo attached to an event: the metadata, which is what evidence counts. The bytes
/// may arrive later; `received` says whether they have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhotoRef {
    /// The photo fact's id.
    pub id: FactId,
    pub role: PhotoRole,
    pub sha256: String,
    /// Whether the server holds the bytes (always false until photo upload exists).
    #[serde(default)]
    pub received: bool,
}

/// Where the hazard is. The estate is the ticket's; zone and checkpoint are optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<uuid::Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<uuid::Uuid>,
    /// Free text ("B2 car park, pillar 14").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A major hazard's rectification plan (整改方案): goal, measures, funds, owner, deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RectificationPlan {
    pub goal: String,
    pub measures: String,
    /// Funds set aside, as written (e.g. "¥12,000").
    pub funds: String,
    /// Who answers for it (a name; not necessarily a user).
    pub owner: String,
    pub deadline: Timestamp,
}

/// One event's `data`, read by [`parse_event`]. Field names on the wire are the snake_case
/// names below, beside `hazard_id`, `action` and `estate_id`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    Report {
        grade: Grade,
        category: String,
        title: String,
        description: Option<String>,
        location: Location,
        /// The scan or finding fact it came from (`source_fact_id`).
        source_fact_id: Option<FactId>,
        /// A plan may come with the report (`plan`).
        plan: Option<RectificationPlan>,
    },
    /// Only the fields present change (last writer wins per field, by HLC).
    Edit {
        grade: Option<Grade>,
        category: Option<String>,
        title: Option<String>,
        description: Option<String>,
        location: Option<Location>,
    },
    Assign {
        assignee: UserId,
        /// Absent: the default for the grade, counted from the report.
        due_at: Option<Timestamp>,
    },
    Start,
    Plan(RectificationPlan),
    RequestExtension {
        due_at: Timestamp,
        reason: String,
    },
    ApproveExtension {
        /// Absent: the requested date.
        due_at: Option<Timestamp>,
    },
    DenyExtension {
        reason: Option<String>,
    },
    SubmitFix {
        note: Option<String>,
    },
    VerifyPass {
        note: Option<String>,
    },
    VerifyFail {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    Reopen {
        reason: String,
    },
    Comment {
        text: String,
    },
}

impl EventBody {
    pub fn action(&self) -> Action {
        match self {
            EventBody::Report { .. } => Action::Report,
            EventBody::Edit { .. } => Action::Edit,
            EventBody::Assign { .. } => Action::Assign,
            EventBody::Start => Action::Start,
            EventBody::Plan(_) => Action::Plan,
            EventBody::RequestExtension { .. } => Action::RequestExtension,
            EventBody::ApproveExtension { .. } => Action::ApproveExtension,
            EventBody::DenyExtension { .. } => Action::DenyExtension,
            EventBody::SubmitFix { .. } => Action::SubmitFix,
            EventBody::VerifyPass { .. } => Action::VerifyPass,
            EventBody::VerifyFail { .. } => Action::VerifyFail,
            EventBody::Cancel { .. } => Action::Cancel,
            EventBody::Reopen { .. } => Action::Reopen,
            EventBody::Comment { .. } => Action::Comment,
        }
    }
}

/// A parsed event: what [`parse_event`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEvent {
    pub hazard_id: HazardId,
    pub body: EventBody,
}

/// One event as the fold sees it: the parsed body with who, when and where in HLC order.
#[derive(Clone, Debug, PartialEq)]
pub struct EventInput {
    pub id: FactId,
    pub hazard_id: HazardId,
    pub estate_id: EstateId,
    pub hlc: Hlc,
    pub device_id: DeviceId,
    pub actor: UserId,
    /// The actor's roles in the estate when the server received the event.
    pub roles: Vec<Role>,
    /// Trusted time of the event (epoch ms): deadlines and durations use it.
    pub at: i64,
    pub body: EventBody,
    /// The event's `data` as sent, for the timeline.
    pub data: Value,
    /// Photo facts whose subject is this event.
    pub photos: Vec<PhotoRef>,
}

impl EventInput {
    pub fn order(&self) -> FactOrder {
        FactOrder {
            hlc: self.hlc,
            device_id: self.device_id,
            id: self.id,
        }
    }
}

/// One escalation step: at `at_percent` of the time allowed (from assignment, or the
/// report when unassigned, to the due date), alert `to`. 100 is the due date itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationStep {
    pub at_percent: u32,
    pub to: EscalationTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscalationTarget {
    Assignee,
    Supervisor,
    Manager,
}

impl EscalationTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationTarget::Assignee => "assignee",
            EscalationTarget::Supervisor => "supervisor",
            EscalationTarget::Manager => "manager",
        }
    }
}

/// An estate's hazard rules. Every field has a default, so `{}` is a valid policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HazardPolicy {
    /// Hours from report to the default due date of a general hazard (24).
    pub general_due_hours: u32,
    /// Hours from report to the default due date of a major hazard (168 = 7 days).
    pub major_due_hours: u32,
    /// A report needs a `before` photo (true).
    pub require_before_photo: bool,
    /// When to alert whom as the deadline nears and passes (75 % assignee, 100 %
    /// supervisor, 150 % manager).
    pub escalation: Vec<EscalationStep>,
}

impl Default for HazardPolicy {
    fn default() -> Self {
        HazardPolicy {
            general_due_hours: 24,
            major_due_hours: 168,
            require_before_photo: true,
            escalation: vec![
                EscalationStep {
                    at_percent: 75,
                    to: EscalationTarget::Assignee,
                },
                EscalationStep {
                    at_percent: 100,
                    to: EscalationTarget::Supervisor,
                },
                EscalationStep {
                    at_percent: 150,
                    to: EscalationTarget::Manager,
                },
            ],
        }
    }
}

impl HazardPolicy {
    /// Checks the numbers make sense: due hours 1..=8760, escalation percents 1..=1000 and
    /// strictly increasing. Returns a message naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (name, h) in [
            ("general_due_hours", self.general_due_hours),
            ("major_due_hours", self.major_due_hours),
        ] {
            if !(1..=8760).contains(&h) {
                return Err(format!("{name}: must be from 1 to 8760 hours"));
            }
        }
        let mut last = 0;
        for (i, s) in self.escalation.iter().enumerate() {
            if !(1..=1000).contains(&s.at_percent) || s.at_percent <= last {
                return Err(format!(
                    "escalation[{i}].at_percent: must be from 1 to 1000 and larger than the step before"
                ));
            }
            last = s.at_percent;
        }
        Ok(())
    }

    pub fn default_due_ms(&self, grade: Grade) -> i64 {
        let h = match grade {
            Grade::General => self.general_due_hours,
            Grade::Major => self.major_due_hours,
        };
        i64::from(h) * 3_600_000
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Accepted,
    Rejected,
}

/// One event in a ticket's timeline, accepted or rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub event_id: FactId,
    pub hlc: Hlc,
    pub device_id: DeviceId,
    pub actor: UserId,
    pub action: Action,
    /// Trusted time of the event.
    pub at: Timestamp,
    pub status: EventStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RejectCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ticket's state after this event.
    pub state_after: HazardState,
    /// The event's data as sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    pub photos: Vec<PhotoRef>,
}

/// A pending extension request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtensionRequest {
    pub due_at: Timestamp,
    pub reason: String,
    pub requested_by: UserId,
}

/// A hazard ticket: the fold of its events. `code` is set by the server when it stores the
/// ticket (it is not derived from the events); the fold leaves it empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub id: HazardId,
    /// Human-readable code such as `YH-20261122-0007`, assigned once by the server.
    pub code: String,
    pub estate_id: EstateId,
    pub state: HazardState,
    pub grade: Grade,
    pub category: String,
    pub title: String,
    pub description: Option<String>,
    pub location: Location,
    pub source_fact_id: Option<FactId>,
    pub reporter: UserId,
    pub reported_at: Timestamp,
    pub assignee: Option<UserId>,
    pub assigned_at: Option<Timestamp>,
    pub due_at: Timestamp,
    /// Whether `due_at` was set by an assign or an approved extension (else: the default
    /// for the grade, which follows a grade edit).
    pub due_explicit: bool,
    pub plan: Option<RectificationPlan>,
    pub extension: Option<ExtensionRequest>,
    /// Who submitted the last fix, and when.
    pub fixed_by: Option<UserId>,
    pub fixed_at: Option<Timestamp>,
    pub verified_by: Option<UserId>,
    pub closed_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    /// Failed verifications plus reopenings.
    pub reopen_count: u32,
    /// Every event, accepted or rejected, in HLC order. Never empty on a ticket (its report
    /// is in it); absent where a list leaves timelines out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
}

impl Ticket {
    /// Overdue is derived: past the due date and neither closed nor cancelled.
    pub fn is_overdue(&self, now: i64) -> bool {
        self.state.is_open() && now > self.due_at.0
    }

    /// Events rejected at their place.
    pub fn rejected(&self) -> impl Iterator<Item = &TimelineEntry> {
        self.timeline
            .iter()
            .filter(|e| e.status == EventStatus::Rejected)
    }

    /// The timeline entry of one event.
    pub fn entry(&self, id: FactId) -> Option<&TimelineEntry> {
        self.timeline.iter().find(|e| e.event_id == id)
    }
}
