//! SQLite: hazard tickets and alerts (the SQL behind `storage::hazards`).

use super::*;
use crate::storage::hazards::{self as hz, EventParts, EventRow, HazardTx, PhotoMetaRow, PhotoRow};
use crate::storage::{
    AlertQuery, CloseAlert, HazardQuery, HeldEvent, NewAlert, OnlineEvent, OnlineOutcome,
};
use shared_core::hazard::{EventInput, HazardPolicy, PhotoRef, PhotoRole, Ticket, TicketSummary};
use shared_core::wire::Alert;
use shared_core::{AlertId, HazardId};

/// The hazard SQL on an open SQLite write transaction.
pub(super) struct Tx<'a>(pub &'a mut Transaction<'static, Sqlite>);

fn in_list<'q, T: ToString>(qb: &mut QueryBuilder<'q, Sqlite>, ids: &[T]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(id.to_string());
    }
    qb.push(")");
}

pub(super) fn ticket_from_json(s: &str) -> StoreResult<Ticket> {
    serde_json::from_str(s).map_err(|e| bad(&format!("ticket ({e})")))
}

async fn load_events_on(
    conn: &mut sqlx::SqliteConnection,
    ids: &[HazardId],
) -> StoreResult<Vec<EventInput>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT e.id, e.estate_id, e.hlc, e.device_id, e.user_id, e.roles, e.trusted_at, e.data,
                    (SELECT json_group_array(json_array(p.id, p.role, p.sha256,
                              EXISTS (SELECT 1 FROM photo_blobs b WHERE b.sha256 = lower(p.sha256))))
                       FROM hazard_photos p WHERE p.event_id = e.id) AS photos
             FROM hazard_events e WHERE e.hazard_id IN ",
        );
        in_list(&mut qb, chunk);
        for r in qb.build().fetch_all(&mut *conn).await? {
            let photos: Vec<(String, String, String, i64)> =
                serde_json::from_str(r.try_get::<&str, _>("photos")?)
                    .map_err(|_| bad("hazard photos"))?;
            let photos = photos
                .into_iter()
                .map(|(id, role, sha256, received)| {
                    Ok(PhotoRef {
                        id: FactId(parse_uuid(&id)?),
                        role: PhotoRole::from_str(&role).unwrap_or(PhotoRole::Other),
                        sha256,
                        received: received != 0,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let parts = EventParts {
                id: FactId(parse_uuid(r.try_get::<&str, _>("id")?)?),
                estate_id: EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?),
                hlc: Hlc::from_str(r.try_get::<&str, _>("hlc")?).map_err(|_| bad("hlc"))?,
                device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
                user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
                roles: r.try_get("roles")?,
                trusted_at: r.try_get("trusted_at")?,
                data: serde_json::from_str(r.try_get::<&str, _>("data")?)
                    .map_err(|_| bad("event data"))?,
            };
            out.push(hz::event_from_parts(parts, photos)?);
        }
    }
    Ok(out)
}

async fn policy_on(
    conn: &mut sqlx::SqliteConnection,
    estate: EstateId,
) -> StoreResult<HazardPolicy> {
    let p: Option<String> =
        sqlx::query_scalar("SELECT policy FROM hazard_policies WHERE estate_id = ?")
            .bind(id_str(estate))
            .fetch_optional(&mut *conn)
            .await?;
    match p {
        Some(p) => serde_json::from_str(&p).map_err(|_| bad("hazard policy")),
        None => Ok(HazardPolicy::default()),
    }
}

#[async_trait]
impl HazardTx for Tx<'_> {
    async fn lock_hazards(&mut self, _ids: &[HazardId]) -> StoreResult<()> {
        Ok(()) // BEGIN IMMEDIATE: this is the only writer
    }

    async fn insert_events(&mut self, rows: &[EventRow]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO hazard_events (id, hazard_id, estate_id, source, device_id, user_id, roles, hlc, trusted_at, received_at, content_hash, data) ",
            );
            qb.push_values(chunk.iter(), |mut b, r| {
                let e = &r.input;
                b.push_bind(id_str(e.id))
                    .push_bind(id_str(e.hazard_id))
                    .push_bind(id_str(e.estate_id))
                    .push_bind(r.source)
                    .push_bind(id_str(e.device_id))
                    .push_bind(id_str(e.actor))
                    .push_bind(hz::roles_to_text(&e.roles))
                    .push_bind(e.hlc.to_string())
                    .push_bind(e.at)
                    .push_bind(r.received_at)
                    .push_bind(&r.content_hash)
                    .push_bind(e.data.to_string());
            });
            qb.push(" ON CONFLICT (id) DO NOTHING");
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn insert_photos(&mut self, rows: &[PhotoRow]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO hazard_photos (id, event_id, role, sha256, received_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, r| {
                b.push_bind(id_str(r.id))
                    .push_bind(id_str(r.event_id))
                    .push_bind(r.role.as_str())
                    .push_bind(&r.sha256)
                    .push_bind(r.received_at);
            });
            qb.push(" ON CONFLICT (id) DO NOTHING");
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn insert_photo_meta(&mut self, rows: &[PhotoMetaRow]) -> StoreResult<()> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO photos (id, estate_id, device_id, user_id, sha256, bytes, mime, subject_kind, subject_id, role, received_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, r| {
                b.push_bind(id_str(r.id))
                    .push_bind(id_str(r.estate_id))
                    .push_bind(id_str(r.device_id))
                    .push_bind(id_str(r.user_id))
                    .push_bind(r.meta.sha256.clone())
                    .push_bind(r.meta.bytes.map(|n| n as i64))
                    .push_bind(r.meta.mime.clone())
                    .push_bind(r.meta.subject_kind.clone())
                    .push_bind(r.meta.subject_id.clone())
                    .push_bind(r.meta.role.clone())
                    .push_bind(r.received_at);
            });
            qb.push(" ON CONFLICT (id) DO NOTHING");
            qb.build().execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn hazards_of_photo(&mut self, sha256: &str) -> StoreResult<Vec<HazardId>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT e.hazard_id FROM hazard_photos p JOIN hazard_events e ON e.id = p.event_id
             WHERE lower(p.sha256) = ?",
        )
        .bind(sha256)
        .fetch_all(&mut **self.0)
        .await?;
        rows.iter()
            .map(|id| Ok(HazardId(parse_uuid(id)?)))
            .collect()
    }

    async fn hazards_of_events(&mut self, events: &[FactId]) -> StoreResult<Vec<HazardId>> {
        let mut out = Vec::new();
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT DISTINCT hazard_id FROM hazard_events WHERE id IN ",
            );
            in_list(&mut qb, chunk);
            for id in qb
                .build_query_scalar::<String>()
                .fetch_all(&mut **self.0)
                .await?
            {
                out.push(HazardId(parse_uuid(&id)?));
            }
        }
        Ok(out)
    }

    async fn load_events(&mut self, ids: &[HazardId]) -> StoreResult<Vec<EventInput>> {
        load_events_on(self.0, ids).await
    }

    async fn event_hash(&mut self, id: FactId) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT content_hash FROM hazard_events WHERE id = ?")
                .bind(id_str(id))
                .fetch_optional(&mut **self.0)
                .await?,
        )
    }

    async fn policy(&mut self, estate: EstateId) -> StoreResult<HazardPolicy> {
        policy_on(self.0, estate).await
    }

    async fn existing_codes(&mut self, ids: &[HazardId]) -> StoreResult<HashMap<HazardId, String>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT id, code FROM hazards WHERE id IN ");
            in_list(&mut qb, chunk);
            for r in qb.build().fetch_all(&mut **self.0).await? {
                out.insert(
                    HazardId(parse_uuid(r.try_get::<&str, _>("id")?)?),
                    r.try_get("code")?,
                );
            }
        }
        Ok(out)
    }

    async fn estate_timezone(&mut self, estate: EstateId) -> StoreResult<String> {
        Ok(
            sqlx::query_scalar("SELECT timezone FROM estates WHERE id = ?")
                .bind(id_str(estate))
                .fetch_optional(&mut **self.0)
                .await?
                .unwrap_or_else(|| "UTC".to_owned()),
        )
    }

    async fn next_code_number(&mut self, estate: EstateId, day: &str) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO hazard_codes (estate_id, day, last) VALUES (?, ?, 1)
             ON CONFLICT (estate_id, day) DO UPDATE SET last = last + 1 RETURNING last",
        )
        .bind(id_str(estate))
        .bind(day)
        .fetch_one(&mut **self.0)
        .await?;
        Ok(n as u32)
    }

    async fn write_ticket(&mut self, t: &Ticket, now: i64) -> StoreResult<()> {
        let seq = next_feed_seqs(self.0, 1).await?;
        sqlx::query(
            "INSERT INTO hazards (id, estate_id, code, state, grade, category, reporter_id, assignee_id,
                                  reported_at, due_at, closed_at, reopen_count, ticket, updated_at, feed_txid, feed_seq)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
             ON CONFLICT (id) DO UPDATE SET
                state = excluded.state, grade = excluded.grade, category = excluded.category,
                assignee_id = excluded.assignee_id, reported_at = excluded.reported_at,
                reporter_id = excluded.reporter_id, due_at = excluded.due_at,
                closed_at = excluded.closed_at, reopen_count = excluded.reopen_count,
                ticket = excluded.ticket, updated_at = excluded.updated_at,
                feed_seq = excluded.feed_seq",
        )
        .bind(id_str(t.id))
        .bind(id_str(t.estate_id))
        .bind(&t.code)
        .bind(t.state.as_str())
        .bind(t.grade.as_str())
        .bind(&t.category)
        .bind(id_str(t.reporter))
        .bind(t.assignee.map(id_str))
        .bind(t.reported_at.0)
        .bind(t.due_at.0)
        .bind(t.closed_at.map(|c| c.0))
        .bind(i64::from(t.reopen_count))
        .bind(serde_json::to_string(t).map_err(anyhow::Error::from)?)
        .bind(now)
        .bind(seq)
        .execute(&mut **self.0)
        .await?;
        Ok(())
    }
}

fn alert_from_row(r: &SqliteRow) -> StoreResult<Alert> {
    let uuid_opt = |c: &str| -> StoreResult<Option<uuid::Uuid>> {
        r.try_get::<Option<String>, _>(c)?
            .map(|s| parse_uuid(&s))
            .transpose()
    };
    Ok(Alert {
        id: AlertId(parse_uuid(r.try_get::<&str, _>("id")?)?),
        estate_id: EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?),
        kind: r.try_get("kind")?,
        subject_id: r.try_get("subject_id")?,
        target: r.try_get("target")?,
        recipient_id: uuid_opt("recipient_id")?.map(UserId),
        raised_at: Timestamp(r.try_get("raised_at")?),
        data: serde_json::from_str(r.try_get::<&str, _>("data")?).map_err(|_| bad("alert"))?,
        closed_at: r.try_get::<Option<i64>, _>("closed_at")?.map(Timestamp),
        closed_by: uuid_opt("closed_by")?.map(UserId),
        close_comment: r.try_get("close_comment")?,
    })
}

const ALERT_COLUMNS: &str = "id, estate_id, kind, subject_id, target, recipient_id, raised_at, data, closed_at, closed_by, close_comment";

impl SqliteStore {
    pub(super) async fn hz_policy(&self, estate: EstateId) -> StoreResult<HazardPolicy> {
        let mut conn = self.reader.acquire().await?;
        policy_on(&mut conn, estate).await
    }

    pub(super) async fn hz_set_policy(
        &self,
        estate: EstateId,
        policy: &HazardPolicy,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO hazard_policies (estate_id, policy, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (estate_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
        )
        .bind(id_str(estate))
        .bind(serde_json::to_string(policy).map_err(anyhow::Error::from)?)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn hz_post(&self, ev: OnlineEvent) -> StoreResult<OnlineOutcome> {
        let mut tx = self.begin().await?;
        let out = hz::post_online(&mut Tx(&mut tx), ev).await?;
        if matches!(out, OnlineOutcome::Stored(_)) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(out)
    }

    pub(super) async fn hz_get(&self, id: HazardId) -> StoreResult<Option<Ticket>> {
        let t: Option<String> = sqlx::query_scalar("SELECT ticket FROM hazards WHERE id = ?")
            .bind(id_str(id))
            .fetch_optional(&self.reader)
            .await?;
        t.map(|t| ticket_from_json(&t)).transpose()
    }

    pub(super) async fn hz_list(&self, q: &HazardQuery) -> StoreResult<Vec<Ticket>> {
        // The page's keys first (the index walks (estate_id, reported_at, id) backwards and
        // stops at the limit), then the tickets of those keys only: the JSON is built for
        // the page, not for every row the sort saw.
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT json_set(h.ticket, '$.timeline', json('[]')) AS ticket FROM hazards h
             JOIN (SELECT id, reported_at FROM hazards WHERE (",
        );
        let me = q.user_id.map(id_str).unwrap_or_default();
        let mut or = "";
        if !q.full.is_empty() {
            qb.push(or).push("estate_id IN ");
            in_list(&mut qb, &q.full);
            or = " OR ";
        }
        if !q.engineer.is_empty() {
            qb.push(or).push("(estate_id IN ");
            in_list(&mut qb, &q.engineer);
            qb.push(" AND (assignee_id = ")
                .push_bind(me.clone())
                .push(" OR state NOT IN ('closed', 'cancelled')))");
            or = " OR ";
        }
        if !q.reporter.is_empty() {
            qb.push(or).push("(estate_id IN ");
            in_list(&mut qb, &q.reporter);
            qb.push(" AND reporter_id = ")
                .push_bind(me.clone())
                .push(")");
            or = " OR ";
        }
        if or.is_empty() {
            qb.push("0");
        }
        qb.push(")");
        if let Some(s) = q.state {
            qb.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(g) = q.grade {
            qb.push(" AND grade = ").push_bind(g.as_str());
        }
        if let Some(c) = &q.category {
            qb.push(" AND category = ").push_bind(c.clone());
        }
        if let Some(z) = &q.zone {
            let cps: Vec<String> = z.checkpoints.iter().map(|c| c.to_string()).collect();
            qb.push(" AND (json_extract(ticket, '$.location.zone_id') = ")
                .push_bind(z.zone_id.to_string())
                .push(" OR json_extract(ticket, '$.location.checkpoint_id') IN (SELECT value FROM json_each(")
                .push_bind(serde_json::to_string(&cps).unwrap_or_else(|_| "[]".into()))
                .push(")))");
        }
        if let Some(a) = q.assignee {
            qb.push(" AND assignee_id = ").push_bind(id_str(a));
        }
        match q.overdue {
            Some(true) => {
                qb.push(" AND state NOT IN ('closed', 'cancelled') AND due_at < ")
                    .push_bind(q.now);
            }
            Some(false) => {
                qb.push(" AND (state IN ('closed', 'cancelled') OR due_at >= ")
                    .push_bind(q.now)
                    .push(")");
            }
            None => {}
        }
        if let Some(f) = q.from {
            qb.push(" AND reported_at >= ").push_bind(f);
        }
        if let Some(t) = q.to {
            qb.push(" AND reported_at < ").push_bind(t);
        }
        if let Some((at, id)) = q.before {
            qb.push(" AND (reported_at, id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id_str(id))
                .push(")");
        }
        qb.push(" ORDER BY reported_at DESC, id DESC LIMIT ")
            .push_bind(q.limit as i64)
            .push(") k ON k.id = h.id ORDER BY k.reported_at DESC, k.id DESC");
        let rows = qb
            .build_query_scalar::<String>()
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|s| ticket_from_json(s)).collect()
    }

    pub(super) async fn hz_summaries(
        &self,
        estate: EstateId,
        from: Option<i64>,
        to: Option<i64>,
    ) -> StoreResult<Vec<TicketSummary>> {
        let rows = sqlx::query(
            "SELECT id, state, grade, category, assignee_id, reported_at, due_at, closed_at, reopen_count
             FROM hazards WHERE estate_id = ? AND reported_at >= ? AND reported_at < ?",
        )
        .bind(id_str(estate))
        .bind(from.unwrap_or(i64::MIN))
        .bind(to.unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketSummary {
                    id: HazardId(parse_uuid(r.try_get::<&str, _>("id")?)?),
                    state: r
                        .try_get::<&str, _>("state")?
                        .parse()
                        .map_err(|_| bad("state"))?,
                    grade: r
                        .try_get::<&str, _>("grade")?
                        .parse()
                        .map_err(|_| bad("grade"))?,
                    category: r.try_get("category")?,
                    assignee: r
                        .try_get::<Option<String>, _>("assignee_id")?
                        .map(|s| parse_uuid(&s).map(UserId))
                        .transpose()?,
                    reported_at: r.try_get("reported_at")?,
                    due_at: r.try_get("due_at")?,
                    closed_at: r.try_get("closed_at")?,
                    reopen_count: r.try_get::<i64, _>("reopen_count")? as u32,
                })
            })
            .collect()
    }

    pub(super) async fn hz_held(
        &self,
        estate: EstateId,
        received_before: i64,
        limit: usize,
    ) -> StoreResult<Vec<HeldEvent>> {
        let rows = sqlx::query(
            "SELECT e.id, e.hazard_id, e.estate_id, json_extract(e.data, '$.action') AS action,
                    e.user_id, e.device_id, e.received_at
             FROM hazard_events e
             WHERE e.estate_id = ? AND e.received_at < ?
               AND NOT EXISTS (SELECT 1 FROM hazards h WHERE h.id = e.hazard_id)
             ORDER BY e.received_at, e.id LIMIT ?",
        )
        .bind(id_str(estate))
        .bind(received_before)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldEvent {
                    event_id: FactId(parse_uuid(r.try_get::<&str, _>("id")?)?),
                    hazard_id: HazardId(parse_uuid(r.try_get::<&str, _>("hazard_id")?)?),
                    estate_id: EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?),
                    action: r
                        .try_get::<Option<String>, _>("action")?
                        .unwrap_or_default(),
                    user_id: UserId(parse_uuid(r.try_get::<&str, _>("user_id")?)?),
                    device_id: DeviceId(parse_uuid(r.try_get::<&str, _>("device_id")?)?),
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn hz_open(&self) -> StoreResult<Vec<Ticket>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT json_set(ticket, '$.timeline', json('[]')) FROM hazards
             WHERE state NOT IN ('closed', 'cancelled') ORDER BY due_at",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|t| ticket_from_json(t)).collect()
    }

    pub(super) async fn hz_has_role(
        &self,
        user: UserId,
        estate: EstateId,
        role: Role,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM memberships m JOIN estates e ON e.id = m.estate_id
                            JOIN users u ON u.id = m.user_id
                            WHERE m.user_id = ? AND m.estate_id = ? AND m.role = ?
                              AND e.retired_at IS NULL AND u.disabled_at IS NULL)",
        )
        .bind(id_str(user))
        .bind(id_str(estate))
        .bind(role.as_str())
        .fetch_one(&self.reader)
        .await?)
    }

    pub(super) async fn al_raise(&self, alerts: &[NewAlert]) -> StoreResult<Vec<EstateId>> {
        if alerts.is_empty() {
            return Ok(vec![]);
        }
        // Most of a sweep's alerts were raised by an earlier sweep: find those with one read
        // and write (and number in the feed) only the new ones.
        let mut known: HashSet<String> = HashSet::new();
        for chunk in alerts.chunks(INSERT_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT dedupe_key FROM alerts WHERE dedupe_key IN ");
            in_list(
                &mut qb,
                &chunk.iter().map(|a| &a.dedupe_key).collect::<Vec<_>>(),
            );
            known.extend(
                qb.build_query_scalar::<String>()
                    .fetch_all(&self.reader)
                    .await?,
            );
        }
        let fresh: Vec<&NewAlert> = alerts
            .iter()
            .filter(|a| !known.contains(&a.dedupe_key))
            .collect();
        if fresh.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.begin().await?;
        let mut touched = Vec::new();
        for a in fresh {
            let seq = next_feed_seqs(&mut tx, 1).await?;
            let n = sqlx::query(
                "INSERT INTO alerts (id, estate_id, kind, subject_id, dedupe_key, target, recipient_id, raised_at, data, feed_txid, feed_seq)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(id_str(a.id))
            .bind(id_str(a.estate_id))
            .bind(&a.kind)
            .bind(&a.subject_id)
            .bind(&a.dedupe_key)
            .bind(&a.target)
            .bind(a.recipient_id.map(id_str))
            .bind(a.raised_at)
            .bind(a.data.to_string())
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                touched.push(a.estate_id);
            }
        }
        tx.commit().await?;
        touched.sort();
        touched.dedup();
        Ok(touched)
    }

    pub(super) async fn al_list(&self, q: &AlertQuery) -> StoreResult<Vec<Alert>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE estate_id = "
        ));
        qb.push_bind(id_str(q.estate));
        if let Some(r) = q.recipient {
            qb.push(" AND recipient_id = ").push_bind(id_str(r));
        }
        if q.open_only {
            qb.push(" AND closed_at IS NULL");
        }
        qb.push(" ORDER BY raised_at DESC, id DESC LIMIT ")
            .push_bind(q.limit as i64);
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(alert_from_row).collect()
    }

    pub(super) async fn al_get(&self, id: AlertId) -> StoreResult<Option<Alert>> {
        let r = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"))
            .bind(id_str(id))
            .fetch_optional(&self.reader)
            .await?;
        r.as_ref().map(alert_from_row).transpose()
    }

    pub(super) async fn al_close(
        &self,
        id: AlertId,
        by: UserId,
        comment: &str,
        now: i64,
    ) -> StoreResult<CloseAlert> {
        let mut tx = self.begin().await?;
        let seq = next_feed_seqs(&mut tx, 1).await?;
        let n = sqlx::query(
            "UPDATE alerts SET closed_at = ?, closed_by = ?, close_comment = ?, feed_seq = ?
             WHERE id = ? AND closed_at IS NULL",
        )
        .bind(now)
        .bind(id_str(by))
        .bind(comment)
        .bind(seq)
        .bind(id_str(id))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let r = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"))
            .bind(id_str(id))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(match r {
            None => CloseAlert::NotFound,
            Some(r) if n > 0 => CloseAlert::Closed(alert_from_row(&r)?),
            Some(r) => CloseAlert::AlreadyClosed(alert_from_row(&r)?),
        })
    }
}

/// Pull: hazard tickets and alerts in the caller's scope after `after`, at most `take`.
pub(super) async fn pull_hazards_and_alerts(
    conn: &mut sqlx::SqliteConnection,
    scope: &FeedScope,
    after: FeedPos,
    take: i64,
) -> StoreResult<Vec<FeedItem>> {
    let mut items = Vec::new();
    let me = id_str(scope.user_id);
    let engineer: Vec<EstateId> = scope.engineer.clone();
    let reporter: Vec<EstateId> = scope
        .own
        .iter()
        .filter(|e| !engineer.contains(e))
        .copied()
        .collect();
    // Hazards: overseers and engineers read every row of their estates (an engineer gets
    // those out of their view as deletes); others only what they reported.
    let wide: Vec<EstateId> = scope.full.iter().chain(engineer.iter()).copied().collect();
    if !wide.is_empty() || !reporter.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, estate_id, state, assignee_id, ticket, feed_txid, feed_seq FROM hazards WHERE (0",
        );
        if !wide.is_empty() {
            qb.push(" OR estate_id IN ");
            in_list(&mut qb, &wide);
        }
        if !reporter.is_empty() {
            qb.push(" OR (estate_id IN ");
            in_list(&mut qb, &reporter);
            qb.push(" AND reporter_id = ")
                .push_bind(me.clone())
                .push(")");
        }
        qb.push(") AND (feed_txid, feed_seq) > (")
            .push_bind(after.txid)
            .push(", ")
            .push_bind(after.seq)
            .push(") ORDER BY feed_txid, feed_seq LIMIT ")
            .push_bind(take);
        for r in qb.build().fetch_all(&mut *conn).await? {
            let estate = EstateId(parse_uuid(r.try_get::<&str, _>("estate_id")?)?);
            let open = !matches!(r.try_get::<&str, _>("state")?, "closed" | "cancelled");
            let mine = r.try_get::<Option<String>, _>("assignee_id")?.as_deref() == Some(&me);
            let visible = !engineer.contains(&estate) || open || mine;
            let id: String = r.try_get("id")?;
            items.push(FeedItem {
                pos: pos_from_row(&r)?,
                change: PullChange {
                    collection: "hazards".into(),
                    op: if visible {
                        ChangeOp::Put
                    } else {
                        ChangeOp::Delete
                    },
                    id,
                    data: if visible {
                        Some(
                            serde_json::from_str(r.try_get::<&str, _>("ticket")?)
                                .map_err(|_| bad("ticket"))?,
                        )
                    } else {
                        None
                    },
                },
            });
        }
    }
    let own = &scope.own;
    if !scope.full.is_empty() || !own.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ALERT_COLUMNS}, feed_txid, feed_seq FROM alerts WHERE (0"
        ));
        if !scope.full.is_empty() {
            qb.push(" OR estate_id IN ");
            in_list(&mut qb, &scope.full);
        }
        if !own.is_empty() {
            qb.push(" OR (estate_id IN ");
            in_list(&mut qb, own);
            qb.push(" AND recipient_id = ")
                .push_bind(me.clone())
                .push(")");
        }
        qb.push(") AND (feed_txid, feed_seq) > (")
            .push_bind(after.txid)
            .push(", ")
            .push_bind(after.seq)
            .push(") ORDER BY feed_txid, feed_seq LIMIT ")
            .push_bind(take);
        for r in qb.build().fetch_all(&mut *conn).await? {
            let a = alert_from_row(&r)?;
            items.push(FeedItem {
                pos: pos_from_row(&r)?,
                change: PullChange {
                    collection: "alerts".into(),
                    op: ChangeOp::Put,
                    id: a.id.to_string(),
                    data: Some(serde_json::to_value(&a).map_err(anyhow::Error::from)?),
                },
            });
        }
    }
    Ok(items)
}
