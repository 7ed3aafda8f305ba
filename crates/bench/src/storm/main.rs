//! `storm-bench`: the shift-change storm (issue 5, item 5). 1,000 handsets, each holding a
//! 2-hour offline backlog made by the fleet simulator (shared-core's patrol simulator at the
//! rules' cadence, a few hazard reports with their photos), are released at once against the
//! real `patrol-sync` binary; each pushes its backlog in batches, one after another. Measures
//! the time until every handset's backlog is acknowledged, the error rate, push latency,
//! server peak RSS and CPU; then checks through a full pull that the server holds exactly the
//! facts sent. Prints a table and writes `target/bench/storm-<backend>[-smoke].json`.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/storm-bench --backend sqlite
//! target/release/storm-bench --backend postgres
//! ```

#[allow(dead_code)]
#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../server.rs"]
mod server;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use fleet_sim::client::{http_client, Session};
use fleet_sim::plan::{self, PlanConfig, PlannedBatch, MINUTE};
use fleet_sim::push::{percentile_ms, push_batch, tally, Counters, PushPolicy};
use fleet_sim::run::{login_fleet, now_ms, pull_reference};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The shift-change storm: N handsets push their offline backlogs at once.
#[derive(Parser, Debug)]
#[command(name = "storm-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_storm_<random>` on (dropped
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
    /// Handsets [default: 1000, or 50 with --smoke].
    #[arg(long)]
    handsets: Option<usize>,
    /// Minutes each handset was offline: its backlog [default: 120, or 20 with --smoke].
    #[arg(long)]
    backlog_minutes: Option<i64>,
    /// Most changes per push.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Users the handsets sign in as, round-robin (the demo estate's guards).
    #[arg(long, default_value = "guard1,guard2", value_delimiter = ',')]
    users: Vec<String>,
    /// Logins at once (not timed; the server hashes a few passwords at a time).
    #[arg(long, default_value_t = 8)]
    login_concurrency: usize,
    /// Probability a scan leads to a hazard report with its photo fact.
    #[arg(long, default_value_t = 0.005)]
    p_hazard: f64,
    /// Attempts per batch before it is given up (transport errors, timeouts, 429, 5xx are
    /// retried with backoff, like a handset).
    #[arg(long, default_value_t = 20)]
    max_attempts: u32,
    /// Client timeout per push, seconds.
    #[arg(long, default_value_t = 120)]
    request_timeout: u64,
    #[arg(long, default_value_t = 20_261_207)]
    seed: u64,
    /// The CI form: 50 handsets × 20 minutes; writes storm-<backend>-smoke.json.
    #[arg(long)]
    smoke: bool,
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// RUST_LOG for the server (default: unset, so the server's own default).
    #[arg(long)]
    server_rust_log: Option<String>,
    /// Keep the data directory and the PostgreSQL database.
    #[arg(long)]
    keep: bool,
    /// Seconds to wait for the server's /readyz (the demo seeding runs first).
    #[arg(long, default_value_t = 180)]
    ready_timeout: u64,
    /// Before starting, wait up to this many seconds for the 1-minute load average to fall
    /// under 1.0 (another build on the machine); 0 to start at once.
    #[arg(long, default_value_t = 0)]
    wait_quiet: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("storm-bench: FAILED: see the checks above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("storm-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn loadavg() -> Option<(f64, String)> {
    let l = std::fs::read_to_string("/proc/loadavg").ok()?;
    let one = l.split_whitespace().next()?.parse().ok()?;
    Some((
        one,
        l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    ))
}

fn nofile_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    ok.then_some((r.rlim_cur, r.rlim_max))
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let command = command_line();
    println!("command: {command}");
    let handsets = args.handsets.unwrap_or(if args.smoke { 50 } else { 1000 });
    let backlog = args
        .backlog_minutes
        .unwrap_or(if args.smoke { 20 } else { 120 });
    ensure!(handsets >= 1, "--handsets must be at least 1");
    ensure!(backlog >= 1, "--backlog-minutes must be at least 1");
    ensure!(
        (1..=1000).contains(&args.batch),
        "--batch must be from 1 to 1000"
    );
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }
    // Every handset holds a connection during the storm, and so does the server.
    if let Some((soft, _)) = nofile_limit() {
        ensure!(
            soft as usize > handsets + 256,
            "the open-file limit ({soft}) is too low for {handsets} connections: raise `ulimit -n`"
        );
    }
    if args.wait_quiet > 0 {
        let t = Instant::now();
        while let Some((one, _)) = loadavg() {
            if one < 1.0 || t.elapsed().as_secs() >= args.wait_quiet {
                break;
            }
            eprintln!("waiting for the load average ({one:.2}) to fall under 1.0...");
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("patrol-storm-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match args.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", tmp.path().join("bench.db").display());
            let dev = procfs::device_of(tmp.path());
            bench(&args, handsets, backlog, tmp.path(), &url, dev).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_storm_{}",
                &Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            let dev = pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(&args, handsets, backlog, tmp.path(), &url, dev).await;
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
    report["backend"] = json!(args.backend.name());
    print_table(&report);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let file = args.out_dir.join(format!(
        "storm-{}{}.json",
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
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "mem_total_kib": mem,
        "loadavg_at_start": loadavg().map(|l| l.1),
        "nofile_limit": nofile_limit().map(|l| l.0),
    })
}

async fn bench(
    args: &Args,
    handsets: usize,
    backlog: i64,
    data_dir: &Path,
    db_url: &str,
    disk: Option<(u64, u64)>,
) -> anyhow::Result<Value> {
    let machine = machine();
    let port = server::free_port()?;
    // The missed-visit sweep's first run is one interval after start: keep it out.
    let extra_env = [("PATROL_MISSED_VISIT_INTERVAL_SECS", "86400".to_owned())];
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
    let result = phases(args, handsets, backlog, &srv, disk).await;
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            let tail = srv.log_tail(15);
            let _ = srv.stop().await;
            return Err(anyhow::anyhow!("{e:#}\nthe server's log ends:\n{tail}"));
        }
    };
    let status = srv.stop().await?;
    println!("server stopped ({status})");
    report["machine"] = machine;
    Ok(report)
}

/// One handset's storm: its batches one after another.
struct HandsetOut {
    counters: Counters,
    /// From the release to the answer acknowledging its last seq.
    acked_after: Option<Duration>,
}

async fn phases(
    args: &Args,
    n: usize,
    backlog: i64,
    srv: &server::Server,
    disk: Option<(u64, u64)>,
) -> anyhow::Result<Value> {
    let rss_ready = procfs::status_kib(srv.pid, "VmRSS");
    let http = http_client(n + 8)?;

    // 1. Sign-in (not timed as part of the storm).
    let devices: Vec<Uuid> = plan::guards(args.seed, n)
        .iter()
        .map(|g| g.device_id.0)
        .collect();
    println!(
        "signing in {n} handsets as {} ({} at a time)...",
        args.users.join(","),
        args.login_concurrency
    );
    let t = Instant::now();
    let before_login = procfs::Snapshot::take(Some(srv.pid), disk);
    let mut sessions = login_fleet(
        &http,
        &srv.base,
        &args.users,
        "demo",
        &devices,
        args.login_concurrency,
    )
    .await?;
    let login = procfs::Snapshot::take(Some(srv.pid), disk).since(&before_login);
    let login_s = t.elapsed().as_secs_f64();
    println!(
        "signed in {n} handsets in {login_s:.1} s ({:.1} logins/s; server CPU {:.1} s)",
        n as f64 / login_s,
        login.server_cpu_s().unwrap_or(0.0)
    );
    for s in &mut sessions {
        s.request_timeout = Duration::from_secs(args.request_timeout);
    }

    // 2. The backlogs: the demo estate's plan, pulled by the first handset.
    let (estate, tz) = sessions[0].estate(None)?;
    let reference = pull_reference(&mut sessions[0], estate, &tz).await?;
    ensure!(
        !reference.checkpoints.is_empty(),
        "the demo estate has no patrol plan (is the server started with --demo?)"
    );
    let to = now_ms();
    let mut pc = PlanConfig::new(args.seed, n, to - backlog * MINUTE, to).backlog(backlog * MINUTE);
    pc.max_batch = args.batch;
    pc.p_hazard = args.p_hazard;
    let t = Instant::now();
    let fleet = plan::build(&reference, &pc);
    let plan_s = t.elapsed().as_secs_f64();
    let ledger = fleet.ledger.clone();
    let stats = fleet.stats.clone();
    // What each handset synced when it went offline (pushed first, untimed), and its backlog.
    let mut warm: Vec<(Uuid, Vec<PlannedBatch>)> = Vec::new();
    let mut storm: Vec<(Uuid, Vec<PlannedBatch>)> = Vec::new();
    for h in fleet.handsets {
        let (w, b): (Vec<_>, Vec<_>) = h.batches.into_iter().partition(|b| b.warmup);
        warm.push((h.device_id, w));
        storm.push((h.device_id, b));
    }
    let kinds = |x: &[(Uuid, Vec<PlannedBatch>)]| {
        let mut k: BTreeMap<String, u64> = BTreeMap::new();
        for c in x.iter().flat_map(|h| &h.1).flat_map(|b| &b.changes) {
            *k.entry(c["kind"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        k
    };
    let (warm_kinds, storm_kinds) = (kinds(&warm), kinds(&storm));
    let count = |x: &[(Uuid, Vec<PlannedBatch>)]| {
        (
            x.iter()
                .flat_map(|h| &h.1)
                .map(|b| b.changes.len())
                .sum::<usize>(),
            x.iter().map(|h| h.1.len()).sum::<usize>(),
        )
    };
    let (warm_changes, warm_batches) = count(&warm);
    let (changes, batches) = count(&storm);
    println!(
        "backlogs: {changes} changes in {batches} batches ({storm_kinds:?}; {:.1} changes per handset), after {warm_changes} changes synced when going offline; simulated in {plan_s:.2} s",
        changes as f64 / n as f64
    );
    let per_handset: Vec<usize> = storm.iter().map(|h| h.1.len()).collect();
    let bodies_planned = storm.iter().filter(|h| !h.1.is_empty()).count();
    let policy = PushPolicy {
        request_timeout: Duration::from_secs(args.request_timeout),
        max_attempts: args.max_attempts,
        ..PushPolicy::default()
    };

    // 3. What the handsets synced before going offline (not timed; 16 handsets at a time).
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = JoinSet::new();
    for (i, (mut s, (device, batches))) in sessions.into_iter().zip(warm).enumerate() {
        let sem = sem.clone();
        set.spawn(async move {
            let _p = sem.acquire().await?;
            let mut c = Counters::default();
            for b in &batches {
                let body = b.body_at(device, now_ms() - b.received_at);
                c.batches += 1;
                c.changes_sent += b.changes.len() as u64;
                if let Some(answer) = push_batch(&mut s, &body, &policy, &mut c).await? {
                    tally(&b.changes, &answer, &mut c);
                }
            }
            anyhow::Ok((i, s, c))
        });
    }
    let mut slots: Vec<Option<Session>> = (0..n).map(|_| None).collect();
    let mut warm_counters = Counters::default();
    while let Some(r) = set.join_next().await {
        let (i, s, c) = r.context("a warm-up task panicked")??;
        slots[i] = Some(s);
        warm_counters.merge(c);
    }
    let sessions: Vec<Session> = slots.into_iter().flatten().collect();
    let warm_s = t.elapsed().as_secs_f64();
    println!(
        "warm-up: {warm_changes} changes in {warm_batches} batches pushed in {warm_s:.1} s ({} accepted, {} errors)",
        warm_counters.accepted,
        warm_counters.error_count()
    );
    ensure!(
        warm_counters.accepted == warm_changes as u64 && warm_counters.failed_batches == 0,
        "the warm-up was not accepted whole: {:?}",
        warm_counters.first_error
    );

    // 4. The storm.
    let hwm_before = procfs::status_kib(srv.pid, "VmHWM");
    let rss_before = procfs::status_kib(srv.pid, "VmRSS");
    let ready = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for (mut s, (device, batches)) in sessions.into_iter().zip(storm) {
        let (ready, acked, gate) = (ready.clone(), acked.clone(), gate.clone());
        set.spawn(async move {
            let mut c = Counters::default();
            ready.fetch_add(1, Ordering::Relaxed);
            // Every handset waits here; the release opens the gate for all at once.
            let _p = gate.acquire().await?;
            let t = Instant::now();
            let mut all_acked = !batches.is_empty();
            for b in &batches {
                let body = b.body_at(device, now_ms() - b.received_at);
                c.batches += 1;
                c.changes_sent += b.changes.len() as u64;
                match push_batch(&mut s, &body, &policy, &mut c).await? {
                    Some(answer) => {
                        let before = c.ack_behind;
                        tally(&b.changes, &answer, &mut c);
                        if c.ack_behind != before {
                            all_acked = false;
                        }
                    }
                    None => all_acked = false,
                }
            }
            let acked_after = all_acked.then(|| t.elapsed());
            if all_acked {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(HandsetOut {
                counters: c,
                acked_after,
            })
        });
    }
    while (ready.load(Ordering::Relaxed) as usize) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // RSS sampled every 50 ms during the storm.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid) = (sampling.clone(), srv.pid);
        tokio::spawn(async move {
            let mut peak = 0u64;
            let mut samples = Vec::new();
            let t = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                if let Some(r) = procfs::status_kib(pid, "VmRSS") {
                    peak = peak.max(r);
                    if samples.len() < 10_000 {
                        samples.push((t.elapsed().as_millis() as u64, r));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (peak, samples)
        })
    };
    let progress = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "  {:>5.0} s: {}/{n} handsets fully acknowledged",
                    t.elapsed().as_secs_f64(),
                    acked.load(Ordering::Relaxed)
                );
            }
        })
    };
    println!("releasing {n} handsets at once...");
    let before = procfs::Snapshot::take(Some(srv.pid), disk);
    let t_release = Instant::now();
    gate.add_permits(n);
    let mut counters = Counters::default();
    let mut acked_times = Vec::new();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(o)) => {
                counters.merge(o.counters);
                if let Some(d) = o.acked_after {
                    acked_times.push(d);
                }
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("a handset task panicked: {e}"));
            }
        }
    }
    let storm_s = t_release.elapsed().as_secs_f64();
    let usage = procfs::Snapshot::take(Some(srv.pid), disk).since(&before);
    progress.abort();
    sampling.store(false, Ordering::Relaxed);
    let (rss_peak_sampled, rss_samples) = sampler.await.unwrap_or_default();
    let hwm_after = procfs::status_kib(srv.pid, "VmHWM");
    if let Some(e) = first_err {
        return Err(e);
    }
    counters.latencies.sort();
    acked_times.sort();
    let all_acked_s = acked_times.last().map(|d| d.as_secs_f64());
    let error_requests = counters.error_count();
    let error_rate = error_requests as f64 / counters.requests.max(1) as f64;
    println!(
        "storm over in {storm_s:.2} s: {} of {n} handsets fully acknowledged; {} requests, {} errors ({:.3} %), {} retries",
        acked_times.len(),
        counters.requests,
        error_requests,
        error_rate * 100.0,
        counters.retries
    );

    // 5. Verification through a full pull by an overseer (warm-up and storm alike).
    let t = Instant::now();
    let mut sup = Session::login(
        &http,
        &srv.base,
        "supervisor1",
        "demo",
        Uuid::now_v7(),
        "storm-bench verifier",
    )
    .await?;
    let v = fleet_sim::verify::verify(&mut sup, &ledger).await?;
    let verify_s = t.elapsed().as_secs_f64();
    println!(
        "verify: {} ({} ledger facts; {} facts pulled in {} pages, {:.1} s)",
        if v.ok() { "OK" } else { "FAILED" },
        ledger.len(),
        v.pulled_facts,
        v.pages,
        verify_s
    );
    for p in v.problems() {
        println!("  {p}");
    }

    let checks = json!({
        "every_handset_acknowledged": acked_times.len() == bodies_planned,
        "every_change_accepted": counters.accepted == changes as u64 && counters.rejected == 0,
        "no_batch_given_up": counters.failed_batches == 0,
        "server_holds_exactly_the_ledger": v.ok(),
    });
    let passed = checks
        .as_object()
        .is_some_and(|o| o.values().all(|x| *x == true));
    let lat = |v: &[Duration]| {
        json!({
            "count": v.len(),
            "p50_ms": percentile_ms(v, 0.5),
            "p90_ms": percentile_ms(v, 0.9),
            "p99_ms": percentile_ms(v, 0.99),
            "max_ms": percentile_ms(v, 1.0),
        })
    };
    let server_cpu = usage.server_cpu_s().unwrap_or(0.0);
    Ok(json!({
        "handsets": n,
        "backlog_minutes": backlog,
        "batch": args.batch,
        "seed": args.seed,
        "login": { "s": round2(login_s), "per_s": round2(n as f64 / login_s),
                   "concurrency": args.login_concurrency, "usage": login.to_json() },
        "backlog": {
            "changes": changes, "batches": batches, "by_kind": storm_kinds,
            "warmup": { "changes": warm_changes, "batches": warm_batches, "by_kind": warm_kinds,
                        "pushed_s": round2(warm_s) },
            "plan": { "scans": stats.scans, "run_events": stats.run_events,
                      "hazard_reports": stats.hazard_reports, "photos": stats.photos,
                      "skewed_batches": stats.skewed_batches,
                      "reboot_batches": stats.reboot_batches },
            "batches_per_handset_max": per_handset.iter().max(),
            "changes_per_handset": round2(changes as f64 / n as f64),
            "simulate_s": round2(plan_s),
            "ledger": ledger.to_json(false),
        },
        "storm": {
            "wall_s": round2(storm_s),
            "all_acknowledged_s": all_acked_s.map(round2),
            "acknowledged_p50_s": acked_times.get(acked_times.len() / 2).map(|d| round2(d.as_secs_f64())),
            "handsets_acknowledged": acked_times.len(),
            "changes_per_s": round2(changes as f64 / storm_s),
            "requests": counters.requests,
            "retries": counters.retries,
            "errors": counters.errors,
            "error_requests": error_requests,
            "error_rate": error_rate,
            "first_error": counters.first_error,
            "failed_batches": counters.failed_batches,
            "accepted": counters.accepted,
            "duplicate": counters.duplicate,
            "rejected": counters.rejected,
            "ack_behind": counters.ack_behind,
            "push_latency": lat(&counters.latencies),
            "server_cpu_s": round2(server_cpu),
            "server_cores": round2(server_cpu / storm_s.max(1e-9)),
            "usage": usage.to_json(),
        },
        "rss_kib": {
            "ready": rss_ready,
            "before_storm": rss_before,
            "hwm_before_storm": hwm_before,
            "hwm_after_storm": hwm_after,
            "peak_sampled_during_storm": rss_peak_sampled,
            "samples_ms_kib": rss_samples.iter().step_by((rss_samples.len() / 100).max(1)).collect::<Vec<_>>(),
        },
        "verify": v.to_json(),
        "verify_s": round2(verify_s),
        "checks": { "passed": passed, "each": checks },
    }))
}

fn print_table(r: &Value) {
    let s = &r["storm"];
    let l = &s["push_latency"];
    let kib = |v: &Value| {
        v.as_u64()
            .map_or("-".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
    };
    println!();
    println!(
        "| backend | handsets × backlog | changes (batches) | sign-in | all acknowledged | changes/s | errors (rate) | push p50 / p99 / max | server peak RSS (HWM) | server CPU | verify |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} × {} min | {} ({}) | {} s | {} s | {} | {} ({:.3} %) | {} / {} / {} ms | {} | {} s ({} cores) | {} |",
        r["backend"].as_str().unwrap_or("?"),
        r["handsets"],
        r["backlog_minutes"],
        r["backlog"]["changes"],
        r["backlog"]["batches"],
        r["login"]["s"],
        s["all_acknowledged_s"],
        s["changes_per_s"],
        s["error_requests"],
        s["error_rate"].as_f64().unwrap_or(0.0) * 100.0,
        l["p50_ms"],
        l["p99_ms"],
        l["max_ms"],
        kib(&r["rss_kib"]["hwm_after_storm"]),
        s["server_cpu_s"],
        s["server_cores"],
        if r["verify"]["ok"] == true { "exact" } else { "FAILED" },
    );
    println!(
        "RSS: {} at ready, {} before the storm (HWM {} after the logins), peak sampled during it {}",
        kib(&r["rss_kib"]["ready"]),
        kib(&r["rss_kib"]["before_storm"]),
        kib(&r["rss_kib"]["hwm_before_storm"]),
        kib(&r["rss_kib"]["peak_sampled_during_storm"]),
    );
    println!("checks: {}", r["checks"]);
}
