//! Hazard tickets in storage: pushed events fold into tickets inside the push transaction,
//! rejected-at-their-place events stay stored and answer `rejected`, held events wait for
//! their report, online events are stored only when accepted, pull and list scopes, alerts.

use super::fixtures::*;
use serde_json::{json, Value};
use shared_core::hazard::{EventInput, EventStatus, HazardState, PhotoRef, PhotoRole, Ticket};
use shared_core::wire::{ChangeOp, ChangeStatus, RejectCode, Timestamp};
use shared_core::{AlertId, DeviceId, EstateId, FactId, HazardId, Hlc, Role, UserId};
use std::sync::atomic::{AtomicU64, Ordering};
use sync_server::storage::{
    AlertQuery, CloseAlert, DynStore, FeedPos, FeedScope, HazardQuery, NewAlert, OnlineEvent,
    OnlineOutcome,
};

/// Three hours before NOW: the first event of every story.
const T0: i64 = NOW - 3 * 3_600_000;
const MIN: i64 = 60_000;

struct Who {
    user: UserId,
    device: DeviceId,
    roles: Vec<Role>,
}

struct World {
    store: DynStore,
    estate: EstateId,
    guard: Who,
    guard2: Who,
    eng: Who,
    eng2: Who,
    sup: Who,
    sup2: Who,
    seq: AtomicU64,
}

async fn who(store: &DynStore, estate: EstateId, name: &str, roles: &[Role]) -> Who {
    let pairs: Vec<(EstateId, Role)> = roles.iter().map(|r| (estate, *r)).collect();
    let user = user(store, name, &pairs).await;
    Who {
        user,
        device: device(store, user).await,
        roles: roles.to_vec(),
    }
}

async fn world(store: DynStore) -> World {
    let estate = estate(&store, "Harbour View").await.id;
    World {
        guard: who(&store, estate, "guard", &[Role::Guard]).await,
        guard2: who(&store, estate, "guard2", &[Role::Guard]).await,
        eng: who(&store, estate, "eng", &[Role::Engineer]).await,
        eng2: who(&store, estate, "eng2", &[Role::Engineer]).await,
        sup: who(&store, estate, "sup", &[Role::Supervisor]).await,
        sup2: who(&store, estate, "sup2", &[Role::Supervisor]).await,
        store,
        estate,
        seq: AtomicU64::new(1),
    }
}

impl World {
    fn event(&self, by: &Who, at: i64, hazard: HazardId, action: &str, extra: Value) -> TestFact {
        let mut data = json!({"hazard_id": hazard, "action": action});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                data[k] = v;
            }
        }
        TestFact::hazard_event(
            self.estate,
            by.device,
            by.user,
            self.seq.fetch_add(1, Ordering::Relaxed),
            at,
            &by.roles,
            data,
        )
    }

    fn photo(&self, by: &Who, event: &TestFact, role: PhotoRole) -> TestFact {
        TestFact::hazard_photo(
            self.estate,
            by.device,
            by.user,
            self.seq.fetch_add(1, Ordering::Relaxed),
            event.record.id,
            role,
        )
    }

    fn report(&self, by: &Who, at: i64, hazard: HazardId, grade: &str) -> TestFact {
        self.event(
            by,
            at,
            hazard,
            "report",
            json!({"grade": grade, "category": "fire", "title": "Fire door wedged open"}),
        )
    }

    /// Pushes facts from one person; returns (status, code) per change.
    async fn push(&self, by: &Who, facts: &[&TestFact]) -> Vec<(ChangeStatus, Option<RejectCode>)> {
        let b = Batch::new(by.device, by.user).facts(facts.iter().copied());
        push(&self.store, &b)
            .await
            .results
            .iter()
            .map(|r| (r.status, r.code))
            .collect()
    }

    async fn ticket(&self, h: HazardId) -> Ticket {
        self.store
            .get_hazard(h)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("hazard {h} has no ticket"))
    }
}

const OK: (ChangeStatus, Option<RejectCode>) = (ChangeStatus::Accepted, None);

fn rejected(code: RejectCode) -> (ChangeStatus, Option<RejectCode>) {
    (ChangeStatus::Rejected, Some(code))
}

fn entry_status(t: &Ticket, f: &TestFact) -> (EventStatus, Option<RejectCode>) {
    let e = t
        .entry(f.record.id)
        .unwrap_or_else(|| panic!("event {} not in the timeline", f.record.id));
    (e.status, e.code)
}

pub async fn hazard_lifecycle_through_push(store: DynStore) {
    let w = world(store).await;
    let h = HazardId::new_v7();

    // A guard reports with a before photo, in one batch: a ticket with a code.
    let report = w.report(&w.guard, T0, h, "general");
    let before = w.photo(&w.guard, &report, PhotoRole::Before);
    assert_eq!(w.push(&w.guard, &[&report, &before]).await, vec![OK, OK]);
    let t = w.ticket(h).await;
    assert_eq!(t.state, HazardState::Reported);
    assert_eq!(t.reporter, w.guard.user);
    assert_eq!(t.estate_id, w.estate);
    assert!(
        t.code.starts_with("YH-") && t.code.ends_with("-0001") && t.code.len() == 16,
        "code {}",
        t.code
    );
    assert_eq!(t.timeline[0].photos.len(), 1);
    assert_eq!(t.timeline[0].photos[0].role, PhotoRole::Before);
    let code = t.code.clone();

    // Its bytes arrive later: the timeline shows them received (the ticket is rewritten,
    // so a pull sees it), and recording them again changes nothing.
    assert!(!t.timeline[0].photos[0].received);
    let blob = sync_server::storage::BlobRecord {
        sha256: before.record.data["sha256"].as_str().unwrap().to_owned(),
        bytes: 1000,
        mime: "image/jpeg".into(),
        stored_at: NOW,
    };
    let touched = w.store.record_photo_blob(&blob).await.unwrap();
    assert_eq!(touched, Some(vec![w.estate]));
    assert!(w.ticket(h).await.timeline[0].photos[0].received);
    assert_eq!(w.store.record_photo_blob(&blob).await.unwrap(), None);

    // Assign, start; a fix without an after photo is stored but rejected.
    let due = NOW + 24 * 3_600_000;
    let assign = w.event(
        &w.sup,
        T0 + MIN,
        h,
        "assign",
        json!({"assignee": w.eng.user, "due_at": Timestamp(due)}),
    );
    assert_eq!(w.push(&w.sup, &[&assign]).await, vec![OK]);
    let start = w.event(&w.eng, T0 + 2 * MIN, h, "start", json!({}));
    let bare_fix = w.event(&w.eng, T0 + 3 * MIN, h, "submit_fix", json!({}));
    assert_eq!(
        w.push(&w.eng, &[&start, &bare_fix]).await,
        vec![OK, rejected(RejectCode::EvidenceRequired)]
    );
    assert!(
        w.store
            .get_fact(bare_fix.record.id)
            .await
            .unwrap()
            .is_some(),
        "a rejected event is still stored"
    );
    let t = w.ticket(h).await;
    assert_eq!(t.state, HazardState::InRectification);
    assert_eq!((t.assignee, t.due_at), (Some(w.eng.user), Timestamp(due)));

    // The fix with its photo; the engineer may not verify; the supervisor closes it.
    let fix = w.event(
        &w.eng,
        T0 + 4 * MIN,
        h,
        "submit_fix",
        json!({"note": "door closer replaced"}),
    );
    let after = w.photo(&w.eng, &fix, PhotoRole::After);
    let eng_verify = w.event(&w.eng, T0 + 5 * MIN, h, "verify_pass", json!({}));
    let eng_photo = w.photo(&w.eng, &eng_verify, PhotoRole::Verification);
    assert_eq!(
        w.push(&w.eng, &[&fix, &after, &eng_verify, &eng_photo])
            .await,
        vec![OK, OK, rejected(RejectCode::RoleForbidden), OK]
    );
    assert_eq!(w.ticket(h).await.state, HazardState::PendingVerification);
    let verify = w.event(&w.sup, T0 + 6 * MIN, h, "verify_pass", json!({}));
    let vphoto = w.photo(&w.sup, &verify, PhotoRole::Verification);
    assert_eq!(w.push(&w.sup, &[&verify, &vphoto]).await, vec![OK, OK]);

    let t = w.ticket(h).await;
    assert_eq!(t.state, HazardState::Closed);
    assert_eq!(t.code, code, "the code never changes");
    assert_eq!(t.closed_at, Some(Timestamp(T0 + 6 * MIN)));
    assert_eq!(
        (t.fixed_by, t.verified_by),
        (Some(w.eng.user), Some(w.sup.user))
    );
    let order: Vec<FactId> = t.timeline.iter().map(|e| e.event_id).collect();
    let want: Vec<FactId> = [
        &report,
        &assign,
        &start,
        &bare_fix,
        &fix,
        &eng_verify,
        &verify,
    ]
    .iter()
    .map(|f| f.record.id)
    .collect();
    assert_eq!(
        order, want,
        "every event, accepted or rejected, in HLC order"
    );
    assert_eq!(
        entry_status(&t, &bare_fix),
        (EventStatus::Rejected, Some(RejectCode::EvidenceRequired))
    );

    // A re-send of the same facts in a new batch: duplicates, and nothing changes.
    assert_eq!(
        w.push(&w.sup, &[&verify, &vphoto]).await,
        vec![(ChangeStatus::Duplicate, None); 2]
    );
    assert_eq!(w.ticket(h).await, t);
}

/// A report pushed before its photo is answered `rejected` (evidence_required) but kept:
/// when the photo comes in a later batch, the ticket opens.
pub async fn a_report_waits_for_its_photo(store: DynStore) {
    let w = world(store).await;
    let h = HazardId::new_v7();
    let report = w.report(&w.guard, T0, h, "general");
    assert_eq!(
        w.push(&w.guard, &[&report]).await,
        vec![rejected(RejectCode::EvidenceRequired)]
    );
    assert_eq!(w.store.get_hazard(h).await.unwrap(), None);
    assert!(w.store.get_fact(report.record.id).await.unwrap().is_some());
    let photo = w.photo(&w.guard, &report, PhotoRole::Before);
    assert_eq!(w.push(&w.guard, &[&photo]).await, vec![OK]);
    let t = w.ticket(h).await;
    assert_eq!(t.state, HazardState::Reported);
    assert_eq!(entry_status(&t, &report), (EventStatus::Accepted, None));
}

pub async fn self_verification_is_rejected(store: DynStore) {
    let w = world(store).await;
    let both = who(
        &w.store,
        w.estate,
        "lead",
        &[Role::Engineer, Role::Supervisor],
    )
    .await;
    let h = HazardId::new_v7();
    let report = w.report(&w.guard, T0, h, "general");
    let before = w.photo(&w.guard, &report, PhotoRole::Before);
    w.push(&w.guard, &[&report, &before]).await;
    let assign = w.event(
        &w.sup,
        T0 + MIN,
        h,
        "assign",
        json!({"assignee": both.user}),
    );
    let start = w.event(&both, T0 + 2 * MIN, h, "start", json!({}));
    let fix = w.event(&both, T0 + 3 * MIN, h, "submit_fix", json!({}));
    let after = w.photo(&both, &fix, PhotoRole::After);
    let verify = w.event(&both, T0 + 4 * MIN, h, "verify_pass", json!({}));
    let vphoto = w.photo(&both, &verify, PhotoRole::Verification);
    w.push(&w.sup, &[&assign]).await;
    assert_eq!(
        w.push(&both, &[&start, &fix, &after, &verify, &vphoto])
            .await,
        vec![OK, OK, OK, rejected(RejectCode::SelfVerification), OK]
    );
    assert_eq!(w.ticket(h).await.state, HazardState::PendingVerification);
}

pub async fn late_cancel_wins_and_held_events_fold_in(store: DynStore) {
    let w = world(store).await;
    let h = HazardId::new_v7();

    // The assign arrives before the report (still queued on the guard's handset): held.
    let assign = w.event(
        &w.sup,
        T0 + 2 * MIN,
        h,
        "assign",
        json!({"assignee": w.eng.user}),
    );
    assert_eq!(w.push(&w.sup, &[&assign]).await, vec![OK]);
    assert_eq!(w.store.get_hazard(h).await.unwrap(), None);
    let held = w
        .store
        .held_hazard_events(w.estate, NOW + 1, 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].event_id, held[0].hazard_id), (assign.record.id, h));
    assert_eq!(held[0].action, "assign");
    assert!(w
        .store
        .held_hazard_events(w.estate, NOW, 10)
        .await
        .unwrap()
        .is_empty());

    // The report arrives: the assign folds in at its place.
    let report = w.report(&w.guard, T0, h, "general");
    let before = w.photo(&w.guard, &report, PhotoRole::Before);
    assert_eq!(w.push(&w.guard, &[&report, &before]).await, vec![OK, OK]);
    assert_eq!(w.ticket(h).await.state, HazardState::Assigned);
    assert!(w
        .store
        .held_hazard_events(w.estate, NOW + 1, 10)
        .await
        .unwrap()
        .is_empty());

    // A cancel made offline before the assign (by HLC) arrives last: it wins, and the
    // assign is now rejected at its place. The cancel itself is answered accepted.
    let cancel = w.event(
        &w.sup2,
        T0 + MIN,
        h,
        "cancel",
        json!({"reason": "duplicate of YH-0001"}),
    );
    assert_eq!(w.push(&w.sup2, &[&cancel]).await, vec![OK]);
    let t = w.ticket(h).await;
    assert_eq!(t.state, HazardState::Cancelled);
    assert_eq!(t.cancel_reason.as_deref(), Some("duplicate of YH-0001"));
    assert_eq!(
        entry_status(&t, &assign),
        (EventStatus::Rejected, Some(RejectCode::InvalidTransition))
    );
    assert_eq!(entry_status(&t, &cancel), (EventStatus::Accepted, None));

    // A supervisor's pull carries the ticket as it is now.
    let items = drain(
        &w.store,
        &scope_full(w.sup.user, &[w.estate]),
        FeedPos::default(),
        100,
    )
    .await;
    let last = items
        .iter()
        .rfind(|i| i.change.collection == "hazards" && i.change.id == h.to_string())
        .expect("the ticket is in the supervisor's feed");
    assert_eq!(last.change.op, ChangeOp::Put);
    assert_eq!(last.change.data.as_ref().unwrap()["state"], "cancelled");
}

fn online(
    w: &World,
    by: &Who,
    hazard: HazardId,
    at: i64,
    data: Value,
    photos: Vec<PhotoRef>,
) -> OnlineEvent {
    let mut data = data;
    data["hazard_id"] = json!(hazard);
    data["estate_id"] = json!(w.estate);
    let parsed = shared_core::hazard::parse_event(&data).expect("well-formed");
    OnlineEvent {
        content_hash: format!("hash of {data}"),
        input: EventInput {
            id: FactId::new_v7(),
            hazard_id: hazard,
            estate_id: w.estate,
            hlc: Hlc::new(at as u64, 0),
            device_id: by.device,
            actor: by.user,
            roles: by.roles.clone(),
            at,
            body: parsed.body,
            data,
            photos,
        },
        received_at: at,
    }
}

pub async fn online_events_are_stored_only_when_accepted(store: DynStore) {
    let w = world(store).await;
    let h = HazardId::new_v7();

    let unknown = online(
        &w,
        &w.sup,
        h,
        T0,
        json!({"action": "comment", "text": "hello?"}),
        vec![],
    );
    assert_eq!(
        w.store.post_hazard_event(unknown).await.unwrap(),
        OnlineOutcome::UnknownHazard
    );

    let photo = PhotoRef {
        id: FactId::new_v7(),
        role: PhotoRole::Before,
        sha256: "ab".repeat(32),
        received: false,
    };
    let report = online(
        &w,
        &w.guard,
        h,
        T0,
        json!({"action": "report", "grade": "major", "category": "electrical", "title": "Exposed wiring"}),
        vec![photo],
    );
    let t = match w.store.post_hazard_event(report.clone()).await.unwrap() {
        OnlineOutcome::Stored(t) => t,
        other => panic!("report: {other:?}"),
    };
    assert_eq!(t.state, HazardState::Reported);
    assert!(t.code.starts_with("YH-"));
    assert_eq!(w.ticket(h).await, t);

    // The same event again: the ticket as it is; the same id with other content: conflict.
    assert_eq!(
        w.store.post_hazard_event(report.clone()).await.unwrap(),
        OnlineOutcome::Duplicate(t.clone())
    );
    let mut other = report.clone();
    other.content_hash = "something else".into();
    assert_eq!(
        w.store.post_hazard_event(other).await.unwrap(),
        OnlineOutcome::IdConflict
    );

    // Refused here and now: nothing is stored.
    let verify = online(
        &w,
        &w.sup,
        h,
        T0 + MIN,
        json!({"action": "verify_pass"}),
        vec![],
    );
    match w.store.post_hazard_event(verify).await.unwrap() {
        OnlineOutcome::Rejected { code, message } => {
            assert_eq!(code, RejectCode::InvalidTransition);
            assert!(!message.is_empty());
        }
        other => panic!("verify on a reported ticket: {other:?}"),
    }
    // A major hazard cannot start without its plan.
    let assign = online(
        &w,
        &w.sup,
        h,
        T0 + 2 * MIN,
        json!({"action": "assign", "assignee": w.eng.user}),
        vec![],
    );
    assert!(matches!(
        w.store.post_hazard_event(assign).await.unwrap(),
        OnlineOutcome::Stored(_)
    ));
    let start = online(
        &w,
        &w.eng,
        h,
        T0 + 3 * MIN,
        json!({"action": "start"}),
        vec![],
    );
    assert!(matches!(
        w.store.post_hazard_event(start).await.unwrap(),
        OnlineOutcome::Rejected {
            code: RejectCode::PlanRequired,
            ..
        }
    ));
    let t = w.ticket(h).await;
    assert_eq!(t.timeline.len(), 2, "only the accepted events are stored");
    assert_eq!(t.state, HazardState::Assigned);

    // A report the fold refuses names its own reason (no ticket, so no timeline).
    let bare = online(
        &w,
        &w.guard,
        HazardId::new_v7(),
        T0,
        json!({"action": "report", "grade": "general", "category": "water", "title": "Leak"}),
        vec![],
    );
    assert!(matches!(
        w.store.post_hazard_event(bare).await.unwrap(),
        OnlineOutcome::Rejected {
            code: RejectCode::EvidenceRequired,
            ..
        }
    ));

    // Codes are numbered per estate and day: another estate starts at 0001 too.
    let other = estate(&w.store, "Garden Court").await.id;
    let g = who(&w.store, other, "guard-gc", &[Role::Guard]).await;
    let mut r = online(
        &w,
        &g,
        HazardId::new_v7(),
        T0,
        json!({"action": "report", "grade": "general", "category": "water", "title": "Leak"}),
        vec![PhotoRef {
            id: FactId::new_v7(),
            role: PhotoRole::Before,
            sha256: "cd".repeat(32),
            received: false,
        }],
    );
    r.input.estate_id = other;
    r.input.data["estate_id"] = json!(other);
    match w.store.post_hazard_event(r).await.unwrap() {
        OnlineOutcome::Stored(t2) => {
            assert_eq!(&t2.code[..12], &t.code[..12], "same day");
            assert!(t2.code.ends_with("-0001"), "{} in another estate", t2.code);
            assert!(t.code.ends_with("-0001"), "{}", t.code);
        }
        other => panic!("a report in another estate: {other:?}"),
    }
}

pub async fn hazard_pull_and_list_scopes(store: DynStore) {
    let w = world(store).await;
    let (h1, h2) = (HazardId::new_v7(), HazardId::new_v7());
    for (h, by, at) in [(h1, &w.guard, T0), (h2, &w.guard2, T0 + MIN)] {
        let r = w.report(by, at, h, "general");
        let p = w.photo(by, &r, PhotoRole::Before);
        w.push(by, &[&r, &p]).await;
    }
    // h2 goes to eng2 and is closed: out of eng's view.
    let assign = w.event(
        &w.sup,
        T0 + 2 * MIN,
        h2,
        "assign",
        json!({"assignee": w.eng2.user}),
    );
    w.push(&w.sup, &[&assign]).await;
    let start = w.event(&w.eng2, T0 + 3 * MIN, h2, "start", json!({}));
    let fix = w.event(&w.eng2, T0 + 4 * MIN, h2, "submit_fix", json!({}));
    let after = w.photo(&w.eng2, &fix, PhotoRole::After);
    w.push(&w.eng2, &[&start, &fix, &after]).await;
    let verify = w.event(&w.sup, T0 + 5 * MIN, h2, "verify_pass", json!({}));
    let vp = w.photo(&w.sup, &verify, PhotoRole::Verification);
    w.push(&w.sup, &[&verify, &vp]).await;
    assert_eq!(w.ticket(h2).await.state, HazardState::Closed);

    let hazards_seen = |items: &[sync_server::storage::FeedItem]| -> Vec<(String, ChangeOp)> {
        let mut last: std::collections::BTreeMap<String, ChangeOp> = Default::default();
        for i in items.iter().filter(|i| i.change.collection == "hazards") {
            last.insert(i.change.id.clone(), i.change.op);
        }
        last.into_iter().collect()
    };
    let own = |who: &Who, engineer: bool| FeedScope {
        user_id: who.user,
        full: vec![],
        own: vec![w.estate],
        engineer: if engineer { vec![w.estate] } else { vec![] },
    };
    let sup = drain(
        &w.store,
        &scope_full(w.sup.user, &[w.estate]),
        FeedPos::default(),
        100,
    )
    .await;
    let mut both = vec![
        (h1.to_string(), ChangeOp::Put),
        (h2.to_string(), ChangeOp::Put),
    ];
    both.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(hazards_seen(&sup), both);
    let g = drain(&w.store, &own(&w.guard, false), FeedPos::default(), 100).await;
    assert_eq!(hazards_seen(&g), vec![(h1.to_string(), ChangeOp::Put)]);
    let e = drain(&w.store, &own(&w.eng, true), FeedPos::default(), 100).await;
    let mut eng_view = vec![
        (h1.to_string(), ChangeOp::Put),
        (h2.to_string(), ChangeOp::Delete),
    ];
    eng_view.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        hazards_seen(&e),
        eng_view,
        "closed and someone else's: a delete"
    );
    let e2 = drain(&w.store, &own(&w.eng2, true), FeedPos::default(), 100).await;
    assert_eq!(
        hazards_seen(&e2),
        both,
        "assigned to them: still theirs when closed"
    );

    // The tracker list: same scopes, filters, newest first, keyset paging.
    let base = HazardQuery {
        full: vec![w.estate],
        user_id: Some(w.sup.user),
        now: NOW,
        limit: 10,
        ..Default::default()
    };
    let ids = |v: Vec<Ticket>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(w.store.list_hazards(&base).await.unwrap()),
        vec![h2, h1]
    );
    let listed = w.store.list_hazards(&base).await.unwrap();
    assert!(
        listed.iter().all(|t| t.timeline.is_empty()),
        "lists carry no timelines"
    );
    let page1 = w
        .store
        .list_hazards(&HazardQuery {
            limit: 1,
            ..base.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(page1.clone()), vec![h2]);
    let before = Some((page1[0].reported_at.0, page1[0].id));
    assert_eq!(
        ids(w
            .store
            .list_hazards(&HazardQuery {
                limit: 1,
                before,
                ..base.clone()
            })
            .await
            .unwrap()),
        vec![h1]
    );
    let q = |f: fn(&mut HazardQuery)| {
        let mut q = base.clone();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(w
            .store
            .list_hazards(&q(|q| q.state = Some(HazardState::Closed)))
            .await
            .unwrap()),
        vec![h2]
    );
    assert_eq!(
        ids(w
            .store
            .list_hazards(&q(|q| q.assignee = Some(UserId(uuid::Uuid::nil()))))
            .await
            .unwrap()),
        vec![]
    );
    // h1 is general, due 24 h after T0: not overdue at NOW, overdue a day later.
    assert_eq!(
        ids(w
            .store
            .list_hazards(&q(|q| q.overdue = Some(true)))
            .await
            .unwrap()),
        vec![]
    );
    assert_eq!(
        ids(w
            .store
            .list_hazards(&q(|q| {
                q.overdue = Some(true);
                q.now = NOW + 24 * 3_600_000;
            }))
            .await
            .unwrap()),
        vec![h1]
    );
    assert_eq!(
        ids(w
            .store
            .list_hazards(&q(|q| q.from = Some(T0 + 1)))
            .await
            .unwrap()),
        vec![h2]
    );
    let guard_view = HazardQuery {
        full: vec![],
        reporter: vec![w.estate],
        user_id: Some(w.guard.user),
        ..base.clone()
    };
    assert_eq!(
        ids(w.store.list_hazards(&guard_view).await.unwrap()),
        vec![h1]
    );
    let eng_list = HazardQuery {
        full: vec![],
        engineer: vec![w.estate],
        user_id: Some(w.eng.user),
        ..base.clone()
    };
    assert_eq!(
        ids(w.store.list_hazards(&eng_list).await.unwrap()),
        vec![h1]
    );

    // Summaries for statistics.
    let s = w
        .store
        .hazard_summaries(w.estate, None, None)
        .await
        .unwrap();
    assert_eq!(s.len(), 2);
    let closed = s.iter().find(|x| x.id == h2).unwrap();
    assert_eq!(closed.closed_at, Some(T0 + 5 * MIN));
    assert_eq!(
        w.store
            .hazard_summaries(w.estate, Some(T0 + 1), None)
            .await
            .unwrap()
            .len(),
        1
    );
    let open = w.store.open_hazards().await.unwrap();
    assert_eq!(open.iter().map(|t| t.id).collect::<Vec<_>>(), vec![h1]);
    let mut full = w.ticket(h1).await;
    assert!(!full.timeline.is_empty());
    full.timeline.clear();
    assert_eq!(
        open[0], full,
        "open tickets come whole but for the timeline"
    );
}

pub async fn alerts_are_raised_once_and_closed_with_a_comment(store: DynStore) {
    let w = world(store).await;
    let alert = |key: &str, to: Option<UserId>| NewAlert {
        id: AlertId::new_v7(),
        estate_id: w.estate,
        kind: "hazard_escalation".into(),
        subject_id: "h".into(),
        dedupe_key: key.into(),
        target: if to.is_some() {
            "assignee"
        } else {
            "supervisor"
        }
        .into(),
        recipient_id: to,
        raised_at: NOW,
        data: json!({"at_percent": 75}),
    };
    let a1 = alert("k1", Some(w.eng.user));
    let a2 = alert("k2", None);
    assert_eq!(
        w.store
            .raise_alerts(&[a1.clone(), a2.clone()])
            .await
            .unwrap(),
        vec![w.estate]
    );
    assert_eq!(
        w.store
            .raise_alerts(&[alert("k1", Some(w.eng.user))])
            .await
            .unwrap(),
        vec![],
        "the same key again is no new alert"
    );
    let all = AlertQuery {
        estate: w.estate,
        recipient: None,
        open_only: true,
        limit: 10,
    };
    assert_eq!(w.store.list_alerts(&all).await.unwrap().len(), 2);
    let mine = AlertQuery {
        recipient: Some(w.eng.user),
        ..all.clone()
    };
    let listed = w.store.list_alerts(&mine).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), vec![a1.id]);

    match w
        .store
        .close_alert(a1.id, w.eng.user, "door fixed, see YH-1", NOW + 1)
        .await
        .unwrap()
    {
        CloseAlert::Closed(a) => {
            assert_eq!(a.closed_by, Some(w.eng.user));
            assert_eq!(a.close_comment.as_deref(), Some("door fixed, see YH-1"));
            assert_eq!(a.closed_at, Some(Timestamp(NOW + 1)));
        }
        other => panic!("close: {other:?}"),
    }
    assert!(matches!(
        w.store.close_alert(a1.id, w.sup.user, "again", NOW + 2).await.unwrap(),
        CloseAlert::AlreadyClosed(a) if a.close_comment.as_deref() == Some("door fixed, see YH-1")
    ));
    assert_eq!(
        w.store
            .close_alert(AlertId::new_v7(), w.sup.user, "x", NOW)
            .await
            .unwrap(),
        CloseAlert::NotFound
    );
    assert_eq!(
        w.store.list_alerts(&all).await.unwrap().len(),
        1,
        "open only"
    );
    assert_eq!(
        w.store.get_alert(a2.id).await.unwrap().unwrap().target,
        "supervisor"
    );

    // Alerts reach the engineer's feed (theirs only) and every overseer's.
    let eng_scope = FeedScope {
        user_id: w.eng.user,
        full: vec![],
        own: vec![w.estate],
        engineer: vec![w.estate],
    };
    let items = drain(&w.store, &eng_scope, FeedPos::default(), 100).await;
    let alerts: Vec<_> = items
        .iter()
        .filter(|i| i.change.collection == "alerts")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].change.data.as_ref().unwrap()["closed_by"],
        json!(w.eng.user)
    );
    let items = drain(
        &w.store,
        &scope_full(w.sup.user, &[w.estate]),
        FeedPos::default(),
        100,
    )
    .await;
    assert_eq!(
        items
            .iter()
            .filter(|i| i.change.collection == "alerts")
            .count(),
        2
    );
}

/// Many handsets push events on one ticket at once: every event is in the ticket after
/// each round. On PostgreSQL this needs the per-ticket lock: without it, two pushes fold
/// without each other's event and the last to write loses one (each round is a chance).
pub async fn concurrent_pushes_on_one_ticket_lose_no_event(store: DynStore) {
    let w = std::sync::Arc::new(world(store).await);
    let h = HazardId::new_v7();
    let report = w.report(&w.guard, T0, h, "general");
    let before = w.photo(&w.guard, &report, PhotoRole::Before);
    w.push(&w.guard, &[&report, &before]).await;
    const ROUNDS: i64 = 12;
    const PUSHERS: usize = 6;
    for round in 0..ROUNDS {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(PUSHERS));
        let mut tasks = Vec::new();
        for k in 0..PUSHERS {
            let (w, barrier) = (w.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let by = [&w.guard, &w.guard2, &w.eng, &w.eng2, &w.sup, &w.sup2][k];
                let at = T0 + MIN + round * 1000 + k as i64;
                let c = w.event(
                    by,
                    at,
                    h,
                    "comment",
                    json!({"text": format!("{k}/{round}")}),
                );
                barrier.wait().await;
                assert_eq!(w.push(by, &[&c]).await, vec![OK]);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let t = w.ticket(h).await;
        assert_eq!(
            t.timeline.len() as i64,
            1 + (round + 1) * PUSHERS as i64,
            "round {round}: every comment pushed so far is in the ticket"
        );
    }
    let t = w.ticket(h).await;
    assert!(t.timeline.iter().all(|e| e.status == EventStatus::Accepted));
}

/// A ticket as the fold decided it, without ids that differ between trials.
fn shape(t: &Ticket, w: &World) -> String {
    let name = |u: Option<UserId>| match u {
        Some(u) if u == w.eng.user => "eng",
        Some(u) if u == w.sup.user => "sup",
        Some(u) if u == w.sup2.user => "sup2",
        Some(u) if u == w.guard.user => "guard",
        Some(_) => "someone",
        None => "-",
    };
    let timeline: Vec<String> = t
        .timeline
        .iter()
        .map(|e| format!("{}:{:?}:{:?}", e.action.as_str(), e.status, e.code))
        .collect();
    format!(
        "{:?} {} {} due={} reopen={} fixed={} verified={} closed={:?} [{}]",
        t.state,
        t.title,
        name(t.assignee),
        t.due_at.0,
        t.reopen_count,
        name(t.fixed_by),
        name(t.verified_by),
        t.closed_at,
        timeline.join(", ")
    )
}

/// The same events from four handsets, pushed in any order and any batching (each batch
/// from one handset, photos sometimes before their events): the same ticket every time.
pub async fn any_arrival_order_and_batching_gives_the_same_ticket(store: DynStore) {
    let w = world(store).await;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut first: Option<String> = None;
    for trial in 0..8 {
        let h = HazardId::new_v7();
        let (g, s, s2, e) = (&w.guard, &w.sup, &w.sup2, &w.eng);
        let report = w.report(g, T0, h, "general");
        let before = w.photo(g, &report, PhotoRole::Before);
        let edit1 = w.event(s, T0 + 30_000, h, "edit", json!({"title": "first title"}));
        let edit2 = w.event(s2, T0 + 40_000, h, "edit", json!({"title": "second title"}));
        let assign = w.event(
            s,
            T0 + MIN,
            h,
            "assign",
            json!({"assignee": e.user, "due_at": Timestamp(NOW + 3_600_000)}),
        );
        let start = w.event(e, T0 + 2 * MIN, h, "start", json!({}));
        let fix1 = w.event(e, T0 + 3 * MIN, h, "submit_fix", json!({}));
        let after1 = w.photo(e, &fix1, PhotoRole::After);
        let own_verify = w.event(e, T0 + 4 * MIN, h, "verify_pass", json!({}));
        let fail = w.event(
            s2,
            T0 + 5 * MIN,
            h,
            "verify_fail",
            json!({"reason": "still leaking"}),
        );
        let fix2 = w.event(e, T0 + 6 * MIN, h, "submit_fix", json!({}));
        let after2 = w.photo(e, &fix2, PhotoRole::After);
        let comment = w.event(g, T0 + 6 * MIN + 1, h, "comment", json!({"text": "thanks"}));
        let pass = w.event(s, T0 + 7 * MIN, h, "verify_pass", json!({}));
        let vphoto = w.photo(s, &pass, PhotoRole::Verification);
        let mut all: Vec<(&Who, TestFact)> = vec![
            (g, report),
            (g, before),
            (s, edit1),
            (s2, edit2),
            (s, assign),
            (e, start),
            (e, fix1),
            (e, after1),
            (e, own_verify),
            (s2, fail),
            (e, fix2),
            (e, after2),
            (g, comment),
            (s, pass),
            (s, vphoto),
        ];
        // Shuffle, then cut into batches of consecutive changes from one handset.
        for i in (1..all.len()).rev() {
            all.swap(i, next(i + 1));
        }
        let mut i = 0;
        while i < all.len() {
            let who = all[i].0;
            let mut batch = vec![&all[i].1];
            i += 1;
            while i < all.len() && std::ptr::eq(all[i].0, who) && next(2) == 0 {
                batch.push(&all[i].1);
                i += 1;
            }
            w.push(who, &batch).await;
        }
        let got = shape(&w.ticket(h).await, &w);
        match &first {
            None => {
                assert!(
                    got.starts_with("Closed second title eng"),
                    "trial {trial}: {got}"
                );
                assert!(
                    got.contains("verify_pass:Rejected:Some(RoleForbidden)")
                        && got.contains("reopen=1"),
                    "{got}"
                );
                first = Some(got);
            }
            Some(want) => assert_eq!(&got, want, "trial {trial}: another order, another ticket"),
        }
    }
}

pub async fn hazards_are_listed_by_zone(store: DynStore) {
    let w = world(store).await;
    let (zone, other, cp) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let hs: Vec<HazardId> = (0..4).map(|_| HazardId::new_v7()).collect();
    let locations = [
        json!({"zone_id": zone, "text": "B2"}),
        json!({"checkpoint_id": cp}),
        json!({"zone_id": other}),
        json!(null),
    ];
    for (i, (h, loc)) in hs.iter().zip(locations).enumerate() {
        let mut fields =
            json!({"grade": "general", "category": "fire", "title": "Fire door wedged open"});
        if !loc.is_null() {
            fields["location"] = loc;
        }
        let r = w.event(&w.guard, T0 + i as i64 * MIN, *h, "report", fields);
        let p = w.photo(&w.guard, &r, PhotoRole::Before);
        let res = w.push(&w.guard, &[&r, &p]).await;
        assert!(
            res.iter().all(|(s, _)| *s == ChangeStatus::Accepted),
            "{res:?}"
        );
    }
    let list = |zone_id: uuid::Uuid, checkpoints: Vec<uuid::Uuid>| {
        let q = HazardQuery {
            full: vec![w.estate],
            user_id: Some(w.sup.user),
            now: NOW,
            limit: 10,
            zone: Some(sync_server::storage::ZoneFilter {
                zone_id,
                checkpoints,
            }),
            ..Default::default()
        };
        let store = w.store.clone();
        async move {
            let mut ids: Vec<HazardId> = store
                .list_hazards(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<HazardId>| {
        v.sort();
        v
    };
    assert_eq!(
        list(zone, vec![cp]).await,
        sorted(vec![hs[0], hs[1]]),
        "the zone and its checkpoint"
    );
    assert_eq!(
        list(zone, vec![]).await,
        vec![hs[0]],
        "a zone without checkpoints"
    );
    assert_eq!(list(other, vec![cp]).await, sorted(vec![hs[1], hs[2]]));
    assert_eq!(list(uuid::Uuid::now_v7(), vec![]).await, vec![]);
}
