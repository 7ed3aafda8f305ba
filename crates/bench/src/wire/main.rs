//! `wire-bench`: bytes on the wire per record, raw and compressed (issue 5, item 7).
//!
//! - Push: the simulated demo week (the same generator as `serve --demo`), every batch's
//!   body as JSON, gzip (level 6) and zstd (level 3), per change.
//! - Pull: a new device of `guard1` pulls the whole demo estate (a week of patrols, hazard
//!   tickets, the patrol plan) from the real server, page by page, with `Accept-Encoding`
//!   none, gzip and zstd, counting the bytes of the bodies as sent, per change.
//!
//! ```text
//! cargo build --release -p sync-server -p patrol-bench
//! target/release/wire-bench --server-bin target/release/patrol-sync
//! ```

#[path = "../procfs.rs"]
#[allow(dead_code)]
mod procfs;
#[path = "../server.rs"]
mod server;

use anyhow::{ensure, Context};
use clap::Parser;
use serde_json::{json, Value};
use shared_core::patrol::reference::apply;
use shared_core::patrol::sim::{estate_plan, sim_guards, simulate, EstateSpec, SimConfig};
use shared_core::patrol::ReferenceSet;
use shared_core::EstateId;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Bytes on the wire per record, raw and compressed.
#[derive(Parser, Debug)]
#[command(name = "wire-bench", version)]
struct Args {
    /// The server binary (build it first: `cargo build --release -p sync-server`).
    #[arg(long, default_value = "target/release/patrol-sync")]
    server_bin: PathBuf,
    /// Changes per pull page.
    #[arg(long, default_value_t = 500)]
    page: usize,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// A quick run for CI (one simulated day for the push side, one pull per encoding).
    #[arg(long)]
    smoke: bool,
    /// Times each encoding's whole pull is repeated, for the server CPU per record.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

#[derive(Default, Clone, Copy)]
struct Sizes {
    records: u64,
    raw: u64,
    gzip: u64,
    zstd: u64,
    /// CPU time (this thread, wall clock on a quiet core) to compress and decompress.
    gzip_encode: Duration,
    gzip_decode: Duration,
    zstd_encode: Duration,
    zstd_decode: Duration,
}

impl Sizes {
    fn add(&mut self, records: u64, raw: &[u8]) -> anyhow::Result<()> {
        self.records += records;
        self.raw += raw.len() as u64;
        let t = Instant::now();
        let g = gzip(raw)?;
        self.gzip_encode += t.elapsed();
        let t = Instant::now();
        let mut back = Vec::with_capacity(raw.len());
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&g[..]), &mut back)?;
        self.gzip_decode += t.elapsed();
        ensure!(back == raw, "gzip did not round-trip");
        self.gzip += g.len() as u64;
        let t = Instant::now();
        let z = zstd::encode_all(raw, 3)?;
        self.zstd_encode += t.elapsed();
        let t = Instant::now();
        let back = zstd::decode_all(&z[..])?;
        self.zstd_decode += t.elapsed();
        ensure!(back == raw, "zstd did not round-trip");
        self.zstd += z.len() as u64;
        Ok(())
    }
    /// Microseconds per record.
    fn us(&self, d: Duration) -> f64 {
        (d.as_secs_f64() * 1e6 / self.records.max(1) as f64 * 100.0).round() / 100.0
    }
    fn per_record(&self, n: u64) -> f64 {
        (n as f64 / self.records.max(1) as f64 * 10.0).round() / 10.0
    }
    fn json(&self) -> Value {
        json!({
            "records": self.records,
            "bytes": {"raw": self.raw, "gzip": self.gzip, "zstd": self.zstd},
            "per_record": {"raw": self.per_record(self.raw), "gzip": self.per_record(self.gzip),
                           "zstd": self.per_record(self.zstd)},
            "cpu_us_per_record": {
                "gzip_compress": self.us(self.gzip_encode), "gzip_decompress": self.us(self.gzip_decode),
                "zstd_compress": self.us(self.zstd_encode), "zstd_decompress": self.us(self.zstd_decode),
            },
        })
    }
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

/// Push bodies of the simulated demo week (or day).
fn push_sizes(days: i64) -> anyhow::Result<Sizes> {
    let estate = EstateId(uuid::Uuid::from_u128(
        0x0193_0000_0000_7000_8000_0000_0000_e57a,
    ));
    let ops = estate_plan(estate, &EstateSpec::demo(), 1);
    let reference = apply(&ReferenceSet::empty(estate, "Asia/Shanghai"), &ops)
        .map_err(|e| anyhow::anyhow!("the demo plan was refused: {e:?}"))?
        .0;
    let to = 1_796_000_000_000;
    let cfg = SimConfig::demo(to - days * 86_400_000, to, sim_guards(2, 1));
    let out = simulate(&reference, &cfg);
    let mut s = Sizes::default();
    for b in &out.batches {
        s.add(b.changes.len() as u64, &serde_json::to_vec(&b.push_body())?)?;
    }
    Ok(s)
}

/// Signs `guard1` in on a new device; the access token.
async fn login(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let login: Value = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "guard1", "password": "demo",
                      "device": {"id": uuid::Uuid::now_v7(), "name": "wire-bench"}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

/// Pulls everything `guard1` sees from no cursor with `encoding`; (changes, body bytes).
async fn pull_all(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    encoding: Option<&str>,
    page: usize,
) -> anyhow::Result<(u64, u64, Vec<u8>)> {
    let (mut changes, mut bytes) = (0u64, 0u64);
    let mut cursor: Option<String> = None;
    let mut first_page = Vec::new();
    loop {
        let mut q = vec![("limit", page.to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let mut req = http
            .get(format!("{base}/v1/sync/pull"))
            .bearer_auth(token)
            .query(&q);
        if let Some(e) = encoding {
            req = req.header("accept-encoding", e);
        }
        let resp = req.send().await?.error_for_status()?;
        let got = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        ensure!(
            got.as_deref() == encoding,
            "asked for {encoding:?}, got {got:?}"
        );
        let body = resp.bytes().await?;
        bytes += body.len() as u64;
        let plain = match encoding {
            Some("gzip") => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)?;
                out
            }
            Some("zstd") => zstd::decode_all(&body[..])?,
            _ => body.to_vec(),
        };
        if first_page.is_empty() {
            first_page = plain.clone();
        }
        let v: Value = serde_json::from_slice(&plain)?;
        changes += v["changes"].as_array().map(Vec::len).unwrap_or(0) as u64;
        cursor = v["cursor"].as_str().map(str::to_owned);
        if v["has_more"] != true {
            break;
        }
    }
    Ok((changes, bytes, first_page))
}

async fn run(args: &Args) -> anyhow::Result<Value> {
    let push = push_sizes(if args.smoke { 1 } else { 7 })?;
    let dir = tempfile::tempdir()?;
    let port = server::free_port()?;
    let url = format!("sqlite://{}/wire.db", dir.path().display());
    let mut srv = server::Server::spawn(&args.server_bin, dir.path(), port, &url, None)?;
    srv.wait_ready(Duration::from_secs(60)).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut pull = serde_json::Map::new();
    let mut counts = Vec::new();
    let rounds = if args.smoke { 1 } else { args.rounds.max(1) };
    // Warm the server (caches, page cache) once, so the first encoding is not charged it.
    let token = login(&http, &srv.base).await?;
    pull_all(&http, &srv.base, &token, None, args.page).await?;
    for enc in [None, Some("gzip"), Some("zstd")] {
        // Server CPU for pulling everything `rounds` times with this encoding.
        let cpu0 = procfs::cpu_secs(srv.pid);
        let t = Instant::now();
        let mut last = (0, 0);
        for _ in 0..rounds {
            let (changes, bytes, _) = pull_all(&http, &srv.base, &token, enc, args.page).await?;
            counts.push(changes);
            last = (changes, bytes);
        }
        let wall = t.elapsed();
        let cpu = procfs::cpu_secs(srv.pid).zip(cpu0).map(|(b, a)| b - a);
        let (changes, bytes) = last;
        let per =
            |x: f64| (x * 1e6 / (changes.max(1) * rounds as u64) as f64 * 100.0).round() / 100.0;
        pull.insert(
            enc.unwrap_or("raw").to_owned(),
            json!({"changes": changes, "bytes": bytes,
                   "per_record": (bytes as f64 / changes.max(1) as f64 * 10.0).round() / 10.0,
                   "rounds": rounds,
                   "server_cpu_us_per_record": cpu.map(per),
                   "wall_us_per_record": per(wall.as_secs_f64())}),
        );
    }
    srv.stop().await?;
    ensure!(
        counts.iter().all(|&c| c == counts[0]) && counts[0] > 0,
        "each encoding pulled the same changes: {counts:?}"
    );
    Ok(json!({"push": push.json(), "pull": pull, "pull_page": args.page}))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            let p = &report["push"]["per_record"];
            let q = &report["pull"];
            println!("| direction | records | raw B/record | gzip B/record | zstd B/record |");
            println!("|---|---:|---:|---:|---:|");
            println!(
                "| push (simulated demo {}) | {} | {} | {} | {} |",
                if args.smoke { "day" } else { "week" },
                report["push"]["records"],
                p["raw"],
                p["gzip"],
                p["zstd"]
            );
            println!(
                "| pull (demo estate, pages of {}) | {} | {} | {} | {} |",
                args.page,
                q["raw"]["changes"],
                q["raw"]["per_record"],
                q["gzip"]["per_record"],
                q["zstd"]["per_record"]
            );
            let c = &report["push"]["cpu_us_per_record"];
            println!();
            println!("| CPU µs per record | raw | gzip | zstd |");
            println!("|---|---:|---:|---:|");
            println!(
                "| push body: compress (handset) | - | {} | {} |",
                c["gzip_compress"], c["zstd_compress"]
            );
            println!(
                "| push body: decompress (server) | - | {} | {} |",
                c["gzip_decompress"], c["zstd_decompress"]
            );
            println!(
                "| pull: server CPU for the whole answer | {} | {} | {} |",
                q["raw"]["server_cpu_us_per_record"],
                q["gzip"]["server_cpu_us_per_record"],
                q["zstd"]["server_cpu_us_per_record"]
            );
            let name = if args.smoke {
                "wire-smoke.json"
            } else {
                "wire.json"
            };
            let _ = std::fs::create_dir_all(&args.out_dir);
            let path = args.out_dir.join(name);
            match std::fs::write(
                &path,
                serde_json::to_vec_pretty(&report).unwrap_or_default(),
            ) {
                Ok(()) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("could not write {}: {e}", path.display()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wire-bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
