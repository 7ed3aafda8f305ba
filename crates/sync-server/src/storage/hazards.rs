//! Hazard tickets in storage, decided once for both backends: which tickets a push or an
//! online event touches, folding them (shared-core) inside the writing transaction, giving
//! each ticket its code once, and turning the fold's verdicts into push results.
//!
//! Each backend implements [`HazardTx`] on its open transaction: the SQL. Everything here
//! is the order of steps, so SQLite and PostgreSQL cannot decide differently.

use super::{FactStatus, HazardAttach, PreparedBatch, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::TimeZone;
use shared_core::hazard::{
    fold, report_rejection, ticket_code, Action, EventInput, EventStatus, HazardPolicy, Ticket,
};
use shared_core::wire::{ChangeStatus, RejectCode};
use shared_core::{EstateId, FactId, HazardId, Role};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A hazard event row to insert.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub input: EventInput,
    pub source: &'static str,
    pub received_at: i64,
    pub content_hash: String,
}

/// A photo-to-event link to insert.
#[derive(Clone, Debug)]
pub struct PhotoRow {
    pub id: FactId,
    pub event_id: FactId,
    pub role: shared_core::hazard::PhotoRole,
    pub sha256: String,
    pub received_at: i64,
}

/// A photo's metadata to record (the `photos` table): whose it is and what it shows.
#[derive(Clone, Debug)]
pub struct PhotoMetaRow {
    pub id: FactId,
    pub estate_id: EstateId,
    pub device_id: shared_core::DeviceId,
    pub user_id: shared_core::UserId,
    pub meta: crate::services::photos::PhotoMeta,
    pub received_at: i64,
}

/// The SQL a backend runs inside its write transaction.
#[async_trait]
pub trait HazardTx: Send {
    /// Serialises writers of the same tickets until commit (PostgreSQL: advisory locks in
    /// id order; SQLite: the one writer already does).
    async fn lock_hazards(&mut self, ids: &[HazardId]) -> StoreResult<()>;
    async fn insert_events(&mut self, rows: &[EventRow]) -> StoreResult<()>;
    async fn insert_photos(&mut self, rows: &[PhotoRow]) -> StoreResult<()>;
    /// Records photo metadata (ignoring ids already recorded).
    async fn insert_photo_meta(&mut self, rows: &[PhotoMetaRow]) -> StoreResult<()>;
    /// The hazards whose events have a photo with these bytes (lower-case hash).
    async fn hazards_of_photo(&mut self, sha256: &str) -> StoreResult<Vec<HazardId>>;
    /// The hazards of stored events (for photos that name an event).
    async fn hazards_of_events(&mut self, events: &[FactId]) -> StoreResult<Vec<HazardId>>;
    /// Every stored event of these hazards, with their photos.
    async fn load_events(&mut self, ids: &[HazardId]) -> StoreResult<Vec<EventInput>>;
    /// Stored content hash of an event, if the id is taken.
    async fn event_hash(&mut self, id: FactId) -> StoreResult<Option<String>>;
    async fn policy(&mut self, estate: EstateId) -> StoreResult<HazardPolicy>;
    async fn existing_codes(&mut self, ids: &[HazardId]) -> StoreResult<HashMap<HazardId, String>>;
    async fn estate_timezone(&mut self, estate: EstateId) -> StoreResult<String>;
    /// The next ticket number of the estate on `day` (YYYYMMDD), from 1.
    async fn next_code_number(&mut self, estate: EstateId, day: &str) -> StoreResult<u32>;
    /// Inserts or rewrites the ticket row, with a new feed position.
    async fn write_ticket(&mut self, t: &Ticket, now: i64) -> StoreResult<()>;
}

/// Refolds the given hazards from everything stored and writes their tickets. Hazards with
/// no accepted report are left unwritten (their events stay held). Returns the tickets.
pub async fn refresh(
    tx: &mut dyn HazardTx,
    ids: &[HazardId],
    now: i64,
) -> StoreResult<Vec<Ticket>> {
    Ok(refresh_judged(tx, ids, now).await?.0)
}

/// Reports the fold refused, of hazards left with no ticket: (event id, why).
type RefusedReports = Vec<(FactId, shared_core::validate::Rejection)>;

/// [`refresh`], also naming why each report of a hazard left without a ticket was refused
/// (a refused report leaves no timeline to read the verdict from).
async fn refresh_judged(
    tx: &mut dyn HazardTx,
    ids: &[HazardId],
    now: i64,
) -> StoreResult<(Vec<Ticket>, RefusedReports)> {
    let ids: Vec<HazardId> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok((vec![], vec![]));
    }
    tx.lock_hazards(&ids).await?;
    let events = tx.load_events(&ids).await?;
    let mut by_hazard: HashMap<HazardId, Vec<EventInput>> = HashMap::new();
    for e in events {
        by_hazard.entry(e.hazard_id).or_default().push(e);
    }
    let codes = tx.existing_codes(&ids).await?;
    let mut policies: HashMap<EstateId, HazardPolicy> = HashMap::new();
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for id in ids {
        let Some(evs) = by_hazard.get(&id) else {
            continue;
        };
        let estate = ticket_estate(evs);
        if let std::collections::hash_map::Entry::Vacant(slot) = policies.entry(estate) {
            slot.insert(tx.policy(estate).await?);
        }
        let Some(mut t) = fold(evs, &policies[&estate]) else {
            refused.extend(
                evs.iter()
                    .filter(|e| e.body.action() == Action::Report)
                    .filter_map(|e| Some((e.id, report_rejection(e, &policies[&estate])?))),
            );
            continue;
        };
        t.code = match codes.get(&id) {
            Some(c) => c.clone(),
            None => new_code(tx, t.estate_id, now).await?,
        };
        tx.write_ticket(&t, now).await?;
        out.push(t);
    }
    Ok((out, refused))
}

/// The estate whose policy folds a hazard: the earliest report's (the fold rejects events
/// from any other estate).
fn ticket_estate(evs: &[EventInput]) -> EstateId {
    evs.iter()
        .filter(|e| e.body.action() == Action::Report)
        .min_by_key(|e| e.order())
        .or_else(|| evs.iter().min_by_key(|e| e.order()))
        .map(|e| e.estate_id)
        .expect("a hazard with events")
}

async fn new_code(tx: &mut dyn HazardTx, estate: EstateId, now: i64) -> StoreResult<String> {
    let tz_name = tx.estate_timezone(estate).await?;
    let utc = chrono::Utc
        .timestamp_millis_opt(now)
        .single()
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("time out of range: {now}")))?;
    let date = match tz_name.parse::<chrono_tz::Tz>() {
        Ok(tz) => utc.with_timezone(&tz).date_naive(),
        Err(_) => utc.date_naive(),
    };
    let n = tx
        .next_code_number(estate, &date.format("%Y%m%d").to_string())
        .await?;
    Ok(ticket_code(date, n))
}

/// After a push's facts are inserted: records its hazard events and photo links, refolds
/// the tickets they touch, and marks each new event the fold rejects as `rejected` with the
/// fold's code (it stays stored, in its ticket's timeline). `new` are indexes into
/// `b.facts` of the facts this push inserted. Returns the estates whose tickets changed.
pub async fn after_push(
    tx: &mut dyn HazardTx,
    b: &PreparedBatch,
    new: &[usize],
    statuses: &mut [FactStatus],
) -> StoreResult<Vec<EstateId>> {
    let mut events = Vec::new();
    let mut photos = Vec::new();
    let metas: Vec<PhotoMetaRow> = new
        .iter()
        .map(|&i| &b.facts[i])
        .filter(|f| f.record.kind == shared_core::FactKind::Photo)
        .filter_map(|f| {
            Some(PhotoMetaRow {
                id: f.record.id,
                estate_id: f.record.estate_id,
                device_id: f.record.device_id,
                user_id: f.record.user_id,
                meta: crate::services::photos::read_meta(&f.record.data)?,
                received_at: b.received_at,
            })
        })
        .collect();
    if !metas.is_empty() {
        tx.insert_photo_meta(&metas).await?;
    }
    for &i in new {
        let f = &b.facts[i];
        match &f.hazard {
            Some(HazardAttach::Event { parsed, roles }) => events.push(EventRow {
                input: EventInput {
                    id: f.record.id,
                    hazard_id: parsed.hazard_id,
                    estate_id: f.record.estate_id,
                    hlc: f.record.hlc,
                    device_id: f.record.device_id,
                    actor: f.record.user_id,
                    roles: roles.clone(),
                    at: f.record.trusted_at.0,
                    body: parsed.body.clone(),
                    data: f.record.data.clone(),
                    photos: vec![],
                },
                source: "push",
                received_at: b.received_at,
                content_hash: f.content_hash.clone(),
            }),
            Some(HazardAttach::Photo {
                event_id,
                role,
                sha256,
            }) => photos.push(PhotoRow {
                id: f.record.id,
                event_id: *event_id,
                role: *role,
                sha256: sha256.clone(),
                received_at: b.received_at,
            }),
            None => {}
        }
    }
    if events.is_empty() && photos.is_empty() {
        return Ok(vec![]);
    }
    let mut ids: Vec<HazardId> = events.iter().map(|e| e.input.hazard_id).collect();
    if !events.is_empty() {
        tx.insert_events(&events).await?;
    }
    if !photos.is_empty() {
        tx.insert_photos(&photos).await?;
        let named: Vec<FactId> = photos.iter().map(|p| p.event_id).collect();
        ids.extend(tx.hazards_of_events(&named).await?);
    }
    let (tickets, refused) = refresh_judged(tx, &ids, b.received_at).await?;

    // Verdicts on this batch's events: from their tickets' timelines, and for reports that
    // opened no ticket, why (a report waiting for its photo is stored, and answered so).
    let by_hazard: HashMap<HazardId, &Ticket> = tickets.iter().map(|t| (t.id, t)).collect();
    let mut rejected: HashMap<FactId, (RejectCode, String)> = refused
        .into_iter()
        .map(|(id, r)| (id, (r.code, r.message)))
        .collect();
    rejected.extend(events.iter().filter_map(|e| {
        let t = by_hazard.get(&e.input.hazard_id)?;
        let entry = t.entry(e.input.id)?;
        (entry.status == EventStatus::Rejected).then(|| {
            (
                e.input.id,
                (
                    entry.code.unwrap_or(RejectCode::InvalidTransition),
                    entry.reason.clone().unwrap_or_default(),
                ),
            )
        })
    }));
    if !rejected.is_empty() {
        let index_of: HashMap<usize, FactId> =
            b.facts.iter().map(|f| (f.index, f.record.id)).collect();
        for (index, status, why) in statuses.iter_mut() {
            if *status != ChangeStatus::Accepted {
                continue;
            }
            if let Some(v) = index_of.get(index).and_then(|id| rejected.get(id)) {
                *status = ChangeStatus::Rejected;
                *why = Some(v.clone());
            }
        }
    }
    let touched: HashSet<EstateId> = tickets.iter().map(|t| t.estate_id).collect();
    Ok(touched.into_iter().collect())
}

/// After a photo's bytes are recorded: refolds the tickets that show it, so their timeline
/// says `received`. Returns the estates whose tickets changed.
pub async fn after_blob(
    tx: &mut dyn HazardTx,
    sha256: &str,
    now: i64,
) -> StoreResult<Vec<EstateId>> {
    let ids = tx.hazards_of_photo(sha256).await?;
    let tickets = refresh(tx, &ids, now).await?;
    let touched: BTreeSet<EstateId> = tickets.iter().map(|t| t.estate_id).collect();
    Ok(touched.into_iter().collect())
}

/// What an online event comes to: the outcome, and the ticket's estate to wake when stored.
pub async fn post_online(
    tx: &mut dyn HazardTx,
    ev: super::OnlineEvent,
) -> StoreResult<super::OnlineOutcome> {
    use super::OnlineOutcome;
    let id = ev.input.hazard_id;
    tx.lock_hazards(&[id]).await?;
    let existing = tx.load_events(&[id]).await?;
    let policy = tx
        .policy(if existing.is_empty() {
            ev.input.estate_id
        } else {
            ticket_estate(&existing)
        })
        .await?;
    if let Some(stored) = tx.event_hash(ev.input.id).await? {
        if stored != ev.content_hash {
            return Ok(OnlineOutcome::IdConflict);
        }
        return Ok(match current(tx, id).await? {
            Some(t) => OnlineOutcome::Duplicate(t),
            None => OnlineOutcome::UnknownHazard,
        });
    }
    let before = fold(&existing, &policy);
    if before.is_none() && ev.input.body.action() != Action::Report {
        return Ok(OnlineOutcome::UnknownHazard);
    }
    let mut all = existing;
    all.push(ev.input.clone());
    let after = fold(&all, &policy);
    let verdict = after
        .as_ref()
        .and_then(|t| t.entry(ev.input.id))
        .map(|e| (e.status, e.code, e.reason.clone()));
    match verdict {
        Some((EventStatus::Accepted, _, _)) => {}
        Some((EventStatus::Rejected, code, reason)) => {
            return Ok(OnlineOutcome::Rejected {
                code: code.unwrap_or(RejectCode::InvalidTransition),
                message: reason.unwrap_or_default(),
            })
        }
        None => {
            // A report the fold did not accept leaves no ticket (and no timeline): ask
            // why of the report itself.
            let why = report_rejection(&ev.input, &policy);
            return Ok(OnlineOutcome::Rejected {
                code: why
                    .as_ref()
                    .map_or(RejectCode::InvalidTransition, |r| r.code),
                message: why.map_or_else(|| "the report was not accepted".into(), |r| r.message),
            });
        }
    }
    let metas: Vec<PhotoMetaRow> = ev
        .input
        .photos
        .iter()
        .map(|p| PhotoMetaRow {
            id: p.id,
            estate_id: ev.input.estate_id,
            device_id: ev.input.device_id,
            user_id: ev.input.actor,
            meta: crate::services::photos::PhotoMeta {
                sha256: p.sha256.to_ascii_lowercase(),
                // Declared size and type of online photos are checked by the service, not
                // kept here: the upload is sniffed and hashed either way.
                bytes: None,
                mime: None,
                subject_kind: "hazard_event".into(),
                subject_id: ev.input.id.to_string(),
                role: p.role.as_str().into(),
            },
            received_at: ev.received_at,
        })
        .collect();
    let photos: Vec<PhotoRow> = ev
        .input
        .photos
        .iter()
        .map(|p| PhotoRow {
            id: p.id,
            event_id: ev.input.id,
            role: p.role,
            sha256: p.sha256.clone(),
            received_at: ev.received_at,
        })
        .collect();
    tx.insert_events(&[EventRow {
        input: ev.input,
        source: "online",
        received_at: ev.received_at,
        content_hash: ev.content_hash,
    }])
    .await?;
    if !photos.is_empty() {
        tx.insert_photos(&photos).await?;
        tx.insert_photo_meta(&metas).await?;
    }
    let mut tickets = refresh(tx, &[id], ev.received_at).await?;
    match tickets.pop() {
        Some(t) => Ok(OnlineOutcome::Stored(t)),
        None => Err(StoreError::Other(anyhow::anyhow!(
            "hazard {id}: accepted event left no ticket"
        ))),
    }
}

/// The ticket as stored events fold now (with its code), without writing it.
async fn current(tx: &mut dyn HazardTx, id: HazardId) -> StoreResult<Option<Ticket>> {
    let evs = tx.load_events(&[id]).await?;
    if evs.is_empty() {
        return Ok(None);
    }
    let policy = tx.policy(ticket_estate(&evs)).await?;
    let Some(mut t) = fold(&evs, &policy) else {
        return Ok(None);
    };
    t.code = tx
        .existing_codes(&[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Some(t))
}

/// Roles as stored: a comma-separated list.
pub fn roles_to_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn roles_from_text(s: &str) -> Vec<Role> {
    s.split(',').filter_map(|r| r.parse().ok()).collect()
}

/// Rebuilds a fold input from a stored row's parts.
pub fn event_from_parts(
    parts: EventParts,
    photos: Vec<shared_core::hazard::PhotoRef>,
) -> StoreResult<EventInput> {
    let parsed = shared_core::hazard::parse_event(&parts.data).map_err(|r| {
        StoreError::Other(anyhow::anyhow!(
            "stored hazard event {} no longer parses: {}",
            parts.id,
            r.message
        ))
    })?;
    Ok(EventInput {
        id: parts.id,
        hazard_id: parsed.hazard_id,
        estate_id: parts.estate_id,
        hlc: parts.hlc,
        device_id: parts.device_id,
        actor: parts.user_id,
        roles: roles_from_text(&parts.roles),
        at: parts.trusted_at,
        body: parsed.body,
        data: parts.data,
        photos,
    })
}

/// The columns of a stored hazard event.
pub struct EventParts {
    pub id: FactId,
    pub estate_id: EstateId,
    pub hlc: shared_core::Hlc,
    pub device_id: shared_core::DeviceId,
    pub user_id: shared_core::UserId,
    pub roles: String,
    pub trusted_at: i64,
    pub data: serde_json::Value,
}
