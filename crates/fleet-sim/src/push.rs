//! Pushing one batch the way a handset does: retry transport errors, timeouts, 429 and 5xx
//! with backoff (the same bytes, so the same `batch_id`); and, when asked, play the two
//! failures a handset meets — an answer lost on the way back (the batch was stored; the
//! handset sends it again and must get the same answer as a replay), and a request that
//! times out (aborted after a very short client timeout; the handset sends it again).

use crate::client::{Attempt, Session};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// What this batch will go through.
#[derive(Clone, Copy, Debug)]
pub struct PushPolicy {
    /// The first answer is "lost": the same bytes are sent again and the answers compared.
    pub lost_answer: bool,
    /// A first attempt with `short_timeout`, abandoned.
    pub timeout_first: bool,
    pub short_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts (after the abandoned one) before giving up on the batch.
    pub max_attempts: u32,
}

impl Default for PushPolicy {
    fn default() -> Self {
        PushPolicy {
            lost_answer: false,
            timeout_first: false,
            short_timeout: Duration::from_millis(1),
            request_timeout: Duration::from_secs(120),
            max_attempts: 8,
        }
    }
}

/// Counts of everything the fleet did; merged across handsets.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Batches handled (each once, however many attempts).
    pub batches: u64,
    pub changes_sent: u64,
    /// Push requests sent (every attempt: first, retries, replays, abandoned ones).
    pub requests: u64,
    /// Lost-answer re-sends of a stored batch.
    pub replays_sent: u64,
    /// Replays whose answer differed from the first (results or ack).
    pub replay_mismatch: u64,
    /// Attempts abandoned by the short client timeout.
    pub timeouts: u64,
    /// Attempts meant to time out that were answered first (the answer was dropped).
    pub timeout_answered: u64,
    /// Retries after a transport error, a timeout, 429 or 5xx.
    pub retries: u64,
    pub reboot_batches: u64,
    pub skewed_batches: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub rejected_codes: BTreeMap<String, u64>,
    /// Answers whose `acked_through_seq` was not the batch's last seq.
    pub ack_behind: u64,
    /// Batches given up on (a 4xx, or every attempt failed).
    pub failed_batches: u64,
    /// Non-2xx answers by status; transport errors and timeouts of real attempts by name.
    pub errors: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    pub photos_uploaded: u64,
    pub photos_already_held: u64,
    pub hazards_raised: u64,
    pub hazards_assigned: u64,
    pub hazards_fixed: u64,
    pub hazards_closed: u64,
    pub hazard_events_refused: u64,
    /// First pushes answered 2xx: request to last byte.
    pub latencies: Vec<Duration>,
    pub replay_latencies: Vec<Duration>,
}

impl Counters {
    pub fn merge(&mut self, o: Counters) {
        self.batches += o.batches;
        self.changes_sent += o.changes_sent;
        self.requests += o.requests;
        self.replays_sent += o.replays_sent;
        self.replay_mismatch += o.replay_mismatch;
        self.timeouts += o.timeouts;
        self.timeout_answered += o.timeout_answered;
        self.retries += o.retries;
        self.reboot_batches += o.reboot_batches;
        self.skewed_batches += o.skewed_batches;
        self.accepted += o.accepted;
        self.duplicate += o.duplicate;
        self.rejected += o.rejected;
        for (k, v) in o.rejected_codes {
            *self.rejected_codes.entry(k).or_default() += v;
        }
        self.ack_behind += o.ack_behind;
        self.failed_batches += o.failed_batches;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.photos_uploaded += o.photos_uploaded;
        self.photos_already_held += o.photos_already_held;
        self.hazards_raised += o.hazards_raised;
        self.hazards_assigned += o.hazards_assigned;
        self.hazards_fixed += o.hazards_fixed;
        self.hazards_closed += o.hazards_closed;
        self.hazard_events_refused += o.hazard_events_refused;
        self.latencies.extend(o.latencies);
        self.replay_latencies.extend(o.replay_latencies);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn error(&mut self, key: String, message: String) {
        *self.errors.entry(key).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// Sends `body` until a 2xx answer (JSON), retrying what a handset retries. `None` when it
/// gave up (counted in `failed_batches`).
async fn until_answered(
    s: &mut Session,
    body: &[u8],
    p: &PushPolicy,
    c: &mut Counters,
    replay: bool,
) -> anyhow::Result<Option<Value>> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        c.requests += 1;
        let retry = match s.push_once(body, p.request_timeout).await? {
            Attempt::Answered {
                status,
                body: answer,
                elapsed,
            } if status.is_success() => match serde_json::from_slice::<Value>(&answer) {
                Ok(v) => {
                    if replay {
                        c.replay_latencies.push(elapsed);
                    } else {
                        c.latencies.push(elapsed);
                    }
                    return Ok(Some(v));
                }
                Err(e) => {
                    c.error(
                        format!("{}", status.as_u16()),
                        format!("push: HTTP {status} with a body that is not JSON: {e}"),
                    );
                    false
                }
            },
            Attempt::Answered {
                status,
                body: answer,
                ..
            } => {
                let text = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
                c.error(
                    status.as_u16().to_string(),
                    format!("push: HTTP {status}: {text}"),
                );
                status.as_u16() == 429 || status.is_server_error()
            }
            Attempt::TimedOut => {
                c.error(
                    "timeout".into(),
                    format!("push: no answer within {:?}", p.request_timeout),
                );
                true
            }
            Attempt::Transport(e) => {
                c.error("transport".into(), format!("push: {e}"));
                true
            }
        };
        if !retry || attempt >= p.max_attempts {
            c.failed_batches += 1;
            return Ok(None);
        }
        c.retries += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Pushes one batch under `policy`; the answer the handset finally acts on, or `None` when
/// it gave up. Results are tallied into `c` (see [`tally`]).
pub async fn push_batch(
    s: &mut Session,
    body: &[u8],
    policy: &PushPolicy,
    c: &mut Counters,
) -> anyhow::Result<Option<Value>> {
    if policy.timeout_first {
        c.requests += 1;
        match s.push_once(body, policy.short_timeout).await? {
            Attempt::TimedOut | Attempt::Transport(_) => c.timeouts += 1,
            Attempt::Answered { .. } => c.timeout_answered += 1,
        }
        // A handset waits a little before it tries again.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(first) = until_answered(s, body, policy, c, false).await? else {
        return Ok(None);
    };
    if !policy.lost_answer {
        return Ok(Some(first));
    }
    c.replays_sent += 1;
    let Some(again) = until_answered(s, body, policy, c, true).await? else {
        return Ok(None);
    };
    if again["results"] != first["results"]
        || again["acked_through_seq"] != first["acked_through_seq"]
    {
        c.replay_mismatch += 1;
        if c.first_error.is_none() {
            c.first_error = Some(format!(
                "a replayed batch was answered differently: first {first}, then {again}"
            ));
        }
    }
    Ok(Some(again))
}

/// Counts an answer's results and checks its ack against the batch's last seq; returns each
/// change's status (and code) by id.
pub fn tally(
    changes: &[Value],
    answer: &Value,
    c: &mut Counters,
) -> HashMap<Uuid, (String, Option<String>)> {
    let mut out = HashMap::new();
    for r in answer["results"].as_array().into_iter().flatten() {
        let status = r["status"].as_str().unwrap_or("").to_owned();
        let code = r["code"].as_str().map(str::to_owned);
        match status.as_str() {
            "accepted" => c.accepted += 1,
            "duplicate" => c.duplicate += 1,
            _ => {
                c.rejected += 1;
                *c.rejected_codes
                    .entry(code.clone().unwrap_or_else(|| "?".into()))
                    .or_default() += 1;
            }
        }
        let id = r["id"].as_str().and_then(|s| s.parse().ok()).or_else(|| {
            let i = r["index"].as_u64()? as usize;
            changes.get(i)?["id"].as_str()?.parse().ok()
        });
        if let Some(id) = id {
            out.insert(id, (status, code));
        }
    }
    let last = changes.last().and_then(|x| x["seq"].as_u64());
    if answer["acked_through_seq"].as_u64() != last {
        c.ack_behind += 1;
    }
    out
}

/// Uploads photo bytes (up to 3 attempts); counts what happened.
pub async fn upload_photo(s: &mut Session, sha256: &str, bytes: &[u8], c: &mut Counters) {
    for attempt in 1..=3u32 {
        match s.put_photo(sha256, bytes).await {
            Ok(Attempt::Answered { status, .. }) if status.as_u16() == 201 => {
                c.photos_uploaded += 1;
                return;
            }
            Ok(Attempt::Answered { status, .. }) if status.as_u16() == 200 => {
                c.photos_already_held += 1;
                return;
            }
            Ok(Attempt::Answered { status, body, .. }) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                c.error(
                    format!("photo {}", status.as_u16()),
                    format!("PUT /v1/photos/{sha256}: HTTP {status}: {text}"),
                );
                if !(status.as_u16() == 429 || status.is_server_error()) {
                    return;
                }
            }
            Ok(Attempt::TimedOut) => {
                c.error("photo timeout".into(), "photo upload timed out".into())
            }
            Ok(Attempt::Transport(e)) => c.error("photo transport".into(), e),
            Err(e) => {
                c.error("photo".into(), format!("{e:#}"));
                return;
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// The `q` quantile of ascending `sorted` (nearest rank), ms.
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    (sorted[i].as_secs_f64() * 1e5).round() / 100.0
}
