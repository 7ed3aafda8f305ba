//! Photo metadata and the record of stored bytes.

use super::fixtures::*;
use shared_core::hazard::PhotoRole;
use shared_core::{FactId, Role};
use sync_server::storage::{BlobRecord, DynStore, MissingQuery};

pub async fn photo_metadata_is_recorded_and_missing_bytes_listed(store: DynStore) {
    let e = estate(&store, "Harbour View").await.id;
    let other = estate(&store, "Hill Side").await.id;
    let guard = user(&store, "guard", &[(e, Role::Guard), (other, Role::Guard)]).await;
    let d1 = device(&store, guard).await;
    let d2 = device(&store, guard).await;
    let event = FactId::new_v7();
    let p1 = TestFact::hazard_photo(e, d1, guard, 1, event, PhotoRole::Before);
    // The same bytes photographed into another estate from another handset.
    let mut p2 = TestFact::hazard_photo(other, d2, guard, 1, event, PhotoRole::After);
    p2.record.id = FactId::new_v7();
    p2.rehash();
    push(&store, &Batch::new(d1, guard).fact(&p1)).await;
    push(&store, &Batch::new(d2, guard).fact(&p2)).await;
    // Pushing again records nothing twice.
    push(&store, &Batch::new(d1, guard).fact(&p1)).await;

    // By subject: only the asked estate's, only the asked kind.
    let ids = vec![event.to_string(), FactId::new_v7().to_string()];
    let of = store
        .photos_of_subjects(e, "hazard_event", &ids)
        .await
        .unwrap();
    assert_eq!(
        of.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p1.record.id]
    );
    let of = store
        .photos_of_subjects(other, "hazard_event", &ids)
        .await
        .unwrap();
    assert_eq!(
        of.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2.record.id]
    );
    assert!(store
        .photos_of_subjects(e, "scan", &ids)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .photos_of_subjects(e, "hazard_event", &[])
        .await
        .unwrap()
        .is_empty());

    let sha = format!("{:064x}", 1);
    let rows = store.photos_by_sha(&sha).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, p1.record.id);
    assert_eq!(rows[0].estate_id, e);
    assert_eq!(rows[0].device_id, d1);
    assert_eq!(rows[0].user_id, guard);
    assert_eq!(rows[0].bytes, Some(1000));
    assert_eq!(rows[0].mime.as_deref(), Some("image/jpeg"));
    assert_eq!(rows[0].subject_kind, "hazard_event");
    assert_eq!(rows[0].subject_id, event.to_string());
    assert_eq!(rows[0].role, "before");
    assert_eq!(rows[1].estate_id, other);
    assert!(store
        .photos_by_sha(&"f".repeat(64))
        .await
        .unwrap()
        .is_empty());

    let of_e = MissingQuery {
        estate: Some(e),
        device: None,
    };
    let missing = store.photos_missing(&of_e).await.unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].device_id, d1);
    let of_d2 = MissingQuery {
        estate: None,
        device: Some(d2),
    };
    assert_eq!(store.photos_missing(&of_d2).await.unwrap().len(), 1);

    assert_eq!(store.photo_blob(&sha).await.unwrap(), None);
    let blob = BlobRecord {
        sha256: sha.clone(),
        bytes: 1000,
        mime: "image/jpeg".into(),
        stored_at: 1_700_000_000_000,
    };
    assert!(store.record_photo_blob(&blob).await.unwrap().is_some());
    assert!(store.record_photo_blob(&blob).await.unwrap().is_none());
    assert_eq!(store.photo_blob(&sha).await.unwrap(), Some(blob));
    assert!(store.photos_missing(&of_e).await.unwrap().is_empty());
    assert!(store
        .photos_missing(&MissingQuery::default())
        .await
        .unwrap()
        .is_empty());
}
