//! postgres: patrol reference data, scans, run events and excuses (the SQL behind
//! `storage::patrol`).
//!
//! A reference write holds an exclusive advisory lock on its estate until commit, so two
//! admins' writes apply one after the other, each checked against what the other committed
//! (READ COMMITTED: the statements after the lock see it). A push recording scans holds
//! the same lock shared: scans are resolved by the tags before or after a reference write,
//! never half-way, and a scan committed while tags change is never left unresolved.

use super::*;
use crate::storage::patrol::{self as pt, EstateRow, PatrolTx, RunEventRow, ScanRow};
use crate::storage::RefOutcome;
use futures::TryStreamExt;
use shared_core::patrol::{
    Excuse, RefChange, RefCollection, RefOp, ReferenceSet, RunAction, RunEventData, RunEventObs,
    ScanLocation, ScanObs,
};
use shared_core::{CheckpointId, RouteId, RuleId, RunId};

/// The patrol SQL on an open PostgreSQL transaction.
pub(super) struct Tx<'a>(pub &'a mut Transaction<'static, Postgres>);

/// Seed of the estate's advisory lock key (hazard tickets use 7231).
const ESTATE_LOCK_SEED: i64 = 7232;
/// Bound parameters per row of the scans INSERT.
const SCAN_BINDS: usize = 16;
const _: () = assert!(INSERT_CHUNK * SCAN_BINDS < MAX_BINDS);

#[async_trait]
impl PatrolTx for Tx<'_> {
    async fn lock_estate(&mut self, estate: EstateId) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, $2))")
            .bind(estate.0)
            .bind(ESTATE_LOCK_SEED)
            .execute(&mut **self.0)
            .await?;
        Ok(())
    }

    async fn lock_estates_shared(&mut self, estates: &[EstateId]) -> StoreResult<()> {
        // In id order (the caller sorts), like every other multi-lock.
        for e in estates {
            sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1::text, $2))")
                .bind(e.0)
                .bind(ESTATE_LOCK_SEED)
                .execute(&mut **self.0)
                .await?;
        }
        Ok(())
    }

    async fn estate(&mut self, estate: EstateId) -> StoreResult<Option<EstateRow>> {
        let row = sqlx::query("SELECT timezone, retired_at FROM estates WHERE id = $1")
            .bind(estate.0)
            .fetch_optional(&mut **self.0)
            .await?;
        row.map(|r| {
            Ok(EstateRow {
                timezone: r.try_get("timezone")?,
                retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn reference_rows(&mut self, estate: EstateId) -> StoreResult<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "SELECT collection, data FROM ref_changes
             WHERE estate_id = $1 AND collection IN ('zones', 'checkpoints', 'routes', 'rules')
               AND op = 'put'
             ORDER BY collection, entity_id",
        )
        .bind(estate.0)
        .fetch_all(&mut **self.0)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("collection")?,
                    r.try_get::<Option<Value>, _>("data")?
                        .ok_or_else(|| bad("reference data"))?,
                ))
            })
            .collect()
    }

    async fn owned_elsewhere(
        &mut self,
        estate: EstateId,
        ids: &[(RefCollection, Uuid)],
    ) -> StoreResult<Vec<(RefCollection, Uuid)>> {
        let collections: Vec<&str> = ids.iter().map(|(c, _)| c.as_str()).collect();
        let entities: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
        let rows = sqlx::query(
            "SELECT r.collection, r.entity_id FROM ref_changes r
             JOIN UNNEST($2::text[], $3::uuid[]) AS u(collection, entity_id)
               ON r.collection = u.collection AND r.entity_id = u.entity_id
             WHERE r.estate_id <> $1",
        )
        .bind(estate.0)
        .bind(&collections)
        .bind(&entities)
        .fetch_all(&mut **self.0)
        .await?;
        rows.iter()
            .map(|r| {
                let c = RefCollection::from_str(r.try_get::<&str, _>("collection")?)
                    .map_err(|_| bad("collection"))?;
                Ok((c, r.try_get("entity_id")?))
            })
            .collect()
    }

    async fn write_ref_changes(
        &mut self,
        estate: EstateId,
        changes: &[RefChange],
        now: i64,
    ) -> StoreResult<()> {
        // New rows take this transaction's id and the next feed number from the column
        // defaults; a rewritten row moves to this transaction's place in the feed, as
        // `retire_estate` moves its estate.
        for chunk in changes.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at) ",
            );
            qb.push_values(chunk.iter(), |mut row, c| {
                row.push_bind(c.collection.as_str())
                    .push_bind(c.id)
                    .push_bind(estate.0)
                    .push_bind(if c.data.is_some() { "put" } else { "delete" })
                    .push_bind(c.data.as_ref())
                    .push_bind(now);
            });
            qb.push(
                " ON CONFLICT (collection, entity_id) DO UPDATE SET
                   op = EXCLUDED.op, data = EXCLUDED.data, changed_at = EXCLUDED.changed_at,
                   feed_txid = pg_current_xact_id()::text::bigint, feed_seq = nextval('feed_seq')
                 WHERE ref_changes.estate_id = EXCLUDED.estate_id",
            );
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn set_tags(
        &mut self,
        estate: EstateId,
        remove: &[String],
        insert: &[(String, CheckpointId)],
    ) -> StoreResult<()> {
        let remove: Vec<String> = remove.iter().map(|k| storable_text(k)).collect();
        sqlx::query("DELETE FROM checkpoint_tags WHERE estate_id = $1 AND tag_key = ANY($2)")
            .bind(estate.0)
            .bind(&remove)
            .execute(&mut **self.0)
            .await?;
        if !insert.is_empty() {
            let keys: Vec<String> = insert.iter().map(|(k, _)| storable_text(k)).collect();
            let cps: Vec<Uuid> = insert.iter().map(|(_, c)| c.0).collect();
            sqlx::query(
                "INSERT INTO checkpoint_tags (estate_id, tag_key, checkpoint_id)
                 SELECT $1, k, c FROM UNNEST($2::text[], $3::uuid[]) AS u(k, c)",
            )
            .bind(estate.0)
            .bind(&keys)
            .bind(&cps)
            .execute(&mut **self.0)
            .await?;
        }
        Ok(())
    }

    async fn reresolve_scans(&mut self, estate: EstateId, keys: &[String]) -> StoreResult<()> {
        let keys: Vec<String> = keys.iter().map(|k| storable_text(k)).collect();
        sqlx::query(
            "UPDATE scans SET checkpoint_id = (SELECT t.checkpoint_id FROM checkpoint_tags t
               WHERE t.estate_id = scans.estate_id AND t.tag_key = scans.tag_key)
             WHERE estate_id = $1 AND tag_key = ANY($2)",
        )
        .bind(estate.0)
        .bind(&keys)
        .execute(&mut **self.0)
        .await?;
        Ok(())
    }

    async fn insert_scans(&mut self, rows: &[ScanRow<'_>]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO scans (fact_id, estate_id, device_id, user_id, seq, trusted_at, verified,
                 clock_skew, tag_key, checkpoint_id, run_id, lat, lng, accuracy_m, mock) ",
            );
            qb.push_values(chunk.iter(), |mut row, s| {
                let r = s.record;
                let loc = s.scan.location;
                let key = storable_text(&s.scan.tag_key);
                row.push_bind(r.id.0)
                    .push_bind(r.estate_id.0)
                    .push_bind(r.device_id.0)
                    .push_bind(r.user_id.0)
                    .push_bind(r.seq as i64)
                    .push_bind(r.trusted_at.0)
                    .push_bind(s.verified())
                    .push_bind(s.clock_skew())
                    .push_bind(key.clone())
                    // Resolved as the tags stand in this transaction.
                    .push("(SELECT t.checkpoint_id FROM checkpoint_tags t WHERE t.estate_id = ")
                    .push_bind_unseparated(r.estate_id.0)
                    .push_unseparated(" AND t.tag_key = ")
                    .push_bind_unseparated(key)
                    .push_unseparated(")")
                    .push_bind(s.scan.run_id.map(|x| x.0))
                    .push_bind(loc.map(|l| l.lat))
                    .push_bind(loc.map(|l| l.lng))
                    .push_bind(loc.and_then(|l| l.accuracy_m))
                    .push_bind(loc.is_some_and(|l| l.mock));
            });
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn insert_run_events(&mut self, rows: &[RunEventRow<'_>]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO run_events (fact_id, estate_id, device_id, user_id, hlc, trusted_at, run_id,
                 action, route_id, reason) ",
            );
            qb.push_values(chunk.iter(), |mut row, e| {
                let r = e.record;
                row.push_bind(r.id.0)
                    .push_bind(r.estate_id.0)
                    .push_bind(r.device_id.0)
                    .push_bind(r.user_id.0)
                    .push_bind(r.hlc.to_string())
                    .push_bind(r.trusted_at.0)
                    .push_bind(e.event.run_id.0)
                    .push_bind(e.event.action.as_str())
                    .push_bind(e.event.route_id.map(|x| x.0))
                    .push_bind(e.event.reason.as_deref().map(storable_text));
            });
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }
}

fn scan_from_row(r: &PgRow) -> StoreResult<ScanObs> {
    // By position, in the order of the SELECT in `pt_scans_between`: this runs per scan of
    // a whole period.
    let lat: Option<f64> = r.try_get(10)?;
    let lng: Option<f64> = r.try_get(11)?;
    Ok(ScanObs {
        id: FactId(r.try_get(0)?),
        device_id: DeviceId(r.try_get(1)?),
        user_id: UserId(r.try_get(2)?),
        seq: r.try_get::<i64, _>(3)? as u64,
        trusted_at: r.try_get(4)?,
        verified: r.try_get(5)?,
        clock_skew: r.try_get(6)?,
        tag_key: r.try_get(7)?,
        checkpoint_id: r.try_get::<Option<Uuid>, _>(8)?.map(CheckpointId),
        run_id: r.try_get::<Option<Uuid>, _>(9)?.map(RunId),
        location: match (lat, lng) {
            (Some(lat), Some(lng)) => Some(ScanLocation {
                lat,
                lng,
                accuracy_m: r.try_get(12)?,
                mock: r.try_get(13)?,
            }),
            _ => None,
        },
    })
}

fn excuse_from_row(r: &PgRow) -> StoreResult<Excuse> {
    Ok(Excuse {
        rule_id: RuleId(r.try_get("rule_id")?),
        checkpoint_id: CheckpointId(r.try_get("checkpoint_id")?),
        slot_start: Timestamp(r.try_get("slot_start")?),
        reason: r.try_get("reason")?,
        by: UserId(r.try_get("by_user")?),
        at: Timestamp(r.try_get("at")?),
    })
}

impl PgStore {
    pub(super) async fn pt_reference(&self, estate: EstateId) -> StoreResult<ReferenceSet> {
        // One snapshot for the estate and its entities.
        let mut tx = self
            .pool
            .begin_with("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let set = pt::load_reference(&mut Tx(&mut tx), estate).await?;
        tx.rollback().await?;
        Ok(set)
    }

    pub(super) async fn pt_apply_reference(
        &self,
        estate: EstateId,
        ops: Vec<RefOp>,
        now: i64,
    ) -> StoreResult<RefOutcome> {
        let mut tx = self.begin().await?;
        let out = pt::apply_reference(&mut Tx(&mut tx), estate, &ops, now).await?;
        if out.is_ok() {
            notify_estates(&mut tx, &[estate]).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(out)
    }

    pub(super) async fn pt_set_timezone(
        &self,
        estate: EstateId,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE estates SET timezone = $1 WHERE id = $2 AND retired_at IS NULL
             RETURNING id, name, timezone",
        )
        .bind(timezone)
        .bind(estate.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let record = estate_from_row(&row)?;
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at)
             VALUES ('estates', $1, $1, 'put', $2, $3)
             ON CONFLICT (collection, entity_id) DO UPDATE SET
               op = 'put', data = EXCLUDED.data, changed_at = EXCLUDED.changed_at,
               feed_txid = pg_current_xact_id()::text::bigint, feed_seq = nextval('feed_seq')",
        )
        .bind(estate.0)
        .bind(Json(&record))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        notify_estates(&mut tx, &[estate]).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn pt_scans_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<ScanObs>> {
        let mut rows = sqlx::query(
            "SELECT fact_id, device_id, user_id, seq, trusted_at, verified, clock_skew, tag_key,
                    checkpoint_id, run_id, lat, lng, accuracy_m, mock
             FROM scans WHERE estate_id = $1 AND trusted_at >= $2 AND trusted_at < $3
             ORDER BY trusted_at, fact_id",
        )
        .bind(estate.0)
        .bind(from)
        .bind(to)
        .fetch(&self.pool);
        // Row by row: a month of an estate's scans is a million rows, never all held twice.
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            out.push(scan_from_row(&r)?);
        }
        Ok(out)
    }

    pub(super) async fn pt_run_events_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<RunEventObs>> {
        let rows = sqlx::query(
            "SELECT fact_id, device_id, user_id, hlc, trusted_at, run_id, action, route_id, reason
             FROM run_events WHERE estate_id = $1 AND trusted_at >= $2 AND trusted_at < $3
             ORDER BY trusted_at, fact_id",
        )
        .bind(estate.0)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunEventObs {
                    fact_id: FactId(r.try_get("fact_id")?),
                    device_id: DeviceId(r.try_get("device_id")?),
                    user_id: UserId(r.try_get("user_id")?),
                    hlc: Hlc::from_str(r.try_get::<&str, _>("hlc")?).map_err(|_| bad("hlc"))?,
                    trusted_at: r.try_get("trusted_at")?,
                    data: RunEventData {
                        run_id: RunId(r.try_get("run_id")?),
                        action: RunAction::from_str(r.try_get::<&str, _>("action")?)
                            .map_err(|_| bad("run action"))?,
                        route_id: r.try_get::<Option<Uuid>, _>("route_id")?.map(RouteId),
                        reason: r.try_get("reason")?,
                    },
                })
            })
            .collect()
    }

    pub(super) async fn pt_excuses_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Excuse>> {
        let rows = sqlx::query(
            "SELECT rule_id, checkpoint_id, slot_start, reason, by_user, at FROM slot_excuses
             WHERE estate_id = $1 AND slot_start >= $2 AND slot_start < $3
             ORDER BY slot_start, rule_id, checkpoint_id",
        )
        .bind(estate.0)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(excuse_from_row).collect()
    }

    pub(super) async fn pt_put_excuse(
        &self,
        estate: EstateId,
        excuse: &Excuse,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "INSERT INTO slot_excuses (estate_id, rule_id, checkpoint_id, slot_start, reason, by_user, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(estate.0)
        .bind(excuse.rule_id.0)
        .bind(excuse.checkpoint_id.0)
        .bind(excuse.slot_start.0)
        .bind(storable_text(&excuse.reason))
        .bind(excuse.by.0)
        .bind(excuse.at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn pt_patrol_estates(&self) -> StoreResult<Vec<EstateId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT e.id FROM estates e WHERE e.retired_at IS NULL AND EXISTS
               (SELECT 1 FROM ref_changes r
                WHERE r.estate_id = e.id AND r.collection = 'rules' AND r.op = 'put')
             ORDER BY e.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(EstateId).collect())
    }
}
