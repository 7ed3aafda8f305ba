//! `fleet-sim`: plays N guard handsets against a patrol-sync server. See README.md and
//! docs/BENCHMARKS.md, "Fleet simulator".
//!
//! ```text
//! fleet-sim --url http://127.0.0.1:8080 --handsets 20 --sim-hours 8 --speed 600 --verify --out target/fleet.json
//! ```

use clap::Parser;
use fleet_sim::run::{run, verify_as, RunConfig};
use shared_core::wire::Timestamp;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Plays N handsets against a patrol-sync server, deterministic for a seed.
#[derive(Parser, Debug)]
#[command(name = "fleet-sim", version)]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Handsets to play.
    #[arg(long, default_value_t = 6)]
    handsets: usize,
    /// Users the handsets sign in as, round-robin (comma-separated).
    #[arg(long, default_value = "guard1,guard2", value_delimiter = ',')]
    users: Vec<String>,
    /// Password of every user.
    #[arg(long, default_value = "demo")]
    password: String,
    /// Part of the estate's name (default: the first user's first estate).
    #[arg(long)]
    estate: Option<String>,
    /// A manager who puts the demo patrol plan into an estate that has none.
    #[arg(long, default_value = "manager1")]
    plan_user: String,
    /// The supervisor who assigns and verifies hazards.
    #[arg(long, default_value = "supervisor1")]
    supervisor: String,
    /// The engineer who fixes them.
    #[arg(long, default_value = "engineer1")]
    engineer: String,
    /// Do not work hazards (leave them reported).
    #[arg(long)]
    no_crew: bool,
    /// Seed of the plan (handset ids, patrols, hazards, which batches fail how).
    #[arg(long, default_value_t = 20_261_207)]
    seed: u64,
    /// Hours of patrols simulated, ending at --end (default: now).
    #[arg(long, default_value_t = 8.0)]
    sim_hours: f64,
    /// End of the simulated period (RFC 3339), for a run that must repeat exactly.
    #[arg(long)]
    end: Option<String>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 600.0)]
    speed: f64,
    /// Guards walking each round (default: every handset).
    #[arg(long)]
    team_size: Option<usize>,
    /// Most changes per push.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Probability that a scan leads to a hazard report (with a photo).
    #[arg(long, default_value_t = 0.01)]
    p_hazard: f64,
    /// Probability a reported hazard is worked to closed by the crew.
    #[arg(long, default_value_t = 0.6)]
    p_work: f64,
    /// Probability per push that its answer is lost (the same batch is sent again).
    #[arg(long, default_value_t = 0.05)]
    p_lost_answer: f64,
    /// Probability per push that a first attempt times out (then the batch is sent again).
    #[arg(long, default_value_t = 0.03)]
    p_timeout: f64,
    /// The client timeout of those attempts, ms.
    #[arg(long, default_value_t = 1)]
    timeout_ms: u64,
    /// Probability a batch is sent from a handset with a skewed clock (10 minutes ahead).
    #[arg(long, default_value_t = 0.05)]
    p_skewed: f64,
    /// Probability a batch is sent after a reboot (no monotonic age).
    #[arg(long, default_value_t = 0.02)]
    p_reboot: f64,
    /// Logins at once (the server hashes passwords a few at a time).
    #[arg(long, default_value_t = 4)]
    login_concurrency: usize,
    /// After the run, pull the estate as --verify-user on a new device and check the ledger.
    #[arg(long)]
    verify: bool,
    #[arg(long, default_value = "supervisor1")]
    verify_user: String,
    /// Write the JSON summary (with every ledger fact id) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match main_inner(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fleet-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn main_inner(args: Args) -> anyhow::Result<bool> {
    let mut cfg = RunConfig::new(&args.url);
    cfg.users = args.users.clone();
    cfg.password = args.password.clone();
    cfg.estate = args.estate.clone();
    cfg.plan_user = args.plan_user.clone();
    if args.no_crew {
        cfg.supervisor = None;
        cfg.engineer = None;
    } else {
        cfg.supervisor = Some(args.supervisor.clone());
        cfg.engineer = Some(args.engineer.clone());
    }
    cfg.seed = args.seed;
    cfg.handsets = args.handsets;
    cfg.sim_hours = args.sim_hours;
    cfg.end = match &args.end {
        Some(e) => Some(
            Timestamp::parse(e)
                .ok_or_else(|| anyhow::anyhow!("--end {e:?} is not an RFC 3339 time"))?
                .0,
        ),
        None => None,
    };
    cfg.speed = args.speed;
    cfg.team_size = args.team_size;
    cfg.max_batch = args.batch;
    cfg.p_hazard = args.p_hazard;
    cfg.p_work = args.p_work;
    cfg.p_lost_answer = args.p_lost_answer;
    cfg.p_timeout = args.p_timeout;
    cfg.short_timeout = Duration::from_millis(args.timeout_ms.max(1));
    cfg.p_skewed_batch = args.p_skewed;
    cfg.p_reboot_batch = args.p_reboot;
    cfg.login_concurrency = args.login_concurrency;
    cfg.progress = (!args.quiet).then_some(Duration::from_secs(5));
    for (name, p) in [
        ("--p-hazard", cfg.p_hazard),
        ("--p-work", cfg.p_work),
        ("--p-lost-answer", cfg.p_lost_answer),
        ("--p-timeout", cfg.p_timeout),
        ("--p-skewed", cfg.p_skewed_batch),
        ("--p-reboot", cfg.p_reboot_batch),
    ] {
        anyhow::ensure!((0.0..=1.0).contains(&p), "{name} must be from 0 to 1");
    }
    anyhow::ensure!(args.sim_hours > 0.0, "--sim-hours must be above 0");
    anyhow::ensure!(
        (1..=1000).contains(&args.batch),
        "--batch must be from 1 to 1000"
    );

    let report = run(cfg).await?;
    print!("{}", report.table());
    let mut summary = report.to_json(true);
    let mut ok = report.clean();
    if !ok {
        eprintln!(
            "fleet-sim: the run was not clean: {} batches given up, {} changes rejected, {} acks behind, {} replays answered differently; first error: {}",
            report.counters.failed_batches,
            report.counters.rejected,
            report.counters.ack_behind,
            report.counters.replay_mismatch,
            report.counters.first_error.as_deref().unwrap_or("-")
        );
    }
    if args.verify {
        let v = verify_as(&args.url, &args.verify_user, &args.password, &report.ledger).await?;
        summary["verify"] = v.to_json();
        if v.ok() {
            println!(
                "verify: OK — all {} ledger facts pulled exactly once as {}, none extra ({} facts pulled in {} pages)",
                report.ledger.len(),
                args.verify_user,
                v.pulled_facts,
                v.pages
            );
        } else {
            ok = false;
            println!("verify: FAILED");
            for p in v.problems() {
                println!("  {p}");
            }
        }
    }
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ok)
}
