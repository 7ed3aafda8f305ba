//! PostgreSQL storage: for several server instances behind a load balancer. Mirrors
//! `sqlite.rs` step for step; what differs is how the feed is ordered. Sequence numbers are
//! handed out in one order and committed in another, so every feed row also records its
//! writing transaction's id, and a pull hands out only rows whose transaction is older than
//! every transaction still running (see `pull`). Writes announce the estates they touched
//! with `NOTIFY patrol_changes`, which `start_listener` forwards to this instance's hub.

#[path = "postgres_hazards.rs"]
mod hazards;
#[path = "postgres_patrol.rs"]
mod patrol;

use super::push_rules::{first_occurrences, mark_reused_seqs, plan_ack, settle_batch, Settled};
use super::*;
use shared_core::hazard::{HazardPolicy, Ticket, TicketSummary};
use shared_core::validate::storable_text;
use shared_core::wire::{ChangeOp, Timestamp};
use shared_core::{ClockTrust, FactId, FactKind, Flag, Hlc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::AbortHandle;

/// The `NOTIFY` channel; the payload is the id of an estate whose feed changed.
const CHANNEL: &str = "patrol_changes";

/// PostgreSQL accepts at most 65,535 bound parameters per statement.
const MAX_BINDS: usize = 65_535;
/// Bound parameters per row of the facts INSERT (feed_txid/feed_seq come from DEFAULTs).
const FACT_BINDS: usize = 18;
/// Bound parameters per row of the quarantine INSERT.
const QUARANTINE_BINDS: usize = 9;
/// Rows per multi-row INSERT.
const INSERT_CHUNK: usize = 1000;
const _: () = assert!(INSERT_CHUNK * FACT_BINDS < MAX_BINDS);
const _: () = assert!(INSERT_CHUNK * QUARANTINE_BINDS < MAX_BINDS);

/// A batch that lost a deadlock (two devices re-sending the same fact ids in opposite
/// orders) is rolled back whole by PostgreSQL and simply tried again.
const PUSH_ATTEMPTS: usize = 4;

pub struct PgStore {
    pool: PgPool,
    /// `LISTEN` tasks started by `start_listener`, stopped when the store is dropped.
    listeners: Mutex<Vec<AbortHandle>>,
}

/// Opens a PostgreSQL store (`postgres://…`). Does not migrate: call `Store::migrate`.
pub async fn connect(url: &str) -> anyhow::Result<DynStore> {
    Ok(Arc::new(PgStore::connect(url).await?))
}

impl PgStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut opts = PgConnectOptions::from_str(url)?;
        if opts.get_application_name().is_none() {
            opts = opts.application_name("patrol-sync");
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Self {
            pool,
            listeners: Mutex::new(Vec::new()),
        })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction. Spelled out rather than left to `default_transaction_isolation`:
    /// the push relies on READ COMMITTED (a statement that waited on a lock sees what the
    /// holder committed).
    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?)
    }

    async fn apply_push_once(&self, mut b: PreparedBatch) -> StoreResult<PushOutcome> {
        let mut tx = self.begin().await?;
        let dev = b.device_id.0;

        // Claim the batch id. A concurrent push of the same batch waits here on the unique
        // index until the first commits, then claims nothing and returns the first answer.
        let claimed = sqlx::query(
            "INSERT INTO push_batches (device_id, batch_id, user_id, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(dev)
        .bind(b.batch_id.0)
        .bind(b.user_id.0)
        .bind(b.received_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            // A fresh statement outside the transaction: it sees the first push's commit.
            let stored: Option<Option<String>> = sqlx::query_scalar(
                "SELECT response FROM push_batches WHERE device_id = $1 AND batch_id = $2",
            )
            .bind(dev)
            .bind(b.batch_id.0)
            .fetch_optional(&self.pool)
            .await?;
            let stored = stored.flatten().ok_or_else(|| bad("push answer"))?;
            return Ok(PushOutcome::Replayed(
                serde_json::from_str(&stored).map_err(|_| bad("push answer"))?,
            ));
        }

        // Serialises the pushes of one device: the ack and held seqs below stay true until
        // this transaction ends.
        let acked: i64 =
            sqlx::query_scalar("SELECT acked_through_seq FROM devices WHERE id = $1 FOR UPDATE")
                .bind(dev)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
        let acked = acked as u64;

        // Seqs this device delivered earlier above its ack: normally none, only a gap in
        // what it sent leaves any (and then they are few, and go when the gap is filled).
        let stored_above: Vec<u64> = sqlx::query_scalar::<_, i64>(
            "SELECT seq FROM device_seqs WHERE device_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(dev)
        .bind(acked as i64)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|s| s as u64)
        .collect();
        let held: HashSet<u64> = stored_above.iter().copied().collect();
        mark_reused_seqs(&mut b.facts, acked, &held);

        // Insert first occurrences; what is already there is settled by content hash.
        // feed_txid and feed_seq come from the column defaults: this transaction's id and
        // the next feed sequence number.
        let firsts = first_occurrences(&b.facts);
        let first_set: HashSet<usize> = firsts.iter().copied().collect();
        let mut inserted: HashSet<FactId> = HashSet::new();
        for chunk in firsts.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO facts (id, kind, estate_id, device_id, user_id, batch_id, seq, hlc, hlc_sent,
                 recorded_at, age_ms, sent_at, received_at, trusted_at, clock_trust, flags, data, content_hash) ",
            );
            qb.push_values(chunk.iter(), |mut row, &i| {
                let f = &b.facts[i];
                let r = &f.record;
                row.push_bind(r.id.0)
                    .push_bind(r.kind.as_str())
                    .push_bind(r.estate_id.0)
                    .push_bind(r.device_id.0)
                    .push_bind(r.user_id.0)
                    .push_bind(r.batch_id.0)
                    .push_bind(r.seq as i64)
                    .push_bind(r.hlc.to_string())
                    .push_bind(r.hlc_sent.map(|h| h.to_string()))
                    .push_bind(r.recorded_at.0)
                    .push_bind(r.age_ms)
                    .push_bind(r.sent_at.0)
                    .push_bind(r.received_at.0)
                    .push_bind(r.trusted_at.0)
                    .push_bind(r.clock_trust.as_str())
                    .push_bind(Json(&r.flags))
                    .push_bind(&r.data)
                    .push_bind(&f.content_hash);
            });
            qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            for id in qb.build_query_scalar::<Uuid>().fetch_all(&mut *tx).await? {
                inserted.insert(FactId(id));
            }
        }

        let settle: Vec<Uuid> = (0..b.facts.len())
            .filter(|i| !inserted.contains(&b.facts[*i].record.id) || !first_set.contains(i))
            .map(|i| b.facts[i].record.id.0)
            .collect();
        let mut stored_hash: HashMap<FactId, String> = HashMap::new();
        if !settle.is_empty() {
            let rows = sqlx::query("SELECT id, content_hash FROM facts WHERE id = ANY($1)")
                .bind(&settle)
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                stored_hash.insert(FactId(r.try_get("id")?), r.try_get("content_hash")?);
            }
        }

        let Settled {
            mut statuses,
            conflicts,
            held_now,
            mut touched,
        } = settle_batch(&b, &inserted, &first_set, &stored_hash);

        // Hazard events and their photos: refold the tickets they touch, in this
        // transaction; an event the fold rejects at its place is answered `rejected`.
        let new: Vec<usize> = firsts
            .iter()
            .copied()
            .filter(|i| inserted.contains(&b.facts[*i].record.id))
            .collect();
        touched.extend(
            crate::storage::hazards::after_push(&mut hazards::Tx(&mut tx), &b, &new, &mut statuses)
                .await?,
        );
        touched.sort();
        touched.dedup();

        // Scans and run events: recorded beside their facts for coverage (after the
        // hazards, so the estate locks this may take on PostgreSQL are held only briefly).
        crate::storage::patrol::after_push(&mut patrol::Tx(&mut tx), &b, &new).await?;

        // Quarantine every refused change, with the raw JSON and the reason.
        let quarantined: Vec<&PreparedRejection> =
            b.rejections.iter().chain(conflicts.iter()).collect();
        for chunk in quarantined.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO quarantine (received_at, device_id, user_id, batch_id, idx, change_id, code, message, raw) ",
            );
            qb.push_values(chunk.iter(), |mut row, r| {
                row.push_bind(b.received_at)
                    .push_bind(dev)
                    .push_bind(b.user_id.0)
                    .push_bind(b.batch_id.0)
                    .push_bind(r.index as i32)
                    .push_bind(r.change_id.as_deref().map(storable_text))
                    .push_bind(r.code.as_str())
                    .push_bind(storable_text(&r.message))
                    .push_bind(r.raw.to_string());
            });
            qb.build().execute(&mut *tx).await?;
        }

        // The acknowledged prefix: every seq up to it is held, as a fact or in quarantine.
        let plan = plan_ack(acked, &held_now, &stored_above);
        if !plan.remember.is_empty() {
            let remember: Vec<i64> = plan.remember.iter().map(|s| *s as i64).collect();
            sqlx::query(
                "INSERT INTO device_seqs (device_id, seq) SELECT $1, s FROM UNNEST($2::bigint[]) AS s
                 ON CONFLICT DO NOTHING",
            )
            .bind(dev)
            .bind(&remember)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(through) = plan.forget_through {
            sqlx::query("DELETE FROM device_seqs WHERE device_id = $1 AND seq <= $2")
                .bind(dev)
                .bind(through as i64)
                .execute(&mut *tx)
                .await?;
        }
        let new_ack = plan.new_ack;
        let max_seq = held_now.iter().copied().max().unwrap_or(0);
        sqlx::query(
            "UPDATE devices SET acked_through_seq = $1, max_seq = GREATEST(max_seq, $2), last_seen_at = $3,
                    last_clock_offset_ms = $4, last_user_id = $5 WHERE id = $6",
        )
        .bind(new_ack as i64)
        .bind(max_seq as i64)
        .bind(b.received_at)
        .bind(b.clock_offset_ms)
        .bind(b.user_id.0)
        .bind(dev)
        .execute(&mut *tx)
        .await?;

        let response = build_push_response(&b, &statuses, new_ack);
        sqlx::query("UPDATE push_batches SET response = $1 WHERE device_id = $2 AND batch_id = $3")
            .bind(serde_json::to_string(&response).map_err(anyhow::Error::from)?)
            .bind(dev)
            .bind(b.batch_id.0)
            .execute(&mut *tx)
            .await?;
        // Delivered on commit, to every instance listening (this one included).
        notify_estates(&mut tx, &touched).await?;
        tx.commit().await?;
        Ok(PushOutcome::Stored { response, touched })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(mut handles) = self.listeners.lock() {
            for h in handles.drain(..) {
                h.abort();
            }
        }
    }
}

const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.platform, d.app_version, d.last_user_id, d.first_seen_at, d.last_seen_at,
     d.acked_through_seq, d.max_seq, d.last_clock_offset_ms, d.revoked_at,
     (SELECT COUNT(*) FROM device_seqs s WHERE s.device_id = d.id) AS held_above_ack";

fn device_from_row(r: &PgRow) -> StoreResult<DeviceRow> {
    Ok(DeviceRow {
        id: DeviceId(r.try_get("id")?),
        name: r.try_get("name")?,
        platform: r.try_get("platform")?,
        app_version: r.try_get("app_version")?,
        last_user_id: r.try_get::<Option<Uuid>, _>("last_user_id")?.map(UserId),
        first_seen_at: r.try_get("first_seen_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        acked_through_seq: r.try_get::<i64, _>("acked_through_seq")? as u64,
        max_seq: r.try_get::<i64, _>("max_seq")? as u64,
        held_above_ack: r.try_get::<i64, _>("held_above_ack")? as u64,
        last_clock_offset_ms: r.try_get("last_clock_offset_ms")?,
        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

fn bad(what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("unreadable {what} in database"))
}

/// Deadlocks and serialisation failures roll the whole transaction back; it can be retried.
fn is_retryable(e: &StoreError) -> bool {
    let StoreError::Other(e) = e else {
        return false;
    };
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

/// `NOTIFY patrol_changes, '<estate id>'` for each estate, delivered when `tx` commits.
async fn notify_estates(
    tx: &mut Transaction<'_, Postgres>,
    estates: &[EstateId],
) -> StoreResult<()> {
    if estates.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, e::text) FROM UNNEST($2::uuid[]) AS e")
        .bind(CHANNEL)
        .bind(uuids(estates))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn uuids(ids: &[EstateId]) -> Vec<Uuid> {
    ids.iter().map(|e| e.0).collect()
}

/// The pull's estate condition on the array parameter `$n`: `estate_id = ($n)[1]` when it
/// holds one estate, `estate_id = ANY($n)` otherwise. PostgreSQL 15 walks the
/// `(estate_id, feed_txid, feed_seq)` indexes in order, stopping after the page, only for
/// `=`; with `= ANY` it reads every row of the estate past the cursor and sorts them (a
/// new device's first page of 1M facts: a parallel seq scan and top-N sort, 225 ms at
/// 250k facts, against 1.3 ms).
fn estate_is(n: u8, estates: usize) -> String {
    if estates == 1 {
        format!("estate_id = (${n}::uuid[])[1]")
    } else {
        format!("estate_id = ANY(${n})")
    }
}

/// A page of every fact of the estates `$1` past `($2, $3)`, below the horizon `$4`.
fn facts_of_estates_sql(estates: usize) -> String {
    format!(
        "SELECT {FACT_COLUMNS} FROM facts
         WHERE {} AND (feed_txid, feed_seq) > ($2, $3) AND feed_txid < $4
         ORDER BY feed_txid, feed_seq LIMIT $5",
        estate_is(1, estates)
    )
}

fn estate_from_row(r: &PgRow) -> StoreResult<EstateRecord> {
    Ok(EstateRecord {
        id: EstateId(r.try_get("id")?),
        name: r.try_get("name")?,
        timezone: r.try_get("timezone")?,
    })
}

fn user_from_row(r: &PgRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: UserId(r.try_get("id")?),
        username: r.try_get("username")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}

const FACT_COLUMNS: &str = "id, kind, estate_id, device_id, user_id, batch_id, seq, hlc, hlc_sent, recorded_at, age_ms, sent_at, received_at, trusted_at, clock_trust, flags, data, feed_txid, feed_seq";

fn fact_from_row(r: &PgRow) -> StoreResult<FactRecord> {
    let hlc_sent: Option<String> = r.try_get("hlc_sent")?;
    Ok(FactRecord {
        id: FactId(r.try_get("id")?),
        kind: FactKind::from_str(r.try_get::<&str, _>("kind")?).map_err(|_| bad("kind"))?,
        estate_id: EstateId(r.try_get("estate_id")?),
        device_id: DeviceId(r.try_get("device_id")?),
        user_id: UserId(r.try_get("user_id")?),
        batch_id: BatchId(r.try_get("batch_id")?),
        seq: r.try_get::<i64, _>("seq")? as u64,
        hlc: Hlc::from_str(r.try_get::<&str, _>("hlc")?).map_err(|_| bad("hlc"))?,
        hlc_sent: hlc_sent
            .map(|h| Hlc::from_str(&h))
            .transpose()
            .map_err(|_| bad("hlc"))?,
        recorded_at: Timestamp(r.try_get("recorded_at")?),
        age_ms: r.try_get("age_ms")?,
        sent_at: Timestamp(r.try_get("sent_at")?),
        received_at: Timestamp(r.try_get("received_at")?),
        trusted_at: Timestamp(r.try_get("trusted_at")?),
        clock_trust: ClockTrust::from_str(r.try_get::<&str, _>("clock_trust")?)
            .map_err(|_| bad("clock_trust"))?,
        flags: serde_json::from_value::<Vec<Flag>>(r.try_get("flags")?)
            .map_err(|_| bad("flags"))?,
        data: r.try_get("data")?,
    })
}

fn pos_from_row(r: &PgRow) -> StoreResult<FeedPos> {
    Ok(FeedPos {
        txid: r.try_get("feed_txid")?,
        seq: r.try_get("feed_seq")?,
    })
}

fn fact_item(r: &PgRow) -> StoreResult<FeedItem> {
    let rec = fact_from_row(r)?;
    Ok(FeedItem {
        pos: pos_from_row(r)?,
        change: PullChange {
            collection: "facts".into(),
            op: ChangeOp::Put,
            id: rec.id.to_string(),
            data: Some(serde_json::to_value(&rec).map_err(anyhow::Error::from)?),
        },
    })
}

fn ref_item(r: &PgRow) -> StoreResult<FeedItem> {
    let op = match r.try_get::<&str, _>("op")? {
        "delete" => ChangeOp::Delete,
        _ => ChangeOp::Put,
    };
    Ok(FeedItem {
        pos: pos_from_row(r)?,
        change: PullChange {
            collection: r.try_get("collection")?,
            op,
            id: r.try_get::<Uuid, _>("entity_id")?.to_string(),
            data: r.try_get("data")?,
        },
    })
}

/// Listens on `patrol_changes` over its own connection (not one of the pool's).
async fn open_listener(opts: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Opens a new listener, retrying with backoff until it succeeds.
async fn reopen_listener(opts: &PgConnectOptions) -> PgListener {
    let mut delay = Duration::from_millis(250);
    loop {
        match open_listener(opts).await {
            Ok(l) => {
                tracing::info!(channel = CHANNEL, "change listener reconnected");
                return l;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "change listener cannot reconnect");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn forward_notifications(opts: PgConnectOptions, mut listener: PgListener, hub: ChangeHub) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match n.payload().parse::<EstateId>() {
                Ok(estate) => hub.notify(&[estate]),
                Err(_) => {
                    tracing::warn!(
                        payload = n.payload(),
                        "unreadable change notification; waking every estate"
                    );
                    hub.notify_all();
                }
            },
            Ok(None) => {
                // The listener reconnected by itself; whatever was sent meanwhile is lost.
                tracing::warn!(
                    "change listener lost its connection and reconnected; waking every estate"
                );
                hub.notify_all();
            }
            Err(e) => {
                tracing::warn!(error = %e, "change listener failed; reconnecting");
                drop(listener);
                listener = reopen_listener(&opts).await;
                hub.notify_all();
            }
        }
    }
}

const PHOTO_COLUMNS: &str =
    "id, estate_id, device_id, user_id, sha256, bytes, mime, subject_kind, subject_id, role, received_at";

fn photo_from_row(r: &PgRow) -> StoreResult<PhotoRecord> {
    Ok(PhotoRecord {
        id: FactId(r.try_get("id")?),
        estate_id: EstateId(r.try_get("estate_id")?),
        device_id: DeviceId(r.try_get("device_id")?),
        user_id: UserId(r.try_get("user_id")?),
        sha256: r.try_get("sha256")?,
        bytes: r.try_get::<Option<i64>, _>("bytes")?.map(|n| n as u64),
        mime: r.try_get("mime")?,
        subject_kind: r.try_get("subject_kind")?,
        subject_id: r.try_get("subject_id")?,
        role: r.try_get("role")?,
        received_at: r.try_get("received_at")?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_estate(
        &self,
        name: &str,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord> {
        let estate = EstateRecord {
            id: EstateId::new_v7(),
            name: name.to_owned(),
            timezone: timezone.to_owned(),
        };
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO estates (id, name, timezone, created_at) VALUES ($1, $2, $3, $4)")
            .bind(estate.id.0)
            .bind(name)
            .bind(timezone)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at)
             VALUES ('estates', $1, $1, 'put', $2, $3)",
        )
        .bind(estate.id.0)
        .bind(Json(&estate))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        notify_estates(&mut tx, &[estate.id]).await?;
        tx.commit().await?;
        Ok(estate)
    }

    async fn retire_estate(&self, id: EstateId, now: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE estates SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        // The tombstone moves the entity to this transaction's place in the feed.
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at)
             VALUES ('estates', $1, $1, 'delete', NULL, $2)
             ON CONFLICT (collection, entity_id) DO UPDATE SET
               op = 'delete', data = NULL, changed_at = EXCLUDED.changed_at,
               feed_txid = pg_current_xact_id()::text::bigint, feed_seq = nextval('feed_seq')",
        )
        .bind(id.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        notify_estates(&mut tx, &[id]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_estates(&self) -> StoreResult<Vec<EstateRecord>> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        let rows = sqlx::query(
            "SELECT id, name, timezone FROM estates WHERE retired_at IS NULL
             ORDER BY name COLLATE \"C\", id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(estate_from_row).collect()
    }

    async fn create_user(&self, user: NewUser, now: i64) -> StoreResult<UserId> {
        let id = UserId::new_v7();
        sqlx::query(
            "INSERT INTO users (id, username, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.0)
        .bind(&user.username)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, name, password_hash, disabled_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, name, password_hash, disabled_at FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn add_membership(&self, user: UserId, estate: EstateId, role: Role) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO memberships (user_id, estate_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(user.0)
        .bind(estate.0)
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db)
                if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
            {
                StoreError::NotFound
            }
            e => e.into(),
        })?;
        Ok(())
    }

    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT e.id, e.name, e.timezone, e.retired_at, m.role FROM memberships m
             JOIN estates e ON e.id = m.estate_id WHERE m.user_id = $1
             ORDER BY e.name COLLATE \"C\", e.id, m.role COLLATE \"C\"",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    estate: estate_from_row(r)?,
                    role: Role::from_str(r.try_get::<&str, _>("role")?).map_err(|_| bad("role"))?,
                    retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
                })
            })
            .collect()
    }

    async fn list_members(&self, estate: EstateId) -> StoreResult<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.name, m.role FROM memberships m
             JOIN users u ON u.id = m.user_id
             WHERE m.estate_id = $1 AND u.disabled_at IS NULL
             ORDER BY u.name, u.username, m.role",
        )
        .bind(estate.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: UserId(r.try_get("id")?),
                    username: r.try_get("username")?,
                    name: r.try_get("name")?,
                    role: Role::from_str(r.try_get::<&str, _>("role")?).map_err(|_| bad("role"))?,
                })
            })
            .collect()
    }

    async fn upsert_device(&self, d: DeviceUpsert) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices (id, name, platform, app_version, last_user_id, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (id) DO UPDATE SET
               name = COALESCE(EXCLUDED.name, devices.name),
               platform = COALESCE(EXCLUDED.platform, devices.platform),
               app_version = COALESCE(EXCLUDED.app_version, devices.app_version),
               last_user_id = EXCLUDED.last_user_id,
               last_seen_at = EXCLUDED.last_seen_at",
        )
        .bind(d.id.0)
        .bind(&d.name)
        .bind(&d.platform)
        .bind(&d.app_version)
        .bind(d.user_id.0)
        .bind(d.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_device(&self, id: DeviceId) -> StoreResult<Option<DeviceRow>> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn list_devices(&self, estate: EstateId) -> StoreResult<Vec<DeviceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d
             WHERE d.last_user_id IN (SELECT user_id FROM memberships WHERE estate_id = $1)
             ORDER BY d.last_seen_at DESC, d.id"
        ))
        .bind(estate.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn create_session(&self, s: NewSession) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(s.id.0)
        .bind(s.user_id.0)
        .bind(s.device_id.0)
        .bind(s.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&s.refresh_hash)
        .bind(s.id.0)
        .bind(s.now)
        .bind(s.refresh_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
    ) -> StoreResult<RotateOutcome> {
        let mut tx = self.begin().await?;
        // The token row is locked: of two concurrent rotations of one token, the second
        // waits, then sees it used (a replay) and revokes the session.
        let row = sqlx::query(
            "SELECT rt.session_id, rt.expires_at, rt.used_at, s.user_id, s.device_id, s.revoked_at AS s_revoked,
                    d.revoked_at AS d_revoked, u.disabled_at
             FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
             WHERE rt.token_hash = $1
             FOR UPDATE OF rt",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(RotateOutcome::Invalid);
        };
        let session = SessionId(r.try_get("session_id")?);
        let dead = r.try_get::<Option<i64>, _>("s_revoked")?.is_some()
            || r.try_get::<Option<i64>, _>("d_revoked")?.is_some()
            || r.try_get::<Option<i64>, _>("disabled_at")?.is_some();
        if dead {
            return Ok(RotateOutcome::Invalid);
        }
        if r.try_get::<Option<i64>, _>("used_at")?.is_some() {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_token_reuse'
                 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(session.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Reused(session));
        }
        if r.try_get::<i64, _>("expires_at")? <= now {
            return Ok(RotateOutcome::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_hash)
        .bind(session.0)
        .bind(now)
        .bind(new_expires_at)
        .execute(&mut *tx)
        .await?;
        let out = ActiveSession {
            id: session,
            user_id: UserId(r.try_get("user_id")?),
            device_id: DeviceId(r.try_get("device_id")?),
        };
        tx.commit().await?;
        Ok(RotateOutcome::Rotated(out))
    }

    async fn active_session(&self, id: SessionId) -> StoreResult<Option<ActiveSession>> {
        let row = sqlx::query(
            "SELECT s.user_id, s.device_id FROM sessions s
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.revoked_at IS NULL AND d.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ActiveSession {
                id,
                user_id: UserId(r.try_get("user_id")?),
                device_id: DeviceId(r.try_get("device_id")?),
            })
        })
        .transpose()
    }

    async fn session_context(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(ActiveSession, Vec<Membership>)>> {
        let rows = sqlx::query(
            "SELECT s.user_id, s.device_id, e.id AS estate_id, e.name, e.timezone, e.retired_at, m.role
             FROM sessions s
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
             LEFT JOIN memberships m ON m.user_id = s.user_id
             LEFT JOIN estates e ON e.id = m.estate_id
             WHERE s.id = $1 AND s.revoked_at IS NULL AND d.revoked_at IS NULL AND u.disabled_at IS NULL
             ORDER BY e.name COLLATE \"C\", e.id, m.role COLLATE \"C\"",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let session = ActiveSession {
            id,
            user_id: UserId(first.try_get::<Uuid, _>("user_id")?),
            device_id: DeviceId(first.try_get::<Uuid, _>("device_id")?),
        };
        let mut memberships = Vec::with_capacity(rows.len());
        for r in &rows {
            // A user with no memberships still has a session: one row of NULLs.
            let Some(estate_id) = r.try_get::<Option<Uuid>, _>("estate_id")? else {
                continue;
            };
            memberships.push(Membership {
                estate: EstateRecord {
                    id: EstateId(estate_id),
                    name: r.try_get("name")?,
                    timezone: r.try_get("timezone")?,
                },
                role: Role::from_str(r.try_get::<&str, _>("role")?).map_err(|_| bad("role"))?,
                retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
            });
        }
        Ok(Some((session, memberships)))
    }

    async fn revoke_device(&self, id: DeviceId, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let found =
            sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = 'device_revoked' WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn revoke_session(&self, id: SessionId, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn push_answer(
        &self,
        device: DeviceId,
        batch: BatchId,
    ) -> StoreResult<Option<PushResponse>> {
        // A committed claim always carries its answer (both are written in one transaction).
        let stored: Option<Option<String>> = sqlx::query_scalar(
            "SELECT response FROM push_batches WHERE device_id = $1 AND batch_id = $2",
        )
        .bind(device.0)
        .bind(batch.0)
        .fetch_optional(&self.pool)
        .await?;
        stored
            .flatten()
            .map(|r| serde_json::from_str(&r).map_err(|_| bad("push answer")))
            .transpose()
    }

    async fn apply_push(&self, batch: PreparedBatch) -> StoreResult<PushOutcome> {
        let mut attempt = 1;
        loop {
            match self.apply_push_once(batch.clone()).await {
                Err(e) if attempt < PUSH_ATTEMPTS && is_retryable(&e) => {
                    tracing::info!(error = %e, attempt, batch_id = %batch.batch_id, "push rolled back; retrying");
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// Reads rows written by transactions older than every transaction still running, in
    /// (txid, seq) order. Any transaction that commits later has a txid at or above this
    /// snapshot's xmin, so nothing can ever appear behind a cursor handed out here.
    async fn pull(&self, scope: &FeedScope, after: FeedPos, limit: usize) -> StoreResult<FeedPage> {
        let take = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let all: Vec<Uuid> = scope
            .full
            .iter()
            .chain(scope.own.iter())
            .map(|e| e.0)
            .collect();
        let full = uuids(&scope.full);
        let own = uuids(&scope.own);
        let mut items: Vec<FeedItem> = Vec::new();

        // One snapshot for the horizon and all the reads.
        let mut tx = self
            .pool
            .begin_with("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let xmin: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                .fetch_one(&mut *tx)
                .await?;

        if !all.is_empty() {
            let rows = sqlx::query(&format!(
                "SELECT collection, entity_id, op, data, feed_txid, feed_seq FROM ref_changes
                 WHERE {} AND (feed_txid, feed_seq) > ($2, $3) AND feed_txid < $4
                 ORDER BY feed_txid, feed_seq LIMIT $5",
                estate_is(1, all.len())
            ))
            .bind(&all)
            .bind(after.txid)
            .bind(after.seq)
            .bind(xmin)
            .bind(take)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                items.push(ref_item(r)?);
            }
        }
        if !full.is_empty() {
            let rows = sqlx::query(&facts_of_estates_sql(full.len()))
                .bind(&full)
                .bind(after.txid)
                .bind(after.seq)
                .bind(xmin)
                .bind(take)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                items.push(fact_item(r)?);
            }
        }
        if !own.is_empty() {
            let rows = sqlx::query(&format!(
                "SELECT {FACT_COLUMNS} FROM facts
                 WHERE user_id = $1 AND {} AND (feed_txid, feed_seq) > ($3, $4)
                   AND feed_txid < $5
                 ORDER BY feed_txid, feed_seq LIMIT $6",
                estate_is(2, own.len())
            ))
            .bind(scope.user_id.0)
            .bind(&own)
            .bind(after.txid)
            .bind(after.seq)
            .bind(xmin)
            .bind(take)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                items.push(fact_item(r)?);
            }
        }
        items.extend(hazards::pull_hazards_and_alerts(&mut tx, scope, after, xmin, take).await?);
        items.sort_by_key(|i| i.pos);
        let visible_more = items.len() > limit;
        items.truncate(limit);

        // Rows past the cursor that committed while an older transaction is still open are
        // not handed out yet. They still count for `has_more` (the page is not the end of
        // the feed), and `held_back` tells the caller to look again shortly.
        let held_back = !visible_more
            && !all.is_empty()
            && sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM ref_changes WHERE estate_id = ANY($1)
                                  AND feed_txid >= $4 AND (feed_txid, feed_seq) > ($5, $6))
                     OR EXISTS (SELECT 1 FROM facts WHERE estate_id = ANY($2)
                                  AND feed_txid >= $4 AND (feed_txid, feed_seq) > ($5, $6))
                     OR EXISTS (SELECT 1 FROM facts WHERE user_id = $7 AND estate_id = ANY($3)
                                  AND feed_txid >= $4 AND (feed_txid, feed_seq) > ($5, $6))",
            )
            .bind(&all)
            .bind(&full)
            .bind(&own)
            .bind(xmin)
            .bind(after.txid)
            .bind(after.seq)
            .bind(scope.user_id.0)
            .fetch_one(&mut *tx)
            .await?;
        let held_back = held_back
            || (!visible_more && hazards::hazards_held_back(&mut tx, scope, after, xmin).await?);
        let has_more = visible_more || held_back;
        tx.rollback().await?;
        Ok(FeedPage {
            items,
            has_more,
            held_back,
        })
    }

    async fn feed_floor(&self) -> StoreResult<FeedPos> {
        let r = sqlx::query(
            "SELECT floor_txid AS feed_txid, floor_seq AS feed_seq FROM feed_meta WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        pos_from_row(&r)
    }

    async fn prune_tombstones(&self, before: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        // The floor is taken from the rows actually deleted, so a tombstone committed while
        // this runs cannot be removed without the floor passing it.
        let deleted = sqlx::query(
            "DELETE FROM ref_changes WHERE op = 'delete' AND changed_at < $1
             RETURNING feed_txid, feed_seq",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let mut top: Option<FeedPos> = None;
        for r in &deleted {
            let p = pos_from_row(r)?;
            top = top.max(Some(p));
        }
        let Some(top) = top else { return Ok(0) };
        sqlx::query(
            "UPDATE feed_meta SET floor_txid = $1, floor_seq = $2
             WHERE id = 1 AND (floor_txid, floor_seq) < ($1, $2)",
        )
        .bind(top.txid)
        .bind(top.seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted.len() as u64)
    }

    async fn get_fact(&self, id: FactId) -> StoreResult<Option<FactRecord>> {
        let row = sqlx::query(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(fact_from_row).transpose()
    }

    async fn count_facts(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM facts")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn list_quarantine(
        &self,
        estates: &[EstateId],
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineEntry>> {
        if estates.is_empty() {
            return Ok(vec![]);
        }
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT id, received_at, device_id, user_id, batch_id, idx, change_id, code, message, raw FROM quarantine
             WHERE user_id IN (SELECT user_id FROM memberships WHERE estate_id = ANY(",
        );
        qb.push_bind(uuids(estates)).push("))");
        if let Some(b) = before {
            qb.push(" AND id < ").push_bind(b);
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(QuarantineEntry {
                    id: r.try_get("id")?,
                    received_at: Timestamp(r.try_get("received_at")?),
                    device_id: DeviceId(r.try_get("device_id")?),
                    user_id: UserId(r.try_get("user_id")?),
                    batch_id: BatchId(r.try_get("batch_id")?),
                    index: r.try_get::<i32, _>("idx")? as usize,
                    change_id: r.try_get("change_id")?,
                    code: serde_json::from_value(Value::String(r.try_get("code")?))
                        .map_err(|_| bad("code"))?,
                    message: r.try_get("message")?,
                    raw: serde_json::from_str(r.try_get::<&str, _>("raw")?)
                        .map_err(|_| bad("raw"))?,
                })
            })
            .collect()
    }

    async fn hazard_policy(&self, estate: EstateId) -> StoreResult<HazardPolicy> {
        self.hz_policy(estate).await
    }
    async fn set_hazard_policy(
        &self,
        estate: EstateId,
        policy: &HazardPolicy,
        now: i64,
    ) -> StoreResult<()> {
        self.hz_set_policy(estate, policy, now).await
    }
    async fn post_hazard_event(&self, ev: OnlineEvent) -> StoreResult<OnlineOutcome> {
        self.hz_post(ev).await
    }
    async fn get_hazard(&self, id: HazardId) -> StoreResult<Option<Ticket>> {
        self.hz_get(id).await
    }
    async fn list_hazards(&self, q: &HazardQuery) -> StoreResult<Vec<Ticket>> {
        self.hz_list(q).await
    }
    async fn hazard_summaries(
        &self,
        estate: EstateId,
        from: Option<i64>,
        to: Option<i64>,
    ) -> StoreResult<Vec<TicketSummary>> {
        self.hz_summaries(estate, from, to).await
    }
    async fn held_hazard_events(
        &self,
        estate: EstateId,
        received_before: i64,
        limit: usize,
    ) -> StoreResult<Vec<HeldEvent>> {
        self.hz_held(estate, received_before, limit).await
    }
    async fn open_hazards(&self) -> StoreResult<Vec<Ticket>> {
        self.hz_open().await
    }
    async fn hazard_of_event(&self, event: FactId) -> StoreResult<Option<HazardId>> {
        let h: Option<Uuid> =
            sqlx::query_scalar("SELECT hazard_id FROM hazard_events WHERE id = $1")
                .bind(event.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(h.map(HazardId))
    }
    async fn photos_by_sha(&self, sha256: &str) -> StoreResult<Vec<PhotoRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PHOTO_COLUMNS} FROM photos WHERE sha256 = $1 ORDER BY received_at, id"
        ))
        .bind(sha256)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(photo_from_row).collect()
    }

    async fn photo_blob(&self, sha256: &str) -> StoreResult<Option<BlobRecord>> {
        let row =
            sqlx::query("SELECT sha256, bytes, mime, stored_at FROM photo_blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(BlobRecord {
                sha256: r.try_get("sha256")?,
                bytes: r.try_get::<i64, _>("bytes")? as u64,
                mime: r.try_get("mime")?,
                stored_at: r.try_get("stored_at")?,
            })
        })
        .transpose()
    }

    async fn record_photo_blob(&self, b: &BlobRecord) -> StoreResult<Option<Vec<EstateId>>> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO photo_blobs (sha256, bytes, mime, stored_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&b.sha256)
        .bind(b.bytes as i64)
        .bind(&b.mime)
        .bind(b.stored_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let touched =
            crate::storage::hazards::after_blob(&mut hazards::Tx(&mut tx), &b.sha256, b.stored_at)
                .await?;
        notify_estates(&mut tx, &touched).await?;
        tx.commit().await?;
        Ok(Some(touched))
    }

    async fn photos_missing(&self, q: &MissingQuery) -> StoreResult<Vec<PhotoRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PHOTO_COLUMNS} FROM photos p
             WHERE ($1::uuid IS NULL OR p.estate_id = $1) AND ($2::uuid IS NULL OR p.device_id = $2)
               AND NOT EXISTS (SELECT 1 FROM photo_blobs b WHERE b.sha256 = p.sha256)
             ORDER BY p.received_at, p.id"
        ))
        .bind(q.estate.map(|e| e.0))
        .bind(q.device.map(|d| d.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(photo_from_row).collect()
    }

    async fn photos_of_subjects(
        &self,
        estate: EstateId,
        kind: &str,
        ids: &[String],
    ) -> StoreResult<Vec<PhotoRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(&format!(
            "SELECT {PHOTO_COLUMNS} FROM photos p
             WHERE p.subject_kind = $1 AND p.subject_id = ANY($2) AND p.estate_id = $3
             ORDER BY p.subject_id, p.received_at, p.id"
        ))
        .bind(kind)
        .bind(ids)
        .bind(estate.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(photo_from_row).collect()
    }

    async fn has_role(&self, user: UserId, estate: EstateId, role: Role) -> StoreResult<bool> {
        self.hz_has_role(user, estate, role).await
    }
    async fn reference(&self, estate: EstateId) -> StoreResult<ReferenceSet> {
        self.pt_reference(estate).await
    }
    async fn apply_reference(
        &self,
        estate: EstateId,
        ops: Vec<RefOp>,
        now: i64,
    ) -> StoreResult<RefOutcome> {
        self.pt_apply_reference(estate, ops, now).await
    }
    async fn set_estate_timezone(
        &self,
        estate: EstateId,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord> {
        self.pt_set_timezone(estate, timezone, now).await
    }
    async fn scans_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<ScanObs>> {
        self.pt_scans_between(estate, from, to).await
    }
    async fn run_events_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<RunEventObs>> {
        self.pt_run_events_between(estate, from, to).await
    }
    async fn excuses_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Excuse>> {
        self.pt_excuses_between(estate, from, to).await
    }
    async fn put_excuse(&self, estate: EstateId, excuse: &Excuse) -> StoreResult<bool> {
        self.pt_put_excuse(estate, excuse).await
    }
    async fn patrol_estates(&self) -> StoreResult<Vec<EstateId>> {
        self.pt_patrol_estates().await
    }
    async fn raise_alerts(&self, alerts: &[NewAlert]) -> StoreResult<Vec<EstateId>> {
        self.al_raise(alerts).await
    }
    async fn list_alerts(&self, q: &AlertQuery) -> StoreResult<Vec<Alert>> {
        self.al_list(q).await
    }
    async fn get_alert(&self, id: AlertId) -> StoreResult<Option<Alert>> {
        self.al_get(id).await
    }
    async fn close_alert(
        &self,
        id: AlertId,
        by: UserId,
        comment: &str,
        now: i64,
    ) -> StoreResult<CloseAlert> {
        self.al_close(id, by, comment, now).await
    }

    async fn start_listener(&self, hub: ChangeHub) -> StoreResult<()> {
        let opts = (*self.pool.connect_options()).clone();
        // The first LISTEN happens before returning, so a failure shows at startup and no
        // notification sent after this call is missed.
        let listener = open_listener(&opts).await?;
        tracing::info!(
            channel = CHANNEL,
            "listening for changes from other instances"
        );
        let task = tokio::spawn(forward_notifications(opts, listener, hub));
        self.listeners
            .lock()
            .expect("listener lock")
            .push(task.abort_handle());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_database_conflicts_are_retried() {
        assert!(!is_retryable(&StoreError::NotFound));
        assert!(!is_retryable(&StoreError::Conflict("x".into())));
        assert!(!is_retryable(&StoreError::Other(anyhow::anyhow!("boom"))));
        assert!(!is_retryable(&StoreError::from(sqlx::Error::PoolTimedOut)));
    }

    /// A new device's first page of a big estate: with `estate_id = ANY($1)` PostgreSQL 15
    /// read every fact of the estate and sorted them (a parallel seq scan: the page cost
    /// grew with the facts after the cursor); with one estate the page must come straight
    /// off the `(estate_id, feed_txid, feed_seq)` index. Runs with `TEST_DATABASE_URL`.
    #[tokio::test]
    async fn a_one_estate_page_walks_the_feed_index_without_sorting() {
        use sqlx::Connection;
        let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var("REQUIRE_POSTGRES").is_err(),
                "REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not"
            );
            eprintln!("skipped: TEST_DATABASE_URL is not set");
            return;
        };
        let db = format!("patrol_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin.split('?').next().unwrap_or(&admin);
        let url = format!(
            "{}/{db}",
            &base[..base.rfind('/').expect("a database path")]
        );
        let plan = async {
            let store = PgStore::connect(&url).await.expect("connect store");
            store.migrate().await.expect("migrate");
            let estate = Uuid::now_v7();
            // 60,000 facts: 50,000 of the estate, 10,000 of another.
            sqlx::query(
                "INSERT INTO facts (id, kind, estate_id, device_id, user_id, batch_id, seq, hlc,
                   recorded_at, sent_at, received_at, trusted_at, clock_trust, flags, content_hash, data)
                 SELECT gen_random_uuid(), 'scan', CASE WHEN i % 6 = 0 THEN gen_random_uuid() ELSE $1 END,
                   $1, $1, $1, i, '0000000000001-0000', i, i, i, i, 'verified', '[]', md5(i::text),
                   '{\"tag\": \"04:00:00:01\", \"method\": \"nfc\"}'
                 FROM generate_series(1, 60000) AS i",
            )
            .bind(estate)
            .execute(&store.pool)
            .await
            .expect("insert facts");
            sqlx::query("ANALYZE facts")
                .execute(&store.pool)
                .await
                .expect("analyze");
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "EXPLAIN {}",
                facts_of_estates_sql(1)
            ))
            .bind(vec![estate])
            .bind(0i64)
            .bind(0i64)
            .bind(i64::MAX)
            .bind(1001i64)
            .fetch_all(&store.pool)
            .await
            .expect("explain");
            store.pool.close().await;
            rows.join("\n")
        }
        .await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop database");
        assert!(
            plan.contains("Index Scan using facts_feed_estate") && !plan.contains("Sort"),
            "the first page of one estate is not read in index order:\n{plan}"
        );
    }
}
