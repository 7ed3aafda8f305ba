//! A restart on the same data directory keeps sessions (the JWT secret lives there) and data.

use crate::helpers::{json_ok, results, Scan, TestApp, ESTATE_1};
use reqwest::StatusCode;

#[tokio::test]
async fn a_restart_on_the_same_data_dir_keeps_sessions_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = TestApp::spawn_in(dir.path(), None).await;
    let guard = first.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    let body = crate::helpers::batch(guard.device_id, vec![scan.json()]);
    let answer = json_ok(first.push(&guard, &body).await).await;
    assert_eq!(results(&answer, 1)[0]["status"], "accepted");
    let cursor = first.pull_all(&guard, None).await.cursor;
    first.stop().await;
    assert!(
        first
            .client
            .get(first.url("/healthz"))
            .send()
            .await
            .is_err(),
        "the first server has stopped"
    );

    let second = TestApp::spawn_in(dir.path(), None).await;
    // The old access token still works: same secret, same session.
    let me = json_ok(second.me(&guard.access).await).await;
    assert_eq!(me["device_id"], guard.device_id.to_string());
    // The data is there, the cursor still fits, and a replay gets the first answer.
    let pulled = second.pull_all(&guard, None).await;
    assert!(pulled.has_fact(scan.id));
    let next = second.pull_ok(&guard, Some(&cursor)).await;
    assert!(next.changes.is_empty(), "{:#?}", next.changes);
    let replay = json_ok(second.push(&guard, &body).await).await;
    assert_eq!(replay["results"], answer["results"]);
    // The refresh token too.
    let resp = second.refresh(&guard.refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The demo seed did not run twice.
    let admin = second.login_new_device("admin").await;
    assert_eq!(admin.estates.len(), 2);
}

#[tokio::test]
async fn a_server_on_another_data_dir_does_not_accept_the_token() {
    let first = TestApp::spawn().await;
    let guard = first.login_new_device("guard1").await;
    let other = TestApp::spawn().await;
    let resp = other.me(&guard.access).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stopping_answers_a_long_poll_at_once_instead_of_waiting_it_out() {
    let mut app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let cursor = app.pull_all(&guard, None).await.cursor;
    let poll = {
        let client = app.client.clone();
        let url = app.url("/v1/sync/pull");
        let access = guard.access.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let resp = client
                .get(url)
                .bearer_auth(access)
                .query(&[("cursor", cursor.as_str()), ("wait", "30")])
                .send()
                .await
                .unwrap();
            (started.elapsed(), resp)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "shutdown was held up by the long poll: {:?}",
        started.elapsed()
    );
    let (elapsed, resp) = poll.await.unwrap();
    let body = json_ok(resp).await;
    assert_eq!(body["changes"], serde_json::json!([]));
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}
