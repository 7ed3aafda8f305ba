//! Estates, users, memberships and sessions.

use super::fixtures::*;
use shared_core::wire::EstateRecord;
use shared_core::{DeviceId, EstateId, Role, UserId};
use std::collections::BTreeSet;
use sync_server::storage::{
    ActiveSession, DynStore, NewSession, NewUser, RotateOutcome, SessionId, StoreError,
};

pub async fn estates_lifecycle(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    assert_eq!(a.name, "Harbour View");
    assert_eq!(a.timezone, "Asia/Shanghai");
    assert_ne!(a.id, b.id);

    let listed: Vec<EstateRecord> = store.list_estates().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");

    let guard = user(&store, "guard", &[(a.id, Role::Guard), (b.id, Role::Guard)]).await;
    let before: Vec<(EstateId, bool)> = store
        .memberships(guard)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.estate.id, m.retired))
        .collect();
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|(_, retired)| !retired), "{before:?}");

    store.retire_estate(a.id, NOW + 1).await.unwrap();
    assert_eq!(store.list_estates().await.unwrap(), vec![b.clone()]);

    // The member keeps the retired estate, marked, so its tombstone can reach the handset.
    let after = store.memberships(guard).await.unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    for m in &after {
        assert_eq!(m.retired, m.estate.id == a.id, "{m:?}");
        assert_eq!(m.role, Role::Guard);
    }
    let retired = after.iter().find(|m| m.estate.id == a.id).unwrap();
    assert_eq!(
        retired.estate, a,
        "a retired estate keeps its name and time zone"
    );

    match store.retire_estate(EstateId::new_v7(), NOW).await {
        Err(StoreError::NotFound) => {}
        other => panic!("retiring an unknown estate: expected NotFound, got {other:?}"),
    }
}

pub async fn users_and_memberships(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let new = NewUser {
        username: "li.wei".into(),
        name: "Li Wei".into(),
        password_hash: "$argon2id$v=19$fake".into(),
    };
    let id = store.create_user(new.clone(), NOW).await.unwrap();

    let by_name = store
        .find_user_by_username("li.wei")
        .await
        .unwrap()
        .expect("user found by username");
    assert_eq!(by_name.id, id);
    assert_eq!(by_name.username, "li.wei");
    assert_eq!(by_name.name, "Li Wei");
    assert_eq!(by_name.password_hash, "$argon2id$v=19$fake");
    assert!(!by_name.disabled);
    assert_eq!(store.find_user(id).await.unwrap(), Some(by_name));
    assert_eq!(store.find_user_by_username("nobody").await.unwrap(), None);
    assert_eq!(store.find_user(UserId::new_v7()).await.unwrap(), None);

    match store.create_user(new, NOW + 1).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a duplicate username: expected Conflict, got {other:?}"),
    }

    match store
        .add_membership(id, EstateId::new_v7(), Role::Guard)
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("membership in an unknown estate: expected NotFound, got {other:?}"),
    }

    store.add_membership(id, a.id, Role::Guard).await.unwrap();
    store
        .add_membership(id, a.id, Role::Engineer)
        .await
        .unwrap();
    store
        .add_membership(id, b.id, Role::Supervisor)
        .await
        .unwrap();
    // Adding a role the user already holds changes nothing.
    store
        .add_membership(id, b.id, Role::Supervisor)
        .await
        .unwrap();

    let got: Vec<(EstateId, Role, bool)> = store
        .memberships(id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let expect = if m.estate.id == a.id { &a } else { &b };
            assert_eq!(&m.estate, expect);
            (m.estate.id, m.role, m.retired)
        })
        .collect();
    assert_eq!(got.len(), 3, "one row per (estate, role): {got:?}");
    let got: BTreeSet<_> = got.into_iter().collect();
    let want: BTreeSet<_> = [
        (a.id, Role::Guard, false),
        (a.id, Role::Engineer, false),
        (b.id, Role::Supervisor, false),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let other = user(&store, "other", &[]).await;
    assert_eq!(store.memberships(other).await.unwrap(), vec![]);
}

pub async fn sessions_and_refresh_rotation(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let guard = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let dev = device(&store, guard).await;
    let sid = SessionId(uuid::Uuid::now_v7());
    let expires = NOW + 30 * 24 * 3600 * 1000;
    store
        .create_session(NewSession {
            id: sid,
            user_id: guard,
            device_id: dev,
            refresh_hash: "rt-1".into(),
            refresh_expires_at: expires,
            now: NOW,
        })
        .await
        .unwrap();
    let active = ActiveSession {
        id: sid,
        user_id: guard,
        device_id: dev,
    };
    assert_eq!(
        store.active_session(sid).await.unwrap(),
        Some(active.clone())
    );
    assert_eq!(
        store
            .active_session(SessionId(uuid::Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );

    // Rotation: the new token is the session's token from then on.
    assert_eq!(
        store
            .rotate_refresh_token("rt-1", "rt-2", expires, NOW + 10)
            .await
            .unwrap(),
        RotateOutcome::Rotated(active.clone())
    );
    assert_eq!(
        store
            .rotate_refresh_token("rt-2", "rt-3", expires, NOW + 20)
            .await
            .unwrap(),
        RotateOutcome::Rotated(active.clone())
    );
    assert_eq!(
        store.active_session(sid).await.unwrap(),
        Some(active.clone())
    );

    // Someone replays a rotated token: the session dies, and with it the newest token.
    assert_eq!(
        store
            .rotate_refresh_token("rt-1", "rt-x", expires, NOW + 30)
            .await
            .unwrap(),
        RotateOutcome::Reused(sid)
    );
    assert_eq!(store.active_session(sid).await.unwrap(), None);
    assert_eq!(
        store
            .rotate_refresh_token("rt-3", "rt-4", expires, NOW + 40)
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "the newest token of a session revoked for reuse must not work"
    );
    assert_eq!(
        store
            .rotate_refresh_token("rt-x", "rt-5", expires, NOW + 40)
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "the token offered with the replayed one must not have been issued"
    );

    // Unknown and expired tokens.
    assert_eq!(
        store
            .rotate_refresh_token("no-such-token", "rt-6", expires, NOW)
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    let s2 = SessionId(uuid::Uuid::now_v7());
    store
        .create_session(NewSession {
            id: s2,
            user_id: guard,
            device_id: dev,
            refresh_hash: "short-1".into(),
            refresh_expires_at: NOW + 1_000,
            now: NOW,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("short-1", "short-2", NOW + 2_000, NOW + 1_001)
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "an expired refresh token"
    );
    let s3 = SessionId(uuid::Uuid::now_v7());
    store
        .create_session(NewSession {
            id: s3,
            user_id: guard,
            device_id: dev,
            refresh_hash: "short-3".into(),
            refresh_expires_at: NOW + 1_000,
            now: NOW,
        })
        .await
        .unwrap();
    let active3 = ActiveSession {
        id: s3,
        user_id: guard,
        device_id: dev,
    };
    assert_eq!(
        store
            .rotate_refresh_token("short-3", "short-4", NOW + 2_000, NOW + 999)
            .await
            .unwrap(),
        RotateOutcome::Rotated(active3.clone()),
        "a token just before it expires still works"
    );

    // Logout.
    store
        .revoke_session(s3, "logout", NOW + 1_100)
        .await
        .unwrap();
    assert_eq!(store.active_session(s3).await.unwrap(), None);
    assert_eq!(
        store
            .rotate_refresh_token("short-4", "short-5", NOW + 3_000, NOW + 1_200)
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "the token of a logged-out session"
    );
}

/// What an authenticated request reads in one query is what the two separate lookups give.
pub async fn session_context_is_the_session_and_its_memberships(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let both = user(
        &store,
        "supervisor",
        &[
            (a.id, Role::Guard),
            (a.id, Role::Supervisor),
            (b.id, Role::Guard),
        ],
    )
    .await;
    let none = user(&store, "newcomer", &[]).await;
    store.retire_estate(b.id, NOW).await.unwrap();
    for (who, expected_memberships) in [(both, 3), (none, 0)] {
        let dev = device(&store, who).await;
        let sid = SessionId(uuid::Uuid::now_v7());
        store
            .create_session(NewSession {
                id: sid,
                user_id: who,
                device_id: dev,
                refresh_hash: format!("rt-{sid:?}"),
                refresh_expires_at: NOW + 1_000_000,
                now: NOW,
            })
            .await
            .unwrap();
        let (session, memberships) = store
            .session_context(sid)
            .await
            .unwrap()
            .expect("live session");
        assert_eq!(Some(session), store.active_session(sid).await.unwrap());
        assert_eq!(memberships, store.memberships(who).await.unwrap());
        assert_eq!(memberships.len(), expected_memberships);
        store.revoke_session(sid, "test", NOW).await.unwrap();
        assert_eq!(
            store.session_context(sid).await.unwrap(),
            None,
            "a revoked session has no context"
        );
    }
    assert_eq!(
        store
            .session_context(SessionId(uuid::Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
}

pub async fn revoking_a_device_ends_its_sessions_and_keeps_the_first_time(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let who = user(&store, "guard", &[(a.id, Role::Guard)]).await;
    let lost = device(&store, who).await;
    let kept = device(&store, who).await;
    let mut sessions = Vec::new();
    for dev in [lost, lost, kept] {
        let sid = SessionId(uuid::Uuid::now_v7());
        store
            .create_session(NewSession {
                id: sid,
                user_id: who,
                device_id: dev,
                refresh_hash: format!("rt-{sid:?}"),
                refresh_expires_at: NOW + 1_000_000,
                now: NOW,
            })
            .await
            .unwrap();
        sessions.push(sid);
    }
    assert!(store.revoke_device(lost, NOW + 10).await.unwrap());
    for sid in &sessions[..2] {
        assert_eq!(
            store.session_context(*sid).await.unwrap(),
            None,
            "the lost handset's sessions end"
        );
    }
    assert!(
        store.session_context(sessions[2]).await.unwrap().is_some(),
        "the user's other device keeps its session"
    );
    let row = store.get_device(lost).await.unwrap().unwrap();
    assert!(row.revoked);
    assert!(!store.get_device(kept).await.unwrap().unwrap().revoked);
    // Revoking again is no error; an unknown device is reported as such.
    assert!(store.revoke_device(lost, NOW + 20).await.unwrap());
    assert!(!store.revoke_device(DeviceId::new_v7(), NOW).await.unwrap());
    // The refresh token of a revoked device's session does not rotate.
    assert_eq!(
        store
            .rotate_refresh_token(
                &format!("rt-{:?}", sessions[0]),
                "new",
                NOW + 1_000_000,
                NOW + 30
            )
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
}

pub async fn members_are_listed_per_estate_one_row_per_role(store: DynStore) {
    let a = estate(&store, "Harbour View").await;
    let b = estate(&store, "Garden Court").await;
    let sup = user(
        &store,
        "Bo supervisor",
        &[(a.id, Role::Supervisor), (a.id, Role::Guard)],
    )
    .await;
    let eng = user(
        &store,
        "Al engineer",
        &[(a.id, Role::Engineer), (b.id, Role::Manager)],
    )
    .await;
    let _other = user(&store, "Cy elsewhere", &[(b.id, Role::Guard)]).await;
    let rows = store.list_members(a.id).await.unwrap();
    let got: Vec<(UserId, Role)> = rows.iter().map(|r| (r.user_id, r.role)).collect();
    // By name, then role: the engineer first; the supervisor's two roles next to each other.
    assert_eq!(
        got,
        vec![
            (eng, Role::Engineer),
            (sup, Role::Guard),
            (sup, Role::Supervisor)
        ]
    );
    assert_eq!(rows[0].name, "Al engineer");
    assert!(rows[0].username.starts_with("Al engineer-"));
    assert_eq!(store.list_members(b.id).await.unwrap().len(), 2);
}
