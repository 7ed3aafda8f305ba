//! Device sync health: managers see each handset's acknowledged seq and its gaps.

use crate::helpers::{assert_problem, json_ok, results, Scan, TestApp, ESTATE_1, ESTATE_2};
use reqwest::StatusCode;

#[tokio::test]
async fn a_manager_sees_a_guards_gap_and_the_guard_cannot_look() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate1 = guard.estate(ESTATE_1);
    // Seqs 1, 2 and 5 arrive; 3 and 4 are still on the handset.
    let answer = app
        .push_ok(
            &guard,
            vec![
                Scan::new(&estate1, 1).json(),
                Scan::new(&estate1, 2).json(),
                Scan::new(&estate1, 5).json(),
            ],
        )
        .await;
    assert!(
        results(&answer, 3)
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{answer}"
    );
    assert_eq!(answer["acked_through_seq"], 2);

    let manager = app.login_new_device("manager1").await;
    let url = app.url(&format!("/v1/estates/{estate1}/devices"));
    let get = |token: String| {
        let url = url.clone();
        let client = reqwest::Client::new();
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("devices request")
        }
    };
    let list = json_ok(get(manager.access.clone()).await).await;
    let devices = list["devices"].as_array().expect("devices");
    let d = devices
        .iter()
        .find(|d| d["id"] == guard.device_id.to_string())
        .unwrap_or_else(|| panic!("guard1's handset is listed: {list}"));
    assert_eq!(d["acked_through_seq"], 2);
    assert_eq!(d["max_seq"], 5);
    assert_eq!(d["missing_seqs"], 2, "seqs 3 and 4 never arrived: {d}");
    assert_eq!(d["last_user_id"], guard.user_id.as_str());
    assert!(d["last_clock_offset_ms"].is_i64(), "{d}");

    // The gap closes when 3 and 4 arrive.
    app.push_ok(
        &guard,
        vec![Scan::new(&estate1, 3).json(), Scan::new(&estate1, 4).json()],
    )
    .await;
    let list = json_ok(get(manager.access.clone()).await).await;
    let d = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == guard.device_id.to_string())
        .cloned()
        .unwrap();
    assert_eq!(
        (d["acked_through_seq"].as_u64(), d["missing_seqs"].as_u64()),
        (Some(5), Some(0)),
        "{d}"
    );

    // A guard may not look; another estate's id is not found.
    assert_problem(
        get(guard.access.clone()).await,
        StatusCode::FORBIDDEN,
        "/problems/forbidden",
    )
    .await;
    let guard3 = app.login_new_device("guard3").await;
    let estate2 = guard3.estate(ESTATE_2);
    let other = reqwest::Client::new()
        .get(app.url(&format!("/v1/estates/{estate2}/devices")))
        .bearer_auth(&manager.access)
        .send()
        .await
        .unwrap();
    assert_problem(other, StatusCode::NOT_FOUND, "/problems/not-found").await;
}
