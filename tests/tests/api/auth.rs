//! Sign-in, refresh-token rotation and reuse, logout, and what bad tokens answer.

use crate::helpers::{
    assert_problem, hlc_header, is_hlc, json_ok, login_body, Session, TestApp, ESTATE_1, ESTATE_2,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn login_returns_tokens_user_estates_roles_and_hlc() {
    let app = TestApp::spawn().await;
    let device = Uuid::now_v7();
    let resp = app.login_raw(&login_body("guard1", "demo", device)).await;
    let header_hlc = hlc_header(resp.headers());
    let body = json_ok(resp).await;

    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 20));
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() > 20));
    assert_ne!(body["access_token"], body["refresh_token"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], "guard1");
    assert!(Uuid::parse_str(body["user"]["id"].as_str().unwrap()).is_ok());
    assert!(body["user"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(body["user"]["roles"], json!(["guard"]));
    let estates = body["estates"].as_array().unwrap();
    assert_eq!(estates.len(), 1, "{body}");
    assert!(estates[0]["name"].as_str().unwrap().contains(ESTATE_1));
    assert_eq!(estates[0]["roles"], json!(["guard"]));
    assert_eq!(estates[0]["timezone"], "Asia/Shanghai");
    let hlc = body["hlc"].as_str().unwrap();
    assert!(is_hlc(hlc), "{hlc}");
    assert!(
        header_hlc.as_str() >= hlc,
        "header {header_hlc} vs body {hlc}"
    );

    // The admin is admin of both estates.
    let admin = app.login_new_device("admin").await;
    assert_eq!(admin.estates.len(), 2);
    for e in &admin.estates {
        assert_eq!(e.roles, vec!["admin".to_string()]);
    }
    assert_ne!(admin.estate(ESTATE_1), admin.estate(ESTATE_2));
    let manager = app.login_new_device("manager1").await;
    assert_eq!(manager.estates.len(), 1);
    assert_eq!(manager.estates[0].roles, vec!["manager".to_string()]);
    assert_eq!(manager.estate(ESTATE_1), admin.estate(ESTATE_1));
    let guard3 = app.login_new_device("guard3").await;
    assert_eq!(guard3.estates.len(), 1);
    assert_eq!(guard3.estate(ESTATE_2), admin.estate(ESTATE_2));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_401() {
    let app = TestApp::spawn().await;
    let wrong = app
        .login_raw(&login_body("guard1", "Demo", Uuid::now_v7()))
        .await;
    let a = assert_problem(
        wrong,
        StatusCode::UNAUTHORIZED,
        "/problems/invalid-credentials",
    )
    .await;
    let unknown = app
        .login_raw(&login_body("nobody", "demo", Uuid::now_v7()))
        .await;
    let b = assert_problem(
        unknown,
        StatusCode::UNAUTHORIZED,
        "/problems/invalid-credentials",
    )
    .await;
    assert_eq!(a, b, "the answers must not tell which usernames exist");
    assert!(a.get("access_token").is_none());
}

#[tokio::test]
async fn login_with_missing_fields_is_a_422_naming_them() {
    let app = TestApp::spawn().await;
    let resp = app
        .login_raw(&json!({"username": "guard1", "password": "demo"}))
        .await;
    let body = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_eq!(body["errors"][0]["path"], "device", "{body}");
    let resp = app
        .login_raw(&json!({"username": "", "password": "demo", "device": {"id": Uuid::now_v7()}}))
        .await;
    let body = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_eq!(body["errors"][0]["path"], "username", "{body}");
}

#[tokio::test]
async fn me_describes_the_caller_and_its_device() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("supervisor1").await;
    let resp = app.me(&s.access).await;
    let body = json_ok(resp).await;
    assert_eq!(body["user"]["username"], "supervisor1");
    assert_eq!(body["user"]["id"], s.user_id.as_str());
    assert_eq!(body["user"]["roles"], json!(["supervisor"]));
    assert_eq!(body["device_id"], s.device_id.to_string());
    assert_eq!(body["estates"].as_array().unwrap().len(), 1);
    assert_eq!(body["estates"][0]["id"], s.estate(ESTATE_1));
    assert_eq!(body["estates"][0]["roles"], json!(["supervisor"]));
    assert!(is_hlc(body["hlc"].as_str().unwrap()));
}

async fn refreshed(app: &TestApp, token: &str, device: Uuid) -> Session {
    let body = json_ok(app.refresh(token).await).await;
    Session::from_token_response(body, device)
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_keeps_the_session() {
    let app = TestApp::spawn().await;
    let s0 = app.login_new_device("guard1").await;
    let s1 = refreshed(&app, &s0.refresh, s0.device_id).await;
    assert_ne!(s1.refresh, s0.refresh, "the refresh token rotates");
    assert_eq!(s1.user_id, s0.user_id);
    assert_eq!(s1.estates, s0.estates);
    // Both access tokens belong to the same live session.
    for access in [&s0.access, &s1.access] {
        let me = json_ok(app.me(access).await).await;
        assert_eq!(me["device_id"], s0.device_id.to_string());
    }
    // The new refresh token works (once) in turn.
    let s2 = refreshed(&app, &s1.refresh, s0.device_id).await;
    assert_ne!(s2.refresh, s1.refresh);
    json_ok(app.me(&s2.access).await).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_session() {
    let app = TestApp::spawn().await;
    let s0 = app.login_new_device("guard1").await;
    let s1 = refreshed(&app, &s0.refresh, s0.device_id).await;

    let reuse = app.refresh(&s0.refresh).await;
    assert_problem(
        reuse,
        StatusCode::UNAUTHORIZED,
        "/problems/refresh-token-reused",
    )
    .await;

    // The whole session is gone: the newest refresh token and every access token.
    let newest = app.refresh(&s1.refresh).await;
    assert_eq!(newest.status(), StatusCode::UNAUTHORIZED);
    assert_problem(newest, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    for access in [&s0.access, &s1.access] {
        assert_problem(
            app.me(access).await,
            StatusCode::UNAUTHORIZED,
            "/problems/invalid-token",
        )
        .await;
    }

    // Another device of the same user is not touched.
    let other = app.login_new_device("guard1").await;
    json_ok(app.me(&other.access).await).await;
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("engineer1").await;
    let other = app.login_new_device("engineer1").await;
    let resp = app.logout(&s.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    hlc_header(resp.headers());

    assert_problem(
        app.me(&s.access).await,
        StatusCode::UNAUTHORIZED,
        "/problems/invalid-token",
    )
    .await;
    let refresh = app.refresh(&s.refresh).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_problem(refresh, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    // Logging out a second time with the dead token is refused too.
    assert_eq!(
        app.logout(&s.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Only that device's session ended.
    json_ok(app.me(&other.access).await).await;
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    for token in ["", "not-a-token", &"x".repeat(500)] {
        assert_problem(
            app.refresh(token).await,
            StatusCode::UNAUTHORIZED,
            "/problems/invalid-token",
        )
        .await;
    }
}

/// Flips one character of the JWT's payload (the claims), keeping it base64url.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let mut payload: Vec<char> = parts[1].chars().collect();
    let i = payload.len() / 2;
    payload[i] = if payload[i] == 'A' { 'B' } else { 'A' };
    parts[1] = payload.into_iter().collect();
    parts.join(".")
}

#[tokio::test]
async fn tampered_garbage_and_missing_tokens_are_401_problems() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("guard2").await;
    json_ok(app.me(&s.access).await).await;

    let mut sig_flipped = s.access.clone();
    let last = sig_flipped.pop().unwrap();
    sig_flipped.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        tamper(&s.access),
        sig_flipped,
        "garbage".into(),
        "a.b.c".into(),
    ] {
        let resp = app.me(&bad).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    }

    let missing = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_problem(missing, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
    let basic = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic Z3VhcmQxOmRlbW8=")
        .send()
        .await
        .unwrap();
    assert_problem(basic, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;

    // A push and a pull without a token are refused the same way.
    let push = app
        .client
        .post(app.url("/v1/sync/push"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(push, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
    let pull = app
        .client
        .get(app.url("/v1/sync/pull"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_problem(pull, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    // Two servers, two generated secrets: one's tokens mean nothing to the other.
    let a = TestApp::spawn().await;
    let b = TestApp::spawn().await;
    let s = a.login_new_device("guard1").await;
    let resp = b.me(&s.access).await;
    let body: Value =
        assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    assert!(body["detail"].is_string());
}

/// Mints a token with the server's own key (read from the data directory, as an operator
/// could) so only the claims or header are wrong.
fn forge(app: &TestApp, real: &str, header: jsonwebtoken::Header, claims: &Value) -> String {
    let secret = std::fs::read_to_string(app.data_dir.join("jwt-secret")).expect("jwt-secret");
    let key = hex::decode(secret.trim()).expect("a hex secret");
    let mut header = header;
    header.kid = jsonwebtoken::decode_header(real).unwrap().kid;
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap()
}

fn real_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn tokens_signed_with_the_right_key_but_wrong_claims_are_refused() {
    use jsonwebtoken::{Algorithm, Header};
    let app = TestApp::spawn().await;
    let s = app.login_new_device("guard1").await;
    let claims = real_claims(&s.access);
    let now = chrono::Utc::now().timestamp();

    // The forgery itself works when nothing is wrong (or the checks below prove nothing).
    let same = forge(&app, &s.access, Header::new(Algorithm::HS256), &claims);
    json_ok(app.me(&same).await).await;

    let mut cases: Vec<(&str, String)> = Vec::new();
    let mut c = claims.clone();
    c["iat"] = json!(now - 7200);
    c["exp"] = json!(now - 3600);
    cases.push((
        "expired",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    let mut c = claims.clone();
    c["aud"] = json!("another-api");
    cases.push((
        "audience",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    let mut c = claims.clone();
    c["iss"] = json!("someone-else");
    cases.push((
        "issuer",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove("exp");
    cases.push((
        "no exp",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    cases.push((
        "HS512",
        forge(&app, &s.access, Header::new(Algorithm::HS512), &claims),
    ));
    let mut c = claims.clone();
    c["sid"] = json!(Uuid::now_v7());
    cases.push((
        "unknown session",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    let mut c = claims.clone();
    c["did"] = json!(Uuid::now_v7());
    cases.push((
        "other device",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    let mut c = claims.clone();
    c["sub"] = json!(Uuid::now_v7());
    cases.push((
        "other user",
        forge(&app, &s.access, Header::new(Algorithm::HS256), &c),
    ));
    // alg "none" with the real claims and no signature.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        s.access.split('.').nth(1).unwrap()
    );
    cases.push(("alg none", none));

    for (what, token) in cases {
        let resp = app.me(&token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Sign-in and admin fields a hostile client may send: refused as a 4xx problem, never a
/// 500 (PostgreSQL cannot store NUL characters in text).
pub async fn hostile_text_in_sign_in_and_admin_is_never_a_500(app: &TestApp) {
    let device = Uuid::now_v7();
    let cases = [
        json!({"username": "guard1\u{0}", "password": "demo", "device": {"id": device}}),
        json!({"username": "guard1", "password": "demo\u{0}", "device": {"id": device}}),
        json!({"username": "guard1", "password": "demo", "device": {"id": device, "name": "a\u{0}b"}}),
        json!({"username": "guard1", "password": "demo", "device": {"id": "not-a-uuid"}}),
        json!({"username": "x".repeat(10_000), "password": "demo", "device": {"id": device}}),
    ];
    for body in cases {
        let resp = app.login_raw(&body).await;
        let status = resp.status();
        assert!(
            status.is_client_error(),
            "{body} answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let admin = app.login_new_device("admin").await;
    for body in [
        json!({"name": "Evil\u{0}Estate"}),
        json!({"name": "Ok", "timezone": "Asia/Shanghai\u{0}"}),
    ] {
        let resp = app.create_estate(&admin, &body).await;
        let status = resp.status();
        assert!(
            status.is_client_error(),
            "{body} answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    // The server is fine afterwards.
    json_ok(app.me(&admin.access).await).await;
}

#[tokio::test]
async fn hostile_text_in_sign_in_and_admin_is_never_a_500_on_sqlite() {
    let app = TestApp::spawn().await;
    hostile_text_in_sign_in_and_admin_is_never_a_500(&app).await;
}
