//! The same black-box stories on PostgreSQL, when `TEST_DATABASE_URL` is set (each test
//! makes a fresh database). Without it they say they skip, unless `REQUIRE_POSTGRES=1`.

use crate::helpers::{json_ok, results, Pulled, Scan, TestApp, ESTATE_1, ESTATE_2};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn postgres_push_pull_scoping_and_quarantine() {
    let Some(app) = TestApp::spawn_postgres("postgres_push_pull_scoping_and_quarantine").await
    else {
        return;
    };
    let ready = json_ok(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["backend"], "postgres");

    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let guard3 = app.login_new_device("guard3").await;
    let estate = guard1.estate(ESTATE_1);
    let a = Scan::new(&estate, 1);
    let b = Scan::new(&estate, 2);
    let mut bad = Scan::new(&estate, 4).json();
    bad["kind"] = json!("teleport");
    let answer = app
        .push_ok(&guard1, vec![a.json(), b.json(), bad.clone()])
        .await;
    let r = results(&answer, 3);
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[1]["status"], "accepted");
    assert_eq!(r[2]["code"], "unknown_kind");
    assert_eq!(answer["acked_through_seq"], 2);
    let again = app
        .push_ok(&guard1, vec![a.clone().age_ms(Some(99_000)).json()])
        .await;
    assert_eq!(results(&again, 1)[0]["status"], "duplicate");
    let conflict = app.push_ok(&guard1, vec![a.clone().tag("FF").json()]).await;
    assert_eq!(results(&conflict, 1)[0]["code"], "id_conflict");
    let g2 = Scan::new(&estate, 1);
    app.push_ok(&guard2, vec![g2.json()]).await;
    let foreign = app
        .push_ok(&guard3, vec![Scan::new(&estate, 1).json()])
        .await;
    assert_eq!(results(&foreign, 1)[0]["code"], "unknown_estate");

    let mine = app.pull_all(&guard1, None).await;
    assert_eq!(mine.facts().len(), 2);
    assert!(mine.has_fact(a.id) && mine.has_fact(b.id) && !mine.has_fact(g2.id));
    let manager = app.login_new_device("manager1").await;
    let all = app.pull_all(&manager, None).await;
    assert_eq!(all.facts().len(), 3);
    assert_eq!(all.fact(a.id)["user_id"], guard1.user_id);
    let g3 = app.pull_all(&guard3, None).await;
    assert_eq!(g3.estates("put"), vec![guard3.estate(ESTATE_2)]);
    assert!(g3.facts().is_empty());

    // Paging by 2 gives the same changes in the same order.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let body = json_ok(app.pull(&manager, cursor.as_deref(), Some(2), None).await).await;
        let page = Pulled::from_body(body);
        paged.extend(page.changes);
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(paged, all.changes);

    let admin = app.login_new_device("admin").await;
    let q = json_ok(app.quarantine(&admin, "").await).await;
    let codes: Vec<&str> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["unknown_estate", "id_conflict", "unknown_kind"]);
    assert_eq!(q["entries"][2]["raw"], bad);
}

#[tokio::test]
async fn postgres_long_poll_wakes_on_a_push() {
    let Some(app) = TestApp::spawn_postgres("postgres_long_poll_wakes_on_a_push").await else {
        return;
    };
    let manager = app.login_new_device("manager1").await;
    let guard = app.login_new_device("guard1").await;
    let cursor = app.pull_all(&manager, None).await.cursor;
    let poll = {
        let client = app.client.clone();
        let url = app.url("/v1/sync/pull");
        let access = manager.access.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = client
                .get(url)
                .bearer_auth(access)
                .query(&[("cursor", cursor.as_str()), ("wait", "10")])
                .send()
                .await
                .unwrap();
            (started.elapsed(), resp)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    app.push_ok(&guard, vec![scan.json()]).await;
    let (elapsed, resp) = poll.await.unwrap();
    let page = Pulled::from_body(json_ok(resp).await);
    assert!(page.has_fact(scan.id), "{:#?}", page.changes);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn postgres_restart_keeps_sessions() {
    let Some(mut first) = TestApp::spawn_postgres("postgres_restart_keeps_sessions").await else {
        return;
    };
    let guard = first.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    app_push(&first, &guard, &scan).await;
    let url = first.postgres_database_url();
    let dir = first.data_dir.clone();
    first.stop().await;

    let second = TestApp::spawn_in(&dir, url).await;
    let me = json_ok(second.me(&guard.access).await).await;
    assert_eq!(me["device_id"], guard.device_id.to_string());
    assert!(second.pull_all(&guard, None).await.has_fact(scan.id));
    let admin = second.login_new_device("admin").await;
    assert_eq!(admin.estates.len(), 2, "the demo seed ran once");
    drop(second);
    drop(first);
}

async fn app_push(app: &TestApp, s: &crate::helpers::Session, scan: &Scan) {
    let answer = app.push_ok(s, vec![scan.json()]).await;
    assert_eq!(results(&answer, 1)[0]["status"], "accepted");
}

#[tokio::test]
async fn postgres_odd_but_valid_json_is_never_a_500() {
    let Some(app) = TestApp::spawn_postgres("postgres_odd_but_valid_json_is_never_a_500").await
    else {
        return;
    };
    crate::push::odd_but_valid_json_is_never_a_500(&app).await;
}

#[tokio::test]
async fn postgres_quarantine_keeps_the_raw_change_exactly() {
    let Some(app) =
        TestApp::spawn_postgres("postgres_quarantine_keeps_the_raw_change_exactly").await
    else {
        return;
    };
    crate::push::quarantine_keeps_the_raw_change_exactly(&app).await;
}

#[tokio::test]
async fn postgres_hostile_text_in_sign_in_and_admin_is_never_a_500() {
    let Some(app) =
        TestApp::spawn_postgres("postgres_hostile_text_in_sign_in_and_admin_is_never_a_500").await
    else {
        return;
    };
    crate::auth::hostile_text_in_sign_in_and_admin_is_never_a_500(&app).await;
}

/// Load balancers take an instance out when `/readyz` fails: 503 problem+json while the
/// database is unreachable, `/healthz` still 200 (the process is fine), and back to 200
/// when the database returns.
#[tokio::test]
async fn postgres_readyz_is_503_while_the_database_is_unreachable() {
    let Some(app) =
        TestApp::spawn_postgres("postgres_readyz_is_503_while_the_database_is_unreachable").await
    else {
        return;
    };
    json_ok(app.client.get(app.url("/readyz")).send().await.unwrap()).await;

    app.set_postgres_reachable(false).await;
    let started = Instant::now();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    crate::helpers::assert_problem(
        resp,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "/problems/unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "readyz answers promptly, not after the pool's timeout"
    );
    json_ok(app.client.get(app.url("/healthz")).send().await.unwrap()).await;

    app.set_postgres_reachable(true).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
        if resp.status() == reqwest::StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz recovers once the database is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
