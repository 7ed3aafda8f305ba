//! `pull-bench`: one client paging through 100k and 1M facts of one estate, as a new
//! device's initial sync. Seeds scan facts through `POST /v1/sync/push` of the real
//! `patrol-sync` binary (several handsets side by side), then signs in as `supervisor1` (who
//! sees every fact of the estate) on a new device per measurement and pulls from no cursor
//! until `has_more` is false, with each page size and `Accept-Encoding` asked for. Prints a
//! table and writes `target/bench/pull-<backend>[-smoke].json`. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/pull-bench --backend sqlite
//! target/release/pull-bench --backend postgres
//! ```

mod client;

#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../facts.rs"]
mod facts;
#[allow(dead_code)]
#[path = "../ingest.rs"]
mod ingest;
#[allow(dead_code)]
#[path = "../procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../server.rs"]
mod server;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use client::{login, ms, percentile, pull_page, Encoding};
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pull benchmark: a new device's initial sync through N facts, one client.
#[derive(Parser, Debug)]
#[command(name = "pull-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_pull_<random>` on (dropped
    /// at the end).
    #[arg(
        long,
        alias = "database-url",
        env = "TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
    /// The server binary (build it first: `cargo build --release -p sync-server`).
    #[arg(long, default_value = "target/release/patrol-sync")]
    server_bin: PathBuf,
    /// Sizes to measure at, ascending: facts seeded in all before each measurement (the
    /// next size adds the difference) [default: 100000,1000000, or 5000 with --smoke].
    #[arg(long, value_delimiter = ',')]
    facts: Vec<u64>,
    /// Page sizes to pull with (`limit`; the server allows 1 to 5,000).
    #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 5000])]
    limits: Vec<usize>,
    /// `Accept-Encoding` to pull with, each a full initial sync.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Encoding::Identity, Encoding::Gzip, Encoding::Zstd])]
    encodings: Vec<Encoding>,
    /// Changes per push while seeding (the server accepts at most 1,000).
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Handsets pushing side by side while seeding (guard1, guard2, engineer1, engineer2, …
    /// of the demo's first estate).
    #[arg(long, default_value_t = 4)]
    seeders: usize,
    /// The user whose new device pulls (an overseer sees every fact of the estate).
    #[arg(long, default_value = "supervisor1")]
    puller: String,
    /// How many pages count as "first" and "last" for the growth check [default: a tenth
    /// of the pages, at least 3].
    #[arg(long)]
    edge_pages: Option<usize>,
    /// A small run for CI: 5,000 facts; writes pull-<backend>-smoke.json.
    #[arg(long)]
    smoke: bool,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// RUST_LOG for the server (default: unset, so the server's own default).
    #[arg(long)]
    server_rust_log: Option<String>,
    /// Keep the data directory (server log, SQLite file) and the PostgreSQL database.
    #[arg(long)]
    keep: bool,
    /// PostgreSQL: skip the `VACUUM (ANALYZE)` after seeding.
    #[arg(long)]
    no_vacuum: bool,
    /// Seconds to wait for the server's /readyz.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
}

/// Demo users of the first estate (Harbour View Gardens) that push the seeded facts; the
/// index is `ingest::USERS`'s.
const SEEDER_INDEXES: [usize; 4] = [0, 1, 2, 3];
/// Targets (issue 5): one client, 1M records.
const TARGET_RECORDS_PER_S: f64 = 20_000.0;
const TARGET_INITIAL_SYNC_1M_S: f64 = 60.0;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("pull-bench: FAILED: see the checks above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("pull-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Args) -> anyhow::Result<bool> {
    let command = command_line();
    println!("command: {command}");
    if args.facts.is_empty() {
        args.facts = if args.smoke {
            vec![5_000]
        } else {
            vec![100_000, 1_000_000]
        };
    }
    if args.facts.windows(2).any(|w| w[0] >= w[1]) || args.facts[0] == 0 {
        bail!("--facts must be ascending and above 0");
    }
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be from 1 to 1000");
    }
    if args.seeders == 0 || args.seeders > SEEDER_INDEXES.len() {
        bail!("--seeders must be from 1 to {}", SEEDER_INDEXES.len());
    }
    if args.limits.iter().any(|l| !(1..=5000).contains(l)) || args.limits.is_empty() {
        bail!("--limits must be from 1 to 5000");
    }
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("patrol-pull-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match args.backend {
        Backend::Sqlite => {
            let db = tmp.path().join("bench.db");
            let url = format!("sqlite://{}", db.display());
            let dev = procfs::device_of(tmp.path());
            bench(&args, tmp.path(), &url, dev, None).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_pull_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            let dev = pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(&args, tmp.path(), &url, dev, Some(&url)).await;
            if args.keep {
                println!("kept database {name} ({url})");
                r
            } else {
                match pg_drop(&args.pg_url, &name).await {
                    Ok(()) => {
                        println!("dropped database {name}");
                        r
                    }
                    Err(e) => r.and(Err(e.context(format!("dropping database {name}")))),
                }
            }
        }
    };
    if args.keep {
        println!("kept the data directory {}", tmp.keep().display());
    }
    let mut report = report?;
    report["command"] = json!(command);
    print_table(&report);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let file = args.out_dir.join(format!(
        "pull-{}{}.json",
        args.backend.name(),
        if args.smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(report["checks"]["passed"] == true)
}

/// What the puller must see: the facts per seeding device, and the totals.
struct Expect {
    /// device id → facts it pushed (seqs 1..=n).
    devices: HashMap<String, u64>,
    facts: u64,
    others: u64,
}

/// What one initial sync saw and how long it took.
struct Sync {
    wall: Duration,
    login: Duration,
    pages: Vec<Duration>,
    changes: u64,
    facts: u64,
    others: u64,
    wire_bytes: u64,
    json_bytes: u64,
    encodings_seen: HashSet<String>,
    problems: Vec<String>,
}

/// A new device of `user` pulls from no cursor until `has_more` is false; with `expect`,
/// every seeded fact must arrive exactly once.
async fn initial_sync(
    base: &str,
    user: &str,
    limit: usize,
    enc: Encoding,
    expect: Option<&Expect>,
) -> anyhow::Result<Sync> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let t = Instant::now();
    let s = login(&http, base, user, "pull-bench new device").await?;
    let login_took = t.elapsed();
    let mut seen_ids: HashSet<u128> = HashSet::new();
    let mut per_device: HashMap<String, Vec<bool>> = expect
        .map(|e| {
            e.devices
                .iter()
                .map(|(d, n)| (d.clone(), vec![false; *n as usize + 1]))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Sync {
        wall: Duration::ZERO,
        login: login_took,
        pages: Vec::new(),
        changes: 0,
        facts: 0,
        others: 0,
        wire_bytes: 0,
        json_bytes: 0,
        encodings_seen: HashSet::new(),
        problems: Vec::new(),
    };
    let mut cursor: Option<String> = None;
    let start = Instant::now();
    loop {
        let p = pull_page(&http, base, &s.access, cursor.as_deref(), limit, 0, enc)
            .await
            .with_context(|| format!("page {} of a {user} initial sync", out.pages.len() + 1))?;
        out.pages.push(p.elapsed);
        out.wire_bytes += p.wire_bytes as u64;
        out.json_bytes += p.json_bytes as u64;
        if p.json_bytes >= 32 {
            out.encodings_seen.insert(p.content_encoding.clone());
        }
        out.changes += p.changes.len() as u64;
        for c in &p.changes {
            if c.collection != "facts" {
                out.others += 1;
                continue;
            }
            out.facts += 1;
            match uuid::Uuid::parse_str(&c.id) {
                Ok(id) => {
                    if !seen_ids.insert(id.as_u128()) && out.problems.len() < 20 {
                        out.problems.push(format!("fact {} came twice", c.id));
                    }
                }
                Err(_) => out.problems.push(format!("fact id {} is not a UUID", c.id)),
            }
            let Some(d) = c.data.as_ref() else {
                out.problems.push(format!("fact {} has no data", c.id));
                continue;
            };
            let dev = d.device_id.as_ref().and_then(Value::as_str).unwrap_or("");
            if let Some(slots) = per_device.get_mut(dev) {
                let seq = d.seq.as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
                if seq == 0 || seq >= slots.len() || slots[seq] {
                    if out.problems.len() < 20 {
                        out.problems
                            .push(format!("device {dev}: unexpected or repeated seq {seq}"));
                    }
                } else {
                    slots[seq] = true;
                }
            }
        }
        cursor = Some(p.cursor);
        if !p.has_more {
            break;
        }
    }
    out.wall = start.elapsed();
    if let Some(e) = expect {
        if out.facts != e.facts {
            out.problems.push(format!(
                "{} facts pulled, {} expected (seeded plus the demo's)",
                out.facts, e.facts
            ));
        }
        if out.others != e.others {
            out.problems.push(format!(
                "{} changes of other collections, {} expected (the demo's reference data, hazards, alerts)",
                out.others, e.others
            ));
        }
        for (dev, slots) in &per_device {
            let missing = slots.iter().skip(1).filter(|x| !**x).count();
            if missing > 0 {
                out.problems
                    .push(format!("device {dev}: {missing} seeded facts never pulled"));
            }
        }
        if enc != Encoding::Identity
            && out.encodings_seen.iter().any(|x| x != enc.name())
            && out.problems.len() < 20
        {
            out.problems.push(format!(
                "asked for {} and got {:?}",
                enc.name(),
                out.encodings_seen
            ));
        }
    }
    Ok(out)
}

/// Samples the server's VmRSS every 50 ms, keeping the highest, until stopped.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = procfs::status_kib(pid, "VmRSS") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { peak, stop, task }
    }
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

fn mib(kib: Option<u64>) -> Value {
    kib.map(|k| json!(round2(k as f64 / 1024.0)))
        .unwrap_or(Value::Null)
}

async fn pg_vacuum(url: &str) -> anyhow::Result<Duration> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let t = Instant::now();
    conn.execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE)")?;
    let took = t.elapsed();
    conn.close().await?;
    Ok(took)
}

/// Facts of the estate in the database itself (a check beside the pull's count).
async fn db_count(db_url: &str, pg: bool, estate: uuid::Uuid) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let n: i64 = if pg {
        let mut c = sqlx::PgConnection::connect(db_url).await?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM facts WHERE estate_id = $1")
            .bind(estate)
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        n
    } else {
        let mut c = sqlx::SqliteConnection::connect(&format!("{db_url}?mode=ro")).await?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM facts WHERE estate_id = ?")
            .bind(estate.to_string())
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        n
    };
    Ok(n as u64)
}

async fn bench(
    args: &Args,
    data_dir: &Path,
    db_url: &str,
    disk_dev: Option<(u64, u64)>,
    pg: Option<&str>,
) -> anyhow::Result<Value> {
    let machine = client::machine();
    let port = server::free_port()?;
    // Sweeps off (they would add alerts to the feed mid-run); tokens outlive a slow run.
    let env = [
        ("PATROL_ACCESS_TOKEN_TTL_SECS", "7200".to_owned()),
        ("PATROL_MISSED_VISIT_INTERVAL_SECS", "86400".to_owned()),
        ("PATROL_ESCALATION_INTERVAL_SECS", "86400".to_owned()),
    ];
    let mut srv = server::Server::spawn_with_env(
        &args.server_bin,
        data_dir,
        port,
        db_url,
        args.server_rust_log.as_deref(),
        &env,
    )?;
    srv.wait_ready(Duration::from_secs(args.ready_timeout))
        .await?;
    println!("server pid {} at {}", srv.pid, srv.base);
    let base = srv.base.clone();
    let pid = srv.pid;

    let result = async {
        // What the demo alone gives the puller.
        let demo = initial_sync(&base, &args.puller, 5000, Encoding::Identity, None).await?;
        ensure!(demo.problems.is_empty(), "{:?}", demo.problems);
        println!(
            "demo data as {} sees it: {} facts, {} other changes",
            args.puller, demo.facts, demo.others
        );
        let mut expect = Expect {
            devices: HashMap::new(),
            facts: demo.facts,
            others: demo.others,
        };
        let mut estate = None;
        let mut seeded = 0u64;
        let mut sizes = Vec::new();
        let mut passed = true;
        for &size in &args.facts {
            // Seed the difference through push.
            let add = size - seeded;
            let mut handsets = Vec::new();
            for &i in SEEDER_INDEXES.iter().take(args.seeders) {
                handsets.push(ingest::Handset::login(&base, i).await?);
            }
            estate = Some(handsets[0].estate_id);
            ensure!(
                handsets.iter().all(|h| Some(h.estate_id) == estate),
                "the seeding users are not all in one estate"
            );
            let shares = ingest::shares(add, handsets.len());
            let devices: Vec<String> = handsets.iter().map(|h| h.device_id.to_string()).collect();
            let snap = procfs::Snapshot::take(Some(pid), disk_dev);
            let r = ingest::run(handsets, add, args.batch, false).await?;
            let seed_usage = procfs::Snapshot::take(Some(pid), disk_dev).since(&snap);
            for (d, n) in devices.into_iter().zip(shares) {
                expect.devices.insert(d, n);
            }
            seeded = size;
            expect.facts += add;
            println!(
                "seeded {add} facts ({} in all) in {:.1} s: {:.0} facts/s",
                seeded,
                r.wall.as_secs_f64(),
                add as f64 / r.wall.as_secs_f64()
            );
            let vacuum = match pg {
                Some(url) if !args.no_vacuum => Some(pg_vacuum(url).await?),
                _ => None,
            };
            let in_db = db_count(db_url, pg.is_some(), estate.expect("set")).await?;
            let mut checks = Vec::new();
            if in_db != expect.facts {
                checks.push(format!(
                    "the database holds {in_db} facts of the estate, {} expected",
                    expect.facts
                ));
            }

            let mut modes = Vec::new();
            for &limit in &args.limits {
                for &enc in &args.encodings {
                    let load = client::loadavg1();
                    let rss_before = procfs::status_kib(pid, "VmRSS");
                    let sampler = RssSampler::start(pid);
                    let snap = procfs::Snapshot::take(Some(pid), disk_dev);
                    let s = initial_sync(&base, &args.puller, limit, enc, Some(&expect)).await?;
                    let usage = procfs::Snapshot::take(Some(pid), disk_dev).since(&snap);
                    let rss_peak = sampler.finish().await;
                    let mut sorted = s.pages.clone();
                    sorted.sort();
                    let edge = args
                        .edge_pages
                        .unwrap_or((s.pages.len() / 10).max(3))
                        .min(s.pages.len());
                    let mut first: Vec<Duration> = s.pages[..edge].to_vec();
                    first.sort();
                    let mut last: Vec<Duration> = s.pages[s.pages.len() - edge..].to_vec();
                    last.sort();
                    let rate = s.changes as f64 / s.wall.as_secs_f64();
                    println!(
                        "{size} facts, limit {limit}, {}: {} changes in {:.2} s ({rate:.0}/s), {} pages, p50 {:.1} ms (first {:.1}, last {:.1})",
                        enc.name(),
                        s.changes,
                        s.wall.as_secs_f64(),
                        s.pages.len(),
                        ms(percentile(&sorted, 0.5)),
                        ms(percentile(&first, 0.5)),
                        ms(percentile(&last, 0.5)),
                    );
                    for p in &s.problems {
                        println!("  CHECK FAILED: {p}");
                    }
                    passed &= s.problems.is_empty();
                    modes.push(json!({
                        "limit": limit,
                        "accept_encoding": enc.name(),
                        "loadavg1_at_start": load,
                        "login_ms": ms(s.login),
                        "initial_sync_s": round2(s.wall.as_secs_f64()),
                        "initial_sync_with_login_s": round2((s.wall + s.login).as_secs_f64()),
                        "changes": s.changes,
                        "facts": s.facts,
                        "other_changes": s.others,
                        "records_per_s": rate.round(),
                        "pages": s.pages.len(),
                        "wire_bytes": s.wire_bytes,
                        "json_bytes": s.json_bytes,
                        "wire_bytes_per_record": round2(s.wire_bytes as f64 / s.changes.max(1) as f64),
                        "content_encodings_seen": s.encodings_seen.iter().collect::<Vec<_>>(),
                        "page_ms": {
                            "p50": ms(percentile(&sorted, 0.5)),
                            "p99": ms(percentile(&sorted, 0.99)),
                            "max": ms(percentile(&sorted, 1.0)),
                            "edge_pages": edge,
                            "first_pages_p50": ms(percentile(&first, 0.5)),
                            "last_pages_p50": ms(percentile(&last, 0.5)),
                            "last_over_first": round2(percentile(&last, 0.5).as_secs_f64()
                                / percentile(&first, 0.5).as_secs_f64().max(1e-9)),
                            "all": s.pages.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
                        },
                        "server_rss_mib": { "before": mib(rss_before), "peak_sampled": mib(Some(rss_peak)) },
                        "server_cpu_s": usage.server_cpu_s().map(round2),
                        "postgres_cpu_s": usage.postgres_cpu_s().map(round2),
                        "client_cpu_s": usage.client_cpu_s().map(round2),
                        "other_cpu_s": usage.other_cpu_s().map(round2),
                        "usage": usage.to_json(),
                        "problems": s.problems,
                    }));
                }
            }
            for c in &checks {
                println!("  CHECK FAILED: {c}");
            }
            passed &= checks.is_empty();
            sizes.push(json!({
                "facts_seeded": seeded,
                "facts_expected": expect.facts,
                "facts_in_database": in_db,
                "other_changes_expected": expect.others,
                "seeding": {
                    "facts": add,
                    "batch": args.batch,
                    "handsets": args.seeders,
                    "wall_s": round2(r.wall.as_secs_f64()),
                    "facts_per_s": (add as f64 / r.wall.as_secs_f64()).round(),
                    "push_p50_ms": ms(r.percentile(0.5)),
                    "push_p99_ms": ms(r.percentile(0.99)),
                    "usage": seed_usage.to_json(),
                },
                "vacuum_s": vacuum.map(|d| round2(d.as_secs_f64())),
                "checks": checks,
                "modes": modes,
            }));
        }
        Ok::<_, anyhow::Error>((sizes, passed, demo, estate))
    }
    .await;
    let hwm = procfs::status_kib(pid, "VmHWM");
    let stopped = srv.stop().await;
    let (sizes, passed, demo, estate) = result?;
    stopped?;
    Ok(json!({
        "bench": "pull",
        "backend": args.backend.name(),
        "smoke": args.smoke,
        "machine": machine,
        "server": {
            "bin": args.server_bin.display().to_string(),
            "vm_hwm_mib": mib(hwm),
        },
        "estate_id": estate.map(|e| e.to_string()),
        "puller": args.puller,
        "demo": { "facts": demo.facts, "other_changes": demo.others },
        "sizes": sizes,
        "targets": {
            "records_per_s": TARGET_RECORDS_PER_S,
            "initial_sync_1m_s": TARGET_INITIAL_SYNC_1M_S,
        },
        "checks": { "passed": passed },
    }))
}

fn print_table(r: &Value) {
    println!();
    println!(
        "pull-bench, {} (one client, a new {} device, from no cursor to has_more=false)",
        r["backend"].as_str().unwrap_or("?"),
        r["puller"].as_str().unwrap_or("?")
    );
    println!(
        "| facts | limit | encoding | changes | sync s | records/s | wire MB | B/record | page p50 / p99 ms | first / last pages p50 ms | server CPU s | PG CPU s | server RSS peak MiB |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in r["sizes"].as_array().into_iter().flatten() {
        for m in s["modes"].as_array().into_iter().flatten() {
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} / {} | {} / {} | {} | {} | {} |",
                s["facts_seeded"],
                m["limit"],
                m["accept_encoding"].as_str().unwrap_or("?"),
                m["changes"],
                m["initial_sync_s"],
                m["records_per_s"],
                m["wire_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                m["wire_bytes_per_record"],
                m["page_ms"]["p50"],
                m["page_ms"]["p99"],
                m["page_ms"]["first_pages_p50"],
                m["page_ms"]["last_pages_p50"],
                m["server_cpu_s"],
                m["postgres_cpu_s"],
                m["server_rss_mib"]["peak_sampled"],
            );
        }
    }
    for s in r["sizes"].as_array().into_iter().flatten() {
        println!(
            "seeding {} facts: {} facts/s ({} s); database holds {} facts of the estate, {} expected",
            s["seeding"]["facts"],
            s["seeding"]["facts_per_s"],
            s["seeding"]["wall_s"],
            s["facts_in_database"],
            s["facts_expected"]
        );
    }
    println!(
        "server VmHWM {} MiB; checks passed: {}",
        r["server"]["vm_hwm_mib"], r["checks"]["passed"]
    );
}
