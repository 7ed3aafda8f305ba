//! `longpoll-bench`: many quiet handsets. N handsets of the demo's first estate sign in,
//! pull to the end, then each holds `GET /v1/sync/pull?cursor=…&wait=60` open and issues it
//! again whenever it returns, as a handset does. When all are parked, one more handset
//! pushes a trickle of hazard reports (each with its before photo); every poller that may
//! see the ticket must receive it. Measures the wake-up latency, the pollers that never
//! woke, the server's RSS and CPU (idle-parked vs trickle). Prints a table and writes
//! `target/bench/longpoll-<backend>[-smoke].json`. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/longpoll-bench --backend sqlite
//! target/release/longpoll-bench --backend postgres
//! ```

#[allow(dead_code)]
#[path = "../pull/client.rs"]
mod client;
#[allow(dead_code)]
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

use anyhow::{bail, ensure, Context};
use clap::Parser;
use client::{login, ms, percentile, pull_page, Encoding, Session};
use common::{command_line, pg_drop, pg_setup, round2, with_database, Backend};
use facts::{hlc, now_ms, rfc3339};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Long-poll benchmark: N handsets parked on pull, a trickle of pushes wakes them.
#[derive(Parser, Debug)]
#[command(name = "longpoll-bench", version)]
struct Args {
    /// Database behind the server.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the scratch database `patrol_longpoll_<random>` on
    /// (dropped at the end).
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
    /// Handsets holding long-polls [default: 3000, or 50 with --smoke].
    #[arg(long)]
    handsets: Option<usize>,
    /// Logins in flight at once (the server hashes a few at a time anyway).
    #[arg(long, default_value_t = 8)]
    login_concurrency: usize,
    /// Catch-up pulls in flight at once, before parking.
    #[arg(long, default_value_t = 32)]
    pull_concurrency: usize,
    /// Every handset pulls the demo's history from no cursor; by default one handset per
    /// user does, and the user's other handsets pull to the end from the cursor it
    /// reached (a cursor is bound to the user's scope, not to the device).
    #[arg(long)]
    full_initial_sync: bool,
    /// `wait` of each long-poll, seconds (the server allows at most 60).
    #[arg(long, default_value_t = 60)]
    wait: u64,
    /// Pushes per second during the trickle.
    #[arg(long, default_value_t = 0.5)]
    trickle_per_s: f64,
    /// Seconds of trickle [default: 60, or 5 with --smoke].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds parked with nothing pushed, measured as the idle figures [default: 10, or 2
    /// with --smoke].
    #[arg(long)]
    idle_secs: Option<f64>,
    /// Seconds after the last push for the last wake-ups to arrive.
    #[arg(long, default_value_t = 30.0)]
    grace_secs: f64,
    /// A small run for CI: 50 handsets, 5 s of trickle; writes longpoll-<backend>-smoke.json.
    #[arg(long)]
    smoke: bool,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// RUST_LOG for the server (default: `warn`: one INFO line per request would be ~3,000
    /// lines per wake-up).
    #[arg(long, default_value = "warn")]
    server_rust_log: String,
    /// Keep the data directory (server log, SQLite file) and the PostgreSQL database.
    #[arg(long)]
    keep: bool,
    /// Seconds to wait for the server's /readyz.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
}

/// Demo users of the first estate (Harbour View Gardens), taken round-robin.
const USERS: [&str; 6] = [
    "guard1",
    "guard2",
    "engineer1",
    "engineer2",
    "supervisor1",
    "manager1",
];
/// The trickle's reporter: its own handsets, engineers (open tickets) and overseers see
/// the ticket; the other guard does not (docs/PROTOCOL.md, Hazards: scope).
const REPORTER: &str = "guard1";
const TARGET_RSS_MIB: f64 = 300.0;

fn sees_reporters_ticket(user: &str) -> bool {
    user == REPORTER || user.starts_with("engineer") || user == "supervisor1" || user == "manager1"
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("longpoll-bench: FAILED: see the checks above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("longpoll-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (the server, started later,
/// inherits it). Returns (soft, hard) after.
fn raise_nofile() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
    }
    (r.rlim_cur, r.rlim_max)
}

/// Established TCP connections whose local port is `port` (the server's side of each).
fn established_on(port: u16) -> usize {
    let mut n = 0;
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(s) = std::fs::read_to_string(f) else {
            continue;
        };
        n += count_established(&s, port);
    }
    n
}

fn count_established(table: &str, port: u16) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let command = command_line();
    println!("command: {command}");
    let handsets = args.handsets.unwrap_or(if args.smoke { 50 } else { 3000 });
    if handsets < USERS.len() {
        bail!("--handsets must be at least {}", USERS.len());
    }
    if !(1..=60).contains(&args.wait) {
        bail!("--wait must be from 1 to 60");
    }
    if args.trickle_per_s <= 0.0 {
        bail!("--trickle-per-s must be above 0");
    }
    if !args.server_bin.is_file() {
        bail!(
            "no server binary at {}: build it first with `cargo build --release -p sync-server` \
             (or pass --server-bin)",
            args.server_bin.display()
        );
    }
    let nofile = raise_nofile();
    println!("RLIMIT_NOFILE {} (hard {})", nofile.0, nofile.1);
    if (nofile.0 as usize) < handsets * 2 + 200 {
        println!(
            "warning: {} open files allowed; {handsets} handsets need about {} here (client and server side of each connection)",
            nofile.0,
            handsets * 2 + 200
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("patrol-longpoll-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let report = match args.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", tmp.path().join("bench.db").display());
            bench(&args, handsets, tmp.path(), &url).await
        }
        Backend::Postgres => {
            let name = format!(
                "patrol_longpoll_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let url = with_database(&args.pg_url, &name)?;
            pg_setup(&args.pg_url, &name).await?;
            println!("created database {name}");
            let r = bench(&args, handsets, tmp.path(), &url).await;
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
    report["rlimit_nofile"] = json!({ "soft": nofile.0, "hard": nofile.1 });
    print_table(&report);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let file = args.out_dir.join(format!(
        "longpoll-{}{}.json",
        args.backend.name(),
        if args.smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(report["checks"]["passed"] == true)
}

/// Signs in `n` handsets round-robin over `USERS`, `concurrency` at a time.
async fn login_all(
    base: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Session>, Vec<Duration>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (http, base, sem) = (http.clone(), base.to_owned(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let t = Instant::now();
            let s = login(&http, &base, USERS[i % USERS.len()], &format!("poller {i}")).await?;
            Ok::<_, anyhow::Error>((i, s, t.elapsed()))
        });
    }
    let mut out: Vec<Option<Session>> = vec![None; n];
    let mut took = Vec::with_capacity(n);
    while let Some(j) = set.join_next().await {
        let (i, s, d) = j??;
        out[i] = Some(s);
        took.push(d);
    }
    took.sort();
    Ok((
        out.into_iter().map(|s| s.expect("logged in")).collect(),
        took,
    ))
}

/// Pulls to the end from `cursor`; returns the last cursor and the changes seen.
async fn pull_to_end(
    http: &reqwest::Client,
    base: &str,
    access: &str,
    mut cursor: Option<String>,
) -> anyhow::Result<(String, u64)> {
    let mut n = 0;
    loop {
        let p = pull_page(
            http,
            base,
            access,
            cursor.as_deref(),
            1000,
            0,
            Encoding::Identity,
        )
        .await?;
        n += p.changes.len() as u64;
        cursor = Some(p.cursor);
        if !p.has_more {
            return Ok((cursor.expect("set"), n));
        }
    }
}

/// What the pollers saw.
#[derive(Default)]
struct Seen {
    /// (poller, hazard id, when the answer carrying it was read).
    hazards: Vec<(usize, String, Instant)>,
}

#[derive(Default)]
struct Counters {
    issued: AtomicUsize,
    first_issued: AtomicUsize,
    answers: AtomicU64,
    empty_answers: AtomicU64,
    errors: AtomicU64,
}

/// One handset: long-poll, and again whenever the answer comes.
/// What every poller shares.
struct Shared {
    http: reqwest::Client,
    base: String,
    wait: u64,
    seen: Mutex<Seen>,
    counters: Counters,
    errors: Mutex<Vec<String>>,
}

async fn poller(i: usize, access: String, mut cursor: String, sh: Arc<Shared>) {
    let (http, base, wait, seen, counters, errors) = (
        &sh.http,
        &sh.base,
        sh.wait,
        &sh.seen,
        &sh.counters,
        &sh.errors,
    );
    let mut first = true;
    loop {
        counters.issued.fetch_add(1, Ordering::Relaxed);
        if first {
            counters.first_issued.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        match pull_page(
            http,
            base,
            &access,
            Some(&cursor),
            1000,
            wait,
            Encoding::Identity,
        )
        .await
        {
            Ok(p) => {
                let at = Instant::now();
                counters.answers.fetch_add(1, Ordering::Relaxed);
                if p.changes.is_empty() {
                    counters.empty_answers.fetch_add(1, Ordering::Relaxed);
                }
                let hz: Vec<_> = p
                    .changes
                    .iter()
                    .filter(|c| c.collection == "hazards")
                    .map(|c| (i, c.id.clone(), at))
                    .collect();
                if !hz.is_empty() {
                    seen.lock().expect("lock").hazards.extend(hz);
                }
                cursor = p.cursor;
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                {
                    let mut errs = errors.lock().expect("lock");
                    if errs.len() < 20 {
                        errs.push(format!("poller {i}: {e:#}"));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One push of the trickle: a hazard report and its before photo.
struct Pushed {
    hazard_id: String,
    sent: Instant,
    answered: Instant,
}

fn trickle_body(device: Uuid, estate: Uuid, seq: u64, k: usize) -> (Value, String) {
    let now = now_ms();
    let hazard = Uuid::now_v7().to_string();
    let event = Uuid::now_v7().to_string();
    let sha: String = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let body = json!({
        "device_id": device,
        "batch_id": Uuid::now_v7(),
        "sent_at": rfc3339(now),
        "changes": [
            { "kind": "photo", "id": Uuid::now_v7(), "seq": seq, "hlc": hlc(now, 0),
              "recorded_at": rfc3339(now), "age_ms": 0,
              "data": { "estate_id": estate, "sha256": sha, "bytes": 200_000, "mime": "image/jpeg",
                        "subject": { "kind": "hazard_event", "id": event }, "role": "before" } },
            { "kind": "hazard_event", "id": event, "seq": seq + 1, "hlc": hlc(now, 1),
              "recorded_at": rfc3339(now), "age_ms": 0,
              "data": { "estate_id": estate, "hazard_id": hazard, "action": "report",
                        "grade": "general", "category": "lighting",
                        "title": format!("Stairwell light out ({k})") } },
        ],
    });
    (body, hazard)
}

async fn bench(args: &Args, n: usize, data_dir: &Path, db_url: &str) -> anyhow::Result<Value> {
    let machine = client::machine();
    let pg = matches!(args.backend, Backend::Postgres);
    let port = server::free_port()?;
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
        Some(&args.server_rust_log),
        &env,
    )?;
    srv.wait_ready(Duration::from_secs(args.ready_timeout))
        .await?;
    let pid = srv.pid;
    let base = srv.base.clone();
    println!("server pid {pid} at {base}");
    let duration = args.duration.unwrap_or(if args.smoke { 5.0 } else { 60.0 });
    let idle_secs = args
        .idle_secs
        .unwrap_or(if args.smoke { 2.0 } else { 10.0 });
    let disk_dev = None;

    let result: anyhow::Result<Value> = async {
        let rss_ready = procfs::status_kib(pid, "VmRSS");
        // The reporter's own handset, not a poller.
        let push_http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let pusher = login(&push_http, &base, REPORTER, "trickle pusher").await?;

        let t = Instant::now();
        let (sessions, login_took) = login_all(&base, n, args.login_concurrency).await?;
        let logins_s = t.elapsed().as_secs_f64();
        let rss_after_logins = procfs::status_kib(pid, "VmRSS");
        println!(
            "{n} logins in {logins_s:.1} s (p50 {:.0} ms, max {:.0} ms); server RSS {:.0} MiB",
            ms(percentile(&login_took, 0.5)),
            ms(percentile(&login_took, 1.0)),
            rss_after_logins.unwrap_or(0) as f64 / 1024.0
        );
        ensure!(
            sessions.iter().all(|s| s.estate_id == pusher.estate_id),
            "the demo users are not all in one estate"
        );

        // One HTTP client for every poller: one connection per held request.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(300))
            .timeout(Duration::from_secs(args.wait + 60))
            .build()?;

        // Catch up: one initial sync per user (or per handset), the rest from its cursor.
        let t = Instant::now();
        let mut user_cursor: HashMap<String, Option<String>> = HashMap::new();
        let mut history = HashMap::new();
        if !args.full_initial_sync {
            for u in USERS {
                let s = sessions.iter().find(|s| s.username == u).expect("round-robin");
                let (c, k) = pull_to_end(&http, &base, &s.access, None).await?;
                user_cursor.insert(u.to_owned(), Some(c));
                history.insert(u.to_owned(), k);
            }
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(args.pull_concurrency.max(1)));
        let mut set = JoinSet::new();
        for (i, s) in sessions.iter().enumerate() {
            let start = user_cursor.get(&s.username).cloned().flatten();
            let (http, base, access, sem) = (http.clone(), base.clone(), s.access.clone(), sem.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await?;
                let (c, k) = pull_to_end(&http, &base, &access, start).await?;
                Ok::<_, anyhow::Error>((i, c, k))
            });
        }
        let mut cursors = vec![String::new(); n];
        let mut caught_up_changes = 0u64;
        while let Some(j) = set.join_next().await {
            let (i, c, k) = j??;
            cursors[i] = c;
            caught_up_changes += k;
        }
        let catch_up_s = t.elapsed().as_secs_f64();
        println!(
            "caught up in {catch_up_s:.1} s ({caught_up_changes} changes pulled by the {n} handsets after the per-user history {history:?})"
        );

        // Park everyone.
        let shared = Arc::new(Shared {
            http: http.clone(),
            base: base.clone(),
            wait: args.wait,
            seen: Mutex::new(Seen::default()),
            counters: Counters::default(),
            errors: Mutex::new(Vec::new()),
        });
        let (seen, counters, errors) = (&shared.seen, &shared.counters, &shared.errors);
        let mut pollers = JoinSet::new();
        let t = Instant::now();
        for (i, s) in sessions.iter().enumerate() {
            pollers.spawn(poller(
                i,
                s.access.clone(),
                std::mem::take(&mut cursors[i]),
                shared.clone(),
            ));
        }
        let park_deadline = Instant::now() + Duration::from_secs(120);
        let mut conns = 0;
        while Instant::now() < park_deadline {
            conns = established_on(port);
            if counters.first_issued.load(Ordering::Relaxed) == n && conns >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let parked_after_s = t.elapsed().as_secs_f64();
        // Each parked request reads the feed once or twice before it waits: wait until the
        // server (and PostgreSQL) have been quiet for a whole second, so the idle figures
        // below are idle.
        let quiet_deadline = Instant::now() + Duration::from_secs(120);
        let mut quiet_after_s = None;
        while Instant::now() < quiet_deadline {
            let snap = procfs::Snapshot::take(Some(pid), disk_dev);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let u = procfs::Snapshot::take(Some(pid), disk_dev).since(&snap);
            let busy = u.server_cpu_s().unwrap_or(0.0) + u.postgres_cpu_s().unwrap_or(0.0);
            if busy < 0.05 {
                quiet_after_s = Some(t.elapsed().as_secs_f64());
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let conns_parked = established_on(port);
        println!(
            "parked: {} handsets issued their long-poll, {conns} server-side connections after {parked_after_s:.1} s; server quiet after {quiet_after_s:?} s; {conns_parked} connections",
            counters.first_issued.load(Ordering::Relaxed)
        );

        // Idle, parked.
        let answers_before_idle = counters.answers.load(Ordering::Relaxed);
        let snap = procfs::Snapshot::take(Some(pid), disk_dev);
        tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
        let idle = procfs::Snapshot::take(Some(pid), disk_dev).since(&snap);
        let idle_answers = counters.answers.load(Ordering::Relaxed) - answers_before_idle;
        let rss_parked = procfs::status_kib(pid, "VmRSS");
        let threads_parked = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).ok();
        let fds_parked = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).ok();
        println!(
            "idle {idle_secs} s: server {:.2} CPU-s, RSS {:.1} MiB, {} fds, {} threads",
            idle.server_cpu_s().unwrap_or(0.0),
            rss_parked.unwrap_or(0) as f64 / 1024.0,
            fds_parked.unwrap_or(0),
            threads_parked.unwrap_or(0)
        );

        // The trickle.
        let pushes = ((duration * args.trickle_per_s).round() as usize).max(1);
        let period = Duration::from_secs_f64(1.0 / args.trickle_per_s);
        let answers_before = counters.answers.load(Ordering::Relaxed);
        let snap = procfs::Snapshot::take(Some(pid), disk_dev);
        let t0 = Instant::now();
        let mut pushed = Vec::new();
        let mut push_problems = Vec::new();
        let mut rss_trickle_peak = 0;
        for k in 0..pushes {
            let at = t0 + period * k as u32;
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            let (body, hazard_id) = trickle_body(pusher.device_id, pusher.estate_id, 2 * k as u64 + 1, k);
            let sent = Instant::now();
            let r = push_http
                .post(format!("{base}/v1/sync/push"))
                .bearer_auth(&pusher.access)
                .json(&body)
                .send()
                .await?;
            let status = r.status();
            let text = r.text().await?;
            let answered = Instant::now();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let ok = status.is_success()
                && v["results"].as_array().is_some_and(|a| {
                    a.len() == 2 && a.iter().all(|x| x["status"] == "accepted")
                });
            if !ok {
                push_problems.push(format!("push {k}: HTTP {status}: {text}"));
            }
            pushed.push(Pushed { hazard_id, sent, answered });
            rss_trickle_peak = rss_trickle_peak.max(procfs::status_kib(pid, "VmRSS").unwrap_or(0));
        }
        // Wait for the last wake-ups.
        let expected_per_push = sessions.iter().filter(|s| sees_reporters_ticket(&s.username)).count();
        let all_ids: HashSet<String> = pushed.iter().map(|p| p.hazard_id.clone()).collect();
        let grace_end = Instant::now() + Duration::from_secs_f64(args.grace_secs);
        loop {
            let got = seen.lock().expect("lock").hazards.iter().filter(|h| all_ids.contains(&h.1)).count();
            if got >= expected_per_push * pushes || Instant::now() >= grace_end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            rss_trickle_peak = rss_trickle_peak.max(procfs::status_kib(pid, "VmRSS").unwrap_or(0));
        }
        let trickle = procfs::Snapshot::take(Some(pid), disk_dev).since(&snap);
        let trickle_answers = counters.answers.load(Ordering::Relaxed) - answers_before;
        let conns_end = established_on(port);
        pollers.abort_all();
        while pollers.join_next().await.is_some() {}

        // Wake-ups.
        let seen = std::mem::take(&mut *seen.lock().expect("lock"));
        let mut got: HashMap<(usize, &str), Instant> = HashMap::new();
        let mut repeated = 0u64;
        for (i, h, at) in &seen.hazards {
            if got.insert((*i, h.as_str()), *at).is_some() {
                repeated += 1;
            }
        }
        let mut from_answer = Vec::new();
        let mut from_send = Vec::new();
        let mut before_answer = 0u64;
        let mut missed = 0u64;
        let mut unexpected = 0u64;
        let mut missed_examples = Vec::new();
        for p in &pushed {
            for (i, s) in sessions.iter().enumerate() {
                let should = sees_reporters_ticket(&s.username);
                match (got.get(&(i, p.hazard_id.as_str())), should) {
                    (Some(at), true) => {
                        from_send.push(at.saturating_duration_since(p.sent));
                        if *at < p.answered {
                            before_answer += 1;
                        }
                        from_answer.push(at.saturating_duration_since(p.answered));
                    }
                    (None, true) => {
                        missed += 1;
                        if missed_examples.len() < 10 {
                            missed_examples.push(format!("poller {i} ({}) never got hazard {}", s.username, p.hazard_id));
                        }
                    }
                    (Some(_), false) => unexpected += 1,
                    (None, false) => {}
                }
            }
        }
        from_answer.sort();
        from_send.sort();
        let mut push_took: Vec<Duration> = pushed.iter().map(|p| p.answered - p.sent).collect();
        push_took.sort();
        let errors = std::mem::take(&mut *errors.lock().expect("lock"));
        let error_count = counters.errors.load(Ordering::Relaxed);
        let hwm = procfs::status_kib(pid, "VmHWM");
        let mut problems = push_problems.clone();
        if missed > 0 {
            problems.push(format!("{missed} wake-ups never came (of {})", expected_per_push * pushes));
            problems.extend(missed_examples);
        }
        if unexpected > 0 {
            problems.push(format!("{unexpected} tickets reached pollers who may not see them"));
        }
        for p in &problems {
            println!("  CHECK FAILED: {p}");
        }
        for e in &errors {
            println!("  error: {e}");
        }
        let lat = |v: &[Duration]| json!({
            "count": v.len(),
            "p50": ms(percentile(v, 0.5)),
            "p90": ms(percentile(v, 0.9)),
            "p99": ms(percentile(v, 0.99)),
            "max": ms(percentile(v, 1.0)),
        });
        let mib = |k: Option<u64>| k.map(|k| round2(k as f64 / 1024.0));
        Ok(json!({
            "handsets": n,
            "users": USERS,
            "wait_s": args.wait,
            "logins": {
                "count": n,
                "concurrency": args.login_concurrency,
                "wall_s": round2(logins_s),
                "p50_ms": ms(percentile(&login_took, 0.5)),
                "max_ms": ms(percentile(&login_took, 1.0)),
            },
            "catch_up": {
                "full_initial_sync": args.full_initial_sync,
                "per_user_history_changes": history,
                "changes_pulled_by_handsets": caught_up_changes,
                "wall_s": round2(catch_up_s),
            },
            "parked": {
                "issued": counters.first_issued.load(Ordering::Relaxed),
                "server_established_connections": conns_parked,
                "after_s": round2(parked_after_s),
                "server_quiet_after_s": quiet_after_s.map(round2),
                "server_fds": fds_parked,
                "server_threads": threads_parked,
            },
            "idle": {
                "seconds": idle_secs,
                "answers": idle_answers,
                "server_cpu_s": idle.server_cpu_s().map(round2),
                "server_cores": idle.server_cpu_s().map(|c| round2(c / idle.wall_s())),
                "postgres_cpu_s": idle.postgres_cpu_s().map(round2),
                "client_cpu_s": idle.client_cpu_s().map(round2),
                "other_cpu_s": idle.other_cpu_s().map(round2),
                "usage": idle.to_json(),
            },
            "trickle": {
                "pushes": pushes,
                "per_s": args.trickle_per_s,
                "wall_s": round2(trickle.wall_s()),
                "answers": trickle_answers,
                "expected_wakeups_per_push": expected_per_push,
                "server_cpu_s": trickle.server_cpu_s().map(round2),
                "server_cores": trickle.server_cpu_s().map(|c| round2(c / trickle.wall_s())),
                "server_cpu_ms_per_push": trickle.server_cpu_s().map(|c| round2(c * 1000.0 / pushes as f64)),
                "postgres_cpu_s": trickle.postgres_cpu_s().map(round2),
                "postgres_cpu_ms_per_push": trickle.postgres_cpu_s().map(|c| round2(c * 1000.0 / pushes as f64)),
                "client_cpu_s": trickle.client_cpu_s().map(round2),
                "other_cpu_s": trickle.other_cpu_s().map(round2),
                "server_established_connections_at_end": conns_end,
                "usage": trickle.to_json(),
            },
            "push_ms": lat(&push_took),
            "wakeup_ms_from_push_answer": lat(&from_answer),
            "wakeup_ms_from_push_send": lat(&from_send),
            "wakeups_before_push_answer": before_answer,
            "wakeups_missed": missed,
            "wakeups_unexpected": unexpected,
            "wakeups_repeated": repeated,
            "errors": error_count,
            "error_examples": errors,
            "server_rss_mib": {
                "ready": mib(rss_ready),
                "after_logins": mib(rss_after_logins),
                "parked": mib(rss_parked),
                "trickle_peak_sampled": mib(Some(rss_trickle_peak)),
                "vm_hwm": mib(hwm),
            },
            "loadavg1_at_trickle_end": client::loadavg1(),
            "problems": problems,
        }))
    }
    .await;
    let stopped = srv.stop().await;
    let mut r = result?;
    stopped?;
    let passed = r["problems"].as_array().is_some_and(|p| p.is_empty());
    r["bench"] = json!("longpoll");
    r["backend"] = json!(args.backend.name());
    r["postgres"] = json!(pg);
    r["smoke"] = json!(args.smoke);
    r["machine"] = machine;
    r["server"] =
        json!({ "bin": args.server_bin.display().to_string(), "rust_log": args.server_rust_log });
    r["targets"] = json!({ "server_rss_mib": TARGET_RSS_MIB });
    r["checks"] = json!({ "passed": passed });
    Ok(r)
}

fn print_table(r: &Value) {
    println!();
    println!(
        "longpoll-bench, {}: {} handsets parked on wait={} s",
        r["backend"].as_str().unwrap_or("?"),
        r["handsets"],
        r["wait_s"]
    );
    println!("| figure | value |");
    println!("|---|---:|");
    let rows = [
        ("logins (untimed phase), s", r["logins"]["wall_s"].clone()),
        ("catch-up pulls, s", r["catch_up"]["wall_s"].clone()),
        (
            "server-side connections parked",
            r["parked"]["server_established_connections"].clone(),
        ),
        ("server fds parked", r["parked"]["server_fds"].clone()),
        (
            "server RSS parked, MiB",
            r["server_rss_mib"]["parked"].clone(),
        ),
        ("server VmHWM, MiB", r["server_rss_mib"]["vm_hwm"].clone()),
        (
            "server CPU idle-parked, cores",
            r["idle"]["server_cores"].clone(),
        ),
        ("pushes", r["trickle"]["pushes"].clone()),
        (
            "wake-ups expected per push",
            r["trickle"]["expected_wakeups_per_push"].clone(),
        ),
        (
            "push p50 / max ms",
            json!(format!("{} / {}", r["push_ms"]["p50"], r["push_ms"]["max"])),
        ),
        (
            "trickle wall s (pushes back to back when slow)",
            r["trickle"]["wall_s"].clone(),
        ),
        (
            "wake-up p50 ms from push sent",
            r["wakeup_ms_from_push_send"]["p50"].clone(),
        ),
        (
            "wake-up p99 ms from push sent",
            r["wakeup_ms_from_push_send"]["p99"].clone(),
        ),
        (
            "wake-up max ms from push sent",
            r["wakeup_ms_from_push_send"]["max"].clone(),
        ),
        (
            "wake-up p50 / p99 ms from push answer",
            json!(format!(
                "{} / {}",
                r["wakeup_ms_from_push_answer"]["p50"], r["wakeup_ms_from_push_answer"]["p99"]
            )),
        ),
        (
            "wake-ups before the push's answer",
            r["wakeups_before_push_answer"].clone(),
        ),
        ("wake-ups missed", r["wakeups_missed"].clone()),
        (
            "wake-ups to pollers who may not see it",
            r["wakeups_unexpected"].clone(),
        ),
        (
            "server CPU during trickle, cores",
            r["trickle"]["server_cores"].clone(),
        ),
        (
            "server CPU per push, ms",
            r["trickle"]["server_cpu_ms_per_push"].clone(),
        ),
        (
            "PostgreSQL CPU per push, ms",
            r["trickle"]["postgres_cpu_ms_per_push"].clone(),
        ),
        ("poll errors", r["errors"].clone()),
    ];
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
    println!("checks passed: {}", r["checks"]["passed"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_connections_are_counted_by_local_port() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(count_established(t, 0x1F90), 1);
        assert_eq!(count_established(t, 0xC350), 1);
        assert_eq!(count_established(t, 80), 0);
    }

    #[test]
    fn the_reporters_ticket_is_seen_by_all_but_the_other_guard() {
        let seeing: Vec<_> = USERS.iter().filter(|u| sees_reporters_ticket(u)).collect();
        assert_eq!(
            seeing,
            [
                &"guard1",
                &"engineer1",
                &"engineer2",
                &"supervisor1",
                &"manager1"
            ]
        );
    }
}
