//! `hazard-bench`: an estate with N hazard tickets (~10 events each) seeded through
//! `POST /v1/sync/push` into the real `patrol-sync` binary, then the latency of the
//! tracker's list, statistics, export and ticket calls. Prints a Markdown table and writes
//! `target/bench/hazard-<backend>.json`. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/hazard-bench --backend sqlite
//! target/release/hazard-bench --backend postgres
//! ```

mod client;
mod gen;
mod measure;
mod seed;

// Shared with ingest-bench, included as they are.
#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../facts.rs"]
mod facts;
#[allow(dead_code)]
#[path = "../procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../server.rs"]
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use measure::{Expect, Series};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Hazard tracker benchmark: seed tickets over HTTP, then time the tracker calls.
#[derive(Parser, Debug)]
#[command(name = "hazard-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_hazard_<random>` on (it is
    /// dropped at the end).
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
    /// Tickets to seed [default: 50000, or 500 with --smoke].
    #[arg(long)]
    tickets: Option<usize>,
    /// Hazard events in all, comments making up the difference [default: 10 per ticket].
    #[arg(long)]
    events: Option<u64>,
    /// Reports spread over this many days back from now.
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// Changes per push (the server accepts at most 1,000).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Handsets pushing side by side (each ticket is seeded by one of them).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Timed calls per measurement [default: 30, or 3 with --smoke].
    #[arg(long)]
    reps: Option<usize>,
    /// Untimed calls before each measurement.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed calls of the full CSV export [default: 5, or 3 with --smoke].
    #[arg(long)]
    csv_reps: Option<usize>,
    /// Pages to follow for the deep page (fewer when there are not enough tickets).
    #[arg(long, default_value_t = 50)]
    deep_pages: usize,
    /// Seed of the generator (the story of each ticket, the random ticket fetched).
    #[arg(long, default_value_t = 20261122)]
    seed: u64,
    /// A small run for CI: 500 tickets, ~5,000 events, 3 calls each; writes
    /// hazard-<backend>-smoke.json.
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
    /// Sets the server's PATROL_ESCALATION_INTERVAL_SECS (default: unset, so the server's
    /// 60 s). The escalation sweep reads every open ticket; a long interval keeps it out
    /// of the timings.
    #[arg(long)]
    escalation_interval_secs: Option<u64>,
    /// PostgreSQL: skip the `VACUUM (ANALYZE)` after seeding (time the tables as the load
    /// left them, dead row versions included).
    #[arg(long)]
    no_vacuum: bool,
    /// Seconds to wait for the server's /readyz.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
}

const FULL_TICKETS: usize = 50_000;
const SMOKE_TICKETS: usize = 500;
const EVENTS_PER_TICKET: u64 = 10;
/// The call the issue worries about past this (docs/BENCHMARKS.md).
const SLOW_MS: f64 = 500.0;

const ESTATE_NAME: &str = "Hazard bench estate";
const GUARD: &str = "hazard-bench-guard";
const ENGINEER: &str = "hazard-bench-engineer";
const SUPERVISOR: &str = "hazard-bench-supervisor";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("hazard-bench: FAILED: see the checks above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hazard-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    backend: Backend,
    tickets: usize,
    events: u64,
    reps: usize,
    csv_reps: usize,
    smoke: bool,
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let command = command_line();
    println!("command: {command}");
    let tickets = args.tickets.unwrap_or(if args.smoke {
        SMOKE_TICKETS
    } else {
        FULL_TICKETS
    });
    let reps = args.reps.unwrap_or(if args.smoke { 3 } else { 30 });
    let s = Settings {
        backend: args.backend,
        tickets,
        events: args.events.unwrap_or(tickets as u64 * EVENTS_PER_TICKET),
        reps,
        csv_reps: args.csv_reps.unwrap_or(if args.smoke { 3 } else { 5 }),
        smoke: args.smoke,
    };
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be from 1 to 1000 (the server's limit per push)");
    }
    if args.concurrency == 0 || s.tickets < args.concurrency {
        bail!("--concurrency must be at least 1 and at most --tickets");
    }
    if s.reps == 0 {
        bail!("--reps must be at least 1");
    }
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }

    let tmp = tempfile::Builder::new()
        .prefix("patrol-hazard-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match s.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", tmp.path().join("bench.db").display());
            let dev = procfs::device_of(tmp.path());
            bench(&args, &s, tmp.path(), &url, dev, None).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_hazard_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            let dev = pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(
                &args,
                &s,
                tmp.path(),
                &url,
                dev,
                Some((&args.pg_url, &name)),
            )
            .await;
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
        "hazard-{}{}.json",
        s.backend.name(),
        if s.smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(report["checks"]["passed"] == true)
}

async fn pg_show(url: &str, setting: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let v: String = sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(v)
}

/// `VACUUM (ANALYZE)` of the run's database: returns the server's autovacuum setting and
/// the time taken.
async fn pg_vacuum(url: &str) -> anyhow::Result<(String, Duration)> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&mut conn)
        .await?;
    let t = std::time::Instant::now();
    conn.execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE)")?;
    let took = t.elapsed();
    conn.close().await?;
    Ok((autovacuum, took))
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

/// Runs `BIN <args>` against the run's database (the same clean environment the server
/// gets), with `stdin` as its input; returns its standard output.
async fn admin_cli(
    bin: &Path,
    data_dir: &Path,
    db_url: &str,
    cli_args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(cli_args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PATROL_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("PATROL_DATA_DIR", data_dir)
        .env("PATROL_DATABASE_URL", db_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await?;
        }
        drop(input);
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`patrol-sync {}` failed ({}): {}",
            cli_args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first tab-separated field of the last line: the id the CLI prints.
fn printed_id(out: &str) -> anyhow::Result<Uuid> {
    out.lines()
        .last()
        .and_then(|l| l.split('\t').next())
        .context("the CLI printed nothing")?
        .trim()
        .parse()
        .with_context(|| format!("the CLI printed {out:?}"))
}

/// The estate and its three users, made with the admin CLI before the server starts.
async fn provision(bin: &Path, data_dir: &Path, db_url: &str) -> anyhow::Result<(Uuid, Uuid)> {
    let estate = printed_id(
        &admin_cli(
            bin,
            data_dir,
            db_url,
            &["estate", "add", ESTATE_NAME, "--timezone", "Asia/Shanghai"],
            None,
        )
        .await?,
    )?;
    let mut engineer = None;
    for (user, role) in [
        (GUARD, "guard"),
        (ENGINEER, "engineer"),
        (SUPERVISOR, "supervisor"),
    ] {
        let grant = format!("{estate}:{role}");
        let id = printed_id(
            &admin_cli(
                bin,
                data_dir,
                db_url,
                &["user", "add", user, "--role", &grant],
                Some(&format!("{}\n", client::PASSWORD)),
            )
            .await?,
        )?;
        if role == "engineer" {
            engineer = Some(id);
        }
    }
    Ok((estate, engineer.expect("an engineer was added")))
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
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "mem_total_kib": mem,
    })
}

async fn bench(
    args: &Args,
    s: &Settings,
    data_dir: &Path,
    db_url: &str,
    disk_dev: Option<(u64, u64)>,
    pg: Option<(&str, &str)>,
) -> anyhow::Result<Value> {
    let (estate, engineer) = provision(&args.server_bin, data_dir, db_url)
        .await
        .context("creating the estate and its users with the admin CLI")?;
    println!("estate {estate} with {GUARD}, {ENGINEER} (id {engineer}) and {SUPERVISOR}");

    let now = facts::now_ms();
    let spec = gen::Spec {
        tickets: s.tickets,
        events: s.events,
        days: args.days,
        seed: args.seed,
        now,
    };
    let tickets = Arc::new(gen::plan(&spec));
    let tally = gen::tally(&tickets, now);
    println!(
        "generated {} tickets, {} events, {} photos over {} days; {} rounds; ends: {:?}",
        tally.tickets, tally.events, tally.photos, args.days, tally.rounds, tally.by_end
    );

    let port = server::free_port()?;
    let extra_env: Vec<(&str, String)> = args
        .escalation_interval_secs
        .map(|s| ("PATROL_ESCALATION_INTERVAL_SECS", s.to_string()))
        .into_iter()
        .collect();
    let mut srv = server::Server::spawn_with_env(
        &args.server_bin,
        data_dir,
        port,
        db_url,
        args.server_rust_log.as_deref(),
        &extra_env,
    )?;
    println!("server pid {} on {}", srv.pid, srv.base);
    if let Err(e) = srv
        .wait_ready(Duration::from_secs(args.ready_timeout))
        .await
    {
        let _ = srv.stop().await;
        return Err(e);
    }
    let pg_db = pg.map(|_| db_url);
    let result = phases(
        args, s, &srv, estate, engineer, tickets, &tally, disk_dev, pg_db,
    )
    .await;
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

#[allow(clippy::too_many_arguments)]
async fn phases(
    args: &Args,
    s: &Settings,
    srv: &server::Server,
    estate: Uuid,
    engineer: Uuid,
    tickets: Arc<Vec<gen::Ticket>>,
    tally: &gen::Tally,
    disk_dev: Option<(u64, u64)>,
    pg_db: Option<&str>,
) -> anyhow::Result<Value> {
    let started_at = facts::now_ms();
    let rss_ready = procfs::status_kib(srv.pid, "VmRSS");

    // 1. Seeding.
    println!(
        "seeding over HTTP: {} handsets side by side, up to {} changes per push...",
        args.concurrency, args.batch
    );
    let names = gen::Names {
        estate_id: estate,
        engineer_id: engineer,
    };
    let users = seed::Users {
        guard: GUARD.into(),
        supervisor: SUPERVISOR.into(),
        engineer: ENGINEER.into(),
    };
    let before = procfs::Snapshot::take(Some(srv.pid), disk_dev);
    let seeded = seed::run(
        &srv.base,
        tickets.clone(),
        names,
        users,
        args.concurrency,
        args.batch,
        args.seed,
    )
    .await?;
    let seed_usage = procfs::Snapshot::take(Some(srv.pid), disk_dev).since(&before);
    let rss_seeded = procfs::status_kib(srv.pid, "VmRSS");
    let hwm_seeded = procfs::status_kib(srv.pid, "VmHWM");
    let wall = seeded.wall.as_secs_f64();
    let v = &seeded.verdicts;
    println!(
        "seeded {} events + {} photos in {:.1} s: {:.0} events/s ({:.0} changes/s), {} pushes from {} devices",
        seeded.events,
        seeded.photos,
        wall,
        seeded.events as f64 / wall,
        (seeded.events + seeded.photos) as f64 / wall,
        seeded.batches,
        seeded.devices
    );
    println!(
        "push results: {} accepted, {} duplicate, {} rejected {:?} by action {:?}; {} batches with the ack behind",
        v.accepted,
        v.duplicate,
        v.rejected_total(),
        v.rejected,
        v.rejected_by_action,
        v.ack_behind
    );
    for e in &v.examples {
        println!("  rejected: {e}");
    }

    // PostgreSQL: every ticket was rewritten once per push that touched it, leaving dead
    // row versions behind. Autovacuum would clean them up within a minute or so of the
    // load (where it is on); do it now, so the timings are of the steady state whatever
    // the server's autovacuum settings.
    let vacuum = match pg_db {
        Some(url) if !args.no_vacuum => {
            let (autovacuum, took) = pg_vacuum(url).await?;
            println!(
                "VACUUM (ANALYZE) took {:.1} s (the server's autovacuum is {autovacuum})",
                took.as_secs_f64()
            );
            json!({ "vacuum_analyze_s": round2(took.as_secs_f64()), "autovacuum": autovacuum })
        }
        Some(url) => {
            json!({ "vacuum_analyze_s": null, "autovacuum": pg_show(url, "autovacuum").await.ok() })
        }
        None => Value::Null,
    };

    // 2. The server's view against the generator's.
    let http = client::http_client()?;
    let mut sup =
        client::Session::login(&http, &srv.base, SUPERVISOR, "hazard-bench tracker").await?;
    let (r, _) = measure::call(
        &mut sup,
        &format!("/v1/estates/{estate}/hazard-stats"),
        Expect::Stats,
    )
    .await?;
    let stats: Value = serde_json::from_slice(&r.body)?;
    let expect_open: u64 = tally
        .by_end
        .iter()
        .filter(|(k, _)| !matches!(**k, "closed" | "cancelled"))
        .map(|(_, v)| v)
        .sum();
    let want = |k: &str| tally.by_end.get(k).copied().unwrap_or(0);
    let mut mismatches = Vec::new();
    for (field, expected) in [
        ("total", tally.tickets as u64),
        ("open", expect_open),
        ("closed", want("closed")),
        ("cancelled", want("cancelled")),
    ] {
        if stats[field].as_u64() != Some(expected) {
            mismatches.push(format!(
                "{field}: the server says {}, the generator made {expected}",
                stats[field]
            ));
        }
    }
    let mut by_state = serde_json::Map::new();
    for end in gen::End::ALL {
        // One page of up to 1,000 is enough to compare small counts; larger ones are
        // compared by the statistics above.
        let expected = want(end.as_str());
        if expected <= 1000 {
            let (_, n) = measure::call(
                &mut sup,
                &format!(
                    "/v1/hazards?estate_id={estate}&state={}&limit=1000",
                    end.as_str()
                ),
                Expect::Page,
            )
            .await?;
            if n != expected {
                mismatches.push(format!(
                    "state {}: the server lists {n}, the generator made {expected}",
                    end.as_str()
                ));
            }
            by_state.insert(end.as_str().into(), json!(n));
        }
    }
    if mismatches.is_empty() {
        println!(
            "the server's statistics match the generator: {} tickets, {} open, {} closed, {} cancelled, {} overdue",
            stats["total"], stats["open"], stats["closed"], stats["cancelled"], stats["overdue"]
        );
    } else {
        for m in &mismatches {
            println!("MISMATCH {m}");
        }
    }

    // 3. The tracker calls.
    println!(
        "timing the tracker calls ({} warm-up + {} timed each; CSV {} timed)...",
        args.warmup, s.reps, s.csv_reps
    );
    let e = estate;
    let pid = srv.pid;
    let measure_before = procfs::Snapshot::take(Some(srv.pid), disk_dev);
    let mut series: Vec<Series> = Vec::new();
    let list = format!("/v1/hazards?estate_id={e}&limit=100");
    let fixed = |p: String| move |_: usize| p.clone();
    series.push(
        measure::series(
            &mut sup,
            "list_first_page",
            "GET /v1/hazards?estate_id=E&limit=100".into(),
            fixed(list.clone()),
            Expect::Page,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    series.push(
        measure::series(
            &mut sup,
            "list_state",
            "GET /v1/hazards?estate_id=E&state=in_rectification&limit=100".into(),
            fixed(format!("{list}&state=in_rectification")),
            Expect::Page,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    series.push(
        measure::series(
            &mut sup,
            "list_overdue",
            "GET /v1/hazards?estate_id=E&overdue=true&limit=100".into(),
            fixed(format!("{list}&overdue=true")),
            Expect::Page,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    let follows = args
        .deep_pages
        .min(s.tickets.saturating_sub(1) / 100)
        .max(1);
    let (before, walk_time) = measure::walk(&mut sup, &list, follows).await?;
    println!(
        "  (followed next_before {follows} times in {:.0} ms in all)",
        measure::ms(walk_time)
    );
    series.push(
        measure::series(
            &mut sup,
            "list_deep_page",
            format!(
                "GET /v1/hazards?estate_id=E&limit=100&before=… (page {})",
                follows + 1
            ),
            fixed(format!("{list}&before={}", measure::encode(&before))),
            Expect::Page,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    series.push(
        measure::series(
            &mut sup,
            "stats_all",
            "GET /v1/estates/E/hazard-stats".into(),
            fixed(format!("/v1/estates/{e}/hazard-stats")),
            Expect::Stats,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    let to = facts::now_ms();
    let from = to - 30 * gen::DAY;
    series.push(
        measure::series(
            &mut sup,
            "stats_30_days",
            "GET /v1/estates/E/hazard-stats?from=<now-30d>&to=<now>".into(),
            fixed(format!(
                "/v1/estates/{e}/hazard-stats?from={}&to={}",
                measure::encode(&facts::rfc3339(from)),
                measure::encode(&facts::rfc3339(to))
            )),
            Expect::Stats,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );
    series.push(
        measure::series(
            &mut sup,
            "csv_export",
            "GET /v1/hazards.csv?estate_id=E".into(),
            fixed(format!("/v1/hazards.csv?estate_id={e}")),
            Expect::Csv,
            args.warmup.min(1),
            s.csv_reps,
            pid,
        )
        .await?,
    );
    let mut pick = gen::Rng::new(args.seed ^ 0x71c4e7);
    let ids: Vec<Uuid> = tickets.iter().map(|t| t.hazard_id).collect();
    series.push(
        measure::series(
            &mut sup,
            "ticket_get",
            "GET /v1/hazards/{id} (a random ticket each call)".into(),
            |_| format!("/v1/hazards/{}", ids[pick.below(ids.len() as u64) as usize]),
            Expect::Ticket,
            args.warmup,
            s.reps,
            pid,
        )
        .await?,
    );

    let csv_rows = series
        .iter()
        .find(|x| x.name == "csv_export")
        .and_then(|x| x.items);
    if csv_rows != Some(tally.tickets as u64) {
        mismatches.push(format!(
            "the CSV export has {csv_rows:?} rows, not {}",
            tally.tickets
        ));
    }
    let measure_usage = procfs::Snapshot::take(Some(srv.pid), disk_dev).since(&measure_before);
    println!(
        "measuring took {:.0} s; other load on the machine meanwhile: {} CPU-s",
        measure_usage.wall_s(),
        measure_usage
            .other_cpu_s()
            .map(|x| format!("{x:.1}"))
            .unwrap_or("?".into())
    );
    let hwm = procfs::status_kib(srv.pid, "VmHWM");
    let rss_end = procfs::status_kib(srv.pid, "VmRSS");
    let slow: Vec<String> = series
        .iter()
        .filter(|x| measure::ms(measure::percentile(&x.latencies, 0.5)) > SLOW_MS)
        .map(|x| x.name.to_owned())
        .collect();

    let all_accepted = v.rejected_total() == 0 && v.duplicate == 0 && v.ack_behind == 0;
    let passed = all_accepted && mismatches.is_empty();
    let lat = &seeded.latencies;
    Ok(json!({
        "benchmark": "hazard",
        "backend": s.backend.name(),
        "smoke": s.smoke,
        "started_at": facts::rfc3339(started_at),
        "settings": {
            "tickets": s.tickets, "events": s.events, "days": args.days,
            "batch": args.batch, "concurrency": args.concurrency,
            "reps": s.reps, "warmup": args.warmup, "csv_reps": s.csv_reps,
            "deep_page_follows": follows, "seed": args.seed,
            "server_bin": args.server_bin.display().to_string(),
            "server_rust_log": args.server_rust_log,
            "escalation_interval_secs": args.escalation_interval_secs,
        },
        "machine": machine(),
        "data": {
            "tickets": tally.tickets,
            "events": tally.events,
            "photos": tally.photos,
            "major": tally.major,
            "reopened": tally.reopened,
            "by_action": tally.by_action,
            "by_end_state": tally.by_end,
            "open_overdue_at_generation": tally.overdue_at_now,
            "server_stats_after_seeding": stats,
            "server_list_counts_by_state": by_state,
        },
        "seeding": {
            "wall_s": round2(wall),
            "events": seeded.events,
            "photos": seeded.photos,
            "changes": seeded.events + seeded.photos,
            "events_per_s": (seeded.events as f64 / wall).round(),
            "changes_per_s": ((seeded.events + seeded.photos) as f64 / wall).round(),
            "pushes": seeded.batches,
            "devices": seeded.devices,
            "rounds": seeded.rounds,
            "push_latency_ms": {
                "p50": measure::ms(measure::percentile(lat, 0.5)),
                "p95": measure::ms(measure::percentile(lat, 0.95)),
                "max": measure::ms(measure::percentile(lat, 1.0)),
            },
            "results": {
                "accepted": v.accepted,
                "duplicate": v.duplicate,
                "rejected_by_code": v.rejected,
                "rejected_by_action": v.rejected_by_action,
                "rejected_examples": v.examples,
                "batches_with_ack_behind": v.ack_behind,
            },
            "usage": seed_usage.to_json(),
        },
        "postgres": vacuum,
        "calls": series.iter().map(Series::to_json).collect::<Vec<_>>(),
        "deep_page_walk_ms": measure::ms(walk_time),
        "measuring_usage": measure_usage.to_json(),
        "slow_calls_p50_over_500ms": slow,
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
        "### {} — {} tickets, {} events, {} photos{}",
        r["backend"].as_str().unwrap_or("?"),
        d["tickets"],
        d["events"],
        d["photos"],
        if r["smoke"] == true { " (smoke)" } else { "" }
    );
    println!();
    println!(
        "Escalation sweep every {}; {}.",
        r["settings"]["escalation_interval_secs"]
            .as_u64()
            .map(|s| format!("{s} s"))
            .unwrap_or("60 s (the server's default)".into()),
        match r["postgres"]["vacuum_analyze_s"].as_f64() {
            Some(t) => format!(
                "VACUUM (ANALYZE) after seeding ({t:.1} s; the server's autovacuum is {})",
                r["postgres"]["autovacuum"].as_str().unwrap_or("?")
            ),
            None if r["backend"] == "postgres" => "no VACUUM after seeding".into(),
            None => "SQLite as the server left it".into(),
        }
    );
    println!();
    let int = |v: &Value| v.as_f64().map(|x| format!("{x:.0}")).unwrap_or("?".into());
    println!("| seeding | events/s | changes/s | wall | pushes | push p50 | push p95 | rejected | server peak RSS | database |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} handsets, ≤ {} changes/push | {} | {} | {:.1} s | {} | {:.0} ms | {:.0} ms | {} | {} | {} |",
        r["settings"]["concurrency"],
        r["settings"]["batch"],
        int(&sd["events_per_s"]),
        int(&sd["changes_per_s"]),
        sd["wall_s"].as_f64().unwrap_or(f64::NAN),
        sd["pushes"],
        sd["push_latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
        sd["push_latency_ms"]["p95"].as_f64().unwrap_or(f64::NAN),
        sd["results"]["rejected_by_code"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
            .unwrap_or(0),
        mib(&r["server"]["peak_rss_kib"]),
        r["database_bytes"]
            .as_f64()
            .map(|b| format!("{:.0} MiB", b / 1_048_576.0))
            .unwrap_or("?".into()),
    );
    println!();
    let pg = r["backend"] == "postgres";
    println!(
        "| call | request | calls | p50 ms | p95 ms | max ms | answer | server CPU ms/call{} |",
        if pg { " | postgres CPU ms/call" } else { "" }
    );
    println!(
        "|---|---|---:|---:|---:|---:|---:|---:|{}",
        if pg { "---:|" } else { "" }
    );
    let cpu = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or("-".into());
    for c in r["calls"].as_array().into_iter().flatten() {
        let l = &c["latency_ms"];
        let bytes = c["response_bytes"].as_f64().unwrap_or(0.0);
        let size = if bytes >= 1_048_576.0 {
            format!("{:.1} MiB", bytes / 1_048_576.0)
        } else if bytes >= 1024.0 {
            format!("{:.0} KiB", bytes / 1024.0)
        } else {
            format!("{bytes:.0} B")
        };
        let what = match c["name"].as_str() {
            Some("csv_export") => "rows",
            Some("ticket_get") => "events",
            Some(n) if n.starts_with("stats") => "tickets counted",
            _ => "tickets",
        };
        println!(
            "| {} | `{}` | {} | {:.1} | {:.1} | {:.1} | {} {what}, {size} | {}{} |",
            c["name"].as_str().unwrap_or("?"),
            c["request"].as_str().unwrap_or("?"),
            c["reps"],
            l["p50"].as_f64().unwrap_or(f64::NAN),
            l["p95"].as_f64().unwrap_or(f64::NAN),
            l["max"].as_f64().unwrap_or(f64::NAN),
            c["items"],
            cpu(&c["server_cpu_ms_per_call"]),
            if pg {
                format!(" | {}", cpu(&c["postgres_cpu_ms_per_call"]))
            } else {
                String::new()
            },
        );
    }
    println!();
    let slow = r["slow_calls_p50_over_500ms"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    if !slow.is_empty() {
        println!("slow (p50 over {SLOW_MS} ms): {slow}");
    }
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
        let a = Args::parse_from(["hazard-bench", "--smoke"]);
        assert!(a.smoke);
        assert_eq!(a.tickets, None);
        assert_eq!(a.batch, 500);
        assert_eq!(a.backend, Backend::Sqlite);
    }

    #[test]
    fn the_cli_prints_an_id_first() {
        let id = Uuid::now_v7();
        assert_eq!(
            printed_id(&format!("{id}\tHazard bench estate\tAsia/Shanghai\n")).unwrap(),
            id
        );
        assert!(printed_id("").is_err());
        assert!(printed_id("nope\tx\n").is_err());
    }

    #[test]
    fn the_database_name_is_swapped_in() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }
}
