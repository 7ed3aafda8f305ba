//! The raw baseline: the same number of rows of the same shape straight into `facts`, with
//! multi-row INSERTs of one batch per transaction: what the database itself can do, with
//! no HTTP, JSON, validation, dedup or ack bookkeeping around it.

use crate::facts::{now_ms, RawRow, RAW_FEED_SEQ_BASE};
use crate::ingest::shares;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct RawResult {
    pub wall: Duration,
    pub rows: u64,
    pub transactions: u64,
    pub writers: usize,
}

/// Whom the rows belong to: the estate and user of the ingest phase.
#[derive(Clone, Copy)]
pub struct Owner {
    pub estate_id: Uuid,
    pub user_id: Uuid,
}

/// The database opened as the server opens it.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// SQLite: WAL, synchronous=NORMAL, the server's pragmas, one writer connection (SQLite
    /// has one writer at a time). PostgreSQL: `writers` connections.
    pub async fn open(url: &str, writers: usize) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(writers as u32)
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }

    pub fn writers(&self, concurrency: usize) -> usize {
        match self {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => concurrency,
        }
    }

    pub async fn count_facts(&self) -> anyhow::Result<u64> {
        let n: i64 = match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM facts")
                    .fetch_one(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM facts")
                    .fetch_one(p)
                    .await?
            }
        };
        Ok(n as u64)
    }

    pub async fn close(self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Inserts `total` rows, `batch` per transaction, with `writers` writers side by side
    /// (each its own device and seq counter from 1).
    pub async fn insert(
        &self,
        owner: Owner,
        total: u64,
        batch: u64,
        writers: usize,
    ) -> anyhow::Result<RawResult> {
        let counts = shares(total, writers);
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (w, count) in counts.into_iter().enumerate() {
            let db = self.clone_handle();
            // Disjoint feed positions per writer (SQLite only; PostgreSQL uses its DEFAULTs).
            let feed_base = RAW_FEED_SEQ_BASE + (w as i64) * 1_000_000_000;
            set.spawn(async move { db.write(owner, count, batch, feed_base).await });
        }
        let mut transactions = 0;
        while let Some(r) = set.join_next().await {
            match r.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(t) => transactions += t,
                Err(e) => {
                    set.abort_all();
                    return Err(e);
                }
            }
        }
        Ok(RawResult {
            wall: start.elapsed(),
            rows: total,
            transactions,
            writers,
        })
    }

    fn clone_handle(&self) -> Db {
        match self {
            Db::Sqlite(p) => Db::Sqlite(p.clone()),
            Db::Postgres(p) => Db::Postgres(p.clone()),
        }
    }

    /// One writer: `count` rows as one device; returns the transactions committed.
    async fn write(
        &self,
        owner: Owner,
        count: u64,
        batch: u64,
        feed_base: i64,
    ) -> anyhow::Result<u64> {
        let device = Uuid::now_v7();
        let mut seq = 1;
        let mut txs = 0;
        while seq <= count {
            let n = batch.min(count - seq + 1);
            let batch_id = Uuid::now_v7();
            let now = now_ms();
            let rows: Vec<RawRow> = (seq..seq + n)
                .map(|s| RawRow::new(owner.estate_id, owner.user_id, device, batch_id, s, now))
                .collect();
            match self {
                Db::Sqlite(p) => insert_sqlite(p, &rows, feed_base + seq as i64).await?,
                Db::Postgres(p) => insert_pg(p, &rows).await?,
            }
            txs += 1;
            seq += n;
        }
        Ok(txs)
    }
}

const COLUMNS: &str = "id, kind, estate_id, device_id, user_id, batch_id, seq, hlc, hlc_sent, recorded_at, age_ms, sent_at, received_at, trusted_at, clock_trust, flags, data, content_hash";

async fn insert_sqlite(
    pool: &SqlitePool,
    rows: &[RawRow],
    first_feed_seq: i64,
) -> anyhow::Result<()> {
    // IMMEDIATE, as the server begins its writes.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!(
        "INSERT INTO facts ({COLUMNS}, feed_txid, feed_seq) "
    ));
    qb.push_values(rows.iter().enumerate(), |mut b, (i, r)| {
        b.push_bind(r.id.to_string())
            .push_bind("scan")
            .push_bind(r.estate_id.to_string())
            .push_bind(r.device_id.to_string())
            .push_bind(r.user_id.to_string())
            .push_bind(r.batch_id.to_string())
            .push_bind(r.seq)
            .push_bind(r.hlc.clone())
            .push_bind(None::<String>)
            .push_bind(r.recorded_at)
            .push_bind(r.age_ms)
            .push_bind(r.sent_at)
            .push_bind(r.received_at)
            .push_bind(r.trusted_at)
            .push_bind("verified")
            .push_bind("[]")
            .push_bind(r.data.to_string())
            .push_bind(r.content_hash.clone())
            .push_bind(0i64)
            .push_bind(first_feed_seq + i as i64);
    });
    qb.build().execute(&mut *tx).await?;
    // The scan's row in `scans` (what the server stores beside the fact since issue 3).
    let mut qb = QueryBuilder::<Sqlite>::new(format!("INSERT INTO scans ({SCAN_COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.id.to_string())
            .push_bind(r.estate_id.to_string())
            .push_bind(r.device_id.to_string())
            .push_bind(r.user_id.to_string())
            .push_bind(r.seq)
            .push_bind(r.trusted_at)
            .push_bind(true)
            .push_bind(false)
            .push_bind(tag_key(r))
            .push_bind(None::<String>)
            .push_bind(None::<String>)
            .push_bind(None::<f64>)
            .push_bind(None::<f64>)
            .push_bind(None::<f64>)
            .push_bind(false);
    });
    qb.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

const SCAN_COLUMNS: &str = "fact_id, estate_id, device_id, user_id, seq, trusted_at, verified, clock_skew, tag_key, checkpoint_id, run_id, lat, lng, accuracy_m, mock";

/// The scan's tag as the server keys it: `04:00:01:2C` → `0400012C`.
fn tag_key(r: &RawRow) -> String {
    r.data["tag"]
        .as_str()
        .unwrap_or_default()
        .replace(':', "")
        .to_ascii_uppercase()
}

async fn insert_pg(pool: &PgPool, rows: &[RawRow]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // feed_txid and feed_seq come from their DEFAULTs, as in the server.
    let mut qb = QueryBuilder::<Postgres>::new(format!("INSERT INTO facts ({COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.id)
            .push_bind("scan")
            .push_bind(r.estate_id)
            .push_bind(r.device_id)
            .push_bind(r.user_id)
            .push_bind(r.batch_id)
            .push_bind(r.seq)
            .push_bind(r.hlc.clone())
            .push_bind(None::<String>)
            .push_bind(r.recorded_at)
            .push_bind(r.age_ms)
            .push_bind(r.sent_at)
            .push_bind(r.received_at)
            .push_bind(r.trusted_at)
            .push_bind("verified")
            .push_bind(Json(Vec::<String>::new()))
            .push_bind(r.data.clone())
            .push_bind(r.content_hash.clone());
    });
    qb.build().execute(&mut *tx).await?;
    let mut qb = QueryBuilder::<Postgres>::new(format!("INSERT INTO scans ({SCAN_COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.id)
            .push_bind(r.estate_id)
            .push_bind(r.device_id)
            .push_bind(r.user_id)
            .push_bind(r.seq)
            .push_bind(r.trusted_at)
            .push_bind(true)
            .push_bind(false)
            .push_bind(tag_key(r))
            .push_bind(None::<Uuid>)
            .push_bind(None::<Uuid>)
            .push_bind(None::<f64>)
            .push_bind(None::<f64>)
            .push_bind(None::<f64>)
            .push_bind(false);
    });
    qb.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
