//! A signed-in handset or browser: its own device, tokens refreshed on a 401.

use crate::common::{post_json, text};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const PASSWORD: &str = "hazard-bench-password";

pub struct Session {
    pub device_id: Uuid,
    http: reqwest::Client,
    base: String,
    access: String,
    refresh: String,
    refreshed_at: Instant,
}

pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?)
}

/// A response as timed: from sending the request to the last byte of the body.
pub struct Timed {
    pub status: reqwest::StatusCode,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Session {
    /// Logs in on a new device.
    pub async fn login(
        http: &reqwest::Client,
        base: &str,
        username: &str,
        device_name: &str,
    ) -> anyhow::Result<Session> {
        let (s, _) = Self::login_with(
            http,
            base,
            username,
            PASSWORD,
            Uuid::now_v7(),
            device_name,
            "hazard-bench",
        )
        .await?;
        Ok(s)
    }

    /// Logs in with `password` on the device `device_id`; also returns the login answer
    /// (user, estates).
    pub async fn login_with(
        http: &reqwest::Client,
        base: &str,
        username: &str,
        password: &str,
        device_id: Uuid,
        device_name: &str,
        platform: &str,
    ) -> anyhow::Result<(Session, Value)> {
        let v = post_json(
            http,
            &format!("{base}/v1/auth/login"),
            &json!({
                "username": username,
                "password": password,
                "device": { "id": device_id, "name": device_name,
                            "platform": platform, "app_version": env!("CARGO_PKG_VERSION") },
            }),
        )
        .await
        .with_context(|| format!("logging in as {username}"))?;
        let s = Session {
            device_id,
            http: http.clone(),
            base: base.to_owned(),
            access: text(&v, &["access_token"])?,
            refresh: text(&v, &["refresh_token"])?,
            refreshed_at: Instant::now(),
        };
        Ok((s, v))
    }

    /// PUT `path` with a JSON body; any status but 2xx is an error with the body.
    #[allow(dead_code)] // coverage-bench puts reference data with it
    pub async fn put_json(&mut self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.keep_fresh().await?;
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.access)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "PUT {path}: HTTP {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn refresh_tokens(&mut self) -> anyhow::Result<()> {
        let v = post_json(
            &self.http,
            &format!("{}/v1/auth/refresh", self.base),
            &json!({ "refresh_token": self.refresh }),
        )
        .await
        .context("refreshing tokens")?;
        self.access = text(&v, &["access_token"])?;
        self.refresh = text(&v, &["refresh_token"])?;
        self.refreshed_at = Instant::now();
        Ok(())
    }

    /// Refreshes the tokens when they are older than 5 minutes (they live 15 by default),
    /// so no timed request meets an expired one.
    pub async fn keep_fresh(&mut self) -> anyhow::Result<()> {
        if self.refreshed_at.elapsed() > Duration::from_secs(300) {
            self.refresh_tokens().await?;
        }
        Ok(())
    }

    /// Pushes one batch; a 401 refreshes the tokens once and sends the same batch again.
    pub async fn push(&mut self, body: Vec<u8>) -> anyhow::Result<Value> {
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
                self.refresh_tokens().await?;
                continue;
            }
            let text = r.text().await?;
            ensure!(status.is_success(), "push: HTTP {status}: {text}");
            return Ok(serde_json::from_str(&text)?);
        }
    }

    /// GET `path` (with its query), timed; a 401 refreshes the tokens and asks again (that
    /// attempt is not the one timed).
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Timed> {
        let url = format!("{}{path}", self.base);
        let mut refreshed = false;
        loop {
            let t = Instant::now();
            let r = self
                .http
                .get(&url)
                .bearer_auth(&self.access)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = r.status();
            let body = r.bytes().await?.to_vec();
            let elapsed = t.elapsed();
            if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.refresh_tokens().await?;
                continue;
            }
            return Ok(Timed {
                status,
                body,
                elapsed,
            });
        }
    }
}
