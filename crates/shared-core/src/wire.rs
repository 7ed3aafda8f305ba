//! Wire types of the v1 contract (docs/PROTOCOL.md). Timestamps are RFC 3339 strings on the
//! wire and epoch milliseconds inside.

use crate::fact::{ClockTrust, FactKind, Flag};
use crate::hlc::Hlc;
use crate::ids::{BatchId, DeviceId, EstateId, FactId, UserId};
use crate::roles::Role;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Epoch milliseconds, written as an RFC 3339 UTC string with milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }

    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => self.0.to_string(),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(
                "expected an RFC 3339 timestamp such as 2026-11-22T01:30:00.000Z",
            )
        })
    }
}

// ---------------------------------------------------------------- auth

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// The handset's own id for itself (a UUID it generated once).
    pub id: DeviceId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub app_version: Option<String>,
}

#[derive(Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub device: DeviceInfo,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("device", &self.device)
            .finish()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: UserId,
    pub username: String,
    pub name: String,
    /// Every role the user holds in any estate; per-estate roles are in `estates`.
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EstateMembership {
    pub id: EstateId,
    pub name: String,
    /// IANA time zone of the estate, e.g. `Asia/Shanghai`.
    pub timezone: String,
    pub roles: Vec<Role>,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// Opaque; rotates on every use. Reusing a rotated one revokes the device's session.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserInfo,
    pub estates: Vec<EstateMembership>,
    pub hlc: Hlc,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeResponse {
    pub user: UserInfo,
    pub estates: Vec<EstateMembership>,
    pub device_id: DeviceId,
    pub hlc: Hlc,
}

// ---------------------------------------------------------------- push

/// One change as a handset sends it. The server reads each change on its own, so a bad one
/// is rejected alone and never blocks the others in its batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeEnvelope {
    pub kind: FactKind,
    /// Client-generated UUIDv7.
    pub id: FactId,
    /// The device's own counter, from 1, one per fact.
    pub seq: u64,
    pub hlc: Hlc,
    /// Handset wall clock when the fact was recorded.
    pub recorded_at: Timestamp,
    /// Handset monotonic age of the fact at send time; omit after a reboot.
    #[serde(default)]
    pub age_ms: Option<i64>,
    /// Kind-specific payload; must carry `estate_id`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushRequest {
    pub device_id: DeviceId,
    pub batch_id: BatchId,
    /// Handset wall clock when the batch was sent.
    pub sent_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ChangeEnvelope>))]
    pub changes: Vec<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Accepted,
    Duplicate,
    Rejected,
}

/// Stable codes for a rejected change (docs/PROTOCOL.md lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The change is not a JSON object.
    NotAnObject,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// `kind` is not one the server knows.
    UnknownKind,
    /// `id` is not a UUIDv7.
    InvalidId,
    /// `seq` is not a whole number from 1 to 2^53.
    InvalidSeq,
    /// `hlc` is not `"<13-digit ms>-<4 hex>"`.
    InvalidHlc,
    /// `recorded_at` is not an RFC 3339 timestamp.
    InvalidTimestamp,
    /// `age_ms` is negative or absurd.
    InvalidAge,
    /// `data.estate_id` is not an estate the caller belongs to.
    UnknownEstate,
    /// A string in `data` contains a NUL character, which no backend can store as text.
    InvalidText,
    /// The same `id` was already stored with different content.
    IdConflict,
    /// A field holds a value outside what it allows (an unknown action or grade, an empty
    /// title, ...).
    InvalidValue,
    /// Hazard events: kept in the ticket's timeline, marked rejected, changing nothing.
    /// The action is not allowed in the ticket's state at the event's place in HLC order.
    InvalidTransition,
    /// The actor's role in the estate may not take this action.
    RoleForbidden,
    /// Only the ticket's assignee may take this action.
    NotAssignee,
    /// A photo the action needs (before, after, verification) is not attached.
    EvidenceRequired,
    /// The person who submitted the fix may not verify it.
    SelfVerification,
    /// A major hazard needs its rectification plan before rectification starts.
    PlanRequired,
    /// A due date at or before the event's time (or, for an extension, not after the
    /// current due date).
    DueInPast,
    /// The hazard was already reported: a second `report` for the same hazard id.
    AlreadyReported,
    /// The event comes before the hazard's report in HLC order.
    NotReported,
    /// The assignee is not an engineer of the estate.
    UnknownAssignee,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::MissingField => "missing_field",
            RejectCode::WrongType => "wrong_type",
            RejectCode::UnknownKind => "unknown_kind",
            RejectCode::InvalidId => "invalid_id",
            RejectCode::InvalidSeq => "invalid_seq",
            RejectCode::InvalidHlc => "invalid_hlc",
            RejectCode::InvalidTimestamp => "invalid_timestamp",
            RejectCode::InvalidAge => "invalid_age",
            RejectCode::UnknownEstate => "unknown_estate",
            RejectCode::InvalidText => "invalid_text",
            RejectCode::IdConflict => "id_conflict",
            RejectCode::InvalidValue => "invalid_value",
            RejectCode::InvalidTransition => "invalid_transition",
            RejectCode::RoleForbidden => "role_forbidden",
            RejectCode::NotAssignee => "not_assignee",
            RejectCode::EvidenceRequired => "evidence_required",
            RejectCode::SelfVerification => "self_verification",
            RejectCode::PlanRequired => "plan_required",
            RejectCode::DueInPast => "due_in_past",
            RejectCode::AlreadyReported => "already_reported",
            RejectCode::NotReported => "not_reported",
            RejectCode::UnknownAssignee => "unknown_assignee",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeResult {
    /// Position of the change in the batch, from 0: matches a result to a change even when
    /// the change had no readable id.
    pub index: usize,
    /// The change's `id` as sent, when it had one.
    pub id: Option<String>,
    pub status: ChangeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RejectCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    pub batch_id: BatchId,
    pub results: Vec<ChangeResult>,
    /// The highest N such that the server holds every fact of this device with seq ≤ N
    /// (accepted, or rejected and kept in quarantine): the handset may purge exactly those.
    pub acked_through_seq: u64,
    /// Photo hashes whose bytes the server still needs.
    pub photos_missing: Vec<String>,
    pub hlc: Hlc,
}

// ---------------------------------------------------------------- pull

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Put,
    Delete,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullChange {
    /// `estates` or `facts` (later: hazard tickets, patrol runs, ...).
    pub collection: String,
    pub op: ChangeOp,
    pub id: String,
    /// The record (absent for a delete).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    pub changes: Vec<PullChange>,
    /// Opaque; pass it back to continue. Bound to the caller's scope.
    pub cursor: String,
    pub has_more: bool,
    pub hlc: Hlc,
}

/// An estate as it reaches handsets (collection `estates`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EstateRecord {
    pub id: EstateId,
    pub name: String,
    pub timezone: String,
}

/// A stored fact with the server's annotations (collection `facts`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactRecord {
    pub id: FactId,
    pub kind: FactKind,
    pub estate_id: EstateId,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub batch_id: BatchId,
    pub seq: u64,
    /// The HLC the fold uses: the handset's, or the server's when it was clamped.
    pub hlc: Hlc,
    /// The handset's HLC when it was clamped (`clock_ahead`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc_sent: Option<Hlc>,
    pub recorded_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<i64>,
    pub sent_at: Timestamp,
    pub received_at: Timestamp,
    pub trusted_at: Timestamp,
    pub clock_trust: ClockTrust,
    pub flags: Vec<Flag>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
}

// ---------------------------------------------------------------- admin

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineEntry {
    pub id: i64,
    pub received_at: Timestamp,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub batch_id: BatchId,
    pub index: usize,
    /// The change's `id` as sent, when it had one.
    pub change_id: Option<String>,
    pub code: RejectCode,
    pub message: String,
    /// The change exactly as it arrived.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub raw: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinePage {
    pub entries: Vec<QuarantineEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEstate {
    pub name: String,
    /// IANA time zone; defaults to `Asia/Shanghai`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A handset's sync health, for supervisors and managers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceStatus {
    pub id: DeviceId,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub app_version: Option<String>,
    /// Who used it last (devices are often shared between shifts).
    pub last_user_id: Option<UserId>,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Every change with seq up to this is held by the server.
    pub acked_through_seq: u64,
    /// The highest seq received.
    pub max_seq: u64,
    /// Seqs between the ack and `max_seq` that never arrived: facts still on the handset,
    /// or lost. Non-zero means a gap.
    pub missing_seqs: u64,
    /// Server clock minus handset clock at its last push.
    pub last_clock_offset_ms: Option<i64>,
    pub revoked: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    pub devices: Vec<DeviceStatus>,
}

/// A member of an estate and the roles they hold there (who can be assigned a ticket).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EstateMember {
    pub id: UserId,
    pub username: String,
    pub name: String,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberList {
    pub members: Vec<EstateMember>,
}

// ---------------------------------------------------------------- alerts

/// An alert the server raised (collection `alerts`): a hazard nearing or past its due date
/// (`hazard_escalation`). It is closed only with a comment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: crate::ids::AlertId,
    pub estate_id: EstateId,
    pub kind: String,
    /// What it is about (a hazard id for `hazard_escalation`).
    pub subject_id: String,
    /// Who it is for: `assignee`, `supervisor` or `manager`.
    pub target: String,
    /// The user it is addressed to, when one person is meant.
    pub recipient_id: Option<UserId>,
    pub raised_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<UserId>,
    pub close_comment: Option<String>,
}
