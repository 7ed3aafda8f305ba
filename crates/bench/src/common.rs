//! Helpers the benchmark binaries share: the database behind the server, the command line
//! as typed, PostgreSQL scratch databases, rounding.

use crate::procfs;
use anyhow::{ensure, Context};
use serde_json::Value;
use std::path::Path;

/// The database behind the server (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The command line as typed, quoted for a POSIX shell.
pub fn command_line() -> String {
    std::env::args()
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `url` with its database name replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").context("a postgres URL needs ://")? + 3;
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Creates the scratch database; returns the block device of PostgreSQL's data directory.
pub async fn pg_setup(admin_url: &str, name: &str) -> anyhow::Result<Option<(u64, u64)>> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .with_context(|| format!("creating database {name}"))?;
    let dir: Option<String> = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(&mut conn)
        .await
        .ok();
    conn.close().await?;
    Ok(dir.and_then(|d| procfs::device_of(Path::new(&d))))
}

pub async fn pg_drop(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    conn.close().await?;
    Ok(())
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The string at `path` in a JSON answer.
pub fn text(v: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {} in {v}", path.join(".")))
}

/// POSTs JSON and reads a JSON answer; any status but 2xx is an error with the body.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let r = http.post(url).json(body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    ensure!(status.is_success(), "POST {url}: HTTP {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}
