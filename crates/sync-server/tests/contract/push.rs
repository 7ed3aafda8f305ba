//! Push: exactly-once ingest, replays, conflicts, quarantine, the acknowledged prefix.

use super::fixtures::*;
use serde_json::json;
use shared_core::wire::{ChangeStatus, RejectCode, Timestamp};
use shared_core::{Flag, Role};
use sync_server::storage::{DynStore, PushOutcome};

pub async fn push_accept_replay_duplicate_conflict(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let f1 = TestFact::new(a.id, dev, guard, 1);
    let f2 = TestFact::new(a.id, dev, guard, 2);
    let f3 = TestFact::new(a.id, dev, guard, 3);

    // A new batch: every fact accepted, stored exactly as prepared.
    let b1 = Batch::new(dev, guard).facts([&f1, &f2, &f3]);
    let first = match store.apply_push(b1.prepared()).await.unwrap() {
        PushOutcome::Stored { response, touched } => {
            assert_eq!(touched, vec![a.id]);
            response
        }
        other => panic!("a new batch: expected Stored, got {other:?}"),
    };
    assert_eq!(first.batch_id, b1.id);
    assert_eq!(statuses(&first), vec![ChangeStatus::Accepted; 3]);
    for (i, r) in first.results.iter().enumerate() {
        assert_eq!(r.index, i);
        assert_eq!(r.id, Some(b1.record_at(i).id.to_string()));
        assert_eq!((r.code, &r.message), (None, &None));
    }
    assert_eq!(first.acked_through_seq, 3);
    for i in 0..3 {
        let want = b1.record_at(i);
        assert_eq!(store.get_fact(want.id).await.unwrap(), Some(want));
    }
    assert_eq!(store.count_facts().await.unwrap(), 3);

    // The same batch id again: the first answer, unchanged, and nothing stored twice, even
    // when the replay carries something else.
    let mut replay = b1.clone();
    replay = replay.fact(&TestFact::new(a.id, dev, guard, 4));
    assert_eq!(
        store.apply_push(replay.prepared()).await.unwrap(),
        PushOutcome::Replayed(first.clone())
    );
    assert_eq!(
        store.apply_push(b1.prepared()).await.unwrap(),
        PushOutcome::Replayed(first.clone())
    );
    assert_eq!(store.count_facts().await.unwrap(), 3);
    // The answer a replay is given before any checking: the first one, for this device
    // and batch id only.
    assert_eq!(
        store.push_answer(dev, b1.id).await.unwrap(),
        Some(first.clone())
    );
    let other = Batch::new(dev, guard);
    assert_eq!(store.push_answer(dev, other.id).await.unwrap(), None);
    let dev2 = device(&store, guard).await;
    assert_eq!(store.push_answer(dev2, b1.id).await.unwrap(), None);

    // A fact already stored, in a new batch: duplicate with the same content, refused and
    // quarantined with different content; the stored fact is left as it was.
    let f2_edit = f2.altered();
    assert_ne!(f2_edit.hash, f2.hash);
    let b2 = Batch::new(dev, guard).fact(&f1).fact(&f2_edit);
    let second = match store.apply_push(b2.prepared()).await.unwrap() {
        PushOutcome::Stored { response, touched } => {
            assert_eq!(touched, vec![], "nothing new was stored");
            response
        }
        other => panic!("expected Stored, got {other:?}"),
    };
    assert_eq!(
        statuses(&second),
        vec![ChangeStatus::Duplicate, ChangeStatus::Rejected]
    );
    assert_eq!(second.results[0].id, Some(f1.record.id.to_string()));
    assert_eq!(second.results[0].code, None);
    assert_eq!(second.results[1].id, Some(f2.record.id.to_string()));
    assert_eq!(second.results[1].code, Some(RejectCode::IdConflict));
    assert!(second.results[1].message.is_some());
    assert_eq!(
        store.get_fact(f2.record.id).await.unwrap(),
        Some(b1.record_at(1)),
        "a fact is never changed"
    );
    assert_eq!(store.count_facts().await.unwrap(), 3);

    let q = store.list_quarantine(&[a.id], None, 50).await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    let e = &q[0];
    assert_eq!(e.code, RejectCode::IdConflict);
    assert_eq!(e.change_id, Some(f2.record.id.to_string()));
    assert_eq!((e.device_id, e.user_id, e.batch_id), (dev, guard, b2.id));
    assert_eq!(e.index, 1);
    assert_eq!(e.received_at, Timestamp(b2.received_at));
    assert_eq!(
        e.raw,
        f2_edit.raw(),
        "the refused change is kept exactly as it came"
    );
    assert_eq!(Some(&e.message), second.results[1].message.as_ref());
    assert_eq!(
        store.list_quarantine(&[b.id], None, 50).await.unwrap(),
        vec![],
        "quarantine of an estate the pusher is no member of"
    );
    assert_eq!(store.list_quarantine(&[], None, 50).await.unwrap(), vec![]);
}

pub async fn push_rejections_are_quarantined_in_index_order(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let f1 = TestFact::new(a.id, dev, guard, 1);
    let f3 = TestFact::new(a.id, dev, guard, 3);
    let raw_missing = json!({ "kind": "scan", "seq": 2, "hlc": "1763800000000-0000" });
    let raw_hlc = json!({ "kind": "scan", "id": "0193f0aa-0000-7000-8000-000000000004", "seq": 4, "hlc": "yesterday", "data": { "deep": [1, 2, { "x": null }] } });
    let raw_nonobj = json!([1, "two", null]);

    let batch = Batch::new(dev, guard)
        .reject(None, Some(2), RejectCode::MissingField, raw_missing.clone())
        .fact(&f1)
        .reject(
            Some("0193f0aa-0000-7000-8000-000000000004"),
            Some(4),
            RejectCode::InvalidHlc,
            raw_hlc.clone(),
        )
        .fact(&f3)
        .reject(None, None, RejectCode::NotAnObject, raw_nonobj.clone());
    let prepared = batch.prepared();
    assert_eq!(prepared.len, 5);
    let r = push(&store, &batch).await;
    assert_eq!(r.results.len(), 5, "one result per change");
    for (i, res) in r.results.iter().enumerate() {
        assert_eq!(res.index, i, "results are in index order");
    }
    assert_eq!(
        statuses(&r),
        vec![
            ChangeStatus::Rejected,
            ChangeStatus::Accepted,
            ChangeStatus::Rejected,
            ChangeStatus::Accepted,
            ChangeStatus::Rejected,
        ]
    );
    assert_eq!(r.results[0].code, Some(RejectCode::MissingField));
    assert_eq!(r.results[0].id, None);
    assert_eq!(r.results[1].id, Some(f1.record.id.to_string()));
    assert_eq!(r.results[2].code, Some(RejectCode::InvalidHlc));
    assert_eq!(
        r.results[2].id.as_deref(),
        Some("0193f0aa-0000-7000-8000-000000000004")
    );
    assert_eq!(
        r.results[2].message.as_deref(),
        Some("invalid_hlc: refused by the test")
    );
    assert_eq!(r.results[3].id, Some(f3.record.id.to_string()));
    assert_eq!(r.results[4].code, Some(RejectCode::NotAnObject));
    // Seqs 1-4 are all held (two as facts, two in quarantine).
    assert_eq!(r.acked_through_seq, 4);
    assert_eq!(store.count_facts().await.unwrap(), 2);

    // Newest first; the three are from one batch.
    let q = store.list_quarantine(&[a.id], None, 50).await.unwrap();
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(
        q.windows(2).all(|w| w[0].id > w[1].id),
        "newest first: {q:?}"
    );
    let mut by_index = q.clone();
    by_index.sort_by_key(|e| e.index);
    let got: Vec<_> = by_index
        .iter()
        .map(|e| {
            (
                e.index,
                e.code,
                e.change_id.clone(),
                e.raw.clone(),
                e.batch_id,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, RejectCode::MissingField, None, raw_missing, batch.id),
            (
                2,
                RejectCode::InvalidHlc,
                Some("0193f0aa-0000-7000-8000-000000000004".to_owned()),
                raw_hlc,
                batch.id
            ),
            (4, RejectCode::NotAnObject, None, raw_nonobj, batch.id),
        ]
    );
    assert!(by_index
        .iter()
        .all(|e| e.device_id == dev && e.user_id == guard));

    // Paging: `limit`, and `before` an id.
    let page1 = store.list_quarantine(&[a.id], None, 2).await.unwrap();
    assert_eq!(page1, q[..2].to_vec());
    let page2 = store
        .list_quarantine(&[a.id], Some(page1[1].id), 2)
        .await
        .unwrap();
    assert_eq!(page2, q[2..].to_vec());
}

pub async fn acked_through_seq_is_the_held_prefix(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let other_dev = device(&store, guard).await;
    let f: Vec<TestFact> = (0..=6)
        .map(|s| TestFact::new(a.id, dev, guard, s))
        .collect();

    let fresh = store.get_device(dev).await.unwrap().expect("device");
    assert_eq!((fresh.acked_through_seq, fresh.max_seq), (0, 0));

    // 1, 2, 4: a gap at 3.
    let r = push(&store, &Batch::new(dev, guard).facts([&f[1], &f[2], &f[4]])).await;
    assert_eq!(r.acked_through_seq, 2);
    let d = store.get_device(dev).await.unwrap().unwrap();
    assert_eq!((d.acked_through_seq, d.max_seq), (2, 4));
    assert_eq!(d.held_above_ack, 1, "seq 4 is held past the gap");
    assert_eq!(d.last_clock_offset_ms, Some(5));

    // 3 fills the gap.
    let r = push(&store, &Batch::new(dev, guard).fact(&f[3])).await;
    assert_eq!(r.acked_through_seq, 4);

    // 5 is refused, but kept in quarantine: held all the same.
    let r = push(
        &store,
        &Batch::new(dev, guard).reject(
            None,
            Some(5),
            RejectCode::UnknownEstate,
            json!({ "seq": 5 }),
        ),
    )
    .await;
    assert_eq!(r.acked_through_seq, 5);

    // Re-sending old facts never lowers the ack.
    let r = push(&store, &Batch::new(dev, guard).facts([&f[1], &f[2]])).await;
    assert_eq!(
        statuses(&r),
        vec![ChangeStatus::Duplicate, ChangeStatus::Duplicate]
    );
    assert_eq!(r.acked_through_seq, 5);
    let d = store.get_device(dev).await.unwrap().unwrap();
    assert_eq!(
        (d.acked_through_seq, d.max_seq, d.held_above_ack),
        (5, 5, 0)
    );

    // 6 carries on; a rejection without a readable seq holds nothing.
    let r = push(
        &store,
        &Batch::new(dev, guard)
            .reject(None, None, RejectCode::NotAnObject, json!("x"))
            .fact(&f[6]),
    )
    .await;
    assert_eq!(r.acked_through_seq, 6);
    let d = store.get_device(dev).await.unwrap().unwrap();
    assert_eq!((d.acked_through_seq, d.max_seq), (6, 6));

    // Acks are per device.
    let g = TestFact::new(a.id, other_dev, guard, 2);
    let r = push(&store, &Batch::new(other_dev, guard).fact(&g)).await;
    assert_eq!(r.acked_through_seq, 0, "the other device has no seq 1");
    let d2 = store.get_device(other_dev).await.unwrap().unwrap();
    assert_eq!((d2.acked_through_seq, d2.max_seq), (0, 2));
    let d = store.get_device(dev).await.unwrap().unwrap();
    assert_eq!(d.acked_through_seq, 6);
}

pub async fn seq_reused_is_flagged(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let f1 = TestFact::new(a.id, dev, guard, 1);
    let f2 = TestFact::new(a.id, dev, guard, 2);
    let f10 = TestFact::new(a.id, dev, guard, 10);
    let r = push(&store, &Batch::new(dev, guard).facts([&f1, &f2, &f10])).await;
    assert_eq!(r.acked_through_seq, 2);
    for f in [&f1, &f2, &f10] {
        let stored = store.get_fact(f.record.id).await.unwrap().unwrap();
        assert!(!stored.flags.contains(&Flag::SeqReused), "{stored:?}");
    }

    // New ids under seqs the device already used: at the ack, held above it, and twice in
    // one batch. The one fresh seq is not flagged.
    let again1 = TestFact::new(a.id, dev, guard, 1);
    let again10 = TestFact::new(a.id, dev, guard, 10);
    let twice_a = TestFact::new(a.id, dev, guard, 20);
    let twice_b = TestFact::new(a.id, dev, guard, 20);
    let fresh = TestFact::new(a.id, dev, guard, 3);
    let b = Batch::new(dev, guard).facts([&again1, &again10, &twice_a, &twice_b, &fresh]);
    let r = push(&store, &b).await;
    assert_eq!(
        statuses(&r),
        vec![ChangeStatus::Accepted; 5],
        "flags mark, never refuse"
    );

    let flags = |i: usize| {
        let store = store.clone();
        let id = b.record_at(i).id;
        async move { store.get_fact(id).await.unwrap().expect("stored").flags }
    };
    assert!(
        flags(0).await.contains(&Flag::SeqReused),
        "seq at or below the ack"
    );
    assert!(
        flags(1).await.contains(&Flag::SeqReused),
        "seq held above the ack"
    );
    assert!(
        !flags(2).await.contains(&Flag::SeqReused),
        "first use of seq 20"
    );
    assert!(
        flags(3).await.contains(&Flag::SeqReused),
        "seq 20 again in the same batch"
    );
    assert!(!flags(4).await.contains(&Flag::SeqReused), "a fresh seq");

    // The server's other flags survive next to it, sorted.
    let clamped = TestFact::new(a.id, dev, guard, 3);
    assert_eq!(clamped.record.flags, vec![Flag::ClockAhead]);
    let b = Batch::new(dev, guard).fact(&clamped);
    push(&store, &b).await;
    assert_eq!(
        store
            .get_fact(clamped.record.id)
            .await
            .unwrap()
            .unwrap()
            .flags,
        vec![Flag::ClockAhead, Flag::SeqReused]
    );
}

/// Managers see the devices of their estate's members, and the gaps in what they delivered.
pub async fn devices_are_listed_per_estate_with_their_gaps(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let other = user(&store, "elsewhere", &[(b.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let far = device(&store, other).await;
    let f: Vec<TestFact> = (0..=5)
        .map(|s| TestFact::new(a.id, dev, guard, s))
        .collect();
    // 1, 2, then 5: seqs 3 and 4 are missing, 5 is held past the gap.
    push(&store, &Batch::new(dev, guard).facts([&f[1], &f[2], &f[5]])).await;

    let listed = store.list_devices(a.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![dev],
        "only devices of A's members"
    );
    let d = &listed[0];
    assert_eq!(
        (d.acked_through_seq, d.max_seq, d.held_above_ack),
        (2, 5, 1)
    );
    assert_eq!(d.last_user_id, Some(guard));
    assert_eq!(
        store
            .list_devices(b.id)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        vec![far]
    );
}
