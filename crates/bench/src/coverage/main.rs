//! `coverage-bench`: one estate of 200 checkpoints (`EstateSpec::sized(200)`) patrolled for
//! N days by the patrol simulator (about 33,000 scans a day), seeded through
//! `POST /v1/sync/push` into the real `patrol-sync` binary, then the latency of the
//! coverage, heat-map and slot calls. Prints a Markdown table and writes
//! `target/bench/coverage-<backend>.json`. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/coverage-bench --backend sqlite --days 30
//! target/release/coverage-bench --backend postgres --days 30
//! ```

mod seed;

// Shared with the other benchmarks, included as they are.
#[allow(dead_code)]
#[path = "../hazard/client.rs"]
mod client;
#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../facts.rs"]
mod facts;
#[allow(dead_code)]
#[path = "../hazard/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../server.rs"]
mod server;

use anyhow::{bail, ensure, Context};
use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use clap::Parser;
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use measure::{ms, percentile, Series};
use serde_json::{json, Value};
use shared_core::patrol::reference;
use shared_core::patrol::sim::{self, EstateSpec};
use shared_core::patrol::{RefOp, ReferenceSet};
use shared_core::EstateId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Patrol coverage benchmark: simulate patrols, push them over HTTP, time coverage calls.
#[derive(Parser, Debug)]
#[command(name = "coverage-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_coverage_<random>` on (it
    /// is dropped at the end).
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
    /// Days of patrols, ending at today's midnight in the estate's zone (about 33,000 scans
    /// a day: 3 ≈ 100k, 30 ≈ 1M, 150 ≈ 5M) [default: 30, or 1 with --smoke].
    #[arg(long)]
    days: Option<u32>,
    /// Days the timed coverage calls cover, the last of the seeded ones (at most 92, the
    /// server's limit) [default: 30, or all days when fewer].
    #[arg(long, default_value_t = 30)]
    period_days: u32,
    /// Checkpoints of the estate (`EstateSpec::sized`) [default: 200, or 40 with --smoke].
    #[arg(long)]
    checkpoints: Option<usize>,
    /// Simulated guards, each with one handset (the benchmark's teams are 11).
    #[arg(long, default_value_t = 24)]
    guards: usize,
    /// Days simulated at a time (memory grows with it).
    #[arg(long, default_value_t = 1)]
    chunk_days: u32,
    /// Pushers side by side; each handset is pushed by one of them, its batches in order.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Timed calls per measurement [default: 5, or 1 with --smoke].
    #[arg(long)]
    reps: Option<usize>,
    /// Untimed calls before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seed of the plan and of the simulator. Not the demo's (20261122): the plan's ids
    /// follow from the seed, and the demo's first estate already holds that plan.
    #[arg(long, default_value_t = 20260303)]
    seed: u64,
    /// A small run for CI: 40 checkpoints for 1 day (~6,700 scans), 1 call each; writes
    /// coverage-<backend>-smoke.json.
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
    /// The server's PATROL_MISSED_VISIT_INTERVAL_SECS. The missed-visit sweep evaluates
    /// the last 26 hours of every estate with a plan; its first run is one interval after
    /// the server starts, so a day keeps it out of the run altogether.
    #[arg(long, default_value_t = 86_400)]
    missed_visit_interval_secs: u64,
    /// PostgreSQL: skip the `VACUUM (ANALYZE)` after seeding.
    #[arg(long)]
    no_vacuum: bool,
    /// Seconds to wait for the server's /readyz (the demo seeding runs first).
    #[arg(long, default_value_t = 120)]
    ready_timeout: u64,
}

const TIMEZONE: &str = "Asia/Shanghai";
/// Asia/Shanghai has had no daylight saving since 1991.
const UTC_OFFSET_SECS: i32 = 8 * 3600;
const DEMO_PASSWORD: &str = "demo";
const ESTATE_NAME: &str = "Riverside";
const GUARD: &str = "guard3";
const ADMIN: &str = "admin";
const DAY: i64 = seed::DAY;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("coverage-bench: FAILED: see the checks above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("coverage-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    days: u32,
    checkpoints: usize,
    period_days: u32,
    reps: usize,
    /// Local midnight ending the seeded period (epoch ms) and its date.
    to: i64,
    to_date: NaiveDate,
}

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(UTC_OFFSET_SECS).expect("a valid offset")
}

fn local_midnight(d: NaiveDate) -> i64 {
    shanghai()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset has no gaps")
        .timestamp_millis()
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let command = command_line();
    println!("command: {command}");
    let days = args.days.unwrap_or(if args.smoke { 1 } else { 30 });
    ensure!(days >= 1, "--days must be at least 1");
    ensure!(
        (1..=92).contains(&args.period_days),
        "--period-days must be from 1 to 92 (the server's limit)"
    );
    ensure!(args.chunk_days >= 1, "--chunk-days must be at least 1");
    ensure!(
        args.guards >= 22,
        "--guards must be at least 22 (two teams of 11)"
    );
    let reps = args.reps.unwrap_or(if args.smoke { 1 } else { 5 });
    ensure!(reps >= 1, "--reps must be at least 1");
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }
    let to_date = Utc::now().with_timezone(&shanghai()).date_naive();
    let s = Settings {
        days,
        checkpoints: args
            .checkpoints
            .unwrap_or(if args.smoke { 40 } else { 200 }),
        period_days: args.period_days.min(days),
        reps,
        to: local_midnight(to_date),
        to_date,
    };

    let tmp = tempfile::Builder::new()
        .prefix("patrol-coverage-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match args.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", tmp.path().join("bench.db").display());
            bench(&args, &s, tmp.path(), &url, None).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_coverage_{}",
                &Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(&args, &s, tmp.path(), &url, Some((&args.pg_url, &name))).await;
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
        "coverage-{}{}.json",
        args.backend.name(),
        if args.smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(report["checks"]["passed"] == true)
}

fn machine() -> Value {
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    });
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
    });
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "mem_total_kib": mem,
        "loadavg_at_start": load,
    })
}

async fn bench(
    args: &Args,
    s: &Settings,
    data_dir: &Path,
    db_url: &str,
    pg: Option<(&str, &str)>,
) -> anyhow::Result<Value> {
    let machine = machine();
    let port = server::free_port()?;
    let extra_env = [(
        "PATROL_MISSED_VISIT_INTERVAL_SECS",
        args.missed_visit_interval_secs.to_string(),
    )];
    let mut srv = server::Server::spawn_with_env(
        &args.server_bin,
        data_dir,
        port,
        db_url,
        args.server_rust_log.as_deref(),
        &extra_env,
    )?;
    if let Err(e) = srv
        .wait_ready(Duration::from_secs(args.ready_timeout))
        .await
    {
        let _ = srv.stop().await;
        return Err(e);
    }
    println!("server ready at {} (pid {})", srv.base, srv.pid);
    let result = phases(args, s, &srv, db_url, pg.is_some()).await;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            let tail = srv.log_tail(15);
            let _ = srv.stop().await;
            return Err(anyhow::anyhow!("{e:#}\nthe server's log ends:\n{tail}"));
        }
    };
    let status = srv.stop().await?;
    println!("server stopped ({status})");
    let mut report = result;
    report["machine"] = machine;
    report["database_bytes"] = match pg {
        Some((admin, name)) => json!(pg_size(admin, name).await.ok()),
        None => {
            let size = |f: &str| {
                std::fs::metadata(data_dir.join(f))
                    .map(|m| m.len())
                    .unwrap_or(0)
            };
            json!(size("bench.db") + size("bench.db-wal"))
        }
    };
    Ok(report)
}

async fn pg_size(admin_url: &str, name: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let n: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n)
}

/// `VACUUM (ANALYZE)` of the run's database: the server's autovacuum setting and the time.
async fn pg_vacuum(url: &str) -> anyhow::Result<(String, Duration)> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&mut conn)
        .await?;
    let t = Instant::now();
    conn.execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE)")?;
    let took = t.elapsed();
    conn.close().await?;
    Ok((autovacuum, took))
}

/// The database read directly (beside the server): row counts, and the server's own query
/// of a period's scans timed on its own.
enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

const SCANS_SQL: &str =
    "SELECT fact_id, device_id, user_id, seq, trusted_at, verified, clock_skew, tag_key,
        checkpoint_id, run_id, lat, lng, accuracy_m, mock
 FROM scans WHERE estate_id = $1 AND trusted_at >= $2 AND trusted_at < $3
 ORDER BY trusted_at, fact_id";

impl Db {
    async fn connect(url: &str, pg: bool) -> anyhow::Result<Db> {
        use sqlx::Connection;
        Ok(if pg {
            Db::Postgres(sqlx::PgConnection::connect(url).await?)
        } else {
            Db::Sqlite(sqlx::SqliteConnection::connect(&format!("{url}?mode=ro")).await?)
        })
    }

    async fn count(&mut self, table: &str, estate: Uuid) -> anyhow::Result<i64> {
        let sql = format!("SELECT count(*) FROM {table} WHERE estate_id = $1");
        Ok(match self {
            Db::Sqlite(c) => {
                sqlx::query_scalar(&sql.replace('$', "?"))
                    .bind(estate.to_string())
                    .fetch_one(c)
                    .await?
            }
            Db::Postgres(c) => sqlx::query_scalar(&sql).bind(estate).fetch_one(c).await?,
        })
    }

    /// Runs the server's scans query for `[from, to)` and fetches every row; row count.
    async fn scans(&mut self, estate: Uuid, from: i64, to: i64) -> anyhow::Result<usize> {
        Ok(match self {
            Db::Sqlite(c) => sqlx::query(&SCANS_SQL.replace('$', "?"))
                .bind(estate.to_string())
                .bind(from)
                .bind(to)
                .fetch_all(c)
                .await?
                .len(),
            Db::Postgres(c) => sqlx::query(SCANS_SQL)
                .bind(estate)
                .bind(from)
                .bind(to)
                .fetch_all(c)
                .await?
                .len(),
        })
    }
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A timed answer, checked: 200 and JSON. Returns the JSON and the time.
async fn get_json(sess: &mut client::Session, path: &str) -> anyhow::Result<(Value, Duration)> {
    let r = sess.get(path).await?;
    if !r.status.is_success() {
        bail!(
            "GET {path}: HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(400)])
        );
    }
    let v: Value =
        serde_json::from_slice(&r.body).with_context(|| format!("GET {path}: not JSON"))?;
    Ok((v, r.elapsed))
}

/// `warmup` untimed then `reps` timed calls of `path`; `items` counts what the answer holds.
#[allow(clippy::too_many_arguments)]
async fn series(
    sess: &mut client::Session,
    name: &'static str,
    request: String,
    path: &str,
    warmup: usize,
    reps: usize,
    server_pid: u32,
    items: impl Fn(&Value) -> Option<u64>,
) -> anyhow::Result<(Series, Value)> {
    sess.keep_fresh().await?;
    for _ in 0..warmup {
        get_json(sess, path).await?;
    }
    let before = procfs::Snapshot::take(Some(server_pid), None);
    let mut latencies = Vec::with_capacity(reps);
    let mut last = Value::Null;
    let mut bytes = 0;
    for _ in 0..reps {
        let (v, t) = get_json(sess, path).await?;
        latencies.push(t);
        bytes = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
        last = v;
    }
    let usage = procfs::Snapshot::take(Some(server_pid), None).since(&before);
    latencies.sort();
    let per_call = |x: Option<f64>| x.map(|c| (c * 1000.0 / reps as f64 * 100.0).round() / 100.0);
    let n = items(&last);
    println!(
        "  {name:<26} p50 {:>9.2} ms  max {:>9.2} ms  ({reps} calls, {} items, {bytes} bytes)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 1.0)),
        n.map(|n| n.to_string()).unwrap_or("-".into()),
    );
    Ok((
        Series {
            name,
            request,
            warmup,
            latencies,
            bytes,
            items: n,
            server_cpu_ms_per_call: per_call(usage.server_cpu_s()),
            postgres_cpu_ms_per_call: per_call(usage.postgres_cpu_s()),
        },
        last,
    ))
}

async fn phases(
    args: &Args,
    s: &Settings,
    srv: &server::Server,
    db_url: &str,
    pg: bool,
) -> anyhow::Result<Value> {
    let started_at = facts::now_ms();
    let rss_ready = procfs::status_kib(srv.pid, "VmRSS");
    let http = client::http_client()?;

    // 1. The estate: the demo's second one, which has no patrol plan.
    let (mut admin, login) = client::Session::login_with(
        &http,
        &srv.base,
        ADMIN,
        DEMO_PASSWORD,
        Uuid::now_v7(),
        "coverage-bench admin",
        "coverage-bench",
    )
    .await?;
    let estate_v = login["estates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"].as_str().is_some_and(|n| n.contains(ESTATE_NAME)))
        .with_context(|| format!("no estate named *{ESTATE_NAME}* in the admin's login: {login}"))?
        .clone();
    let estate: Uuid = estate_v["id"]
        .as_str()
        .context("an estate without id")?
        .parse()?;
    ensure!(
        estate_v["timezone"] == TIMEZONE,
        "the estate's zone is {}, not {TIMEZONE}",
        estate_v["timezone"]
    );
    println!("estate {estate} {}", estate_v["name"]);

    // 2. The plan, through the reference-data API.
    let spec = EstateSpec::sized(s.checkpoints);
    let ops = sim::estate_plan(EstateId(estate), &spec, args.seed);
    let t = Instant::now();
    let mut by_collection: HashMap<&'static str, u64> = HashMap::new();
    for op in &ops {
        let RefOp::Put(entity) = op else {
            bail!("the plan holds a delete: {op:?}")
        };
        let mut body = entity.to_json();
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
            o.remove("estate_id");
        }
        let collection = entity.collection().as_str();
        admin
            .put_json(
                &format!("/v1/estates/{estate}/{collection}/{}", entity.id()),
                &body,
            )
            .await?;
        *by_collection.entry(collection).or_default() += 1;
    }
    let (reference, _) = reference::apply(&ReferenceSet::empty(EstateId(estate), TIMEZONE), &ops)
        .map_err(|e| anyhow::anyhow!("the plan does not apply: {e:?}"))?;
    println!(
        "put the plan in {:.1} s: {by_collection:?}",
        t.elapsed().as_secs_f64()
    );

    // 3. One session of guard3 per simulated handset.
    let guards = sim::sim_guards(args.guards, args.seed);
    let mut sessions = HashMap::new();
    let t = Instant::now();
    for (i, g) in guards.iter().enumerate() {
        let (sess, _) = client::Session::login_with(
            &http,
            &srv.base,
            GUARD,
            DEMO_PASSWORD,
            g.device_id.0,
            &format!("coverage-bench handset {}", i + 1),
            "android",
        )
        .await?;
        sessions.insert(g.device_id.0, sess);
    }
    println!(
        "{} handsets signed in as {GUARD} in {:.1} s",
        guards.len(),
        t.elapsed().as_secs_f64()
    );

    // 4. Seeding.
    let from = s.to - s.days as i64 * DAY;
    println!(
        "seeding {} days ({} .. {} {TIMEZONE}) over HTTP, {} pushers...",
        s.days,
        date_str(s.to_date - chrono::Days::new(s.days as u64)),
        date_str(s.to_date),
        args.concurrency
    );
    let before = procfs::Snapshot::take(Some(srv.pid), None);
    let seeded = seed::run(
        seed::Plan {
            reference: reference.clone(),
            guards,
            from,
            to: s.to,
            chunk_days: args.chunk_days as i64,
            seed: args.seed,
        },
        sessions,
        args.concurrency,
    )
    .await?;
    let seed_usage = procfs::Snapshot::take(Some(srv.pid), None).since(&before);
    let rss_seeded = procfs::status_kib(srv.pid, "VmRSS");
    let hwm_seeded = procfs::status_kib(srv.pid, "VmHWM");
    let wall = seeded.wall.as_secs_f64();
    let sum = |f: fn(&seed::ChunkTally) -> u64| seeded.chunks.iter().map(f).sum::<u64>();
    let scans = sum(|c| c.scans);
    let run_events = sum(|c| c.run_events);
    let simulate_s: f64 = seeded.chunks.iter().map(|c| c.simulate_ms).sum::<f64>() / 1000.0;
    let v = &seeded.verdicts;
    println!(
        "seeded {scans} scans + {run_events} run events in {wall:.1} s: {:.0} scans/s ({:.0} changes/s), {} pushes; simulating took {simulate_s:.1} s of it (same machine)",
        scans as f64 / wall,
        (scans + run_events) as f64 / wall,
        seeded.pushes,
    );
    println!(
        "push results: {} accepted, {} duplicate, {} rejected; {} batches with the ack behind",
        v.accepted, v.duplicate, v.rejected, v.ack_behind
    );
    if let Some(r) = &v.first_rejection {
        println!("  first rejection: {r}");
    }
    let batches = sum(|c| c.batches);
    let all_accepted = batches == seeded.pushes
        && v.rejected == 0
        && v.duplicate == 0
        && v.accepted == scans + run_events
        && v.ack_behind == 0;

    let vacuum = if pg && !args.no_vacuum {
        let (autovacuum, took) = pg_vacuum(db_url).await?;
        println!(
            "VACUUM (ANALYZE) took {:.1} s (the server's autovacuum is {autovacuum})",
            took.as_secs_f64()
        );
        json!({ "vacuum_analyze_s": round2(took.as_secs_f64()), "autovacuum": autovacuum })
    } else {
        Value::Null
    };

    let mut db = Db::connect(db_url, pg).await?;
    let scans_stored = db.count("scans", estate).await?;
    let run_events_stored = db.count("run_events", estate).await?;
    println!("stored: {scans_stored} scans, {run_events_stored} run events in the estate");

    // 5. The calls.
    let p = s.period_days as u64;
    let period_from = s.to_date - chrono::Days::new(p);
    let last_day = s.to_date - chrono::Days::new(1);
    let (pf, pt, ld) = (
        date_str(period_from),
        date_str(s.to_date),
        date_str(last_day),
    );
    // What the simulator meant for the period: every slot starting in it.
    let period_from_ms = s.to - p as i64 * DAY;
    let in_period: Vec<&seed::ChunkTally> = seeded
        .chunks
        .iter()
        .filter(|c| c.from >= period_from_ms)
        .collect();
    let sim_slots: u64 = in_period.iter().map(|c| c.slots()).sum();
    let sim_missed: u64 = in_period.iter().map(|c| c.missed).sum();
    let sim_late: u64 = in_period.iter().map(|c| c.late).sum();
    let sim_scans_period: u64 = in_period.iter().map(|c| c.scans).sum();

    println!(
        "timing ({} warm-up + {} timed each; the period is {pf} .. {pt}, {p} days)...",
        args.warmup, s.reps
    );
    let measure_before = procfs::Snapshot::take(Some(srv.pid), None);
    let pid = srv.pid;
    let e = estate;
    let mut calls = Vec::new();
    let totals_expected = |v: &Value| v["totals"]["expected"].as_u64();
    let (c, cov) = series(
        &mut admin,
        "coverage",
        format!("GET /v1/estates/E/coverage?from={pf}&to={pt}"),
        &format!("/v1/estates/{e}/coverage?from={pf}&to={pt}"),
        args.warmup,
        s.reps,
        pid,
        totals_expected,
    )
    .await?;
    calls.push(c);
    let (c, by_cp) = series(
        &mut admin,
        "coverage_by_checkpoint",
        format!("GET /v1/estates/E/coverage?from={pf}&to={pt}&group_by=checkpoint"),
        &format!("/v1/estates/{e}/coverage?from={pf}&to={pt}&group_by=checkpoint"),
        args.warmup,
        s.reps,
        pid,
        |v| v["groups"].as_array().map(|a| a.len() as u64),
    )
    .await?;
    calls.push(c);
    let (c, heat) = series(
        &mut admin,
        "heatmap",
        format!("GET /v1/estates/E/heatmap?date={ld}"),
        &format!("/v1/estates/{e}/heatmap?date={ld}"),
        args.warmup,
        s.reps,
        pid,
        |v| v["rows"].as_array().map(|a| a.len() as u64),
    )
    .await?;
    calls.push(c);
    let (c, missed) = series(
        &mut admin,
        "slots_missed_1d",
        format!("GET /v1/estates/E/slots?from={ld}&to={pt}&status=missed"),
        &format!("/v1/estates/{e}/slots?from={ld}&to={pt}&status=missed"),
        args.warmup,
        s.reps,
        pid,
        |v| v["slots"].as_array().map(|a| a.len() as u64),
    )
    .await?;
    calls.push(c);
    let (c, cov1) = series(
        &mut admin,
        "coverage_1d",
        format!("GET /v1/estates/E/coverage?from={ld}&to={pt}"),
        &format!("/v1/estates/{e}/coverage?from={ld}&to={pt}"),
        args.warmup,
        s.reps,
        pid,
        totals_expected,
    )
    .await?;
    calls.push(c);
    let measure_usage = procfs::Snapshot::take(Some(srv.pid), None).since(&measure_before);
    let hwm = procfs::status_kib(srv.pid, "VmHWM");
    let rss_end = procfs::status_kib(srv.pid, "VmRSS");

    // The server's scans query alone, straight from the database (no HTTP, no evaluation).
    let mut sql_lat = Vec::new();
    let mut sql_rows = 0;
    for i in 0..(args.warmup + s.reps) {
        let t = Instant::now();
        sql_rows = db.scans(estate, period_from_ms, s.to).await?;
        if i >= args.warmup {
            sql_lat.push(t.elapsed());
        }
    }
    sql_lat.sort();
    println!(
        "  {:<26} p50 {:>9.2} ms  max {:>9.2} ms  ({} calls, {sql_rows} rows; the bench's own connection)",
        "sql_scans_period",
        ms(percentile(&sql_lat, 0.5)),
        ms(percentile(&sql_lat, 1.0)),
        sql_lat.len()
    );

    // 6. Are the answers sane?
    let mut mismatches = Vec::new();
    let t = &cov["totals"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let coverage = t["coverage"].as_f64();
    if n(&t["expected"]) != sim_slots {
        mismatches.push(format!(
            "coverage expected {} slots, the simulator made {sim_slots}",
            t["expected"]
        ));
    }
    if !coverage.is_some_and(|c| (0.8..=1.0).contains(&c)) {
        mismatches.push(format!("coverage {coverage:?} is not between 0.8 and 1.0"));
    }
    if n(&t["pending"]) != 0 {
        mismatches.push(format!("{} slots still pending in the past", t["pending"]));
    }
    let cps = spec.checkpoints() as u64;
    if by_cp["groups"].as_array().map(|a| a.len() as u64) != Some(cps) {
        mismatches.push(format!(
            "coverage by checkpoint has {:?} rows, not {cps}",
            by_cp["groups"].as_array().map(Vec::len)
        ));
    }
    if by_cp["totals"] != cov["totals"] {
        mismatches.push("the totals by checkpoint differ from the totals".into());
    }
    let rows = heat["rows"].as_array().cloned().unwrap_or_default();
    if rows.len() as u64 != cps {
        mismatches.push(format!("the heat map has {} rows, not {cps}", rows.len()));
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r["cells"].as_array().map(Vec::len) != Some(24))
    {
        mismatches.push(format!(
            "a heat-map row without 24 cells: {}",
            r["code"].as_str().unwrap_or("?")
        ));
    }
    let missed_listed = missed["slots"].as_array().map(|a| a.len() as u64);
    if missed_listed != cov1["totals"]["missed"].as_u64() || missed_listed == Some(0) {
        mismatches.push(format!(
            "the last day lists {missed_listed:?} missed slots; its coverage says {}",
            cov1["totals"]["missed"]
        ));
    }
    if sql_rows as u64 != sim_scans_period {
        mismatches.push(format!(
            "the period holds {sql_rows} scans, the simulator made {sim_scans_period}"
        ));
    }
    if scans_stored as u64 != scans {
        mismatches.push(format!(
            "{scans_stored} scans stored, the simulator made {scans}"
        ));
    }
    if mismatches.is_empty() {
        println!(
            "the answers are sane: {} slots expected (as simulated), coverage {:.4}, {} late / {} missed (simulated {sim_late} / {sim_missed})",
            t["expected"],
            coverage.unwrap_or(f64::NAN),
            t["late"],
            t["missed"]
        );
    } else {
        for m in &mismatches {
            println!("MISMATCH {m}");
        }
    }
    let passed = all_accepted && mismatches.is_empty();
    let lat = &seeded.latencies;
    let sql_p = |q| ms(percentile(&sql_lat, q));
    Ok(json!({
        "benchmark": "coverage",
        "backend": if pg { "postgres" } else { "sqlite" },
        "smoke": args.smoke,
        "started_at": facts::rfc3339(started_at),
        "settings": {
            "days": s.days, "period_days": s.period_days, "checkpoints": s.checkpoints,
            "guards": args.guards, "chunk_days": args.chunk_days,
            "concurrency": args.concurrency, "reps": s.reps, "warmup": args.warmup,
            "seed": args.seed, "seeded_from": date_str(s.to_date - chrono::Days::new(s.days as u64)),
            "seeded_to": date_str(s.to_date),
            "server_bin": args.server_bin.display().to_string(),
            "server_rust_log": args.server_rust_log,
            "missed_visit_interval_secs": args.missed_visit_interval_secs,
        },
        "estate": { "id": estate, "name": estate_v["name"], "plan": by_collection },
        "data": {
            "scans_simulated": scans,
            "run_events_simulated": run_events,
            "scans_stored": scans_stored,
            "run_events_stored": run_events_stored,
            "period": { "from": pf, "to": pt, "scans": sim_scans_period,
                        "slots_simulated": sim_slots, "late_simulated": sim_late,
                        "missed_simulated": sim_missed },
        },
        "seeding": {
            "wall_s": round2(wall),
            "scans_per_s": (scans as f64 / wall).round(),
            "changes_per_s": ((scans + run_events) as f64 / wall).round(),
            "simulate_s": round2(simulate_s),
            "pushes": seeded.pushes,
            "batches_simulated": batches,
            "push_latency_ms": {
                "p50": ms(percentile(lat, 0.5)),
                "p95": ms(percentile(lat, 0.95)),
                "max": ms(percentile(lat, 1.0)),
            },
            "results": {
                "accepted": v.accepted, "duplicate": v.duplicate, "rejected": v.rejected,
                "first_rejection": v.first_rejection, "batches_with_ack_behind": v.ack_behind,
            },
            "usage": seed_usage.to_json(),
        },
        "postgres": vacuum,
        "calls": calls.iter().map(Series::to_json).collect::<Vec<_>>(),
        "sql_scans_period": {
            "rows": sql_rows, "reps": sql_lat.len(),
            "latency_ms": { "p50": sql_p(0.5), "max": sql_p(1.0) },
        },
        "answers": { "coverage_totals": cov["totals"], "last_day_totals": cov1["totals"],
                     "count_rules": cov["count_rules"].as_array().map(Vec::len) },
        "measuring_usage": measure_usage.to_json(),
        "server": {
            "peak_rss_kib": hwm,
            "rss_after_ready_kib": rss_ready,
            "rss_after_seeding_kib": rss_seeded,
            "peak_rss_after_seeding_kib": hwm_seeded,
            "rss_at_end_kib": rss_end,
        },
        "checks": {
            "all_changes_accepted": all_accepted,
            "mismatches": mismatches,
            "passed": passed,
        },
    }))
}

fn print_table(r: &Value) {
    let mib = |v: &Value| {
        v.as_f64()
            .map(|k| format!("{:.0} MiB", k / 1024.0))
            .unwrap_or("?".into())
    };
    let d = &r["data"];
    let sd = &r["seeding"];
    println!();
    println!(
        "### {} — {} days, {} scans stored{}",
        r["backend"].as_str().unwrap_or("?"),
        r["settings"]["days"],
        d["scans_stored"],
        if r["smoke"] == true { " (smoke)" } else { "" }
    );
    println!();
    println!(
        "| seeding | scans/s | changes/s | wall | pushes | push p50 | push p95 | rejected | server peak RSS | database |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "| {} pushers | {:.0} | {:.0} | {:.1} s | {} | {:.0} ms | {:.0} ms | {} | {} | {} |",
        r["settings"]["concurrency"],
        f(&sd["scans_per_s"]),
        f(&sd["changes_per_s"]),
        f(&sd["wall_s"]),
        sd["pushes"],
        f(&sd["push_latency_ms"]["p50"]),
        f(&sd["push_latency_ms"]["p95"]),
        sd["results"]["rejected"],
        mib(&r["server"]["peak_rss_kib"]),
        r["database_bytes"]
            .as_f64()
            .map(|b| format!("{:.0} MiB", b / 1_048_576.0))
            .unwrap_or("?".into()),
    );
    println!();
    println!("| call | request | calls | p50 ms | max ms | items | server CPU ms/call |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for c in r["calls"].as_array().into_iter().flatten() {
        let l = &c["latency_ms"];
        println!(
            "| {} | `{}` | {} | {:.1} | {:.1} | {} | {} |",
            c["name"].as_str().unwrap_or("?"),
            c["request"].as_str().unwrap_or("?"),
            c["reps"],
            f(&l["p50"]),
            f(&l["max"]),
            c["items"],
            c["server_cpu_ms_per_call"]
                .as_f64()
                .map(|x| format!("{x:.0}"))
                .unwrap_or("-".into()),
        );
    }
    let q = &r["sql_scans_period"];
    println!(
        "| sql_scans_period | the server's scans query, fetched by the bench | {} | {:.1} | {:.1} | {} | - |",
        q["reps"],
        f(&q["latency_ms"]["p50"]),
        f(&q["latency_ms"]["max"]),
        q["rows"]
    );
    println!();
    println!("coverage totals: {}", r["answers"]["coverage_totals"]);
    println!(
        "checks: all changes accepted: {}; mismatches: {}",
        r["checks"]["all_changes_accepted"], r["checks"]["mismatches"]
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn smoke_defaults_to_a_small_run() {
        let a = Args::parse_from(["coverage-bench", "--smoke"]);
        assert!(a.smoke);
        assert_eq!(a.days, None);
        assert_eq!(a.checkpoints, None);
        assert_eq!(a.backend, Backend::Sqlite);
    }

    #[test]
    fn midnight_is_local() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        // 2026-11-21T16:00:00Z
        assert_eq!(local_midnight(d), 1_795_276_800_000);
    }
}
