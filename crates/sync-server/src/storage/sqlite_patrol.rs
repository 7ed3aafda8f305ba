//! sqlite: patrol reference data, scans, run events and excuses (the SQL behind
//! `storage::patrol`).

use super::*;
use crate::storage::patrol::{self as pt, EstateRow, PatrolTx, RunEventRow, ScanRow};
use crate::storage::RefOutcome;
use shared_core::patrol::{
    Excuse, RefChange, RefCollection, RefOp, ReferenceSet, RunAction, RunEventData, RunEventObs,
    ScanLocation, ScanObs,
};
use shared_core::{CheckpointId, RouteId, RuleId, RunId};

/// The patrol SQL on an open SQLite transaction (the writer's, or a reader's for reads).
pub(super) struct Tx<'a>(pub &'a mut Transaction<'static, Sqlite>);

const REF_COLLECTIONS: &str = "('zones', 'checkpoints', 'routes', 'rules')";

fn push_str_list<'q>(qb: &mut QueryBuilder<'q, Sqlite>, items: impl IntoIterator<Item = String>) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for s in items {
        sep.push_bind(s);
    }
    qb.push(")");
}

fn opt_uuid(s: Option<&str>) -> StoreResult<Option<uuid::Uuid>> {
    s.map(parse_uuid).transpose()
}

#[async_trait]
impl PatrolTx for Tx<'_> {
    async fn lock_estate(&mut self, _estate: EstateId) -> StoreResult<()> {
        // BEGIN IMMEDIATE: this transaction is the only writer until it ends.
        Ok(())
    }

    async fn lock_estates_shared(&mut self, _estates: &[EstateId]) -> StoreResult<()> {
        Ok(())
    }

    async fn estate(&mut self, estate: EstateId) -> StoreResult<Option<EstateRow>> {
        let row = sqlx::query("SELECT timezone, retired_at FROM estates WHERE id = ?")
            .bind(id_str(estate))
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
        let rows = sqlx::query(&format!(
            "SELECT collection, data FROM ref_changes
             WHERE estate_id = ? AND collection IN {REF_COLLECTIONS} AND op = 'put'
             ORDER BY collection, entity_id"
        ))
        .bind(id_str(estate))
        .fetch_all(&mut **self.0)
        .await?;
        rows.iter()
            .map(|r| {
                let data: &str = r.try_get("data")?;
                Ok((
                    r.try_get("collection")?,
                    serde_json::from_str(data).map_err(|_| bad("reference data"))?,
                ))
            })
            .collect()
    }

    async fn owned_elsewhere(
        &mut self,
        estate: EstateId,
        ids: &[(RefCollection, uuid::Uuid)],
    ) -> StoreResult<Vec<(RefCollection, uuid::Uuid)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT collection, entity_id FROM ref_changes WHERE estate_id <> ",
            );
            qb.push_bind(id_str(estate))
                .push(" AND (collection, entity_id) IN (VALUES ");
            let mut sep = qb.separated(", ");
            for (c, id) in chunk {
                sep.push("(")
                    .push_bind_unseparated(c.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(id_str(id))
                    .push_unseparated(")");
            }
            qb.push(")");
            for r in qb.build().fetch_all(&mut **self.0).await? {
                let c = RefCollection::from_str(r.try_get::<&str, _>("collection")?)
                    .map_err(|_| bad("collection"))?;
                out.push((c, parse_uuid(r.try_get::<&str, _>("entity_id")?)?));
            }
        }
        Ok(out)
    }

    async fn write_ref_changes(
        &mut self,
        estate: EstateId,
        changes: &[RefChange],
        now: i64,
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let base = next_feed_seqs(self.0, changes.len()).await?;
        let numbered: Vec<(i64, &RefChange)> = changes
            .iter()
            .enumerate()
            .map(|(k, c)| (base + k as i64, c))
            .collect();
        let estate = id_str(estate);
        for chunk in numbered.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at, feed_txid, feed_seq) ",
            );
            qb.push_values(chunk.iter(), |mut row, (seq, c)| {
                row.push_bind(c.collection.as_str())
                    .push_bind(id_str(c.id))
                    .push_bind(&estate)
                    .push_bind(if c.data.is_some() { "put" } else { "delete" })
                    .push_bind(c.data.as_ref().map(Value::to_string))
                    .push_bind(now)
                    .push_bind(0i64)
                    .push_bind(*seq);
            });
            qb.push(
                " ON CONFLICT (collection, entity_id) DO UPDATE SET
                   op = excluded.op, data = excluded.data, changed_at = excluded.changed_at,
                   feed_txid = excluded.feed_txid, feed_seq = excluded.feed_seq
                 WHERE ref_changes.estate_id = excluded.estate_id",
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
        let estate = id_str(estate);
        for chunk in remove.chunks(INSERT_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("DELETE FROM checkpoint_tags WHERE estate_id = ");
            qb.push_bind(&estate).push(" AND tag_key IN ");
            push_str_list(&mut qb, chunk.iter().cloned());
            qb.build().execute(&mut **self.0).await?;
        }
        for chunk in insert.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO checkpoint_tags (estate_id, tag_key, checkpoint_id) ",
            );
            qb.push_values(chunk.iter(), |mut row, (key, cp)| {
                row.push_bind(&estate).push_bind(key).push_bind(id_str(cp));
            });
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn reresolve_scans(&mut self, estate: EstateId, keys: &[String]) -> StoreResult<()> {
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE scans SET checkpoint_id = (SELECT t.checkpoint_id FROM checkpoint_tags t
                   WHERE t.estate_id = scans.estate_id AND t.tag_key = scans.tag_key)
                 WHERE estate_id = ",
            );
            qb.push_bind(id_str(estate)).push(" AND tag_key IN ");
            push_str_list(&mut qb, chunk.iter().cloned());
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn insert_scans(&mut self, rows: &[ScanRow<'_>]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO scans (fact_id, estate_id, device_id, user_id, seq, trusted_at, verified,
                 clock_skew, tag_key, checkpoint_id, run_id, lat, lng, accuracy_m, mock) ",
            );
            qb.push_values(chunk.iter(), |mut row, s| {
                let r = s.record;
                let estate = id_str(r.estate_id);
                let loc = s.scan.location;
                row.push_bind(id_str(r.id))
                    .push_bind(estate.clone())
                    .push_bind(id_str(r.device_id))
                    .push_bind(id_str(r.user_id))
                    .push_bind(r.seq as i64)
                    .push_bind(r.trusted_at.0)
                    .push_bind(s.verified())
                    .push_bind(s.clock_skew())
                    .push_bind(s.scan.tag_key.clone())
                    // Resolved as the tags stand in this transaction.
                    .push("(SELECT t.checkpoint_id FROM checkpoint_tags t WHERE t.estate_id = ")
                    .push_bind_unseparated(estate)
                    .push_unseparated(" AND t.tag_key = ")
                    .push_bind_unseparated(s.scan.tag_key.clone())
                    .push_unseparated(")")
                    .push_bind(s.scan.run_id.map(id_str))
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
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO run_events (fact_id, estate_id, device_id, user_id, hlc, trusted_at, run_id,
                 action, route_id, reason) ",
            );
            qb.push_values(chunk.iter(), |mut row, e| {
                let r = e.record;
                row.push_bind(id_str(r.id))
                    .push_bind(id_str(r.estate_id))
                    .push_bind(id_str(r.device_id))
                    .push_bind(id_str(r.user_id))
                    .push_bind(r.hlc.to_string())
                    .push_bind(r.trusted_at.0)
                    .push_bind(id_str(e.event.run_id))
                    .push_bind(e.event.action.as_str())
                    .push_bind(e.event.route_id.map(id_str))
                    .push_bind(e.event.reason.clone());
            });
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }
}

/// Scans per query of [`SqliteStore::pt_scans_between`].
const SCAN_PAGE: i64 = 20_000;

/// One scan as `pt_scans_between` packs it: fact_id, device_id, user_id, seq, trusted_at,
/// verified, clock_skew, tag_key, checkpoint_id, run_id, lat, lng, accuracy_m (reals as
/// round-trip text), mock.
type PackedScan<'a> = (
    &'a str,
    &'a str,
    &'a str,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    i64,
);

fn real(s: Option<&str>) -> StoreResult<Option<f64>> {
    s.map(|x| x.parse::<f64>().map_err(|_| bad("scan location")))
        .transpose()
}

fn packed_scan(r: &PackedScan<'_>) -> StoreResult<ScanObs> {
    Ok(ScanObs {
        id: FactId(parse_uuid(r.0)?),
        device_id: DeviceId(parse_uuid(r.1)?),
        user_id: UserId(parse_uuid(r.2)?),
        seq: r.3 as u64,
        trusted_at: r.4,
        verified: r.5 != 0,
        clock_skew: r.6 != 0,
        tag_key: r.7.clone(),
        checkpoint_id: opt_uuid(r.8)?.map(CheckpointId),
        run_id: opt_uuid(r.9)?.map(RunId),
        location: match (real(r.10)?, real(r.11)?) {
            (Some(lat), Some(lng)) => Some(ScanLocation {
                lat,
                lng,
                accuracy_m: real(r.12)?,
                mock: r.13 != 0,
            }),
            _ => None,
        },
    })
}

fn excuse_from_row(r: &SqliteRow) -> StoreResult<Excuse> {
    Ok(Excuse {
        rule_id: RuleId(parse_uuid(r.try_get::<&str, _>("rule_id")?)?),
        checkpoint_id: CheckpointId(parse_uuid(r.try_get::<&str, _>("checkpoint_id")?)?),
        slot_start: Timestamp(r.try_get("slot_start")?),
        reason: r.try_get("reason")?,
        by: UserId(parse_uuid(r.try_get::<&str, _>("by_user")?)?),
        at: Timestamp(r.try_get("at")?),
    })
}

impl SqliteStore {
    pub(super) async fn pt_reference(&self, estate: EstateId) -> StoreResult<ReferenceSet> {
        // One snapshot for the estate and its entities.
        let mut tx = self.reader.begin().await?;
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
            "UPDATE estates SET timezone = ? WHERE id = ? AND retired_at IS NULL
             RETURNING id, name, timezone",
        )
        .bind(timezone)
        .bind(id_str(estate))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let record = estate_from_row(&row)?;
        let seq = next_feed_seqs(&mut tx, 1).await?;
        sqlx::query(
            "INSERT INTO ref_changes (collection, entity_id, estate_id, op, data, changed_at, feed_txid, feed_seq)
             VALUES ('estates', ?1, ?1, 'put', ?2, ?3, 0, ?4)
             ON CONFLICT (collection, entity_id) DO UPDATE SET
               op = 'put', data = excluded.data, changed_at = excluded.changed_at,
               feed_txid = excluded.feed_txid, feed_seq = excluded.feed_seq",
        )
        .bind(id_str(estate))
        .bind(serde_json::to_string(&record).map_err(anyhow::Error::from)?)
        .bind(now)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn pt_scans_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<ScanObs>> {
        // A month of an estate's scans is a million rows, and sqlx hands SQLite rows over
        // one by one (a copy of every value and a channel send each): about 10 µs a row.
        // SQLite packs a page of rows into one JSON text instead, read here in one go.
        let estate = id_str(estate);
        let mut out = Vec::new();
        let mut after = (from, String::new());
        loop {
            let page: Option<String> = sqlx::query_scalar(
                "SELECT json_group_array(json_array(fact_id, device_id, user_id, seq, trusted_at,
                        verified, clock_skew, tag_key, checkpoint_id, run_id,
                        CASE WHEN lat IS NULL THEN NULL ELSE printf('%!.17g', lat) END,
                        CASE WHEN lng IS NULL THEN NULL ELSE printf('%!.17g', lng) END,
                        CASE WHEN accuracy_m IS NULL THEN NULL ELSE printf('%!.17g', accuracy_m) END,
                        mock))
                 FROM (SELECT * FROM scans
                       WHERE estate_id = ?1 AND trusted_at >= ?2 AND trusted_at < ?3
                         AND (trusted_at, fact_id) > (?4, ?5)
                       ORDER BY trusted_at, fact_id LIMIT ?6)",
            )
            .bind(&estate)
            .bind(from)
            .bind(to)
            .bind(after.0)
            .bind(&after.1)
            .bind(SCAN_PAGE)
            .fetch_one(&self.reader)
            .await?;
            let page = page.unwrap_or_default();
            let rows: Vec<PackedScan<'_>> = serde_json::from_str(&page)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("unreadable scans: {e}")))?;
            let n = rows.len();
            for r in rows {
                let scan = packed_scan(&r)?;
                if (r.4, r.0) > (after.0, after.1.as_str()) {
                    after = (r.4, r.0.to_owned());
                }
                out.push(scan);
            }
            if (n as i64) < SCAN_PAGE {
                break;
            }
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
             FROM run_events WHERE estate_id = ? AND trusted_at >= ? AND trusted_at < ?
             ORDER BY trusted_at, fact_id",
        )
        .bind(id_str(estate))
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunEventObs {
                    fact_id: FactId(parse_uuid(r.try_get::<&str, _>("fact_id")?)?),
                    device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
                    user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
                    hlc: Hlc::from_str(r.try_get::<&str, _>("hlc")?).map_err(|_| bad("hlc"))?,
                    trusted_at: r.try_get("trusted_at")?,
                    data: RunEventData {
                        run_id: RunId(parse_uuid(r.try_get::<&str, _>("run_id")?)?),
                        action: RunAction::from_str(r.try_get::<&str, _>("action")?)
                            .map_err(|_| bad("run action"))?,
                        route_id: opt_uuid(r.try_get("route_id")?)?.map(RouteId),
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
             WHERE estate_id = ? AND slot_start >= ? AND slot_start < ?
             ORDER BY slot_start, rule_id, checkpoint_id",
        )
        .bind(id_str(estate))
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
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
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(id_str(estate))
        .bind(id_str(excuse.rule_id))
        .bind(id_str(excuse.checkpoint_id))
        .bind(excuse.slot_start.0)
        .bind(&excuse.reason)
        .bind(id_str(excuse.by))
        .bind(excuse.at.0)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn pt_patrol_estates(&self) -> StoreResult<Vec<EstateId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT e.id FROM estates e WHERE e.retired_at IS NULL AND EXISTS
               (SELECT 1 FROM ref_changes r
                WHERE r.estate_id = e.id AND r.collection = 'rules' AND r.op = 'put')
             ORDER BY e.id",
        )
        .fetch_all(&self.reader)
        .await?;
        ids.iter().map(|s| parse_uuid(s).map(EstateId)).collect()
    }
}
