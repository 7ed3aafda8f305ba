//! Liveness, readiness, and what unknown paths and methods answer.

use crate::helpers::{assert_problem, hlc_header, json_ok, TestApp};
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    let body = json_ok(resp).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_ready_with_the_backend() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = json_ok(resp).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["backend"], "sqlite");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/v1/sync/pulls", "/v2/sync/pull"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = TestApp::spawn().await;
    let cases = [
        app.client.delete(app.url("/healthz")),
        app.client.get(app.url("/v1/sync/push")),
        app.client.post(app.url("/v1/sync/pull")),
        app.client.get(app.url("/v1/auth/login")),
    ];
    for req in cases {
        let resp = req.send().await.unwrap();
        assert_problem(
            resp,
            StatusCode::METHOD_NOT_ALLOWED,
            "/problems/method-not-allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn every_answer_carries_an_increasing_hlc() {
    let app = TestApp::spawn().await;
    let mut last = String::new();
    for path in ["/healthz", "/readyz", "/nope", "/v1/me", "/healthz"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let hlc = hlc_header(resp.headers());
        assert!(hlc > last, "{hlc} after {last} ({path})");
        last = hlc;
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = resp.headers().get("x-request-id").expect("x-request-id");
    assert!(!id.is_empty());
    // A caller's own id is kept.
    let resp = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "handset-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "handset-42");
}
