//! The fleet simulator's own tests: the plan is deterministic for a seed, and a short run
//! against an in-process server (SQLite; PostgreSQL when TEST_DATABASE_URL is set) leaves
//! the server with exactly the facts the simulator says it created — nothing lost, nothing
//! doubled — across lost answers, timeouts, reboots and skewed clocks.

use fleet_sim::client::{http_client, Session};
use fleet_sim::plan::{self, PlanConfig, HOUR};
use fleet_sim::run::{run, verify_as, RunConfig};
use fleet_sim::verify::compare;
use fleet_sim::Ledger;
use shared_core::patrol::reference;
use shared_core::patrol::sim::{self, EstateSpec};
use shared_core::patrol::ReferenceSet;
use shared_core::EstateId;
use sqlx::Connection;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use sync_server::config::Config;
use sync_server::startup::{Application, BuildOptions};
use tokio::sync::oneshot;
use uuid::Uuid;

/// 2026-12-01T00:00:00Z: a fixed end, so the plan does not depend on today.
const END: i64 = 1_796_083_200_000;

fn demo_reference() -> ReferenceSet {
    let estate = EstateId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_e001));
    let ops = sim::estate_plan(estate, &EstateSpec::demo(), 20_261_122);
    reference::apply(&ReferenceSet::empty(estate, "Asia/Shanghai"), &ops)
        .expect("the demo plan applies")
        .0
}

fn busy_plan(seed: u64) -> PlanConfig {
    let mut pc = PlanConfig::new(seed, 6, END - 6 * HOUR, END);
    pc.p_hazard = 0.05;
    pc.p_reboot_batch = 0.2;
    pc.p_skewed_batch = 0.2;
    pc
}

#[test]
fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
    let reference = demo_reference();
    let a = plan::build(&reference, &busy_plan(7));
    let b = plan::build(&reference, &busy_plan(7));
    assert_eq!(a, b, "same seed, same plan");
    // Byte-identical push bodies (moved by the same shift).
    for (ha, hb) in a.handsets.iter().zip(&b.handsets) {
        assert_eq!(ha.device_id, hb.device_id);
        for (x, y) in ha.batches.iter().zip(&hb.batches) {
            assert_eq!(
                x.body_at(ha.device_id, 12_345),
                y.body_at(hb.device_id, 12_345)
            );
        }
    }
    assert_eq!(a.ledger, b.ledger);
    // The plan has everything the run relies on.
    let s = &a.stats;
    assert!(s.scans > 100, "{s:?}");
    assert!(s.run_events > 0, "{s:?}");
    assert!(
        s.hazard_reports > 0 && s.photos == s.hazard_reports,
        "{s:?}"
    );
    assert!(s.reboot_batches > 0 && s.skewed_batches > 0, "{s:?}");
    assert_eq!(a.ledger.len(), a.changes());
    assert_eq!(
        a.ledger.counts().keys().cloned().collect::<Vec<_>>(),
        ["hazard_event", "photo", "run_event", "scan"]
    );
    // Seqs count from 1 without gaps per handset.
    for h in &a.handsets {
        let seqs: Vec<u64> = h
            .batches
            .iter()
            .flat_map(|b| &b.changes)
            .map(|c| c["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
    let c = plan::build(&reference, &busy_plan(8));
    assert_ne!(a.ledger, c.ledger, "another seed, another plan");
    assert_ne!(
        a.handsets[0].device_id, c.handsets[0].device_id,
        "another seed, other handsets"
    );
}

#[test]
fn the_comparison_finds_lost_doubled_extra_and_wrong_kinds() {
    let mut ledger = Ledger::default();
    let dev = Uuid::now_v7();
    ledger.devices.insert(dev);
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    ledger.add("scan", ids[0]);
    ledger.add("scan", ids[1]);
    ledger.add("photo", ids[2]);
    ledger.add("hazard_event", ids[3]);
    let mut seen: HashMap<Uuid, (String, Option<Uuid>, usize)> = HashMap::new();
    seen.insert(ids[0], ("scan".into(), Some(dev), 1));
    seen.insert(ids[1], ("scan".into(), Some(dev), 1));
    seen.insert(ids[2], ("photo".into(), Some(dev), 1));
    seen.insert(ids[3], ("hazard_event".into(), Some(dev), 1));
    seen.insert(Uuid::now_v7(), ("scan".into(), Some(Uuid::now_v7()), 1));
    assert!(compare(&ledger, &seen, 5, 1).ok());

    let mut lost = seen.clone();
    lost.remove(&ids[2]);
    let v = compare(&ledger, &lost, 4, 1);
    assert!(!v.ok() && v.missing.len() == 1, "{v:?}");

    let mut doubled = seen.clone();
    doubled.get_mut(&ids[3]).unwrap().2 = 2;
    assert!(!compare(&ledger, &doubled, 6, 1).ok());

    let mut extra = seen.clone();
    extra.insert(ids[4], ("scan".into(), Some(dev), 1));
    let v = compare(&ledger, &extra, 6, 1);
    assert!(!v.ok() && v.extra == vec![ids[4]], "{v:?}");

    let mut wrong = seen.clone();
    wrong.get_mut(&ids[0]).unwrap().0 = "photo".into();
    assert!(!compare(&ledger, &wrong, 5, 1).ok());
}

// ------------------------------------------------------------------ against a server

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(database_url: Option<String>) -> Server {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url,
        ..Default::default()
    };
    let app = Application::build(
        config,
        BuildOptions {
            demo: true,
            demo_patrols: false,
        },
    )
    .await
    .expect("the server builds");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Server {
        base,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

impl Server {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.task).await;
    }
}

/// Facts of the fleet's devices per kind, counted by the test itself (not by the
/// simulator's verify) from a manager's full pull.
async fn count_fleet_facts(base: &str, ledger: &Ledger) -> (BTreeMap<String, usize>, usize) {
    let http = http_client(2).unwrap();
    let mut s = Session::login(&http, base, "manager1", "demo", Uuid::now_v7(), "test")
        .await
        .expect("manager1 signs in");
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    s.pull_all(None, 1000, |c| {
        if c["collection"] != "facts" {
            return;
        }
        let device: Option<Uuid> = c["data"]["device_id"].as_str().and_then(|d| d.parse().ok());
        if device.is_some_and(|d| ledger.devices.contains(&d)) {
            *by_kind
                .entry(c["data"]["kind"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
            *ids.entry(c["id"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
        }
    })
    .await
    .expect("the pull ends");
    let repeated = ids.values().filter(|n| **n > 1).count();
    (by_kind, repeated)
}

/// A short, rough run: 6 handsets, 4 simulated hours at 3,600× (4 s), with lost answers,
/// timeouts, reboots and skewed clocks forced up, hazards worked by the crew.
async fn short_run(base: &str) {
    let mut cfg = RunConfig::new(base);
    cfg.handsets = 6;
    cfg.sim_hours = 4.0;
    cfg.speed = 3600.0;
    cfg.p_lost_answer = 0.3;
    cfg.p_timeout = 0.3;
    cfg.p_reboot_batch = 0.25;
    cfg.p_skewed_batch = 0.2;
    cfg.p_hazard = 0.04;
    cfg.p_work = 0.7;
    cfg.max_batch = 40;
    cfg.progress = None;
    let report = run(cfg).await.expect("the run completes");
    let c = &report.counters;
    println!("{}", report.table());
    assert!(
        report.plan_put,
        "the quiet demo estate got its plan from the simulator"
    );
    assert!(
        report.clean(),
        "failed {} rejected {} ({:?}) ack behind {} mismatched replays {}; first error {:?}",
        c.failed_batches,
        c.rejected,
        c.rejected_codes,
        c.ack_behind,
        c.replay_mismatch,
        c.first_error
    );
    assert_eq!(c.error_count(), 0, "{:?} {:?}", c.errors, c.first_error);
    assert_eq!(
        c.batches as usize,
        report.plan_stats.batches + crew_batches(&report)
    );
    assert!(c.replays_sent > 0, "lost answers were played");
    assert!(c.timeouts + c.timeout_answered > 0, "timeouts were played");
    assert!(c.reboot_batches > 0 && c.skewed_batches > 0);
    assert!(c.hazards_raised > 0, "hazards were raised");
    assert!(c.hazards_closed > 0, "some hazards were closed");
    assert_eq!(c.hazard_events_refused, 0, "{:?}", c.first_error);
    assert!(c.photos_uploaded > 0);
    // Every change answered once, stored (a retry after an abandoned attempt that the
    // server finished anyway may say `duplicate`).
    assert_eq!(c.accepted + c.duplicate, c.changes_sent);

    // The simulator's own verification...
    let v = verify_as(base, "supervisor1", "demo", &report.ledger)
        .await
        .expect("verify runs");
    assert!(v.ok(), "{:#?}", v.problems());
    let kinds: Vec<&str> = v.expected.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["hazard_event", "photo", "run_event", "scan"]);
    // ...and the test's own count, so a verify that skipped something cannot pass.
    let (by_kind, repeated) = count_fleet_facts(base, &report.ledger).await;
    assert_eq!(
        by_kind,
        report.ledger.counts(),
        "facts on the server by kind"
    );
    assert_eq!(repeated, 0, "no fact pulled twice");
    assert_eq!(
        by_kind.values().sum::<usize>() as u64,
        c.changes_sent,
        "every change sent is on the server once, nothing else"
    );
}

/// Batches the crew pushed (one per hazard event).
fn crew_batches(r: &fleet_sim::RunReport) -> usize {
    r.ledger.by_kind.get("hazard_event").map_or(0, |s| s.len()) - r.plan_stats.hazard_reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_leaves_exactly_the_ledger_on_sqlite() {
    let server = start(None).await;
    short_run(&server.base).await;
    server.stop().await;
}

fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set");
            }
            eprintln!(
                "skipping the PostgreSQL fleet run: TEST_DATABASE_URL is not set \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres)"
            );
            None
        }
    }
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_leaves_exactly_the_ledger_on_postgres() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let name = format!("patrol_fleet_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connecting to TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let server = start(Some(with_database(&admin_url, &name))).await;
    // Run on a task so a failure still drops the database below.
    let base = server.base.clone();
    let outcome = tokio::spawn(async move { short_run(&base).await }).await;
    server.stop().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The binary itself, as documented: a small run with `--verify` and `--out`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_verifies_and_writes_its_summary() {
    let server = start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fleet.json");
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet-sim"))
        .args(["--url", &server.base, "--handsets", "3", "--sim-hours", "2"])
        .args([
            "--speed",
            "7200",
            "--p-lost-answer",
            "0.2",
            "--p-timeout",
            "0.2",
        ])
        .args(["--verify", "--quiet", "--out"])
        .arg(&out)
        .status()
        .await
        .expect("the binary starts");
    assert!(status.success(), "fleet-sim exited with {status}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the summary is written")).unwrap();
    assert_eq!(v["verify"]["ok"], true, "{}", v["verify"]);
    assert_eq!(v["handsets"], 3);
    assert!(v["ledger"]["counts"]["scan"].as_u64().unwrap() > 0);
    assert!(!v["ledger"]["ids"]["scan"].as_array().unwrap().is_empty());
    assert!(v["push_latency"]["p50_ms"].as_f64().is_some());

    // A server that is not there: a clear error and a non-zero exit, no panic.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet-sim"))
        .args(["--url", "http://127.0.0.1:9", "--handsets", "1", "--quiet"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fleet-sim: error:") && err.contains("logging in as guard1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    server.stop().await;
}
