//! Push: accepted, duplicate and conflicting facts, replayed batches, bad changes beside good
//! ones, the acknowledged prefix, trusted time and HLC clamping, and bad batches.

use crate::helpers::{
    assert_problem, batch, batch_sent_at, hlc_at, is_hlc, json_ok, parse_time, results, Scan,
    Session, TestApp, ESTATE_1, ESTATE_2,
};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn status(r: &Value) -> &str {
    r["status"]
        .as_str()
        .unwrap_or_else(|| panic!("status: {r}"))
}

#[tokio::test]
async fn a_good_scan_is_accepted_and_acknowledged() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    let body = batch(guard.device_id, vec![scan.json()]);
    let answer = json_ok(app.push(&guard, &body).await).await;

    assert_eq!(answer["batch_id"], body["batch_id"]);
    let r = results(&answer, 1);
    assert_eq!(r[0]["status"], "accepted", "{answer}");
    assert_eq!(r[0]["id"], scan.id.to_string());
    assert!(r[0].get("code").is_none(), "{answer}");
    assert_eq!(answer["acked_through_seq"], 1);
    assert_eq!(answer["photos_missing"], json!([]));
    let hlc = answer["hlc"].as_str().unwrap();
    assert!(is_hlc(hlc));
    assert!(
        hlc > scan.hlc.as_str(),
        "the answer's hlc {hlc} orders after the fact's {}",
        scan.hlc
    );

    // The guard's own pull returns the fact as stored.
    let pulled = app.pull_all(&guard, None).await;
    let fact = pulled.fact(scan.id);
    assert_eq!(fact["kind"], "scan");
    assert_eq!(fact["seq"], 1);
    assert_eq!(fact["hlc"], scan.hlc);
    assert_eq!(fact["estate_id"], guard.estate(ESTATE_1));
    assert_eq!(fact["device_id"], guard.device_id.to_string());
    assert_eq!(fact["user_id"], guard.user_id);
    assert_eq!(fact["batch_id"], body["batch_id"]);
    assert_eq!(fact["data"], scan.json()["data"]);
    assert_eq!(
        parse_time(&fact["recorded_at"]).timestamp_millis(),
        scan.recorded_at.timestamp_millis()
    );
}

#[tokio::test]
async fn the_same_fact_sent_again_is_a_duplicate_even_with_a_larger_age() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1).age_ms(Some(1_000));
    let first = app.push_ok(&guard, vec![scan.json()]).await;
    assert_eq!(results(&first, 1)[0]["status"], "accepted");

    // An honest re-send, minutes later, in a new batch: the fact is older now.
    let again = app
        .push_ok(&guard, vec![scan.clone().age_ms(Some(301_000)).json()])
        .await;
    let r = results(&again, 1);
    assert_eq!(r[0]["status"], "duplicate", "{again}");
    assert_eq!(r[0]["id"], scan.id.to_string());
    assert!(r[0].get("code").is_none());
    assert_eq!(again["acked_through_seq"], 1);

    // Stored once, with the first send's age.
    let pulled = app.pull_all(&guard, None).await;
    assert_eq!(pulled.facts().len(), 1, "{:#?}", pulled.changes);
    assert_eq!(pulled.fact(scan.id)["age_ms"], 1_000);
}

#[tokio::test]
async fn the_same_id_with_other_content_is_rejected_and_quarantined() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1).tag("04:A2:19:7C");
    app.push_ok(&guard, vec![scan.json()]).await;

    let forged = scan.clone().tag("04:A2:19:7D");
    let body = batch(guard.device_id, vec![forged.json()]);
    let answer = json_ok(app.push(&guard, &body).await).await;
    let r = results(&answer, 1);
    assert_eq!(r[0]["status"], "rejected", "{answer}");
    assert_eq!(r[0]["code"], "id_conflict");
    assert_eq!(r[0]["id"], scan.id.to_string());
    assert!(r[0]["message"].is_string());

    // The first content stands.
    let pulled = app.pull_all(&guard, None).await;
    assert_eq!(pulled.facts().len(), 1);
    assert_eq!(pulled.fact(scan.id)["data"]["tag"], "04:A2:19:7C");

    // The refused one is in quarantine, as sent.
    let admin = app.login_new_device("admin").await;
    let q = json_ok(app.quarantine(&admin, "").await).await;
    let entry = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["batch_id"] == body["batch_id"])
        .unwrap_or_else(|| panic!("not quarantined: {q}"));
    assert_eq!(entry["code"], "id_conflict");
    assert_eq!(entry["change_id"], scan.id.to_string());
    assert_eq!(entry["raw"], forged.json());
}

#[tokio::test]
async fn replaying_a_batch_returns_the_first_answer() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let body = batch(
        guard.device_id,
        vec![
            Scan::new(&estate, 1).json(),
            json!("not a change"),
            Scan::new(&estate, 2).json(),
        ],
    );
    let first = json_ok(app.push(&guard, &body).await).await;
    assert_eq!(
        results(&first, 3)
            .iter()
            .map(|r| status(r).to_owned())
            .collect::<Vec<_>>(),
        ["accepted", "rejected", "accepted"]
    );
    assert_eq!(first["acked_through_seq"], 2);

    // The handset lost the answer and sends the same batch again.
    let replay = json_ok(app.push(&guard, &body).await).await;
    assert_eq!(replay["batch_id"], first["batch_id"]);
    assert_eq!(
        replay["results"], first["results"],
        "a replay is not re-judged: nothing turns into a duplicate"
    );
    assert_eq!(replay["acked_through_seq"], first["acked_through_seq"]);
    assert_eq!(replay["photos_missing"], first["photos_missing"]);
    assert!(replay["hlc"].as_str().unwrap() > first["hlc"].as_str().unwrap());

    // Even with another body, the batch id gets the first answer and stores nothing new.
    let mut other = body.clone();
    other["changes"] = json!([Scan::new(&estate, 3).json()]);
    let replay2 = json_ok(app.push(&guard, &other).await).await;
    assert_eq!(replay2["results"], first["results"]);
    assert_eq!(replay2["acked_through_seq"], 2);

    let pulled = app.pull_all(&guard, None).await;
    assert_eq!(pulled.facts().len(), 2, "{:#?}", pulled.changes);
}

#[tokio::test]
async fn bad_changes_are_rejected_beside_the_good_ones_and_quarantined() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let admin = app.login_new_device("admin").await;
    let estate = guard.estate(ESTATE_1);
    let other_estate = admin.estate(ESTATE_2);

    let good_first = Scan::new(&estate, 1);
    let good_last = Scan::new(&estate, 10);
    let mut unknown_kind = Scan::new(&estate, 2).json();
    unknown_kind["kind"] = json!("teleport");
    let mut seq_string = Scan::new(&estate, 3).json();
    seq_string["seq"] = json!("4");
    let mut no_estate = Scan::new(&estate, 4).json();
    no_estate["data"]
        .as_object_mut()
        .unwrap()
        .remove("estate_id");
    let foreign_estate = Scan::new(&other_estate, 5).json();
    let not_an_object = json!([1, 2, 3]);
    let bad_hlc = Scan::new(&estate, 7).hlc("yesterday").json();
    let v4_id = Scan::new(&estate, 8).id(Uuid::new_v4()).json();
    let mut bad_time = Scan::new(&estate, 9).json();
    bad_time["recorded_at"] = json!("22/11/2026 09:30");

    let changes = vec![
        good_first.json(),
        unknown_kind.clone(),
        seq_string.clone(),
        no_estate.clone(),
        foreign_estate.clone(),
        not_an_object.clone(),
        bad_hlc.clone(),
        v4_id.clone(),
        bad_time.clone(),
        good_last.json(),
    ];
    let body = batch(guard.device_id, changes.clone());
    let answer = json_ok(app.push(&guard, &body).await).await;
    let r = results(&answer, changes.len());

    let expected = [
        ("accepted", None),
        ("rejected", Some("unknown_kind")),
        ("rejected", Some("wrong_type")),
        ("rejected", Some("missing_field")),
        ("rejected", Some("unknown_estate")),
        ("rejected", Some("not_an_object")),
        ("rejected", Some("invalid_hlc")),
        ("rejected", Some("invalid_id")),
        ("rejected", Some("invalid_timestamp")),
        ("accepted", None),
    ];
    for (i, (st, code)) in expected.iter().enumerate() {
        assert_eq!(status(&r[i]), *st, "change {i}: {}", r[i]);
        match code {
            Some(c) => {
                assert_eq!(r[i]["code"], *c, "change {i}: {}", r[i]);
                assert!(r[i]["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
            None => assert!(r[i].get("code").is_none(), "change {i}: {}", r[i]),
        }
    }
    assert_eq!(r[0]["id"], good_first.id.to_string());
    assert_eq!(r[9]["id"], good_last.id.to_string());
    assert!(
        r[5]["id"].is_null(),
        "a change with no id has none: {}",
        r[5]
    );
    assert_eq!(r[1]["id"], unknown_kind["id"], "a readable id is echoed");

    // Both good changes are stored; none of the bad ones.
    let manager = app.login_new_device("manager1").await;
    let pulled = app.pull_all(&manager, None).await;
    let ids: Vec<&str> = pulled
        .facts()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [good_first.id.to_string(), good_last.id.to_string()],
        "{:#?}",
        pulled.changes
    );

    // Every refused change is in quarantine with its raw JSON and code.
    let q = json_ok(app.quarantine(&admin, "").await).await;
    let entries: Vec<&Value> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["batch_id"] == body["batch_id"])
        .collect();
    assert_eq!(entries.len(), 8, "{q}");
    for (i, (_, code)) in expected.iter().enumerate() {
        let Some(code) = code else { continue };
        let e = entries
            .iter()
            .find(|e| e["index"] == i)
            .unwrap_or_else(|| panic!("change {i} not in quarantine: {q}"));
        assert_eq!(e["code"], *code);
        assert_eq!(e["raw"], changes[i], "raw JSON of change {i}");
        assert_eq!(e["device_id"], guard.device_id.to_string());
        assert_eq!(e["user_id"], guard.user_id);
        assert!(e["message"].is_string());
        parse_time(&e["received_at"]);
    }
}

#[tokio::test]
async fn acked_through_seq_stops_at_the_first_gap() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard2").await;
    let estate = guard.estate(ESTATE_1);
    let answer = app
        .push_ok(
            &guard,
            vec![
                Scan::new(&estate, 1).json(),
                Scan::new(&estate, 2).json(),
                Scan::new(&estate, 4).json(),
            ],
        )
        .await;
    assert_eq!(answer["acked_through_seq"], 2, "{answer}");

    let answer = app
        .push_ok(&guard, vec![Scan::new(&estate, 3).json()])
        .await;
    assert_eq!(answer["acked_through_seq"], 4, "{answer}");

    // A rejected change still counts as held (it is in quarantine).
    let mut bad = Scan::new(&estate, 5).json();
    bad["kind"] = json!("teleport");
    let answer = app
        .push_ok(&guard, vec![bad, Scan::new(&estate, 6).json()])
        .await;
    assert_eq!(answer["acked_through_seq"], 6, "{answer}");

    // Each device has its own counter.
    let second = app.login_new_device("guard2").await;
    let answer = app
        .push_ok(&second, vec![Scan::new(&estate, 2).json()])
        .await;
    assert_eq!(answer["acked_through_seq"], 0, "{answer}");
}

async fn manager_view(app: &TestApp, id: Uuid) -> Value {
    let manager = app.login_new_device("manager1").await;
    app.pull_all(&manager, None).await.fact(id).clone()
}

#[tokio::test]
async fn with_age_ms_trusted_time_is_received_at_minus_age_and_verified() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    // The phone's wall clock is an hour slow, but the monotonic age is exact.
    let now = Utc::now();
    let slow = Duration::hours(1);
    let scan = Scan::new(&guard.estate(ESTATE_1), 1)
        .recorded_at(now - slow - Duration::minutes(90))
        .age_ms(Some(90 * 60_000));
    let body = batch_sent_at(guard.device_id, now - slow, vec![scan.json()]);
    let before = Utc::now();
    json_ok(app.push(&guard, &body).await).await;
    let after = Utc::now();

    let fact = manager_view(&app, scan.id).await;
    let received = parse_time(&fact["received_at"]);
    assert!(
        before - Duration::seconds(1) <= received && received <= after + Duration::seconds(1),
        "received_at {received} is the server's clock"
    );
    let trusted = parse_time(&fact["trusted_at"]);
    assert_eq!(
        trusted.timestamp_millis(),
        received.timestamp_millis() - 90 * 60_000,
        "{fact}"
    );
    assert_eq!(fact["clock_trust"], "verified");
    assert_eq!(fact["age_ms"], 90 * 60_000);
    assert_eq!(
        fact["flags"],
        json!(["clock_skew"]),
        "an hour off is skew: {fact}"
    );
}

#[tokio::test]
async fn without_age_ms_trusted_time_takes_the_clock_offset_out() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    // The guard set the phone back an hour; the scan really happened 5 minutes ago.
    let true_time = Utc::now() - Duration::minutes(5);
    let back = Duration::hours(1);
    let scan = Scan::new(&guard.estate(ESTATE_1), 1)
        .recorded_at(true_time - back)
        .age_ms(None);
    let sent_at = Utc::now() - back;
    let body = batch_sent_at(guard.device_id, sent_at, vec![scan.json()]);
    json_ok(app.push(&guard, &body).await).await;

    let fact = manager_view(&app, scan.id).await;
    assert!(fact.get("age_ms").is_none(), "{fact}");
    assert_eq!(fact["clock_trust"], "estimated");
    let flags = fact["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("clock_skew")), "{fact}");
    let received = parse_time(&fact["received_at"]);
    let trusted = parse_time(&fact["trusted_at"]);
    // Exactly recorded_at + (received_at − sent_at) ...
    assert_eq!(
        trusted.timestamp_millis(),
        scan.recorded_at.timestamp_millis() + received.timestamp_millis()
            - sent_at.timestamp_millis(),
        "{fact}"
    );
    // ... which is the true time, give or take the request's own latency.
    let off = (trusted - true_time).num_milliseconds().abs();
    assert!(off < 5_000, "trusted_at {trusted} vs true {true_time}");
    assert!(trusted <= received);
    // The handset's own clock reading is kept as sent.
    assert_eq!(
        parse_time(&fact["recorded_at"]).timestamp_millis(),
        scan.recorded_at.timestamp_millis()
    );
}

#[tokio::test]
async fn an_honest_clock_gives_no_flags_and_trusted_time_is_never_after_receipt() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let honest = Scan::new(&estate, 1).age_ms(None);
    // Recorded "after" it was sent: a nonsense clock reading is capped at receipt.
    let future = Scan::new(&estate, 2)
        .recorded_at(Utc::now() + Duration::hours(3))
        .age_ms(None);
    app.push_ok(&guard, vec![honest.json(), future.json()])
        .await;

    let manager = app.login_new_device("manager1").await;
    let pulled = app.pull_all(&manager, None).await;
    let h = pulled.fact(honest.id);
    assert_eq!(h["flags"], json!([]), "{h}");
    assert_eq!(h["clock_trust"], "estimated");
    let f = pulled.fact(future.id);
    assert_eq!(f["trusted_at"], f["received_at"], "{f}");
}

#[tokio::test]
async fn an_hlc_far_in_the_future_is_clamped_and_flagged() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let ahead = hlc_at((Utc::now() + Duration::minutes(10)).timestamp_millis(), 3);
    let scan = Scan::new(&estate, 1).hlc(ahead.clone());
    let answer = app.push_ok(&guard, vec![scan.json()]).await;
    assert_eq!(results(&answer, 1)[0]["status"], "accepted", "{answer}");
    let answer_hlc = answer["hlc"].as_str().unwrap().to_owned();
    assert!(
        answer_hlc < ahead,
        "the server's clock was not dragged forward: {answer_hlc} vs {ahead}"
    );

    let fact = manager_view(&app, scan.id).await;
    let flags = fact["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("clock_ahead")), "{fact}");
    let stored = fact["hlc"].as_str().unwrap();
    assert!(is_hlc(stored));
    assert!(stored <= answer_hlc.as_str(), "{stored} vs {answer_hlc}");
    assert!(stored < ahead.as_str());
    assert_eq!(fact["hlc_sent"], ahead);

    // A little ahead (within the allowed drift) is kept as sent.
    let near = hlc_at((Utc::now() + Duration::seconds(20)).timestamp_millis(), 0);
    let ok = Scan::new(&estate, 2).hlc(near.clone());
    let answer = app.push_ok(&guard, vec![ok.json()]).await;
    assert!(
        answer["hlc"].as_str().unwrap() > near.as_str(),
        "the server's clock moves past an accepted HLC"
    );
    let fact = manager_view(&app, ok.id).await;
    assert_eq!(fact["hlc"], near);
    assert!(fact.get("hlc_sent").is_none(), "{fact}");
    assert!(!fact["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("clock_ahead")));
}

// ---------------------------------------------------------------- bad batches

async fn post_raw(
    app: &TestApp,
    s: &Session,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/sync/push"))
        .bearer_auth(&s.access)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    for body in [&b"{\"device_id\": "[..], b"not json", b"", b"{'a': 1}"] {
        let resp = post_raw(&app, &guard, "application/json", body.to_vec()).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "/problems/invalid-json").await;
    }
}

#[tokio::test]
async fn a_valid_batch_followed_by_garbage_is_malformed_json() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    let mut body = serde_json::to_vec(&batch(guard.device_id, vec![scan.json()])).unwrap();
    body.extend_from_slice(b"}garbage");
    let resp = post_raw(&app, &guard, "application/json", body).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "/problems/invalid-json").await;
    let pulled = app.pull_all(&guard, None).await;
    assert!(
        pulled.facts().is_empty(),
        "a body that is not JSON stored a fact: {:#?}",
        pulled.changes
    );
}

#[tokio::test]
async fn missing_or_wrong_envelope_fields_are_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let good = batch(guard.device_id, vec![]);
    let cases: Vec<(&str, Value)> = vec![
        ("device_id", {
            let mut b = good.clone();
            b.as_object_mut().unwrap().remove("device_id");
            b
        }),
        ("changes", {
            let mut b = good.clone();
            b.as_object_mut().unwrap().remove("changes");
            b
        }),
        ("changes", {
            let mut b = good.clone();
            b["changes"] = json!({"kind": "scan"});
            b
        }),
        ("changes", {
            let mut b = good.clone();
            b["changes"] = json!("[]");
            b
        }),
        ("batch_id", {
            let mut b = good.clone();
            b["batch_id"] = json!("batch-1");
            b
        }),
        ("sent_at", {
            let mut b = good.clone();
            b["sent_at"] = json!("yesterday");
            b
        }),
    ];
    for (path, body) in cases {
        let resp = app.push(&guard, &body).await;
        let p = assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
        let errors = p["errors"].as_array().unwrap_or_else(|| panic!("{p}"));
        assert!(
            errors.iter().any(|e| e["path"] == path),
            "expected an error at {path}: {p}"
        );
    }
    // A JSON array or number is readable JSON of the wrong shape.
    for body in [json!([]), json!(7)] {
        let resp = app.push(&guard, &body).await;
        assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let body = serde_json::to_vec(&batch(guard.device_id, vec![])).unwrap();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = post_raw(&app, &guard, ct, body.clone()).await;
        assert_problem(
            resp,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/unsupported-media-type",
        )
        .await;
    }
    let none = app
        .client
        .post(app.url("/v1/sync/push"))
        .bearer_auth(&guard.access)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(
        none,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "/problems/unsupported-media-type",
    )
    .await;
    // With parameters, JSON is JSON.
    let resp = post_raw(&app, &guard, "application/json; charset=utf-8", body).await;
    json_ok(resp).await;
}

#[tokio::test]
async fn more_than_1000_changes_is_a_413_with_the_limits() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let changes: Vec<Value> = (1..=1001).map(|s| Scan::new(&estate, s).json()).collect();
    let body = batch(guard.device_id, changes);
    assert!(serde_json::to_vec(&body).unwrap().len() < 1024 * 1024);
    let resp = app.push(&guard, &body).await;
    let p = assert_problem(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "/problems/batch-too-large",
    )
    .await;
    assert_eq!(p["max_changes"], 1000, "{p}");
    assert_eq!(p["max_bytes"], 1_048_576, "{p}");

    // Nothing of it was stored.
    let pulled = app.pull_all(&guard, None).await;
    assert!(pulled.facts().is_empty());

    // Exactly 1,000 is allowed.
    let changes: Vec<Value> = (1..=1000).map(|s| Scan::new(&estate, s).json()).collect();
    let answer = app.push_ok(&guard, changes).await;
    let r = results(&answer, 1000);
    assert!(r.iter().all(|r| r["status"] == "accepted"));
    assert_eq!(answer["acked_through_seq"], 1000);
}

#[tokio::test]
async fn a_body_over_1_mib_is_a_413_with_the_limits() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let mut scan = Scan::new(&guard.estate(ESTATE_1), 1).json();
    scan["data"]["note"] = json!("x".repeat(1024 * 1024 + 10));
    let body = batch(guard.device_id, vec![scan]);
    let resp = app.push(&guard, &body).await;
    let p = assert_problem(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "/problems/batch-too-large",
    )
    .await;
    assert_eq!(p["max_changes"], 1000, "{p}");
    assert_eq!(p["max_bytes"], 1_048_576, "{p}");
    // The connection and the server are still fine.
    app.push_ok(&guard, vec![Scan::new(&guard.estate(ESTATE_1), 1).json()])
        .await;
}

#[tokio::test]
async fn a_batch_for_another_device_is_a_403() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    let body = batch(Uuid::now_v7(), vec![scan.json()]);
    let resp = app.push(&guard, &body).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/device-mismatch").await;
    // Another signed-in device of the same user is still another device.
    let second = app.login_new_device("guard1").await;
    let body = batch(second.device_id, vec![scan.json()]);
    let resp = app.push(&guard, &body).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/device-mismatch").await;
    let pulled = app.pull_all(&guard, None).await;
    assert!(pulled.facts().is_empty());
}

#[tokio::test]
async fn hazard_events_photos_and_run_events_are_read_for_their_meaning() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let mut changes = Vec::new();
    for (seq, kind) in [(1, "hazard_event"), (2, "photo"), (3, "run_event")] {
        let mut c = Scan::new(&estate, seq).json();
        c["kind"] = json!(kind);
        changes.push(c);
    }
    let answer = app.push_ok(&guard, changes.clone()).await;
    let r = results(&answer, 3);
    // Each kind has a meaning the server reads (issues 3, 4, 7): scan data is none of them.
    for (i, field) in [(0, "hazard_id"), (1, "sha256"), (2, "run_id")] {
        assert_eq!(status(&r[i]), "rejected", "{answer}");
        assert_eq!(r[i]["code"], "missing_field", "{answer}");
        assert!(
            r[i]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    // Quarantined, never stored: nothing to pull, and the handset may purge them.
    assert_eq!(answer["acked_through_seq"], 3, "{answer}");
    let pulled = app.pull_all(&guard, None).await;
    assert!(pulled.facts().is_empty());
}

#[tokio::test]
async fn the_same_fact_twice_in_one_batch_is_stored_once() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let a = Scan::new(&estate, 1);
    let b = Scan::new(&estate, 2);
    let answer = app
        .push_ok(
            &guard,
            vec![a.json(), a.json(), b.json(), b.clone().tag("OTHER").json()],
        )
        .await;
    let r = results(&answer, 4);
    assert_eq!(status(&r[0]), "accepted", "{answer}");
    assert_eq!(status(&r[1]), "duplicate", "{answer}");
    assert_eq!(status(&r[2]), "accepted", "{answer}");
    assert_eq!(status(&r[3]), "rejected", "{answer}");
    assert_eq!(r[3]["code"], "id_conflict");
    assert_eq!(answer["acked_through_seq"], 2);
    let pulled = app.pull_all(&guard, None).await;
    assert_eq!(pulled.facts().len(), 2);
    assert_eq!(pulled.fact(b.id)["data"]["tag"], b.tag);
}

#[tokio::test]
async fn the_same_instant_and_data_in_another_spelling_is_a_duplicate() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    app.push_ok(&guard, vec![scan.json()]).await;

    // recorded_at in +08:00, and data's keys in another order.
    let mut resent = scan.json();
    let local = scan
        .recorded_at
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    resent["recorded_at"] = json!(local);
    let text = serde_json::to_string(&resent["data"]).unwrap();
    let data: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let reversed: serde_json::Map<String, Value> = data.into_iter().rev().collect();
    resent["data"] = Value::Object(reversed);
    let answer = app.push_ok(&guard, vec![resent]).await;
    assert_eq!(results(&answer, 1)[0]["status"], "duplicate", "{answer}");
}

#[tokio::test]
async fn a_new_fact_reusing_a_seq_is_stored_and_flagged() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let first = Scan::new(&estate, 1);
    app.push_ok(&guard, vec![first.json()]).await;
    let reuse = Scan::new(&estate, 1);
    let answer = app.push_ok(&guard, vec![reuse.json()]).await;
    assert_eq!(results(&answer, 1)[0]["status"], "accepted", "{answer}");
    assert_eq!(answer["acked_through_seq"], 1);
    let pulled = app.pull_all(&guard, None).await;
    assert_eq!(pulled.fact(first.id)["flags"], json!([]));
    assert_eq!(pulled.fact(reuse.id)["flags"], json!(["seq_reused"]));
}

#[tokio::test]
async fn batch_ids_are_per_device() {
    let app = TestApp::spawn().await;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let estate = guard1.estate(ESTATE_1);
    let body1 = batch(guard1.device_id, vec![Scan::new(&estate, 1).json()]);
    json_ok(app.push(&guard1, &body1).await).await;
    // Another device that happens to use the same batch id is not a replay.
    let other = Scan::new(&estate, 1);
    let mut body2 = batch(guard2.device_id, vec![other.json()]);
    body2["batch_id"] = body1["batch_id"].clone();
    let answer = json_ok(app.push(&guard2, &body2).await).await;
    let r = results(&answer, 1);
    assert_eq!(r[0]["status"], "accepted", "{answer}");
    assert_eq!(r[0]["id"], other.id.to_string());
    assert!(app.pull_all(&guard2, None).await.has_fact(other.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_of_one_batch_store_it_once_and_agree() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let changes: Vec<Value> = (1..=50).map(|s| Scan::new(&estate, s).json()).collect();
    let body = batch(guard.device_id, changes);
    let sends = (0..6).map(|_| {
        let client = app.client.clone();
        let url = app.url("/v1/sync/push");
        let access = guard.access.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(access)
                .json(&body)
                .send()
                .await
                .unwrap();
            json_ok(resp).await
        })
    });
    let answers: Vec<Value> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("no panic"))
        .collect();
    for a in &answers {
        assert_eq!(
            a["results"], answers[0]["results"],
            "every send gets the first answer"
        );
        assert_eq!(a["acked_through_seq"], 50);
    }
    assert!(results(&answers[0], 50)
        .iter()
        .all(|r| r["status"] == "accepted"));
    assert_eq!(app.pull_all(&guard, None).await.facts().len(), 50);
}

/// Inputs a careless or hostile handset may send: each answered 200 with a result per
/// change, never a 500, and the feed stays readable afterwards.
pub async fn odd_but_valid_json_is_never_a_500(app: &TestApp) {
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);

    let mut nul = Scan::new(&estate, 1).json();
    nul["data"]["note"] = json!("before\u{0}after");
    let mut nul_key = Scan::new(&estate, 2).json();
    nul_key["data"]["a\u{0}b"] = json!(1);
    let mut nul_rejected = Scan::new(&estate, 3).json();
    nul_rejected["kind"] = json!("bad\u{0}kind");
    let mut unicode = Scan::new(&estate, 4).json();
    unicode["data"]["note"] = json!("消防门被楔住 🚪 \u{202e}");
    let mut nested = json!("leaf");
    for _ in 0..100 {
        nested = json!({ "n": nested });
    }
    let mut deep = Scan::new(&estate, 5).json();
    deep["data"]["deep"] = nested;
    let old_clock = Scan::new(&estate, 6)
        .recorded_at(
            chrono::DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        )
        .age_ms(None)
        .hlc("0000000000000-0000");
    let max_seq = Scan::new(&estate, 1 << 53).age_ms(Some(366 * 24 * 3600 * 1000));
    let max_hlc = Scan::new(&estate, 7).hlc("9999999999999-ffff");
    let changes = vec![
        nul,
        nul_key,
        nul_rejected,
        unicode.clone(),
        deep,
        old_clock.json(),
        max_seq.json(),
        max_hlc.json(),
    ];
    let sent_at = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z")
        .unwrap()
        .with_timezone(&Utc);
    let body = batch_sent_at(guard.device_id, sent_at, changes.clone());
    let answer = json_ok(app.push(&guard, &body).await).await;
    let r = results(&answer, changes.len());
    let mut rejected = vec![2];
    for (i, res) in r.iter().enumerate() {
        match i {
            2 => assert_eq!(res["code"], "unknown_kind", "{answer}"),
            // NUL in text may be stored as sent or refused with a code, never a 500.
            0 | 1 if res["status"] == "rejected" => {
                assert!(res["code"].is_string(), "{answer}");
                rejected.push(i);
            }
            _ => assert_eq!(res["status"], "accepted", "change {i}: {answer}"),
        }
    }

    let manager = app.login_new_device("manager1").await;
    let pulled = app.pull_all(&manager, None).await;
    assert_eq!(pulled.facts().len(), changes.len() - rejected.len());
    for (i, c) in changes.iter().enumerate() {
        if rejected.contains(&i) {
            continue;
        }
        let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            pulled.fact(id)["data"],
            c["data"],
            "change {i} kept as sent"
        );
    }
    // Every refused one is in quarantine (exactness of `raw` is checked on its own below).
    let admin = app.login_new_device("admin").await;
    let q = json_ok(app.quarantine(&admin, "").await).await;
    for i in rejected {
        let e = q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["index"] == i && e["batch_id"] == body["batch_id"])
            .unwrap_or_else(|| panic!("change {i} not in quarantine: {q}"));
        assert_eq!(e["change_id"], changes[i]["id"], "change {i}");
        assert_eq!(e["code"], r[i]["code"], "change {i}");
    }
}

#[tokio::test]
async fn odd_but_valid_json_is_never_a_500_on_sqlite() {
    let app = TestApp::spawn().await;
    odd_but_valid_json_is_never_a_500(&app).await;
}

/// The quarantine keeps a refused change exactly as it arrived, even text PostgreSQL's
/// JSONB cannot hold (NUL characters): a reviewer must see what the handset sent.
pub async fn quarantine_keeps_the_raw_change_exactly(app: &TestApp) {
    let guard = app.login_new_device("guard1").await;
    let mut nul = Scan::new(&guard.estate(ESTATE_1), 1).json();
    nul["kind"] = json!("bad\u{0}kind");
    nul["data"]["note"] = json!("a\u{0}b");
    // A literal backslash-u sequence is different text and must stay different.
    let mut literal = Scan::new(&guard.estate(ESTATE_1), 2).json();
    literal["kind"] = json!("bad\\u0000kind");
    let body = batch(guard.device_id, vec![nul.clone(), literal.clone()]);
    let answer = json_ok(app.push(&guard, &body).await).await;
    let r = results(&answer, 2);
    assert!(r.iter().all(|r| r["status"] == "rejected"), "{answer}");

    let admin = app.login_new_device("admin").await;
    let q = json_ok(app.quarantine(&admin, "").await).await;
    for (i, sent) in [(0, &nul), (1, &literal)] {
        let e = q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["index"] == i && e["batch_id"] == body["batch_id"])
            .unwrap_or_else(|| panic!("change {i} not in quarantine: {q}"));
        assert_eq!(&e["raw"], sent, "change {i} is not kept as it arrived");
    }
}

#[tokio::test]
async fn quarantine_keeps_the_raw_change_exactly_on_sqlite() {
    let app = TestApp::spawn().await;
    quarantine_keeps_the_raw_change_exactly(&app).await;
}

// ---------------------------------------------------------------- pushes worked on at once

#[tokio::test]
async fn a_push_waits_for_a_permit_and_then_is_stored() {
    let s = TestApp::spawn_with(|c| c.max_concurrent_pushes = 2).await;
    let (app, state) = (&s.app, &s.state);
    let guard = app.login_new_device("guard1").await;
    let scan = Scan::new(&guard.estate(ESTATE_1), 1);
    let body = batch(guard.device_id, vec![scan.json()]);

    // Every permit taken (as by two pushes under way): the push waits, nothing stored.
    let held = state
        .push_permits
        .clone()
        .acquire_many_owned(2)
        .await
        .expect("the permits");
    let push = app.push(&guard, &body);
    tokio::pin!(push);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), &mut push)
            .await
            .is_err(),
        "the push was answered while no permit was free"
    );
    let pulled = app
        .pull_all(&app.login_new_device("supervisor1").await, None)
        .await;
    assert!(!pulled.has_fact(scan.id), "stored before it had a permit");

    // A permit frees: the push goes on and is stored once.
    drop(held);
    let answer = json_ok(push.await).await;
    assert_eq!(status(&results(&answer, 1)[0]), "accepted", "{answer}");
    assert_eq!(answer["acked_through_seq"], 1);
}

#[tokio::test]
async fn many_handsets_at_once_past_the_limit_are_all_stored() {
    let s = TestApp::spawn_with(|c| c.max_concurrent_pushes = 2).await;
    let app = &s.app;
    let mut sessions = Vec::new();
    for user in [
        "guard1",
        "guard2",
        "engineer1",
        "engineer2",
        "supervisor1",
        "manager1",
    ] {
        sessions.push(app.login_new_device(user).await);
        sessions.push(app.login_new_device(user).await);
    }
    let estate = sessions[0].estate(ESTATE_1);
    let pushes = sessions.iter().map(|h| {
        let changes: Vec<Value> = (1..=20).map(|seq| Scan::new(&estate, seq).json()).collect();
        let body = batch(h.device_id, changes);
        async move { (json_ok(app.push(h, &body).await).await, body) }
    });
    let answers = futures::future::join_all(pushes).await;
    let supervisor = app.login_new_device("supervisor1").await;
    let pulled = app.pull_all(&supervisor, None).await;
    for (answer, body) in &answers {
        assert_eq!(answer["acked_through_seq"], 20, "{answer}");
        for (r, change) in results(answer, 20)
            .iter()
            .zip(body["changes"].as_array().unwrap())
        {
            assert_eq!(status(r), "accepted", "{answer}");
            let id: Uuid = change["id"].as_str().unwrap().parse().unwrap();
            assert!(pulled.has_fact(id), "fact {id} not stored");
        }
    }
    assert_eq!(answers.len(), 12);
}
