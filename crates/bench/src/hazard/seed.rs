//! Seeding through `POST /v1/sync/push`: the tickets are dealt round-robin to `workers`
//! that run side by side. A worker pushes its tickets' r-th runs (round r) from one new
//! handset of the run's actor, in HLC order, in batches; round r+1 starts when round r has
//! been answered. A fresh device per round keeps each device's HLCs increasing with its
//! seq (real handsets' clocks only move forward) although the rounds go back in time.

use crate::client::Session;
use crate::gen::{event_data, photo_data, Actor, Names, Rng, Ticket, PHOTO_LEAD_MS};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Who acts: the username of each actor.
#[derive(Clone, Debug)]
pub struct Users {
    pub guard: String,
    pub supervisor: String,
    pub engineer: String,
}

impl Users {
    fn of(&self, a: Actor) -> &str {
        match a {
            Actor::Guard => &self.guard,
            Actor::Supervisor => &self.supervisor,
            Actor::Engineer => &self.engineer,
        }
    }
}

/// How the server answered the changes.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    pub accepted: u64,
    pub duplicate: u64,
    /// Rejections by code.
    pub rejected: BTreeMap<String, u64>,
    /// Rejections by the action (or `photo`) they hit.
    pub rejected_by_action: BTreeMap<String, u64>,
    /// A few rejections in full, to find the generator's mistake.
    pub examples: Vec<String>,
    /// Batches whose acked_through_seq was not their last seq.
    pub ack_behind: u64,
}

impl Verdicts {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn merge(&mut self, o: Verdicts) {
        self.accepted += o.accepted;
        self.duplicate += o.duplicate;
        for (k, v) in o.rejected {
            *self.rejected.entry(k).or_default() += v;
        }
        for (k, v) in o.rejected_by_action {
            *self.rejected_by_action.entry(k).or_default() += v;
        }
        for e in o.examples {
            if self.examples.len() < 10 {
                self.examples.push(e);
            }
        }
        self.ack_behind += o.ack_behind;
    }
}

pub struct Seeded {
    pub wall: Duration,
    pub events: u64,
    pub photos: u64,
    pub batches: usize,
    pub devices: usize,
    pub rounds: usize,
    /// Push latencies, ascending.
    pub latencies: Vec<Duration>,
    pub verdicts: Verdicts,
}

/// One change to push: a ticket's step, or the photo documenting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    /// recorded_at and the HLC's ms.
    at: i64,
    ticket: u32,
    step: u16,
    /// 0: the photo (taken before the event), 1: the event.
    part: u8,
}

/// Seq, HLC and recorded_at for a device's changes, in order: HLCs strictly increase.
struct DeviceClock {
    seq: u64,
    last: Option<(i64, u16)>,
}

impl DeviceClock {
    fn new() -> Self {
        DeviceClock { seq: 0, last: None }
    }

    fn next(&mut self, at: i64) -> (u64, String) {
        self.seq += 1;
        let (ms, c) = match self.last {
            Some((ms, c)) if at <= ms => (ms, c.checked_add(1).expect("HLC counter overflow")),
            _ => (at, 0),
        };
        self.last = Some((ms, c));
        (self.seq, crate::facts::hlc(ms, c))
    }
}

struct Ctx {
    tickets: Arc<Vec<Ticket>>,
    names: Names,
    users: Users,
    base: String,
    http: reqwest::Client,
    batch: usize,
    seed: u64,
    progress: Arc<AtomicU64>,
}

struct WorkerResult {
    events: u64,
    photos: u64,
    devices: usize,
    latencies: Vec<Duration>,
    verdicts: Verdicts,
}

async fn worker(ctx: Arc<Ctx>, w: usize, workers: usize) -> anyhow::Result<WorkerResult> {
    let mine: Vec<&Ticket> = ctx.tickets.iter().skip(w).step_by(workers).collect();
    let runs: Vec<Vec<std::ops::Range<usize>>> = mine.iter().map(|t| t.runs()).collect();
    let rounds = runs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = WorkerResult {
        events: 0,
        photos: 0,
        devices: 0,
        latencies: Vec::new(),
        verdicts: Verdicts::default(),
    };
    let mut rng = Rng::new(ctx.seed ^ 0x5eed ^ ((w as u64) << 40));
    for r in 0..rounds {
        let mut by_actor: BTreeMap<Actor, Vec<Item>> = BTreeMap::new();
        for (t, rs) in mine.iter().zip(&runs) {
            let Some(range) = rs.get(r) else { continue };
            let actor = t.steps[range.start].actor;
            let items = by_actor.entry(actor).or_default();
            for i in range.clone() {
                let s = &t.steps[i];
                if s.photo_id.is_some() {
                    items.push(Item {
                        at: s.at - PHOTO_LEAD_MS,
                        ticket: t.n as u32,
                        step: i as u16,
                        part: 0,
                    });
                }
                items.push(Item {
                    at: s.at,
                    ticket: t.n as u32,
                    step: i as u16,
                    part: 1,
                });
            }
        }
        for (actor, mut items) in by_actor {
            items.sort();
            let username = ctx.users.of(actor);
            let mut session = Session::login(
                &ctx.http,
                &ctx.base,
                username,
                &format!("hazard-bench worker {w} round {r} ({})", actor.as_str()),
            )
            .await?;
            out.devices += 1;
            let mut clock = DeviceClock::new();
            for chunk in items.chunks(ctx.batch) {
                let mut changes = Vec::with_capacity(chunk.len());
                for it in chunk {
                    let t = &ctx.tickets[it.ticket as usize];
                    let s = &t.steps[it.step as usize];
                    let (seq, hlc) = clock.next(it.at);
                    let (kind, id, data) = if it.part == 0 {
                        out.photos += 1;
                        (
                            "photo",
                            s.photo_id.expect("a photo item"),
                            photo_data(t, it.step as usize, &ctx.names, &mut rng),
                        )
                    } else {
                        out.events += 1;
                        (
                            "hazard_event",
                            s.id,
                            event_data(t, it.step as usize, &ctx.names, &mut rng),
                        )
                    };
                    changes.push(json!({
                        "kind": kind,
                        "id": id.to_string(),
                        "seq": seq,
                        "hlc": hlc,
                        "recorded_at": crate::facts::rfc3339(it.at),
                        "data": data,
                    }));
                }
                let last_seq = clock.seq;
                let batch_id = Uuid::now_v7();
                let body = serde_json::to_vec(&json!({
                    "device_id": session.device_id.to_string(),
                    "batch_id": batch_id.to_string(),
                    "sent_at": crate::facts::rfc3339(crate::facts::now_ms()),
                    "changes": changes,
                }))?;
                let t0 = Instant::now();
                let answer = session.push(body).await.with_context(|| {
                    format!(
                        "{username} (worker {w}, round {r}, device {}) pushing seq {}..{last_seq}",
                        session.device_id,
                        last_seq + 1 - chunk.len() as u64
                    )
                })?;
                out.latencies.push(t0.elapsed());
                let v = judge(&answer, batch_id, chunk, last_seq, &ctx.tickets)?;
                out.verdicts.merge(v);
                ctx.progress.fetch_add(
                    chunk.iter().filter(|i| i.part == 1).count() as u64,
                    Ordering::Relaxed,
                );
            }
        }
    }
    Ok(out)
}

/// Reads one push answer: one result per change, each counted by status (and code).
fn judge(
    v: &Value,
    batch_id: Uuid,
    chunk: &[Item],
    last_seq: u64,
    tickets: &[Ticket],
) -> anyhow::Result<Verdicts> {
    ensure!(
        v["batch_id"].as_str() == Some(batch_id.to_string().as_str()),
        "the answer is for batch {}, not {batch_id}",
        v["batch_id"]
    );
    let results = v["results"]
        .as_array()
        .with_context(|| format!("no results in {v}"))?;
    ensure!(
        results.len() == chunk.len(),
        "{} results for {} changes",
        results.len(),
        chunk.len()
    );
    let mut out = Verdicts::default();
    for (i, r) in results.iter().enumerate() {
        let index = r["index"].as_u64().map(|x| x as usize).unwrap_or(i);
        match r["status"].as_str() {
            Some("accepted") => out.accepted += 1,
            Some("duplicate") => out.duplicate += 1,
            _ => {
                let code = r["code"].as_str().unwrap_or("?").to_owned();
                *out.rejected.entry(code.clone()).or_default() += 1;
                let it = chunk.get(index).copied().unwrap_or(chunk[i]);
                let t = &tickets[it.ticket as usize];
                let what = if it.part == 0 {
                    "photo".to_owned()
                } else {
                    t.steps[it.step as usize].act.as_str().to_owned()
                };
                *out.rejected_by_action.entry(what.clone()).or_default() += 1;
                if out.examples.len() < 3 {
                    let story: Vec<&str> = t.steps.iter().map(|s| s.act.as_str()).collect();
                    out.examples.push(format!(
                        "{what} (step {} of ticket #{} {}, {}): {code}: {} [story: {}]",
                        it.step,
                        t.n,
                        t.hazard_id,
                        if t.major { "major" } else { "general" },
                        r["message"].as_str().unwrap_or(""),
                        story.join(" → ")
                    ));
                }
            }
        }
    }
    if v["acked_through_seq"].as_u64() != Some(last_seq) {
        out.ack_behind += 1;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    base: &str,
    tickets: Arc<Vec<Ticket>>,
    names: Names,
    users: Users,
    workers: usize,
    batch: usize,
    seed: u64,
) -> anyhow::Result<Seeded> {
    let total_events: u64 = tickets.iter().map(|t| t.steps.len() as u64).sum();
    let rounds = tickets.iter().map(|t| t.runs().len()).max().unwrap_or(0);
    let progress = Arc::new(AtomicU64::new(0));
    let ctx = Arc::new(Ctx {
        tickets,
        names,
        users,
        base: base.to_owned(),
        http: crate::client::http_client()?,
        batch,
        seed,
        progress: progress.clone(),
    });
    let start = Instant::now();
    let reporter = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = progress.load(Ordering::Relaxed);
                let s = start.elapsed().as_secs_f64();
                println!(
                    "  seeded {n} of {total_events} events in {s:.0} s ({:.0} events/s)",
                    n as f64 / s
                );
            }
        })
    };
    let mut set = JoinSet::new();
    for w in 0..workers {
        set.spawn(worker(ctx.clone(), w, workers));
    }
    let mut seeded = Seeded {
        wall: Duration::ZERO,
        events: 0,
        photos: 0,
        batches: 0,
        devices: 0,
        rounds,
        latencies: Vec::new(),
        verdicts: Verdicts::default(),
    };
    let mut failure = None;
    while let Some(joined) = set.join_next().await {
        match joined.context("a seeding worker panicked").and_then(|r| r) {
            Ok(r) => {
                seeded.events += r.events;
                seeded.photos += r.photos;
                seeded.devices += r.devices;
                seeded.latencies.extend(r.latencies);
                seeded.verdicts.merge(r.verdicts);
            }
            Err(e) => {
                set.abort_all();
                failure = Some(e);
                break;
            }
        }
    }
    reporter.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    seeded.wall = start.elapsed();
    seeded.latencies.sort();
    seeded.batches = seeded.latencies.len();
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_clock_never_goes_back_or_repeats() {
        let mut c = DeviceClock::new();
        assert_eq!(c.next(1_000), (1, "0000000001000-0000".to_owned()));
        assert_eq!(c.next(1_000), (2, "0000000001000-0001".to_owned()));
        assert_eq!(c.next(1_000), (3, "0000000001000-0002".to_owned()));
        assert_eq!(c.next(1_001), (4, "0000000001001-0000".to_owned()));
    }

    #[test]
    fn a_photo_sorts_before_its_event() {
        let photo = Item {
            at: 10 - PHOTO_LEAD_MS,
            ticket: 5,
            step: 0,
            part: 0,
        };
        let event = Item {
            at: 10,
            ticket: 5,
            step: 0,
            part: 1,
        };
        let mut v = vec![event, photo];
        v.sort();
        assert_eq!(v, [photo, event]);
    }

    #[test]
    fn rejections_are_counted_by_code_and_action() {
        let t = crate::gen::plan(&crate::gen::Spec {
            tickets: 1,
            events: 0,
            days: 90,
            seed: 1,
            now: 1_795_000_000_000,
        });
        let chunk = [
            Item {
                at: 1,
                ticket: 0,
                step: 0,
                part: 0,
            },
            Item {
                at: 2,
                ticket: 0,
                step: 0,
                part: 1,
            },
        ];
        let b = Uuid::now_v7();
        let v = json!({ "batch_id": b, "acked_through_seq": 2, "results": [
            { "index": 0, "status": "accepted" },
            { "index": 1, "status": "rejected", "code": "evidence_required", "message": "no photo" },
        ]});
        let got = judge(&v, b, &chunk, 2, &t).unwrap();
        assert_eq!(got.accepted, 1);
        assert_eq!(got.rejected["evidence_required"], 1);
        assert_eq!(got.rejected_by_action["report"], 1);
        assert_eq!(got.ack_behind, 0);
        assert!(got.examples[0].contains("no photo"));
        assert!(judge(&v, b, &chunk[..1], 2, &t).is_err());
    }
}
