//! SQLite storage: the embedded default. WAL journal, one writer connection (SQLite allows
//! one writer at a time; queueing in the pool is fairer than busy-waiting), several readers.

#[path = "sqlite_hazards.rs"]
mod hazards;
#[path = "sqlite_patrol.rs"]
mod patrol;

use super::push_rules::{first_occurrences, mark_reused_seqs, plan_ack, settle_batch, Settled};
use super::*;
use shared_core::hazard::{HazardPolicy, Ticket, TicketSummary};
use shared_core::wire::{ChangeOp, Timestamp};
use shared_core::{ClockTrust, FactId, FactKind, Flag, Hlc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound parameters.
const INSERT_CHUNK: usize = 500;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self { writer, reader })
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        // IMMEDIATE takes the write lock at once instead of failing on upgrade later.
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn id_str(u: impl ToString) -> String {
    u.to_string()
}

fn parse_uuid(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("bad uuid {s:?} in database: {e}")))
}

fn bad(what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("unreadable {what} in database"))
}

/// Hands out `n` feed positions, in commit order because SQLite has one writer.
async fn next_feed_seqs(tx: &mut Transaction<'_, Sqlite>, n: usize) -> StoreResult<i64> {
    let last: i64 =
        sqlx::query_scalar("UPDATE feed_counter SET last = last + ? WHERE id = 1 RETURNING last")
            .bind(n as i64)
            .fetch_one(&mut **tx)
            .await?;
    Ok(last - n as i64 + 1)
}

fn estate_from_row(r: &SqliteRow) -> StoreResult<EstateRecord> {
    Ok(EstateRecord {
        id: EstateId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        name: r.try_get("name")?,
        timezone: r.try_get("timezone")?,
    })
}

fn user_from_row(r: &SqliteRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: UserId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        username: r.try_get("username")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}

const FACT_COLUMNS: &str = "id, kind, estate_id, device_id, user_id, batch_id, seq, hlc, hlc_sent, recorded_at, age_ms, sent_at, received_at, trusted_at, clock_trust, flags, data, feed_txid, feed_seq";

fn fact_from_row(r: &SqliteRow) -> StoreResult<FactRecord> {
    let hlc_sent: Option<String> = r.try_get("hlc_sent")?;
    Ok(FactRecord {
        id: FactId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        kind: FactKind::from_str(r.try_get::<&str, _>("kind")?).map_err(|_| bad("kind"))?,
        estate_id: EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?),
        device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
        user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
        batch_id: BatchId(parse_uuid(r.try_get::<&str, _>("batch_id")?)?),
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
        flags: serde_json::from_str::<Vec<Flag>>(r.try_get::<&str, _>("flags")?)
            .map_err(|_| bad("flags"))?,
        data: serde_json::from_str(r.try_get::<&str, _>("data")?).map_err(|_| bad("data"))?,
    })
}

const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.platform, d.app_version, d.last_user_id, d.first_seen_at, d.last_seen_at,
     d.acked_through_seq, d.max_seq, d.last_clock_offset_ms, d.revoked_at,
     (SELECT COUNT(*) FROM device_seqs s WHERE s.device_id = d.id) AS held_above_ack";

fn device_from_row(r: &SqliteRow) -> StoreResult<DeviceRow> {
    let last_user: Option<String> = r.try_get("last_user_id")?;
    Ok(DeviceRow {
        id: DeviceId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        name: r.try_get("name")?,
        platform: r.try_get("platform")?,
        app_version: r.try_get("app_version")?,
        last_user_id: last_user.map(|u| parse_uuid(&u).map(UserId)).transpose()?,
        first_seen_at: r.try_get("first_seen_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        acked_through_seq: r.try_get::<i64, _>("acked_through_seq")? as u64,
        max_seq: r.try_get::<i64, _>("max_seq")? as u64,
        held_above_ack: r.try_get::<i64, _>("held_above_ack")? as u64,
        last_clock_offset_ms: r.try_get("last_clock_offset_ms")?,
        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

fn pos_from_row(r: &SqliteRow) -> StoreResult<FeedPos> {
    Ok(FeedPos {
        txid: r.try_get("feed_txid")?,
        seq: r.try_get("feed_seq")?,
    })
}

fn push_in_list(qb: &mut QueryBuilder<'_, Sqlite>, ids: &[EstateId]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(id_str(id));
    }
    qb.push(")");
}

const PHOTO_COLUMNS: &str =
    "id, estate_id, device_id, user_id, sha256, bytes, mime, subject_kind, subject_id, role, received_at";

fn photo_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<PhotoRecord> {
    Ok(PhotoRecord {
        id: FactId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        estate_id: EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?),
        device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
        user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
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
        sqlx::query("INSERT INTO estates (id, name, timezone, created_at) VALUES (?, ?, ?, ?)")
            .bind(id_str(estate.id))
            .bind(name)
            .bind(timezone)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let seq = next_feed_seqs(&mut tx, 1).await?;
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at, feed_txid, feed_seq)
             VALUES ('estates', ?, ?, 'put', ?, ?, 0, ?)",
        )
        .bind(id_str(estate.id))
        .bind(id_str(estate.id))
        .bind(serde_json::to_string(&estate).map_err(anyhow::Error::from)?)
        .bind(now)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(estate)
    }

    async fn retire_estate(&self, id: EstateId, now: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE estates SET retired_at = ? WHERE id = ? AND retired_at IS NULL")
                .bind(now)
                .bind(id_str(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let seq = next_feed_seqs(&mut tx, 1).await?;
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at, feed_txid, feed_seq)
             VALUES ('estates', ?, ?, 'delete', NULL, ?, 0, ?)
             ON CONFLICT (collection, entity_id) DO UPDATE SET
               op = 'delete', data = NULL, changed_at = excluded.changed_at,
               feed_txid = excluded.feed_txid, feed_seq = excluded.feed_seq",
        )
        .bind(id_str(id))
        .bind(id_str(id))
        .bind(now)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_estates(&self) -> StoreResult<Vec<EstateRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, timezone FROM estates WHERE retired_at IS NULL ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(estate_from_row).collect()
    }

    async fn create_user(&self, user: NewUser, now: i64) -> StoreResult<UserId> {
        let id = UserId::new_v7();
        sqlx::query("INSERT INTO users (id, username, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id_str(id))
            .bind(&user.username)
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(id)
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, name, password_hash, disabled_at FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, name, password_hash, disabled_at FROM users WHERE id = ?",
        )
        .bind(id_str(id))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn add_membership(&self, user: UserId, estate: EstateId, role: Role) -> StoreResult<()> {
        sqlx::query("INSERT INTO memberships (user_id, estate_id, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(id_str(user))
            .bind(id_str(estate))
            .bind(role.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                e => e.into(),
            })?;
        Ok(())
    }

    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT e.id, e.name, e.timezone, e.retired_at, m.role FROM memberships m
             JOIN estates e ON e.id = m.estate_id WHERE m.user_id = ? ORDER BY e.name, e.id, m.role",
        )
        .bind(id_str(user))
        .fetch_all(&self.reader)
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
             WHERE m.estate_id = ? AND u.disabled_at IS NULL
             ORDER BY u.name, u.username, m.role",
        )
        .bind(id_str(estate))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: UserId(parse_uuid(r.try_get::<&str, _>("id")?)?),
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
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
               name = COALESCE(excluded.name, devices.name),
               platform = COALESCE(excluded.platform, devices.platform),
               app_version = COALESCE(excluded.app_version, devices.app_version),
               last_user_id = excluded.last_user_id,
               last_seen_at = excluded.last_seen_at",
        )
        .bind(id_str(d.id))
        .bind(&d.name)
        .bind(&d.platform)
        .bind(&d.app_version)
        .bind(id_str(d.user_id))
        .bind(d.now)
        .bind(d.now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_device(&self, id: DeviceId) -> StoreResult<Option<DeviceRow>> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ?"
        ))
        .bind(id_str(id))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn list_devices(&self, estate: EstateId) -> StoreResult<Vec<DeviceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d
             WHERE d.last_user_id IN (SELECT user_id FROM memberships WHERE estate_id = ?)
             ORDER BY d.last_seen_at DESC, d.id"
        ))
        .bind(id_str(estate))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn create_session(&self, s: NewSession) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device_id, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id_str(s.id.0))
        .bind(id_str(s.user_id))
        .bind(id_str(s.device_id))
        .bind(s.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(&s.refresh_hash)
            .bind(id_str(s.id.0))
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
        let row = sqlx::query(
            "SELECT rt.session_id, rt.expires_at, rt.used_at, s.user_id, s.device_id, s.revoked_at AS s_revoked,
                    d.revoked_at AS d_revoked, u.disabled_at
             FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
             WHERE rt.token_hash = ?",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(RotateOutcome::Invalid);
        };
        let session = SessionId(parse_uuid(r.try_get::<&str, _>("session_id")?)?);
        let dead = r.try_get::<Option<i64>, _>("s_revoked")?.is_some()
            || r.try_get::<Option<i64>, _>("d_revoked")?.is_some()
            || r.try_get::<Option<i64>, _>("disabled_at")?.is_some();
        if dead {
            return Ok(RotateOutcome::Invalid);
        }
        if r.try_get::<Option<i64>, _>("used_at")?.is_some() {
            sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = 'refresh_token_reuse' WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id_str(session.0))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Reused(session));
        }
        if r.try_get::<i64, _>("expires_at")? <= now {
            return Ok(RotateOutcome::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?")
            .bind(now)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(new_hash)
            .bind(id_str(session.0))
            .bind(now)
            .bind(new_expires_at)
            .execute(&mut *tx)
            .await?;
        let out = ActiveSession {
            id: session,
            user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
            device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
        };
        tx.commit().await?;
        Ok(RotateOutcome::Rotated(out))
    }

    async fn active_session(&self, id: SessionId) -> StoreResult<Option<ActiveSession>> {
        let row = sqlx::query(
            "SELECT s.user_id, s.device_id FROM sessions s
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
             WHERE s.id = ? AND s.revoked_at IS NULL AND d.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(id_str(id.0))
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(ActiveSession {
                id,
                user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
                device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
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
             WHERE s.id = ? AND s.revoked_at IS NULL AND d.revoked_at IS NULL AND u.disabled_at IS NULL
             ORDER BY e.name, e.id, m.role",
        )
        .bind(id_str(id.0))
        .fetch_all(&self.reader)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let session = ActiveSession {
            id,
            user_id: UserId(parse_uuid(first.try_get::<&str, _>("user_id")?)?),
            device_id: DeviceId(parse_uuid(first.try_get::<&str, _>("device_id")?)?),
        };
        let mut memberships = Vec::with_capacity(rows.len());
        for r in &rows {
            // A user with no memberships still has a session: one row of NULLs.
            let Some(estate_id) = r
                .try_get::<Option<String>, _>("estate_id")?
                .map(|e| parse_uuid(&e))
                .transpose()?
            else {
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
            sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(now)
                .bind(id_str(id))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = 'device_revoked' WHERE device_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id_str(id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn revoke_session(&self, id: SessionId, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(id_str(id.0))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn push_answer(
        &self,
        device: DeviceId,
        batch: BatchId,
    ) -> StoreResult<Option<PushResponse>> {
        let stored: Option<Option<String>> = sqlx::query_scalar(
            "SELECT response FROM push_batches WHERE device_id = ?1 AND batch_id = ?2",
        )
        .bind(id_str(device))
        .bind(id_str(batch))
        .fetch_optional(&self.reader)
        .await?;
        stored
            .flatten()
            .map(|r| serde_json::from_str(&r).map_err(|_| bad("push answer")))
            .transpose()
    }

    async fn apply_push(&self, mut b: PreparedBatch) -> StoreResult<PushOutcome> {
        let mut tx = self.begin().await?;
        let dev = id_str(b.device_id);

        // One read for what the push needs to start. BEGIN IMMEDIATE already holds the one
        // write lock, so nothing can claim this batch id or move this device between this
        // read and the commit; the batch row is written once, with its answer, at the end.
        // (Each statement is a hop to SQLite's thread while holding that lock: fewer is
        // faster for every handset.)
        let start = sqlx::query(
            "SELECT (SELECT response FROM push_batches WHERE device_id = ?1 AND batch_id = ?2) AS response,
                    (SELECT acked_through_seq FROM devices WHERE id = ?1) AS acked,
                    (SELECT json_group_array(seq) FROM
                        (SELECT s.seq FROM device_seqs s JOIN devices d ON d.id = s.device_id
                         WHERE s.device_id = ?1 AND s.seq > d.acked_through_seq ORDER BY s.seq)) AS above",
        )
        .bind(&dev)
        .bind(id_str(b.batch_id))
        .fetch_one(&mut *tx)
        .await?;
        if let Some(stored) = start.try_get::<Option<String>, _>("response")? {
            tx.rollback().await?;
            return Ok(PushOutcome::Replayed(
                serde_json::from_str(&stored).map_err(|_| bad("push answer"))?,
            ));
        }
        let acked = start
            .try_get::<Option<i64>, _>("acked")?
            .ok_or(StoreError::NotFound)? as u64;
        // Seqs this device delivered earlier above its ack: normally none, only a gap in
        // what it sent leaves any (and then they are few, and go when the gap is filled).
        let stored_above: Vec<u64> = serde_json::from_str(start.try_get::<&str, _>("above")?)
            .map_err(|_| bad("device seqs"))?;
        let held: HashSet<u64> = stored_above.iter().copied().collect();
        mark_reused_seqs(&mut b.facts, acked, &held);

        // Insert first occurrences; what is already there is settled by content hash.
        let firsts = first_occurrences(&b.facts);
        let first_set: HashSet<usize> = firsts.iter().copied().collect();
        let base = next_feed_seqs(&mut tx, firsts.len().max(1)).await?;
        let mut inserted: HashSet<FactId> = HashSet::new();
        // Feed positions number the new facts only (base, base + 1, ...): the block reserved
        // above has exactly that many numbers, so they cannot run into the next batch's.
        let numbered: Vec<(i64, usize)> = firsts
            .iter()
            .enumerate()
            .map(|(k, &i)| (base + k as i64, i))
            .collect();
        for chunk in numbered.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO facts ({FACT_COLUMNS}, content_hash) "
            ));
            qb.push_values(chunk.iter(), |mut row, &(feed_seq, i)| {
                let f = &b.facts[i];
                let r = &f.record;
                row.push_bind(id_str(r.id))
                    .push_bind(r.kind.as_str())
                    .push_bind(id_str(r.estate_id))
                    .push_bind(id_str(r.device_id))
                    .push_bind(id_str(r.user_id))
                    .push_bind(id_str(r.batch_id))
                    .push_bind(r.seq as i64)
                    .push_bind(r.hlc.to_string())
                    .push_bind(r.hlc_sent.map(|h| h.to_string()))
                    .push_bind(r.recorded_at.0)
                    .push_bind(r.age_ms)
                    .push_bind(r.sent_at.0)
                    .push_bind(r.received_at.0)
                    .push_bind(r.trusted_at.0)
                    .push_bind(r.clock_trust.as_str())
                    .push_bind(serde_json::to_string(&r.flags).unwrap_or_else(|_| "[]".into()))
                    .push_bind(r.data.to_string())
                    .push_bind(0i64)
                    .push_bind(feed_seq)
                    .push_bind(&f.content_hash);
            });
            qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            for id in qb
                .build_query_scalar::<String>()
                .fetch_all(&mut *tx)
                .await?
            {
                inserted.insert(FactId(parse_uuid(&id)?));
            }
        }

        let settle: Vec<usize> = (0..b.facts.len())
            .filter(|i| !inserted.contains(&b.facts[*i].record.id) || !first_set.contains(i))
            .collect();
        let mut stored_hash: HashMap<FactId, String> = HashMap::new();
        for chunk in settle.chunks(INSERT_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT id, content_hash FROM facts WHERE id IN (");
            let mut sep = qb.separated(", ");
            for &i in chunk {
                sep.push_bind(id_str(b.facts[i].record.id));
            }
            qb.push(")");
            for r in qb.build().fetch_all(&mut *tx).await? {
                stored_hash.insert(
                    FactId(parse_uuid(r.try_get::<&str, _>("id")?)?),
                    r.try_get("content_hash")?,
                );
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
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO quarantine (received_at, device_id, user_id, batch_id, idx, change_id, code, message, raw) ",
            );
            qb.push_values(chunk.iter(), |mut row, r| {
                row.push_bind(b.received_at)
                    .push_bind(&dev)
                    .push_bind(id_str(b.user_id))
                    .push_bind(id_str(b.batch_id))
                    .push_bind(r.index as i64)
                    .push_bind(&r.change_id)
                    .push_bind(r.code.as_str())
                    .push_bind(&r.message)
                    .push_bind(r.raw.to_string());
            });
            qb.build().execute(&mut *tx).await?;
        }

        // The acknowledged prefix: every seq up to it is held, as a fact or in quarantine.
        let plan = plan_ack(acked, &held_now, &stored_above);
        for chunk in plan.remember.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO device_seqs (device_id, seq) ");
            qb.push_values(chunk.iter(), |mut row, s| {
                row.push_bind(&dev).push_bind(*s as i64);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        if let Some(through) = plan.forget_through {
            sqlx::query("DELETE FROM device_seqs WHERE device_id = ? AND seq <= ?")
                .bind(&dev)
                .bind(through as i64)
                .execute(&mut *tx)
                .await?;
        }
        let new_ack = plan.new_ack;
        let max_seq = held_now.iter().copied().max().unwrap_or(0);
        sqlx::query(
            "UPDATE devices SET acked_through_seq = ?, max_seq = MAX(max_seq, ?), last_seen_at = ?,
                    last_clock_offset_ms = ?, last_user_id = ? WHERE id = ?",
        )
        .bind(new_ack as i64)
        .bind(max_seq as i64)
        .bind(b.received_at)
        .bind(b.clock_offset_ms)
        .bind(id_str(b.user_id))
        .bind(&dev)
        .execute(&mut *tx)
        .await?;

        let response = build_push_response(&b, &statuses, new_ack);
        sqlx::query(
            "INSERT INTO push_batches (device_id, batch_id, user_id, received_at, response) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&dev)
        .bind(id_str(b.batch_id))
        .bind(id_str(b.user_id))
        .bind(b.received_at)
        .bind(serde_json::to_string(&response).map_err(anyhow::Error::from)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PushOutcome::Stored { response, touched })
    }

    async fn pull(&self, scope: &FeedScope, after: FeedPos, limit: usize) -> StoreResult<FeedPage> {
        let take = limit as i64 + 1;
        let mut items: Vec<FeedItem> = Vec::new();
        let mut conn = self.reader.begin().await?; // one snapshot for all three reads

        let all: Vec<EstateId> = scope.full.iter().chain(scope.own.iter()).copied().collect();
        if !all.is_empty() {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT collection, entity_id, op, data, feed_txid, feed_seq FROM ref_changes WHERE estate_id IN ",
            );
            push_in_list(&mut qb, &all);
            qb.push(" AND (feed_txid, feed_seq) > (")
                .push_bind(after.txid)
                .push(", ")
                .push_bind(after.seq)
                .push(") ORDER BY feed_txid, feed_seq LIMIT ")
                .push_bind(take);
            for r in qb.build().fetch_all(&mut *conn).await? {
                let op = match r.try_get::<&str, _>("op")? {
                    "delete" => ChangeOp::Delete,
                    _ => ChangeOp::Put,
                };
                let data: Option<String> = r.try_get("data")?;
                items.push(FeedItem {
                    pos: pos_from_row(&r)?,
                    change: PullChange {
                        collection: r.try_get("collection")?,
                        op,
                        id: r.try_get("entity_id")?,
                        data: data
                            .map(|d| serde_json::from_str(&d))
                            .transpose()
                            .map_err(|_| bad("data"))?,
                    },
                });
            }
        }
        for (estates, own_only) in [(&scope.full, false), (&scope.own, true)] {
            if estates.is_empty() {
                continue;
            }
            let mut qb =
                QueryBuilder::<Sqlite>::new(format!("SELECT {FACT_COLUMNS} FROM facts WHERE "));
            if own_only {
                qb.push("user_id = ")
                    .push_bind(id_str(scope.user_id))
                    .push(" AND ");
            }
            qb.push("estate_id IN ");
            push_in_list(&mut qb, estates);
            qb.push(" AND (feed_txid, feed_seq) > (")
                .push_bind(after.txid)
                .push(", ")
                .push_bind(after.seq)
                .push(") ORDER BY feed_txid, feed_seq LIMIT ")
                .push_bind(take);
            for r in qb.build().fetch_all(&mut *conn).await? {
                let rec = fact_from_row(&r)?;
                items.push(FeedItem {
                    pos: pos_from_row(&r)?,
                    change: PullChange {
                        collection: "facts".into(),
                        op: ChangeOp::Put,
                        id: rec.id.to_string(),
                        data: Some(serde_json::to_value(&rec).map_err(anyhow::Error::from)?),
                    },
                });
            }
        }
        items.extend(hazards::pull_hazards_and_alerts(&mut conn, scope, after, take).await?);
        conn.rollback().await?;
        items.sort_by_key(|i| i.pos);
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(FeedPage {
            items,
            has_more,
            held_back: false,
        })
    }

    async fn feed_floor(&self) -> StoreResult<FeedPos> {
        let r = sqlx::query(
            "SELECT floor_txid AS feed_txid, floor_seq AS feed_seq FROM feed_meta WHERE id = 1",
        )
        .fetch_one(&self.reader)
        .await?;
        pos_from_row(&r)
    }

    async fn prune_tombstones(&self, before: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let top = sqlx::query(
            "SELECT feed_txid, feed_seq FROM ref_changes WHERE op = 'delete' AND changed_at < ?
             ORDER BY feed_txid DESC, feed_seq DESC LIMIT 1",
        )
        .bind(before)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(top) = top else { return Ok(0) };
        let top = pos_from_row(&top)?;
        let n = sqlx::query("DELETE FROM ref_changes WHERE op = 'delete' AND changed_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE feed_meta SET floor_txid = ?, floor_seq = ?
             WHERE id = 1 AND (floor_txid, floor_seq) < (?, ?)",
        )
        .bind(top.txid)
        .bind(top.seq)
        .bind(top.txid)
        .bind(top.seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn get_fact(&self, id: FactId) -> StoreResult<Option<FactRecord>> {
        let row = sqlx::query(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = ?"))
            .bind(id_str(id))
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(fact_from_row).transpose()
    }

    async fn count_facts(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM facts")
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
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
        let h: Option<String> =
            sqlx::query_scalar("SELECT hazard_id FROM hazard_events WHERE id = ?")
                .bind(id_str(event))
                .fetch_optional(&self.reader)
                .await?;
        h.map(|h| parse_uuid(&h).map(HazardId)).transpose()
    }
    async fn photos_by_sha(&self, sha256: &str) -> StoreResult<Vec<PhotoRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PHOTO_COLUMNS} FROM photos WHERE sha256 = ? ORDER BY received_at, id"
        ))
        .bind(sha256)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(photo_from_row).collect()
    }

    async fn photo_blob(&self, sha256: &str) -> StoreResult<Option<BlobRecord>> {
        let row =
            sqlx::query("SELECT sha256, bytes, mime, stored_at FROM photo_blobs WHERE sha256 = ?")
                .bind(sha256)
                .fetch_optional(&self.reader)
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
            "INSERT INTO photo_blobs (sha256, bytes, mime, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
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
        tx.commit().await?;
        Ok(Some(touched))
    }

    async fn photos_missing(&self, q: &MissingQuery) -> StoreResult<Vec<PhotoRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PHOTO_COLUMNS} FROM photos p
             WHERE (?1 IS NULL OR p.estate_id = ?1) AND (?2 IS NULL OR p.device_id = ?2)
               AND NOT EXISTS (SELECT 1 FROM photo_blobs b WHERE b.sha256 = p.sha256)
             ORDER BY p.received_at, p.id"
        ))
        .bind(q.estate.map(id_str))
        .bind(q.device.map(id_str))
        .fetch_all(&self.reader)
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
             WHERE p.subject_kind = ? AND p.subject_id IN (SELECT value FROM json_each(?))
               AND p.estate_id = ?
             ORDER BY p.subject_id, p.received_at, p.id"
        ))
        .bind(kind)
        .bind(serde_json::to_string(ids).map_err(|e| StoreError::Other(e.into()))?)
        .bind(id_str(estate))
        .fetch_all(&self.reader)
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

    async fn list_quarantine(
        &self,
        estates: &[EstateId],
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineEntry>> {
        if estates.is_empty() {
            return Ok(vec![]);
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, received_at, device_id, user_id, batch_id, idx, change_id, code, message, raw FROM quarantine
             WHERE user_id IN (SELECT user_id FROM memberships WHERE estate_id IN ",
        );
        push_in_list(&mut qb, estates);
        qb.push(")");
        if let Some(b) = before {
            qb.push(" AND id < ").push_bind(b);
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit as i64);
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                Ok(QuarantineEntry {
                    id: r.try_get("id")?,
                    received_at: Timestamp(r.try_get("received_at")?),
                    device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
                    user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
                    batch_id: BatchId(parse_uuid(r.try_get::<&str, _>("batch_id")?)?),
                    index: r.try_get::<i64, _>("idx")? as usize,
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
}
