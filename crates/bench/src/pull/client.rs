//! A handset's side of sign-in and `GET /v1/sync/pull`, shared by `pull-bench` and
//! `longpoll-bench`: pages read as bytes (so the bytes on the wire can be counted), then
//! decompressed here (reqwest is built without its decompression features) and decoded
//! into just what the benchmarks check.

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const PASSWORD: &str = "demo";

/// What a pull asks the server to compress with (`Accept-Encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }
}

/// A signed-in device (each binary reads the fields it needs).
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub struct Session {
    pub username: String,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub estate_id: Uuid,
    /// The caller's roles in `estate_id`.
    pub roles: Vec<String>,
    pub access: String,
}

/// Signs in as `username` on a new device.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    device_name: &str,
) -> anyhow::Result<Session> {
    let device_id = Uuid::now_v7();
    let r = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({
            "username": username,
            "password": PASSWORD,
            "device": { "id": device_id, "name": device_name, "platform": "patrol-bench",
                        "app_version": env!("CARGO_PKG_VERSION") },
        }))
        .send()
        .await
        .with_context(|| format!("logging in as {username}"))?;
    let status = r.status();
    let text = r.text().await?;
    ensure!(
        status.is_success(),
        "login as {username}: HTTP {status}: {text}"
    );
    let v: Value = serde_json::from_str(&text)?;
    let estate = v["estates"]
        .as_array()
        .and_then(|e| e.first())
        .with_context(|| format!("{username} belongs to no estate: {v}"))?;
    let s = |v: &Value| v.as_str().map(str::to_owned);
    Ok(Session {
        username: username.to_owned(),
        user_id: s(&v["user"]["id"]).context("no user.id")?.parse()?,
        device_id,
        estate_id: s(&estate["id"]).context("no estates[0].id")?.parse()?,
        roles: estate["roles"]
            .as_array()
            .map(|a| a.iter().filter_map(s).collect())
            .unwrap_or_default(),
        access: s(&v["access_token"]).context("no access_token")?,
    })
}

/// A pulled change, decoded only as far as the checks need.
#[derive(Debug, Deserialize)]
pub struct Change {
    pub collection: String,
    pub id: String,
    #[serde(default)]
    pub data: Option<DataPeek>,
}

/// From a change's `data`: a fact's device and seq (other collections have neither, or
/// something else under those names, so any JSON is taken).
#[derive(Debug, Deserialize)]
pub struct DataPeek {
    #[serde(default)]
    pub device_id: Option<Value>,
    #[serde(default)]
    pub seq: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct PageWire {
    changes: Vec<Change>,
    cursor: String,
    has_more: bool,
}

/// One answer of `GET /v1/sync/pull`.
#[derive(Debug)]
pub struct Page {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
    /// Body bytes as sent (compressed when the server compressed).
    pub wire_bytes: usize,
    /// Body bytes after decompression.
    pub json_bytes: usize,
    /// The `Content-Encoding` the server chose (`identity` when none).
    pub content_encoding: String,
    /// From sending the request to the last byte of the body.
    pub elapsed: Duration,
}

/// `GET /v1/sync/pull` once. Any status but 200 is an error naming it.
pub async fn pull_page(
    http: &reqwest::Client,
    base: &str,
    access: &str,
    cursor: Option<&str>,
    limit: usize,
    wait: u64,
    enc: Encoding,
) -> anyhow::Result<Page> {
    let mut url = format!("{base}/v1/sync/pull?limit={limit}&wait={wait}");
    if let Some(c) = cursor {
        url.push_str("&cursor=");
        url.push_str(c);
    }
    let mut req = http.get(&url).bearer_auth(access);
    if enc != Encoding::Identity {
        req = req.header(reqwest::header::ACCEPT_ENCODING, enc.name());
    }
    let t = Instant::now();
    let r = req.send().await?;
    let status = r.status();
    let content_encoding = r
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_owned();
    let body = r.bytes().await?;
    let elapsed = t.elapsed();
    if !status.is_success() {
        bail!(
            "pull: HTTP {status}: {}",
            String::from_utf8_lossy(&decode(&content_encoding, &body).unwrap_or_default())
        );
    }
    let json = decode(&content_encoding, &body)?;
    let w: PageWire = serde_json::from_slice(&json).context("decoding a pull page")?;
    Ok(Page {
        changes: w.changes,
        cursor: w.cursor,
        has_more: w.has_more,
        wire_bytes: body.len(),
        json_bytes: json.len(),
        content_encoding,
        elapsed,
    })
}

fn decode(encoding: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() * 4);
    match encoding {
        "identity" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .context("gunzip")?;
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(body)?
                .read_to_end(&mut out)
                .context("unzstd")?;
        }
        other => bail!("unexpected Content-Encoding {other}"),
    }
    Ok(out)
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
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The 1-minute load average.
pub fn loadavg1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine, for the report.
pub fn machine() -> Value {
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
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "mem_total_kib": mem,
        "loadavg_at_start": load,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bodies_are_decoded_by_their_content_encoding() {
        let text = br#"{"changes":[],"cursor":"c","has_more":false}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(decode("identity", text).unwrap(), text);
        assert_eq!(decode("gzip", &gz).unwrap(), text);
        assert_eq!(decode("zstd", &zs).unwrap(), text);
        assert!(decode("br", text).is_err());
    }

    #[test]
    fn a_page_decodes_facts_and_other_collections() {
        let page = r#"{"changes":[
            {"collection":"facts","op":"put","id":"a","data":{"device_id":"d","seq":7,"x":[1]}},
            {"collection":"hazards","op":"put","id":"h","data":{"seq":"not a number"}},
            {"collection":"estates","op":"delete","id":"e"}],
            "cursor":"c","has_more":true,"hlc":"1-0000"}"#;
        let w: PageWire = serde_json::from_str(page).unwrap();
        assert_eq!(w.changes.len(), 3);
        let d = w.changes[0].data.as_ref().unwrap();
        assert_eq!(d.seq.as_ref().and_then(Value::as_u64), Some(7));
        assert!(w.changes[2].data.is_none());
        assert!(w.has_more);
    }
}
