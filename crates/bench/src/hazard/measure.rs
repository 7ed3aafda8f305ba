//! The tracker calls, each timed `reps` times after `warmup` untimed calls, one at a time
//! (no other load), as the supervisor of the estate (who sees every ticket).

use crate::client::Session;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::Duration;

/// One timed series.
pub struct Series {
    pub name: &'static str,
    /// The request, with ids shortened to `E`/`ID` for the table.
    pub request: String,
    pub warmup: usize,
    /// Ascending.
    pub latencies: Vec<Duration>,
    /// Body size of the last answer.
    pub bytes: usize,
    /// Tickets on the page / rows of the CSV / timeline entries / tickets counted.
    pub items: Option<u64>,
    pub server_cpu_ms_per_call: Option<f64>,
    pub postgres_cpu_ms_per_call: Option<f64>,
}

/// The `q`-quantile (0..=1) of ascending `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

impl Series {
    pub fn to_json(&self) -> Value {
        let mean = if self.latencies.is_empty() {
            0.0
        } else {
            self.latencies.iter().map(|d| d.as_secs_f64()).sum::<f64>() * 1000.0
                / self.latencies.len() as f64
        };
        json!({
            "name": self.name,
            "request": self.request,
            "warmup": self.warmup,
            "reps": self.latencies.len(),
            "latency_ms": {
                "p50": ms(percentile(&self.latencies, 0.5)),
                "p95": ms(percentile(&self.latencies, 0.95)),
                "max": ms(percentile(&self.latencies, 1.0)),
                "min": ms(percentile(&self.latencies, 0.0)),
                "mean": (mean * 100.0).round() / 100.0,
            },
            "response_bytes": self.bytes,
            "items": self.items,
            "server_cpu_ms_per_call": self.server_cpu_ms_per_call,
            "postgres_cpu_ms_per_call": self.postgres_cpu_ms_per_call,
        })
    }
}

/// What a good answer holds: the count the table shows beside the timing.
#[derive(Clone, Copy)]
pub enum Expect {
    /// `{hazards: [...], next_before}`
    Page,
    /// `{total, ...}`
    Stats,
    /// A header line, then one line per ticket.
    Csv,
    /// `{timeline: [...]}`
    Ticket,
}

fn read(expect: Expect, body: &[u8]) -> anyhow::Result<u64> {
    if let Expect::Csv = expect {
        let text = std::str::from_utf8(body).context("the CSV is not UTF-8")?;
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let header = lines.next().context("an empty CSV")?;
        if !header.starts_with("code,id,") {
            bail!("the CSV starts {header:?}");
        }
        return Ok(lines.count() as u64);
    }
    let v: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    let n = match expect {
        Expect::Page => v["hazards"].as_array().map(|a| a.len() as u64),
        Expect::Stats => v["total"].as_u64(),
        Expect::Ticket => v["timeline"].as_array().map(|a| a.len() as u64),
        Expect::Csv => unreachable!(),
    };
    n.with_context(|| format!("unexpected answer: {}", snippet(body)))
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(400).collect()
}

/// GET `path`, checked: 200 and the expected shape. Returns the answer and its count.
pub async fn call(
    s: &mut Session,
    path: &str,
    expect: Expect,
) -> anyhow::Result<(crate::client::Timed, u64)> {
    let r = s.get(path).await?;
    if !r.status.is_success() {
        bail!(
            "GET {path}: HTTP {}: {} (is the endpoint finished in this server build?)",
            r.status,
            snippet(&r.body)
        );
    }
    let n = read(expect, &r.body).with_context(|| format!("GET {path}"))?;
    Ok((r, n))
}

/// Times `reps` calls of `paths(i)` after `warmup` untimed ones.
#[allow(clippy::too_many_arguments)]
pub async fn series(
    s: &mut Session,
    name: &'static str,
    request: String,
    mut paths: impl FnMut(usize) -> String,
    expect: Expect,
    warmup: usize,
    reps: usize,
    server_pid: u32,
) -> anyhow::Result<Series> {
    s.keep_fresh().await?;
    for i in 0..warmup {
        call(s, &paths(i), expect).await?;
    }
    let before = crate::procfs::Snapshot::take(Some(server_pid), None);
    let mut latencies = Vec::with_capacity(reps);
    let mut bytes = 0;
    let mut items = None;
    for i in 0..reps {
        let (r, n) = call(s, &paths(warmup + i), expect).await?;
        latencies.push(r.elapsed);
        bytes = r.body.len();
        items = Some(n);
    }
    let usage = crate::procfs::Snapshot::take(Some(server_pid), None).since(&before);
    latencies.sort();
    let per_call = |x: Option<f64>| {
        x.filter(|_| reps > 0)
            .map(|c| (c * 1000.0 / reps as f64 * 100.0).round() / 100.0)
    };
    let line = format!(
        "  {name:<18} p50 {:>9.2} ms  p95 {:>9.2} ms  max {:>9.2} ms  ({reps} calls, {} items, {} bytes)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 1.0)),
        items.map(|n| n.to_string()).unwrap_or("-".into()),
        bytes
    );
    println!("{line}");
    Ok(Series {
        name,
        request,
        warmup,
        latencies,
        bytes,
        items,
        server_cpu_ms_per_call: per_call(usage.server_cpu_s()),
        postgres_cpu_ms_per_call: per_call(usage.postgres_cpu_s()),
    })
}

/// Follows `next_before` from the first page `pages` times; returns the `before` of the
/// last page reached and the time the walk took.
pub async fn walk(
    s: &mut Session,
    first: &str,
    pages: usize,
) -> anyhow::Result<(String, Duration)> {
    s.keep_fresh().await?;
    let mut path = first.to_owned();
    let mut before = String::new();
    let mut total = Duration::ZERO;
    for i in 0..pages {
        let (r, _) = call(s, &path, Expect::Page).await?;
        total += r.elapsed;
        let v: Value = serde_json::from_slice(&r.body)?;
        before = v["next_before"]
            .as_str()
            .with_context(|| {
                format!(
                    "page {} has no next_before: fewer tickets than asked",
                    i + 1
                )
            })?
            .to_owned();
        path = format!("{first}&before={}", encode(&before));
    }
    Ok((before, total))
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("2026-11-22T00:00:00.000Z"),
            "2026-11-22T00%3A00%3A00.000Z"
        );
        assert_eq!(encode("1_a-b"), "1_a-b");
        assert_eq!(encode("+08:00"), "%2B08%3A00");
    }

    #[test]
    fn answers_are_read_by_kind() {
        assert_eq!(
            read(Expect::Page, br#"{"hazards":[{},{}],"next_before":null}"#).unwrap(),
            2
        );
        assert_eq!(read(Expect::Stats, br#"{"total":7}"#).unwrap(), 7);
        assert_eq!(
            read(Expect::Csv, b"code,id,estate_id\r\na,b,c\r\nd,e,f\r\n").unwrap(),
            2
        );
        assert_eq!(read(Expect::Ticket, br#"{"timeline":[1,2,3]}"#).unwrap(), 3);
        assert!(read(Expect::Page, b"{}").is_err());
        assert!(read(Expect::Csv, b"nope\r\n").is_err());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=30).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(15));
        assert_eq!(percentile(&v, 0.95), Duration::from_millis(29));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(30));
    }
}
