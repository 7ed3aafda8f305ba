//! Patrol coverage in storage: reference data written through `apply_reference` (checked
//! inside the transaction, carried by pull, tombstoned on delete, refused whole), scans and
//! run events recorded beside their facts once, scans resolved by the tags as they stand
//! now, excuses, the estate's time zone, and the estates the sweeper visits.

use super::fixtures::*;
use shared_core::patrol::{
    Checkpoint, CheckpointClass, Excuse, GeoPoint, RefCollection, RefEntity, RefError, RefOp,
    ReferenceSet, Route, Rule, RuleKind, RuleTarget, RunAction, RunEventData, ScanLocation,
    ScanObs, Tag, TagKind, TimeOfDay, Window, Zone,
};
use shared_core::wire::{ChangeOp, ChangeStatus, Timestamp};
use shared_core::{
    CheckpointId, ClockTrust, DeviceId, EstateId, Flag, Role, RouteId, RuleId, RunId, UserId,
    ZoneId,
};
use std::sync::atomic::{AtomicU64, Ordering};
use sync_server::storage::{DynStore, FeedItem, FeedPos, FeedScope, PushOutcome, StoreError};

const MIN: i64 = 60_000;
/// Two hours before NOW: the first scan of every story.
const T0: i64 = NOW - 2 * 3_600_000;

struct World {
    store: DynStore,
    estate: EstateId,
    guard: UserId,
    device: DeviceId,
    seq: AtomicU64,
}

async fn world(store: DynStore, name: &str) -> World {
    let estate = estate(&store, name).await.id;
    let guard = user(&store, "guard", &[(estate, Role::Guard)]).await;
    let device = device(&store, guard).await;
    World {
        store,
        estate,
        guard,
        device,
        seq: AtomicU64::new(1),
    }
}

impl World {
    fn zone(&self, code: &str) -> Zone {
        Zone {
            id: ZoneId::new_v7(),
            estate_id: self.estate,
            code: code.into(),
            name: format!("Zone {code}"),
        }
    }

    fn checkpoint(&self, code: &str, zone: Option<ZoneId>, tags: &[&str]) -> Checkpoint {
        Checkpoint {
            id: CheckpointId::new_v7(),
            estate_id: self.estate,
            zone_id: zone,
            code: code.into(),
            name: format!("Checkpoint {code}"),
            class: CheckpointClass::Key,
            location: Some(GeoPoint {
                lat: 22.54,
                lng: 114.05,
            }),
            radius_m: 30.0,
            floor: Some("B1".into()),
            instructions: Some("Check the fire door is shut.".into()),
            tags: nfc(tags),
        }
    }

    fn route(&self, code: &str, checkpoints: &[CheckpointId]) -> Route {
        Route {
            id: RouteId::new_v7(),
            estate_id: self.estate,
            code: code.into(),
            name: format!("Route {code}"),
            checkpoints: checkpoints.to_vec(),
            strict: true,
            expected_minutes: 30,
        }
    }

    fn rule(&self, name: &str) -> Rule {
        Rule {
            id: RuleId::new_v7(),
            estate_id: self.estate,
            name: name.into(),
            window: Window {
                start: TimeOfDay(22 * 60),
                end: TimeOfDay(6 * 60),
            },
            kind: RuleKind::Interval {
                target: RuleTarget::Class(CheckpointClass::Key),
                every_minutes: 60,
                grace: None,
            },
        }
    }

    async fn apply(
        &self,
        ops: Vec<RefOp>,
    ) -> Result<Vec<shared_core::patrol::RefChange>, Vec<RefError>> {
        self.store
            .apply_reference(self.estate, ops, NOW)
            .await
            .expect("apply_reference")
    }

    async fn applied(&self, ops: Vec<RefOp>) {
        if let Err(e) = self.apply(ops).await {
            panic!("reference operations refused: {e:?}");
        }
    }

    async fn reference(&self) -> ReferenceSet {
        self.store.reference(self.estate).await.expect("reference")
    }

    fn scan(&self, at: i64, tag: &str) -> TestFact {
        TestFact::scan(
            self.estate,
            self.device,
            self.guard,
            self.seq.fetch_add(1, Ordering::Relaxed),
            at,
            tag,
        )
    }

    fn run_event(&self, at: i64, event: RunEventData) -> TestFact {
        TestFact::run_event(
            self.estate,
            self.device,
            self.guard,
            self.seq.fetch_add(1, Ordering::Relaxed),
            at,
            event,
        )
    }

    async fn push(&self, facts: &[&TestFact]) -> Vec<ChangeStatus> {
        let b = Batch::new(self.device, self.guard).facts(facts.iter().copied());
        statuses(&push(&self.store, &b).await)
    }

    async fn scans(&self) -> Vec<ScanObs> {
        self.store
            .scans_between(self.estate, 0, i64::MAX)
            .await
            .expect("scans_between")
    }

    /// The checkpoint each scan resolves to, by scan id.
    async fn resolved(&self, scans: &[&TestFact]) -> Vec<Option<CheckpointId>> {
        let stored = self.scans().await;
        scans
            .iter()
            .map(|f| {
                stored
                    .iter()
                    .find(|s| s.id == f.record.id)
                    .unwrap_or_else(|| panic!("scan {} is not stored", f.record.id))
                    .checkpoint_id
            })
            .collect()
    }

    fn member_scope(&self) -> FeedScope {
        FeedScope {
            user_id: self.guard,
            full: vec![],
            own: vec![self.estate],
            engineer: vec![],
        }
    }

    /// The member's feed after `after`, and the position it ends at.
    async fn pull_after(&self, after: FeedPos) -> (Vec<FeedItem>, FeedPos) {
        let items = drain(&self.store, &self.member_scope(), after, 100).await;
        let end = items.last().map_or(after, |i| i.pos);
        (items, end)
    }
}

fn nfc(values: &[&str]) -> Vec<Tag> {
    values
        .iter()
        .map(|v| Tag {
            kind: TagKind::Nfc,
            value: (*v).into(),
        })
        .collect()
}

fn put(entity: impl Entity) -> RefOp {
    RefOp::Put(entity.entity())
}

/// Any of the four reference entities.
trait Entity {
    fn entity(self) -> RefEntity;
}

impl Entity for Zone {
    fn entity(self) -> RefEntity {
        RefEntity::Zone(self)
    }
}
impl Entity for Checkpoint {
    fn entity(self) -> RefEntity {
        RefEntity::Checkpoint(self)
    }
}
impl Entity for Route {
    fn entity(self) -> RefEntity {
        RefEntity::Route(self)
    }
}
impl Entity for Rule {
    fn entity(self) -> RefEntity {
        RefEntity::Rule(self)
    }
}

fn delete(collection: RefCollection, id: impl Into<uuid::Uuid>) -> RefOp {
    RefOp::Delete {
        collection,
        id: id.into(),
    }
}

/// `(collection, op, id)` of each feed item, in feed order.
fn feed_summary(items: &[FeedItem]) -> Vec<(String, &'static str, String)> {
    items
        .iter()
        .map(|i| {
            let op = match i.change.op {
                ChangeOp::Put => "put",
                ChangeOp::Delete => "delete",
            };
            (i.change.collection.clone(), op, i.change.id.clone())
        })
        .collect()
}

fn feed_data<T: serde::de::DeserializeOwned>(items: &[FeedItem], id: impl ToString) -> T {
    let id = id.to_string();
    let item = items
        .iter()
        .find(|i| i.change.id == id)
        .unwrap_or_else(|| panic!("{id} is not in the feed"));
    serde_json::from_value(item.change.data.clone().expect("a put carries its data"))
        .expect("the feed carries the entity's JSON")
}

fn codes(errors: &[RefError]) -> Vec<&str> {
    errors.iter().map(|e| e.code.as_str()).collect()
}

pub async fn patrol_reference_round_trip(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let other = world(store.clone(), "Lakeside").await;
    assert_eq!(
        w.reference().await,
        ReferenceSet::empty(w.estate, "Asia/Shanghai"),
        "a new estate has no reference data"
    );
    let (_, start) = w.pull_after(FeedPos::default()).await;

    let zone = w.zone("Z1");
    let a = w.checkpoint("CP-A", Some(zone.id), &["04A2197C"]);
    let b = w.checkpoint("CP-B", Some(zone.id), &["04A2197D", "04A2197E"]);
    let route = w.route("R1", &[a.id, b.id]);
    let rule = w.rule("Key points hourly at night");
    let changes = w
        .apply(vec![
            put(zone.clone()),
            put(a.clone()),
            put(b.clone()),
            put(route.clone()),
            put(rule.clone()),
        ])
        .await
        .expect("a consistent set is applied");
    assert_eq!(changes.len(), 5, "one change per entity: {changes:?}");
    assert!(changes.iter().all(|c| c.data.is_some()));

    let set = w.reference().await;
    assert_eq!(set.timezone, "Asia/Shanghai");
    assert_eq!(set.zones, vec![zone.clone()]);
    assert_eq!(set.checkpoints, vec![a.clone(), b.clone()], "by id");
    assert_eq!(set.routes, vec![route.clone()]);
    assert_eq!(set.rules, vec![rule.clone()]);
    assert_eq!(
        other.reference().await,
        ReferenceSet::empty(other.estate, "Asia/Shanghai"),
        "another estate's reference data is its own"
    );

    // Pull: each entity as a put in its collection, to a member of the estate only.
    let (items, after_puts) = w.pull_after(start).await;
    let mut got = feed_summary(&items);
    got.sort();
    let mut want = vec![
        ("checkpoints".to_string(), "put", a.id.to_string()),
        ("checkpoints".to_string(), "put", b.id.to_string()),
        ("routes".to_string(), "put", route.id.to_string()),
        ("rules".to_string(), "put", rule.id.to_string()),
        ("zones".to_string(), "put", zone.id.to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(feed_data::<Checkpoint>(&items, a.id), a);
    assert_eq!(feed_data::<Checkpoint>(&items, b.id), b);
    assert_eq!(feed_data::<Zone>(&items, zone.id), zone);
    assert_eq!(feed_data::<Route>(&items, route.id), route);
    assert_eq!(feed_data::<Rule>(&items, rule.id), rule);
    let (theirs, _) = other.pull_after(FeedPos::default()).await;
    assert!(
        theirs
            .iter()
            .all(|i| i.change.collection == "estates" && i.change.id == other.estate.to_string()),
        "another estate's member sees none of it: {:?}",
        feed_summary(&theirs)
    );

    // A changed entity comes again, once; the set holds it once.
    let mut a2 = a.clone();
    a2.name = "Checkpoint A (car park ramp)".into();
    w.applied(vec![put(a2.clone())]).await;
    let (items, after_edit) = w.pull_after(after_puts).await;
    assert_eq!(
        feed_summary(&items),
        vec![("checkpoints".to_string(), "put", a.id.to_string())]
    );
    assert_eq!(feed_data::<Checkpoint>(&items, a.id), a2);
    assert_eq!(w.reference().await.checkpoints, vec![a2.clone(), b.clone()]);

    // Deletes: tombstones in the feed, gone from the set.
    w.applied(vec![
        delete(RefCollection::Routes, route.id),
        delete(RefCollection::Checkpoints, b.id),
    ])
    .await;
    let set = w.reference().await;
    assert_eq!(set.checkpoints, vec![a2.clone()]);
    assert!(set.routes.is_empty());
    assert_eq!(set.zones, vec![zone.clone()]);
    assert_eq!(set.rules, vec![rule.clone()]);
    let (items, _) = w.pull_after(after_edit).await;
    let mut got = feed_summary(&items);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("checkpoints".to_string(), "delete", b.id.to_string()),
            ("routes".to_string(), "delete", route.id.to_string()),
        ]
    );
    assert!(
        items.iter().all(|i| i.change.data.is_none()),
        "tombstones carry no data"
    );

    // From an empty cursor the member sees the estate and what is left, plus tombstones.
    let (all, _) = w.pull_after(FeedPos::default()).await;
    let live: Vec<_> = feed_summary(&all)
        .into_iter()
        .filter(|(_, op, _)| *op == "put")
        .map(|(c, _, id)| (c, id))
        .collect();
    assert_eq!(live.len(), 4, "estate, zone, checkpoint A, rule: {live:?}");

    // Unknown estates have no reference data.
    assert!(matches!(
        store.reference(EstateId::new_v7()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.apply_reference(EstateId::new_v7(), vec![], NOW).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn patrol_refused_reference_writes_nothing(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let zone = w.zone("Z1");
    let a = w.checkpoint("CP-A", Some(zone.id), &["04A2197C"]);
    w.applied(vec![put(zone.clone()), put(a.clone())]).await;
    let before = w.reference().await;
    let (_, cursor) = w.pull_after(FeedPos::default()).await;

    // A second checkpoint with A's tag, and a route naming a checkpoint that does not exist.
    let dup = w.checkpoint("CP-C", Some(zone.id), &["04A2197C"]);
    let stray = w.route("R1", &[a.id, CheckpointId::new_v7()]);
    let errors = w
        .apply(vec![put(dup.clone()), put(stray.clone())])
        .await
        .expect_err("inconsistent operations are refused");
    let found = codes(&errors);
    assert!(found.contains(&"duplicate_tag"), "{errors:?}");
    assert!(found.contains(&"unknown_checkpoint"), "{errors:?}");
    assert_eq!(w.reference().await, before, "nothing was applied");
    let (items, _) = w.pull_after(cursor).await;
    assert!(
        items.is_empty(),
        "nothing reached the feed: {:?}",
        feed_summary(&items)
    );

    // One bad op refuses the good ones beside it.
    let fine = w.checkpoint("CP-D", Some(zone.id), &["04A2197F"]);
    let errors = w
        .apply(vec![put(fine.clone()), put(dup.clone())])
        .await
        .expect_err("refused whole");
    assert_eq!(codes(&errors), vec!["duplicate_tag"]);
    assert_eq!(errors[0].at, 1, "the error names the op at fault");
    assert_eq!(w.reference().await, before);
    let (items, _) = w.pull_after(cursor).await;
    assert!(items.is_empty());

    // The tag map did not change either: the tag still resolves to A, CP-D's tag to nothing.
    let s1 = w.scan(T0, "04A2197C");
    let s2 = w.scan(T0 + MIN, "04A2197F");
    w.push(&[&s1, &s2]).await;
    assert_eq!(w.resolved(&[&s1, &s2]).await, vec![Some(a.id), None]);

    let (_, cursor) = w.pull_after(cursor).await;

    // Another estate cannot take over an id this estate uses.
    let other = world(store.clone(), "Lakeside").await;
    let mut hijack = other.checkpoint("CP-X", None, &["04A2197C"]);
    hijack.id = a.id;
    let errors = other
        .apply(vec![put(hijack)])
        .await
        .expect_err("an id used by another estate is refused");
    assert_eq!(codes(&errors), vec!["invalid_value"], "{errors:?}");
    assert_eq!(errors[0].field, "id");
    assert_eq!(
        w.reference().await,
        before,
        "the owner's checkpoint is untouched"
    );
    assert!(other.reference().await.checkpoints.is_empty());
    let (items, _) = w.pull_after(cursor).await;
    assert!(items.is_empty());
    assert_eq!(w.resolved(&[&s1]).await, vec![Some(a.id)]);
}

pub async fn patrol_scans_resolve_by_the_tags_as_they_stand(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let a = w.checkpoint("CP-A", None, &["04A2197C"]);
    let mut b = w.checkpoint("CP-B", None, &["04A2197D"]);
    w.applied(vec![put(a.clone()), put(b.clone())]).await;

    let run = RunId::new_v7();
    let here = ScanLocation {
        lat: 22.5431,
        lng: 114.0579,
        accuracy_m: Some(8.5),
        mock: true,
    };
    let mut s1 = w.scan(T0, "04A2197C").located(here);
    s1.record.clock_trust = ClockTrust::Verified;
    s1.record.flags = vec![];
    let mut s2 = w.scan(T0 + MIN, "04A2197D").in_run(run);
    s2.record.clock_trust = ClockTrust::Estimated;
    s2.record.flags = vec![Flag::ClockSkew];
    let s3 = w.scan(T0 + 2 * MIN, "0000FFFF");
    // Pushed out of order: the store answers by trusted time.
    assert_eq!(
        w.push(&[&s3, &s1, &s2]).await,
        vec![ChangeStatus::Accepted; 3]
    );

    let got = w.scans().await;
    assert_eq!(
        got,
        vec![
            ScanObs {
                id: s1.record.id,
                device_id: w.device,
                user_id: w.guard,
                seq: s1.record.seq,
                trusted_at: T0,
                verified: true,
                clock_skew: false,
                tag_key: "nfc:04A2197C".into(),
                checkpoint_id: Some(a.id),
                run_id: None,
                location: Some(here),
            },
            ScanObs {
                id: s2.record.id,
                device_id: w.device,
                user_id: w.guard,
                seq: s2.record.seq,
                trusted_at: T0 + MIN,
                verified: false,
                clock_skew: true,
                tag_key: "nfc:04A2197D".into(),
                checkpoint_id: Some(b.id),
                run_id: Some(run),
                location: None,
            },
            ScanObs {
                id: s3.record.id,
                device_id: w.device,
                user_id: w.guard,
                seq: s3.record.seq,
                trusted_at: T0 + 2 * MIN,
                verified: s3.record.clock_trust == ClockTrust::Verified,
                clock_skew: false,
                tag_key: "nfc:0000FFFF".into(),
                checkpoint_id: None,
                run_id: None,
                location: None,
            },
        ]
    );

    // [from, to): from included, to excluded; other estates' scans never appear.
    let ids = |v: Vec<ScanObs>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let between = |from, to| {
        let store = store.clone();
        let estate = w.estate;
        async move {
            store
                .scans_between(estate, from, to)
                .await
                .expect("scans_between")
        }
    };
    assert_eq!(
        ids(between(T0, T0 + 2 * MIN).await),
        vec![s1.record.id, s2.record.id]
    );
    assert_eq!(
        ids(between(T0 + 1, T0 + 2 * MIN + 1).await),
        vec![s2.record.id, s3.record.id]
    );
    assert!(between(T0 + 3 * MIN, NOW).await.is_empty());
    let other = world(store.clone(), "Lakeside").await;
    let theirs = other.scan(T0, "04A2197C");
    other.push(&[&theirs]).await;
    assert_eq!(
        other.resolved(&[&theirs]).await,
        vec![None],
        "tags are per estate"
    );
    assert_eq!(w.scans().await.len(), 3);

    // Equal trusted times come in fact id order.
    let t1 = w.scan(T0 + 10 * MIN, "04A2197C");
    let t2 = w.scan(T0 + 10 * MIN, "04A2197C");
    w.push(&[&t2, &t1]).await;
    let mut want = vec![t1.record.id, t2.record.id];
    want.sort();
    assert_eq!(ids(between(T0 + 10 * MIN, T0 + 11 * MIN).await), want);

    // Adding the unknown tag resolves the scan made before it was known.
    b.tags = nfc(&["04A2197D", "0000FFFF"]);
    w.applied(vec![put(b.clone())]).await;
    assert_eq!(
        w.resolved(&[&s1, &s2, &s3]).await,
        vec![Some(a.id), Some(b.id), Some(b.id)]
    );

    // Moving a tag to another checkpoint moves its scans, past and future.
    let mut a2 = a.clone();
    a2.tags = vec![];
    b.tags = nfc(&["04A2197D", "0000FFFF", "04A2197C"]);
    w.applied(vec![put(a2.clone()), put(b.clone())]).await;
    assert_eq!(w.resolved(&[&s1, &s2, &s3, &t1]).await, vec![Some(b.id); 4]);
    let s4 = w.scan(T0 + 20 * MIN, "04A2197C");
    w.push(&[&s4]).await;
    assert_eq!(w.resolved(&[&s4]).await, vec![Some(b.id)]);

    // Removing a tag leaves its scans unresolved.
    b.tags = nfc(&["04A2197D", "04A2197C"]);
    w.applied(vec![put(b.clone())]).await;
    assert_eq!(
        w.resolved(&[&s1, &s2, &s3]).await,
        vec![Some(b.id), Some(b.id), None]
    );

    // Retiring the checkpoint removes all its tags.
    w.applied(vec![delete(RefCollection::Checkpoints, b.id)])
        .await;
    assert_eq!(w.resolved(&[&s1, &s2, &s3, &s4]).await, vec![None; 4]);
    let s5 = w.scan(T0 + 30 * MIN, "04A2197D");
    w.push(&[&s5]).await;
    assert_eq!(w.resolved(&[&s5]).await, vec![None]);
    // ... and a new checkpoint may take them up.
    let c = w.checkpoint("CP-C", None, &["04A2197D"]);
    w.applied(vec![put(c.clone())]).await;
    assert_eq!(
        w.resolved(&[&s2, &s5, &s1]).await,
        vec![Some(c.id), Some(c.id), None]
    );
}

pub async fn patrol_a_scan_is_recorded_once(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let a = w.checkpoint("CP-A", None, &["04A2197C"]);
    w.applied(vec![put(a.clone())]).await;
    let s1 = w.scan(T0, "04A2197C");
    let r1 = w.run_event(
        T0 - MIN,
        RunEventData {
            run_id: RunId::new_v7(),
            action: RunAction::Start,
            route_id: Some(RouteId::new_v7()),
            reason: None,
        },
    );

    // Repeated within the batch, then re-sent, then the batch replayed.
    let first = Batch::new(w.device, w.guard).facts([&r1, &s1, &s1, &r1]);
    assert_eq!(
        statuses(&push(&store, &first).await),
        vec![
            ChangeStatus::Accepted,
            ChangeStatus::Accepted,
            ChangeStatus::Duplicate,
            ChangeStatus::Duplicate
        ]
    );
    assert_eq!(
        w.push(&[&s1, &r1]).await,
        vec![ChangeStatus::Duplicate, ChangeStatus::Duplicate]
    );
    match store.apply_push(first.prepared()).await.expect("replay") {
        PushOutcome::Replayed(_) => {}
        other => panic!("a replayed batch is answered from the first: {other:?}"),
    }
    // The same id with other content is refused and changes nothing.
    let mut forged = w.scan(T0 + MIN, "0000FFFF");
    forged.record.id = s1.record.id;
    forged.rehash();
    assert_eq!(w.push(&[&forged]).await, vec![ChangeStatus::Rejected]);

    let scans = w.scans().await;
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0].id, s1.record.id);
    assert_eq!(scans[0].tag_key, "nfc:04A2197C");
    assert_eq!(scans[0].checkpoint_id, Some(a.id));
    let events = store
        .run_events_between(w.estate, 0, i64::MAX)
        .await
        .expect("run_events_between");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(store.count_facts().await.unwrap(), 2);

    // Facts that are neither scans nor run events add no rows.
    let plain = TestFact::new(w.estate, w.device, w.guard, 1000);
    w.push(&[&plain]).await;
    assert_eq!(w.scans().await.len(), 1);
}

pub async fn patrol_run_events_and_excuses(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let run = RunId::new_v7();
    let route = RouteId::new_v7();
    let start = w.run_event(
        T0,
        RunEventData {
            run_id: run,
            action: RunAction::Start,
            route_id: Some(route),
            reason: None,
        },
    );
    let abort = w.run_event(
        T0 + 20 * MIN,
        RunEventData {
            run_id: run,
            action: RunAction::Abort,
            route_id: None,
            reason: Some("Called to a leak in block 3".into()),
        },
    );
    let other_run = RunId::new_v7();
    let finish = w.run_event(
        T0 + 40 * MIN,
        RunEventData {
            run_id: other_run,
            action: RunAction::Finish,
            route_id: None,
            reason: None,
        },
    );
    w.push(&[&finish, &abort, &start]).await;

    let events = store
        .run_events_between(w.estate, T0, T0 + 40 * MIN)
        .await
        .expect("run_events_between");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].fact_id, start.record.id);
    assert_eq!(events[0].device_id, w.device);
    assert_eq!(events[0].user_id, w.guard);
    assert_eq!(events[0].hlc, start.record.hlc);
    assert_eq!(events[0].trusted_at, T0);
    assert_eq!(
        events[0].data,
        RunEventData {
            run_id: run,
            action: RunAction::Start,
            route_id: Some(route),
            reason: None
        }
    );
    assert_eq!(events[1].fact_id, abort.record.id);
    assert_eq!(events[1].data.action, RunAction::Abort);
    assert_eq!(
        events[1].data.reason.as_deref(),
        Some("Called to a leak in block 3")
    );
    let all = store
        .run_events_between(w.estate, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.fact_id).collect::<Vec<_>>(),
        vec![start.record.id, abort.record.id, finish.record.id]
    );
    assert!(store
        .run_events_between(EstateId::new_v7(), 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());

    // Excuses: the first stands; a second of the same slot changes nothing.
    let sup = user(&store, "sup", &[(w.estate, Role::Supervisor)]).await;
    let rule = RuleId::new_v7();
    let cp = CheckpointId::new_v7();
    let excuse = |slot: i64, reason: &str| Excuse {
        rule_id: rule,
        checkpoint_id: cp,
        slot_start: Timestamp(slot),
        reason: reason.into(),
        by: sup,
        at: Timestamp(NOW),
    };
    let e1 = excuse(T0, "Plant room closed for works");
    assert!(store.put_excuse(w.estate, &e1).await.unwrap());
    assert!(!store
        .put_excuse(w.estate, &excuse(T0, "another reason"))
        .await
        .unwrap());
    let e2 = excuse(T0 + 60 * MIN, "Guard called to an incident");
    assert!(store.put_excuse(w.estate, &e2).await.unwrap());
    let e3 = excuse(T0 + 120 * MIN, "Flooded");
    assert!(store.put_excuse(w.estate, &e3).await.unwrap());
    let other = world(store.clone(), "Lakeside").await;
    let mut theirs = excuse(T0, "theirs");
    theirs.rule_id = RuleId::new_v7();
    assert!(store.put_excuse(other.estate, &theirs).await.unwrap());

    assert_eq!(
        store
            .excuses_between(w.estate, T0, T0 + 120 * MIN)
            .await
            .unwrap(),
        vec![e1.clone(), e2.clone()],
        "slots starting in [from, to), the first excuse of each"
    );
    assert_eq!(
        store
            .excuses_between(w.estate, T0 + 1, i64::MAX)
            .await
            .unwrap(),
        vec![e2, e3]
    );
    assert_eq!(
        store
            .excuses_between(other.estate, 0, i64::MAX)
            .await
            .unwrap(),
        vec![theirs]
    );
}

pub async fn patrol_set_estate_timezone(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let (_, cursor) = w.pull_after(FeedPos::default()).await;
    let rec = store
        .set_estate_timezone(w.estate, "Europe/London", NOW)
        .await
        .expect("set_estate_timezone");
    assert_eq!(rec.id, w.estate);
    assert_eq!(rec.name, "Harbour View");
    assert_eq!(rec.timezone, "Europe/London");
    assert_eq!(w.reference().await.timezone, "Europe/London");
    let (items, _) = w.pull_after(cursor).await;
    assert_eq!(
        feed_summary(&items),
        vec![("estates".to_string(), "put", w.estate.to_string())]
    );
    assert_eq!(
        feed_data::<shared_core::wire::EstateRecord>(&items, w.estate),
        rec
    );
    let memberships = store.memberships(w.guard).await.unwrap();
    assert_eq!(memberships[0].estate.timezone, "Europe/London");

    assert!(matches!(
        store
            .set_estate_timezone(EstateId::new_v7(), "UTC", NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    store.retire_estate(w.estate, NOW).await.unwrap();
    assert!(matches!(
        store.set_estate_timezone(w.estate, "UTC", NOW).await,
        Err(StoreError::NotFound)
    ));
    // A retired estate takes no new reference data, but what it had can still be read.
    assert!(matches!(
        store
            .apply_reference(w.estate, vec![put(w.rule("hourly"))], NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(w.reference().await.timezone, "Europe/London");
}

pub async fn patrol_concurrent_reference_writes_serialise(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    for round in 0..8 {
        let tag = format!("AB{round:04X}");
        let one = w.checkpoint(&format!("CP-{round}-1"), None, &[tag.as_str()]);
        let two = w.checkpoint(&format!("CP-{round}-2"), None, &[tag.as_str()]);
        let (r1, r2) = tokio::join!(
            store.apply_reference(w.estate, vec![put(one.clone())], NOW),
            store.apply_reference(w.estate, vec![put(two.clone())], NOW),
        );
        let (r1, r2) = (r1.expect("apply 1"), r2.expect("apply 2"));
        let (won, lost) = match (&r1, &r2) {
            (Ok(_), Err(e)) => (one.id, e),
            (Err(e), Ok(_)) => (two.id, e),
            _ => {
                panic!("round {round}: exactly one of two writes of one tag wins: {r1:?} / {r2:?}")
            }
        };
        assert_eq!(codes(lost), vec!["duplicate_tag"], "round {round}");
        let holders: Vec<CheckpointId> = w
            .reference()
            .await
            .checkpoints
            .iter()
            .filter(|c| c.tags.iter().any(|t| t.value == tag))
            .map(|c| c.id)
            .collect();
        assert_eq!(holders, vec![won], "round {round}");
    }
}

/// A scan pushed while its tag is being added resolves either way to the tag's checkpoint:
/// pushed first, the reference write re-resolves it; pushed after, it reads the new tag.
pub async fn patrol_scans_pushed_during_a_tag_change_are_resolved(store: DynStore) {
    let w = world(store.clone(), "Harbour View").await;
    let mut cp = w.checkpoint("CP-A", None, &[]);
    w.applied(vec![put(cp.clone())]).await;
    for round in 0..8u32 {
        let tag = format!("CD{round:04X}");
        let scan = w.scan(T0 + round as i64 * MIN, &tag);
        cp.tags.extend(nfc(&[tag.as_str()]));
        let batch = Batch::new(w.device, w.guard).fact(&scan);
        let (pushed, applied) = tokio::join!(
            store.apply_push(batch.prepared()),
            store.apply_reference(w.estate, vec![put(cp.clone())], NOW),
        );
        pushed.expect("push");
        applied.expect("apply").expect("tag added");
        assert_eq!(
            w.resolved(&[&scan]).await,
            vec![Some(cp.id)],
            "round {round}"
        );
    }
}

pub async fn patrol_estates_are_those_with_rules(store: DynStore) {
    let with_rule = world(store.clone(), "A").await;
    with_rule.applied(vec![put(with_rule.rule("hourly"))]).await;
    let only_points = world(store.clone(), "B").await;
    only_points
        .applied(vec![put(only_points.checkpoint("CP", None, &["01"]))])
        .await;
    let rule_deleted = world(store.clone(), "C").await;
    let r = rule_deleted.rule("hourly");
    rule_deleted.applied(vec![put(r.clone())]).await;
    rule_deleted
        .applied(vec![delete(RefCollection::Rules, r.id)])
        .await;
    let retired = world(store.clone(), "D").await;
    retired.applied(vec![put(retired.rule("hourly"))]).await;
    store.retire_estate(retired.estate, NOW).await.unwrap();
    let two_rules = world(store.clone(), "E").await;
    two_rules
        .applied(vec![put(two_rules.rule("one")), put(two_rules.rule("two"))])
        .await;

    let mut want = vec![with_rule.estate, two_rules.estate];
    want.sort();
    assert_eq!(store.patrol_estates().await.unwrap(), want);
}
