//! The web console's sign-in, session cookie, CSRF protection and pages, as a browser
//! meets them (cookies kept by hand, redirects not followed); device revocation and the
//! member list it uses; the trend chart against the coverage API it draws.

use crate::helpers::{assert_problem, json_ok, TestApp, ESTATE_1};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A cookie-keeping client that does not follow redirects.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The raw `Set-Cookie` lines of the last response.
    last_set: Vec<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            last_set: vec![],
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        self.last_set = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &self.last_set {
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    /// The `Set-Cookie` line of the last response for `name`.
    fn set_line(&self, name: &str) -> Option<&String> {
        self.last_set
            .iter()
            .find(|l| l.starts_with(&format!("{name}=")))
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Response {
        let resp = req
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(resp.headers());
        resp
    }

    async fn get(&mut self, path: &str) -> Response {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn post_json(&mut self, path: &str, body: &Value, csrf: Option<&str>) -> Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        self.send(req).await
    }

    /// The login page's hidden form token.
    async fn login_form_token(&mut self) -> String {
        let resp = self.get("/console/login").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.unwrap();
        let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    }

    async fn sign_in(&mut self, username: &str, next: &str) -> Response {
        let token = self.login_form_token().await;
        self.post_form(
            "/console/login",
            &[
                ("username", username),
                ("password", "demo"),
                ("csrf", &token),
                ("next", next),
            ],
        )
        .await
    }

    fn csrf(&self) -> String {
        self.cookies
            .get("ps_csrf")
            .cloned()
            .expect("a ps_csrf cookie")
    }
}

fn location(resp: &Response) -> String {
    resp.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn signing_in_sets_hardened_cookies_that_work_on_the_api() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let token = b.login_form_token().await;
    let login_cookie = b
        .set_line("ps_login")
        .expect("the form token cookie")
        .clone();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"));
    assert!(!login_cookie.contains("Secure"), "plain HTTP: no Secure");

    let resp = b
        .post_form(
            "/console/login",
            &[
                ("username", "manager1"),
                ("password", "demo"),
                ("csrf", &token),
                ("next", "/console/coverage?date=2026-12-01"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/console/coverage?date=2026-12-01");
    let session = b.set_line("ps_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    let csrf = b.set_line("ps_csrf").expect("a csrf cookie");
    assert!(!csrf.contains("HttpOnly"), "the page must read it: {csrf}");

    // The cookie is the caller on the whole API.
    let me = json_ok(b.get("/v1/me").await).await;
    assert_eq!(me["user"]["username"], "manager1");
    let shell = b.get("/console/coverage").await;
    assert_eq!(shell.status(), StatusCode::OK);
    assert_eq!(shell.headers()["content-type"], "text/html; charset=utf-8");
    let html = shell.text().await.unwrap();
    assert!(html.contains("/console/assets/pages/coverage.js"));
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{}\"", b.csrf())),
        "the sign-out form carries the token"
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_load_balancer() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let req = b
        .client
        .get(format!("{}/console/login", b.base))
        .header("x-forwarded-proto", "https");
    b.send(req).await;
    assert!(b.set_line("ps_login").unwrap().contains("Secure"));
}

#[tokio::test]
async fn the_sign_in_form_needs_its_own_token() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    // No form token cookie at all (a form posted from another site).
    let resp = b
        .post_form(
            "/console/login",
            &[
                ("username", "manager1"),
                ("password", "demo"),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(b.set_line("ps_session").is_none());
    // A cookie, but not the matching field.
    b.login_form_token().await;
    let resp = b
        .post_form(
            "/console/login",
            &[
                ("username", "manager1"),
                ("password", "demo"),
                ("csrf", "not-the-token"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(b.set_line("ps_session").is_none());
    assert!(resp.text().await.unwrap().contains("login-error"));
    // A wrong password re-renders the form with 401.
    let token = b.login_form_token().await;
    let resp = b
        .post_form(
            "/console/login",
            &[
                ("username", "manager1"),
                ("password", "nope"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(b.set_line("ps_session").is_none());
    // Garbage is refused as a client error (no token in it), never a 500.
    let req = b
        .client
        .post(format!("{}/console/login", b.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'%', b'%']);
    assert_eq!(b.send(req).await.status(), StatusCode::FORBIDDEN);
    let big = "a".repeat(20_000);
    let resp = b.post_form("/console/login", &[("username", &big)]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "an oversized form");
}

#[tokio::test]
async fn a_request_that_changes_something_needs_the_csrf_header() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.sign_in("manager1", "/console/overview").await;
    let estate = json_ok(b.get("/v1/me").await).await["estates"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "name": "Gatehouse", "code": "Z-GATE" });
    let path = format!("/v1/estates/{estate}/zones");
    for csrf in [None, Some("wrong")] {
        let resp = b.post_json(&path, &body, csrf).await;
        let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert!(p["detail"].as_str().unwrap().contains("CSRF"), "{p}");
    }
    let csrf = b.csrf();
    let resp = b.post_json(&path, &body, Some(&csrf)).await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    // A Bearer token needs no CSRF token: no browser sends it on its own.
    let manager = app.login_new_device("manager1").await;
    let resp = app
        .client
        .post(app.url(&path))
        .bearer_auth(&manager.access)
        .json(&json!({ "name": "Boiler house", "code": "Z-BOIL" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_cookie_and_the_bearer_token_are_not_interchangeable() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.sign_in("manager1", "/console/overview").await;
    let cookie = b.cookies["ps_session"].clone();
    let resp = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&cookie)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    let manager = app.login_new_device("manager1").await;
    let resp = app
        .client
        .get(app.url("/v1/me"))
        .header(COOKIE, format!("ps_session={}", manager.access))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
}

#[tokio::test]
async fn pages_need_a_session_and_a_console_role() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let resp = b.get("/console/coverage?estate=x").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        "/console/login?next=%2Fconsole%2Fcoverage%3Festate%3Dx"
    );
    // A guard's password is right, but the console is not for guards: no session.
    let resp = b.sign_in("guard1", "/console/overview").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(b.set_line("ps_session").is_none());
    assert!(resp.text().await.unwrap().contains("login-error"));
    let resp = b.get("/console/hazards").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // Nor engineers; supervisors and managers are let in.
    let resp = b.sign_in("engineer1", "/console/overview").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Refused sign-ins record nothing: no browser device appears under their names.
    let manager = app.login_new_device("manager1").await;
    let estate = manager.estate(ESTATE_1);
    let list = json_ok(
        app.client
            .get(app.url(&format!("/v1/estates/{estate}/devices")))
            .bearer_auth(&manager.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["platform"] == "web"),
        "{list}"
    );
    let resp = b.sign_in("supervisor1", "/console/overview").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for page in ["overview", "coverage", "missed", "hazards", "devices"] {
        let resp = b.get(&format!("/console/{page}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
    }
    let ticket = b
        .get(&format!("/console/hazards/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(ticket.status(), StatusCode::OK);
    assert!(ticket.text().await.unwrap().contains("pages/hazard.js"));
    for missing in [
        "/console/nope",
        "/console/hazards/not-a-uuid",
        "/console/login.html",
    ] {
        assert_eq!(
            b.get(missing).await.status(),
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
    let resp = b.get("/console/").await;
    assert_eq!(location(&resp), "/console/overview");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_needs_the_token() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.sign_in("manager1", "/console/overview").await;
    let resp = b.post_form("/console/logout", &[("csrf", "wrong")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        b.get("/v1/me").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    let old = b.cookies["ps_session"].clone();
    let csrf = b.csrf();
    let resp = b.post_form("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/console/login");
    assert!(
        !b.cookies.contains_key("ps_session"),
        "the cookie is cleared"
    );
    // The old cookie, replayed, no longer works: the session itself has ended.
    let resp = app
        .client
        .get(app.url("/v1/me"))
        .header(COOKIE, format!("ps_session={old}"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    assert_eq!(
        b.get("/console/overview").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn assets_are_served_with_an_etag_and_no_escape() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let resp = b.get("/console/assets/core.js").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("export async function api"));
    let req = b
        .client
        .get(format!("{}/console/assets/core.js", b.base))
        .header("if-none-match", &etag);
    assert_eq!(b.send(req).await.status(), StatusCode::NOT_MODIFIED);
    for bad in [
        "/console/assets/../Cargo.toml",
        "/console/assets/%2e%2e/Cargo.toml",
        "/console/assets/shell.html",
        "/console/assets/nope.js",
    ] {
        assert_eq!(b.get(bad).await.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn a_manager_revokes_a_lost_handset() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let manager = app.login_new_device("manager1").await;
    let supervisor = app.login_new_device("supervisor1").await;
    let other_estate_guard = app.login_new_device("guard3").await;
    let path = format!("/v1/devices/{}/revoke", guard.device_id);
    let post = |token: String, path: String| {
        let c = app.client.clone();
        let url = app.url(&path);
        async move { c.post(url).bearer_auth(token).send().await.unwrap() }
    };
    // Supervisors see devices but do not revoke them; outsiders are told nothing.
    assert_problem(
        post(supervisor.access.clone(), path.clone()).await,
        StatusCode::FORBIDDEN,
        "/problems/forbidden",
    )
    .await;
    assert_problem(
        post(other_estate_guard.access.clone(), path.clone()).await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;
    assert_problem(
        post(
            manager.access.clone(),
            format!("/v1/devices/{}/revoke", uuid::Uuid::now_v7()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;
    assert_eq!(app.me(&guard.access).await.status(), StatusCode::OK);

    let device = json_ok(post(manager.access.clone(), path.clone()).await).await;
    assert_eq!(device["id"], guard.device_id.to_string());
    assert_eq!(device["revoked"], true);
    // Its token stops at once, its refresh token is dead, it cannot sign in again.
    assert_eq!(
        app.me(&guard.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&guard.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .login_raw(&crate::helpers::login_body(
            "guard1",
            "demo",
            guard.device_id,
        ))
        .await;
    assert_problem(again, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    // The list says so; revoking twice is fine.
    let estate = manager.estate(ESTATE_1);
    let list = json_ok(
        app.client
            .get(app.url(&format!("/v1/estates/{estate}/devices")))
            .bearer_auth(&manager.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let row = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == guard.device_id.to_string())
        .unwrap()
        .clone();
    assert_eq!(row["revoked"], true);
    assert_eq!(
        post(manager.access.clone(), path).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn members_list_who_can_be_assigned() {
    let app = TestApp::spawn().await;
    let manager = app.login_new_device("manager1").await;
    let guard = app.login_new_device("guard1").await;
    let estate = manager.estate(ESTATE_1);
    let path = app.url(&format!("/v1/estates/{estate}/members"));
    let list = json_ok(
        app.client
            .get(&path)
            .bearer_auth(&manager.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let engineers: Vec<&str> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["roles"].as_array().unwrap().contains(&json!("engineer")))
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert!(engineers.contains(&"engineer1") && engineers.contains(&"engineer2"));
    assert!(
        !list["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "guard3"),
        "another estate's guard is not listed"
    );
    let resp = app
        .client
        .get(&path)
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
}

/// Each point of the trend chart is what `GET /coverage` answers for that week.
#[tokio::test]
async fn the_trend_chart_draws_the_coverage_api() {
    let s = TestApp::spawn_full_demo().await;
    let app = &s.app;
    let mut b = Browser::new(app);
    b.sign_in("manager1", "/console/overview").await;
    let me = json_ok(b.get("/v1/me").await).await;
    let estate = me["estates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str().unwrap().contains(ESTATE_1))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = b
        .get(&format!(
            "/console/charts/coverage-trend.svg?estate={estate}&weeks=3&lang=en"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "image/svg+xml; charset=utf-8"
    );
    let svg = resp.text().await.unwrap();
    // The weeks: Monday to Monday in the estate's zone, the current one so far.
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    use chrono::Datelike;
    let monday = today - chrono::Duration::days(today.weekday().num_days_from_monday() as i64);
    let mut drawn = 0;
    for w in 0..3i64 {
        let start = monday - chrono::Duration::weeks(w);
        let mut q = format!("from={start}");
        if w > 0 {
            q.push_str(&format!("&to={}", start + chrono::Duration::weeks(1)));
        }
        let report = json_ok(b.get(&format!("/v1/estates/{estate}/coverage?{q}")).await).await;
        let label = start.format("%m-%d").to_string();
        for (key, name) in [
            ("coverage", "coverage"),
            ("strict_coverage", "on time (strict)"),
            ("verified_coverage", "verified"),
        ] {
            let title = format!("<title>{label} {name}: ");
            match report["totals"][key].as_f64() {
                Some(v) => {
                    drawn += 1;
                    assert!(
                        svg.contains(&format!("{title}{:.1}%</title>", v * 100.0)),
                        "{label} {key} = {v} in the chart"
                    );
                }
                None => assert!(!svg.contains(&title), "no point for {label} {key}"),
            }
        }
    }
    assert!(drawn >= 3, "the demo week has coverage to draw");
    // Another estate's id is not found; a guard has no console session to ask with.
    let resp = b
        .get(&format!(
            "/console/charts/coverage-trend.svg?estate={}",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// `bom=1` on a CSV export puts the UTF-8 byte order mark first (Excel then reads Chinese
/// as UTF-8); without it the bytes are as before.
#[tokio::test]
async fn csv_exports_carry_a_byte_order_mark_when_asked() {
    let app = TestApp::spawn().await;
    let manager = app.login_new_device("manager1").await;
    let estate = manager.estate(ESTATE_1);
    let get = |path: String| {
        let c = app.client.clone();
        let url = app.url(&path);
        let token = manager.access.clone();
        async move { c.get(url).bearer_auth(token).send().await.unwrap() }
    };
    for path in [
        format!("/v1/estates/{estate}/slots.csv?status=all"),
        format!("/v1/hazards.csv?estate_id={estate}"),
    ] {
        let plain = get(path.clone()).await;
        assert_eq!(plain.status(), StatusCode::OK);
        let plain = plain.bytes().await.unwrap();
        let with = get(format!("{path}&bom=1")).await;
        assert_eq!(with.status(), StatusCode::OK);
        assert!(with.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let with = with.bytes().await.unwrap();
        assert!(!plain.starts_with(b"\xEF\xBB\xBF"), "{path}");
        assert_eq!(&with[..3], b"\xEF\xBB\xBF", "{path}");
        assert_eq!(
            &with[3..],
            &plain[..],
            "{path}: the same rows after the mark"
        );
    }
    // JSON answers are untouched.
    let me = app
        .client
        .get(app.url("/v1/me?bom=1"))
        .bearer_auth(&manager.access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.bytes().await.unwrap()[0], b'{');
}

/// A `next` that is not a plain console path is ignored, never echoed into `Location`.
#[tokio::test]
async fn the_next_page_cannot_inject_headers() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    for next in [
        "/console/x\r\nSet-Cookie: evil=1",
        "https://evil.example/",
        "/console/a\u{7f}",
    ] {
        let token = b.login_form_token().await;
        let resp = b
            .post_form(
                "/console/login",
                &[
                    ("username", "manager1"),
                    ("password", "demo"),
                    ("csrf", &token),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&resp), "/console/overview", "{next:?}");
        assert!(!b.cookies.contains_key("evil"));
    }
    // The same on the sign-in page's own link.
    let resp = b.get("/console/login?next=%2Fconsole%2Fx%0D%0AX:1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("value=\"/console/overview\""));
}
