//! Administration: estates and their tombstones, and reading the quarantine.

use crate::helpers::{
    assert_problem, json_ok, json_status, results, Scan, TestApp, ESTATE_1, ESTATE_2,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn a_retired_estate_reaches_handsets_as_a_tombstone() {
    let app = TestApp::spawn().await;
    let admin = app.login_new_device("admin").await;
    let before = app.pull_all(&admin, None).await.cursor;

    let resp = app
        .create_estate(
            &admin,
            &json!({"name": "  Test Towers  ", "timezone": "Asia/Hong_Kong"}),
        )
        .await;
    let estate = json_status(resp, StatusCode::CREATED).await;
    let id = estate["id"].as_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&id).is_ok());
    assert_eq!(estate["name"], "Test Towers", "the name is trimmed");
    assert_eq!(estate["timezone"], "Asia/Hong_Kong");

    // The creator administers it now.
    let me = json_ok(app.me(&admin.access).await).await;
    let mine = me["estates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("the new estate is not in /v1/me: {me}"));
    assert_eq!(mine["roles"], json!(["admin"]));

    // The admin's scope changed, so a cursor from before must reset...
    let resp = app.pull(&admin, Some(&before), None, None).await;
    assert_problem(resp, StatusCode::GONE, "/problems/must-reset").await;
    // ... and a fresh pull has the new estate.
    let pulled = app.pull_all(&admin, None).await;
    let put = pulled
        .changes
        .iter()
        .find(|c| c["collection"] == "estates" && c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no put for the new estate: {:#?}", pulled.changes));
    assert_eq!(put["op"], "put");
    assert_eq!(put["data"], estate);

    // Nobody else sees it.
    let guard = app.login_new_device("guard1").await;
    let gp = app.pull_all(&guard, None).await;
    assert!(!serde_json::to_string(&gp.changes).unwrap().contains(&id));

    let resp = app.retire_estate(&admin, &id).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    crate::helpers::hlc_header(resp.headers());

    // The same cursor carries on (retired estates stay in scope) and brings the tombstone.
    let after = app.pull_all(&admin, Some(&pulled.cursor)).await;
    assert_eq!(after.changes.len(), 1, "{:#?}", after.changes);
    let tomb = &after.changes[0];
    assert_eq!(tomb["collection"], "estates");
    assert_eq!(tomb["op"], "delete");
    assert_eq!(tomb["id"], id.as_str());
    assert!(tomb["data"].is_null(), "{tomb}");

    // It is gone for good: no second retirement, no new facts, not in /v1/me.
    let resp = app.retire_estate(&admin, &id).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let answer = app.push_ok(&admin, vec![Scan::new(&id, 1).json()]).await;
    let r = results(&answer, 1);
    assert_eq!(r[0]["status"], "rejected");
    assert_eq!(r[0]["code"], "unknown_estate");
    let me = json_ok(app.me(&admin.access).await).await;
    assert!(!me.to_string().contains(&id), "{me}");
    // The demo estates are untouched.
    let fresh = app.pull_all(&admin, None).await;
    let mut puts = fresh.estates("put");
    puts.sort();
    let mut expected = vec![admin.estate(ESTATE_1), admin.estate(ESTATE_2)];
    expected.sort();
    assert_eq!(puts, expected);
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_retirement() {
    let app = TestApp::spawn().await;
    let admin = app.login_new_device("admin").await;
    let resp = app
        .create_estate(&admin, &json!({"name": "Short-lived"}))
        .await;
    let estate = json_status(resp, StatusCode::CREATED).await;
    assert_eq!(estate["timezone"], "Asia/Shanghai", "the default time zone");
    let id = estate["id"].as_str().unwrap().to_owned();
    let cursor = app.pull_all(&admin, None).await.cursor;

    let poll = {
        let client = app.client.clone();
        let url = app.url("/v1/sync/pull");
        let access = admin.access.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
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
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        app.retire_estate(&admin, &id).await.status(),
        StatusCode::NO_CONTENT
    );
    let (elapsed, resp) = poll.await.unwrap();
    let page = crate::helpers::Pulled::from_body(json_ok(resp).await);
    assert_eq!(page.estates("delete"), vec![id]);
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn creating_an_estate_checks_its_fields() {
    let app = TestApp::spawn().await;
    let admin = app.login_new_device("admin").await;
    let cases = [
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"name": "Ok", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (json!({"timezone": "Asia/Shanghai"}), "name"),
    ];
    for (body, path) in cases {
        let resp = app.create_estate(&admin, &body).await;
        let p = assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == path),
            "{body} → {p}"
        );
    }
    // None of them was created.
    let me = json_ok(app.me(&admin.access).await).await;
    assert_eq!(me["estates"].as_array().unwrap().len(), 2);
}

async fn push_rejected(app: &TestApp, who: &str, estate: &str, n: u64) -> Vec<Value> {
    let s = app.login_new_device(who).await;
    let changes: Vec<Value> = (1..=n)
        .map(|seq| {
            let mut c = Scan::new(estate, seq).json();
            c["kind"] = json!(format!("bogus_{who}_{seq}"));
            c
        })
        .collect();
    let answer = app.push_ok(&s, changes.clone()).await;
    assert!(results(&answer, n as usize)
        .iter()
        .all(|r| r["code"] == "unknown_kind"));
    changes
}

#[tokio::test]
async fn the_quarantine_pages_newest_first_and_filters_by_estate() {
    let app = TestApp::spawn().await;
    let admin = app.login_new_device("admin").await;
    let e1 = admin.estate(ESTATE_1);
    let e2 = admin.estate(ESTATE_2);
    let g1 = push_rejected(&app, "guard1", &e1, 3).await;
    let g3 = push_rejected(&app, "guard3", &e2, 2).await;

    let all = json_ok(app.quarantine(&admin, "").await).await;
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{all}");
    assert!(all["next_before"].is_null(), "one page: {all}");
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(entries[0]["raw"], g3[1]);
    assert_eq!(entries[4]["raw"], g1[0]);

    let only1 = json_ok(app.quarantine(&admin, &format!("?estate_id={e1}")).await).await;
    let raws: Vec<&Value> = only1["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["raw"])
        .collect();
    assert_eq!(raws, [&g1[2], &g1[1], &g1[0]]);
    let only2 = json_ok(app.quarantine(&admin, &format!("?estate_id={e2}")).await).await;
    let raws: Vec<&Value> = only2["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["raw"])
        .collect();
    assert_eq!(raws, [&g3[1], &g3[0]]);

    // Pages of two.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    for _ in 0..5 {
        let page = json_ok(app.quarantine(&admin, &query).await).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(b) => query = format!("?limit=2&before={b}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "paging gives every entry once, in order");

    for bad in ["?limit=0", "?limit=1001", "?before=soon", "?estate_id=nope"] {
        let resp = app.quarantine(&admin, bad).await;
        assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
    }
}
