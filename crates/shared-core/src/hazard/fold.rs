//! The fold: a hazard's events in HLC order, through the state machine of DESIGN §7.
//!
//! Each event is judged at its place in the order `(hlc, device_id, id)`, against the ticket
//! as the events before it left it. The checks run in a fixed order and the first that fails
//! names the rejection: role, state, assignee, plan, evidence, self-verification, due date.
//! A rejected event is kept in the timeline and changes nothing else.

use super::{
    Action, EventBody, EventInput, EventStatus, ExtensionRequest, HazardPolicy, HazardState,
    PhotoRole, Ticket, TimelineEntry,
};
use crate::ids::FactId;
use crate::roles::Role;
use crate::validate::Rejection;
use crate::wire::{RejectCode, Timestamp};
use std::collections::BTreeMap;

const ALL_ROLES: &[Role] = &[
    Role::Guard,
    Role::Engineer,
    Role::Supervisor,
    Role::Manager,
    Role::Admin,
];
const OVERSIGHT: &[Role] = &[Role::Supervisor, Role::Manager, Role::Admin];
const ENGINEER: &[Role] = &[Role::Engineer];
const PLANNERS: &[Role] = &[Role::Engineer, Role::Supervisor, Role::Manager, Role::Admin];
const MANAGEMENT: &[Role] = &[Role::Manager, Role::Admin];

/// Roles that may take an action (before the assignee and evidence rules).
pub fn allowed_roles(action: Action) -> &'static [Role] {
    match action {
        Action::Report | Action::Comment => ALL_ROLES,
        Action::Edit
        | Action::Assign
        | Action::ApproveExtension
        | Action::DenyExtension
        | Action::VerifyPass
        | Action::VerifyFail
        | Action::Cancel => OVERSIGHT,
        Action::Start | Action::RequestExtension | Action::SubmitFix => ENGINEER,
        Action::Plan => PLANNERS,
        Action::Reopen => MANAGEMENT,
    }
}

/// Folds a hazard's events (any order) into its ticket; `None` while no report is accepted.
pub fn fold(events: &[EventInput], policy: &HazardPolicy) -> Option<Ticket> {
    let mut ticket: Option<Ticket> = None;
    // Entries of events judged before the ticket existed; they open its timeline.
    let mut before: Vec<TimelineEntry> = Vec::new();

    for ev in ordered(events) {
        let action = ev.body.action();
        let (status, code, reason, state_after) = match ticket.as_mut() {
            None => match open_ticket(ev, policy) {
                Ok(t) => {
                    ticket = Some(t);
                    (EventStatus::Accepted, None, None, HazardState::Reported)
                }
                // There is no state yet; `reported` is the state a ticket starts in.
                Err(r) => (
                    EventStatus::Rejected,
                    Some(r.code),
                    Some(r.message),
                    HazardState::Reported,
                ),
            },
            Some(t) => match judge(t, ev) {
                Ok(()) => {
                    apply(t, ev, policy);
                    (EventStatus::Accepted, None, None, t.state)
                }
                Err(r) => (
                    EventStatus::Rejected,
                    Some(r.code),
                    Some(r.message),
                    t.state,
                ),
            },
        };
        let entry = TimelineEntry {
            event_id: ev.id,
            hlc: ev.hlc,
            device_id: ev.device_id,
            actor: ev.actor,
            action,
            at: Timestamp(ev.at),
            status,
            code,
            reason,
            state_after,
            data: ev.data.clone(),
            photos: ev.photos.clone(),
        };
        match ticket.as_mut() {
            Some(t) => {
                if !before.is_empty() {
                    t.timeline.append(&mut before);
                }
                t.timeline.push(entry);
            }
            None => before.push(entry),
        }
    }
    ticket
}

/// `YH-20261122-0007`: the estate-local date the server first stored the ticket, and the
/// ticket's number that day in that estate.
pub fn ticket_code(date: chrono::NaiveDate, n: u32) -> String {
    format!("YH-{}-{:04}", date.format("%Y%m%d"), n)
}

/// The events in fold order, each id once. Two events with the same id are one fact sent
/// twice; the copy first in fold order is kept (and, should two copies differ yet tie in
/// order, a fixed choice among them, so the input order still never matters).
fn ordered(events: &[EventInput]) -> Vec<&EventInput> {
    let mut by_id: BTreeMap<FactId, &EventInput> = BTreeMap::new();
    for ev in events {
        by_id
            .entry(ev.id)
            .and_modify(|kept| {
                if first_copy(ev, kept) {
                    *kept = ev;
                }
            })
            .or_insert(ev);
    }
    let mut out: Vec<&EventInput> = by_id.into_values().collect();
    out.sort_by_key(|e| e.order());
    out
}

/// Whether `a` comes before `b`, two events with the same id.
fn first_copy(a: &EventInput, b: &EventInput) -> bool {
    match a.order().cmp(&b.order()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => a != b && format!("{a:?}") < format!("{b:?}"),
    }
}

fn reject(code: RejectCode, msg: impl Into<String>) -> Rejection {
    Rejection::new(code, msg)
}

fn has_photo(ev: &EventInput, role: PhotoRole) -> bool {
    ev.photos.iter().any(|p| p.role == role)
}

fn role_allowed(ev: &EventInput, action: Action) -> bool {
    let allowed = allowed_roles(action);
    ev.roles.iter().any(|r| allowed.contains(r))
}

fn role_message(action: Action) -> String {
    let names: Vec<&str> = allowed_roles(action).iter().map(|r| r.as_str()).collect();
    format!(
        "Your role may not {} a hazard; that takes one of: {}.",
        action_phrase(action),
        names.join(", ")
    )
}

fn action_phrase(action: Action) -> &'static str {
    match action {
        Action::Report => "report",
        Action::Edit => "edit",
        Action::Assign => "assign",
        Action::Start => "start rectifying",
        Action::Plan => "set the rectification plan of",
        Action::RequestExtension => "ask for more time on",
        Action::ApproveExtension => "approve more time on",
        Action::DenyExtension => "refuse more time on",
        Action::SubmitFix => "submit a fix for",
        Action::VerifyPass => "pass the verification of",
        Action::VerifyFail => "fail the verification of",
        Action::Cancel => "cancel",
        Action::Reopen => "reopen",
        Action::Comment => "comment on",
    }
}

/// A report before any ticket: it creates the ticket, or is rejected.
/// Why a report would not open its ticket (role, evidence, shape), or `None` if it would.
/// The fold gives no ticket, and so no timeline, for a refused report: this names the
/// reason, for answering the one who sent it.
pub fn report_rejection(ev: &EventInput, policy: &HazardPolicy) -> Option<Rejection> {
    open_ticket(ev, policy).err()
}

fn open_ticket(ev: &EventInput, policy: &HazardPolicy) -> Result<Ticket, Rejection> {
    let EventBody::Report {
        grade,
        category,
        title,
        description,
        location,
        source_fact_id,
        plan,
    } = &ev.body
    else {
        return Err(reject(
            RejectCode::NotReported,
            format!(
                "The hazard has not been reported yet at this point, so it cannot take \"{}\".",
                ev.body.action().as_str()
            ),
        ));
    };
    if !role_allowed(ev, Action::Report) {
        return Err(reject(
            RejectCode::RoleForbidden,
            role_message(Action::Report),
        ));
    }
    if policy.require_before_photo && !has_photo(ev, PhotoRole::Before) {
        return Err(reject(
            RejectCode::EvidenceRequired,
            "A report needs a \"before\" photo of the hazard.",
        ));
    }
    Ok(Ticket {
        id: ev.hazard_id,
        code: String::new(),
        estate_id: ev.estate_id,
        state: HazardState::Reported,
        grade: *grade,
        category: category.clone(),
        title: title.clone(),
        description: description.clone(),
        location: location.clone(),
        source_fact_id: *source_fact_id,
        reporter: ev.actor,
        reported_at: Timestamp(ev.at),
        assignee: None,
        assigned_at: None,
        due_at: Timestamp(ev.at.saturating_add(policy.default_due_ms(*grade))),
        due_explicit: false,
        plan: plan.clone(),
        extension: None,
        fixed_by: None,
        fixed_at: None,
        verified_by: None,
        closed_at: None,
        cancelled_at: None,
        cancel_reason: None,
        reopen_count: 0,
        timeline: Vec::new(),
    })
}

/// Whether `action` may be taken in `state` (the state machine of DESIGN §7).
fn state_allows(action: Action, state: HazardState) -> bool {
    use HazardState::*;
    match action {
        Action::Report => false,
        Action::Edit => state.is_open(),
        Action::Assign => matches!(
            state,
            Reported | Assigned | InRectification | ExtensionRequested
        ),
        Action::Start => state == Assigned,
        Action::Plan => state.is_open() && state != PendingVerification,
        Action::RequestExtension | Action::SubmitFix => state == InRectification,
        Action::ApproveExtension | Action::DenyExtension => state == ExtensionRequested,
        Action::VerifyPass | Action::VerifyFail => state == PendingVerification,
        Action::Cancel => state == Reported,
        Action::Reopen => state == Closed,
        Action::Comment => true,
    }
}

/// Judges an event against the ticket as the events before it left it.
fn judge(t: &Ticket, ev: &EventInput) -> Result<(), Rejection> {
    let action = ev.body.action();

    if action == Action::Report {
        return Err(reject(
            RejectCode::AlreadyReported,
            "The hazard was already reported; a second report changes nothing.",
        ));
    }
    if ev.hazard_id != t.id {
        return Err(reject(
            RejectCode::InvalidValue,
            format!("The event is for hazard {}, not {}.", ev.hazard_id, t.id),
        ));
    }
    if ev.estate_id != t.estate_id {
        return Err(reject(
            RejectCode::InvalidValue,
            format!(
                "The event names estate {}, but the hazard belongs to estate {}.",
                ev.estate_id, t.estate_id
            ),
        ));
    }

    // 1. Role. The reporter may correct their own report until it is assigned.
    let reporter_edit =
        action == Action::Edit && ev.actor == t.reporter && t.state == HazardState::Reported;
    if !reporter_edit && !role_allowed(ev, action) {
        return Err(reject(RejectCode::RoleForbidden, role_message(action)));
    }

    // 2. State.
    if !state_allows(action, t.state) {
        return Err(reject(
            RejectCode::InvalidTransition,
            format!(
                "A hazard that is {} cannot take \"{}\".",
                t.state.as_str().replace('_', " "),
                action.as_str()
            ),
        ));
    }

    // 3. Assignee.
    if matches!(
        action,
        Action::Start | Action::RequestExtension | Action::SubmitFix
    ) && t.assignee != Some(ev.actor)
    {
        return Err(reject(
            RejectCode::NotAssignee,
            format!(
                "Only the engineer the hazard is assigned to may {} it.",
                action_phrase(action)
            ),
        ));
    }

    // 4. Plan.
    if action == Action::Start && t.grade == super::Grade::Major && t.plan.is_none() {
        return Err(reject(
            RejectCode::PlanRequired,
            "A major hazard needs its rectification plan before rectification starts.",
        ));
    }

    // 5. Evidence.
    let needed = match action {
        Action::SubmitFix => Some(PhotoRole::After),
        Action::VerifyPass => Some(PhotoRole::Verification),
        _ => None,
    };
    if let Some(role) = needed {
        if !has_photo(ev, role) {
            return Err(reject(
                RejectCode::EvidenceRequired,
                format!(
                    "To {} a hazard needs a \"{}\" photo.",
                    action_phrase(action),
                    role.as_str()
                ),
            ));
        }
    }

    // 6. Self-verification.
    if matches!(action, Action::VerifyPass | Action::VerifyFail) && t.fixed_by == Some(ev.actor) {
        return Err(reject(
            RejectCode::SelfVerification,
            "The person who submitted the fix may not verify it.",
        ));
    }

    // 7. Due dates.
    let at = ev.at;
    match &ev.body {
        EventBody::Assign {
            due_at: Some(due), ..
        } if due.0 <= at => {
            return Err(reject(
                RejectCode::DueInPast,
                "The due date must be after the time of the assignment.",
            ))
        }
        EventBody::RequestExtension { due_at, .. } if due_at.0 <= at || due_at.0 <= t.due_at.0 => {
            return Err(reject(
                RejectCode::DueInPast,
                "An extension must ask for a date after both now and the current due date.",
            ))
        }
        EventBody::ApproveExtension { due_at } => {
            let due = due_at.or(t.extension.as_ref().map(|x| x.due_at));
            let in_past = match due {
                Some(d) => d.0 <= at,
                None => true,
            };
            if in_past {
                return Err(reject(
                    RejectCode::DueInPast,
                    "The approved due date must be after the time of the approval.",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Applies an accepted event.
fn apply(t: &mut Ticket, ev: &EventInput, policy: &HazardPolicy) {
    let at = Timestamp(ev.at);
    match &ev.body {
        EventBody::Report { .. } => {}
        EventBody::Edit {
            grade,
            category,
            title,
            description,
            location,
        } => {
            if let Some(g) = grade {
                t.grade = *g;
                if !t.due_explicit {
                    t.due_at = Timestamp(t.reported_at.0.saturating_add(policy.default_due_ms(*g)));
                }
            }
            if let Some(c) = category {
                t.category = c.clone();
            }
            if let Some(x) = title {
                t.title = x.clone();
            }
            if let Some(d) = description {
                t.description = Some(d.clone());
            }
            if let Some(l) = location {
                t.location = l.clone();
            }
        }
        EventBody::Assign { assignee, due_at } => {
            if t.state == HazardState::Reported {
                t.state = HazardState::Assigned;
            }
            t.assignee = Some(*assignee);
            t.assigned_at = Some(at);
            if let Some(d) = due_at {
                t.due_at = *d;
                t.due_explicit = true;
            }
        }
        EventBody::Start => t.state = HazardState::InRectification,
        EventBody::Plan(p) => t.plan = Some(p.clone()),
        EventBody::RequestExtension { due_at, reason } => {
            t.state = HazardState::ExtensionRequested;
            t.extension = Some(ExtensionRequest {
                due_at: *due_at,
                reason: reason.clone(),
                requested_by: ev.actor,
            });
        }
        EventBody::ApproveExtension { due_at } => {
            if let Some(d) = due_at.or(t.extension.as_ref().map(|x| x.due_at)) {
                t.due_at = d;
            }
            t.due_explicit = true;
            t.extension = None;
            t.state = HazardState::InRectification;
        }
        EventBody::DenyExtension { .. } => {
            t.extension = None;
            t.state = HazardState::InRectification;
        }
        EventBody::SubmitFix { .. } => {
            t.state = HazardState::PendingVerification;
            t.fixed_by = Some(ev.actor);
            t.fixed_at = Some(at);
        }
        EventBody::VerifyPass { .. } => {
            t.state = HazardState::Closed;
            t.verified_by = Some(ev.actor);
            t.closed_at = Some(at);
        }
        EventBody::VerifyFail { .. } => {
            t.state = HazardState::InRectification;
            t.reopen_count += 1;
        }
        EventBody::Cancel { reason } => {
            t.state = HazardState::Cancelled;
            t.cancelled_at = Some(at);
            t.cancel_reason = Some(reason.clone());
        }
        EventBody::Reopen { .. } => {
            t.state = HazardState::InRectification;
            t.reopen_count += 1;
            t.closed_at = None;
            t.verified_by = None;
        }
        EventBody::Comment { .. } => {}
    }
}
