//! Open-loop push latency (issue 5, item 2): pushes are launched at a fixed rate whatever
//! the answers, so queueing shows in the latency instead of slowing the sender down.
//!
//! Push `k` is due at `start + k / rate`. At its moment it takes an idle handset (a pool;
//! each handset pushes one batch at a time, its seqs in order, as a real one does) and
//! sends. Its latency is measured from the moment it was *due*, not from when it was sent,
//! so a push that waited for a handset or behind a slow answer counts that wait
//! (no coordinated omission). The time from sending to the answer is kept apart.

use crate::ingest::{percentile, Handset};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One rate's outcome.
pub struct Level {
    pub fraction: f64,
    pub pushes_per_s: f64,
    pub batch: u64,
    pub pushes: usize,
    pub wall: Duration,
    /// Due → checked answer, ascending.
    pub latencies: Vec<Duration>,
    /// Sent → checked answer, ascending.
    pub service: Vec<Duration>,
    /// Pushes that found no idle handset at their moment.
    pub waited: usize,
    /// Pushes sent later than 1 ms after their moment (the sender itself fell behind, or a
    /// handset was busy).
    pub late_sends: usize,
    pub max_in_flight: usize,
}

impl Level {
    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
        let q = |v: &[Duration], p: f64| ms(percentile(v, p));
        json!({
            "fraction_of_max": self.fraction,
            "target_pushes_per_s": (self.pushes_per_s * 100.0).round() / 100.0,
            "target_records_per_s": (self.pushes_per_s * self.batch as f64).round(),
            "batch": self.batch,
            "pushes": self.pushes,
            "wall_s": (self.wall.as_secs_f64() * 100.0).round() / 100.0,
            "achieved_records_per_s": (self.pushes as f64 * self.batch as f64 / self.wall.as_secs_f64()).round(),
            "latency_from_due_ms": {
                "p50": q(&self.latencies, 0.50), "p90": q(&self.latencies, 0.90),
                "p99": q(&self.latencies, 0.99), "p99_9": q(&self.latencies, 0.999),
                "max": q(&self.latencies, 1.0),
            },
            "service_ms": {
                "p50": q(&self.service, 0.50), "p99": q(&self.service, 0.99),
                "p99_9": q(&self.service, 0.999), "max": q(&self.service, 1.0),
            },
            "waited_for_a_handset": self.waited,
            "sent_late_over_1ms": self.late_sends,
            "max_in_flight": self.max_in_flight,
        })
    }
}

struct Idle {
    handset: Handset,
    next_seq: u64,
}

/// Pushes `batch` facts `pushes_per_s` times a second for `duration` from the pool.
/// Returns the handsets (their seqs carried on) with the outcome.
pub async fn level(
    pool: Vec<(Handset, u64)>,
    fraction: f64,
    pushes_per_s: f64,
    batch: u64,
    duration: Duration,
) -> anyhow::Result<(Level, Vec<(Handset, u64)>)> {
    ensure!(pushes_per_s > 0.0, "the rate must be above zero");
    ensure!(!pool.is_empty(), "no handsets to push from");
    let handsets = pool.len();
    let count = ((pushes_per_s * duration.as_secs_f64()).ceil() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / pushes_per_s);
    let (tx, rx) = mpsc::channel::<Idle>(handsets);
    for (handset, next_seq) in pool {
        tx.send(Idle { handset, next_seq })
            .await
            .expect("the pool has room for every handset");
    }
    // Waiters queue on the mutex in arrival order (tokio's Mutex is fair), so pushes take
    // idle handsets in the order they were due.
    let rx = Arc::new(Mutex::new(rx));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let mut set = JoinSet::new();
    let mut outcomes = Vec::with_capacity(count);
    for k in 0..count {
        let due = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        let rx = rx.clone();
        let tx = tx.clone();
        let in_flight = in_flight.clone();
        let max_in_flight = max_in_flight.clone();
        set.spawn(async move {
            let (mut idle, waited) = {
                let mut rx = rx.lock().await;
                match rx.try_recv() {
                    Ok(i) => (i, false),
                    Err(_) => (rx.recv().await.context("the handset pool closed")?, true),
                }
            };
            let sent = Instant::now();
            let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            max_in_flight.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            let r = idle.handset.push_next(&mut idle.next_seq, batch).await;
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            let done = Instant::now();
            tx.send(idle).await.ok();
            let service = r?;
            anyhow::Ok((
                done - due,
                service,
                waited,
                sent - due > Duration::from_millis(1),
            ))
        });
        // Collect what has finished, so errors surface early.
        while let Some(j) = set.try_join_next() {
            outcomes.push(j.context("a push task panicked")??);
        }
    }
    while let Some(j) = set.join_next().await {
        outcomes.push(j.context("a push task panicked")??);
    }
    let mut latencies = Vec::with_capacity(count);
    let mut service = Vec::with_capacity(count);
    let mut waited = 0;
    let mut late_sends = 0;
    for (l, s, w, late) in outcomes {
        latencies.push(l);
        service.push(s);
        waited += usize::from(w);
        late_sends += usize::from(late);
    }
    let wall = start.elapsed();
    drop(tx);
    // Every task has returned its handset: take the pool back.
    let mut rx = Arc::try_unwrap(rx)
        .map_err(|_| anyhow::anyhow!("the pool is still shared"))?
        .into_inner();
    let mut back = Vec::with_capacity(handsets);
    while let Ok(i) = rx.try_recv() {
        back.push((i.handset, i.next_seq));
    }
    ensure!(
        back.len() == handsets,
        "{} of {handsets} handsets came back",
        back.len()
    );
    latencies.sort();
    service.sort();
    Ok((
        Level {
            fraction,
            pushes_per_s,
            batch,
            pushes: latencies.len(),
            wall,
            latencies,
            service,
            waited,
            late_sends,
            max_in_flight: max_in_flight.load(std::sync::atomic::Ordering::SeqCst),
        },
        back,
    ))
}
