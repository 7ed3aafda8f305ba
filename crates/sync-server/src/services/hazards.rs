//! Hazard tickets online (DESIGN §7): what an online event means before the store folds
//! it, who may see which ticket, the tracker list's paging key, and the escalation sweep.
//!
//! An event posted online is read exactly like a pushed one (`parse_event`, an assign's
//! assignee must be an engineer of the estate) and folded by the store at once; it is
//! stored only when the fold accepts it, so a refusal is an error answer, not a timeline
//! entry.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError};
use crate::http::AppState;
use crate::storage::{
    ChangeHub, DynStore, HazardQuery, NewAlert, OnlineEvent, OnlineOutcome, StoreResult,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shared_core::hazard::{
    escalations_due, parse_event, EscalationTarget, EventBody, EventInput, HazardPolicy, PhotoRef,
    PhotoRole, Ticket,
};
use shared_core::wire::{RejectCode, Timestamp};
use shared_core::{AlertId, EstateId, FactId, HazardId, Role};
use std::collections::{HashMap, HashSet};

/// At most this many photos on one event.
pub const MAX_PHOTOS: usize = 50;

/// Alert kind raised by the escalation sweep.
pub const ESCALATION_KIND: &str = "hazard_escalation";

// ---------------------------------------------------------------- who sees what

/// The caller's roles in an active estate (empty when not a member or it is retired).
pub fn roles_in(caller: &Caller, estate: EstateId) -> Vec<Role> {
    if !caller.active.contains(&estate) {
        return Vec::new();
    }
    caller
        .scope
        .roles
        .get(&estate)
        .map(|r| r.iter().copied().collect())
        .unwrap_or_default()
}

/// Oversees the estate: supervisor, manager or admin.
pub fn oversees(caller: &Caller, estate: EstateId) -> bool {
    roles_in(caller, estate).iter().any(|r| r.oversees())
}

/// Whether the caller may see a ticket: overseers of its estate see every ticket, engineers
/// those assigned to them and every open one, anyone the tickets they reported.
pub fn may_view(caller: &Caller, t: &Ticket) -> bool {
    let roles = roles_in(caller, t.estate_id);
    if roles.is_empty() {
        return false;
    }
    if roles.iter().any(|r| r.oversees()) {
        return true;
    }
    if roles.contains(&Role::Engineer) && (t.assignee == Some(caller.user_id) || t.state.is_open())
    {
        return true;
    }
    t.reporter == caller.user_id
}

/// The list's scope over `estates` (all active estates of the caller): every ticket where
/// the caller oversees, assigned-or-open where an engineer, own reports elsewhere.
pub fn list_scope(caller: &Caller, estates: &[EstateId]) -> HazardQuery {
    let mut q = HazardQuery {
        user_id: Some(caller.user_id),
        ..HazardQuery::default()
    };
    for e in estates {
        let roles = roles_in(caller, *e);
        if roles.iter().any(|r| r.oversees()) {
            q.full.push(*e);
        } else if roles.contains(&Role::Engineer) {
            q.engineer.push(*e);
        } else if !roles.is_empty() {
            q.reporter.push(*e);
        }
    }
    q
}

// ---------------------------------------------------------------- paging key

/// The tracker list's `next_before`: `<reported_at ms>_<hazard id>`.
pub fn encode_before(reported_at: i64, id: HazardId) -> String {
    format!("{reported_at}_{id}")
}

pub fn decode_before(s: &str) -> Option<(i64, HazardId)> {
    let (ms, id) = s.split_once('_')?;
    if ms.is_empty()
        || !ms
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
    {
        return None;
    }
    let ms: i64 = ms.parse().ok()?;
    let id: HazardId = id.parse().ok()?;
    Some((ms, id))
}

// ---------------------------------------------------------------- online events

/// A photo's metadata sent with an online event (the bytes go to `PUT /v1/photos/{sha256}`).
#[derive(Clone, Debug, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoIn {
    /// The photo fact's id (UUIDv7); generated when absent.
    pub id: Option<FactId>,
    /// SHA-256 of the bytes, 64 hex digits.
    pub sha256: String,
    pub role: PhotoRole,
    pub bytes: Option<u64>,
    pub mime: Option<String>,
}

/// What an online event body holds beside the event's own fields.
#[derive(Debug)]
pub struct OnlineBody {
    pub id: Option<FactId>,
    pub photos: Vec<PhotoIn>,
    /// The event's fields: becomes its `data`.
    pub data: Map<String, Value>,
}

fn invalid(path: &str, message: impl Into<String>) -> AppError {
    AppError::Validation(vec![FieldError {
        path: path.into(),
        message: message.into(),
    }])
}

/// Splits a request body into the event id, the photos and the event's fields.
pub fn split_body(body: Value) -> AppResult<OnlineBody> {
    let Value::Object(mut data) = body else {
        return Err(invalid("", "the body must be a JSON object"));
    };
    let id = match data.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match uuid::Uuid::parse_str(&s) {
            Ok(u) if u.get_version_num() == 7 => Some(FactId(u)),
            _ => return Err(invalid("id", format!("{s:?} is not a UUIDv7"))),
        },
        Some(_) => return Err(invalid("id", "must be a string (a UUIDv7)")),
    };
    let photos = match data.remove("photos") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => read_photos(v)?,
    };
    Ok(OnlineBody { id, photos, data })
}

fn read_photos(v: Value) -> AppResult<Vec<PhotoIn>> {
    let photos: Vec<PhotoIn> = serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            "photos".to_owned()
        } else if inner.starts_with('[') {
            format!("photos{inner}")
        } else {
            format!("photos.{inner}")
        };
        let msg = e.into_inner().to_string();
        if let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            return invalid(&format!("{path}.{name}"), "required");
        }
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_owned(),
            None => msg,
        };
        invalid(&path, msg)
    })?;
    if photos.len() > MAX_PHOTOS {
        return Err(invalid("photos", format!("at most {MAX_PHOTOS} photos")));
    }
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    for (i, p) in photos.iter().enumerate() {
        if !is_sha256(&p.sha256) {
            errors.push(FieldError {
                path: format!("photos[{i}].sha256"),
                message: "must be 64 hex digits (the SHA-256 of the bytes)".into(),
            });
        }
        if let Some(id) = p.id {
            if !ids.insert(id) {
                errors.push(FieldError {
                    path: format!("photos[{i}].id"),
                    message: "appears twice".into(),
                });
            }
        }
        if p.mime
            .as_deref()
            .is_some_and(|m| m.contains('\0') || m.len() > 200)
        {
            errors.push(FieldError {
                path: format!("photos[{i}].mime"),
                message: "must be a media type such as image/jpeg".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(photos)
    } else {
        Err(AppError::Validation(errors))
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// JSON with object keys sorted at every level: the same content always serialises the
/// same, whatever order the keys came in.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

/// The content hash of an online event: its `data` and its photos as sent (hashes
/// lower-cased; generated photo ids left out, so a retry matches).
pub fn online_content_hash(data: &Value, photos: &[PhotoIn]) -> String {
    let photos: Vec<Value> = photos
        .iter()
        .map(|p| {
            json!({
                "id": p.id.map(|i| i.to_string()),
                "sha256": p.sha256.to_ascii_lowercase(),
                "role": p.role.as_str(),
                "bytes": p.bytes,
                "mime": p.mime,
            })
        })
        .collect();
    let canonical = canonical_json(&json!(["online", data, photos]));
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The path of the first string (key or value) holding a NUL character, if any.
fn find_nul(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_nul(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = format!("{path}.{}", k.replace('\0', "\\u0000"));
            if k.contains('\0') {
                Some(p)
            } else {
                find_nul(x, &p)
            }
        }),
        _ => None,
    }
}

fn rejected(code: RejectCode, message: impl Into<String>) -> AppError {
    AppError::HazardRejected {
        code,
        message: message.into(),
    }
}

/// What posting an event came to.
#[derive(Debug)]
pub enum Posted {
    /// Stored now: the ticket after it.
    Created(Ticket),
    /// The same event was already stored: the ticket as it is.
    Duplicate(Ticket),
}

/// Reports a hazard online (`POST /v1/hazards`): the body is a report's `data` with
/// `estate_id`, and optionally `hazard_id`, the event `id` and `photos`.
pub async fn report(state: &AppState, caller: &Caller, body: Value) -> AppResult<Posted> {
    let OnlineBody {
        id,
        photos,
        mut data,
    } = split_body(body)?;
    let estate: EstateId = match data.get("estate_id") {
        None | Some(Value::Null) => return Err(invalid("estate_id", "required")),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| invalid("estate_id", format!("{s:?} is not an estate id")))?,
        Some(_) => return Err(invalid("estate_id", "must be a string (an estate id)")),
    };
    if !caller.may_push_to(estate) {
        return Err(AppError::NotFound);
    }
    match data.get("action") {
        None | Some(Value::Null) => {}
        Some(Value::String(a)) if a == "report" => {}
        Some(_) => {
            return Err(invalid(
                "action",
                "must be \"report\" (or absent); post other actions to /v1/hazards/{id}/events",
            ))
        }
    }
    let event_id = id.unwrap_or_else(FactId::new_v7);
    data.insert("action".into(), json!("report"));
    if matches!(data.get("hazard_id"), None | Some(Value::Null)) {
        // The event id names the new hazard: a retry with the same event id reports the
        // same hazard.
        data.insert("hazard_id".into(), json!(event_id.to_string()));
    }
    post(state, caller, estate, event_id, data, photos).await
}

/// Posts any action on a stored ticket (`POST /v1/hazards/{id}/events`). The ticket must
/// exist and be one the caller may see ([`may_view`]; else 404, as for reading it): the
/// answer is the ticket.
pub async fn post_event(
    state: &AppState,
    caller: &Caller,
    hazard: HazardId,
    body: Value,
) -> AppResult<Posted> {
    let ticket = state
        .store
        .get_hazard(hazard)
        .await?
        .ok_or(AppError::NotFound)?;
    let estate = ticket.estate_id;
    if !caller.may_push_to(estate) || !may_view(caller, &ticket) {
        return Err(AppError::NotFound);
    }
    let OnlineBody {
        id,
        photos,
        mut data,
    } = split_body(body)?;
    let mut errors = Vec::new();
    for (name, want) in [
        ("hazard_id", hazard.to_string()),
        ("estate_id", estate.to_string()),
    ] {
        match data.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.parse::<uuid::Uuid>().ok() == want.parse().ok() => {}
            Some(_) => errors.push(FieldError {
                path: name.into(),
                message: format!("must be {want} (the ticket's), or absent"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    data.insert("hazard_id".into(), json!(hazard.to_string()));
    data.insert("estate_id".into(), json!(estate.to_string()));
    let event_id = id.unwrap_or_else(FactId::new_v7);
    post(state, caller, estate, event_id, data, photos).await
}

/// Reads the event like a push would, then lets the store fold it in.
async fn post(
    state: &AppState,
    caller: &Caller,
    estate: EstateId,
    event_id: FactId,
    data: Map<String, Value>,
    photos: Vec<PhotoIn>,
) -> AppResult<Posted> {
    let data = Value::Object(data);
    if let Some(path) = find_nul(&data, "data") {
        return Err(rejected(
            RejectCode::InvalidText,
            format!("{path}: text must not contain NUL characters"),
        ));
    }
    let parsed = parse_event(&data).map_err(|r| rejected(r.code, r.message))?;
    if let EventBody::Assign { assignee, .. } = &parsed.body {
        if !state
            .store
            .has_role(*assignee, estate, Role::Engineer)
            .await?
        {
            return Err(rejected(
                RejectCode::UnknownAssignee,
                format!("data.assignee: {assignee} is not an engineer of this estate"),
            ));
        }
    }
    let content_hash = online_content_hash(&data, &photos);
    let refs: Vec<PhotoRef> = photos
        .iter()
        .map(|p| PhotoRef {
            id: p.id.unwrap_or_else(FactId::new_v7),
            role: p.role,
            sha256: p.sha256.to_ascii_lowercase(),
            received: false,
        })
        .collect();
    let now = now_ms();
    let input = EventInput {
        id: event_id,
        hazard_id: parsed.hazard_id,
        estate_id: estate,
        hlc: state.clock.tick(),
        device_id: caller.device_id,
        actor: caller.user_id,
        roles: roles_in(caller, estate),
        at: now,
        body: parsed.body,
        data,
        photos: refs,
    };
    let outcome = state
        .store
        .post_hazard_event(OnlineEvent {
            input,
            content_hash,
            received_at: now,
        })
        .await?;
    match outcome {
        OnlineOutcome::Stored(t) => {
            state.hub.notify(&[t.estate_id]);
            Ok(Posted::Created(t))
        }
        OnlineOutcome::Duplicate(t) => Ok(Posted::Duplicate(t)),
        OnlineOutcome::Rejected { code, message } => Err(rejected(code, message)),
        OnlineOutcome::UnknownHazard => Err(AppError::NotFound),
        OnlineOutcome::IdConflict => Err(rejected(
            RejectCode::IdConflict,
            format!(
                "id: event {event_id} is already stored with different content; \
                 send a new event with a new id"
            ),
        )),
    }
}

// ---------------------------------------------------------------- escalation

/// The alerts the tickets' escalation steps call for at `now` (raising one twice is a
/// no-op: the key is stable per ticket, due date and step).
pub fn escalation_alerts(
    tickets: &[Ticket],
    policies: &HashMap<EstateId, HazardPolicy>,
    now: i64,
) -> Vec<NewAlert> {
    let default = HazardPolicy::default();
    let mut out = Vec::new();
    for t in tickets {
        let policy = policies.get(&t.estate_id).unwrap_or(&default);
        for due in escalations_due(t, policy, now) {
            out.push(NewAlert {
                id: AlertId::new_v7(),
                estate_id: t.estate_id,
                kind: ESCALATION_KIND.into(),
                subject_id: t.id.to_string(),
                dedupe_key: due.key,
                target: due.to.as_str().into(),
                recipient_id: match due.to {
                    EscalationTarget::Assignee => t.assignee,
                    _ => None,
                },
                raised_at: now,
                data: json!({
                    "code": t.code,
                    "title": t.title,
                    "due_at": Timestamp(t.due_at.0).to_rfc3339(),
                    "at_percent": due.at_percent,
                    "state": t.state.as_str(),
                }),
            });
        }
    }
    out
}

/// One sweep: raises the escalation alerts every open ticket has reached and wakes the
/// estates that got new ones. Returns how many alerts were due (already raised ones
/// included; the store keeps one per key).
pub async fn escalate(store: &DynStore, hub: &ChangeHub, now: i64) -> StoreResult<usize> {
    let tickets = store.open_hazards().await?;
    let mut policies: HashMap<EstateId, HazardPolicy> = HashMap::new();
    for t in &tickets {
        if let std::collections::hash_map::Entry::Vacant(slot) = policies.entry(t.estate_id) {
            slot.insert(store.hazard_policy(t.estate_id).await?);
        }
    }
    let alerts = escalation_alerts(&tickets, &policies, now);
    if alerts.is_empty() {
        return Ok(0);
    }
    let touched = store.raise_alerts(&alerts).await?;
    if !touched.is_empty() {
        hub.notify(&touched);
        tracing::info!(estates = touched.len(), "raised hazard escalation alerts");
    }
    Ok(alerts.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_core::hazard::{Grade, HazardState, Location};
    use shared_core::UserId;

    #[test]
    fn the_paging_key_round_trips_and_refuses_junk() {
        let id: HazardId = "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b".parse().unwrap();
        let s = encode_before(1_732_240_200_123, id);
        assert_eq!(s, "1732240200123_0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
        assert_eq!(decode_before(&s), Some((1_732_240_200_123, id)));
        assert_eq!(decode_before(&encode_before(-5, id)), Some((-5, id)));
        for bad in [
            "",
            "_",
            "123",
            "abc_0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
            "+12_0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
            "12_nope",
            "99999999999999999999_0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
        ] {
            assert_eq!(decode_before(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_content_hash_ignores_key_order_but_not_content() {
        let a = json!({ "action": "comment", "text": "hi", "x": { "b": 1, "a": [1, 2] } });
        let b: Value = serde_json::from_str(
            r#"{ "x": { "a": [1, 2], "b": 1 }, "text": "hi", "action": "comment" }"#,
        )
        .unwrap();
        let photo = |sha: &str| PhotoIn {
            id: None,
            sha256: sha.into(),
            role: PhotoRole::Before,
            bytes: Some(10),
            mime: None,
        };
        let sha = "AB".repeat(32);
        let h = online_content_hash(&a, &[photo(&sha)]);
        assert_eq!(h, online_content_hash(&b, &[photo(&sha.to_lowercase())]));
        assert_eq!(h.len(), 64);
        // Stable across releases: a retry after an upgrade still matches.
        assert_eq!(h, online_content_hash(&a, &[photo(&sha)]));
        assert_ne!(h, online_content_hash(&a, &[]));
        let c = json!({ "action": "comment", "text": "hi!", "x": { "b": 1, "a": [1, 2] } });
        assert_ne!(h, online_content_hash(&c, &[photo(&sha)]));
        assert_eq!(
            canonical_json(&json!({ "b": [ { "d": 1, "c": null } ], "a": "\"q\"" })),
            r#"{"a":"\"q\"","b":[{"c":null,"d":1}]}"#
        );
    }

    #[test]
    fn bodies_split_into_id_photos_and_fields() {
        let b = split_body(json!({
            "id": "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
            "photos": [{ "sha256": "a".repeat(64), "role": "after" }],
            "action": "submit_fix"
        }))
        .unwrap();
        assert!(b.id.is_some());
        assert_eq!(b.photos.len(), 1);
        assert_eq!(b.photos[0].role, PhotoRole::After);
        assert_eq!(b.data.keys().collect::<Vec<_>>(), vec!["action"]);

        let path = |v: Value| match split_body(v).unwrap_err() {
            AppError::Validation(e) => e[0].path.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(path(json!([])), "");
        // A v4 id is not an event id.
        assert_eq!(
            path(json!({ "id": "6ba7b810-9dad-41d1-80b4-00c04fd430c8" })),
            "id"
        );
        assert_eq!(path(json!({ "id": 7 })), "id");
        assert_eq!(
            path(json!({ "photos": [{ "sha256": "xyz", "role": "after" }] })),
            "photos[0].sha256"
        );
        assert_eq!(
            path(json!({ "photos": [{ "sha256": "a".repeat(64), "role": "selfie" }] })),
            "photos[0].role"
        );
        assert_eq!(
            path(json!({ "photos": [{ "role": "after" }] })),
            "photos[0].sha256"
        );
        assert_eq!(path(json!({ "photos": {} })), "photos");
    }

    fn ticket(state: HazardState, assignee: Option<UserId>) -> Ticket {
        Ticket {
            id: HazardId::new_v7(),
            code: "YH-20261122-0001".into(),
            estate_id: EstateId::new_v7(),
            state,
            grade: Grade::General,
            category: "fire".into(),
            title: "Blocked exit".into(),
            description: None,
            location: Location::default(),
            source_fact_id: None,
            reporter: UserId::new_v7(),
            reported_at: Timestamp(0),
            assignee,
            assigned_at: assignee.map(|_| Timestamp(0)),
            due_at: Timestamp(100_000),
            due_explicit: false,
            plan: None,
            extension: None,
            fixed_by: None,
            fixed_at: None,
            verified_by: None,
            closed_at: None,
            cancelled_at: None,
            cancel_reason: None,
            reopen_count: 0,
            timeline: vec![],
        }
    }

    #[test]
    fn escalation_alerts_address_the_assignee_and_dedupe_by_step() {
        let engineer = UserId::new_v7();
        let t = ticket(HazardState::Assigned, Some(engineer));
        let alerts = escalation_alerts(std::slice::from_ref(&t), &HashMap::new(), 100_001);
        // Default policy: 75 % assignee, 100 % supervisor; 150 % not reached yet.
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].target, "assignee");
        assert_eq!(alerts[0].recipient_id, Some(engineer));
        assert_eq!(alerts[1].target, "supervisor");
        assert_eq!(alerts[1].recipient_id, None);
        assert_eq!(alerts[0].kind, ESCALATION_KIND);
        assert_eq!(alerts[0].subject_id, t.id.to_string());
        assert_eq!(alerts[0].data["due_at"], "1970-01-01T00:01:40.000Z");
        assert_eq!(alerts[0].data["at_percent"], 75);
        assert_eq!(alerts[0].data["state"], "assigned");
        assert_ne!(alerts[0].dedupe_key, alerts[1].dedupe_key);
        let again = escalation_alerts(std::slice::from_ref(&t), &HashMap::new(), 100_002);
        assert_eq!(again[0].dedupe_key, alerts[0].dedupe_key);

        let closed = ticket(HazardState::Closed, Some(engineer));
        assert!(escalation_alerts(&[closed], &HashMap::new(), 1_000_000).is_empty());
    }
}
