//! Hazard rectification (DESIGN §7, issue 7): tickets folded from `hazard_event` facts,
//! pushed by handsets or posted online, through the tracker API, pull, statistics, the
//! estate's policy and escalation alerts. The important stories run on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL.

use crate::helpers::{
    assert_problem, batch, hlc_at, json_ok, json_status, parse_time, results, rfc3339, Pulled,
    Session, StatefulApp, TestApp, ESTATE_1, ESTATE_2,
};
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use sync_server::config::Config;
use uuid::Uuid;

/// Runs a story on SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL.
macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $story:path) => {
        on_both_backends!($sqlite, $postgres, $story, |_: &mut Config| {});
    };
    ($sqlite:ident, $postgres:ident, $story:path, $tweak:expr) => {
        #[tokio::test]
        async fn $sqlite() {
            let s = TestApp::spawn_with($tweak).await;
            $story(&s).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(s) = TestApp::spawn_postgres_with(stringify!($postgres), $tweak).await else {
                return;
            };
            $story(&s).await;
        }
    };
}

// ---------------------------------------------------------------- handsets and requests

/// A signed-in handset: its own `seq` counter and hybrid logical clock.
struct Handset {
    s: Session,
    seq: u64,
    /// The last HLC it issued or saw: (epoch ms, counter).
    last: (i64, u16),
}

/// One change a handset built: its id and its JSON.
struct Change {
    id: Uuid,
    json: Value,
}

impl Handset {
    async fn new(app: &TestApp, username: &str) -> Handset {
        Handset {
            s: app.login_new_device(username).await,
            seq: 0,
            last: (0, 0),
        }
    }

    fn user(&self) -> &str {
        &self.s.user_id
    }

    /// The next HLC for an event whose wall clock read `wall_ms`.
    fn tick(&mut self, wall_ms: i64) -> String {
        self.last = if wall_ms > self.last.0 {
            (wall_ms, 0)
        } else {
            (self.last.0, self.last.1 + 1)
        };
        hlc_at(self.last.0, self.last.1)
    }

    fn observe(&mut self, hlc: &str) {
        let (ms, c) = hlc.split_once('-').expect("an HLC");
        let seen = (
            ms.parse::<i64>().expect("HLC ms"),
            u16::from_str_radix(c, 16).expect("HLC counter"),
        );
        if seen > self.last {
            self.last = seen;
        }
    }

    /// Catches the handset's clock up with the server's, as a pull before acting does.
    async fn sync_clock(&mut self, app: &TestApp) {
        let resp = app.me(&self.s.access).await;
        let hlc = crate::helpers::hlc_header(resp.headers());
        self.observe(&hlc);
    }

    /// A fact made at `at` (default: now), sent now: `age_ms` says how long ago.
    fn fact(&mut self, kind: &str, at: Option<DateTime<Utc>>, data: Value) -> Change {
        let now = Utc::now();
        let at = at.unwrap_or(now);
        self.seq += 1;
        let id = Uuid::now_v7();
        let json = json!({
            "kind": kind,
            "id": id,
            "seq": self.seq,
            "hlc": self.tick(at.timestamp_millis()),
            "recorded_at": rfc3339(at),
            "age_ms": (now - at).num_milliseconds().max(0),
            "data": data,
        });
        Change { id, json }
    }

    /// A `hazard_event` with `fields` beside `estate_id`, `hazard_id` and `action`.
    fn event(
        &mut self,
        estate: &str,
        hazard: Uuid,
        action: &str,
        fields: Value,
        at: Option<DateTime<Utc>>,
    ) -> Change {
        let mut data = json!({ "estate_id": estate, "hazard_id": hazard, "action": action });
        for (k, v) in fields.as_object().expect("fields are an object") {
            data[k] = v.clone();
        }
        self.fact("hazard_event", at, data)
    }

    /// A photo fact documenting `event` in `role`.
    fn photo(
        &mut self,
        estate: &str,
        event: Uuid,
        role: &str,
        at: Option<DateTime<Utc>>,
    ) -> (Change, String) {
        let sha = sha();
        let c = self.fact(
            "photo",
            at,
            json!({
                "estate_id": estate,
                "sha256": sha,
                "bytes": 284_113,
                "mime": "image/jpeg",
                "subject": { "kind": "hazard_event", "id": event },
                "role": role,
            }),
        );
        (c, sha)
    }

    /// Pushes the changes in one batch sent now; returns one result per change.
    async fn push(&mut self, app: &TestApp, changes: Vec<&Change>) -> Vec<Value> {
        let n = changes.len();
        let body = batch(
            self.s.device_id,
            changes.into_iter().map(|c| c.json.clone()).collect(),
        );
        let answer = json_ok(app.push(&self.s, &body).await).await;
        self.observe(answer["hlc"].as_str().expect("the answer's hlc"));
        results(&answer, n)
    }
}

/// 64 random hex digits, like a photo's SHA-256.
fn sha() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

/// A report's fields (without `estate_id`, `hazard_id` and `action`).
fn report_fields(grade: &str, category: &str, title: &str) -> Value {
    json!({
        "grade": grade,
        "category": category,
        "title": title,
        "description": "Found on the evening round",
        "location": { "text": "B2 car park, pillar 14" },
    })
}

/// `POST /v1/hazards`.
async fn report_online(app: &TestApp, s: &Session, body: &Value) -> Response {
    app.client
        .post(app.url("/v1/hazards"))
        .bearer_auth(&s.access)
        .json(body)
        .send()
        .await
        .expect("report request")
}

/// Reports a hazard online with a `before` photo; panics unless 201. Returns the ticket.
async fn report_ok(app: &TestApp, s: &Session, grade: &str, category: &str, title: &str) -> Value {
    let mut body = report_fields(grade, category, title);
    body["estate_id"] = json!(s.estate(ESTATE_1));
    body["photos"] = json!([{ "sha256": sha(), "role": "before" }]);
    json_status(report_online(app, s, &body).await, StatusCode::CREATED).await
}

/// `POST /v1/hazards/{id}/events`.
async fn post_event(app: &TestApp, s: &Session, hazard: &str, body: &Value) -> Response {
    app.client
        .post(app.url(&format!("/v1/hazards/{hazard}/events")))
        .bearer_auth(&s.access)
        .json(body)
        .send()
        .await
        .expect("event request")
}

/// Posts an event online; panics unless 201. Returns the ticket after it.
async fn event_ok(app: &TestApp, s: &Session, hazard: &str, body: Value) -> Value {
    json_status(post_event(app, s, hazard, &body).await, StatusCode::CREATED).await
}

async fn get(app: &TestApp, s: &Session, path: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(&s.access)
        .send()
        .await
        .expect("GET request")
}

/// `GET /v1/hazards/{id}`; panics unless 200.
async fn ticket(app: &TestApp, s: &Session, hazard: &str) -> Value {
    json_ok(get(app, s, &format!("/v1/hazards/{hazard}")).await).await
}

/// `GET /v1/hazards?{query}`; panics unless 200.
async fn list(app: &TestApp, s: &Session, query: &str) -> Value {
    json_ok(get(app, s, &format!("/v1/hazards?{query}")).await).await
}

/// The ids of a list page.
fn ids(page: &Value) -> Vec<String> {
    page["hazards"]
        .as_array()
        .unwrap_or_else(|| panic!("hazards is an array: {page}"))
        .iter()
        .map(|t| t["id"].as_str().expect("a ticket id").to_owned())
        .collect()
}

fn id_set<S: AsRef<str>>(ids: &[S]) -> HashSet<String> {
    ids.iter().map(|s| s.as_ref().to_owned()).collect()
}

fn id_of(t: &Value) -> String {
    t["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a ticket: {t}"))
        .to_owned()
}

/// The timeline entry of `event`.
fn entry(t: &Value, event: Uuid) -> &Value {
    let id = event.to_string();
    t["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("a timeline: {t}"))
        .iter()
        .find(|e| e["event_id"] == id.as_str())
        .unwrap_or_else(|| panic!("event {id} not in the timeline: {t:#}"))
}

/// `(action, status, code)` of every timeline entry, in order.
fn timeline(t: &Value) -> Vec<(String, String, String)> {
    t["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("a timeline: {t}"))
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("?").to_owned(),
                e["status"].as_str().unwrap_or("?").to_owned(),
                e["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn step(action: &str, status: &str, code: &str) -> (String, String, String) {
    (action.into(), status.into(), code.into())
}

fn accepted(r: &Value) {
    assert_eq!(r["status"], "accepted", "{r}");
}

fn rejected_with(r: &Value, code: &str) {
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["code"], code, "{r}");
}

/// `YH-YYYYMMDD-NNNN`.
fn is_ticket_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && s.starts_with("YH-")
        && b[11] == b'-'
        && b[3..11].iter().all(u8::is_ascii_digit)
        && b[12..].iter().all(u8::is_ascii_digit)
}

/// The `hazards` changes of a pull: (op, id, data).
fn hazard_changes(p: &Pulled) -> Vec<(String, String, Value)> {
    p.changes
        .iter()
        .filter(|c| c["collection"] == "hazards")
        .map(|c| {
            (
                c["op"].as_str().expect("an op").to_owned(),
                c["id"].as_str().expect("an id").to_owned(),
                c["data"].clone(),
            )
        })
        .collect()
}

/// The last `hazards` change for `id` in a pull.
fn last_hazard_change(p: &Pulled, id: &str) -> Option<(String, Value)> {
    hazard_changes(p)
        .into_iter()
        .filter(|(_, i, _)| i == id)
        .map(|(op, _, d)| (op, d))
        .next_back()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn ms(v: &Value) -> i64 {
    parse_time(v).timestamp_millis()
}

// ---------------------------------------------------------------- 1. the whole loop

/// The acceptance test: a guard reports offline with a photo, a manager assigns,
/// the engineer starts and fixes with an after photo, the same engineer's verify is refused
/// (an engineer may not verify: `role_forbidden`), a supervisor's verify closes it. Every
/// event is in the timeline, the rejected one too, and the code never changes.
async fn the_whole_loop(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let mut engineer = Handset::new(app, "engineer1").await;
    let supervisor = app.login_new_device("supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.s.estate(ESTATE_1);
    let hazard = Uuid::now_v7();
    let h = hazard.to_string();

    // Two hours ago, offline in the car park: the report and its before photo.
    let found = Utc::now() - hours(2);
    let report = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("general", "fire", "Fire door wedged open"),
        Some(found),
    );
    let (before, before_sha) = guard.photo(&estate, report.id, "before", Some(found));
    let r = guard.push(app, vec![&report, &before]).await;
    accepted(&r[0]);
    accepted(&r[1]);

    let t = ticket(app, &manager, &h).await;
    assert_eq!(t["state"], "reported", "{t:#}");
    assert_eq!(t["reporter"], guard.user());
    assert_eq!(t["estate_id"], estate);
    assert_eq!(t["grade"], "general");
    assert_eq!(t["title"], "Fire door wedged open");
    assert_eq!(t["overdue"], false);
    let code = t["code"].as_str().expect("a code").to_owned();
    assert!(is_ticket_code(&code), "{code:?}");
    // Trusted time, not arrival: reported two hours ago, due 24 h after that.
    let reported_at = ms(&t["reported_at"]);
    assert!(
        (reported_at - found.timestamp_millis()).abs() < 10_000,
        "reported_at {} is the time of the finding, {}",
        t["reported_at"],
        rfc3339(found)
    );
    assert_eq!(ms(&t["due_at"]), reported_at + 24 * 3_600_000, "{t:#}");
    let photos = &entry(&t, report.id)["photos"];
    assert_eq!(photos[0]["role"], "before", "{t:#}");
    assert_eq!(photos[0]["sha256"], before_sha);

    // The manager assigns online.
    let due = Utc::now() + hours(8);
    let t = event_ok(
        app,
        &manager,
        &h,
        json!({ "action": "assign", "assignee": engineer.user(), "due_at": rfc3339(due) }),
    )
    .await;
    assert_eq!(t["state"], "assigned", "{t:#}");
    assert_eq!(t["assignee"], engineer.user());
    assert_eq!(ms(&t["due_at"]), due.timestamp_millis());
    assert_eq!(t["code"], code.as_str());

    // The engineer, having synced, starts and submits a fix with an after photo.
    engineer.sync_clock(app).await;
    let start = engineer.event(&estate, hazard, "start", json!({}), None);
    let fix = engineer.event(
        &estate,
        hazard,
        "submit_fix",
        json!({ "note": "Removed the wedge, fitted a door closer" }),
        None,
    );
    let (after, after_sha) = engineer.photo(&estate, fix.id, "after", None);
    let r = engineer.push(app, vec![&start, &fix, &after]).await;
    for x in &r {
        accepted(x);
    }

    // The same engineer tries to pass their own fix: an engineer may not verify.
    let self_verify = engineer.event(
        &estate,
        hazard,
        "verify_pass",
        json!({ "note": "Looks fine to me" }),
        None,
    );
    let (own_photo, _) = engineer.photo(&estate, self_verify.id, "verification", None);
    let r = engineer.push(app, vec![&self_verify, &own_photo]).await;
    rejected_with(&r[0], "role_forbidden");
    assert!(r[0]["message"].is_string(), "{}", r[0]);
    accepted(&r[1]);
    let t = ticket(app, &supervisor, &h).await;
    assert_eq!(t["state"], "pending_verification", "{t:#}");
    assert_eq!(t["fixed_by"], engineer.user());

    // A supervisor verifies with a verification photo: closed.
    let t = event_ok(
        app,
        &supervisor,
        &h,
        json!({
            "action": "verify_pass",
            "note": "Door closes on its own",
            "photos": [{ "sha256": sha(), "role": "verification" }],
        }),
    )
    .await;
    assert_eq!(t["state"], "closed", "{t:#}");

    let t = ticket(app, &manager, &h).await;
    assert_eq!(t["state"], "closed", "{t:#}");
    assert_eq!(t["overdue"], false);
    assert_eq!(t["verified_by"], supervisor.user_id);
    assert_eq!(t["fixed_by"], engineer.user());
    assert!(t["closed_at"].is_string(), "{t:#}");
    assert_eq!(t["code"], code.as_str(), "the code is stable");
    assert_eq!(
        timeline(&t),
        vec![
            step("report", "accepted", ""),
            step("assign", "accepted", ""),
            step("start", "accepted", ""),
            step("submit_fix", "accepted", ""),
            step("verify_pass", "rejected", "role_forbidden"),
            step("verify_pass", "accepted", ""),
        ],
        "{t:#}"
    );
    let refused = entry(&t, self_verify.id);
    assert_eq!(refused["actor"], engineer.user());
    assert!(refused["reason"].is_string(), "{refused}");
    assert_eq!(refused["state_after"], "pending_verification");
    let fixed = entry(&t, fix.id);
    assert_eq!(fixed["photos"][0]["role"], "after", "{fixed}");
    assert_eq!(fixed["photos"][0]["sha256"], after_sha);
    assert_eq!(
        fixed["data"]["note"],
        "Removed the wedge, fitted a door closer"
    );
    assert_eq!(
        t["timeline"][5]["photos"][0]["role"], "verification",
        "{t:#}"
    );

    // The same code everywhere, read after read.
    assert_eq!(ticket(app, &guard.s, &h).await["code"], code.as_str());
    let page = list(app, &manager, &format!("estate_id={estate}")).await;
    let listed = page["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == h.as_str())
        .unwrap_or_else(|| panic!("listed: {page:#}"));
    assert_eq!(listed["code"], code.as_str(), "{listed}");
    assert_eq!(listed["state"], "closed", "{listed}");
    assert!(listed.get("timeline").is_none(), "{listed}");
    let resp = get(app, &manager, &format!("/v1/hazards/{h}/notice")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("整改通知单"), "{html}");
    assert!(html.contains(&code), "{html}");

    // The guard's handset gets the closed ticket with its whole timeline.
    let pulled = app.pull_all(&guard.s, None).await;
    let (op, data) = last_hazard_change(&pulled, &h).expect("the ticket reaches the guard");
    assert_eq!(op, "put");
    assert_eq!(data["state"], "closed");
    assert_eq!(data["code"], code.as_str());
    assert_eq!(
        data["timeline"].as_array().map(Vec::len),
        Some(6),
        "{data:#}"
    );
}

on_both_backends!(
    the_whole_loop_sqlite,
    the_whole_loop_postgres,
    the_whole_loop
);

/// With a user who is both engineer and supervisor, the role check passes and the fixer
/// verifying their own fix is refused as `self_verification`, online and through push.
async fn the_fixer_may_not_verify_their_own_fix(s: &StatefulApp) {
    let app = &s.app;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let engineer_id = app.login_new_device("engineer1").await.user_id;
    s.state
        .store
        .add_membership(
            engineer_id.parse().unwrap(),
            estate.parse().unwrap(),
            shared_core::Role::Supervisor,
        )
        .await
        .expect("engineer1 becomes a supervisor too");
    let mut engineer = Handset::new(app, "engineer1").await;
    let supervisor = app.login_new_device("supervisor1").await;

    let t = report_ok(app, &guard, "general", "electrical", "Exposed wiring").await;
    let h = id_of(&t);
    let hazard: Uuid = h.parse().unwrap();
    event_ok(
        app,
        &supervisor,
        &h,
        json!({ "action": "assign", "assignee": engineer.user() }),
    )
    .await;
    event_ok(app, &engineer.s, &h, json!({ "action": "start" })).await;
    event_ok(
        app,
        &engineer.s,
        &h,
        json!({ "action": "submit_fix", "photos": [{ "sha256": sha(), "role": "after" }] }),
    )
    .await;
    let before = ticket(app, &supervisor, &h).await;

    let resp = post_event(
        app,
        &engineer.s,
        &h,
        &json!({ "action": "verify_pass", "photos": [{ "sha256": sha(), "role": "verification" }] }),
    )
    .await;
    let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/self-verification").await;
    assert_eq!(p["code"], "self_verification", "{p}");
    assert_eq!(
        ticket(app, &supervisor, &h).await,
        before,
        "nothing changed"
    );

    engineer.sync_clock(app).await;
    let v = engineer.event(
        &estate,
        hazard,
        "verify_fail",
        json!({ "reason": "redo" }),
        None,
    );
    let r = engineer.push(app, vec![&v]).await;
    rejected_with(&r[0], "self_verification");
    let t = ticket(app, &supervisor, &h).await;
    assert_eq!(t["state"], "pending_verification");
    assert_eq!(entry(&t, v.id)["code"], "self_verification");
    assert_eq!(entry(&t, v.id)["status"], "rejected");

    let t = event_ok(
        app,
        &supervisor,
        &h,
        json!({ "action": "verify_pass", "photos": [{ "sha256": sha(), "role": "verification" }] }),
    )
    .await;
    assert_eq!(t["state"], "closed");
}

on_both_backends!(
    the_fixer_may_not_verify_their_own_fix_sqlite,
    the_fixer_may_not_verify_their_own_fix_postgres,
    the_fixer_may_not_verify_their_own_fix
);

// ---------------------------------------------------------------- 2. a late cancel

/// Report (t0) and assign (t2) arrive; a cancel made offline at t1 < t2 on a third device
/// arrives later. It wins at its place: the ticket is cancelled, and the assign and the
/// start after it are rejected as invalid transitions.
async fn a_late_cancel_that_predates_the_assign_wins(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let mut supervisor = Handset::new(app, "supervisor1").await;
    let mut engineer = Handset::new(app, "engineer1").await;
    let mut manager = Handset::new(app, "manager1").await;
    let estate = guard.s.estate(ESTATE_1);
    let hazard = Uuid::now_v7();
    let h = hazard.to_string();
    let now = Utc::now();
    let (t0, t1, t2) = (now - hours(3), now - hours(2), now - hours(1));

    let report = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("general", "fire", "Extinguisher missing"),
        Some(t0),
    );
    let (photo, _) = guard.photo(&estate, report.id, "before", Some(t0));
    let r = guard.push(app, vec![&report, &photo]).await;
    accepted(&r[0]);

    let assign = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user(), "due_at": rfc3339(now + hours(20)) }),
        Some(t2),
    );
    accepted(&supervisor.push(app, vec![&assign]).await[0]);
    engineer.sync_clock(app).await;
    let start = engineer.event(&estate, hazard, "start", json!({}), None);
    accepted(&engineer.push(app, vec![&start]).await[0]);
    let t = ticket(app, &supervisor.s, &h).await;
    assert_eq!(t["state"], "in_rectification", "{t:#}");
    let code = t["code"].clone();
    let cursor = app.pull_all(&supervisor.s, None).await.cursor;

    // The manager's handset was offline since t1.
    let cancel = manager.event(
        &estate,
        hazard,
        "cancel",
        json!({ "reason": "Duplicate of an earlier report" }),
        Some(t1),
    );
    accepted(&manager.push(app, vec![&cancel]).await[0]);

    let t = ticket(app, &supervisor.s, &h).await;
    assert_eq!(t["state"], "cancelled", "{t:#}");
    assert_eq!(t["cancel_reason"], "Duplicate of an earlier report");
    assert!(
        (ms(&t["cancelled_at"]) - t1.timestamp_millis()).abs() < 10_000,
        "cancelled at its own time: {t:#}"
    );
    assert!(
        t["assignee"].is_null(),
        "the rejected assign changed nothing: {t:#}"
    );
    assert_eq!(t["code"], code, "the code is stable");
    assert_eq!(
        timeline(&t),
        vec![
            step("report", "accepted", ""),
            step("cancel", "accepted", ""),
            step("assign", "rejected", "invalid_transition"),
            step("start", "rejected", "invalid_transition"),
        ],
        "{t:#}"
    );
    assert_eq!(entry(&t, cancel.id)["state_after"], "cancelled");
    assert_eq!(entry(&t, assign.id)["state_after"], "cancelled");

    // Handsets that already had the ticket get it again, recomputed.
    let pulled = app.pull_all(&supervisor.s, Some(&cursor)).await;
    let (op, data) = last_hazard_change(&pulled, &h).expect("the recomputed ticket is pulled");
    assert_eq!(op, "put");
    assert_eq!(data["state"], "cancelled");
}

on_both_backends!(
    a_late_cancel_that_predates_the_assign_wins_sqlite,
    a_late_cancel_that_predates_the_assign_wins_postgres,
    a_late_cancel_that_predates_the_assign_wins
);

// ---------------------------------------------------------------- 3. bad input

/// Role, due date and plan refusals: problem+json with the code online (nothing stored),
/// `rejected` with the same code through push (kept in the timeline); shape errors
/// quarantined; unknown hazards 404.
async fn bad_input_is_refused_with_the_same_code_either_way(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let mut supervisor = Handset::new(app, "supervisor1").await;
    let mut engineer = Handset::new(app, "engineer1").await;
    let engineer2 = app.login_new_device("engineer2").await;
    let admin = app.login_new_device("admin").await;
    let estate = guard.s.estate(ESTATE_1);

    let t = report_ok(app, &guard.s, "general", "fire", "Blocked exit").await;
    let h = id_of(&t);
    let hazard: Uuid = h.parse().unwrap();

    // A guard may not assign: online 403, nothing changes.
    let before = ticket(app, &supervisor.s, &h).await;
    let resp = post_event(
        app,
        &guard.s,
        &h,
        &json!({ "action": "assign", "assignee": engineer.user() }),
    )
    .await;
    let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/role-forbidden").await;
    assert_eq!(p["code"], "role_forbidden", "{p}");
    assert!(p["detail"].is_string(), "{p}");
    assert_eq!(
        ticket(app, &supervisor.s, &h).await,
        before,
        "nothing changed"
    );

    // ... through push: rejected, and kept in the timeline.
    guard.sync_clock(app).await;
    let g_assign = guard.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user() }),
        None,
    );
    rejected_with(&guard.push(app, vec![&g_assign]).await[0], "role_forbidden");
    let t = ticket(app, &supervisor.s, &h).await;
    assert_eq!(t["state"], "reported");
    assert!(t["assignee"].is_null());
    assert_eq!(entry(&t, g_assign.id)["status"], "rejected");
    assert_eq!(entry(&t, g_assign.id)["code"], "role_forbidden");

    // A due date in the past: online 422, nothing changes.
    let before = ticket(app, &supervisor.s, &h).await;
    let past = rfc3339(Utc::now() - hours(1));
    let resp = post_event(
        app,
        &supervisor.s,
        &h,
        &json!({ "action": "assign", "assignee": engineer.user(), "due_at": past }),
    )
    .await;
    let p = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/due-in-past",
    )
    .await;
    assert_eq!(p["code"], "due_in_past", "{p}");
    assert_eq!(
        ticket(app, &supervisor.s, &h).await,
        before,
        "nothing changed"
    );

    // ... through push.
    supervisor.sync_clock(app).await;
    let s_assign = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user(), "due_at": past }),
        None,
    );
    rejected_with(
        &supervisor.push(app, vec![&s_assign]).await[0],
        "due_in_past",
    );
    let t = ticket(app, &supervisor.s, &h).await;
    assert_eq!(t["state"], "reported");
    assert_eq!(entry(&t, s_assign.id)["code"], "due_in_past");
    assert_eq!(entry(&t, s_assign.id)["status"], "rejected");

    // Shape errors through push: rejected, quarantined, not in the timeline.
    let to_a_guard = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": guard.user() }),
        None,
    );
    let no_text = supervisor.event(&estate, hazard, "comment", json!({}), None);
    let bad_due = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user(), "due_at": "tomorrow" }),
        None,
    );
    let r = supervisor
        .push(app, vec![&to_a_guard, &no_text, &bad_due])
        .await;
    rejected_with(&r[0], "unknown_assignee");
    rejected_with(&r[1], "missing_field");
    rejected_with(&r[2], "invalid_timestamp");
    let q = json_ok(app.quarantine(&admin, "").await).await;
    let quarantined: Vec<(String, String)> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["change_id"].as_str().unwrap_or("").to_owned(),
                e["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (c, code) in [
        (&to_a_guard, "unknown_assignee"),
        (&no_text, "missing_field"),
        (&bad_due, "invalid_timestamp"),
    ] {
        assert!(
            quarantined.contains(&(c.id.to_string(), code.to_owned())),
            "{} ({code}) quarantined: {q:#}",
            c.id
        );
    }
    let t = ticket(app, &supervisor.s, &h).await;
    let in_timeline: HashSet<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    for c in [&to_a_guard, &no_text, &bad_due] {
        assert!(!in_timeline.contains(c.id.to_string().as_str()), "{t:#}");
    }

    // An invalid transition online: a reported ticket cannot be verified.
    let resp = post_event(
        app,
        &supervisor.s,
        &h,
        &json!({ "action": "verify_pass", "photos": [{ "sha256": sha(), "role": "verification" }] }),
    )
    .await;
    let p = assert_problem(resp, StatusCode::CONFLICT, "/problems/invalid-transition").await;
    assert_eq!(p["code"], "invalid_transition", "{p}");

    // A major hazard started without its plan.
    let m = report_ok(
        app,
        &guard.s,
        "major",
        "structure",
        "Cracked retaining wall",
    )
    .await;
    let mh = id_of(&m);
    let major: Uuid = mh.parse().unwrap();
    event_ok(
        app,
        &supervisor.s,
        &mh,
        json!({ "action": "assign", "assignee": engineer.user() }),
    )
    .await;
    let before = ticket(app, &supervisor.s, &mh).await;
    assert_eq!(before["state"], "assigned");
    let resp = post_event(app, &engineer2, &mh, &json!({ "action": "start" })).await;
    let p = assert_problem(resp, StatusCode::FORBIDDEN, "/problems/not-assignee").await;
    assert_eq!(p["code"], "not_assignee", "{p}");
    let resp = post_event(app, &engineer.s, &mh, &json!({ "action": "start" })).await;
    let p = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/plan-required",
    )
    .await;
    assert_eq!(p["code"], "plan_required", "{p}");
    assert_eq!(
        ticket(app, &supervisor.s, &mh).await,
        before,
        "nothing changed"
    );

    engineer.sync_clock(app).await;
    let e_start = engineer.event(&estate, major, "start", json!({}), None);
    rejected_with(
        &engineer.push(app, vec![&e_start]).await[0],
        "plan_required",
    );
    let t = ticket(app, &supervisor.s, &mh).await;
    assert_eq!(t["state"], "assigned");
    assert_eq!(entry(&t, e_start.id)["code"], "plan_required");

    // With the plan, it starts.
    event_ok(
        app,
        &engineer.s,
        &mh,
        json!({ "action": "plan", "plan": {
            "goal": "Wall stable and drained",
            "measures": "Shore, then rebuild the top courses",
            "funds": "¥48,000",
            "owner": "Liu Gong",
            "deadline": rfc3339(Utc::now() + hours(120)),
        }}),
    )
    .await;
    let t = event_ok(app, &engineer.s, &mh, json!({ "action": "start" })).await;
    assert_eq!(t["state"], "in_rectification");
    assert_eq!(t["plan"]["funds"], "¥48,000");

    // A second report of the same hazard: online 409, through push rejected and kept.
    let mut again = report_fields("general", "fire", "Blocked exit, again");
    again["estate_id"] = json!(estate);
    again["hazard_id"] = json!(h);
    again["photos"] = json!([{ "sha256": sha(), "role": "before" }]);
    let before = ticket(app, &supervisor.s, &h).await;
    let resp = report_online(app, &guard.s, &again).await;
    let p = assert_problem(resp, StatusCode::CONFLICT, "/problems/already-reported").await;
    assert_eq!(p["code"], "already_reported", "{p}");
    assert_eq!(
        ticket(app, &supervisor.s, &h).await,
        before,
        "nothing changed"
    );
    guard.sync_clock(app).await;
    let second = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("major", "fire", "Blocked exit, again"),
        None,
    );
    let (second_photo, _) = guard.photo(&estate, second.id, "before", None);
    let r = guard.push(app, vec![&second, &second_photo]).await;
    rejected_with(&r[0], "already_reported");
    let t = ticket(app, &supervisor.s, &h).await;
    assert_eq!(t["grade"], "general", "{t:#}");
    assert_eq!(t["title"], "Blocked exit");
    assert_eq!(entry(&t, second.id)["code"], "already_reported");

    // Unknown hazards: 404 online.
    for id in [Uuid::now_v7().to_string(), "not-a-hazard".to_owned()] {
        let resp = get(app, &supervisor.s, &format!("/v1/hazards/{id}")).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let resp = post_event(
            app,
            &supervisor.s,
            &id,
            &json!({ "action": "comment", "text": "?" }),
        )
        .await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let resp = get(app, &supervisor.s, &format!("/v1/hazards/{id}/notice")).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
}

on_both_backends!(
    bad_input_is_refused_with_the_same_code_either_way_sqlite,
    bad_input_is_refused_with_the_same_code_either_way_postgres,
    bad_input_is_refused_with_the_same_code_either_way
);

/// An event pushed before its report is accepted and held: listed for managers (here at
/// once: `hazard_held_after_secs = 0`), folded in when the report comes, and listed no more.
async fn an_event_before_its_report_is_held_then_folds_in(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard2").await;
    let mut supervisor = Handset::new(app, "supervisor1").await;
    let engineer = app.login_new_device("engineer1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.s.estate(ESTATE_1);
    let hazard = Uuid::now_v7();
    let h = hazard.to_string();
    let made = Utc::now() - hours(1);

    // The supervisor saw the guard's report on the guard's screen and assigned it, but the
    // guard's handset has not synced yet.
    let assign = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user_id }),
        Some(made),
    );
    let r = supervisor.push(app, vec![&assign]).await;
    accepted(&r[0]);
    assert!(r[0].get("code").is_none(), "{}", r[0]);

    let resp = get(app, &manager, &format!("/v1/hazards/{h}")).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let held_path = format!("/v1/estates/{estate}/hazard-events/held");
    let held = json_ok(get(app, &manager, &held_path).await).await;
    let found: Vec<&Value> = held["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {held}"))
        .iter()
        .filter(|e| e["event_id"] == assign.id.to_string())
        .collect();
    assert_eq!(found.len(), 1, "listed as held: {held:#}");
    assert_eq!(found[0]["hazard_id"], h);
    assert_eq!(found[0]["action"], "assign");
    assert_eq!(found[0]["user_id"], supervisor.user());
    assert_eq!(found[0]["device_id"], supervisor.s.device_id.to_string());
    // Not for guards.
    let resp = get(app, &guard.s, &held_path).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;

    // The report arrives, made before the assign.
    let at = made - Duration::minutes(10);
    let report = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("general", "water", "Leak above the lift"),
        Some(at),
    );
    let (photo, _) = guard.photo(&estate, report.id, "before", Some(at));
    let r = guard.push(app, vec![&report, &photo]).await;
    accepted(&r[0]);

    let t = ticket(app, &manager, &h).await;
    assert_eq!(t["state"], "assigned", "{t:#}");
    assert_eq!(t["assignee"], engineer.user_id);
    assert_eq!(
        timeline(&t),
        vec![
            step("report", "accepted", ""),
            step("assign", "accepted", "")
        ]
    );
    let held = json_ok(get(app, &manager, &held_path).await).await;
    assert!(
        !held["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_id"] == assign.id.to_string()),
        "no longer held: {held:#}"
    );
}

on_both_backends!(
    an_event_before_its_report_is_held_then_folds_in_sqlite,
    an_event_before_its_report_is_held_then_folds_in_postgres,
    an_event_before_its_report_is_held_then_folds_in,
    |c: &mut Config| c.hazard_held_after_secs = 0
);

/// With the default held time (a day), a fresh held event is not listed yet.
#[tokio::test]
async fn a_held_event_is_listed_only_after_the_held_time() {
    let app = TestApp::spawn().await;
    let mut supervisor = Handset::new(&app, "supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let engineer = app.login_new_device("engineer1").await;
    let estate = manager.estate(ESTATE_1);
    let assign = supervisor.event(
        &estate,
        Uuid::now_v7(),
        "assign",
        json!({ "assignee": engineer.user_id }),
        None,
    );
    accepted(&supervisor.push(&app, vec![&assign]).await[0]);
    let held = json_ok(
        get(
            &app,
            &manager,
            &format!("/v1/estates/{estate}/hazard-events/held"),
        )
        .await,
    )
    .await;
    let ids: Vec<&Value> = held["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {held}"))
        .iter()
        .map(|e| &e["event_id"])
        .collect();
    assert!(!ids.contains(&&json!(assign.id)), "{held:#}");
}

// ---------------------------------------------------------------- 4. scope

/// Guards see only what they reported; another estate's guard gets 404; an engineer's
/// handset gets a delete for a ticket closed while assigned to another engineer.
async fn each_role_sees_its_own_tickets(s: &StatefulApp) {
    let app = &s.app;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let guard3 = app.login_new_device("guard3").await;
    let engineer1 = app.login_new_device("engineer1").await;
    let engineer2 = app.login_new_device("engineer2").await;
    let supervisor = app.login_new_device("supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard1.estate(ESTATE_1);

    let a = id_of(&report_ok(app, &guard1, "general", "fire", "Guard 1's").await);
    let b = id_of(&report_ok(app, &guard2, "general", "fire", "Guard 2's").await);
    let c = id_of(&report_ok(app, &guard1, "general", "water", "Closed by engineer 2").await);

    // The list (the demo seed may hold tickets too: every one listed must be in scope).
    for (g, own, other) in [(&guard1, [&a, &c], &b), (&guard2, [&b, &b], &a)] {
        let page = list(app, g, "").await;
        for t in page["hazards"].as_array().unwrap() {
            assert_eq!(t["reporter"], g.user_id.as_str(), "only their own: {t}");
        }
        let got: HashSet<String> = ids(&page).into_iter().collect();
        assert!(own.iter().all(|id| got.contains(*id)), "{page:#}");
        assert!(!got.contains(other), "{page:#}");
    }
    let all: HashSet<String> = ids(&list(app, &manager, "").await).into_iter().collect();
    assert!(id_set(&[&a, &b, &c]).is_subset(&all), "{all:?}");
    let theirs = list(app, &guard3, "").await;
    for t in theirs["hazards"].as_array().unwrap() {
        assert_eq!(t["estate_id"], guard3.estate(ESTATE_2), "{t}");
    }
    let resp = get(app, &guard3, &format!("/v1/hazards?estate_id={estate}")).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;

    // One ticket.
    for s in [&guard3, &guard2] {
        let resp = get(app, s, &format!("/v1/hazards/{a}")).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let resp = get(app, s, &format!("/v1/hazards/{a}/notice")).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
    let resp = post_event(
        app,
        &guard3,
        &a,
        &json!({ "action": "comment", "text": "mine?" }),
    )
    .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    assert_eq!(ticket(app, &guard1, &a).await["title"], "Guard 1's");

    // Pull: a guard's handset gets its own reports only.
    let pulled = app.pull_all(&guard1, None).await;
    let got: HashSet<String> = hazard_changes(&pulled)
        .into_iter()
        .map(|(op, id, data)| {
            assert_eq!(op, "put", "{id}");
            assert_eq!(data["reporter"], guard1.user_id.as_str(), "{data}");
            id
        })
        .collect();
    assert!(got.contains(&a) && got.contains(&c), "{got:?}");
    assert!(!got.contains(&b), "{got:?}");
    let pulled = app.pull_all(&guard3, None).await;
    for (_, id, _) in hazard_changes(&pulled) {
        assert!(
            !id_set(&[&a, &b, &c]).contains(&id),
            "{:#?}",
            pulled.changes
        );
    }

    // Engineers: open tickets of their estate, then a delete once closed under another.
    let e1 = app.pull_all(&engineer1, None).await;
    assert_eq!(
        last_hazard_change(&e1, &c).map(|x| x.0).as_deref(),
        Some("put")
    );
    event_ok(
        app,
        &supervisor,
        &c,
        json!({ "action": "assign", "assignee": engineer2.user_id }),
    )
    .await;
    event_ok(app, &engineer2, &c, json!({ "action": "start" })).await;
    event_ok(
        app,
        &engineer2,
        &c,
        json!({ "action": "submit_fix", "photos": [{ "sha256": sha(), "role": "after" }] }),
    )
    .await;
    event_ok(
        app,
        &supervisor,
        &c,
        json!({ "action": "verify_pass", "photos": [{ "sha256": sha(), "role": "verification" }] }),
    )
    .await;
    let later = app.pull_all(&engineer1, Some(&e1.cursor)).await;
    assert_eq!(
        last_hazard_change(&later, &c).map(|x| x.0).as_deref(),
        Some("delete"),
        "{:#?}",
        later.changes
    );
    let resp = get(app, &engineer1, &format!("/v1/hazards/{c}")).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    // The engineer who fixed it keeps it; so do overseers.
    let e2 = app.pull_all(&engineer2, None).await;
    let (op, data) = last_hazard_change(&e2, &c).expect("engineer2 has it");
    assert_eq!((op.as_str(), &data["state"]), ("put", &json!("closed")));
    let e1_all = app.pull_all(&engineer1, None).await;
    assert_ne!(
        last_hazard_change(&e1_all, &c).map(|x| x.0).as_deref(),
        Some("put"),
        "a fresh engineer1 handset does not get it as a put"
    );
    let m = app.pull_all(&manager, None).await;
    assert_eq!(
        last_hazard_change(&m, &c).map(|x| x.1["state"].clone()),
        Some(json!("closed"))
    );
    // engineer1 still sees the open ones, and only open ones or their own.
    let page = list(app, &engineer1, "").await;
    for t in page["hazards"].as_array().unwrap() {
        let open = !["closed", "cancelled"].contains(&t["state"].as_str().unwrap());
        assert!(open || t["assignee"] == engineer1.user_id.as_str(), "{t}");
    }
    let got: HashSet<String> = ids(&page).into_iter().collect();
    assert!(
        got.contains(&a) && got.contains(&b) && !got.contains(&c),
        "{got:?}"
    );
}

on_both_backends!(
    each_role_sees_its_own_tickets_sqlite,
    each_role_sees_its_own_tickets_postgres,
    each_role_sees_its_own_tickets
);

// ---------------------------------------------------------------- 5. list and CSV

async fn the_list_filters_pages_and_exports(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let supervisor = app.login_new_device("supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let engineer1 = app.login_new_device("engineer1").await;
    let engineer2 = app.login_new_device("engineer2").await;
    let estate = guard.s.estate(ESTATE_1);

    // Overdue: reported 30 h ago offline (general: due after 24 h).
    let old = Uuid::now_v7();
    let at = Utc::now() - hours(30);
    let report = guard.event(
        &estate,
        old,
        "report",
        report_fields("general", "fire", "Old one"),
        Some(at),
    );
    let (photo, _) = guard.photo(&estate, report.id, "before", Some(at));
    accepted(&guard.push(app, vec![&report, &photo]).await[0]);
    let old = old.to_string();

    let fresh = id_of(&report_ok(app, &guard.s, "general", "fire", "Fresh").await);
    let major = id_of(&report_ok(app, &guard.s, "major", "structure", "Major one").await);
    event_ok(
        app,
        &supervisor,
        &major,
        json!({ "action": "assign", "assignee": engineer2.user_id }),
    )
    .await;
    let water = id_of(&report_ok(app, &guard.s, "general", "water", "Water one").await);
    event_ok(
        app,
        &supervisor,
        &water,
        json!({ "action": "assign", "assignee": engineer1.user_id,
                "due_at": rfc3339(Utc::now() + hours(5)) }),
    )
    .await;
    let gone = id_of(&report_ok(app, &guard.s, "general", "fire", "Cancelled one").await);
    event_ok(
        app,
        &supervisor,
        &gone,
        json!({ "action": "cancel", "reason": "Not a hazard" }),
    )
    .await;
    let all = [&old, &fresh, &major, &water, &gone];

    let q = |extra: &str| format!("estate_id={estate}{extra}");
    let mine = |page: &Value| {
        let all: HashSet<String> = id_set(&all);
        ids(page)
            .into_iter()
            .filter(|id| all.contains(id))
            .collect::<HashSet<_>>()
    };
    // Other tickets (the demo seed's) may be listed too: every one listed must match the
    // filter, and of this test's tickets exactly the expected ones are listed.
    let state_is = |s: &'static str| move |t: &Value| t["state"] == s;
    let e1 = engineer1.user_id.clone();
    let from = rfc3339(Utc::now() - hours(1));
    let from_ms = ms(&json!(from));
    let checks: Vec<(String, Vec<&String>, Matcher)> = vec![
        ("".into(), all.to_vec(), Box::new(|_: &Value| true)),
        (
            "&state=reported".into(),
            vec![&old, &fresh],
            Box::new(state_is("reported")),
        ),
        (
            "&state=cancelled".into(),
            vec![&gone],
            Box::new(state_is("cancelled")),
        ),
        (
            "&state=assigned".into(),
            vec![&major, &water],
            Box::new(state_is("assigned")),
        ),
        (
            "&grade=major".into(),
            vec![&major],
            Box::new(|t: &Value| t["grade"] == "major"),
        ),
        (
            "&grade=general".into(),
            vec![&old, &fresh, &water, &gone],
            Box::new(|t: &Value| t["grade"] == "general"),
        ),
        (
            "&overdue=true".into(),
            vec![&old],
            Box::new(|t: &Value| t["overdue"] == true),
        ),
        (
            "&overdue=false".into(),
            vec![&fresh, &major, &water, &gone],
            Box::new(|t: &Value| t["overdue"] == false),
        ),
        (
            "&category=water".into(),
            vec![&water],
            Box::new(|t: &Value| t["category"] == "water"),
        ),
        (
            format!("&assignee={e1}"),
            vec![&water],
            Box::new(move |t: &Value| t["assignee"] == e1.as_str()),
        ),
        (
            format!("&from={from}"),
            vec![&fresh, &major, &water, &gone],
            Box::new(move |t: &Value| ms(&t["reported_at"]) >= from_ms),
        ),
        (
            format!("&to={from}"),
            vec![&old],
            Box::new(move |t: &Value| ms(&t["reported_at"]) < from_ms),
        ),
        (
            "&state=reported&grade=general&overdue=false".into(),
            vec![&fresh],
            Box::new(|t: &Value| {
                t["state"] == "reported" && t["grade"] == "general" && t["overdue"] == false
            }),
        ),
    ];
    for (filter, expected, matches) in &checks {
        let page = list(app, &manager, &q(filter)).await;
        assert!(page["next_before"].is_null(), "{filter}: {page}");
        for t in page["hazards"].as_array().unwrap() {
            assert!(matches(t), "{filter:?} listed {t:#}");
            assert_eq!(t["estate_id"], estate);
        }
        assert_eq!(mine(&page), id_set(expected), "{filter:?}: {page:#}");
    }
    for bad in [
        "&state=open",
        "&grade=minor",
        "&overdue=maybe",
        "&limit=0",
        "&from=yesterday",
        "&before=nope",
    ] {
        let resp = get(app, &manager, &format!("/v1/hazards?{}", q(bad))).await;
        assert_problem(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
        )
        .await;
    }

    // Paging: newest report first, every ticket once, the same as one big page.
    let unpaged = page_all_fields(&list(app, &manager, &q("&limit=1000")).await);
    let mut seen: Vec<Value> = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..1000 {
        let extra = match &before {
            Some(b) => format!("&limit=2&before={b}"),
            None => "&limit=2".into(),
        };
        let page = list(app, &manager, &q(&extra)).await;
        let n = page["hazards"].as_array().unwrap().len();
        assert!(n <= 2, "{page}");
        seen.extend(page["hazards"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_str() {
            Some(b) => {
                assert_eq!(n, 2, "a full page before the end: {page}");
                before = Some(b.to_owned());
            }
            None => break,
        }
    }
    let seen_ids: Vec<String> = seen.iter().map(id_of).collect();
    let unique: HashSet<&String> = seen_ids.iter().collect();
    assert_eq!(
        unique.len(),
        seen_ids.len(),
        "no ticket twice: {seen_ids:?}"
    );
    assert!(id_set(&all).is_subset(&seen_ids.iter().cloned().collect()));
    let times: Vec<i64> = seen.iter().map(|t| ms(&t["reported_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let pos = |id: &String| seen_ids.iter().position(|x| x == id).unwrap();
    for id in [&fresh, &major, &water, &gone] {
        assert!(
            pos(id) < pos(&old),
            "the 30 h old report comes after the fresh ones"
        );
    }
    assert_eq!(seen, unpaged, "paged reads add up to the whole list");

    // CSV: a header row and one row per ticket.
    let resp = get(app, &manager, &format!("/v1/hazards.csv?{}", q(""))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/csv"), "{ct}");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "code,id,estate_id,state,grade,category,title,reporter,reported_at,assignee,due_at,overdue,closed_at,reopen_count"
    );
    assert_eq!(lines.len(), 1 + unpaged.len(), "{csv}");
    for t in &unpaged {
        let row = lines
            .iter()
            .find(|l| l.contains(t["id"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no row for {t}: {csv}"));
        assert!(row.starts_with(t["code"].as_str().unwrap()), "{row}");
        assert!(
            row.contains(&format!(",{},", t["state"].as_str().unwrap())),
            "{row}"
        );
    }
    let old_row = lines.iter().find(|l| l.contains(old.as_str())).unwrap();
    assert!(old_row.contains(",true,"), "overdue column: {old_row}");

    // The same export through content negotiation, and with the same filters.
    for filter in ["", "&state=reported", "&grade=major&limit=1"] {
        let by_path = get(app, &manager, &format!("/v1/hazards.csv?{}", q(filter)))
            .await
            .text()
            .await
            .unwrap();
        let resp = app
            .client
            .get(app.url(&format!("/v1/hazards?{}", q(filter))))
            .bearer_auth(&manager.access)
            .header(ACCEPT, "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/csv"), "{ct}");
        assert_eq!(resp.text().await.unwrap(), by_path, "filter {filter:?}");
    }
    let reported = get(
        app,
        &manager,
        &format!("/v1/hazards.csv?{}", q("&state=reported")),
    )
    .await
    .text()
    .await
    .unwrap();
    let reported_n = list(app, &manager, &q("&state=reported&limit=1000")).await["hazards"]
        .as_array()
        .unwrap()
        .len();
    assert!(reported_n >= 2);
    assert_eq!(reported.lines().count(), 1 + reported_n, "{reported}");
    assert!(reported.contains(old.as_str()) && reported.contains(fresh.as_str()));
    assert!(!reported.contains(major.as_str()) && !reported.contains(gone.as_str()));
    // A guard's export holds only what they may see: their own reports.
    let guard2 = app.login_new_device("guard2").await;
    let theirs = list(app, &guard2, "limit=1000").await;
    let csv = get(app, &guard2, "/v1/hazards.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + theirs["hazards"].as_array().unwrap().len(),
        "{csv}"
    );
    for row in csv.lines().skip(1) {
        assert!(row.contains(guard2.user_id.as_str()), "not guard2's: {row}");
        for id in &all {
            assert!(
                !row.contains(id.as_str()),
                "guard1's ticket in guard2's export: {row}"
            );
        }
    }
}

/// Whether a listed ticket matches a filter.
type Matcher = Box<dyn Fn(&Value) -> bool>;

/// A page's tickets (for comparing paged and unpaged reads).
fn page_all_fields(page: &Value) -> Vec<Value> {
    page["hazards"].as_array().unwrap().clone()
}

on_both_backends!(
    the_list_filters_pages_and_exports_sqlite,
    the_list_filters_pages_and_exports_postgres,
    the_list_filters_pages_and_exports
);

// ---------------------------------------------------------------- 6. statistics

/// Closes a ticket the regular way, all online; returns the closed ticket.
async fn close_online(
    app: &TestApp,
    supervisor: &Session,
    engineer: &Session,
    hazard: &str,
) -> Value {
    event_ok(
        app,
        supervisor,
        hazard,
        json!({ "action": "assign", "assignee": engineer.user_id }),
    )
    .await;
    fix_online(app, engineer, hazard).await;
    let t = event_ok(
        app,
        supervisor,
        hazard,
        json!({ "action": "verify_pass", "photos": [{ "sha256": sha(), "role": "verification" }] }),
    )
    .await;
    assert_eq!(t["state"], "closed", "{t:#}");
    t
}

async fn fix_online(app: &TestApp, engineer: &Session, hazard: &str) {
    event_ok(app, engineer, hazard, json!({ "action": "start" })).await;
    event_ok(
        app,
        engineer,
        hazard,
        json!({ "action": "submit_fix", "photos": [{ "sha256": sha(), "role": "after" }] }),
    )
    .await;
}

async fn statistics_add_up(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let supervisor = app.login_new_device("supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let engineer = app.login_new_device("engineer1").await;
    let estate = guard.s.estate(ESTATE_1);
    let path = format!("/v1/estates/{estate}/hazard-stats");
    // What the estate held before (the demo seed has tickets): the numbers below are this
    // test's tickets added to it.
    let st0 = json_ok(get(app, &manager, &path).await).await;
    let n0 = |k: &str| {
        st0[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} is a count: {st0:#}"))
    };
    let (total0, closed0, cancelled0) = (n0("total"), n0("closed"), n0("cancelled"));
    let counted0 = total0 - cancelled0;
    let rate0 = |k: &str| st0[k].as_f64().unwrap_or(0.0);
    let on_time0 = (rate0("on_time_rate") * closed0 as f64).round();
    let reopened0 = (rate0("reopen_rate") * counted0 as f64).round();
    let hours0 = rate0("mean_hours_to_close") * closed0 as f64;
    let mut offline_report = |hours_ago: i64, title: &str| {
        let hazard = Uuid::now_v7();
        let at = Utc::now() - hours(hours_ago);
        let r = guard.event(
            &estate,
            hazard,
            "report",
            report_fields("general", "fire", title),
            Some(at),
        );
        let (p, _) = guard.photo(&estate, r.id, "before", Some(at));
        (hazard.to_string(), r, p)
    };
    // Reported 30 h ago, closed now: late. Reported 25 h ago, still open: overdue.
    let (late, r6, p6) = offline_report(30, "Closed late");
    let (overdue, r5, p5) = offline_report(25, "Overdue");
    for r in guard.push(app, vec![&r6, &p6, &r5, &p5]).await {
        accepted(&r);
    }

    let started = Utc::now();
    let on_time1 = id_of(&report_ok(app, &guard.s, "general", "fire", "On time 1").await);
    let on_time2 = id_of(&report_ok(app, &guard.s, "general", "water", "On time 2").await);
    let cancelled = id_of(&report_ok(app, &guard.s, "general", "fire", "Cancelled").await);
    let failed = id_of(&report_ok(app, &guard.s, "general", "fire", "Failed once").await);
    let major = id_of(&report_ok(app, &guard.s, "major", "structure", "Open major").await);

    let mut closed = Vec::new();
    for h in [&on_time1, &on_time2, &late] {
        closed.push(close_online(app, &supervisor, &engineer, h).await);
    }
    event_ok(
        app,
        &supervisor,
        &cancelled,
        json!({ "action": "cancel", "reason": "Duplicate" }),
    )
    .await;
    event_ok(
        app,
        &supervisor,
        &failed,
        json!({ "action": "assign", "assignee": engineer.user_id }),
    )
    .await;
    fix_online(app, &engineer, &failed).await;
    let t = event_ok(
        app,
        &supervisor,
        &failed,
        json!({ "action": "verify_fail", "reason": "Still leaking" }),
    )
    .await;
    assert_eq!(t["state"], "in_rectification");
    assert_eq!(t["reopen_count"], 1);
    assert_eq!(ticket(app, &manager, &overdue).await["overdue"], true);
    assert_eq!(ticket(app, &manager, &major).await["overdue"], false);

    let st = json_ok(get(app, &manager, &path).await).await;
    let n = |k: &str| {
        st[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} is a count: {st:#}"))
    };
    for (k, added) in [
        ("total", 7),
        ("open", 3),
        ("open_general", 2),
        ("open_major", 1),
        ("overdue", 1),
        ("closed", 3),
        ("cancelled", 1),
    ] {
        assert_eq!(n(k), n0(k) + added, "{k}: before {st0:#}, after {st:#}");
    }
    let f = |st: &Value, k: &str| {
        st[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is a number: {st:#}"))
    };
    let closed_n = (closed0 + 3) as f64;
    let counted = (counted0 + 6) as f64;
    assert!(
        close(f(&st, "rectification_rate"), closed_n / counted),
        "{st:#}"
    );
    assert!(
        close(f(&st, "on_time_rate"), (on_time0 + 2.0) / closed_n),
        "{st:#}"
    );
    assert!(
        close(f(&st, "reopen_rate"), (reopened0 + 1.0) / counted),
        "{st:#}"
    );
    let hours_to_close: Vec<f64> = closed
        .iter()
        .map(|t| (ms(&t["closed_at"]) - ms(&t["reported_at"])) as f64 / 3_600_000.0)
        .collect();
    assert!(
        hours_to_close[2] > 29.9,
        "the late one took 30 h: {hours_to_close:?}"
    );
    let mean = (hours0 + hours_to_close.iter().sum::<f64>()) / closed_n;
    assert!(close(f(&st, "mean_hours_to_close"), mean), "{mean}: {st:#}");

    // Only this test's online reports: reported since it started.
    let from = rfc3339(started);
    let st = json_ok(get(app, &supervisor, &format!("{path}?from={from}")).await).await;
    assert_eq!(st["total"], 5, "{st:#}");
    assert_eq!(st["open"], 2, "{st:#}");
    assert_eq!(st["open_general"], 1, "{st:#}");
    assert_eq!(st["open_major"], 1, "{st:#}");
    assert_eq!(st["closed"], 2, "{st:#}");
    assert_eq!(st["cancelled"], 1, "{st:#}");
    assert_eq!(st["overdue"], 0, "{st:#}");
    assert!(close(f(&st, "rectification_rate"), 2.0 / 4.0), "{st:#}");
    assert!(close(f(&st, "on_time_rate"), 1.0), "{st:#}");
    assert!(close(f(&st, "reopen_rate"), 1.0 / 4.0), "{st:#}");
    let (a, b) = (hours_to_close[0], hours_to_close[1]);
    assert!(
        close(f(&st, "mean_hours_to_close"), (a + b) / 2.0),
        "{st:#}"
    );
    assert!(close(f(&st, "p90_hours_to_close"), a.max(b)), "{st:#}");

    // An empty period: nothing to divide by.
    let st = json_ok(
        get(
            app,
            &manager,
            &format!("{path}?from={}", rfc3339(Utc::now() + hours(1))),
        )
        .await,
    )
    .await;
    assert_eq!(st["total"], 0, "{st:#}");
    assert!(st["rectification_rate"].is_null(), "{st:#}");
    assert!(st["mean_hours_to_close"].is_null(), "{st:#}");
    let resp = get(
        app,
        &manager,
        &format!(
            "{path}?from={}&to={}",
            rfc3339(Utc::now()),
            rfc3339(started)
        ),
    )
    .await;
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;

    // Overseers only; another estate is 404.
    let resp = get(app, &guard.s, &path).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    let guard3 = app.login_new_device("guard3").await;
    let resp = get(app, &guard3, &path).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
}

on_both_backends!(
    statistics_add_up_sqlite,
    statistics_add_up_postgres,
    statistics_add_up
);

// ---------------------------------------------------------------- 7. policy and alerts

async fn overdue_tickets_escalate_into_alerts_closed_with_a_comment(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let mut supervisor = Handset::new(app, "supervisor1").await;
    let manager = app.login_new_device("manager1").await;
    let engineer = app.login_new_device("engineer1").await;
    let engineer2 = app.login_new_device("engineer2").await;
    let estate = guard.s.estate(ESTATE_1);
    let policy_path = format!("/v1/estates/{estate}/hazard-policy");

    // The policy: general hazards due in 1 h; assignee at half time, supervisor at the
    // deadline, manager at twice the time.
    let default = json_ok(get(app, &guard.s, &policy_path).await).await;
    assert_eq!(default["general_due_hours"], 24, "{default}");
    assert_eq!(default["major_due_hours"], 168, "{default}");
    assert_eq!(default["require_before_photo"], true, "{default}");
    let policy = json!({
        "general_due_hours": 1,
        "major_due_hours": 48,
        "require_before_photo": true,
        "escalation": [
            { "at_percent": 50, "to": "assignee" },
            { "at_percent": 100, "to": "supervisor" },
            { "at_percent": 200, "to": "manager" },
        ],
    });
    let put = |who: &Session, body: &Value| {
        app.client
            .put(app.url(&policy_path))
            .bearer_auth(&who.access)
            .json(body)
            .send()
    };
    let resp = put(&supervisor.s, &policy).await.unwrap();
    assert_problem(resp, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    let mut bad = policy.clone();
    bad["general_due_hours"] = json!(0);
    let resp = put(&manager, &bad).await.unwrap();
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_eq!(json_ok(put(&manager, &policy).await.unwrap()).await, policy);
    assert_eq!(
        json_ok(get(app, &engineer, &policy_path).await).await,
        policy
    );

    // Reported offline 3 h ago, assigned a minute later: due 2 h ago.
    let hazard = Uuid::now_v7();
    let h = hazard.to_string();
    let at = Utc::now() - hours(3);
    let report = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("general", "fire", "Sprinkler valve shut"),
        Some(at),
    );
    let (photo, _) = guard.photo(&estate, report.id, "before", Some(at));
    accepted(&guard.push(app, vec![&report, &photo]).await[0]);
    let assign = supervisor.event(
        &estate,
        hazard,
        "assign",
        json!({ "assignee": engineer.user_id }),
        Some(at + Duration::minutes(1)),
    );
    accepted(&supervisor.push(app, vec![&assign]).await[0]);
    let t = ticket(app, &manager, &h).await;
    assert_eq!(t["state"], "assigned", "{t:#}");
    assert_eq!(t["overdue"], true, "{t:#}");
    assert_eq!(ms(&t["due_at"]), ms(&t["reported_at"]) + 3_600_000, "{t:#}");
    let code = t["code"].clone();
    assert!(
        ids(&list(app, &manager, &format!("estate_id={estate}&overdue=true")).await).contains(&h)
    );
    let cursor = app.pull_all(&supervisor.s, None).await.cursor;

    // The sweep, twice: the second raises nothing new.
    let now = chrono::Utc::now().timestamp_millis();
    sync_server::services::hazards::escalate(&s.state.store, &s.state.hub, now)
        .await
        .expect("the sweep runs");
    sync_server::services::hazards::escalate(&s.state.store, &s.state.hub, now + 1000)
        .await
        .expect("the sweep runs again");

    let alerts_path = format!("/v1/estates/{estate}/alerts");
    let listed = json_ok(get(app, &supervisor.s, &alerts_path).await).await;
    // (The demo seed's overdue tickets may have alerts of their own.)
    let alerts = about(&listed, &h);
    assert_eq!(alerts.len(), 3, "{listed:#}");
    let mut targets: Vec<&str> = alerts
        .iter()
        .map(|a| a["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(targets, ["assignee", "manager", "supervisor"]);
    for a in &alerts {
        assert_eq!(a["kind"], "hazard_escalation", "{a}");
        assert_eq!(a["subject_id"], h, "{a}");
        assert_eq!(a["estate_id"], estate, "{a}");
        assert_eq!(a["data"]["code"], code, "{a}");
        assert!(a["closed_at"].is_null(), "{a}");
    }
    let to_engineer = alerts.iter().find(|a| a["target"] == "assignee").unwrap();
    assert_eq!(to_engineer["recipient_id"], engineer.user_id);

    // The engineer sees the one addressed to them; another engineer and the guard none.
    let mine = json_ok(get(app, &engineer, &alerts_path).await).await;
    for a in mine["alerts"].as_array().unwrap() {
        assert_eq!(
            a["recipient_id"],
            engineer.user_id.as_str(),
            "only theirs: {a}"
        );
    }
    let mine = about(&mine, &h);
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0]["id"], to_engineer["id"]);
    for who in [&engineer2, &guard.s] {
        let theirs = json_ok(get(app, who, &alerts_path).await).await;
        for a in theirs["alerts"].as_array().unwrap() {
            assert_eq!(a["recipient_id"], who.user_id.as_str(), "only theirs: {a}");
        }
    }
    // Alerts reach the supervisor's handset through pull.
    let pulled = app.pull_all(&supervisor.s, Some(&cursor)).await;
    let pulled_alerts: HashSet<String> = pulled
        .changes
        .iter()
        .filter(|c| c["collection"] == "alerts" && c["op"] == "put")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    for a in &alerts {
        assert!(
            pulled_alerts.contains(a["id"].as_str().unwrap()),
            "alert {} not pulled: {:#?}",
            a["id"],
            pulled.changes
        );
    }

    // Closing: only with a comment, only once.
    let alert = alerts.iter().find(|a| a["target"] == "supervisor").unwrap();
    let close_path = format!("/v1/alerts/{}/close", alert["id"].as_str().unwrap());
    let close_with = |body: Value| {
        app.client
            .post(app.url(&close_path))
            .bearer_auth(&supervisor.s.access)
            .json(&body)
            .send()
    };
    let resp = close_with(json!({})).await.unwrap();
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    let resp = close_with(json!({ "comment": "   " })).await.unwrap();
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    let closed = json_ok(
        close_with(json!({ "comment": "Valve reopened, contractor called" }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(closed["id"], alert["id"]);
    assert_eq!(closed["close_comment"], "Valve reopened, contractor called");
    assert_eq!(closed["closed_by"], supervisor.user());
    assert!(closed["closed_at"].is_string(), "{closed}");
    let resp = close_with(json!({ "comment": "again" })).await.unwrap();
    assert_problem(resp, StatusCode::CONFLICT, "/problems/alert-closed").await;
    let resp = app
        .client
        .post(app.url(&format!("/v1/alerts/{}/close", Uuid::now_v7())))
        .bearer_auth(&supervisor.s.access)
        .json(&json!({ "comment": "x" }))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;

    let open = json_ok(get(app, &manager, &format!("{alerts_path}?open=true")).await).await;
    assert_eq!(about(&open, &h).len(), 2, "{open:#}");
    for a in open["alerts"].as_array().unwrap() {
        assert!(a["closed_at"].is_null(), "{a}");
    }
    let everything = json_ok(get(app, &manager, &alerts_path).await).await;
    assert_eq!(about(&everything, &h).len(), 3, "{everything:#}");
}

/// The alerts of a list about one hazard.
fn about(list: &Value, hazard: &str) -> Vec<Value> {
    list["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("alerts: {list}"))
        .iter()
        .filter(|a| a["subject_id"] == hazard)
        .cloned()
        .collect()
}

on_both_backends!(
    overdue_tickets_escalate_into_alerts_closed_with_a_comment_sqlite,
    overdue_tickets_escalate_into_alerts_closed_with_a_comment_postgres,
    overdue_tickets_escalate_into_alerts_closed_with_a_comment,
    |c: &mut Config| c.escalation_interval_secs = 3600
);

/// The server runs the sweep by itself every `escalation_interval_secs`.
#[tokio::test]
async fn the_escalation_sweep_runs_by_itself() {
    let s = TestApp::spawn_with(|c: &mut Config| c.escalation_interval_secs = 1).await;
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.s.estate(ESTATE_1);
    // Default policy (24 h): reported 40 h ago, unassigned, so the supervisor (100 %) and
    // manager (150 %) steps are due.
    let hazard = Uuid::now_v7();
    let at = Utc::now() - hours(40);
    let report = guard.event(
        &estate,
        hazard,
        "report",
        report_fields("general", "fire", "Old and forgotten"),
        Some(at),
    );
    let (photo, _) = guard.photo(&estate, report.id, "before", Some(at));
    accepted(&guard.push(app, vec![&report, &photo]).await[0]);

    let path = format!("/v1/estates/{estate}/alerts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let listed = json_ok(get(app, &manager, &path).await).await;
        let mine = about(&listed, &hazard.to_string());
        let n = mine.len();
        if n == 2 {
            let mut targets: Vec<&str> =
                mine.iter().map(|a| a["target"].as_str().unwrap()).collect();
            targets.sort();
            assert_eq!(targets, ["manager", "supervisor"]);
            break;
        }
        assert!(n < 2, "{listed:#}");
        assert!(
            std::time::Instant::now() < deadline,
            "no escalation alerts within 15 s: {listed:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Another estate's ids answer 404 across the hazard endpoints.
#[tokio::test]
async fn another_estates_hazard_endpoints_answer_404() {
    let app = TestApp::spawn().await;
    let guard1 = app.login_new_device("guard1").await;
    let guard3 = app.login_new_device("guard3").await;
    let estate1 = guard1.estate(ESTATE_1);
    let estate2 = guard3.estate(ESTATE_2);
    let t = report_ok(&app, &guard1, "general", "fire", "Estate one's").await;
    let h = id_of(&t);
    for path in [
        format!("/v1/hazards/{h}"),
        format!("/v1/hazards/{h}/notice"),
        format!("/v1/estates/{estate1}/hazard-stats"),
        format!("/v1/estates/{estate1}/hazard-policy"),
        format!("/v1/estates/{estate1}/hazard-events/held"),
        format!("/v1/estates/{estate1}/alerts"),
        format!("/v1/hazards.csv?estate_id={estate1}"),
    ] {
        let resp = get(&app, &guard3, &path).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
    // Reporting into an estate one does not belong to.
    let mut body = report_fields("general", "fire", "Not mine");
    body["estate_id"] = json!(estate1);
    body["photos"] = json!([{ "sha256": sha(), "role": "before" }]);
    let resp = report_online(&app, &guard3, &body).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    // guard3's own estate answers.
    let resp = get(
        &app,
        &guard3,
        &format!("/v1/estates/{estate2}/hazard-policy"),
    )
    .await;
    json_ok(resp).await;
}

// ---------------------------------------------------------------- evidence, codes, reach

/// A report needs a `before` photo where the estate's policy says so (the default): online
/// 422 `evidence-required`, through push `rejected` with `evidence_required`; no ticket
/// either way. With the requirement off, the same report is taken.
async fn a_report_needs_its_before_photo(s: &StatefulApp) {
    let app = &s.app;
    let mut guard = Handset::new(app, "guard1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.s.estate(ESTATE_1);

    let hazard = Uuid::now_v7();
    let mut body = report_fields("general", "fire", "No photo");
    body["estate_id"] = json!(estate);
    body["hazard_id"] = json!(hazard);
    let resp = report_online(app, &guard.s, &body).await;
    let p = assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/evidence-required",
    )
    .await;
    assert_eq!(p["code"], "evidence_required", "{p}");
    let resp = get(app, &manager, &format!("/v1/hazards/{hazard}")).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;

    let pushed = Uuid::now_v7();
    let report = guard.event(
        &estate,
        pushed,
        "report",
        report_fields("general", "fire", "No photo either"),
        None,
    );
    let r = guard.push(app, vec![&report]).await;
    rejected_with(&r[0], "evidence_required");

    // An estate that does not ask for the photo.
    let resp = app
        .client
        .put(app.url(&format!("/v1/estates/{estate}/hazard-policy")))
        .bearer_auth(&manager.access)
        .json(&json!({ "require_before_photo": false }))
        .send()
        .await
        .unwrap();
    let policy = json_ok(resp).await;
    assert_eq!(policy["require_before_photo"], false, "{policy}");
    assert_eq!(
        policy["general_due_hours"], 24,
        "absent fields take defaults: {policy}"
    );
    body["hazard_id"] = json!(Uuid::now_v7());
    let t = json_status(
        report_online(app, &guard.s, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(t["state"], "reported");
}

on_both_backends!(
    a_report_needs_its_before_photo_sqlite,
    a_report_needs_its_before_photo_postgres,
    a_report_needs_its_before_photo
);

/// Codes are numbered per estate and day (`YH-YYYYMMDD-NNNN`); a second estate reporting on
/// the same day gets its own codes, online and through push, and a push batch is never
/// failed by a ticket's code.
async fn each_estate_numbers_its_own_tickets(s: &StatefulApp) {
    let app = &s.app;
    let guard1 = app.login_new_device("guard1").await;
    let mut guard3 = Handset::new(app, "guard3").await;
    let estate2 = guard3.s.estate(ESTATE_2);

    let first = report_ok(app, &guard1, "general", "fire", "Estate one, first").await;
    let second = report_ok(app, &guard1, "general", "fire", "Estate one, second").await;
    let c1 = first["code"].as_str().unwrap().to_owned();
    let c2 = second["code"].as_str().unwrap().to_owned();
    assert!(is_ticket_code(&c1) && is_ticket_code(&c2), "{c1} {c2}");
    assert_eq!(&c1[..12], &c2[..12], "same day");
    assert_eq!(
        c2[12..].parse::<u32>().unwrap(),
        c1[12..].parse::<u32>().unwrap() + 1,
        "numbered in order: {c1} {c2}"
    );

    // Estate two, online.
    let mut body = report_fields("general", "fire", "Estate two, online");
    body["estate_id"] = json!(estate2);
    body["photos"] = json!([{ "sha256": sha(), "role": "before" }]);
    let t = json_status(
        report_online(app, &guard3.s, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(t["estate_id"], estate2);
    let e2_online = t["code"].as_str().unwrap().to_owned();
    assert!(is_ticket_code(&e2_online), "{e2_online}");

    // Estate two, through push, beside a scan.
    let hazard = Uuid::now_v7();
    let report = guard3.event(
        &estate2,
        hazard,
        "report",
        report_fields("general", "fire", "Estate two, pushed"),
        None,
    );
    let (photo, _) = guard3.photo(&estate2, report.id, "before", None);
    let scan = crate::helpers::Scan::new(&estate2, 1000);
    let body = batch(
        guard3.s.device_id,
        vec![report.json.clone(), photo.json.clone(), scan.json()],
    );
    let answer = json_ok(app.push(&guard3.s, &body).await).await;
    for r in results(&answer, 3) {
        accepted(&r);
    }
    let t = ticket(app, &guard3.s, &hazard.to_string()).await;
    let e2_pushed = t["code"].as_str().unwrap().to_owned();
    assert!(is_ticket_code(&e2_pushed), "{e2_pushed}");
    assert_ne!(e2_online, e2_pushed);
}

on_both_backends!(
    each_estate_numbers_its_own_tickets_sqlite,
    each_estate_numbers_its_own_tickets_postgres,
    each_estate_numbers_its_own_tickets
);

/// A guard who may not read a ticket (another guard's report) does not get it through the
/// event endpoint either: 404 as on `GET`, and nothing stored.
async fn a_ticket_one_may_not_see_is_404_for_events_too(s: &StatefulApp) {
    let app = &s.app;
    let guard1 = app.login_new_device("guard1").await;
    let guard2 = app.login_new_device("guard2").await;
    let manager = app.login_new_device("manager1").await;
    let a = id_of(&report_ok(app, &guard1, "general", "fire", "Guard 1's own").await);
    let before = ticket(app, &manager, &a).await;
    let resp = get(app, &guard2, &format!("/v1/hazards/{a}")).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let resp = post_event(
        app,
        &guard2,
        &a,
        &json!({ "action": "comment", "text": "what is this?" }),
    )
    .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "/problems/not-found").await;
    assert_eq!(ticket(app, &manager, &a).await, before, "nothing stored");
}

on_both_backends!(
    a_ticket_one_may_not_see_is_404_for_events_too_sqlite,
    a_ticket_one_may_not_see_is_404_for_events_too_postgres,
    a_ticket_one_may_not_see_is_404_for_events_too
);

/// `zone=` lists the tickets located in the zone: named directly, or at one of its
/// checkpoints; the CSV export takes the same filter.
#[tokio::test]
async fn the_tracker_list_filters_by_zone() {
    let s = TestApp::spawn_full_demo().await;
    let app = &s.app;
    let guard = app.login_new_device("guard1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = manager.estate(ESTATE_1);
    let cps = json_ok(
        app.client
            .get(app.url(&format!("/v1/estates/{estate}/checkpoints")))
            .bearer_auth(&manager.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cps = cps["items"]
        .as_array()
        .or(cps.as_array())
        .cloned()
        .unwrap_or_default();
    let cp = cps
        .iter()
        .find(|c| c["zone_id"].is_string())
        .expect("a checkpoint in a zone");
    let zone = cp["zone_id"].as_str().unwrap().to_owned();
    let other_zone = cps
        .iter()
        .filter_map(|c| c["zone_id"].as_str())
        .find(|z| *z != zone)
        .expect("another zone")
        .to_owned();
    let mut at_cp = report_fields("general", "fire", "At the checkpoint");
    at_cp["location"] = json!({ "checkpoint_id": cp["id"] });
    let mut in_zone = report_fields("general", "fire", "In the zone");
    in_zone["location"] = json!({ "zone_id": zone });
    let mut ids = Vec::new();
    for mut body in [at_cp, in_zone] {
        body["estate_id"] = json!(estate);
        body["photos"] = json!([{ "sha256": sha(), "role": "before" }]);
        let t = json_status(report_online(app, &guard, &body).await, StatusCode::CREATED).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let listed = |query: String| {
        let c = app.client.clone();
        let url = app.url(&format!("/v1/hazards?estate_id={estate}&{query}"));
        let token = manager.access.clone();
        async move {
            let page = json_ok(c.get(url).bearer_auth(token).send().await.unwrap()).await;
            let mut v: Vec<String> = page["hazards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        }
    };
    let mut both = ids.clone();
    both.sort();
    assert_eq!(listed(format!("zone={zone}")).await, both);
    assert!(listed(format!("zone={other_zone}"))
        .await
        .iter()
        .all(|id| !ids.contains(id)));
    let csv = app
        .client
        .get(app.url(&format!("/v1/hazards.csv?estate_id={estate}&zone={zone}")))
        .bearer_auth(&manager.access)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv.lines().count(),
        3,
        "a header and the two tickets: {csv}"
    );
    let bad = app
        .client
        .get(app.url("/v1/hazards?zone=nope"))
        .bearer_auth(&manager.access)
        .send()
        .await
        .unwrap();
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
}
