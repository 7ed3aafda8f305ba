//! The property behind exactly-once ingest: however a device's facts are ordered, split into
//! batches, replayed and re-sent, each is stored once, answered consistently, and acked.

use super::fixtures::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use shared_core::wire::{ChangeStatus, FactRecord, PushResponse};
use shared_core::{BatchId, DeviceId, FactId, Role};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use sync_server::storage::{DynStore, FeedPos, PushOutcome};

#[derive(Clone, Debug)]
struct Scenario {
    /// Facts per device, with seqs 1..=n.
    counts: Vec<usize>,
    /// The order facts are handed to the batches (a permutation of all facts).
    order: Vec<usize>,
    /// Per fact: close its batch after it.
    cut_after: Vec<bool>,
    /// Per original batch (modulo): send it a second time, same batch id.
    replay: Vec<bool>,
    /// Per fact: send it again in an extra batch with a new id.
    resend: Vec<bool>,
    /// The extra batches also carry their first fact twice.
    repeat_in_batch: bool,
    /// Sort keys that shuffle the pushes across devices, replays and re-sends.
    keys: Vec<u16>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::collection::vec(1usize..=8, 2..=3).prop_flat_map(|counts| {
        let total: usize = counts.iter().sum();
        (
            Just(counts),
            Just((0..total).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec(any::<bool>(), total),
            prop::collection::vec(prop::bool::weighted(0.3), total),
            prop::collection::vec(prop::bool::weighted(0.3), total),
            any::<bool>(),
            prop::collection::vec(any::<u16>(), 2 * total + 3),
        )
            .prop_map(
                |(counts, order, cut_after, replay, resend, repeat_in_batch, keys)| Scenario {
                    counts,
                    order,
                    cut_after,
                    replay,
                    resend,
                    repeat_in_batch,
                    keys,
                },
            )
    })
}

pub async fn prop_any_split_order_and_resend_stores_each_fact_once(store: DynStore) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let handle = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases,
            max_shrink_iters: 200,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&scenario(), |sc| {
            handle.block_on(run_case(&store, sc));
            Ok(())
        });
        if let Err(e) = result {
            panic!("exactly-once property failed: {e}");
        }
    })
    .await;
    if let Err(e) = joined {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run_case(store: &DynStore, sc: Scenario) {
    // A world of its own per case, so cases share the store without seeing each other.
    let est = estate(store, "Property Estate").await;
    let u = user(store, "supervisor", &[(est.id, Role::Supervisor)]).await;
    let mut devices = vec![];
    for _ in &sc.counts {
        devices.push(device(store, u).await);
    }
    let facts: Vec<TestFact> = sc
        .counts
        .iter()
        .zip(&devices)
        .flat_map(|(n, d)| (1..=*n as u64).map(|s| TestFact::new(est.id, *d, u, s)))
        .collect();
    let dev_of = |g: usize| {
        let mut g = g;
        for (d, n) in sc.counts.iter().enumerate() {
            if g < *n {
                return d;
            }
            g -= n;
        }
        unreachable!()
    };

    // Each device's facts in the shuffled order, cut into batches.
    let mut per_dev: Vec<Vec<usize>> = vec![vec![]; devices.len()];
    for &g in &sc.order {
        per_dev[dev_of(g)].push(g);
    }
    let mut pushes: Vec<Batch> = vec![];
    for (d, list) in per_dev.iter().enumerate() {
        let mut batch = Batch::new(devices[d], u);
        for (k, &g) in list.iter().enumerate() {
            batch = batch.fact(&facts[g]);
            if sc.cut_after[g] || k + 1 == list.len() {
                pushes.push(batch);
                batch = Batch::new(devices[d], u);
            }
        }
    }
    let originals = pushes.len();
    for k in 0..originals {
        if sc.replay[k % sc.replay.len()] {
            pushes.push(pushes[k].clone());
        }
    }
    for (d, list) in per_dev.iter().enumerate() {
        let again: Vec<&TestFact> = list
            .iter()
            .filter(|g| sc.resend[**g])
            .map(|g| &facts[*g])
            .collect();
        if let Some(first) = again.first() {
            let mut b = Batch::new(devices[d], u).facts(again.iter().copied());
            if sc.repeat_in_batch {
                b = b.fact(first);
            }
            pushes.push(b);
        }
    }
    let mut schedule: Vec<(u16, Batch)> = pushes
        .into_iter()
        .enumerate()
        .map(|(i, b)| (sc.keys[i % sc.keys.len()], b))
        .collect();
    schedule.sort_by_key(|(k, _)| *k);

    // Push everything, predicting every answer.
    let count_before = store.count_facts().await.unwrap();
    let mut stored: HashMap<FactId, FactRecord> = HashMap::new();
    let mut held: HashMap<DeviceId, BTreeSet<u64>> = HashMap::new();
    let mut answers: HashMap<(DeviceId, BatchId), PushResponse> = HashMap::new();
    for (_, b) in &schedule {
        let outcome = store.apply_push(b.prepared()).await.expect("apply_push");
        if let Some(first) = answers.get(&(b.device, b.id)) {
            assert_eq!(
                outcome,
                PushOutcome::Replayed(first.clone()),
                "a replay gets the first answer"
            );
            continue;
        }
        let PushOutcome::Stored { response, .. } = outcome else {
            panic!("batch {} is new, yet replayed", b.id);
        };
        let mut want = vec![];
        for i in 0..b.prepared().len {
            let rec = b.record_at(i);
            match stored.entry(rec.id) {
                Entry::Occupied(_) => want.push(ChangeStatus::Duplicate),
                Entry::Vacant(slot) => {
                    held.entry(b.device).or_default().insert(rec.seq);
                    slot.insert(rec);
                    want.push(ChangeStatus::Accepted);
                }
            }
        }
        assert_eq!(statuses(&response), want, "statuses of batch {}", b.id);
        let set = held.get(&b.device).cloned().unwrap_or_default();
        let ack = (1..).take_while(|s| set.contains(s)).count() as u64;
        assert_eq!(response.acked_through_seq, ack, "ack after batch {}", b.id);
        answers.insert((b.device, b.id), response);
    }

    // Everything is there once, as first stored, and every device is acked to its end.
    assert_eq!(stored.len(), facts.len());
    assert_eq!(
        store.count_facts().await.unwrap() - count_before,
        facts.len() as u64
    );
    let feed = drain(store, &scope_full(u, &[est.id]), FeedPos::default(), 7).await;
    let pulled = facts_of(&feed);
    let mut seen: HashMap<FactId, FactRecord> = HashMap::new();
    for r in pulled {
        let id = r.id;
        assert!(seen.insert(id, r).is_none(), "fact {id} pulled twice");
    }
    assert_eq!(
        seen, stored,
        "the pulled facts are the pushed facts, as first stored"
    );
    for (d, n) in devices.iter().zip(&sc.counts) {
        let row = store.get_device(*d).await.unwrap().expect("device");
        assert_eq!((row.acked_through_seq, row.max_seq), (*n as u64, *n as u64));
    }
}
