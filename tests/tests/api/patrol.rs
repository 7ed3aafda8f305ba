//! Patrol plans and coverage (DESIGN §6, issue 3): reference data imported and managed over
//! the API and carried by pull; a night of scans pushed days late; coverage, slots, the heat
//! map and runs; missed-visit alerts closed with a comment; excuses and rule changes
//! recomputing the past. The main story runs on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL.

use crate::helpers::{
    assert_problem, hlc_at, json_ok, json_status, rfc3339, Session, StatefulApp, TestApp, ESTATE_1,
    ESTATE_2,
};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use reqwest::header::ACCEPT;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sync_server::cli::ImportKind;
use sync_server::config::Config;
use uuid::Uuid;

macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $story:path) => {
        #[tokio::test]
        async fn $sqlite() {
            let s = TestApp::spawn_with(|_: &mut Config| {}).await;
            $story(&s).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(s) =
                TestApp::spawn_postgres_with(stringify!($postgres), |_: &mut Config| {}).await
            else {
                return;
            };
            $story(&s).await;
        }
    };
}

const SHANGHAI: chrono::FixedOffset = match chrono::FixedOffset::east_opt(8 * 3600) {
    Some(z) => z,
    None => panic!("UTC+8"),
};

/// Local (Asia/Shanghai, no DST) date and time as UTC.
fn local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    SHANGHAI
        .from_local_datetime(&date.and_hms_opt(h, m, 0).expect("a time"))
        .single()
        .expect("one instant")
        .with_timezone(&Utc)
}

/// The night under test: local date three days ago, 22:00 to 06:00 the next morning.
fn night() -> NaiveDate {
    Utc::now().with_timezone(&SHANGHAI).date_naive() - Duration::days(3)
}

const CHECKPOINTS_CSV: &str = "code,name,class,zone,lat,lng,radius_m,floor,instructions,nfc\n\
CP-1,B1 消防通道,key,B1,22.5431,114.0579,30,B1,推门检查,04:aa:bb:01\n\
CP-2,水泵房,key,B1,22.5440,114.0579,30,B1,\"查看水压, 记录读数\",04-AA-BB-02\n\
CP-3,会所大堂,general,会所,22.5450,114.0590,30,1F,,04AABB03\n";

struct Guard {
    s: Session,
    seq: u64,
}

impl Guard {
    /// A scan of `tag` that really happened at `at`, pushed now: `age_ms` says how long ago.
    fn scan(&mut self, estate: &str, tag: &str, at: DateTime<Utc>, lat: f64, lng: f64) -> Value {
        self.seq += 1;
        let now = Utc::now();
        json!({
            "kind": "scan", "id": Uuid::now_v7(), "seq": self.seq,
            "hlc": hlc_at(at.timestamp_millis(), 0),
            "recorded_at": rfc3339(at),
            "age_ms": (now - at).num_milliseconds(),
            "data": { "estate_id": estate, "tag": tag, "method": "nfc",
                      "location": { "lat": lat, "lng": lng, "accuracy_m": 8, "mock": false } }
        })
    }
}

async fn get(app: &TestApp, s: &Session, path: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(&s.access)
        .send()
        .await
        .expect("request")
}

async fn send(app: &TestApp, s: &Session, method: &str, path: &str, body: Value) -> Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    app.client
        .request(m, app.url(path))
        .bearer_auth(&s.access)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn import_csv(
    s: &StatefulApp,
    what: ImportKind,
    csv: &str,
    estate: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("import.csv");
    std::fs::write(&path, csv).expect("write the CSV");
    sync_server::import::run(&s.state.store, what, &path, estate, dry_run).await
}

async fn items(app: &TestApp, s: &Session, estate: &str, collection: &str) -> Vec<Value> {
    let v = json_ok(get(app, s, &format!("/v1/estates/{estate}/{collection}")).await).await;
    v["items"].as_array().expect("items").clone()
}

fn by_code<'a>(items: &'a [Value], code: &str) -> &'a Value {
    items
        .iter()
        .find(|c| c["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {items:?}"))
}

/// Import checkpoints, add an hourly key rule for 22:00–06:00, push a night of scans three
/// days late, and read coverage, slots, heat map; sweep for missed visits, close an alert,
/// excuse a slot, change the rule: every figure follows from the same scans.
async fn a_night_of_patrol(s: &StatefulApp) {
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);

    // Reference data: a dry run writes nothing, then the real import.
    import_csv(s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, true)
        .await
        .expect("dry run");
    assert!(items(app, &admin, &estate, "checkpoints").await.is_empty());
    import_csv(s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, false)
        .await
        .expect("import");
    let cps = items(app, &admin, &estate, "checkpoints").await;
    assert_eq!(cps.len(), 3);
    assert_eq!(by_code(&cps, "CP-2")["tags"][0]["value"], "04AABB02");
    assert_eq!(items(app, &admin, &estate, "zones").await.len(), 2);
    let cp1 = by_code(&cps, "CP-1")["id"].as_str().unwrap().to_owned();
    let cp2 = by_code(&cps, "CP-2")["id"].as_str().unwrap().to_owned();

    let rule = json_status(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/rules"),
            json!({
                "name": "重点部位夜间每小时", "kind": "interval", "target": {"class": "key"},
                "every_minutes": 60, "grace": null, "window": {"start": "22:00", "end": "06:00"}
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    // The night, pushed three days late by the estate's guard.
    let d = night();
    let next = d + Duration::days(1);
    let mut g = Guard {
        s: app.login_new_device("guard3").await,
        seq: 0,
    };
    let hours: Vec<(NaiveDate, u32)> = (22..24)
        .map(|h| (d, h))
        .chain((0..6).map(|h| (next, h)))
        .collect();
    let mut visits = Vec::new();
    for (day, h) in &hours {
        visits.push((local(*day, *h, 20), "04:AA:BB:01", 22.5431));
    }
    // CP-2: nothing from 01:00 to 02:00; the 03:00 visit comes at 04:05 (late, within 15 min)
    // and the 04:00 slot is kept by the 04:40 visit.
    for (day, h, m) in [
        (d, 22, 30),
        (d, 23, 30),
        (next, 0, 30),
        (next, 2, 30),
        (next, 4, 5),
        (next, 4, 40),
        (next, 5, 30),
    ] {
        visits.push((local(day, h, m), "04:aa:bb:02", 22.5440));
    }
    // One handset records them in the order they happened (seq follows time).
    visits.sort_by_key(|v| v.0);
    let changes: Vec<Value> = visits
        .into_iter()
        .map(|(at, tag, lat)| g.scan(&estate, tag, at, lat, 114.0579))
        .collect();
    let answer = app.push_ok(&g.s, changes.clone()).await;
    assert!(
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{answer}"
    );

    let period = format!(
        "from={}&to={}",
        rfc3339(local(d, 22, 0)),
        rfc3339(local(next, 6, 0))
    );
    let cov = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?{period}&group_by=checkpoint"),
        )
        .await,
    )
    .await;
    let t = &cov["totals"];
    assert_eq!(
        (
            t["expected"].as_u64(),
            t["on_time"].as_u64(),
            t["late"].as_u64(),
            t["missed"].as_u64()
        ),
        (Some(16), Some(14), Some(1), Some(1)),
        "{cov}"
    );
    assert_eq!(t["coverage"], 0.9375, "{cov}");
    assert_eq!(t["strict_coverage"], 0.875, "{cov}");
    assert_eq!(t["verified_coverage"], 0.9375, "{cov}");
    let rows = cov["groups"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2,
        "only the key checkpoints are expected: {cov}"
    );
    let row2 = rows.iter().find(|r| r["key"] == cp2.as_str()).unwrap();
    assert_eq!(row2["missed"], 1);
    assert!(row2["max_gap_minutes"].as_f64().unwrap() >= 120.0, "{row2}");

    // The missed and late slots, with the scan that settled the late one.
    let slots =
        json_ok(get(app, &admin, &format!("/v1/estates/{estate}/slots?{period}")).await).await;
    let list = slots["slots"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{slots}");
    let missed = list.iter().find(|x| x["status"] == "missed").unwrap();
    assert_eq!(missed["checkpoint_code"], "CP-2");
    assert_eq!(missed["start"], rfc3339(local(next, 1, 0)));
    assert!(missed["scan"].is_null());
    let late = list.iter().find(|x| x["status"] == "late").unwrap();
    assert_eq!(late["start"], rfc3339(local(next, 3, 0)));
    assert_eq!(late["scan"]["clock_trust"], "verified");
    let trusted = crate::helpers::parse_time(&late["scan"]["trusted_at"]);
    assert!(
        (trusted - local(next, 4, 5)).num_seconds().abs() < 5,
        "trusted time is when it happened, not when it arrived: {late}"
    );
    // CSV of the same.
    let csv = app
        .client
        .get(app.url(&format!("/v1/estates/{estate}/slots?{period}")))
        .bearer_auth(&admin.access)
        .header(ACCEPT, "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("missed") && text.contains("水泵房"), "{text}");

    // Heat map of the morning after: the 01 column of CP-2 is missed, 03 late.
    let heat = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/heatmap?date={next}"),
        )
        .await,
    )
    .await;
    assert_eq!(heat["hours"].as_array().unwrap().len(), 24);
    let hrow = heat["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "CP-2")
        .unwrap();
    assert_eq!(hrow["cells"][1]["status"], "missed", "{hrow}");
    assert_eq!(hrow["cells"][3]["status"], "late", "{hrow}");
    assert_eq!(hrow["cells"][5]["status"], "on_time", "{hrow}");
    assert!(
        hrow["cells"][12]["status"].is_null(),
        "no slot at noon: {hrow}"
    );

    // The sweep raises missed-visit alerts (once), visible to overseers and in pull.
    let now = Utc::now().timestamp_millis();
    let n = sync_server::services::patrol::sweep_missed(
        &s.state.store,
        &s.state.hub,
        now,
        4 * 86_400_000,
    )
    .await
    .expect("sweep");
    assert!(n > 0);
    sync_server::services::patrol::sweep_missed(&s.state.store, &s.state.hub, now, 4 * 86_400_000)
        .await
        .expect("sweep again");
    let alerts = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/alerts?limit=1000"),
        )
        .await,
    )
    .await;
    let all = alerts["alerts"].as_array().unwrap();
    let ours: Vec<&Value> = all
        .iter()
        .filter(|a| {
            a["kind"] == "missed_visit"
                && a["data"]["checkpoint_code"] == "CP-2"
                && a["data"]["slot_start"] == rfc3339(local(next, 1, 0))
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one alert per missed slot, however often swept"
    );
    let alert_id = ours[0]["id"].as_str().unwrap().to_owned();
    assert!(
        !all.iter().any(|a| a["data"]["checkpoint_code"] == "CP-1"
            && a["data"]["slot_start"] == rfc3339(local(next, 1, 0))),
        "a visited slot raises nothing"
    );
    let close = format!("/v1/alerts/{alert_id}/close");
    assert_problem(
        send(app, &admin, "POST", &close, json!({"comment": "  "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    let closed = json_ok(
        send(
            app,
            &admin,
            "POST",
            &close,
            json!({"comment": "水泵房门锁坏，已报修"}),
        )
        .await,
    )
    .await;
    assert_eq!(closed["close_comment"], "水泵房门锁坏，已报修");

    // Excusing the missed slot takes it out of the denominators.
    let excuse = json!({"rule_id": rule_id, "checkpoint_id": cp2, "slot_start": rfc3339(local(next, 1, 0)),
                        "reason": "水泵房检修, 封闭"});
    let path = format!("/v1/estates/{estate}/slots/excuse");
    json_status(
        send(app, &admin, "POST", &path, excuse.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_problem(
        send(app, &admin, "POST", &path, excuse.clone()).await,
        StatusCode::CONFLICT,
        "/problems/conflict",
    )
    .await;
    let mut not_a_slot = excuse.clone();
    not_a_slot["slot_start"] = json!(rfc3339(local(next, 1, 30)));
    assert_problem(
        send(app, &admin, "POST", &path, not_a_slot).await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;
    let cov = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?{period}"),
        )
        .await,
    )
    .await;
    assert_eq!(cov["totals"]["excused"], 1, "{cov}");
    assert_eq!(cov["totals"]["missed"], 0, "{cov}");
    assert_eq!(cov["totals"]["coverage"], 1.0, "{cov}");

    // A rule change recomputes the past from the same scans: every two hours, 8 slots, all
    // visited on time (the old excuse names no slot of the new rule).
    let mut changed = rule.clone();
    changed["every_minutes"] = json!(120);
    let obj = changed.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("estate_id");
    json_ok(
        send(
            app,
            &admin,
            "PUT",
            &format!("/v1/estates/{estate}/rules/{rule_id}"),
            changed,
        )
        .await,
    )
    .await;
    let cov = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?{period}"),
        )
        .await,
    )
    .await;
    let t = &cov["totals"];
    assert_eq!(
        (
            t["expected"].as_u64(),
            t["on_time"].as_u64(),
            t["excused"].as_u64()
        ),
        (Some(8), Some(8), Some(0)),
        "{cov}"
    );
    let _ = cp1;
}

on_both_backends!(
    a_night_of_patrol_on_sqlite,
    a_night_of_patrol_on_postgres,
    a_night_of_patrol
);

/// Reference data reaches handsets through pull; a retired checkpoint comes as a tombstone.
async fn reference_data_is_pulled(s: &StatefulApp) {
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);
    let guard = app.login_new_device("guard3").await;
    let start = app.pull_all(&guard, None).await;
    let cp = json_status(
        send(app, &admin, "POST", &format!("/v1/estates/{estate}/checkpoints"), json!({
            "code": "G-1", "name": "大门岗", "class": "general",
            "tags": [{"kind": "nfc", "value": "04 a1 b2 c3"}, {"kind": "qr", "value": " RC-G-1 "}]
        }))
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(cp["tags"][0]["value"], "04A1B2C3");
    assert_eq!(cp["tags"][1]["value"], "RC-G-1");
    assert_eq!(cp["radius_m"], 30.0);
    let id = cp["id"].as_str().unwrap();
    let after = app.pull_all(&guard, Some(&start.cursor)).await;
    let put = after
        .changes
        .iter()
        .find(|c| c["collection"] == "checkpoints" && c["id"] == id)
        .unwrap_or_else(|| panic!("the checkpoint is pulled: {:?}", after.changes));
    assert_eq!(put["op"], "put");
    assert_eq!(put["data"]["code"], "G-1");

    let resp = send(
        app,
        &admin,
        "DELETE",
        &format!("/v1/estates/{estate}/checkpoints/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let later = app.pull_all(&guard, Some(&after.cursor)).await;
    assert!(
        later
            .changes
            .iter()
            .any(|c| c["collection"] == "checkpoints" && c["id"] == id && c["op"] == "delete"),
        "a tombstone: {:?}",
        later.changes
    );
    assert_problem(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/checkpoints/{id}"),
        )
        .await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;

    // The estate's time zone is reference data too.
    let tz = json_ok(
        send(
            app,
            &admin,
            "PATCH",
            &format!("/v1/estates/{estate}"),
            json!({"timezone": "Asia/Hong_Kong"}),
        )
        .await,
    )
    .await;
    assert_eq!(tz["timezone"], "Asia/Hong_Kong");
    assert_problem(
        send(
            app,
            &admin,
            "PATCH",
            &format!("/v1/estates/{estate}"),
            json!({"timezone": "Mars/Olympus"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
}

on_both_backends!(
    reference_data_is_pulled_on_sqlite,
    reference_data_is_pulled_on_postgres,
    reference_data_is_pulled
);

/// Bad reference data is refused with every reason and nothing half-written.
#[tokio::test]
async fn bad_reference_data_is_refused_whole() {
    let s = TestApp::spawn_with(|_| {}).await;
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);
    let other = admin.estate(ESTATE_1);
    import_csv(&s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, false)
        .await
        .unwrap();
    let before = items(app, &admin, &estate, "checkpoints").await;

    // A CSV with a tag already on CP-1, and one used twice in the file: nothing imported.
    let dup = "code,name,class,nfc\nN-1,新点一,general,04:AA:BB:01\nN-2,新点二,general,0499\nN-3,新点三,general,0499\n";
    let err = import_csv(&s, ImportKind::Checkpoints, dup, &estate, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was imported"), "{err}");
    assert_eq!(items(app, &admin, &estate, "checkpoints").await, before);

    // A route naming a checkpoint that does not exist: the line is reported.
    let routes = "route,name,position,checkpoint\nR1,夜巡,1,CP-1\nR1,夜巡,2,CP-9\n";
    let err = import_csv(&s, ImportKind::Routes, routes, &estate, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was imported"), "{err}");
    assert!(items(app, &admin, &estate, "routes").await.is_empty());
    let ok_routes = "route,name,position,checkpoint\nR1,夜巡,2,CP-2\nR1,夜巡,1,CP-1\n";
    import_csv(&s, ImportKind::Routes, ok_routes, &estate, false)
        .await
        .unwrap();
    let r = items(app, &admin, &estate, "routes").await;
    let cps = items(app, &admin, &estate, "checkpoints").await;
    assert_eq!(r[0]["checkpoints"][0], by_code(&cps, "CP-1")["id"]);

    // A window with an invalid time.
    let body = json!({"name": "坏规则", "kind": "interval", "target": {"class": "key"},
                      "every_minutes": 60, "window": {"start": "25:00", "end": "06:00"}});
    let p = assert_problem(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/rules"),
            body,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert!(
        p["errors"][0]["path"]
            .as_str()
            .unwrap()
            .contains("window.start"),
        "{p}"
    );

    // A zone of another estate.
    let zone = json_status(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{other}/zones"),
            json!({"code": "Z9", "name": "别处"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let p = assert_problem(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/checkpoints"),
            json!({
                "code": "X-1", "name": "错区", "class": "key", "zone_id": zone["id"]
            }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-reference",
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "unknown_zone", "{p}");
    // A duplicate code over the API is a conflict.
    let p = assert_problem(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/checkpoints"),
            json!({
                "code": "CP-1", "name": "重复", "class": "key"
            }),
        )
        .await,
        StatusCode::CONFLICT,
        "/problems/reference-conflict",
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "duplicate_code", "{p}");
    // A checkpoint still on a route cannot be retired.
    let cp1 = by_code(&cps, "CP-1")["id"].as_str().unwrap().to_owned();
    assert_problem(
        send(
            app,
            &admin,
            "DELETE",
            &format!("/v1/estates/{estate}/checkpoints/{cp1}"),
            json!(null),
        )
        .await,
        StatusCode::CONFLICT,
        "/problems/reference-conflict",
    )
    .await;
    assert_eq!(items(app, &admin, &estate, "checkpoints").await, cps);
}

/// Guards read reference data but neither change it nor read coverage; other estates 404.
#[tokio::test]
async fn roles_and_estates_are_enforced() {
    let s = TestApp::spawn_with(|_| {}).await;
    let app = &s.app;
    let guard = app.login_new_device("guard3").await;
    let estate = guard.estate(ESTATE_2);
    let admin = app.login_new_device("admin").await;
    let other = admin.estate(ESTATE_1);
    json_ok(get(app, &guard, &format!("/v1/estates/{estate}/checkpoints")).await).await;
    assert_problem(
        send(
            app,
            &guard,
            "POST",
            &format!("/v1/estates/{estate}/zones"),
            json!({"code": "Z", "name": "Z"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "/problems/forbidden",
    )
    .await;
    for path in ["coverage", "slots", "heatmap", "runs"] {
        assert_problem(
            get(app, &guard, &format!("/v1/estates/{estate}/{path}")).await,
            StatusCode::FORBIDDEN,
            "/problems/forbidden",
        )
        .await;
        assert_problem(
            get(app, &guard, &format!("/v1/estates/{other}/{path}")).await,
            StatusCode::NOT_FOUND,
            "/problems/not-found",
        )
        .await;
    }
    assert_problem(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?from=yesterday"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_problem(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?group_by=planet"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_problem(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?from=2026-01-01&to=2026-06-01"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/validation",
    )
    .await;
    assert_problem(
        get(app, &admin, &format!("/v1/estates/{estate}/teleporters")).await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;
}

/// Scans are flagged, never refused: an unknown tag, a fake location, a scan far from its
/// checkpoint are all accepted and show their flags; a scan without a tag is refused as a
/// shape error.
#[tokio::test]
async fn anomalies_are_flagged_not_refused() {
    let s = TestApp::spawn_with(|_| {}).await;
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);
    import_csv(&s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, false)
        .await
        .unwrap();
    json_status(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/rules"),
            json!({
                "name": "重点每小时", "kind": "interval", "target": {"class": "key"},
                "every_minutes": 60, "window": {"start": "00:00", "end": "00:00"}
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let mut g = Guard {
        s: app.login_new_device("guard3").await,
        seq: 0,
    };
    let d = night();
    let far = g.scan(&estate, "04:AA:BB:01", local(d, 10, 10), 22.5531, 114.0579);
    let far_id = far["id"].clone();
    let mut mock = g.scan(&estate, "04:AA:BB:02", local(d, 10, 50), 22.5440, 114.0579);
    mock["data"]["location"]["mock"] = json!(true);
    let unknown = g.scan(&estate, "04:FF:FF:FF", local(d, 11, 10), 22.5440, 114.0579);
    let mut no_tag = g.scan(&estate, "x", local(d, 11, 20), 22.5440, 114.0579);
    no_tag["data"].as_object_mut().unwrap().remove("tag");
    let answer = app.push_ok(&g.s, vec![far, mock, unknown, no_tag]).await;
    let r = answer["results"].as_array().unwrap();
    assert_eq!(
        r.iter()
            .map(|x| x["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["accepted", "accepted", "accepted", "rejected"],
        "{answer}"
    );
    assert_eq!(r[3]["code"], "missing_field");
    let period = format!(
        "from={}&to={}&status=on_time",
        rfc3339(local(d, 10, 0)),
        rfc3339(local(d, 11, 0))
    );
    let slots =
        json_ok(get(app, &admin, &format!("/v1/estates/{estate}/slots?{period}")).await).await;
    let list = slots["slots"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{slots}");
    let flags = |code: &str| {
        list.iter().find(|x| x["checkpoint_code"] == code).unwrap()["scan"]["flags"].clone()
    };
    assert_eq!(flags("CP-1"), json!(["outside_radius"]));
    assert_eq!(flags("CP-2"), json!(["mock_location"]));
    assert_eq!(list[0]["scan"]["photos"], json!([]), "no photos yet");

    // A photo taken with the far scan shows on its slot; `checkpoint=` lists only CP-1's.
    g.seq += 1;
    let sha = "ab".repeat(32);
    let photo = json!({
        "kind": "photo", "id": Uuid::now_v7(), "seq": g.seq,
        "hlc": hlc_at(local(d, 10, 11).timestamp_millis(), 0),
        "recorded_at": rfc3339(local(d, 10, 11)),
        "data": { "estate_id": estate, "sha256": sha, "bytes": 1234, "mime": "image/jpeg",
                  "subject": { "kind": "scan", "id": far_id }, "role": "evidence" }
    });
    let answer = app.push_ok(&g.s, vec![photo.clone()]).await;
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    let cp1 = list
        .iter()
        .find(|x| x["checkpoint_code"] == "CP-1")
        .unwrap()["checkpoint_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/slots?{period}&checkpoint={cp1}"),
        )
        .await,
    )
    .await;
    let one = one["slots"].as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0]["scan"]["photos"],
        json!([{ "id": photo["id"], "sha256": sha, "role": "evidence", "mime": "image/jpeg" }])
    );
    let bad = get(
        app,
        &admin,
        &format!("/v1/estates/{estate}/slots?{period}&checkpoint=nope"),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let cov = json_ok(
        get(
            app,
            &admin,
            &format!("/v1/estates/{estate}/coverage?{period}"),
        )
        .await,
    )
    .await;
    assert_eq!(cov["totals"]["on_time"], 2, "{cov}");
    assert_eq!(
        cov["totals"]["verified"], 0,
        "flagged scans are not verified: {cov}"
    );
}

/// A run: start, scans naming it, finish; listed with what it missed.
#[tokio::test]
async fn runs_are_folded_from_run_events() {
    let s = TestApp::spawn_with(|_| {}).await;
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);
    import_csv(&s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, false)
        .await
        .unwrap();
    import_csv(
        &s,
        ImportKind::Routes,
        "route,name,strict,checkpoint\nR1,夜巡,true,CP-1\nR1,夜巡,true,CP-2\nR1,夜巡,true,CP-3\n",
        &estate,
        false,
    )
    .await
    .unwrap();
    let route = items(app, &admin, &estate, "routes").await[0]["id"].clone();
    let mut g = Guard {
        s: app.login_new_device("guard3").await,
        seq: 0,
    };
    let d = night();
    let run = Uuid::now_v7();
    let event = |g: &mut Guard, action: &str, at: DateTime<Utc>| {
        g.seq += 1;
        json!({"kind": "run_event", "id": Uuid::now_v7(), "seq": g.seq, "hlc": hlc_at(at.timestamp_millis(), 0),
               "recorded_at": rfc3339(at), "age_ms": (Utc::now() - at).num_milliseconds(),
               "data": {"estate_id": estate, "run_id": run, "action": action, "route_id": route}})
    };
    let mut changes = vec![event(&mut g, "start", local(d, 23, 0))];
    for (tag, m) in [("04:AA:BB:02", 5), ("04:AA:BB:01", 10)] {
        let mut sc = g.scan(&estate, tag, local(d, 23, m), 22.5431, 114.0579);
        sc["data"]["run_id"] = json!(run);
        changes.push(sc);
    }
    changes.push(event(&mut g, "finish", local(d, 23, 20)));
    app.push_ok(&g.s, changes).await;
    let runs = json_ok(
        get(
            app,
            &admin,
            &format!(
                "/v1/estates/{estate}/runs?from={}&to={}",
                rfc3339(local(d, 22, 0)),
                rfc3339(local(d + Duration::days(1), 6, 0))
            ),
        )
        .await,
    )
    .await;
    let r = &runs["runs"][0];
    assert_eq!(r["id"], run.to_string(), "{runs}");
    assert_eq!(r["status"], "incomplete");
    assert_eq!(
        (r["expected"].as_u64(), r["scanned"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(r["missed"].as_array().unwrap().len(), 1);
    assert_eq!(
        r["order_deviations"], 1,
        "CP-2 before CP-1 on a strict route: {r}"
    );
}

/// The sweep runs by itself: with a one-second interval, a missed slot raises its alert
/// without anyone asking.
#[tokio::test]
async fn the_missed_visit_sweep_runs_by_itself() {
    let s = TestApp::spawn_with(|c| c.missed_visit_interval_secs = 1).await;
    let app = &s.app;
    let admin = app.login_new_device("admin").await;
    let estate = admin.estate(ESTATE_2);
    import_csv(&s, ImportKind::Checkpoints, CHECKPOINTS_CSV, &estate, false)
        .await
        .unwrap();
    json_status(
        send(
            app,
            &admin,
            "POST",
            &format!("/v1/estates/{estate}/rules"),
            json!({
                "name": "重点每小时", "kind": "interval", "target": {"class": "key"},
                "every_minutes": 60, "window": {"start": "00:00", "end": "00:00"}
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    for _ in 0..100 {
        let a = json_ok(get(app, &admin, &format!("/v1/estates/{estate}/alerts")).await).await;
        if a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "missed_visit")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no missed_visit alert within 10 s");
}

/// `serve --demo` seeds the first estate's plan and a week of simulated patrols, so the
/// coverage API answers something real at once: mostly on time, some late and missed,
/// some anomalies, and the night-run count rule met on the full nights.
#[tokio::test]
async fn the_demo_estate_has_a_week_of_patrols() {
    let s = TestApp::spawn_full_demo().await;
    let app = &s.app;
    let manager = app.login_new_device("manager1").await;
    let estate = manager.estate(ESTATE_1);
    let today = Utc::now().with_timezone(&SHANGHAI).date_naive();
    let from = today - Duration::days(6);
    let period = format!("from={from}&to={today}");

    // The seed starts at local midnight seven days ago: each of the last seven days is
    // whole, the first included.
    let first = today - Duration::days(7);
    let day = json_ok(
        get(
            app,
            &manager,
            &format!("/v1/estates/{estate}/coverage?from={first}&to={from}"),
        )
        .await,
    )
    .await;
    let c = day["totals"]["coverage"].as_f64().expect("coverage");
    assert!((0.85..1.0).contains(&c), "the first day is whole: {day}");

    let cps = items(app, &manager, &estate, "checkpoints").await;
    assert!(
        (35..=45).contains(&cps.len()),
        "about 40 checkpoints: {}",
        cps.len()
    );
    assert_eq!(items(app, &manager, &estate, "routes").await.len(), 3);
    let key = cps.iter().filter(|c| c["class"] == "key").count();
    assert!(key > 0 && key < cps.len(), "key and general checkpoints");

    let cov = json_ok(
        get(
            app,
            &manager,
            &format!("/v1/estates/{estate}/coverage?{period}&group_by=day"),
        )
        .await,
    )
    .await;
    let t = &cov["totals"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    assert!(n(&t["expected"]) > 3000, "six full days of slots: {t}");
    assert!(
        n(&t["late"]) > 0 && n(&t["missed"]) > 0,
        "some late and missed: {t}"
    );
    let c = t["coverage"].as_f64().expect("coverage");
    assert!((0.85..1.0).contains(&c), "mostly covered: {t}");
    let v = t["verified_coverage"].as_f64().expect("verified");
    assert!(
        v < c,
        "anomalies and unverified times lose verified coverage: {t}"
    );
    assert_eq!(cov["groups"].as_array().map(Vec::len), Some(6));
    let met = cov["count_rules"]
        .as_array()
        .expect("count rules")
        .iter()
        .filter(|w| w["met"] == true)
        .count();
    assert!(met >= 5, "the night-run rule met on the full nights: {cov}");

    let heat = json_ok(
        get(
            app,
            &manager,
            &format!(
                "/v1/estates/{estate}/heatmap?date={}",
                today - Duration::days(1)
            ),
        )
        .await,
    )
    .await;
    assert_eq!(heat["rows"].as_array().map(Vec::len), Some(cps.len()));
    let slots = json_ok(
        get(
            app,
            &manager,
            &format!("/v1/estates/{estate}/slots?{period}&status=missed"),
        )
        .await,
    )
    .await;
    assert!(!slots["slots"].as_array().expect("slots").is_empty());
    let runs = json_ok(
        get(
            app,
            &manager,
            &format!("/v1/estates/{estate}/runs?{period}"),
        )
        .await,
    )
    .await;
    assert!(
        runs.to_string().contains("\"completed\""),
        "completed runs: {runs}"
    );
}
