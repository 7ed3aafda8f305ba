//! "Pull never skips": pullers reading while several pushers commit out of order must each
//! see every fact exactly once. This is the PostgreSQL sequence-gap trap; SQLite, whose
//! writes are serial, runs the same body as a sanity check of the test itself.

use super::fixtures::*;
use shared_core::{FactId, Role};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use sync_server::storage::{DynStore, FeedPos};

const PUSHERS: usize = 6;
const BATCHES: usize = 40;
const PULLERS: usize = 3;

/// Batch sizes differ by pusher and by batch, so short transactions commit while longer
/// ones that started earlier (and took their feed positions earlier) are still open.
fn batch_size(pusher: usize, batch: usize) -> usize {
    match pusher % 3 {
        0 => 1,
        1 => 1 + (batch * 7 + pusher) % 12,
        _ => 20 + (batch % 3) * 10,
    }
}

pub async fn pull_never_skips_under_concurrent_pushes(store: DynStore) {
    tokio::time::timeout(Duration::from_secs(60), run(store))
        .await
        .expect("pushers and pullers did not finish within 60 s");
}

async fn run(store: DynStore) {
    let est = estate(&store, "Busy Estate").await;
    let boss = user(&store, "manager", &[(est.id, Role::Manager)]).await;
    let scope = scope_full(boss, &[est.id]);
    let done = Arc::new(AtomicBool::new(false));

    let mut pullers = vec![];
    for p in 0..PULLERS {
        let (store, scope, done) = (store.clone(), scope.clone(), done.clone());
        pullers.push(tokio::spawn(async move {
            let mut cursor = FeedPos::default();
            let mut seen: HashSet<FactId> = HashSet::new();
            loop {
                // Read the flag before pulling: an empty pull after every push finished
                // is the end.
                let finished = done.load(Ordering::SeqCst);
                let page = store.pull(&scope, cursor, 50).await.expect("pull");
                assert!(page.items.len() <= 50);
                for item in &page.items {
                    assert!(
                        item.pos > cursor,
                        "puller {p}: position {:?} after {cursor:?}",
                        item.pos
                    );
                    cursor = item.pos;
                }
                for rec in facts_of(&page.items) {
                    assert!(seen.insert(rec.id), "puller {p} saw fact {} twice", rec.id);
                }
                if page.items.is_empty() {
                    if finished && !page.held_back {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }

    let mut pushers = vec![];
    for p in 0..PUSHERS {
        let store = store.clone();
        let guard = user(&store, &format!("guard {p}"), &[(est.id, Role::Guard)]).await;
        let dev = device(&store, guard).await;
        pushers.push(tokio::spawn(async move {
            let mut ids = vec![];
            let mut seq = 0;
            for b in 0..BATCHES {
                let facts: Vec<TestFact> = (0..batch_size(p, b))
                    .map(|_| {
                        seq += 1;
                        TestFact::new(est.id, dev, guard, seq)
                    })
                    .collect();
                ids.extend(facts.iter().map(|f| f.record.id));
                let r = push(&store, &Batch::new(dev, guard).facts(&facts)).await;
                assert_eq!(r.acked_through_seq, seq);
                if b % 4 == p % 4 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        }));
    }
    let mut pushed: BTreeSet<FactId> = BTreeSet::new();
    for p in pushers {
        pushed.extend(p.await.expect("pusher"));
    }
    done.store(true, Ordering::SeqCst);
    assert_eq!(store.count_facts().await.unwrap(), pushed.len() as u64);

    for (i, p) in pullers.into_iter().enumerate() {
        let seen: BTreeSet<FactId> = p.await.expect("puller").into_iter().collect();
        let missing = pushed.difference(&seen).count();
        let extra = seen.difference(&pushed).count();
        assert!(
            missing == 0 && extra == 0,
            "puller {i} saw {} of {} facts: {missing} skipped, {extra} never pushed",
            seen.len(),
            pushed.len()
        );
    }
}
