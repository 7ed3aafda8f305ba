//! A signed-in handset: its device, its tokens (refreshed before they age out, and once on a
//! 401), and the calls a handset makes. Every server answer that is not what was asked for is
//! an error with the status and the start of the body; nothing here panics.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An HTTP client for many handsets: one connection pool, idle connections kept per host for
/// as many handsets as will push at once.
pub fn http_client(handsets: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(handsets.max(8))
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?)
}

/// What one attempt at a request came to.
#[derive(Debug)]
pub enum Attempt {
    /// The server answered (any status).
    Answered {
        status: reqwest::StatusCode,
        body: Vec<u8>,
        elapsed: Duration,
    },
    /// The client gave up waiting (the request may or may not have been stored).
    TimedOut,
    /// The connection failed.
    Transport(String),
}

pub struct Session {
    pub username: String,
    pub device_id: Uuid,
    pub user_id: Uuid,
    /// The login answer's `estates`.
    pub estates: Value,
    http: reqwest::Client,
    base: String,
    access: String,
    refresh: String,
    refreshed_at: Instant,
    /// Longest wait for an answer.
    pub request_timeout: Duration,
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned()
}

impl Session {
    /// `POST /v1/auth/login` on `device_id`.
    pub async fn login(
        http: &reqwest::Client,
        base: &str,
        username: &str,
        password: &str,
        device_id: Uuid,
        device_name: &str,
    ) -> anyhow::Result<Session> {
        let url = format!("{base}/v1/auth/login");
        let body = json!({
            "username": username,
            "password": password,
            "device": { "id": device_id, "name": device_name, "platform": "android",
                        "app_version": concat!("fleet-sim/", env!("CARGO_PKG_VERSION")) },
        });
        // Logins wait for an argon2 permit on the server; give them time.
        let r = http
            .post(&url)
            .timeout(Duration::from_secs(300))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("logging in as {username}: POST {url}"))?;
        let status = r.status();
        let bytes = r.bytes().await?;
        if !status.is_success() {
            bail!(
                "logging in as {username}: HTTP {status}: {}",
                snippet(&bytes)
            );
        }
        let v: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("logging in as {username}: the answer is not JSON"))?;
        let text = |k: &str| -> anyhow::Result<String> {
            v[k].as_str()
                .map(str::to_owned)
                .with_context(|| format!("logging in as {username}: no {k} in the answer"))
        };
        Ok(Session {
            username: username.to_owned(),
            device_id,
            user_id: v["user"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("logging in as {username}: no user.id"))?,
            estates: v["estates"].clone(),
            http: http.clone(),
            base: base.to_owned(),
            access: text("access_token")?,
            refresh: text("refresh_token")?,
            refreshed_at: Instant::now(),
            request_timeout: Duration::from_secs(120),
        })
    }

    /// The id of the estate whose name contains `name` (any estate when `None`: the first).
    pub fn estate(&self, name: Option<&str>) -> anyhow::Result<(Uuid, String)> {
        let list = self.estates.as_array().cloned().unwrap_or_default();
        let e = list
            .iter()
            .find(|e| match name {
                Some(n) => e["name"].as_str().is_some_and(|x| x.contains(n)),
                None => true,
            })
            .with_context(|| {
                format!(
                    "{} belongs to no estate{}: {}",
                    self.username,
                    name.map(|n| format!(" named *{n}*")).unwrap_or_default(),
                    self.estates
                )
            })?;
        let id = e["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("an estate without an id")?;
        let tz = e["timezone"].as_str().unwrap_or("UTC").to_owned();
        Ok((id, tz))
    }

    async fn refresh_tokens(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/v1/auth/refresh", self.base);
        let r = self
            .http
            .post(&url)
            .timeout(self.request_timeout)
            .json(&json!({ "refresh_token": self.refresh }))
            .send()
            .await
            .context("refreshing tokens")?;
        let status = r.status();
        let bytes = r.bytes().await?;
        if !status.is_success() {
            bail!("refreshing tokens: HTTP {status}: {}", snippet(&bytes));
        }
        let v: Value = serde_json::from_slice(&bytes)?;
        self.access = v["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        self.refresh = v["refresh_token"]
            .as_str()
            .context("no refresh_token")?
            .to_owned();
        self.refreshed_at = Instant::now();
        Ok(())
    }

    /// Refreshes the tokens when they are older than 5 minutes (they live 15 by default).
    pub async fn keep_fresh(&mut self) -> anyhow::Result<()> {
        if self.refreshed_at.elapsed() > Duration::from_secs(300) {
            self.refresh_tokens().await?;
        }
        Ok(())
    }

    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&[u8], &str)>,
        timeout: Duration,
    ) -> anyhow::Result<Attempt> {
        let url = format!("{}{path}", self.base);
        let mut refreshed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.access)
                .timeout(timeout);
            if let Some((b, ctype)) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, ctype)
                    .body(b.to_vec());
            }
            let t = Instant::now();
            let r = match req.send().await {
                Ok(r) => r,
                Err(e) if e.is_timeout() => return Ok(Attempt::TimedOut),
                Err(e) => return Ok(Attempt::Transport(format!("{e:#}"))),
            };
            let status = r.status();
            let bytes = match r.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) if e.is_timeout() => return Ok(Attempt::TimedOut),
                Err(e) => return Ok(Attempt::Transport(format!("{e:#}"))),
            };
            let elapsed = t.elapsed();
            if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.refresh_tokens().await?;
                continue;
            }
            return Ok(Attempt::Answered {
                status,
                body: bytes,
                elapsed,
            });
        }
    }

    /// One attempt at `POST /v1/sync/push` with `body`, waiting at most `timeout`.
    pub async fn push_once(&mut self, body: &[u8], timeout: Duration) -> anyhow::Result<Attempt> {
        self.keep_fresh().await?;
        self.send(
            reqwest::Method::POST,
            "/v1/sync/push",
            Some((body, "application/json")),
            timeout,
        )
        .await
    }

    /// `PUT /v1/photos/{sha256}` with the bytes: the status (200 held already, 201 stored).
    pub async fn put_photo(&mut self, sha256: &str, bytes: &[u8]) -> anyhow::Result<Attempt> {
        self.keep_fresh().await?;
        let t = self.request_timeout;
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/photos/{sha256}"),
            Some((bytes, "image/jpeg")),
            t,
        )
        .await
    }

    /// A GET answered 2xx with JSON, or an error.
    pub async fn get_json(&mut self, path: &str) -> anyhow::Result<Value> {
        self.keep_fresh().await?;
        let t = self.request_timeout;
        match self.send(reqwest::Method::GET, path, None, t).await? {
            Attempt::Answered { status, body, .. } if status.is_success() => {
                serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
            }
            Attempt::Answered { status, body, .. } => {
                bail!("GET {path}: HTTP {status}: {}", snippet(&body))
            }
            Attempt::TimedOut => bail!("GET {path}: no answer within {t:?}"),
            Attempt::Transport(e) => bail!("GET {path}: {e}"),
        }
    }

    /// A PUT of JSON answered 2xx, or an error.
    pub async fn put_json(&mut self, path: &str, body: &Value) -> anyhow::Result<()> {
        self.keep_fresh().await?;
        let t = self.request_timeout;
        let bytes = serde_json::to_vec(body)?;
        match self
            .send(
                reqwest::Method::PUT,
                path,
                Some((&bytes, "application/json")),
                t,
            )
            .await?
        {
            Attempt::Answered { status, .. } if status.is_success() => Ok(()),
            Attempt::Answered { status, body, .. } => {
                bail!("PUT {path}: HTTP {status}: {}", snippet(&body))
            }
            Attempt::TimedOut => bail!("PUT {path}: no answer within {t:?}"),
            Attempt::Transport(e) => bail!("PUT {path}: {e}"),
        }
    }

    /// Pulls from `cursor` (none: the start) to the end; calls `each` with every change.
    /// Returns the last cursor and the number of pages.
    pub async fn pull_all(
        &mut self,
        cursor: Option<String>,
        limit: usize,
        mut each: impl FnMut(&Value),
    ) -> anyhow::Result<(Option<String>, usize)> {
        let mut cursor = cursor;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/sync/pull?limit={limit}&cursor={}", encode(c)),
                None => format!("/v1/sync/pull?limit={limit}"),
            };
            let v = self.get_json(&path).await.context("pulling")?;
            pages += 1;
            for c in v["changes"].as_array().into_iter().flatten() {
                each(c);
            }
            cursor = v["cursor"].as_str().map(str::to_owned);
            if v["has_more"] != Value::Bool(true) {
                return Ok((cursor, pages));
            }
            if pages > 1_000_000 {
                bail!("pull did not end after a million pages");
            }
        }
    }
}

/// Percent-encodes everything but the unreserved characters (a cursor is opaque).
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
