//! The hazard fold (DESIGN §3, §7): every transition and rejection at its place in HLC
//! order, scenarios from the field, escalation, and property tests that the fold does not
//! depend on the order or batching of its input.

use proptest::prelude::*;
use serde_json::{json, Value};
use shared_core::hazard::{
    allowed_roles, escalations_due, fold, parse_event, Action, EscalationTarget, EventInput,
    EventStatus, Grade, HazardPolicy, HazardState, PhotoRef, PhotoRole, Ticket,
};
use shared_core::hlc::Hlc;
use shared_core::ids::{DeviceId, EstateId, FactId, HazardId, UserId};
use shared_core::roles::Role;
use shared_core::wire::{RejectCode, Timestamp};
use uuid::Uuid;

// ------------------------------------------------------------------ fixtures

/// 2024-11-22T01:30:00Z.
const T0: i64 = 1_732_239_000_000;
const SEC: i64 = 1_000;
const HOUR: i64 = 3_600_000;

fn estate() -> EstateId {
    EstateId(Uuid::from_u128(0xE5))
}
fn other_estate() -> EstateId {
    EstateId(Uuid::from_u128(0xE6))
}
fn hazard() -> HazardId {
    HazardId(Uuid::from_u128(0xAA))
}

/// The people of the estate, each with their roles and their own handset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// The guard who reports.
    Guard,
    Guard2,
    Eng,
    Eng2,
    Sup,
    Mgr,
    Admin,
    /// An engineer who is also a supervisor (small estates): may fix and verify.
    EngSup,
    /// Someone with no role in the estate.
    Nobody,
}

impl Who {
    const ALL: [Who; 9] = [
        Who::Guard,
        Who::Guard2,
        Who::Eng,
        Who::Eng2,
        Who::Sup,
        Who::Mgr,
        Who::Admin,
        Who::EngSup,
        Who::Nobody,
    ];

    fn n(self) -> u128 {
        Who::ALL.iter().position(|w| *w == self).unwrap() as u128 + 1
    }
    fn user(self) -> UserId {
        UserId(Uuid::from_u128(0x100 + self.n()))
    }
    fn device(self) -> DeviceId {
        DeviceId(Uuid::from_u128(0x200 + self.n()))
    }
    fn roles(self) -> Vec<Role> {
        match self {
            Who::Guard | Who::Guard2 => vec![Role::Guard],
            Who::Eng | Who::Eng2 => vec![Role::Engineer],
            Who::Sup => vec![Role::Supervisor],
            Who::Mgr => vec![Role::Manager],
            Who::Admin => vec![Role::Admin],
            Who::EngSup => vec![Role::Engineer, Role::Supervisor],
            Who::Nobody => vec![],
        }
    }
}

fn plan_json() -> Value {
    json!({
        "goal": "No water on the ramp",
        "measures": "Re-lay the drain and add a grille",
        "funds": "¥12,000",
        "owner": "Wang Wei",
        "deadline": "2024-12-01T00:00:00Z"
    })
}

fn rfc(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

/// Event number `n`: HLC `T0 + n s`, trusted time the same, by `who` from their handset,
/// with `data` read by [`parse_event`] (so the fold is fed what the server would feed it).
fn ev(n: u64, who: Who, action: &str, extra: Value) -> EventInput {
    let mut data = json!({
        "hazard_id": hazard().to_string(),
        "estate_id": estate().to_string(),
        "action": action,
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        data[k] = v.clone();
    }
    let parsed = parse_event(&data).unwrap_or_else(|r| panic!("{action}: {}", r.message));
    let ms = T0 + n as i64 * SEC;
    EventInput {
        id: FactId(Uuid::from_u128(0x1000 + u128::from(n))),
        hazard_id: parsed.hazard_id,
        estate_id: estate(),
        hlc: Hlc::new(ms as u64, 0),
        device_id: who.device(),
        actor: who.user(),
        roles: who.roles(),
        at: ms,
        body: parsed.body,
        data,
        photos: vec![],
    }
}

trait EvExt: Sized {
    fn photo(self, role: PhotoRole) -> Self;
    fn id(self, n: u128) -> Self;
    fn hlc(self, ms: i64, counter: u16) -> Self;
    fn device(self, d: DeviceId) -> Self;
    fn at(self, ms: i64) -> Self;
}

impl EvExt for EventInput {
    fn photo(mut self, role: PhotoRole) -> Self {
        let n = self.photos.len() as u128;
        self.photos.push(PhotoRef {
            id: FactId(Uuid::from_u128((self.id.0.as_u128() << 8) + n + 1)),
            role,
            sha256: "ab".repeat(32),
            received: false,
        });
        self
    }
    fn id(mut self, n: u128) -> Self {
        self.id = FactId(Uuid::from_u128(n));
        self
    }
    fn hlc(mut self, ms: i64, counter: u16) -> Self {
        self.hlc = Hlc::new(ms as u64, counter);
        self
    }
    fn device(mut self, d: DeviceId) -> Self {
        self.device_id = d;
        self
    }
    fn at(mut self, ms: i64) -> Self {
        self.at = ms;
        self
    }
}

fn report(n: u64, who: Who, grade: &str) -> EventInput {
    ev(
        n,
        who,
        "report",
        json!({ "grade": grade, "category": "fire safety", "title": "Fire exit blocked" }),
    )
    .photo(PhotoRole::Before)
}
fn report_with_plan(n: u64, who: Who) -> EventInput {
    ev(
        n,
        who,
        "report",
        json!({ "grade": "major", "category": "structure", "title": "Cracked beam", "plan": plan_json() }),
    )
    .photo(PhotoRole::Before)
}
fn assign(n: u64, who: Who, to: Who) -> EventInput {
    ev(
        n,
        who,
        "assign",
        json!({ "assignee": to.user().to_string() }),
    )
}
fn assign_due(n: u64, who: Who, to: Who, due: i64) -> EventInput {
    ev(
        n,
        who,
        "assign",
        json!({ "assignee": to.user().to_string(), "due_at": rfc(due) }),
    )
}
fn start(n: u64, who: Who) -> EventInput {
    ev(n, who, "start", json!({}))
}
fn plan(n: u64, who: Who) -> EventInput {
    ev(n, who, "plan", json!({ "plan": plan_json() }))
}
fn request_ext(n: u64, who: Who, due: i64) -> EventInput {
    ev(
        n,
        who,
        "request_extension",
        json!({ "due_at": rfc(due), "reason": "waiting for parts" }),
    )
}
fn approve_ext(n: u64, who: Who, due: Option<i64>) -> EventInput {
    match due {
        Some(d) => ev(n, who, "approve_extension", json!({ "due_at": rfc(d) })),
        None => ev(n, who, "approve_extension", json!({})),
    }
}
fn deny_ext(n: u64, who: Who) -> EventInput {
    ev(n, who, "deny_extension", json!({ "reason": "not needed" }))
}
fn submit_fix(n: u64, who: Who) -> EventInput {
    ev(n, who, "submit_fix", json!({ "note": "cleared" })).photo(PhotoRole::After)
}
fn verify_pass(n: u64, who: Who) -> EventInput {
    ev(n, who, "verify_pass", json!({})).photo(PhotoRole::Verification)
}
fn verify_fail(n: u64, who: Who) -> EventInput {
    ev(n, who, "verify_fail", json!({ "reason": "still blocked" }))
}
fn cancel(n: u64, who: Who) -> EventInput {
    ev(n, who, "cancel", json!({ "reason": "duplicate report" }))
}
fn reopen(n: u64, who: Who) -> EventInput {
    ev(n, who, "reopen", json!({ "reason": "blocked again" }))
}
fn comment(n: u64, who: Who) -> EventInput {
    ev(n, who, "comment", json!({ "text": "noted" }))
}
fn edit(n: u64, who: Who, fields: Value) -> EventInput {
    ev(n, who, "edit", fields)
}

fn policy() -> HazardPolicy {
    HazardPolicy::default()
}

#[track_caller]
fn folded(events: &[EventInput]) -> Ticket {
    fold(events, &policy()).expect("a ticket")
}

/// Folds `events` and then one more, and says how that last event fared.
#[track_caller]
fn last_status(events: &[EventInput]) -> (Ticket, EventStatus, Option<RejectCode>) {
    let t = folded(events);
    let last = events.last().unwrap().id;
    let e = t.entry(last).expect("the event is in the timeline").clone();
    (t, e.status, e.code)
}

#[track_caller]
fn assert_rejected(events: &[EventInput], code: RejectCode) -> Ticket {
    let (t, status, got) = last_status(events);
    assert_eq!(
        (status, got),
        (EventStatus::Rejected, Some(code)),
        "{:?}",
        t.entry(events.last().unwrap().id).unwrap().reason
    );
    // A rejected event changes nothing: the ticket is what the events before it made.
    let before = fold(&events[..events.len() - 1], &policy()).unwrap();
    assert_same_except_timeline(&t, &before);
    let e = t.entry(events.last().unwrap().id).unwrap();
    assert_eq!(e.state_after, before.state);
    assert!(e.reason.as_deref().is_some_and(|r| !r.is_empty()));
    t
}

#[track_caller]
fn assert_accepted(events: &[EventInput]) -> Ticket {
    let (t, status, code) = last_status(events);
    assert_eq!(
        (status, code),
        (EventStatus::Accepted, None),
        "{:?}",
        t.entry(events.last().unwrap().id).unwrap().reason
    );
    let e = t.entry(events.last().unwrap().id).unwrap();
    assert_eq!(e.state_after, t.state);
    assert_eq!(e.reason, None);
    t
}

fn without_timeline(t: &Ticket) -> Ticket {
    Ticket {
        timeline: vec![],
        ..t.clone()
    }
}

#[track_caller]
fn assert_same_except_timeline(a: &Ticket, b: &Ticket) {
    assert_eq!(without_timeline(a), without_timeline(b));
}

fn with(mut base: Vec<EventInput>, more: impl IntoIterator<Item = EventInput>) -> Vec<EventInput> {
    base.extend(more);
    base
}

/// Report (1), assign to Eng (2).
fn assigned() -> Vec<EventInput> {
    vec![
        report(1, Who::Guard, "general"),
        assign(2, Who::Sup, Who::Eng),
    ]
}
/// ... start (3).
fn in_rectification() -> Vec<EventInput> {
    with(assigned(), [start(3, Who::Eng)])
}
/// ... request an extension to 48 h after the report (4).
fn extension_requested() -> Vec<EventInput> {
    with(
        in_rectification(),
        [request_ext(4, Who::Eng, T0 + 48 * HOUR)],
    )
}
/// ... submit a fix (5).
fn pending_verification() -> Vec<EventInput> {
    with(in_rectification(), [submit_fix(5, Who::Eng)])
}
/// ... pass verification (6).
fn closed() -> Vec<EventInput> {
    with(pending_verification(), [verify_pass(6, Who::Sup)])
}
fn cancelled() -> Vec<EventInput> {
    vec![report(1, Who::Guard, "general"), cancel(2, Who::Sup)]
}

// ------------------------------------------------------------------ report

#[test]
fn a_report_opens_the_ticket_with_the_default_due_date_for_its_grade() {
    let t = folded(&[report(1, Who::Guard, "general")]);
    assert_eq!(t.id, hazard());
    assert_eq!(t.code, "");
    assert_eq!(t.estate_id, estate());
    assert_eq!(t.state, HazardState::Reported);
    assert_eq!(t.grade, Grade::General);
    assert_eq!(t.title, "Fire exit blocked");
    assert_eq!(t.category, "fire safety");
    assert_eq!(t.reporter, Who::Guard.user());
    assert_eq!(t.reported_at, Timestamp(T0 + SEC));
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 24 * HOUR));
    assert!(!t.due_explicit);
    assert_eq!(t.assignee, None);
    assert_eq!(t.plan, None);
    assert_eq!(t.reopen_count, 0);
    assert_eq!(t.timeline.len(), 1);
    assert_eq!(t.timeline[0].status, EventStatus::Accepted);
    assert_eq!(t.timeline[0].action, Action::Report);
    assert_eq!(t.timeline[0].state_after, HazardState::Reported);
    assert_eq!(t.timeline[0].photos.len(), 1);
    assert_eq!(t.timeline[0].data["title"], "Fire exit blocked");

    let t = folded(&[report(1, Who::Guard, "major")]);
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 168 * HOUR));

    let p = HazardPolicy {
        general_due_hours: 8,
        ..policy()
    };
    let t = fold(&[report(1, Who::Guard, "general")], &p).unwrap();
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 8 * HOUR));
}

#[test]
fn the_due_date_counts_from_trusted_time_not_the_hlc() {
    let t = folded(&[report(1, Who::Guard, "general").at(T0 - HOUR)]);
    assert_eq!(t.reported_at, Timestamp(T0 - HOUR));
    assert_eq!(t.due_at, Timestamp(T0 + 23 * HOUR));
}

#[test]
fn a_report_carries_its_plan_location_and_source() {
    let src = Uuid::from_u128(0x5C);
    let zone = Uuid::from_u128(0x20);
    let e = ev(
        1,
        Who::Guard,
        "report",
        json!({
            "grade": "major", "category": "c", "title": "t", "description": "d",
            "location": { "zone_id": zone.to_string(), "text": "B2" },
            "source_fact_id": src.to_string(), "plan": plan_json()
        }),
    )
    .photo(PhotoRole::Before);
    let t = folded(&[e]);
    assert_eq!(t.plan.as_ref().unwrap().owner, "Wang Wei");
    assert_eq!(t.description.as_deref(), Some("d"));
    assert_eq!(t.location.zone_id, Some(zone));
    assert_eq!(t.location.text.as_deref(), Some("B2"));
    assert_eq!(t.source_fact_id, Some(FactId(src)));
}

#[test]
fn a_report_needs_a_before_photo_when_the_estate_requires_it() {
    let bare = ev(
        1,
        Who::Guard,
        "report",
        json!({ "grade": "general", "category": "c", "title": "t" }),
    );
    assert_eq!(fold(std::slice::from_ref(&bare), &policy()), None);
    // Another kind of photo is not a before photo.
    assert_eq!(
        fold(&[bare.clone().photo(PhotoRole::After)], &policy()),
        None
    );
    let lax = HazardPolicy {
        require_before_photo: false,
        ..policy()
    };
    assert!(fold(std::slice::from_ref(&bare), &lax).is_some());

    // A rejected report is no report: the next one opens the ticket, and the first shows
    // in the timeline as rejected for want of evidence.
    let t = folded(&[bare, report(2, Who::Guard2, "general")]);
    assert_eq!(t.reporter, Who::Guard2.user());
    assert_eq!(t.reported_at, Timestamp(T0 + 2 * SEC));
    assert_eq!(t.timeline[0].status, EventStatus::Rejected);
    assert_eq!(t.timeline[0].code, Some(RejectCode::EvidenceRequired));
    assert_eq!(t.timeline[1].status, EventStatus::Accepted);
}

#[test]
fn anyone_with_a_role_may_report_but_not_someone_without() {
    for who in [Who::Guard, Who::Eng, Who::Sup, Who::Mgr, Who::Admin] {
        assert_eq!(folded(&[report(1, who, "general")]).reporter, who.user());
    }
    assert_eq!(fold(&[report(1, Who::Nobody, "general")], &policy()), None);
    let t = folded(&[
        report(1, Who::Nobody, "general"),
        report(2, Who::Guard, "general"),
    ]);
    assert_eq!(t.timeline[0].code, Some(RejectCode::RoleForbidden));
}

#[test]
fn events_before_the_report_are_rejected_not_reported() {
    // The assign and a comment arrive first and carry earlier clocks than the report.
    let events = vec![
        assign(1, Who::Sup, Who::Eng),
        comment(2, Who::Guard),
        report(3, Who::Guard, "general"),
        start(4, Who::Eng),
    ];
    let t = folded(&events);
    assert_eq!(t.state, HazardState::Reported);
    assert_eq!(t.assignee, None);
    let codes: Vec<_> = t.timeline.iter().map(|e| (e.action, e.code)).collect();
    assert_eq!(
        codes,
        vec![
            (Action::Assign, Some(RejectCode::NotReported)),
            (Action::Comment, Some(RejectCode::NotReported)),
            (Action::Report, None),
            (Action::Start, Some(RejectCode::InvalidTransition)),
        ]
    );
    assert!(t.timeline[..2]
        .iter()
        .all(|e| e.status == EventStatus::Rejected && e.state_after == HazardState::Reported));
}

#[test]
fn without_an_accepted_report_there_is_no_ticket() {
    assert_eq!(fold(&[], &policy()), None);
    assert_eq!(
        fold(
            &[assign(1, Who::Sup, Who::Eng), comment(2, Who::Guard)],
            &policy()
        ),
        None
    );
}

#[test]
fn a_second_report_is_already_reported() {
    let t = assert_rejected(
        &[
            report(1, Who::Guard, "general"),
            report(2, Who::Guard2, "major"),
        ],
        RejectCode::AlreadyReported,
    );
    assert_eq!(t.grade, Grade::General);
    assert_eq!(t.reporter, Who::Guard.user());
}

#[test]
fn an_event_naming_another_estate_is_rejected() {
    let mut e = assign(2, Who::Sup, Who::Eng);
    e.estate_id = other_estate();
    assert_rejected(
        &[report(1, Who::Guard, "general"), e],
        RejectCode::InvalidValue,
    );
}

// ------------------------------------------------------------------ roles

#[test]
fn the_role_table() {
    use Role::*;
    let table: &[(Action, &[Role])] = &[
        (
            Action::Report,
            &[Guard, Engineer, Supervisor, Manager, Admin],
        ),
        (
            Action::Comment,
            &[Guard, Engineer, Supervisor, Manager, Admin],
        ),
        (Action::Edit, &[Supervisor, Manager, Admin]),
        (Action::Assign, &[Supervisor, Manager, Admin]),
        (Action::ApproveExtension, &[Supervisor, Manager, Admin]),
        (Action::DenyExtension, &[Supervisor, Manager, Admin]),
        (Action::VerifyPass, &[Supervisor, Manager, Admin]),
        (Action::VerifyFail, &[Supervisor, Manager, Admin]),
        (Action::Cancel, &[Supervisor, Manager, Admin]),
        (Action::Start, &[Engineer]),
        (Action::RequestExtension, &[Engineer]),
        (Action::SubmitFix, &[Engineer]),
        (Action::Plan, &[Engineer, Supervisor, Manager, Admin]),
        (Action::Reopen, &[Manager, Admin]),
    ];
    assert_eq!(table.len(), Action::ALL.len());
    for (action, roles) in table {
        let mut got = allowed_roles(*action).to_vec();
        got.sort();
        assert_eq!(&got, roles, "{action:?}");
    }
}

#[test]
fn each_action_is_refused_to_a_role_that_may_not_take_it() {
    // (the events that bring the ticket to a state where the action is valid, the action
    // by someone whose role may not take it)
    let cases: Vec<(Vec<EventInput>, EventInput)> = vec![
        (
            vec![report(1, Who::Guard, "general")],
            edit(9, Who::Eng, json!({ "title": "x" })),
        ),
        (
            vec![report(1, Who::Guard, "general")],
            edit(9, Who::Guard2, json!({ "title": "x" })),
        ),
        (
            vec![report(1, Who::Guard, "general")],
            assign(9, Who::Eng, Who::Eng),
        ),
        (
            vec![report(1, Who::Guard, "general")],
            assign(9, Who::Guard, Who::Eng),
        ),
        (assigned(), start(9, Who::Sup)),
        (assigned(), plan(9, Who::Guard)),
        (
            in_rectification(),
            request_ext(9, Who::Sup, T0 + 100 * HOUR),
        ),
        (extension_requested(), approve_ext(9, Who::Eng, None)),
        (extension_requested(), deny_ext(9, Who::Eng)),
        (in_rectification(), submit_fix(9, Who::Mgr)),
        (pending_verification(), verify_pass(9, Who::Eng2)),
        (pending_verification(), verify_fail(9, Who::Guard)),
        (vec![report(1, Who::Guard, "general")], cancel(9, Who::Eng)),
        (
            vec![report(1, Who::Guard, "general")],
            cancel(9, Who::Guard),
        ),
        (closed(), reopen(9, Who::Sup)),
        (closed(), reopen(9, Who::Eng)),
        (closed(), comment(9, Who::Nobody)),
    ];
    for (before, e) in cases {
        let action = e.body.action();
        let t = assert_rejected(&with(before, [e]), RejectCode::RoleForbidden);
        assert!(
            t.timeline
                .last()
                .unwrap()
                .reason
                .as_ref()
                .unwrap()
                .contains("Your role may not"),
            "{action:?}"
        );
    }
}

#[test]
fn each_action_is_allowed_to_every_role_that_may_take_it() {
    for who in [Who::Sup, Who::Mgr, Who::Admin] {
        assert_accepted(&with(assigned(), [edit(9, who, json!({ "title": "x" }))]));
        assert_accepted(&[report(1, Who::Guard, "general"), assign(9, who, Who::Eng)]);
        assert_accepted(&with(extension_requested(), [approve_ext(9, who, None)]));
        assert_accepted(&with(extension_requested(), [deny_ext(9, who)]));
        assert_accepted(&with(pending_verification(), [verify_pass(9, who)]));
        assert_accepted(&with(pending_verification(), [verify_fail(9, who)]));
        assert_accepted(&[report(1, Who::Guard, "general"), cancel(9, who)]);
        assert_accepted(&with(assigned(), [plan(9, who)]));
    }
    assert_accepted(&with(assigned(), [plan(9, Who::Eng2)]));
    for who in [Who::Mgr, Who::Admin] {
        assert_accepted(&with(closed(), [reopen(9, who)]));
    }
    for who in [Who::Guard, Who::Eng, Who::Sup, Who::Mgr, Who::Admin] {
        assert_accepted(&with(closed(), [comment(9, who)]));
    }
}

#[test]
fn the_role_check_comes_before_the_state_check() {
    // A guard trying to verify a ticket that is not even pending verification: the role
    // is what is wrong first.
    assert_rejected(
        &[report(1, Who::Guard, "general"), verify_pass(2, Who::Guard)],
        RejectCode::RoleForbidden,
    );
    // An engineer starting a ticket assigned to someone else in the wrong state: state
    // comes before assignee.
    assert_rejected(
        &[report(1, Who::Guard, "general"), start(2, Who::Eng2)],
        RejectCode::InvalidTransition,
    );
}

#[test]
fn the_reporter_may_edit_while_the_ticket_is_reported() {
    let t = assert_accepted(&[
        report(1, Who::Guard, "general"),
        edit(
            2,
            Who::Guard,
            json!({ "title": "Fire exit blocked by bikes" }),
        ),
    ]);
    assert_eq!(t.title, "Fire exit blocked by bikes");
    // Not once it is assigned.
    assert_rejected(
        &with(assigned(), [edit(9, Who::Guard, json!({ "title": "x" }))]),
        RejectCode::RoleForbidden,
    );
    // And another guard never.
    assert_rejected(
        &[
            report(1, Who::Guard, "general"),
            edit(2, Who::Guard2, json!({ "title": "x" })),
        ],
        RejectCode::RoleForbidden,
    );
}

// ------------------------------------------------------------------ edit

#[test]
fn an_edit_changes_only_the_fields_present() {
    let t = assert_accepted(&with(
        assigned(),
        [edit(
            3,
            Who::Sup,
            json!({ "description": "Bikes chained to the bar", "location": { "text": "Stair B" } }),
        )],
    ));
    assert_eq!(t.title, "Fire exit blocked");
    assert_eq!(t.category, "fire safety");
    assert_eq!(t.description.as_deref(), Some("Bikes chained to the bar"));
    assert_eq!(t.location.text.as_deref(), Some("Stair B"));
    assert_eq!(t.state, HazardState::Assigned);
    let t = assert_accepted(&with(
        assigned(),
        [edit(3, Who::Sup, json!({ "category": "evacuation" }))],
    ));
    assert_eq!(t.category, "evacuation");
    assert_eq!(t.title, "Fire exit blocked");
}

#[test]
fn an_edit_is_allowed_in_every_open_state_and_refused_once_closed_or_cancelled() {
    for before in [
        assigned(),
        in_rectification(),
        extension_requested(),
        pending_verification(),
    ] {
        assert_accepted(&with(before, [edit(9, Who::Sup, json!({ "title": "x" }))]));
    }
    for before in [closed(), cancelled()] {
        assert_rejected(
            &with(before, [edit(9, Who::Sup, json!({ "title": "x" }))]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn two_offline_edits_of_one_field_the_later_hlc_wins_whatever_the_arrival_order() {
    let r = report(1, Who::Guard, "general");
    // The supervisor edits at 10:00 on one handset; the manager edits at 10:05 on another
    // but syncs first.
    let a = edit(10, Who::Sup, json!({ "title": "from the supervisor" }));
    let b = edit(15, Who::Mgr, json!({ "title": "from the manager" }));
    for events in [
        vec![r.clone(), a.clone(), b.clone()],
        vec![b.clone(), r.clone(), a.clone()],
        vec![b.clone(), a.clone(), r.clone()],
    ] {
        let t = folded(&events);
        assert_eq!(t.title, "from the manager");
        // Both are in the timeline, accepted, in HLC order.
        let ids: Vec<_> = t.timeline.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, vec![r.id, a.id, b.id]);
        assert!(t.timeline.iter().all(|e| e.status == EventStatus::Accepted));
    }

    // Equal clocks: the device id breaks the tie, then the fact id.
    let same = T0 + 20 * SEC;
    let lo = DeviceId(Uuid::from_u128(1));
    let hi = DeviceId(Uuid::from_u128(2));
    let x = edit(20, Who::Sup, json!({ "title": "low device" })).device(lo);
    let y = edit(21, Who::Mgr, json!({ "title": "high device" }))
        .hlc(same, 0)
        .device(hi);
    assert_eq!(
        folded(&[y.clone(), x.clone(), r.clone()]).title,
        "high device"
    );
    assert_eq!(
        folded(&[r.clone(), x.clone(), y.clone()]).title,
        "high device"
    );
    let x2 = x.clone().id(0xFFFF_FFFF);
    let y2 = edit(21, Who::Mgr, json!({ "title": "lower id" }))
        .hlc(same, 0)
        .device(lo)
        .id(0x1);
    assert_eq!(
        folded(&[x2.clone(), y2.clone(), r.clone()]).title,
        "low device"
    );
    assert_eq!(folded(&[r, y2, x2]).title, "low device");
}

#[test]
fn different_fields_edited_offline_both_apply() {
    let t = folded(&[
        edit(12, Who::Mgr, json!({ "category": "evacuation" })),
        report(1, Who::Guard, "general"),
        edit(10, Who::Sup, json!({ "title": "Exit B blocked" })),
    ]);
    assert_eq!(t.title, "Exit B blocked");
    assert_eq!(t.category, "evacuation");
}

#[test]
fn a_grade_edit_moves_the_default_due_date_but_not_an_explicit_one() {
    let r = report(1, Who::Guard, "general");
    let t = folded(&[r.clone(), edit(2, Who::Sup, json!({ "grade": "major" }))]);
    assert_eq!(t.grade, Grade::Major);
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 168 * HOUR));
    assert!(!t.due_explicit);
    // And back again: counted from the report, not from the edit.
    let t = folded(&[
        r.clone(),
        edit(2, Who::Sup, json!({ "grade": "major" })),
        edit(3 * 3600, Who::Sup, json!({ "grade": "general" })),
    ]);
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 24 * HOUR));

    // An assign with a due date fixes it; a later grade edit leaves it.
    let due = T0 + 5 * HOUR;
    let t = folded(&[
        r.clone(),
        assign_due(2, Who::Sup, Who::Eng, due),
        edit(3, Who::Sup, json!({ "grade": "major" })),
    ]);
    assert_eq!(t.grade, Grade::Major);
    assert_eq!(t.due_at, Timestamp(due));
    assert!(t.due_explicit);

    // An assign without a due date keeps the default, which still follows the grade.
    let t = folded(&[
        r,
        assign(2, Who::Sup, Who::Eng),
        edit(3, Who::Sup, json!({ "grade": "major" })),
    ]);
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 168 * HOUR));
    assert!(!t.due_explicit);
}

// ------------------------------------------------------------------ assign

#[test]
fn assign_moves_a_reported_ticket_to_assigned() {
    let t = assert_accepted(&assigned());
    assert_eq!(t.state, HazardState::Assigned);
    assert_eq!(t.assignee, Some(Who::Eng.user()));
    assert_eq!(t.assigned_at, Some(Timestamp(T0 + 2 * SEC)));
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 24 * HOUR));
    assert!(!t.due_explicit);

    let due = T0 + 6 * HOUR;
    let t = assert_accepted(&[
        report(1, Who::Guard, "general"),
        assign_due(2, Who::Sup, Who::Eng, due),
    ]);
    assert_eq!(t.due_at, Timestamp(due));
    assert!(t.due_explicit);
}

#[test]
fn reassigning_keeps_the_state_and_changes_the_assignee() {
    for (before, state) in [
        (assigned(), HazardState::Assigned),
        (in_rectification(), HazardState::InRectification),
        (extension_requested(), HazardState::ExtensionRequested),
    ] {
        let t = assert_accepted(&with(before, [assign(9, Who::Mgr, Who::Eng2)]));
        assert_eq!(t.state, state);
        assert_eq!(t.assignee, Some(Who::Eng2.user()));
        assert_eq!(t.assigned_at, Some(Timestamp(T0 + 9 * SEC)));
    }
    // The old assignee may no longer submit a fix.
    assert_rejected(
        &with(
            in_rectification(),
            [assign(9, Who::Mgr, Who::Eng2), submit_fix(10, Who::Eng)],
        ),
        RejectCode::NotAssignee,
    );
}

#[test]
fn assign_is_refused_when_pending_verification_closed_or_cancelled() {
    for before in [pending_verification(), closed(), cancelled()] {
        assert_rejected(
            &with(before, [assign(9, Who::Sup, Who::Eng2)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn assign_with_a_due_date_not_after_the_event_is_due_in_past() {
    let at = T0 + 2 * SEC;
    for due in [at, at - 1, T0 - HOUR] {
        assert_rejected(
            &[
                report(1, Who::Guard, "general"),
                assign_due(2, Who::Sup, Who::Eng, due),
            ],
            RejectCode::DueInPast,
        );
    }
    assert_accepted(&[
        report(1, Who::Guard, "general"),
        assign_due(2, Who::Sup, Who::Eng, at + 1),
    ]);
}

// ------------------------------------------------------------------ start and plan

#[test]
fn the_assignee_starts_rectification() {
    let t = assert_accepted(&in_rectification());
    assert_eq!(t.state, HazardState::InRectification);
    assert_rejected(
        &with(assigned(), [start(3, Who::Eng2)]),
        RejectCode::NotAssignee,
    );
    for before in [
        vec![report(1, Who::Guard, "general")],
        in_rectification(),
        pending_verification(),
        closed(),
    ] {
        assert_rejected(
            &with(before, [start(9, Who::Eng)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn a_major_hazard_needs_a_plan_before_rectification_starts() {
    let major = vec![
        report(1, Who::Guard, "major"),
        assign(2, Who::Sup, Who::Eng),
    ];
    assert_rejected(
        &with(major.clone(), [start(3, Who::Eng)]),
        RejectCode::PlanRequired,
    );
    // The plan may come by a plan event ...
    let t = assert_accepted(&with(
        major.clone(),
        [plan(3, Who::Eng), start(4, Who::Eng)],
    ));
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!(t.plan.as_ref().unwrap().funds, "¥12,000");
    // ... or with the report.
    assert_accepted(&[
        report_with_plan(1, Who::Guard),
        assign(2, Who::Sup, Who::Eng),
        start(3, Who::Eng),
    ]);
    // A plan that arrives with a later clock does not help an earlier start.
    let t = folded(&with(
        major.clone(),
        [plan(4, Who::Eng), start(3, Who::Eng)],
    ));
    assert_eq!(t.state, HazardState::Assigned);
    assert_eq!(
        t.entry(FactId(Uuid::from_u128(0x1003))).unwrap().code,
        Some(RejectCode::PlanRequired)
    );
    // A general hazard needs none; a grade edit to major makes it need one.
    assert_accepted(&in_rectification());
    assert_rejected(
        &with(
            assigned(),
            [
                edit(3, Who::Sup, json!({ "grade": "major" })),
                start(4, Who::Eng),
            ],
        ),
        RejectCode::PlanRequired,
    );
    // The assignee check comes first.
    assert_rejected(&with(major, [start(3, Who::Eng2)]), RejectCode::NotAssignee);
}

#[test]
fn a_plan_may_be_set_in_any_open_state_but_pending_verification() {
    for before in [
        vec![report(1, Who::Guard, "general")],
        assigned(),
        in_rectification(),
        extension_requested(),
    ] {
        let state = folded(&before).state;
        let t = assert_accepted(&with(before, [plan(9, Who::Eng2)]));
        assert!(t.plan.is_some());
        assert_eq!(t.state, state);
    }
    for before in [pending_verification(), closed(), cancelled()] {
        assert_rejected(
            &with(before, [plan(9, Who::Eng)]),
            RejectCode::InvalidTransition,
        );
    }
}

// ------------------------------------------------------------------ extensions

#[test]
fn the_assignee_asks_for_more_time() {
    let t = assert_accepted(&extension_requested());
    assert_eq!(t.state, HazardState::ExtensionRequested);
    let x = t.extension.as_ref().unwrap();
    assert_eq!(x.due_at, Timestamp(T0 + 48 * HOUR));
    assert_eq!(x.reason, "waiting for parts");
    assert_eq!(x.requested_by, Who::Eng.user());
    // The due date is unchanged until approved.
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 24 * HOUR));

    assert_rejected(
        &with(
            in_rectification(),
            [request_ext(4, Who::Eng2, T0 + 48 * HOUR)],
        ),
        RejectCode::NotAssignee,
    );
    for before in [
        assigned(),
        extension_requested(),
        pending_verification(),
        closed(),
    ] {
        assert_rejected(
            &with(before, [request_ext(9, Who::Eng, T0 + 48 * HOUR)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn an_extension_must_ask_for_a_date_after_now_and_after_the_current_due_date() {
    let current_due = T0 + SEC + 24 * HOUR;
    // Not after the current due date.
    for due in [current_due, current_due - HOUR] {
        assert_rejected(
            &with(in_rectification(), [request_ext(4, Who::Eng, due)]),
            RejectCode::DueInPast,
        );
    }
    // After the due date but not after the event (the ticket is overdue already).
    let late = T0 + 30 * HOUR;
    assert_rejected(
        &with(
            in_rectification(),
            [request_ext(4, Who::Eng, T0 + 29 * HOUR).at(late)],
        ),
        RejectCode::DueInPast,
    );
    assert_accepted(&with(
        in_rectification(),
        [request_ext(4, Who::Eng, current_due + 1)],
    ));
}

#[test]
fn approving_an_extension_moves_the_due_date() {
    let t = assert_accepted(&with(
        extension_requested(),
        [approve_ext(5, Who::Sup, None)],
    ));
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!(t.due_at, Timestamp(T0 + 48 * HOUR));
    assert!(t.due_explicit);
    assert_eq!(t.extension, None);

    // A supervisor may approve a different date than asked for ...
    let t = assert_accepted(&with(
        extension_requested(),
        [approve_ext(5, Who::Sup, Some(T0 + 36 * HOUR))],
    ));
    assert_eq!(t.due_at, Timestamp(T0 + 36 * HOUR));
    // ... but not one at or before the approval.
    assert_rejected(
        &with(
            extension_requested(),
            [approve_ext(5, Who::Sup, Some(T0 + 5 * SEC))],
        ),
        RejectCode::DueInPast,
    );
    // Approving late, after the requested date has passed, is due in past too.
    assert_rejected(
        &with(
            extension_requested(),
            [approve_ext(5, Who::Sup, None).at(T0 + 49 * HOUR)],
        ),
        RejectCode::DueInPast,
    );
    for before in [assigned(), in_rectification(), pending_verification()] {
        assert_rejected(
            &with(before, [approve_ext(9, Who::Sup, None)]),
            RejectCode::InvalidTransition,
        );
    }
    // An explicit due date survives a grade edit.
    let t = folded(&with(
        extension_requested(),
        [
            approve_ext(5, Who::Sup, None),
            edit(6, Who::Sup, json!({ "grade": "major" })),
        ],
    ));
    assert_eq!(t.due_at, Timestamp(T0 + 48 * HOUR));
}

#[test]
fn denying_an_extension_keeps_the_due_date() {
    let t = assert_accepted(&with(extension_requested(), [deny_ext(5, Who::Mgr)]));
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!(t.extension, None);
    assert_eq!(t.due_at, Timestamp(T0 + SEC + 24 * HOUR));
    assert!(!t.due_explicit);
    for before in [in_rectification(), closed()] {
        assert_rejected(
            &with(before, [deny_ext(9, Who::Sup)]),
            RejectCode::InvalidTransition,
        );
    }
    // While the request is pending, a fix cannot be submitted.
    assert_rejected(
        &with(extension_requested(), [submit_fix(5, Who::Eng)]),
        RejectCode::InvalidTransition,
    );
}

// ------------------------------------------------------------------ fix and verification

#[test]
fn the_assignee_submits_a_fix_with_an_after_photo() {
    let t = assert_accepted(&pending_verification());
    assert_eq!(t.state, HazardState::PendingVerification);
    assert_eq!(t.fixed_by, Some(Who::Eng.user()));
    assert_eq!(t.fixed_at, Some(Timestamp(T0 + 5 * SEC)));

    let no_photo = ev(5, Who::Eng, "submit_fix", json!({}));
    assert_rejected(
        &with(in_rectification(), [no_photo.clone()]),
        RejectCode::EvidenceRequired,
    );
    assert_rejected(
        &with(
            in_rectification(),
            [no_photo
                .clone()
                .photo(PhotoRole::Before)
                .photo(PhotoRole::Other)],
        ),
        RejectCode::EvidenceRequired,
    );
    // The bytes need not have arrived: the metadata is the evidence.
    let t = folded(&with(
        in_rectification(),
        [no_photo.photo(PhotoRole::After)],
    ));
    assert!(!t.timeline.last().unwrap().photos[0].received);
    assert_eq!(t.state, HazardState::PendingVerification);

    assert_rejected(
        &with(in_rectification(), [submit_fix(5, Who::Eng2)]),
        RejectCode::NotAssignee,
    );
    // Assignee comes before evidence.
    assert_rejected(
        &with(
            in_rectification(),
            [ev(5, Who::Eng2, "submit_fix", json!({}))],
        ),
        RejectCode::NotAssignee,
    );
    for before in [assigned(), pending_verification(), closed(), cancelled()] {
        assert_rejected(
            &with(before, [submit_fix(9, Who::Eng)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn passing_verification_closes_the_ticket() {
    let t = assert_accepted(&closed());
    assert_eq!(t.state, HazardState::Closed);
    assert_eq!(t.verified_by, Some(Who::Sup.user()));
    assert_eq!(t.closed_at, Some(Timestamp(T0 + 6 * SEC)));

    let no_photo = ev(6, Who::Sup, "verify_pass", json!({}));
    assert_rejected(
        &with(pending_verification(), [no_photo.clone()]),
        RejectCode::EvidenceRequired,
    );
    assert_rejected(
        &with(pending_verification(), [no_photo.photo(PhotoRole::After)]),
        RejectCode::EvidenceRequired,
    );
    for before in [in_rectification(), closed(), cancelled()] {
        assert_rejected(
            &with(before, [verify_pass(9, Who::Sup)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn failing_verification_sends_it_back_to_rectification() {
    let t = assert_accepted(&with(pending_verification(), [verify_fail(6, Who::Sup)]));
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!(t.reopen_count, 1);
    assert_eq!(t.closed_at, None);
    // A failed verification needs no photo. The engineer fixes again and it passes.
    let t = folded(&with(
        pending_verification(),
        [
            verify_fail(6, Who::Sup),
            submit_fix(7, Who::Eng),
            verify_fail(8, Who::Mgr),
            submit_fix(9, Who::Eng),
            verify_pass(10, Who::Mgr),
        ],
    ));
    assert_eq!(t.state, HazardState::Closed);
    assert_eq!(t.reopen_count, 2);
    assert_eq!(t.fixed_at, Some(Timestamp(T0 + 9 * SEC)));
    assert_eq!(t.verified_by, Some(Who::Mgr.user()));
    for before in [in_rectification(), closed()] {
        assert_rejected(
            &with(before, [verify_fail(9, Who::Sup)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn the_person_who_fixed_it_may_not_verify_it() {
    // On a small estate the engineer is also a supervisor.
    let fixed = vec![
        report(1, Who::Guard, "general"),
        assign(2, Who::Sup, Who::EngSup),
        start(3, Who::EngSup),
        submit_fix(4, Who::EngSup),
    ];
    assert_rejected(
        &with(fixed.clone(), [verify_pass(5, Who::EngSup)]),
        RejectCode::SelfVerification,
    );
    assert_rejected(
        &with(fixed.clone(), [verify_fail(5, Who::EngSup)]),
        RejectCode::SelfVerification,
    );
    // Evidence is checked first.
    assert_rejected(
        &with(
            fixed.clone(),
            [ev(5, Who::EngSup, "verify_pass", json!({}))],
        ),
        RejectCode::EvidenceRequired,
    );
    // The same person may verify someone else's fix, and anyone else may verify theirs.
    assert_accepted(&with(fixed, [verify_pass(5, Who::Sup)]));
    let t = assert_accepted(&with(pending_verification(), [verify_pass(6, Who::EngSup)]));
    assert_eq!(t.verified_by, Some(Who::EngSup.user()));
}

// ------------------------------------------------------------------ cancel, reopen, comment

#[test]
fn a_reported_ticket_may_be_cancelled_with_a_reason() {
    let t = assert_accepted(&cancelled());
    assert_eq!(t.state, HazardState::Cancelled);
    assert_eq!(t.cancelled_at, Some(Timestamp(T0 + 2 * SEC)));
    assert_eq!(t.cancel_reason.as_deref(), Some("duplicate report"));
    for before in [
        assigned(),
        in_rectification(),
        pending_verification(),
        closed(),
        cancelled(),
    ] {
        assert_rejected(
            &with(before, [cancel(9, Who::Sup)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn a_cancel_that_predates_the_assign_wins() {
    // The manager cancels at 09:00 on a handset in a basement (offline); the supervisor,
    // online, assigns at 09:05; the engineer starts, fixes, and the supervisor verifies.
    // The cancel syncs last.
    let r = report(1, Who::Guard, "general");
    let c = cancel(100, Who::Mgr);
    let later = vec![
        assign(400, Who::Sup, Who::Eng),
        start(500, Who::Eng),
        submit_fix(600, Who::Eng),
        verify_pass(700, Who::Sup),
    ];
    let arrival: Vec<EventInput> = with(vec![r.clone()], later.clone())
        .into_iter()
        .chain([c.clone()])
        .collect();
    let t = folded(&arrival);
    assert_eq!(t.state, HazardState::Cancelled);
    assert_eq!(t.assignee, None);
    assert_eq!(t.fixed_by, None);
    assert_eq!(t.closed_at, None);
    assert_eq!(t.entry(c.id).unwrap().status, EventStatus::Accepted);
    for e in &later {
        let entry = t.entry(e.id).unwrap();
        assert_eq!(entry.status, EventStatus::Rejected, "{:?}", entry.action);
        assert_eq!(entry.code, Some(RejectCode::InvalidTransition));
        assert_eq!(entry.state_after, HazardState::Cancelled);
    }
    let order: Vec<_> = t.timeline.iter().map(|e| e.action).collect();
    assert_eq!(
        order,
        vec![
            Action::Report,
            Action::Cancel,
            Action::Assign,
            Action::Start,
            Action::SubmitFix,
            Action::VerifyPass
        ]
    );
    // Before the cancel synced, the same events made a closed ticket.
    let before_sync = folded(&with(vec![r], later));
    assert_eq!(before_sync.state, HazardState::Closed);
}

#[test]
fn a_manager_reopens_a_closed_ticket() {
    let t = assert_accepted(&with(closed(), [reopen(7, Who::Mgr)]));
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!(t.reopen_count, 1);
    assert_eq!(t.closed_at, None);
    assert_eq!(t.verified_by, None);
    assert_eq!(t.assignee, Some(Who::Eng.user()));
    // It goes round again.
    let t = folded(&with(
        closed(),
        [
            reopen(7, Who::Admin),
            submit_fix(8, Who::Eng),
            verify_pass(9, Who::Sup),
        ],
    ));
    assert_eq!(t.state, HazardState::Closed);
    assert_eq!(t.closed_at, Some(Timestamp(T0 + 9 * SEC)));
    for before in [
        vec![report(1, Who::Guard, "general")],
        in_rectification(),
        pending_verification(),
        cancelled(),
    ] {
        assert_rejected(
            &with(before, [reopen(9, Who::Mgr)]),
            RejectCode::InvalidTransition,
        );
    }
}

#[test]
fn a_comment_is_accepted_in_every_state_and_changes_nothing() {
    for before in [
        vec![report(1, Who::Guard, "general")],
        assigned(),
        in_rectification(),
        extension_requested(),
        pending_verification(),
        closed(),
        cancelled(),
    ] {
        let plain = folded(&before);
        let t = assert_accepted(&with(before, [comment(9, Who::Guard2)]));
        assert_same_except_timeline(&t, &plain);
        assert_eq!(t.timeline.last().unwrap().data["text"], "noted");
    }
}

// ------------------------------------------------------------------ order and duplicates

#[test]
fn a_fact_sent_twice_is_folded_once() {
    let events = with(
        pending_verification(),
        [verify_fail(6, Who::Sup), verify_fail(6, Who::Sup)],
    );
    let t = folded(&events);
    assert_eq!(t.reopen_count, 1);
    assert_eq!(t.timeline.len(), 5);
    // Sent twice with different clocks (a replay after a clamp): the earlier copy counts.
    let a = comment(7, Who::Guard);
    let b = a.clone().hlc(T0 + 9 * SEC, 0);
    let t = folded(&[b, report(1, Who::Guard, "general"), a.clone()]);
    assert_eq!(t.timeline.len(), 2);
    assert_eq!(t.entry(a.id).unwrap().hlc, a.hlc);
}

#[test]
fn the_timeline_shows_every_event_with_its_data_and_photos() {
    let events = with(
        pending_verification(),
        [ev(
            6,
            Who::Sup,
            "verify_pass",
            json!({ "note": "looks fine" }),
        )],
    );
    let t = folded(&events);
    assert_eq!(t.timeline.len(), events.len());
    for (entry, e) in t.timeline.iter().zip(&events) {
        assert_eq!(entry.event_id, e.id);
        assert_eq!(entry.hlc, e.hlc);
        assert_eq!(entry.device_id, e.device_id);
        assert_eq!(entry.actor, e.actor);
        assert_eq!(entry.action, e.body.action());
        assert_eq!(entry.at, Timestamp(e.at));
        assert_eq!(entry.data, e.data);
        assert_eq!(entry.photos, e.photos);
    }
    let last = t.timeline.last().unwrap();
    assert_eq!(last.code, Some(RejectCode::EvidenceRequired));
    assert_eq!(last.data["note"], "looks fine");
    assert_eq!(t.rejected().count(), 1);
    // The timeline serialises (the server stores it as JSON).
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["timeline"][4]["code"], "evidence_required");
    assert_eq!(v["timeline"][4]["status"], "rejected");
    assert_eq!(v["state"], "pending_verification");
}

// ------------------------------------------------------------------ escalation

fn escalation_keys(t: &Ticket, now: i64) -> Vec<(usize, EscalationTarget, i64, String)> {
    escalations_due(t, &policy(), now)
        .into_iter()
        .map(|d| (d.step, d.to, d.reached_at, d.key))
        .collect()
}

#[test]
fn escalation_of_an_unassigned_ticket_skips_the_assignee_step() {
    let r = report(0, Who::Guard, "general");
    let t = folded(std::slice::from_ref(&r));
    let due = T0 + 24 * HOUR;
    assert_eq!(t.due_at, Timestamp(due));
    let key = |p: u32| format!("{}:{}:{}", hazard(), due, p);
    assert!(escalation_keys(&t, T0 + 23 * HOUR).is_empty());
    assert!(escalation_keys(&t, due - 1).is_empty());
    assert_eq!(
        escalation_keys(&t, due),
        vec![(1, EscalationTarget::Supervisor, due, key(100))]
    );
    assert_eq!(
        escalation_keys(&t, T0 + 36 * HOUR),
        vec![
            (1, EscalationTarget::Supervisor, due, key(100)),
            (2, EscalationTarget::Manager, T0 + 36 * HOUR, key(150)),
        ]
    );
    assert_eq!(
        key(150),
        format!(
            "00000000-0000-0000-0000-0000000000aa:{}:150",
            T0 + 24 * HOUR
        )
    );
}

#[test]
fn escalation_counts_from_the_assignment() {
    // Assigned 4 h after the report, due 8 h after that: 75 % is 6 h after assignment.
    let assigned_at = T0 + 4 * HOUR;
    let due = assigned_at + 8 * HOUR;
    let t = folded(&[
        report(0, Who::Guard, "general"),
        assign_due(0, Who::Sup, Who::Eng, due)
            .id(0x2000)
            .hlc(assigned_at, 0)
            .at(assigned_at),
    ]);
    assert_eq!(t.assigned_at, Some(Timestamp(assigned_at)));
    let d = escalations_due(&t, &policy(), assigned_at + 6 * HOUR);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].to, EscalationTarget::Assignee);
    assert_eq!(d[0].at_percent, 75);
    assert_eq!(d[0].reached_at, assigned_at + 6 * HOUR);
    assert_eq!(d[0].key, format!("{}:{}:75", hazard(), due));
    assert_eq!(
        escalations_due(&t, &policy(), assigned_at + 8 * HOUR - 1).len(),
        1
    );
    assert_eq!(
        escalations_due(&t, &policy(), assigned_at + 8 * HOUR).len(),
        2
    );
    assert_eq!(
        escalations_due(&t, &policy(), assigned_at + 12 * HOUR).len(),
        3
    );
}

#[test]
fn an_approved_extension_starts_the_steps_again_under_new_keys() {
    let before = folded(&extension_requested());
    let after = folded(&with(
        extension_requested(),
        [approve_ext(5, Who::Sup, None)],
    ));
    let now = T0 + 47 * HOUR;
    let old: Vec<String> = escalations_due(&before, &policy(), now)
        .into_iter()
        .map(|d| d.key)
        .collect();
    let new: Vec<String> = escalations_due(&after, &policy(), now)
        .into_iter()
        .map(|d| d.key)
        .collect();
    // Before: assigned at +2 s and due at ~24 h, so 150 % is ~36 h: all three reached.
    assert_eq!(old.len(), 3);
    // After: due at 48 h, 75 % reached (~36 h), not 100 %.
    assert_eq!(new.len(), 1);
    assert!(new[0].ends_with(&format!(":{}:75", T0 + 48 * HOUR)));
    assert!(!old.contains(&new[0]));
}

#[test]
fn closed_and_cancelled_tickets_escalate_nothing() {
    let far = T0 + 1000 * HOUR;
    assert!(escalations_due(&folded(&closed()), &policy(), far).is_empty());
    assert!(escalations_due(&folded(&cancelled()), &policy(), far).is_empty());
    assert_eq!(
        escalations_due(&folded(&pending_verification()), &policy(), far).len(),
        3
    );
}

#[test]
fn a_due_date_before_the_assignment_counts_as_a_span_of_one_millisecond() {
    let mut t = folded(&assigned());
    t.due_at = Timestamp(T0);
    let start = T0 + 2 * SEC;
    let d = escalations_due(&t, &policy(), start + 1);
    assert_eq!(
        d.iter().map(|d| d.reached_at).collect::<Vec<_>>(),
        vec![start, start + 1, start + 1]
    );
    assert!(escalations_due(&t, &policy(), start - 1).is_empty());
}

// ------------------------------------------------------------------ properties

/// One generated event, before it is turned into an [`EventInput`].
#[derive(Clone, Debug)]
struct Spec {
    action: Action,
    who: Who,
    device: usize,
    /// Seconds after T0, and the HLC counter.
    secs: i64,
    counter: u16,
    /// Trusted time minus HLC time, in seconds.
    skew: i64,
    /// Hours from the event to any date it carries (may be negative).
    hours: i64,
    /// Report: major. Assign: with a due date. Approve: with a date. Edit: the grade.
    flag: bool,
    /// Report: 0 = with a plan. Assign: which engineer. Edit: which fields.
    pick: usize,
    /// Before, after, verification, other.
    photos: [bool; 4],
}

const PEOPLE: [Who; 7] = [
    Who::Guard,
    Who::Eng,
    Who::Eng2,
    Who::Sup,
    Who::Mgr,
    Who::EngSup,
    Who::Admin,
];
const ENGINEERS: [Who; 3] = [Who::Eng, Who::Eng2, Who::EngSup];
const VERIFIERS: [Who; 4] = [Who::Sup, Who::Mgr, Who::Admin, Who::EngSup];

fn usual_actor(a: Action) -> Who {
    match a {
        Action::Report | Action::Comment => Who::Guard,
        Action::Start | Action::RequestExtension | Action::SubmitFix | Action::Plan => Who::Eng,
        Action::Reopen => Who::Mgr,
        _ => Who::Sup,
    }
}

fn build(n: usize, s: &Spec, devices: &[DeviceId]) -> EventInput {
    let ms = T0 + s.secs * SEC;
    let at = ms + s.skew * SEC;
    let date = rfc(at + s.hours * HOUR);
    let extra = match s.action {
        Action::Report => {
            let mut v = json!({
                "grade": if s.flag { "major" } else { "general" },
                "category": "c", "title": format!("report {n}")
            });
            if s.pick == 0 {
                v["plan"] = plan_json();
            }
            v
        }
        Action::Edit => match s.pick % 3 {
            0 => json!({ "title": format!("title {n}") }),
            1 => json!({ "grade": if s.flag { "major" } else { "general" } }),
            _ => json!({ "category": format!("category {n}"), "description": "d" }),
        },
        Action::Assign => {
            let mut v = json!({ "assignee": ENGINEERS[s.pick % 3].user().to_string() });
            if s.flag {
                v["due_at"] = json!(date);
            }
            v
        }
        Action::Plan => json!({ "plan": plan_json() }),
        Action::RequestExtension => json!({ "due_at": date, "reason": "parts" }),
        Action::ApproveExtension if s.flag => json!({ "due_at": date }),
        Action::VerifyFail | Action::Cancel | Action::Reopen => json!({ "reason": "r" }),
        Action::Comment => json!({ "text": format!("comment {n}") }),
        _ => json!({}),
    };
    let mut e = ev(0, s.who, s.action.as_str(), extra)
        .id(0x10_0000 + n as u128)
        .hlc(ms, s.counter)
        .device(devices[s.device % devices.len()])
        .at(at);
    for (i, role) in [
        PhotoRole::Before,
        PhotoRole::After,
        PhotoRole::Verification,
        PhotoRole::Other,
    ]
    .into_iter()
    .enumerate()
    {
        if s.photos[i] {
            e = e.photo(role);
        }
    }
    e
}

/// The life of a hazard as people mean it to go, as (action, who, flag, pick): a report,
/// sometimes an early cancel, an assignment, a plan for a major hazard, the start, maybe an
/// extension, failed verifications, the pass, maybe a reopening and another round.
fn story() -> impl Strategy<Value = Vec<(Action, Who, bool, usize)>> {
    (
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.8)),
        (0usize..3, any::<bool>(), 0usize..4),
        prop::option::of(any::<bool>()),
        0usize..3,
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(
                (major, plan_in_report, plan_event),
                (a, assign_due, v),
                ext,
                fails,
                reopen,
                cancel,
            )| {
                let eng = ENGINEERS[a];
                let verifier = VERIFIERS[v];
                let mut out = vec![(
                    Action::Report,
                    Who::Guard,
                    major,
                    if plan_in_report { 0 } else { 1 },
                )];
                if cancel {
                    out.push((Action::Cancel, Who::Mgr, false, 0));
                }
                out.push((Action::Assign, Who::Sup, assign_due, a));
                if major && !plan_in_report && plan_event {
                    out.push((Action::Plan, eng, false, 0));
                }
                out.push((Action::Start, eng, false, 0));
                if let Some(approve) = ext {
                    out.push((Action::RequestExtension, eng, false, 0));
                    let next = if approve {
                        Action::ApproveExtension
                    } else {
                        Action::DenyExtension
                    };
                    out.push((next, Who::Sup, fails == 1, 0));
                }
                for _ in 0..fails {
                    out.push((Action::SubmitFix, eng, false, 0));
                    out.push((Action::VerifyFail, verifier, false, 0));
                }
                out.push((Action::SubmitFix, eng, false, 0));
                out.push((Action::VerifyPass, verifier, false, 0));
                if reopen {
                    out.push((Action::Reopen, Who::Mgr, false, 0));
                    out.push((Action::SubmitFix, eng, false, 0));
                    out.push((Action::VerifyPass, verifier, false, 0));
                }
                out
            },
        )
}

fn any_action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

/// How one event of a story goes astray, or not: its clock (jittered enough to swap with
/// its neighbours), handset, trusted time, the dates it carries, its photos (usually all
/// there) and, now and then, the wrong person.
type Noise = (i64, u16, usize, i64, i64, [bool; 4], Option<usize>);

fn noise() -> impl Strategy<Value = Noise> {
    (
        -12i64..12,
        0u16..3,
        0usize..4,
        -3i64..3,
        prop_oneof![-2i64..2, 25i64..60, 170i64..230],
        prop::array::uniform4(prop::bool::weighted(0.9)),
        prop::option::weighted(0.1, 0..PEOPLE.len()),
    )
}

/// A realistic set of events on one hazard from 2–4 handsets: a story with jittered
/// clocks, random extra events by random people at random times, some exact duplicates (a
/// batch sent twice) and some replays of a fact with another clock.
fn scenario() -> impl Strategy<Value = Vec<EventInput>> {
    (2usize..=4, story())
        .prop_flat_map(|(n_devices, story)| {
            let n = story.len();
            let span = 10 * n as i64 + 20;
            (
                Just(n_devices),
                Just(story),
                prop::collection::vec(noise(), n),
                prop::collection::vec(
                    (
                        any_action(),
                        0..PEOPLE.len(),
                        any::<bool>(),
                        0..span,
                        noise(),
                        any::<bool>(),
                        0usize..6,
                    ),
                    0..10,
                ),
                prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 0u16..5), 0..4),
            )
        })
        .prop_map(|(n_devices, story, noises, extra, dups)| {
            let devices: Vec<DeviceId> = (0..n_devices)
                .map(|i| DeviceId(Uuid::from_u128(0x300 + i as u128)))
                .collect();
            let mut specs: Vec<Spec> = story
                .iter()
                .zip(&noises)
                .enumerate()
                .map(|(i, ((action, who, flag, pick), nz))| {
                    let (jitter, counter, device, skew, hours, photos, wrong) = *nz;
                    Spec {
                        action: *action,
                        who: wrong.map_or(*who, |w| PEOPLE[w]),
                        device,
                        secs: 10 * i as i64 + jitter,
                        counter,
                        skew,
                        hours,
                        flag: *flag,
                        pick: *pick,
                        photos,
                    }
                })
                .collect();
            for (action, who, usual, secs, nz, flag, pick) in extra {
                let (_, counter, device, skew, hours, photos, _) = nz;
                specs.push(Spec {
                    action,
                    who: if usual {
                        usual_actor(action)
                    } else {
                        PEOPLE[who]
                    },
                    device,
                    secs,
                    counter,
                    skew,
                    hours,
                    flag,
                    pick,
                    photos,
                });
            }
            let mut events: Vec<EventInput> = specs
                .iter()
                .enumerate()
                .map(|(n, s)| build(n, s, &devices))
                .collect();
            for (idx, exact, shift) in dups {
                let mut copy = events[idx.index(events.len())].clone();
                if !exact {
                    copy.hlc = Hlc::new(copy.hlc.ms + u64::from(shift) * 7_000, 0);
                }
                events.push(copy);
            }
            events
        })
}

fn check_invariants(t: &Ticket, events: &[EventInput]) -> Result<(), TestCaseError> {
    // The timeline: strictly increasing in fold order, each distinct id exactly once.
    for w in t.timeline.windows(2) {
        prop_assert!(
            (w[0].hlc, w[0].device_id, w[0].event_id) < (w[1].hlc, w[1].device_id, w[1].event_id)
        );
    }
    let mut ids: Vec<FactId> = events.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    let mut seen: Vec<FactId> = t.timeline.iter().map(|e| e.event_id).collect();
    seen.sort();
    prop_assert_eq!(ids, seen);

    // Exactly one accepted report, and the ticket's state is the last state in the timeline.
    prop_assert_eq!(
        t.timeline
            .iter()
            .filter(|e| e.action == Action::Report && e.status == EventStatus::Accepted)
            .count(),
        1
    );
    prop_assert_eq!(t.timeline.last().unwrap().state_after, t.state);
    for e in &t.timeline {
        prop_assert_eq!(e.status == EventStatus::Rejected, e.code.is_some());
        prop_assert_eq!(e.code.is_some(), e.reason.is_some());
    }

    // The state and the fields agree.
    prop_assert_eq!(
        t.extension.is_some(),
        t.state == HazardState::ExtensionRequested
    );
    if t.state == HazardState::Closed {
        prop_assert!(t.closed_at.is_some() && t.verified_by.is_some());
        prop_assert!(t.verified_by != t.fixed_by);
    } else {
        prop_assert!(t.closed_at.is_none() && t.verified_by.is_none());
    }
    prop_assert_eq!(
        t.state == HazardState::Cancelled,
        t.cancelled_at.is_some() && t.cancel_reason.is_some()
    );
    if !matches!(t.state, HazardState::Reported | HazardState::Cancelled) {
        prop_assert!(t.assignee.is_some() && t.assigned_at.is_some());
    }
    if matches!(
        t.state,
        HazardState::PendingVerification | HazardState::Closed
    ) {
        prop_assert!(t.fixed_by.is_some());
    }
    let accepted = |a: Action| {
        t.timeline
            .iter()
            .filter(|e| e.action == a && e.status == EventStatus::Accepted)
            .count() as u32
    };
    prop_assert_eq!(
        t.reopen_count,
        accepted(Action::VerifyFail) + accepted(Action::Reopen)
    );
    if !t.due_explicit {
        prop_assert_eq!(
            t.due_at.0,
            t.reported_at.0 + policy().default_due_ms(t.grade)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fold_does_not_depend_on_the_order_facts_arrive_in(
        (events, shuffled) in scenario().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let a = fold(&events, &policy());
        let b = fold(&shuffled, &policy());
        prop_assert_eq!(&a, &b);
        let mut reversed = events.clone();
        reversed.reverse();
        prop_assert_eq!(&a, &fold(&reversed, &policy()));
        if let Some(t) = &a {
            check_invariants(t, &events)?;
        }
    }

    #[test]
    fn a_rejected_event_changes_nothing(events in scenario()) {
        let Some(t) = fold(&events, &policy()) else { return Ok(()) };
        let rejected: Vec<FactId> = t.rejected().map(|e| e.event_id).collect();
        let kept: Vec<EventInput> = events
            .iter()
            .filter(|e| !rejected.contains(&e.id))
            .cloned()
            .collect();
        let u = fold(&kept, &policy()).expect("the accepted report is kept");
        prop_assert_eq!(without_timeline(&t), without_timeline(&u));
        // And the accepted events fare the same without the rejected ones.
        let accepted: Vec<_> = t
            .timeline
            .iter()
            .filter(|e| e.status == EventStatus::Accepted)
            .cloned()
            .collect();
        prop_assert_eq!(accepted, u.timeline);
    }
}
