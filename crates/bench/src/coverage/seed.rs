//! Seeding through `POST /v1/sync/push`: the patrol simulator run one day (or `chunk_days`)
//! at a time on a blocking thread, its batches dealt to `workers` by handset (each handset
//! always goes to the same worker, so a handset's batches are pushed in order, one at a
//! time), at most two chunks ahead of the pushes so memory stays small for 150 days.
//!
//! What changes between the simulator's batches and what is sent:
//!
//! - `seq` is renumbered per handset across chunks (each `simulate` call counts from 1), so
//!   a handset's seqs keep increasing over the whole period;
//! - the batches are pushed now, not at their simulated receipt time: `sent_at` and every
//!   `age_ms` are moved by `now − received_at` at the moment of sending, so the server's
//!   trusted time of each fact is its simulated time (a few ms later: the trip to the
//!   server) and the batch's clock offset (`clock_skew` flags) is the simulated one;
//!   `recorded_at` and the HLCs are left as simulated (in the past).

use crate::client::Session;
use anyhow::{bail, Context};
use serde_json::Value;
use shared_core::patrol::sim::{self, SimBatch, SimConfig, SimGuard};
use shared_core::patrol::ReferenceSet;
use shared_core::wire::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

pub const DAY: i64 = 86_400_000;

/// What the simulator meant for one chunk.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChunkTally {
    pub from: i64,
    pub scans: u64,
    pub run_events: u64,
    pub batches: u64,
    /// Slots starting in the chunk by intended outcome; `undecided`: not decided by the
    /// chunk's end (the day's last slots, whose grace runs past midnight).
    pub on_time: u64,
    pub late: u64,
    pub missed: u64,
    pub undecided: u64,
    pub simulate_ms: f64,
}

impl ChunkTally {
    pub fn slots(&self) -> u64 {
        self.on_time + self.late + self.missed + self.undecided
    }
}

/// How the server answered.
#[derive(Debug, Default)]
pub struct Verdicts {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub first_rejection: Option<String>,
    /// Batches whose `acked_through_seq` was not their last seq.
    pub ack_behind: u64,
}

pub struct Seeded {
    pub wall: Duration,
    pub chunks: Vec<ChunkTally>,
    pub pushes: u64,
    /// Ascending.
    pub latencies: Vec<Duration>,
    pub verdicts: Verdicts,
}

pub struct Plan {
    pub reference: ReferenceSet,
    pub guards: Vec<SimGuard>,
    pub from: i64,
    pub to: i64,
    pub chunk_days: i64,
    pub seed: u64,
}

struct WorkerOut {
    latencies: Vec<Duration>,
    verdicts: Verdicts,
    pushes: u64,
}

/// The simulator's configuration for the chunk `[from, to)`: the benchmark's scale, a seed
/// of its own (so days differ).
pub fn chunk_config(plan: &Plan, n: u64, from: i64, to: i64) -> SimConfig {
    let mut cfg = SimConfig::benchmark(from, to, plan.guards.clone());
    cfg.seed = sim::Prng::derive(plan.seed, &[0xC0DE, n]).next_u64();
    cfg
}

/// Runs the simulator chunk by chunk and pushes everything through `sessions` (one signed-in
/// session per simulated handset, by device id).
pub async fn run(
    plan: Plan,
    sessions: HashMap<Uuid, Session>,
    workers: usize,
) -> anyhow::Result<Seeded> {
    let workers = workers.clamp(1, plan.guards.len().max(1));
    let worker_of: HashMap<Uuid, usize> = plan
        .guards
        .iter()
        .enumerate()
        .map(|(i, g)| (g.device_id.0, i % workers))
        .collect();
    let mut by_worker: Vec<HashMap<Uuid, Session>> = (0..workers).map(|_| HashMap::new()).collect();
    for (id, s) in sessions {
        let w = *worker_of
            .get(&id)
            .with_context(|| format!("a session for device {id}, which simulates nobody"))?;
        by_worker[w].insert(id, s);
    }
    let mut senders = Vec::new();
    let mut set = JoinSet::new();
    let progress = Arc::new(AtomicU64::new(0));
    for (w, mine) in by_worker.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Vec<SimBatch>>(2);
        senders.push(tx);
        set.spawn(worker(w, mine, rx, progress.clone()));
    }

    let started = Instant::now();
    let total_days = (plan.to - plan.from) / DAY;
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<ChunkTally>> {
        let mut tallies = Vec::new();
        let mut next_seq: HashMap<Uuid, u64> = HashMap::new();
        let mut from = plan.from;
        let mut n = 0u64;
        while from < plan.to {
            let to = (from + plan.chunk_days * DAY).min(plan.to);
            let cfg = chunk_config(&plan, n, from, to);
            let t = Instant::now();
            let out = sim::simulate(&plan.reference, &cfg);
            let simulate_ms = t.elapsed().as_secs_f64() * 1000.0;
            tallies.push(ChunkTally {
                from,
                scans: out.scans as u64,
                run_events: out.run_events as u64,
                batches: out.batches.len() as u64,
                on_time: out.on_time as u64,
                late: out.late as u64,
                missed: out.missed as u64,
                undecided: out.undecided as u64,
                simulate_ms,
            });
            let mut dealt: Vec<Vec<SimBatch>> = (0..senders.len()).map(|_| Vec::new()).collect();
            for mut b in out.batches {
                let seq = next_seq.entry(b.device_id.0).or_insert(0);
                for c in &mut b.changes {
                    *seq += 1;
                    c["seq"] = Value::from(*seq);
                }
                dealt[worker_of[&b.device_id.0]].push(b);
            }
            for (w, batches) in dealt.into_iter().enumerate() {
                if senders[w].blocking_send(batches).is_err() {
                    bail!("pusher {w} stopped early (see its error)");
                }
            }
            n += 1;
            from = to;
            let days = (from - plan.from) / DAY;
            if days % 10 == 0 || from >= plan.to {
                eprintln!(
                    "  simulated {days}/{total_days} days; {} changes pushed so far",
                    progress.load(Ordering::Relaxed)
                );
            }
        }
        Ok(tallies)
    });

    let mut latencies = Vec::new();
    let mut verdicts = Verdicts::default();
    let mut pushes = 0;
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r.context("a pusher panicked")? {
            Ok(o) => {
                latencies.extend(o.latencies);
                pushes += o.pushes;
                verdicts.accepted += o.verdicts.accepted;
                verdicts.duplicate += o.verdicts.duplicate;
                verdicts.rejected += o.verdicts.rejected;
                verdicts.ack_behind += o.verdicts.ack_behind;
                if verdicts.first_rejection.is_none() {
                    verdicts.first_rejection = o.verdicts.first_rejection;
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let chunks = producer.await.context("the simulator panicked")?;
    if let Some(e) = first_err {
        return Err(e);
    }
    let chunks = chunks?;
    latencies.sort();
    Ok(Seeded {
        wall: started.elapsed(),
        chunks,
        pushes,
        latencies,
        verdicts,
    })
}

/// The body as sent now: `sent_at` and `age_ms` moved by `shift` ms.
pub fn body_at(b: &SimBatch, shift: i64) -> anyhow::Result<Vec<u8>> {
    let mut body = b.push_body();
    body["sent_at"] = serde_json::to_value(Timestamp(b.sent_at + shift))?;
    if let Some(changes) = body["changes"].as_array_mut() {
        for c in changes {
            if let Some(age) = c.get("age_ms").and_then(Value::as_i64) {
                c["age_ms"] = Value::from(age + shift);
            }
        }
    }
    Ok(serde_json::to_vec(&body)?)
}

async fn worker(
    w: usize,
    mut sessions: HashMap<Uuid, Session>,
    mut rx: mpsc::Receiver<Vec<SimBatch>>,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<WorkerOut> {
    let mut out = WorkerOut {
        latencies: Vec::new(),
        verdicts: Verdicts::default(),
        pushes: 0,
    };
    while let Some(batches) = rx.recv().await {
        for b in batches {
            let s = sessions
                .get_mut(&b.device_id.0)
                .with_context(|| format!("pusher {w} has no session for {}", b.device_id))?;
            s.keep_fresh().await?;
            let shift = crate::facts::now_ms() - b.received_at;
            let body = body_at(&b, shift)?;
            let t = Instant::now();
            let answer = s
                .push(body)
                .await
                .with_context(|| format!("pushing batch {} of {}", b.batch_id, b.device_id))?;
            out.latencies.push(t.elapsed());
            out.pushes += 1;
            let results = answer["results"]
                .as_array()
                .with_context(|| format!("a push answer without results: {answer}"))?;
            for r in results {
                match r["status"].as_str() {
                    Some("accepted") => out.verdicts.accepted += 1,
                    Some("duplicate") => out.verdicts.duplicate += 1,
                    _ => {
                        out.verdicts.rejected += 1;
                        if out.verdicts.first_rejection.is_none() {
                            let i = r["index"].as_u64().unwrap_or(0) as usize;
                            out.verdicts.first_rejection = Some(format!(
                                "{r} for the change {}",
                                b.changes.get(i).cloned().unwrap_or(Value::Null)
                            ));
                        }
                    }
                }
            }
            let last_seq = b.changes.last().and_then(|c| c["seq"].as_u64());
            if answer["acked_through_seq"].as_u64() != last_seq {
                out.verdicts.ack_behind += 1;
            }
            progress.fetch_add(b.changes.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_moved_to_now() {
        let b = SimBatch {
            device_id: shared_core::DeviceId(Uuid::now_v7()),
            user_id: shared_core::UserId(Uuid::now_v7()),
            batch_id: shared_core::ids::BatchId(Uuid::now_v7()),
            sent_at: 1_000_000,
            received_at: 1_000_500,
            changes: vec![
                serde_json::json!({"seq": 1, "age_ms": 700}),
                serde_json::json!({"seq": 2}),
            ],
            skewed: false,
            rebooted: false,
        };
        let v: Value = serde_json::from_slice(&body_at(&b, 10_000).unwrap()).unwrap();
        assert_eq!(v["changes"][0]["age_ms"], 10_700);
        assert!(v["changes"][1].get("age_ms").is_none());
        assert_eq!(
            v["sent_at"],
            serde_json::to_value(Timestamp(1_010_000)).unwrap()
        );
    }
}
