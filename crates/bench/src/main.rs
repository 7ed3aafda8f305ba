//! `ingest-bench`: N scan facts pushed in batches over HTTP to the real `patrol-sync` binary,
//! beside a raw insert of as many rows into the same database in the same run. Prints a
//! table and writes `target/bench/ingest-<backend>.json`. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p sync-server
//! cargo build --release -p patrol-bench
//! target/release/ingest-bench --backend sqlite
//! target/release/ingest-bench --backend postgres
//! ```

mod common;
mod facts;
mod ingest;
mod openloop;
mod procfs;
mod raw;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Ingest benchmark: scan facts pushed over HTTP to the real server, beside a raw insert.
#[derive(Parser, Debug)]
#[command(name = "ingest-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_bench_<random>` on (it is
    /// dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// The server binary (build it first: `cargo build --release -p sync-server`).
    #[arg(long, default_value = "target/release/patrol-sync")]
    server_bin: PathBuf,
    /// Facts to push in all [default: 100000, or 2000 with --smoke].
    #[arg(long)]
    facts: Option<u64>,
    /// Changes per push (the server accepts at most 1,000).
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Handsets pushing side by side, each its own device with its own seq counter.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// A tiny run for CI (2,000 facts unless --facts is given); writes ingest-<backend>-smoke.json.
    #[arg(long)]
    smoke: bool,
    /// Send every batch twice (same bytes, as after a lost answer): the replay must answer
    /// as the first push did and store nothing more; its latency is reported beside the
    /// first push's (the ingest rate then includes the replays' time).
    #[arg(long)]
    replay: bool,
    /// After the closed-loop phase, push at fixed open-loop rates (fractions of the rate
    /// the closed loop reached) and report latency from each push's due moment.
    #[arg(long)]
    open_loop: bool,
    /// The open-loop rates, as fractions of the closed-loop maximum.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75")]
    open_loop_fractions: Vec<f64>,
    /// Seconds at each open-loop rate [default: 30, or 2 with --smoke].
    #[arg(long)]
    open_loop_secs: Option<u64>,
    /// Handsets in the open-loop pool (each pushes one batch at a time).
    #[arg(long, default_value_t = 32)]
    open_loop_handsets: usize,
    /// The server's missed-visit sweep interval (`PATROL_MISSED_VISIT_INTERVAL_SECS`). The
    /// bench's scans land in the demo estate, whose patrol plan makes the sweep read the
    /// last 26 h of its scans — here every scan pushed — each time: by default it first runs
    /// a day after start, so never during a run (60 s is the server's own default).
    #[arg(long, default_value_t = 86_400)]
    missed_visit_interval_secs: u64,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// RUST_LOG for the server (default: unset, so the server's own default `info,sqlx=warn`).
    #[arg(long)]
    server_rust_log: Option<String>,
    /// Keep the temporary data directory (server log, SQLite file) and the PostgreSQL
    /// database afterwards, for a look inside; they are removed otherwise.
    #[arg(long)]
    keep: bool,
    /// Seconds to wait for the server's /readyz.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
}

const FULL_FACTS: u64 = 100_000;
const SMOKE_FACTS: u64 = 2_000;
/// Project targets (docs/BENCHMARKS.md).
const TARGET_RATIO: f64 = 0.5;
const TARGET_SQLITE_RECORDS_PER_S: f64 = 10_000.0;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingest-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    backend: Backend,
    facts: u64,
    batch: u64,
    concurrency: usize,
    smoke: bool,
    replay: bool,
    /// Open-loop fractions and seconds at each; empty without --open-loop.
    open_loop: Vec<f64>,
    open_loop_secs: u64,
    open_loop_handsets: usize,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let command = command_line();
    println!("command: {command}");
    let facts = args
        .facts
        .unwrap_or(if args.smoke { SMOKE_FACTS } else { FULL_FACTS });
    let s = Settings {
        backend: args.backend,
        facts,
        batch: args.batch,
        concurrency: args.concurrency,
        smoke: args.smoke,
        replay: args.replay,
        open_loop: if args.open_loop {
            args.open_loop_fractions.clone()
        } else {
            Vec::new()
        },
        open_loop_secs: args
            .open_loop_secs
            .unwrap_or(if args.smoke { 2 } else { 30 }),
        open_loop_handsets: args.open_loop_handsets,
    };
    if s.open_loop
        .iter()
        .any(|f| !f.is_finite() || *f <= 0.0 || *f > 2.0)
    {
        bail!("--open-loop-fractions must be above 0 and at most 2");
    }
    if !s.open_loop.is_empty() && (s.open_loop_handsets == 0 || s.open_loop_secs == 0) {
        bail!("--open-loop-handsets and --open-loop-secs must be at least 1");
    }
    if !(1..=1000).contains(&s.batch) {
        bail!("--batch must be from 1 to 1000 (the server's limit per push)");
    }
    if s.concurrency == 0 || s.facts < s.concurrency as u64 {
        bail!("--concurrency must be at least 1 and at most --facts");
    }
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }
    println!(
        "{} facts as scans, {} per push, {} handsets, {} backend, server {}",
        s.facts,
        s.batch,
        s.concurrency,
        s.backend.name(),
        args.server_bin.display()
    );

    let tmp = tempfile::Builder::new()
        .prefix("patrol-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match s.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", tmp.path().join("bench.db").display());
            let dev = procfs::device_of(tmp.path());
            bench(&args, &s, tmp.path(), &url, dev).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_bench_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            let dev = pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(&args, &s, tmp.path(), &url, dev).await;
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
    let report = report?;

    let mut report = report;
    report["command"] = json!(command);
    print_table(&report);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let file = args.out_dir.join(format!(
        "ingest-{}{}.json",
        s.backend.name(),
        if s.smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(())
}

/// The open-loop phase (with `--open-loop`): a pool of new handsets pushes at each
/// fraction of the closed-loop rate in turn. Returns the report and the facts it stored.
async fn open_loop(
    srv: &server::Server,
    s: &Settings,
    closed: &ingest::IngestResult,
) -> anyhow::Result<(Value, u64)> {
    if s.open_loop.is_empty() {
        return Ok((Value::Null, 0));
    }
    let max_pushes_per_s = closed.batches as f64 / closed.wall.as_secs_f64();
    println!(
        "open loop: the closed loop reached {max_pushes_per_s:.1} pushes/s of {}; signing in {} handsets...",
        s.batch, s.open_loop_handsets
    );
    let mut pool = Vec::with_capacity(s.open_loop_handsets);
    for i in 0..s.open_loop_handsets {
        pool.push((ingest::Handset::login(&srv.base, i).await?, 1u64));
    }
    let mut levels = Vec::new();
    let mut facts = 0;
    for &fraction in &s.open_loop {
        let rate = fraction * max_pushes_per_s;
        println!(
            "open loop: {:.0} % of the maximum, {rate:.1} pushes/s for {} s...",
            fraction * 100.0,
            s.open_loop_secs
        );
        let before = procfs::Snapshot::take(Some(srv.pid), None);
        let (level, back) = openloop::level(
            pool,
            fraction,
            rate,
            s.batch,
            Duration::from_secs(s.open_loop_secs),
        )
        .await?;
        let usage = procfs::Snapshot::take(Some(srv.pid), None).since(&before);
        pool = back;
        facts += level.pushes as u64 * s.batch;
        let mut v = level.to_json();
        v["usage"] = usage.to_json();
        let l = &v["latency_from_due_ms"];
        println!(
            "  {} pushes, {} records/s: latency from due p50 {} p99 {} p99.9 {} max {} ms; service p99 {} ms; {} waited for a handset",
            v["pushes"], v["achieved_records_per_s"], l["p50"], l["p99"], l["p99_9"], l["max"],
            v["service_ms"]["p99"], v["waited_for_a_handset"]
        );
        levels.push(v);
    }
    Ok((
        json!({
            "max_pushes_per_s": round2(max_pushes_per_s),
            "max_records_per_s": (max_pushes_per_s * s.batch as f64).round(),
            "max_from": "the closed-loop phase of this run",
            "handsets": s.open_loop_handsets,
            "levels": levels,
        }),
        facts,
    ))
}

/// Resident and peak resident memory of a process now, in KiB.
fn memory(pid: u32) -> Value {
    json!({
        "rss": procfs::status_kib(pid, "VmRSS"),
        "hwm": procfs::status_kib(pid, "VmHWM"),
    })
}

fn ms(d: Duration) -> f64 {
    round2(d.as_secs_f64() * 1000.0)
}

/// One run against a fresh database: the HTTP phase with the server up, then the server
/// stopped, then the raw insert into the same database.
async fn bench(
    args: &Args,
    s: &Settings,
    data_dir: &Path,
    db_url: &str,
    disk_dev: Option<(u64, u64)>,
) -> anyhow::Result<Value> {
    let port = server::free_port()?;
    let mut srv = server::Server::spawn_with_env(
        &args.server_bin,
        data_dir,
        port,
        db_url,
        args.server_rust_log.as_deref(),
        &[(
            "PATROL_MISSED_VISIT_INTERVAL_SECS",
            args.missed_visit_interval_secs.to_string(),
        )],
    )?;
    println!("server pid {} on {}", srv.pid, srv.base);
    if let Err(e) = srv
        .wait_ready(Duration::from_secs(args.ready_timeout))
        .await
    {
        let _ = srv.stop().await;
        return Err(e);
    }
    // What `serve --demo` seeded (its demo patrol week is facts too), so the checks below
    // count only this run's.
    let seeded = async {
        let db = raw::Db::open(db_url, 1).await?;
        let n = db.count_facts().await?;
        db.close().await;
        anyhow::Ok(n)
    }
    .await;
    let seeded = match seeded {
        Ok(n) => n,
        Err(e) => {
            let _ = srv.stop().await;
            return Err(e.context("counting the demo's facts"));
        }
    };
    let http = async {
        let mem_ready = memory(srv.pid);
        let mut handsets = Vec::new();
        for i in 0..s.concurrency {
            handsets.push(ingest::Handset::login(&srv.base, i).await?);
        }
        let owner = raw::Owner {
            estate_id: handsets[0].estate_id,
            user_id: handsets[0].user_id,
        };
        let users: Vec<String> = handsets
            .iter()
            .map(|h| format!("{} ({})", h.username, h.device_id))
            .collect();
        println!("signed in: {}", users.join(", "));
        let mem_login = memory(srv.pid);
        println!("pushing...");
        let before = procfs::Snapshot::take(Some(srv.pid), disk_dev);
        let result = ingest::run(handsets, s.facts, s.batch, s.replay).await?;
        let usage = procfs::Snapshot::take(Some(srv.pid), disk_dev).since(&before);
        let hwm = procfs::status_kib(srv.pid, "VmHWM");
        let rss = procfs::status_kib(srv.pid, "VmRSS");
        let memory = json!({
            "after_ready": mem_ready,
            "after_login": mem_login,
            "after_push": memory(srv.pid),
        });
        let open = open_loop(&srv, s, &result).await?;
        anyhow::Ok((result, usage, hwm, rss, owner, users, memory, open))
    }
    .await;
    let http = match http {
        Ok(x) => x,
        Err(e) => {
            let tail = srv.log_tail(10);
            let _ = srv.stop().await;
            return Err(anyhow::anyhow!("{e:#}\nthe server's log ends:\n{tail}"));
        }
    };
    let status = srv.stop().await?;
    let (ingest, usage, hwm, rss, owner, users, memory, (open_loop, open_facts)) = http;
    let ingest_rate = ingest.facts as f64 / ingest.wall.as_secs_f64();
    println!(
        "ingest: {} facts in {:.2} s = {:.0} records/s; server stopped ({status})",
        ingest.facts,
        ingest.wall.as_secs_f64(),
        ingest_rate
    );

    // Raw baseline, server stopped: the database has the machine to itself.
    let db = raw::Db::open(db_url, s.concurrency).await?;
    let stored = db.count_facts().await? - seeded;
    if stored != s.facts + open_facts {
        bail!(
            "the database holds {stored} new facts after the HTTP phase (and {seeded} of the demo), not {}",
            s.facts + open_facts
        );
    }
    let writers = db.writers(s.concurrency);
    println!(
        "raw insert: {} scans (a `facts` row and a `scans` row each, as the server stores them), {} per transaction, {writers} writer(s)...",
        s.facts, s.batch
    );
    let before = procfs::Snapshot::take(None, disk_dev);
    let rawr = db.insert(owner, s.facts, s.batch, writers).await?;
    let raw_usage = procfs::Snapshot::take(None, disk_dev).since(&before);
    let after = db.count_facts().await? - seeded;
    db.close().await;
    if after != 2 * s.facts + open_facts {
        bail!(
            "the database holds {after} new facts after the raw insert, not {}",
            2 * s.facts + open_facts
        );
    }
    let raw_rate = rawr.rows as f64 / rawr.wall.as_secs_f64();
    let ratio = ingest_rate / raw_rate;
    let replay = (!ingest.replays.is_empty()).then(|| {
        let first = ingest.percentile(0.50);
        let again = ingest::percentile(&ingest.replays, 0.50);
        let speedup = first.as_secs_f64() / again.as_secs_f64().max(1e-9);
        println!(
            "replay: {} batches sent twice; p50 first push {:.2} ms, replay {:.2} ms ({speedup:.1}x faster); facts stored once",
            ingest.replays.len(),
            first.as_secs_f64() * 1000.0,
            again.as_secs_f64() * 1000.0
        );
        json!({
            "batches": ingest.replays.len(),
            "first_p50_ms": ms(first),
            "replay_ms": {
                "p50": ms(again),
                "p95": ms(ingest::percentile(&ingest.replays, 0.95)),
                "p99": ms(ingest::percentile(&ingest.replays, 0.99)),
            },
            "speedup_p50": round2(speedup),
            "facts_stored_once": true,
        })
    });
    println!(
        "raw: {} rows in {:.2} s = {:.0} rows/s",
        rawr.rows,
        rawr.wall.as_secs_f64(),
        raw_rate
    );

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
    let sqlite = s.backend == Backend::Sqlite;
    Ok(json!({
        "benchmark": "ingest",
        "backend": s.backend.name(),
        "smoke": s.smoke,
        "started_at": facts::rfc3339(facts::now_ms()),
        "settings": {
            "facts": s.facts, "batch": s.batch, "concurrency": s.concurrency, "replay": s.replay,
            "open_loop_fractions": s.open_loop, "open_loop_secs": s.open_loop_secs,
            "open_loop_handsets": s.open_loop_handsets,
            "server_bin": args.server_bin.display().to_string(),
            "missed_visit_interval_secs": args.missed_visit_interval_secs,
            "server_rust_log": args.server_rust_log,
        },
        "machine": {
            "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
            "cpu_model": cpu_model,
            "mem_total_kib": mem,
        },
        "handsets": users,
        "replay": replay,
        "open_loop": open_loop,
        "ingest": {
            "records": ingest.facts,
            "batches": ingest.batches,
            "wall_s": round2(ingest.wall.as_secs_f64()),
            "records_per_s": ingest_rate.round(),
            "batch_latency_ms": {
                "p50": ms(ingest.percentile(0.50)),
                "p95": ms(ingest.percentile(0.95)),
                "p99": ms(ingest.percentile(0.99)),
                "max": ms(ingest.percentile(1.0)),
            },
            "usage": usage.to_json(),
        },
        "raw": {
            "rows": rawr.rows,
            "transactions": rawr.transactions,
            "writers": rawr.writers,
            "server_running": false,
            "tables": ["facts", "scans"],
            "rows_already_in_table": stored,
            "wall_s": round2(rawr.wall.as_secs_f64()),
            "rows_per_s": raw_rate.round(),
            "usage": raw_usage.to_json(),
        },
        "ratio_ingest_over_raw": (ratio * 1000.0).round() / 1000.0,
        "server": {
            "peak_rss_kib": hwm,
            "rss_at_end_kib": rss,
            "memory_by_stage_kib": memory,
        },
        "targets": {
            "ratio_at_least": TARGET_RATIO,
            "ratio_met": ratio >= TARGET_RATIO,
            "sqlite_records_per_s_at_least": TARGET_SQLITE_RECORDS_PER_S,
            "sqlite_records_per_s_met": if sqlite { json!(ingest_rate >= TARGET_SQLITE_RECORDS_PER_S) } else { Value::Null },
        },
    }))
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mib = |v: &Value| {
        v.as_f64()
            .map(|k| format!("{:.1} MiB", k / 1024.0))
            .unwrap_or("?".into())
    };
    println!();
    println!(
        "{:<9} {:>8} {:>6} {:>5} {:>14} {:>12} {:>7} {:>16}",
        "backend",
        "facts",
        "batch",
        "conc",
        "ingest rec/s",
        "raw rows/s",
        "ratio",
        "server peak RSS"
    );
    println!(
        "{:<9} {:>8} {:>6} {:>5} {:>14.0} {:>12.0} {:>7.3} {:>16}",
        r["backend"].as_str().unwrap_or("?"),
        f(&r["settings"]["facts"]),
        f(&r["settings"]["batch"]),
        f(&r["settings"]["concurrency"]),
        f(&r["ingest"]["records_per_s"]),
        f(&r["raw"]["rows_per_s"]),
        f(&r["ratio_ingest_over_raw"]),
        mib(&r["server"]["peak_rss_kib"]),
    );
    let lat = &r["ingest"]["batch_latency_ms"];
    println!(
        "push latency ms: p50 {} p95 {} p99 {} max {}",
        lat["p50"], lat["p95"], lat["p99"], lat["max"]
    );
    for (phase, u) in [
        ("ingest", &r["ingest"]["usage"]),
        ("raw", &r["raw"]["usage"]),
    ] {
        let cores = |k: &str| {
            u[k]["cores"]
                .as_f64()
                .map(|c| format!("{c:.2}"))
                .unwrap_or("-".into())
        };
        println!(
            "{phase:<6} CPU cores busy: server {} client {} postgres {} | machine {} (other {} cpu-s) iowait {} steal {} cpu-s | disk writes {} flushes {} ({} MiB)",
            cores("server"),
            cores("client"),
            cores("postgres_all_processes"),
            u["machine"]["busy_cores"],
            u["machine"]["other_cpu_s"],
            u["machine"]["iowait_cpu_s"],
            u["machine"]["steal_cpu_s"],
            u["disk"]["writes"],
            u["disk"]["flushes"],
            u["disk"]["mib_written"],
        );
    }
    if let Some(threads) = r["ingest"]["usage"]["server_threads"].as_array() {
        let list: Vec<String> = threads
            .iter()
            .filter(|t| t["cpu_s"].as_f64().unwrap_or(0.0) > 0.0)
            .take(6)
            .map(|t| {
                format!(
                    "{}/{} {} ({} sleeps)",
                    t["name"].as_str().unwrap_or("?"),
                    t["tid"],
                    t["cores"],
                    t["voluntary_switches"]
                )
            })
            .collect();
        println!("ingest server threads (cores busy): {}", list.join(", "));
    }
    if let Some(levels) = r["open_loop"]["levels"].as_array() {
        println!(
            "open loop (max {} pushes/s = {} records/s from the closed loop; latency from each push's due moment):",
            r["open_loop"]["max_pushes_per_s"], r["open_loop"]["max_records_per_s"]
        );
        println!(
            "{:>6} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "% max", "pushes/s", "records/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "waited"
        );
        for l in levels {
            let d = &l["latency_from_due_ms"];
            println!(
                "{:>6.0} {:>10.1} {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>8}",
                f(&l["fraction_of_max"]) * 100.0,
                f(&l["target_pushes_per_s"]),
                f(&l["achieved_records_per_s"]),
                d["p50"],
                d["p99"],
                d["p99_9"],
                d["max"],
                l["waited_for_a_handset"]
            );
        }
    }
    let t = &r["targets"];
    let note = if r["smoke"] == true {
        " (a smoke run is too small to judge them)"
    } else {
        ""
    };
    println!(
        "targets (informational, never fail the run{note}): ratio >= {} {}; SQLite >= {} records/s {}",
        t["ratio_at_least"],
        if t["ratio_met"] == true {
            "MET"
        } else {
            "NOT MET"
        },
        t["sqlite_records_per_s_at_least"],
        match &t["sqlite_records_per_s_met"] {
            Value::Bool(true) => "MET",
            Value::Bool(false) => "NOT MET",
            _ => "(n/a: not SQLite)",
        }
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::shell_quote;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn the_database_name_is_swapped_in() {
        let u = "postgres://postgres@127.0.0.1:5432/postgres";
        assert_eq!(
            with_database(u, "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
        assert!(with_database("nonsense", "x").is_err());
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--backend"), "--backend");
        assert_eq!(shell_quote("target/release/x"), "target/release/x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn smoke_defaults_to_a_tiny_run() {
        let a = Args::parse_from(["ingest-bench", "--smoke"]);
        assert!(a.smoke);
        assert_eq!(a.facts, None);
        assert_eq!(a.batch, 100);
        assert_eq!(a.concurrency, 4);
        assert_eq!(a.backend, Backend::Sqlite);
    }
}
