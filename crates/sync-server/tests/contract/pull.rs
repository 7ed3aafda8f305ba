//! Pull: scope, commit order, paging, reference rows and tombstones.

use super::fixtures::*;
use shared_core::wire::{ChangeOp, EstateRecord, FactRecord};
use shared_core::Role;
use std::collections::{BTreeMap, BTreeSet};
use sync_server::storage::{DynStore, FeedItem, FeedPos, FeedScope};

fn ids_of(items: &[FeedItem], collection: &str) -> Vec<String> {
    items
        .iter()
        .filter(|i| i.change.collection == collection)
        .map(|i| i.change.id.clone())
        .collect()
}

fn fact_ids(facts: &[&TestFact]) -> BTreeSet<String> {
    facts.iter().map(|f| f.record.id.to_string()).collect()
}

/// The same records, batches in commit order (the order inside one batch is free).
fn assert_same_facts(got: &[FactRecord], want: &[FactRecord]) {
    let batches = |rs: &[FactRecord]| rs.iter().map(|r| r.batch_id).collect::<Vec<_>>();
    assert_eq!(batches(got), batches(want), "facts come in commit order");
    let by_id = |rs: &[FactRecord]| {
        rs.iter()
            .map(|r| (r.id, r.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(by_id(got), by_id(want), "facts come as stored");
}

pub async fn pull_scope_paging_and_tombstones(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let u1 = user(&store, "guard one", &[(a.id, Role::Guard)]).await;
    let u2 = user(
        &store,
        "guard two",
        &[(a.id, Role::Guard), (b.id, Role::Guard)],
    )
    .await;
    let d1 = device(&store, u1).await;
    let d2 = device(&store, u2).await;
    let u1_facts: Vec<TestFact> = (1..=3).map(|s| TestFact::new(a.id, d1, u1, s)).collect();
    let u2_facts: Vec<TestFact> = (1..=2).map(|s| TestFact::new(a.id, d2, u2, s)).collect();
    let in_b = TestFact::new(b.id, d2, u2, 3);
    // Interleaved over several commits, B's fact in the middle.
    let b1 = Batch::new(d1, u1).fact(&u1_facts[0]);
    let b2 = Batch::new(d2, u2).fact(&u2_facts[0]).fact(&in_b);
    let b3 = Batch::new(d1, u1).facts([&u1_facts[1], &u1_facts[2]]);
    let b4 = Batch::new(d2, u2).fact(&u2_facts[1]);
    for batch in [&b1, &b2, &b3, &b4] {
        push(&store, batch).await;
    }
    let b_id = b.id.to_string();

    // A supervisor's view of A: the estate row and every fact, nothing of B.
    let full = scope_full(u1, &[a.id]);
    let all = drain(&store, &full, FeedPos::default(), 100).await;
    assert_eq!(ids_of(&all, "estates"), vec![a.id.to_string()]);
    let estate_row = &all
        .iter()
        .find(|i| i.change.collection == "estates")
        .unwrap()
        .change;
    assert_eq!(estate_row.op, ChangeOp::Put);
    assert_eq!(
        estate_row
            .data
            .clone()
            .map(|d| serde_json::from_value::<EstateRecord>(d).expect("an EstateRecord")),
        Some(a.clone()),
        "the estates row carries the EstateRecord"
    );
    let all_facts: Vec<&TestFact> = u1_facts.iter().chain(u2_facts.iter()).collect();
    let got: Vec<String> = ids_of(&all, "facts");
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        fact_ids(&all_facts)
    );
    assert!(all
        .iter()
        .all(|i| i.change.id != b_id && i.change.id != in_b.record.id.to_string()));
    // Facts come with the record as stored, in commit order.
    let batches = [&b1, &b2, &b3, &b4];
    let want: Vec<FactRecord> = batches
        .iter()
        .flat_map(|b| (0..b.prepared().len).map(move |i| b.record_at(i)))
        .filter(|r| r.estate_id == a.id)
        .collect();
    assert_same_facts(&facts_of(&all), &want);

    // A guard's view of A: the estate row and their own facts only.
    let own = FeedScope {
        user_id: u1,
        full: vec![],
        own: vec![a.id],
        engineer: vec![],
    };
    let mine = drain(&store, &own, FeedPos::default(), 100).await;
    assert_eq!(ids_of(&mine, "estates"), vec![a.id.to_string()]);
    assert_eq!(
        ids_of(&mine, "facts"),
        u1_facts
            .iter()
            .map(|f| f.record.id.to_string())
            .collect::<Vec<_>>()
    );

    // Full in one estate and own in another: B's estate row, U1 has nothing in B.
    let mixed = FeedScope {
        user_id: u1,
        full: vec![a.id],
        own: vec![b.id],
        engineer: vec![],
    };
    let m = drain(&store, &mixed, FeedPos::default(), 100).await;
    assert_eq!(
        ids_of(&m, "estates").into_iter().collect::<BTreeSet<_>>(),
        [a.id.to_string(), b_id.clone()].into_iter().collect()
    );
    assert_eq!(ids_of(&m, "facts").len(), 5);
    // And U2's own view of B holds the fact there.
    let u2_b = FeedScope {
        user_id: u2,
        full: vec![],
        own: vec![b.id],
        engineer: vec![],
    };
    let m = drain(&store, &u2_b, FeedPos::default(), 100).await;
    assert_eq!(ids_of(&m, "facts"), vec![in_b.record.id.to_string()]);

    // An empty scope sees nothing.
    let none = scope_full(u1, &[]);
    assert_eq!(drain(&store, &none, FeedPos::default(), 10).await, vec![]);

    // Every page size gives the same feed, each item exactly once; `drain` checks has_more
    // and the order on every page.
    let everything = scope_full(u2, &[a.id, b.id]);
    let reference = drain(&store, &everything, FeedPos::default(), 1000).await;
    assert_eq!(reference.len(), 2 + 6, "two estate rows and six facts");
    for limit in 1..=reference.len() + 1 {
        let paged = drain(&store, &everything, FeedPos::default(), limit).await;
        assert_eq!(paged, reference, "paging with limit {limit}");
    }
    // Starting after any item gives exactly the rest.
    for (k, item) in reference.iter().enumerate() {
        let rest = drain(&store, &everything, item.pos, 3).await;
        assert_eq!(rest, reference[k + 1..].to_vec(), "after item {k}");
    }

    // Retiring A: a delete tombstone after the cursor, in both views of A; nothing for B.
    let cursor = all.last().unwrap().pos;
    let own_cursor = mine.last().unwrap().pos;
    store.retire_estate(a.id, NOW + 5).await.unwrap();
    for (scope, after) in [(&full, cursor), (&own, own_cursor)] {
        let next = drain(&store, scope, after, 100).await;
        assert_eq!(next.len(), 1, "{next:?}");
        let t = &next[0].change;
        assert_eq!(
            (t.collection.as_str(), t.op, t.id.as_str(), &t.data),
            (
                "estates",
                ChangeOp::Delete,
                a.id.to_string().as_str(),
                &None
            )
        );
    }
    let after_b = drain(&store, &u2_b, FeedPos::default(), 100).await;
    assert!(
        after_b.iter().all(|i| i.change.op == ChangeOp::Put),
        "{after_b:?}"
    );
    // A fresh pull of A sees the tombstone instead of the put, and the facts as before.
    let fresh = drain(&store, &full, FeedPos::default(), 100).await;
    let estate_rows: Vec<_> = fresh
        .iter()
        .filter(|i| i.change.collection == "estates")
        .map(|i| i.change.op)
        .collect();
    assert_eq!(estate_rows, vec![ChangeOp::Delete]);
    assert_same_facts(&facts_of(&fresh), &want);
}

pub async fn prune_tombstones_raises_the_floor(store: DynStore) {
    let old = estate(&store, "Old Town").await;
    let newer = estate(&store, "New Town").await;
    let kept = estate(&store, "Kept").await;
    let u = user(&store, "manager", &[]).await;
    let scope = scope_full(u, &[old.id, newer.id, kept.id]);
    assert_eq!(store.feed_floor().await.unwrap(), FeedPos::default());
    assert_eq!(
        store.prune_tombstones(NOW + 1_000_000).await.unwrap(),
        0,
        "no tombstones yet"
    );

    store.retire_estate(old.id, NOW + 1_000).await.unwrap();
    store.retire_estate(newer.id, NOW + 5_000).await.unwrap();
    let feed = drain(&store, &scope, FeedPos::default(), 100).await;
    let pos_of = |id: &str| {
        feed.iter()
            .find(|i| i.change.id == id)
            .unwrap_or_else(|| panic!("{id} in the feed"))
            .pos
    };
    let old_pos = pos_of(&old.id.to_string());
    let newer_pos = pos_of(&newer.id.to_string());
    assert!(old_pos < newer_pos);

    assert_eq!(
        store.prune_tombstones(NOW + 1_000).await.unwrap(),
        0,
        "`before` is exclusive"
    );
    assert_eq!(store.feed_floor().await.unwrap(), FeedPos::default());

    assert_eq!(store.prune_tombstones(NOW + 3_000).await.unwrap(), 1);
    let floor = store.feed_floor().await.unwrap();
    assert!(
        floor >= old_pos,
        "floor {floor:?} must cover the pruned tombstone at {old_pos:?}"
    );
    assert!(
        floor < newer_pos,
        "floor {floor:?} must not pass the tombstone still kept at {newer_pos:?}"
    );

    let after = drain(&store, &scope, FeedPos::default(), 100).await;
    let rows: BTreeMap<String, ChangeOp> = after
        .iter()
        .map(|i| (i.change.id.clone(), i.change.op))
        .collect();
    assert_eq!(
        rows,
        [
            (newer.id.to_string(), ChangeOp::Delete),
            (kept.id.to_string(), ChangeOp::Put),
        ]
        .into_iter()
        .collect(),
        "the old tombstone is gone, the newer one and the live estate stay"
    );

    // Pruning again finds nothing and the floor never goes down.
    assert_eq!(store.prune_tombstones(NOW + 3_000).await.unwrap(), 0);
    assert_eq!(store.prune_tombstones(0).await.unwrap(), 0);
    assert_eq!(store.feed_floor().await.unwrap(), floor);

    assert_eq!(store.prune_tombstones(NOW + 10_000).await.unwrap(), 1);
    let floor2 = store.feed_floor().await.unwrap();
    assert!(floor2 >= newer_pos && floor2 > floor);
    let left = drain(&store, &scope, FeedPos::default(), 100).await;
    assert_eq!(ids_of(&left, "estates"), vec![kept.id.to_string()]);
}

/// A batch that repeats an id before a new fact must not hand out feed positions that the
/// next batch also gets: paging one item at a time would then skip a fact.
pub async fn repeated_ids_do_not_collide_in_the_feed(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let u = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let d = device(&store, u).await;
    let (fa, fb, fc) = (
        TestFact::new(a.id, d, u, 1),
        TestFact::new(a.id, d, u, 2),
        TestFact::new(a.id, d, u, 3),
    );
    push(&store, &Batch::new(d, u).facts([&fa, &fa, &fb])).await;
    push(&store, &Batch::new(d, u).fact(&fc)).await;
    let scope = scope_full(u, &[a.id]);
    let one_by_one = drain(&store, &scope, FeedPos::default(), 1).await;
    let positions: BTreeSet<FeedPos> = one_by_one.iter().map(|i| i.pos).collect();
    assert_eq!(
        positions.len(),
        one_by_one.len(),
        "every item has its own feed position"
    );
    let seen: BTreeSet<String> = facts_of(&one_by_one)
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(
        seen,
        fact_ids(&[&fa, &fb, &fc]),
        "paging one by one sees every fact"
    );
}
