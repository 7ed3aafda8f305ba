//! `TestApp`: the real server, in-process on port 0 with its own fresh database, and typed
//! helpers to talk to it over HTTP the way a handset does.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use sync_server::config::Config;
use sync_server::startup::{Application, BuildOptions};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The password of every demo user.
pub const PASSWORD: &str = "demo";
/// Name fragments of the two demo estates.
pub const ESTATE_1: &str = "Harbour View Gardens";
pub const ESTATE_2: &str = "Riverside Court";

/// A running server. Dropping it stops the server and removes its database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Kept alive for as long as the app; `None` when the caller owns the directory.
    _dir: Option<TempDir>,
    /// A PostgreSQL database made for this app, dropped with it.
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TestApp {
    /// A fresh server on SQLite in a new temporary directory, with the demo data.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await.app
    }

    /// A server on `data_dir` (SQLite file and JWT secret kept there unless `database_url`
    /// says otherwise). Building twice on one directory is a restart.
    pub async fn spawn_in(data_dir: &Path, database_url: Option<String>) -> TestApp {
        Self::spawn_in_with(data_dir, database_url, |_| {})
            .await
            .app
    }

    /// A fresh server on a new PostgreSQL database made on `TEST_DATABASE_URL`, or `None`
    /// (after saying so on stderr) when that variable is unset. With `REQUIRE_POSTGRES=1`
    /// an unset variable fails the test instead: a PostgreSQL test that silently never runs
    /// proves nothing.
    pub async fn spawn_postgres(test: &str) -> Option<TestApp> {
        Some(Self::spawn_postgres_with(test, |_| {}).await?.app)
    }

    /// Makes this app's PostgreSQL database refuse connections (`allow` false) and ends
    /// the connections it has, as when the database goes away; `allow` true undoes it.
    pub async fn set_postgres_reachable(&self, allow: bool) {
        let pg = self.pg.as_ref().expect("a PostgreSQL-backed app");
        let mut admin = sqlx::PgConnection::connect(&pg.admin_url)
            .await
            .expect("admin connection");
        sqlx::query(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS {allow}",
            pg.name
        ))
        .execute(&mut admin)
        .await
        .expect("ALTER DATABASE");
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&pg.name)
            .execute(&mut admin)
            .await
            .expect("terminate backends");
        }
        let _ = admin.close().await;
    }

    /// The URL of the PostgreSQL database this app runs on, if any.
    pub fn postgres_database_url(&self) -> Option<String> {
        self.pg
            .as_ref()
            .map(|p| with_database(&p.admin_url, &p.name))
    }

    /// Stops the server gracefully and waits for it to finish; the data stays.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task did not panic")
                .expect("the server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    // ------------------------------------------------------------ auth

    /// `POST /v1/auth/login` with a raw body.
    pub async fn login_raw(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/v1/auth/login"))
            .json(body)
            .send()
            .await
            .expect("login request")
    }

    /// Signs `username` in (password `demo`) on `device_id`; panics unless 200.
    pub async fn login(&self, username: &str, device_id: Uuid) -> Session {
        let resp = self
            .login_raw(&login_body(username, PASSWORD, device_id))
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("login answers JSON");
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        Session::from_token_response(body, device_id)
    }

    /// Signs `username` in on a new device.
    pub async fn login_new_device(&self, username: &str) -> Session {
        self.login(username, Uuid::now_v7()).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/v1/auth/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("refresh request")
    }

    pub async fn logout(&self, access: &str) -> Response {
        self.client
            .post(self.url("/v1/auth/logout"))
            .bearer_auth(access)
            .send()
            .await
            .expect("logout request")
    }

    pub async fn me(&self, access: &str) -> Response {
        self.client
            .get(self.url("/v1/me"))
            .bearer_auth(access)
            .send()
            .await
            .expect("me request")
    }

    // ------------------------------------------------------------ sync

    /// `POST /v1/sync/push` with `body` as JSON.
    pub async fn push(&self, session: &Session, body: &Value) -> Response {
        self.client
            .post(self.url("/v1/sync/push"))
            .bearer_auth(&session.access)
            .json(body)
            .send()
            .await
            .expect("push request")
    }

    /// Pushes `changes` in a new batch sent now from the session's device; panics unless
    /// 200 and returns the answer.
    pub async fn push_ok(&self, session: &Session, changes: Vec<Value>) -> Value {
        let resp = self.push(session, &batch(session.device_id, changes)).await;
        json_ok(resp).await
    }

    /// `GET /v1/sync/pull`.
    pub async fn pull(
        &self,
        session: &Session,
        cursor: Option<&str>,
        limit: Option<usize>,
        wait: Option<u64>,
    ) -> Response {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(w) = wait {
            query.push(("wait", w.to_string()));
        }
        self.client
            .get(self.url("/v1/sync/pull"))
            .bearer_auth(&session.access)
            .query(&query)
            .send()
            .await
            .expect("pull request")
    }

    /// One pull that must answer 200.
    pub async fn pull_ok(&self, session: &Session, cursor: Option<&str>) -> Pulled {
        let body = json_ok(self.pull(session, cursor, None, None).await).await;
        Pulled::from_body(body)
    }

    /// Pulls page after page from `cursor` until `has_more` is false; returns every change
    /// and the last cursor.
    pub async fn pull_all(&self, session: &Session, cursor: Option<&str>) -> Pulled {
        let mut cursor = cursor.map(str::to_owned);
        let mut changes = Vec::new();
        for _ in 0..1000 {
            let page = self.pull_ok(session, cursor.as_deref()).await;
            changes.extend(page.changes);
            cursor = Some(page.cursor);
            if !page.has_more {
                return Pulled {
                    changes,
                    cursor: cursor.expect("set above"),
                    has_more: false,
                };
            }
        }
        panic!("the feed never ended");
    }

    // ------------------------------------------------------------ admin

    pub async fn quarantine(&self, session: &Session, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1/admin/quarantine{query}")))
            .bearer_auth(&session.access)
            .send()
            .await
            .expect("quarantine request")
    }

    pub async fn create_estate(&self, session: &Session, body: &Value) -> Response {
        self.client
            .post(self.url("/v1/admin/estates"))
            .bearer_auth(&session.access)
            .json(body)
            .send()
            .await
            .expect("create estate request")
    }

    pub async fn retire_estate(&self, session: &Session, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/v1/admin/estates/{id}")))
            .bearer_auth(&session.access)
            .send()
            .await
            .expect("retire estate request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(pg) = self.pg.take() {
            // Drop cannot await; a thread of its own with its own runtime can. FORCE ends
            // the server's pooled connections.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database");
                rt.block_on(async {
                    let result = async {
                        let mut admin = sqlx::PgConnection::connect(&pg.admin_url).await?;
                        sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                            pg.name
                        ))
                        .execute(&mut admin)
                        .await?;
                        admin.close().await
                    }
                    .await;
                    if let Err(e) = result {
                        eprintln!("warning: could not drop test database {}: {e}", pg.name);
                    }
                });
            })
            .join();
        }
    }
}

/// The admin URL from `TEST_DATABASE_URL`, or `None` after printing a skip line.
fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "PostgreSQL black-box test {test}: REQUIRE_POSTGRES=1 but TEST_DATABASE_URL \
                     is not set (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)"
                );
            }
            // Straight to stderr: libtest swallows the output of a passing test, and a skip
            // nobody sees is how a PostgreSQL test silently never runs.
            let _ = writeln!(
                std::io::stderr(),
                "skipping PostgreSQL black-box test {test}: TEST_DATABASE_URL is not set"
            );
            None
        }
    }
}

/// `url` with its database name replaced by `db`, the query string kept.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

// ---------------------------------------------------------------- sessions

/// A signed-in device.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub device_id: Uuid,
    pub estates: Vec<Estate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Estate {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

impl Session {
    pub fn from_token_response(body: Value, device_id: Uuid) -> Session {
        let s = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {v}"))
                .to_owned()
        };
        let estates = body["estates"]
            .as_array()
            .unwrap_or_else(|| panic!("estates is an array: {body}"))
            .iter()
            .map(|e| Estate {
                id: s(&e["id"]),
                name: s(&e["name"]),
                roles: e["roles"]
                    .as_array()
                    .unwrap_or_else(|| panic!("roles is an array: {e}"))
                    .iter()
                    .map(s)
                    .collect(),
            })
            .collect();
        Session {
            access: s(&body["access_token"]),
            refresh: s(&body["refresh_token"]),
            user_id: s(&body["user"]["id"]),
            device_id,
            estates,
        }
    }

    /// The id of the caller's estate whose name contains `name`.
    pub fn estate(&self, name: &str) -> String {
        self.estates
            .iter()
            .find(|e| e.name.contains(name))
            .unwrap_or_else(|| panic!("no estate named {name:?} in {:?}", self.estates))
            .id
            .clone()
    }
}

pub fn login_body(username: &str, password: &str, device_id: Uuid) -> Value {
    json!({
        "username": username,
        "password": password,
        "device": { "id": device_id, "name": "test handset", "platform": "android", "app_version": "1.0.0" }
    })
}

// ---------------------------------------------------------------- changes and batches

/// RFC 3339 UTC with milliseconds, as handsets write it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a timestamp: {v}")))
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The HLC wire form: 13-digit epoch ms, a dash, 4 lower-case hex digits.
pub fn hlc_at(ms: i64, counter: u16) -> String {
    format!("{ms:013}-{counter:04x}")
}

pub fn is_hlc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18
        && b[13] == b'-'
        && b[..13].iter().all(u8::is_ascii_digit)
        && b[14..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// A checkpoint scan as a handset builds it: fresh UUIDv7, HLC and recorded_at of now,
/// a small `age_ms`, and `data.estate_id`.
#[derive(Clone, Debug)]
pub struct Scan {
    pub id: Uuid,
    pub seq: u64,
    pub hlc: String,
    pub recorded_at: DateTime<Utc>,
    pub age_ms: Option<i64>,
    pub estate_id: String,
    pub tag: String,
}

impl Scan {
    pub fn new(estate_id: &str, seq: u64) -> Scan {
        let now = Utc::now();
        Scan {
            id: Uuid::now_v7(),
            seq,
            hlc: hlc_at(now.timestamp_millis(), 0),
            recorded_at: now - chrono::Duration::milliseconds(1500),
            age_ms: Some(1500),
            estate_id: estate_id.to_owned(),
            tag: "04:A2:19:7C".into(),
        }
    }

    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    pub fn hlc(mut self, hlc: impl Into<String>) -> Self {
        self.hlc = hlc.into();
        self
    }
    pub fn recorded_at(mut self, t: DateTime<Utc>) -> Self {
        self.recorded_at = t;
        self
    }
    pub fn age_ms(mut self, age: Option<i64>) -> Self {
        self.age_ms = age;
        self
    }
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }

    pub fn json(&self) -> Value {
        let mut v = json!({
            "kind": "scan",
            "id": self.id,
            "seq": self.seq,
            "hlc": self.hlc,
            "recorded_at": rfc3339(self.recorded_at),
            "data": {
                "estate_id": self.estate_id,
                "tag": self.tag,
                "method": "nfc",
                "location": { "lat": 22.54, "lng": 114.05, "accuracy_m": 8, "mock": false }
            }
        });
        if let Some(age) = self.age_ms {
            v["age_ms"] = json!(age);
        }
        v
    }
}

/// A push body from `device_id` with a fresh batch id, sent now.
pub fn batch(device_id: Uuid, changes: Vec<Value>) -> Value {
    batch_sent_at(device_id, Utc::now(), changes)
}

pub fn batch_sent_at(device_id: Uuid, sent_at: DateTime<Utc>, changes: Vec<Value>) -> Value {
    json!({
        "device_id": device_id,
        "batch_id": Uuid::now_v7(),
        "sent_at": rfc3339(sent_at),
        "changes": changes,
    })
}

// ---------------------------------------------------------------- answers

/// A pull answer, or several pages of them.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub changes: Vec<Value>,
    pub cursor: String,
    pub has_more: bool,
}

impl Pulled {
    pub fn from_body(body: Value) -> Pulled {
        Pulled {
            changes: body["changes"]
                .as_array()
                .unwrap_or_else(|| panic!("changes is an array: {body}"))
                .clone(),
            cursor: body["cursor"]
                .as_str()
                .unwrap_or_else(|| panic!("cursor is a string: {body}"))
                .to_owned(),
            has_more: body["has_more"]
                .as_bool()
                .unwrap_or_else(|| panic!("has_more is a bool: {body}")),
        }
    }

    /// The `data` of every `facts` put.
    pub fn facts(&self) -> Vec<&Value> {
        self.changes
            .iter()
            .filter(|c| c["collection"] == "facts" && c["op"] == "put")
            .map(|c| &c["data"])
            .collect()
    }

    pub fn fact(&self, id: Uuid) -> &Value {
        let id = id.to_string();
        self.facts()
            .into_iter()
            .find(|f| f["id"] == id.as_str())
            .unwrap_or_else(|| panic!("fact {id} not in the pull: {:#?}", self.changes))
    }

    pub fn has_fact(&self, id: Uuid) -> bool {
        let id = id.to_string();
        self.facts().iter().any(|f| f["id"] == id.as_str())
    }

    /// Ids of the `estates` changes with `op`.
    pub fn estates(&self, op: &str) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c["collection"] == "estates" && c["op"] == op)
            .map(|c| c["id"].as_str().expect("an estate id").to_owned())
            .collect()
    }
}

/// Asserts the `patrol-hlc` header is present and well formed; returns it.
pub fn hlc_header(headers: &HeaderMap) -> String {
    let v = headers
        .get("patrol-hlc")
        .unwrap_or_else(|| panic!("no patrol-hlc header in {headers:?}"))
        .to_str()
        .expect("patrol-hlc is ASCII")
        .to_owned();
    assert!(is_hlc(&v), "patrol-hlc {v:?} is not in the wire form");
    v
}

/// Asserts 200 with JSON and the `patrol-hlc` header; returns the body.
pub async fn json_ok(resp: Response) -> Value {
    json_status(resp, StatusCode::OK).await
}

/// Asserts `status` with a JSON body and the `patrol-hlc` header; returns the body.
pub async fn json_status(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    hlc_header(resp.headers());
    let text = resp.text().await.expect("a body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an RFC 9457 problem: `status`, `application/problem+json`, `type`, the
/// `status` field, a title, the `patrol-hlc` header, and `WWW-Authenticate: Bearer` on a
/// 401. Returns the body.
pub async fn assert_problem(resp: Response, status: StatusCode, type_: &str) -> Value {
    let got = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("a body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    hlc_header(&headers);
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct:?}; body: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(body["type"], type_, "problem type; body: {body}");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "problem status; body: {body}"
    );
    assert!(body["title"].is_string(), "problem title; body: {body}");
    if status == StatusCode::UNAUTHORIZED {
        let www = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("a 401 without WWW-Authenticate; body: {body}"));
        assert!(www.starts_with("Bearer"), "WWW-Authenticate: {www:?}");
    }
    body
}

/// The results of a push answer, checked to be one per change in index order.
pub fn results(answer: &Value, changes: usize) -> Vec<Value> {
    let results = answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results is an array: {answer}"))
        .clone();
    assert_eq!(results.len(), changes, "one result per change: {answer}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "results in index order: {answer}");
    }
    results
}

// ---------------------------------------------------------------- configured servers

/// A server and its state (store, change hub, config), for tests that change the config or
/// drive a periodic job themselves (the hazard escalation sweep) instead of waiting for it.
pub struct StatefulApp {
    pub app: TestApp,
    pub state: sync_server::http::AppState,
}

impl TestApp {
    /// A fresh server on SQLite with `tweak` applied to its config.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> StatefulApp {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let mut s = Self::spawn_in_with(dir.path(), None, tweak).await;
        s.app._dir = Some(dir);
        s
    }

    /// A fresh server on a new PostgreSQL database with `tweak` applied to its config; `None`
    /// (or a failure with `REQUIRE_POSTGRES=1`) as [`TestApp::spawn_postgres`].
    pub async fn spawn_postgres_with(
        test: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<StatefulApp> {
        let admin_url = postgres_url(test)?;
        let name = format!("patrol_bb_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot connect to TEST_DATABASE_URL: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{test}: CREATE DATABASE {name} failed: {e}"));
        let _ = admin.close().await;
        let pg = PgDatabase {
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let dir = tempfile::tempdir().expect("create a temp dir");
        let url = with_database(&admin_url, &name);
        let mut s = Self::spawn_in_with(dir.path(), Some(url), tweak).await;
        s.app._dir = Some(dir);
        s.app.pg = Some(pg);
        Some(s)
    }

    /// As [`TestApp::spawn_in`], with `tweak` applied to the config, keeping the state.
    pub async fn spawn_in_with(
        data_dir: &Path,
        database_url: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> StatefulApp {
        Self::spawn_in_opts(data_dir, database_url, tweak, false).await
    }

    /// A fresh server on SQLite seeded as `serve --demo` seeds it: with the first estate's
    /// patrol plan and a simulated week of patrols (other tests keep that estate quiet).
    pub async fn spawn_full_demo() -> StatefulApp {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let mut s = Self::spawn_in_opts(dir.path(), None, |_| {}, true).await;
        s.app._dir = Some(dir);
        s
    }

    async fn spawn_in_opts(
        data_dir: &Path,
        database_url: Option<String>,
        tweak: impl FnOnce(&mut Config),
        demo_patrols: bool,
    ) -> StatefulApp {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.to_path_buf(),
            database_url,
            ..Default::default()
        };
        tweak(&mut config);
        let app = Application::build(
            config,
            BuildOptions {
                demo: true,
                demo_patrols,
            },
        )
        .await
        .expect("the server builds");
        let state = app.state().clone();
        let address = format!("http://{}", app.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        StatefulApp {
            app: TestApp {
                address,
                client: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("an HTTP client"),
                data_dir: data_dir.to_path_buf(),
                shutdown: Some(tx),
                server: Some(server),
                _dir: None,
                pg: None,
            },
            state,
        }
    }
}
