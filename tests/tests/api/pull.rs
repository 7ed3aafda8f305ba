//! Pull: paging, cursors, bad cursors and limits, and long-polling.

use crate::helpers::{assert_problem, is_hlc, json_ok, Pulled, Scan, TestApp, ESTATE_1};
use reqwest::StatusCode;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn paging_returns_every_change_exactly_once_then_the_cursor_continues() {
    let app = TestApp::spawn().await;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard1.estate(ESTATE_1);

    let mut pushed: Vec<Uuid> = Vec::new();
    for (g, n) in [(&guard1, 12u64), (&guard2, 11)] {
        let scans: Vec<Scan> = (1..=n).map(|s| Scan::new(&estate, s)).collect();
        pushed.extend(scans.iter().map(|s| s.id));
        app.push_ok(g, scans.iter().map(Scan::json).collect()).await;
    }
    // The feed: the estate itself, the demo's hazard tickets, then 23 facts.
    let listed = app
        .client
        .get(app.url("/v1/hazards?limit=1000"))
        .bearer_auth(&manager.access)
        .send()
        .await
        .unwrap();
    let hazards = json_ok(listed).await["hazards"].as_array().unwrap().len();
    assert!(hazards > 0, "the demo seeds hazard tickets");
    let total = 1 + hazards + pushed.len();

    let mut cursor: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let body = json_ok(app.pull(&manager, cursor.as_deref(), Some(7), None).await).await;
        assert!(is_hlc(body["hlc"].as_str().unwrap()));
        let page = Pulled::from_body(body);
        pages += 1;
        assert!(page.changes.len() <= 7);
        for c in &page.changes {
            seen.push(format!(
                "{}/{}",
                c["collection"].as_str().unwrap(),
                c["id"].as_str().unwrap()
            ));
        }
        cursor = Some(page.cursor.clone());
        if seen.len() < total {
            assert!(
                page.has_more,
                "has_more until the end (after {} of {total})",
                seen.len()
            );
            assert_eq!(page.changes.len(), 7, "full pages until the end");
        } else {
            assert!(!page.has_more, "has_more is false on the last page");
            break;
        }
        assert!(pages < 10, "the feed never ended");
    }
    assert_eq!(pages, total.div_ceil(7));
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no change twice: {seen:?}");
    assert_eq!(seen[0], format!("estates/{estate}"));
    for id in &pushed {
        assert!(seen.contains(&format!("facts/{id}")), "fact {id} missing");
    }
    // Facts of one batch come in batch order.
    let facts: Vec<String> = seen
        .iter()
        .filter(|s| s.starts_with("facts/"))
        .cloned()
        .collect();
    let expected: Vec<String> = pushed.iter().map(|id| format!("facts/{id}")).collect();
    assert_eq!(facts, expected, "facts in commit order");

    // Up to date: the same cursor gives nothing, and stays usable.
    let empty = app.pull_ok(&manager, cursor.as_deref()).await;
    assert!(empty.changes.is_empty());
    assert!(!empty.has_more);

    // New facts arrive after the cursor, and only they.
    let more: Vec<Scan> = (13..=15).map(|s| Scan::new(&estate, s)).collect();
    app.push_ok(&guard1, more.iter().map(Scan::json).collect())
        .await;
    for c in [cursor.as_deref().unwrap(), empty.cursor.as_str()] {
        let next = app.pull_ok(&manager, Some(c)).await;
        let ids: Vec<&str> = next
            .changes
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            more.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
            "exactly the new facts"
        );
        assert!(!next.has_more);
    }
}

#[tokio::test]
async fn an_empty_cursor_starts_again() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let first = app.pull_ok(&guard, None).await;
    let again = app.pull_ok(&guard, Some("")).await;
    assert_eq!(first.changes, again.changes);
    assert_eq!(first.estates("put"), vec![guard.estate(ESTATE_1)]);
}

#[tokio::test]
async fn an_unreadable_cursor_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let real = app.pull_ok(&guard, None).await.cursor;
    let mut truncated = real.clone();
    truncated.truncate(real.len() / 2);
    // "e30" is base64url for "{}": decodable, but not a cursor.
    for bad in ["!!!", "not-a-cursor", "e30", truncated.as_str()] {
        let resp = app.pull(&guard, Some(bad), None, None).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "/problems/invalid-cursor").await;
    }
}

#[tokio::test]
async fn another_users_cursor_must_reset() {
    let app = TestApp::spawn().await;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let manager = app.login_new_device("manager1").await;
    let cursor = app.pull_ok(&guard1, None).await.cursor;

    for other in [&guard2, &manager] {
        let resp = app.pull(other, Some(&cursor), None, None).await;
        let p = assert_problem(resp, StatusCode::GONE, "/problems/must-reset").await;
        assert!(p["type"].as_str().unwrap().ends_with("must-reset"));
    }
    // The same user on another device may carry on from it (same scope).
    let guard1_again = app.login_new_device("guard1").await;
    app.pull_ok(&guard1_again, Some(&cursor)).await;
}

#[tokio::test]
async fn limit_and_wait_out_of_range_are_422() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    for limit in [0, 5001] {
        let resp = app.pull(&guard, None, Some(limit), None).await;
        let p = assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
        assert_eq!(p["errors"][0]["path"], "limit", "{p}");
    }
    let resp = app.pull(&guard, None, None, Some(61)).await;
    let p = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "wait", "{p}");
    // Not a number at all.
    let resp = app
        .client
        .get(app.url("/v1/sync/pull?limit=lots"))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    // The bounds themselves are fine.
    for limit in [1, 5000] {
        json_ok(app.pull(&guard, None, Some(limit), None).await).await;
    }
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_fact_arrives() {
    let app = TestApp::spawn().await;
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
    // Let the poll get in flight before the push.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    app.push_ok(&guard, vec![scan.json()]).await;

    let (elapsed, resp) = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .expect("the long poll answers")
        .unwrap();
    let page = Pulled::from_body(json_ok(resp).await);
    assert!(
        page.has_fact(scan.id),
        "woken with the change: {:#?}",
        page.changes
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered on the change, not at the end of the wait: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_long_poll_with_nothing_new_ends_empty_at_the_same_position() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let start = app.pull_all(&guard, None).await.cursor;

    let started = Instant::now();
    let body = json_ok(app.pull(&guard, Some(&start), None, Some(1)).await).await;
    let elapsed = started.elapsed();
    let page = Pulled::from_body(body);
    assert!(page.changes.is_empty(), "{:#?}", page.changes);
    assert!(!page.has_more);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "waited about a second: {elapsed:?}"
    );

    // Same position: from either cursor, the next fact and nothing else.
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    app.push_ok(&guard, vec![scan.json()]).await;
    for c in [&start, &page.cursor] {
        let next = app.pull_ok(&guard, Some(c)).await;
        assert_eq!(next.changes.len(), 1, "{:#?}", next.changes);
        assert!(next.has_fact(scan.id));
    }
}

#[tokio::test]
async fn a_long_poll_is_not_answered_by_a_change_out_of_scope() {
    let app = TestApp::spawn().await;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let cursor = app.pull_all(&guard1, None).await.cursor;

    let poll = {
        let client = app.client.clone();
        let url = app.url("/v1/sync/pull");
        let access = guard1.access.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = client
                .get(url)
                .bearer_auth(access)
                .query(&[("cursor", cursor.as_str()), ("wait", "2")])
                .send()
                .await
                .unwrap();
            (started.elapsed(), resp)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Same estate, but guard1 does not see guard2's facts.
    app.push_ok(&guard2, vec![Scan::new(&guard2.estate(ESTATE_1), 1).json()])
        .await;
    let (elapsed, resp) = poll.await.unwrap();
    let page = Pulled::from_body(json_ok(resp).await);
    assert!(page.changes.is_empty(), "{:#?}", page.changes);
    assert!(
        elapsed >= Duration::from_millis(1900),
        "kept waiting: {elapsed:?}"
    );
}
