//! Who sees what: guards and engineers their own facts, overseers every fact of their
//! estates, nobody another estate's data; another estate's ids answer 404.

use crate::helpers::{assert_problem, parse_time, results, Scan, TestApp, ESTATE_1, ESTATE_2};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// Pushes one scan for each of guard1, guard2, engineer1 (estate 1) and guard3 (estate 2).
struct World {
    app: TestApp,
    estate1: String,
    estate2: String,
    guard1: Uuid,
    guard2: Uuid,
    engineer1: Uuid,
    guard3: Uuid,
    users: std::collections::HashMap<&'static str, String>,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    let mut users = std::collections::HashMap::new();
    let (mut estate1, mut estate2) = (String::new(), String::new());
    for name in ["guard1", "guard2", "engineer1", "guard3"] {
        let s = app.login_new_device(name).await;
        let estate = if name == "guard3" {
            estate2 = s.estate(ESTATE_2);
            estate2.clone()
        } else {
            estate1 = s.estate(ESTATE_1);
            estate1.clone()
        };
        let scan = Scan::new(&estate, 1);
        let answer = app.push_ok(&s, vec![scan.json()]).await;
        assert_eq!(results(&answer, 1)[0]["status"], "accepted", "{answer}");
        ids.push(scan.id);
        users.insert(name, s.user_id.clone());
    }
    World {
        app,
        estate1,
        estate2,
        guard1: ids[0],
        guard2: ids[1],
        engineer1: ids[2],
        guard3: ids[3],
        users,
    }
}

#[tokio::test]
async fn a_guard_sees_its_estate_and_its_own_facts_only() {
    let w = world().await;
    let guard1 = w.app.login_new_device("guard1").await;
    let pulled = w.app.pull_all(&guard1, None).await;
    assert_eq!(pulled.estates("put"), vec![w.estate1.clone()]);
    assert!(pulled.has_fact(w.guard1), "its own fact, from any device");
    assert!(!pulled.has_fact(w.guard2), "not another guard's");
    assert!(!pulled.has_fact(w.engineer1));
    assert!(!pulled.has_fact(w.guard3));
    assert_eq!(pulled.facts().len(), 1);

    let engineer = w.app.login_new_device("engineer1").await;
    let pulled = w.app.pull_all(&engineer, None).await;
    assert_eq!(pulled.estates("put"), vec![w.estate1.clone()]);
    let ids: Vec<&Value> = pulled.facts().iter().map(|f| &f["id"]).collect();
    assert_eq!(ids, [&json!(w.engineer1.to_string())]);
}

#[tokio::test]
async fn overseers_see_every_fact_of_their_estate_with_annotations() {
    let w = world().await;
    for who in ["manager1", "supervisor1"] {
        let s = w.app.login_new_device(who).await;
        let pulled = w.app.pull_all(&s, None).await;
        assert_eq!(pulled.estates("put"), vec![w.estate1.clone()], "{who}");
        assert_eq!(pulled.facts().len(), 3, "{who}: {:#?}", pulled.changes);
        for (id, user) in [
            (w.guard1, "guard1"),
            (w.guard2, "guard2"),
            (w.engineer1, "engineer1"),
        ] {
            let f = pulled.fact(id);
            assert_eq!(f["user_id"], w.users[user], "{who} sees who pushed it");
            assert!(
                Uuid::parse_str(f["device_id"].as_str().unwrap()).is_ok(),
                "{f}"
            );
            let received = parse_time(&f["received_at"]);
            let trusted = parse_time(&f["trusted_at"]);
            assert!(trusted <= received, "{f}");
            assert_eq!(f["clock_trust"], "verified", "{f}");
            assert!(f["flags"].is_array(), "{f}");
            assert_eq!(f["estate_id"], w.estate1);
        }
        assert!(!pulled.has_fact(w.guard3), "{who} never sees estate 2");
    }
    // The admin of both estates sees both.
    let admin = w.app.login_new_device("admin").await;
    let pulled = w.app.pull_all(&admin, None).await;
    let mut estates = pulled.estates("put");
    estates.sort();
    let mut expected = vec![w.estate1.clone(), w.estate2.clone()];
    expected.sort();
    assert_eq!(estates, expected);
    assert_eq!(pulled.facts().len(), 4);
}

#[tokio::test]
async fn another_estates_data_never_appears() {
    let w = world().await;
    let guard3 = w.app.login_new_device("guard3").await;
    let pulled = w.app.pull_all(&guard3, None).await;
    assert_eq!(pulled.estates("put"), vec![w.estate2.clone()]);
    let ids: Vec<&Value> = pulled.facts().iter().map(|f| &f["id"]).collect();
    assert_eq!(ids, [&json!(w.guard3.to_string())]);
    let text = serde_json::to_string(&pulled.changes).unwrap();
    assert!(!text.contains(&w.estate1), "estate 1's id leaked: {text}");

    let manager = w.app.login_new_device("manager1").await;
    let text = serde_json::to_string(&w.app.pull_all(&manager, None).await.changes).unwrap();
    assert!(!text.contains(&w.estate2), "estate 2's id leaked: {text}");
    assert!(!text.contains(&w.guard3.to_string()));
}

#[tokio::test]
async fn pushing_into_an_estate_one_does_not_belong_to_is_rejected() {
    let w = world().await;
    let guard3 = w.app.login_new_device("guard3").await;
    let changes = vec![
        Scan::new(&w.estate1, 2).json(),
        Scan::new(&Uuid::now_v7().to_string(), 3).json(),
        Scan::new("estate-one", 4).json(),
        Scan::new(&w.estate2, 5).json(),
    ];
    let answer = w.app.push_ok(&guard3, changes).await;
    let r = results(&answer, 4);
    for res in &r[..3] {
        assert_eq!(res["status"], "rejected", "{answer}");
        assert_eq!(res["code"], "unknown_estate", "{answer}");
    }
    assert_eq!(r[3]["status"], "accepted");

    let manager = w.app.login_new_device("manager1").await;
    let pulled = w.app.pull_all(&manager, None).await;
    assert_eq!(pulled.facts().len(), 3, "nothing new in estate 1");
}

#[tokio::test]
async fn admin_endpoints_answer_404_for_another_estates_id() {
    let w = world().await;
    let manager = w.app.login_new_device("manager1").await;
    let guard3 = w.app.login_new_device("guard3").await;
    let admin = w.app.login_new_device("admin").await;

    // Not a member: 404, whether the estate exists or not.
    for id in [
        w.estate2.clone(),
        Uuid::now_v7().to_string(),
        "not-an-id".into(),
    ] {
        let resp = w.app.retire_estate(&manager, &id).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
    let resp = w
        .app
        .quarantine(&guard3, &format!("?estate_id={}", w.estate1))
        .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    // Even the admin gets 404 for an estate that is not one of theirs.
    let resp = w
        .app
        .retire_estate(&admin, &Uuid::now_v7().to_string())
        .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;

    // A member without the role: 403 saying what is missing.
    let resp = w.app.retire_estate(&manager, &w.estate1).await;
    let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    assert!(
        p["missing"].as_str().is_some_and(|m| m.contains("admin")),
        "{p}"
    );
    // And nothing was retired.
    let pulled = w.app.pull_all(&manager, None).await;
    assert_eq!(pulled.estates("put"), vec![w.estate1.clone()]);
    assert!(pulled.estates("delete").is_empty());
}

#[tokio::test]
async fn only_admins_may_read_the_quarantine_or_create_estates() {
    let app = TestApp::spawn().await;
    for who in ["guard1", "manager1", "supervisor1", "guard3"] {
        let s = app.login_new_device(who).await;
        let resp = app.quarantine(&s, "").await;
        let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert!(
            p["missing"].as_str().is_some_and(|m| m.contains("admin")),
            "{p}"
        );
        let resp = app.create_estate(&s, &json!({"name": "Mine now"})).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    }
    let manager = app.login_new_device("manager1").await;
    let resp = app
        .quarantine(
            &manager,
            &format!("?estate_id={}", manager.estate(ESTATE_1)),
        )
        .await;
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
}
