//! The HTTP phase: handsets log in, then push their scans in batches, each handset one
//! after another (as a real one does), the handsets side by side.

use crate::common::{post_json, text};
use crate::facts::push_body;
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Demo users that may push scans, in the order handsets take them; past the end a user
/// gets a second device.
pub const USERS: &[&str] = &[
    "guard1",
    "guard2",
    "engineer1",
    "engineer2",
    "guard3",
    "supervisor1",
    "manager1",
    "admin",
];
const PASSWORD: &str = "demo";

/// A handset signed in as a demo user, with its own device id and seq counter.
pub struct Handset {
    pub username: String,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub estate_id: Uuid,
    http: reqwest::Client,
    base: String,
    access: String,
    refresh: String,
}

impl Handset {
    /// Logs in as `USERS[index % USERS.len()]` on a new device.
    pub async fn login(base: &str, index: usize) -> anyhow::Result<Handset> {
        let username = USERS[index % USERS.len()];
        let device_id = Uuid::now_v7();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let v = post_json(
            &http,
            &format!("{base}/v1/auth/login"),
            &json!({
                "username": username,
                "password": PASSWORD,
                "device": { "id": device_id, "name": format!("bench handset {index}"),
                            "platform": "ingest-bench", "app_version": env!("CARGO_PKG_VERSION") },
            }),
        )
        .await
        .with_context(|| format!("logging in as {username}"))?;
        let estate = v["estates"]
            .as_array()
            .and_then(|e| e.first())
            .with_context(|| format!("{username} belongs to no estate: {v}"))?;
        Ok(Handset {
            username: username.to_owned(),
            device_id,
            user_id: text(&v, &["user", "id"])?.parse()?,
            estate_id: text(estate, &["id"])?.parse()?,
            http,
            base: base.to_owned(),
            access: text(&v, &["access_token"])?,
            refresh: text(&v, &["refresh_token"])?,
        })
    }

    async fn refresh_tokens(&mut self) -> anyhow::Result<()> {
        let v = post_json(
            &self.http,
            &format!("{}/v1/auth/refresh", self.base),
            &json!({ "refresh_token": self.refresh }),
        )
        .await?;
        self.access = text(&v, &["access_token"])?;
        self.refresh = text(&v, &["refresh_token"])?;
        Ok(())
    }

    /// Pushes one batch; a 401 (access token expired on a slow run) refreshes the tokens
    /// once and sends the same batch id again.
    async fn push(&mut self, body: Vec<u8>) -> anyhow::Result<Value> {
        let url = format!("{}/v1/sync/push", self.base);
        let mut refreshed = false;
        loop {
            let r = self
                .http
                .post(&url)
                .bearer_auth(&self.access)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await?;
            let status = r.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.refresh_tokens().await.context("refreshing tokens")?;
                continue;
            }
            let text = r.text().await?;
            ensure!(status.is_success(), "push: HTTP {status}: {text}");
            return Ok(serde_json::from_str(&text)?);
        }
    }

    /// Pushes the handset's next `n` facts (from `next_seq`) as one batch, checks the
    /// answer, and returns the time from sending to the checked answer.
    pub async fn push_next(&mut self, next_seq: &mut u64, n: u64) -> anyhow::Result<Duration> {
        let seq = *next_seq;
        let batch_id = Uuid::now_v7();
        let body = push_body(
            self.device_id,
            batch_id,
            &self.estate_id.to_string(),
            seq,
            n,
        );
        let t = Instant::now();
        let v = self.push(body).await.with_context(|| {
            format!(
                "{} (device {}) pushing seq {seq}..{}",
                self.username,
                self.device_id,
                seq + n - 1
            )
        })?;
        let took = t.elapsed();
        check_answer(&v, batch_id, n, seq + n - 1)?;
        *next_seq += n;
        Ok(took)
    }

    /// Pushes facts 1..=`count` in batches of `batch`; checks every answer.
    /// With `replay`, every batch is sent a second time (same bytes) right after its first
    /// answer, as a handset does when it lost that answer; the replay must answer what the
    /// first push answered, and its latency is kept apart.
    async fn run(mut self, count: u64, batch: u64, replay: bool) -> anyhow::Result<HandsetResult> {
        let mut latencies = Vec::with_capacity((count / batch + 1) as usize);
        let mut replays = Vec::new();
        let mut seq = 1;
        let mut acked = 0;
        while seq <= count {
            let n = batch.min(count - seq + 1);
            let batch_id = Uuid::now_v7();
            let body = push_body(
                self.device_id,
                batch_id,
                &self.estate_id.to_string(),
                seq,
                n,
            );
            let again = replay.then(|| body.clone());
            let t = Instant::now();
            let v = self.push(body).await.with_context(|| {
                format!(
                    "{} (device {}) pushing seq {seq}..{}",
                    self.username,
                    self.device_id,
                    seq + n - 1
                )
            })?;
            latencies.push(t.elapsed());
            check_answer(&v, batch_id, n, seq + n - 1).with_context(|| {
                format!(
                    "{} (device {}), batch {batch_id} with seq {seq}..{}",
                    self.username,
                    self.device_id,
                    seq + n - 1
                )
            })?;
            if let Some(again) = again {
                let t = Instant::now();
                let r = self.push(again).await.context("replaying a batch")?;
                replays.push(t.elapsed());
                ensure!(
                    r["results"] == v["results"]
                        && r["acked_through_seq"] == v["acked_through_seq"]
                        && r["batch_id"] == v["batch_id"],
                    "the replay of batch {batch_id} answered {r}, the first push {v}"
                );
            }
            acked = v["acked_through_seq"].as_u64().unwrap_or(0);
            seq += n;
        }
        ensure!(
            acked == count,
            "{}: the final acked_through_seq is {acked}, not {count}",
            self.username
        );
        Ok(HandsetResult {
            facts: count,
            latencies,
            replays,
        })
    }
}

/// Every change accepted, one result per change, and the ack caught up with the batch.
fn check_answer(v: &Value, batch_id: Uuid, n: u64, last_seq: u64) -> anyhow::Result<()> {
    ensure!(
        v["batch_id"].as_str() == Some(batch_id.to_string().as_str()),
        "the answer is for batch {}, not {batch_id}",
        v["batch_id"]
    );
    let results = v["results"]
        .as_array()
        .with_context(|| format!("no results in {v}"))?;
    ensure!(
        results.len() as u64 == n,
        "{} results for {n} changes",
        results.len()
    );
    if let Some((i, r)) = results
        .iter()
        .enumerate()
        .find(|(_, r)| r["status"] != "accepted")
    {
        let refused = results.iter().filter(|r| r["status"] != "accepted").count();
        bail!("{refused} of {n} changes not accepted; the first, change {i}: {r}");
    }
    let acked = v["acked_through_seq"].as_u64();
    ensure!(
        acked == Some(last_seq),
        "acked_through_seq is {acked:?} after pushing through seq {last_seq}"
    );
    Ok(())
}

pub struct HandsetResult {
    pub facts: u64,
    pub latencies: Vec<Duration>,
    pub replays: Vec<Duration>,
}

pub struct IngestResult {
    pub wall: Duration,
    pub facts: u64,
    pub batches: usize,
    /// Sorted ascending.
    pub latencies: Vec<Duration>,
    /// Latencies of the replays (with `replay`), sorted ascending.
    pub replays: Vec<Duration>,
}

impl IngestResult {
    pub fn percentile(&self, q: f64) -> Duration {
        percentile(&self.latencies, q)
    }
}

/// The `q`-quantile (0..=1) of ascending `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Splits `total` facts over `handsets` as evenly as possible.
pub fn shares(total: u64, handsets: usize) -> Vec<u64> {
    let h = handsets as u64;
    (0..h)
        .map(|i| total / h + u64::from(i < total % h))
        .collect()
}

/// Runs every handset at once; the first failure stops the rest.
pub async fn run(
    handsets: Vec<Handset>,
    total: u64,
    batch: u64,
    replay: bool,
) -> anyhow::Result<IngestResult> {
    let counts = shares(total, handsets.len());
    let start = Instant::now();
    let mut set = JoinSet::new();
    for (h, count) in handsets.into_iter().zip(counts) {
        set.spawn(h.run(count, batch, replay));
    }
    let mut facts = 0;
    let mut latencies = Vec::new();
    let mut replays = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined.context("a handset task panicked").and_then(|r| r) {
            Ok(r) => {
                facts += r.facts;
                latencies.extend(r.latencies);
                replays.extend(r.replays);
            }
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    let wall = start.elapsed();
    latencies.sort();
    replays.sort();
    Ok(IngestResult {
        wall,
        facts,
        batches: latencies.len(),
        latencies,
        replays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(shares(100_000, 4), [25_000; 4]);
        assert_eq!(shares(7, 1), [7]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn an_answer_with_a_refused_change_fails_loudly() {
        let b = Uuid::now_v7();
        let ok = json!({ "batch_id": b, "acked_through_seq": 2,
            "results": [{ "index": 0, "status": "accepted" }, { "index": 1, "status": "accepted" }] });
        check_answer(&ok, b, 2, 2).unwrap();
        let dup = json!({ "batch_id": b, "acked_through_seq": 2,
            "results": [{ "index": 0, "status": "accepted" }, { "index": 1, "status": "duplicate" }] });
        let e = check_answer(&dup, b, 2, 2).unwrap_err().to_string();
        assert!(e.contains("1 of 2 changes not accepted"), "{e}");
        let behind = json!({ "batch_id": b, "acked_through_seq": 1,
            "results": [{ "index": 0, "status": "accepted" }, { "index": 1, "status": "accepted" }] });
        assert!(check_answer(&behind, b, 2, 2).is_err());
        assert!(check_answer(&ok, b, 3, 3).is_err());
    }
}
