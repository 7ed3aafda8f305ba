//! Storage: one trait, a SQLite and a PostgreSQL implementation, one contract test suite
//! (`tests/store_contract.rs`) that both pass.
//!
//! The trait speaks the domain. What a change *means* (validation, trusted time, HLC
//! clamping) is decided above it, in `services`; the store makes it durable in one
//! transaction per batch and answers pulls in commit order.

pub mod hazards;
pub mod notify;
pub mod patrol;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde_json::Value;
use shared_core::hazard::{
    HazardPolicy, HazardState, ParsedEvent, PhotoRole, Ticket, TicketSummary,
};
use shared_core::patrol::{
    Excuse, RefChange, RefError, RefOp, ReferenceSet, RunEventData, RunEventObs, ScanData, ScanObs,
};
use shared_core::wire::{
    Alert, ChangeResult, ChangeStatus, EstateRecord, FactRecord, PullChange, PushResponse,
    QuarantineEntry, RejectCode,
};
use shared_core::{AlertId, BatchId, DeviceId, EstateId, FactId, HazardId, Role, UserId};
use std::sync::Arc;
use uuid::Uuid;

pub use notify::ChangeHub;

pub type DynStore = Arc<dyn Store>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            // The database is there but cannot serve now: PostgreSQL connection exceptions
            // (08…), insufficient resources (53…), shutting down or starting up (57P…);
            // SQLite busy or locked past the busy timeout (5, 6).
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08")
                        || c.starts_with("53")
                        || c.starts_with("57P")
                        || c == "5"
                        || c == "6"
                }) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.into()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

// ---------------------------------------------------------------- users and sessions

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub name: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// One role of one member of an estate.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRow {
    pub user_id: UserId,
    pub username: String,
    pub name: String,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub estate: EstateRecord,
    pub role: Role,
    /// A retired estate stays in the member's pull scope, so its tombstone reaches the
    /// handset; nothing new can be pushed into it.
    pub retired: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceUpsert {
    pub id: DeviceId,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub app_version: Option<String>,
    pub user_id: UserId,
    pub now: i64,
}

/// A device's sync health, as managers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub app_version: Option<String>,
    pub last_user_id: Option<UserId>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub acked_through_seq: u64,
    pub max_seq: u64,
    /// Seqs held above the acknowledged prefix, i.e. delivered past a gap.
    pub held_above_ack: u64,
    pub last_clock_offset_ms: Option<i64>,
    pub revoked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionId(pub Uuid);

#[derive(Clone, Debug, PartialEq)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// sha256 of the opaque refresh token: the token itself is never stored.
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
    pub now: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActiveSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub device_id: DeviceId,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RotateOutcome {
    /// The token was current: it is now used, and `new_hash` is the session's token.
    Rotated(ActiveSession),
    /// The token had already been rotated: someone replayed it, so the session is revoked.
    Reused(SessionId),
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

// ---------------------------------------------------------------- push

/// A fact ready to store: validated and annotated by the service.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedFact {
    /// Position in the batch.
    pub index: usize,
    pub record: FactRecord,
    pub content_hash: String,
    /// What the fact means for a hazard ticket, read by the service.
    pub hazard: Option<HazardAttach>,
    /// What a `scan` or `run_event` means for patrol coverage, read by the service.
    pub patrol: Option<PatrolAttach>,
}

/// A fact that patrol coverage reads: stored beside the fact (tables `scans`, `run_events`)
/// when the fact is first inserted.
#[derive(Clone, Debug, PartialEq)]
pub enum PatrolAttach {
    /// A scan; its tag is resolved to a checkpoint by the estate's tags as they stand (and
    /// again whenever a tag is added, moved or removed).
    Scan(ScanData),
    RunEvent(RunEventData),
}

/// A fact that feeds a hazard ticket's fold.
#[derive(Clone, Debug, PartialEq)]
pub enum HazardAttach {
    /// A `hazard_event`, with the pusher's roles in its estate.
    Event {
        parsed: Box<ParsedEvent>,
        roles: Vec<Role>,
    },
    /// A `photo` whose subject is a hazard event: evidence for it.
    Photo {
        event_id: FactId,
        role: PhotoRole,
        sha256: String,
    },
}

/// A change refused before reaching the store; it is quarantined with the batch.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedRejection {
    pub index: usize,
    pub change_id: Option<String>,
    /// Its `seq`, when that was readable: a quarantined change counts as held for the ack.
    pub seq: Option<u64>,
    pub code: RejectCode,
    pub message: String,
    pub raw: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PreparedBatch {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub batch_id: BatchId,
    pub received_at: i64,
    /// Server clock minus handset clock on this batch.
    pub clock_offset_ms: i64,
    /// Number of changes in the batch (facts + rejections).
    pub len: usize,
    pub facts: Vec<PreparedFact>,
    pub rejections: Vec<PreparedRejection>,
    /// The raw JSON of each fact in `facts`, by index, for quarantining an `id_conflict`.
    pub raw_by_index: Vec<Option<Value>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PushOutcome {
    /// First time this batch id was seen from this device: stored, with this answer.
    Stored {
        response: PushResponse,
        /// Estates that received new facts (to wake long-polls).
        touched: Vec<EstateId>,
    },
    /// The batch id was already answered: the first answer, unchanged.
    Replayed(PushResponse),
}

/// How the store settled one fact: its index in the batch, status, and why if refused.
pub type FactStatus = (usize, ChangeStatus, Option<(RejectCode, String)>);

/// Builds the answer of a batch from the statuses the store decided. Shared by both
/// backends so they cannot disagree on its shape.
pub fn build_push_response(
    batch: &PreparedBatch,
    fact_status: &[FactStatus],
    acked_through_seq: u64,
) -> PushResponse {
    let mut results: Vec<Option<ChangeResult>> = vec![None; batch.len];
    for r in &batch.rejections {
        results[r.index] = Some(ChangeResult {
            index: r.index,
            id: r.change_id.clone(),
            status: ChangeStatus::Rejected,
            code: Some(r.code),
            message: Some(r.message.clone()),
        });
    }
    for (index, status, why) in fact_status {
        let id = batch
            .facts
            .iter()
            .find(|f| f.index == *index)
            .map(|f| f.record.id.to_string());
        results[*index] = Some(ChangeResult {
            index: *index,
            id,
            status: *status,
            code: why.as_ref().map(|w| w.0),
            message: why.as_ref().map(|w| w.1.clone()),
        });
    }
    PushResponse {
        batch_id: batch.batch_id,
        results: results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or(ChangeResult {
                    index: i,
                    id: None,
                    status: ChangeStatus::Rejected,
                    code: Some(RejectCode::NotAnObject),
                    message: Some("change was not processed".into()),
                })
            })
            .collect(),
        acked_through_seq,
        photos_missing: vec![],
        hlc: Default::default(),
    }
}

/// Shared steps of `apply_push`, so both backends decide the same way.
pub mod push_rules {
    use super::*;
    use shared_core::Flag;
    use std::collections::{HashMap, HashSet};

    /// Marks `seq_reused` on facts whose seq the device already used: at or below its ack,
    /// held above it, or used by an earlier fact with another id in this batch.
    pub fn mark_reused_seqs(facts: &mut [PreparedFact], acked: u64, held: &HashSet<u64>) {
        let mut used: HashMap<u64, shared_core::FactId> = HashMap::new();
        for f in facts.iter_mut() {
            let seq = f.record.seq;
            let earlier_other = used.get(&seq).is_some_and(|id| *id != f.record.id);
            if (seq <= acked || held.contains(&seq) || earlier_other)
                && !f.record.flags.contains(&Flag::SeqReused)
            {
                f.record.flags.push(Flag::SeqReused);
                f.record.flags.sort();
            }
            used.entry(seq).or_insert(f.record.id);
        }
    }

    /// Indexes (into `facts`) of the first fact with each id; later repeats of an id in the
    /// same batch are settled against the first, like any re-send.
    pub fn first_occurrences(facts: &[PreparedFact]) -> Vec<usize> {
        let mut seen = HashSet::new();
        (0..facts.len())
            .filter(|i| seen.insert(facts[*i].record.id))
            .collect()
    }

    /// What the store decided for each fact of a batch, once it knows which ids it inserted.
    pub struct Settled {
        /// One entry per fact, by batch index.
        pub statuses: Vec<FactStatus>,
        /// Facts refused for an id conflict, to quarantine beside the batch's rejections.
        pub conflicts: Vec<PreparedRejection>,
        /// Seqs this batch makes held: new facts, conflicts and rejections with a seq.
        pub held_now: Vec<u64>,
        /// Estates that received new facts.
        pub touched: Vec<EstateId>,
    }

    /// Settles every fact: accepted when this batch inserted it (first occurrence), else a
    /// duplicate or an id conflict by the stored content hash.
    pub fn settle_batch(
        b: &PreparedBatch,
        inserted: &HashSet<shared_core::FactId>,
        first_set: &HashSet<usize>,
        stored_hash: &HashMap<shared_core::FactId, String>,
    ) -> Settled {
        let mut out = Settled {
            statuses: Vec::with_capacity(b.facts.len()),
            conflicts: Vec::new(),
            held_now: Vec::new(),
            touched: Vec::new(),
        };
        for (i, f) in b.facts.iter().enumerate() {
            let (status, why) = if inserted.contains(&f.record.id) && first_set.contains(&i) {
                out.touched.push(f.record.estate_id);
                (ChangeStatus::Accepted, None)
            } else {
                settle_existing(f, stored_hash.get(&f.record.id).map(String::as_str))
            };
            if status != ChangeStatus::Duplicate {
                out.held_now.push(f.record.seq);
            }
            if let Some((code, msg)) = &why {
                out.conflicts.push(PreparedRejection {
                    index: f.index,
                    change_id: Some(f.record.id.to_string()),
                    seq: Some(f.record.seq),
                    code: *code,
                    message: msg.clone(),
                    raw: b
                        .raw_by_index
                        .get(f.index)
                        .cloned()
                        .flatten()
                        .unwrap_or(Value::Null),
                });
            }
            out.statuses.push((f.index, status, why));
        }
        out.held_now
            .extend(b.rejections.iter().filter_map(|r| r.seq));
        out.touched.sort();
        out.touched.dedup();
        out
    }

    /// How a push moves the device's acknowledged prefix.
    #[derive(Debug, PartialEq, Eq)]
    pub struct AckPlan {
        pub new_ack: u64,
        /// Seqs held past a gap, to remember in `device_seqs` (not already there).
        pub remember: Vec<u64>,
        /// Forget remembered seqs up to here: the prefix has caught up with them.
        pub forget_through: Option<u64>,
    }

    /// Plans the ack from the seqs this push makes held and every seq already remembered
    /// above the old ack (normally none: only a gap leaves any). In the usual in-order case
    /// nothing is written to `device_seqs` at all.
    pub fn plan_ack(acked: u64, held_now: &[u64], stored_above: &[u64]) -> AckPlan {
        let mut all: std::collections::BTreeSet<u64> = stored_above.iter().copied().collect();
        all.extend(held_now.iter().copied().filter(|s| *s > acked));
        let new_ack = advance_ack(acked, all.iter().copied());
        let stored: HashSet<u64> = stored_above.iter().copied().collect();
        let mut remember: Vec<u64> = held_now
            .iter()
            .copied()
            .filter(|s| *s > new_ack && !stored.contains(s))
            .collect();
        remember.sort_unstable();
        remember.dedup();
        let forget_through = stored_above
            .iter()
            .any(|s| *s <= new_ack)
            .then_some(new_ack);
        AckPlan {
            new_ack,
            remember,
            forget_through,
        }
    }

    /// A fact that was not inserted: the same content is a duplicate, other content under
    /// the same id is refused.
    pub fn settle_existing(
        f: &PreparedFact,
        stored_hash: Option<&str>,
    ) -> (ChangeStatus, Option<(RejectCode, String)>) {
        match stored_hash {
            Some(h) if h == f.content_hash => (ChangeStatus::Duplicate, None),
            _ => (
                ChangeStatus::Rejected,
                Some((
                    RejectCode::IdConflict,
                    format!(
                        "id: {} is already stored with different content; a fact is never changed, send a new fact with a new id",
                        f.record.id
                    ),
                )),
            ),
        }
    }
}

/// Walks the held seqs above `acked` (sorted ascending) and returns the new ack.
pub fn advance_ack(acked: u64, held_sorted: impl IntoIterator<Item = u64>) -> u64 {
    let mut ack = acked;
    for s in held_sorted {
        if s == ack + 1 {
            ack = s;
        } else if s > ack + 1 {
            break;
        }
    }
    ack
}

// ---------------------------------------------------------------- pull

/// A position in the change feed. On PostgreSQL `txid` is the writing transaction's id, so
/// the feed can be read in an order no later commit can insert itself before (see
/// docs/PROTOCOL.md, "Pull never skips"); on SQLite writes are serial and `txid` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPos {
    pub txid: i64,
    pub seq: i64,
}

/// Which part of the feed a caller may read.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedScope {
    pub user_id: UserId,
    /// Estates where every fact is visible (supervisor, manager, admin).
    pub full: Vec<EstateId>,
    /// Estates where only reference data and the caller's own facts are visible.
    pub own: Vec<EstateId>,
    /// Those of `own` where the caller is an engineer: hazard tickets assigned to them or
    /// open come as puts, the others as deletes (a ticket that leaves their view goes from
    /// the handset). Elsewhere in `own`, only tickets the caller reported.
    pub engineer: Vec<EstateId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    pub pos: FeedPos,
    pub change: PullChange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// More rows exist past the last item (possibly held back, see `held_back`).
    pub has_more: bool,
    /// Rows exist that are committed but not yet safe to hand out, because an older
    /// transaction is still open: the caller should look again shortly.
    pub held_back: bool,
}

// ---------------------------------------------------------------- hazards and alerts

/// A hazard event posted online (`POST /v1/hazards/{id}/events`): validated like a pushed
/// one, folded at once, stored only if the fold accepts it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineEvent {
    pub input: shared_core::hazard::EventInput,
    pub content_hash: String,
    pub received_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OnlineOutcome {
    /// Stored; the ticket after it.
    Stored(Ticket),
    /// This event id was already stored with the same content: the ticket as it is.
    Duplicate(Ticket),
    /// The fold refuses the event here and now; nothing was stored.
    Rejected { code: RejectCode, message: String },
    /// No ticket: the hazard was never reported (and the event is not a report).
    UnknownHazard,
    /// The event id is taken by other content.
    IdConflict,
}

/// Filters of the tracker list. Scope first (what the caller may see), then the filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HazardQuery {
    /// Estates where the caller sees every ticket.
    pub full: Vec<EstateId>,
    /// Estates where the caller (an engineer) sees tickets assigned to them and open ones.
    pub engineer: Vec<EstateId>,
    /// Estates where the caller sees only the tickets they reported.
    pub reporter: Vec<EstateId>,
    pub user_id: Option<UserId>,
    pub state: Option<HazardState>,
    pub grade: Option<shared_core::hazard::Grade>,
    pub category: Option<String>,
    pub assignee: Option<UserId>,
    /// Only tickets located in this zone: the zone named in their location, or a checkpoint
    /// of it (its ids listed here, from the estates' reference data).
    pub zone: Option<ZoneFilter>,
    /// Some(true): only overdue at `now`; Some(false): only not overdue.
    pub overdue: Option<bool>,
    pub now: i64,
    /// Reported at or after (epoch ms).
    pub from: Option<i64>,
    /// Reported before (epoch ms).
    pub to: Option<i64>,
    /// Keyset paging: tickets strictly before this (reported_at, id), newest first.
    pub before: Option<(i64, HazardId)>,
    pub limit: usize,
}

/// Tickets located in a zone: `location.zone_id` is the zone, or `location.checkpoint_id`
/// one of its checkpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZoneFilter {
    pub zone_id: uuid::Uuid,
    pub checkpoints: Vec<uuid::Uuid>,
}

/// A hazard event stored without a report yet (its report may still be on another handset).
#[derive(Clone, Debug, PartialEq)]
pub struct HeldEvent {
    pub event_id: FactId,
    pub hazard_id: HazardId,
    pub estate_id: EstateId,
    pub action: String,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub received_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub id: AlertId,
    pub estate_id: EstateId,
    pub kind: String,
    pub subject_id: String,
    /// Raising the same key again is a no-op.
    pub dedupe_key: String,
    pub target: String,
    pub recipient_id: Option<UserId>,
    pub raised_at: i64,
    pub data: Value,
}

/// Which alerts to list.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertQuery {
    pub estate: EstateId,
    /// Only alerts addressed to this user (guards and engineers); None: all of the estate.
    pub recipient: Option<UserId>,
    pub open_only: bool,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CloseAlert {
    Closed(Alert),
    AlreadyClosed(Alert),
    NotFound,
}

// ---------------------------------------------------------------- photos

/// A recorded photo fact: its metadata and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoRecord {
    pub id: FactId,
    pub estate_id: EstateId,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub sha256: String,
    pub bytes: Option<u64>,
    pub mime: Option<String>,
    pub subject_kind: String,
    pub subject_id: String,
    pub role: String,
    pub received_at: i64,
}

/// Bytes the blob store holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    pub sha256: String,
    pub bytes: u64,
    pub mime: String,
    pub stored_at: i64,
}

/// Which photos without bytes to list: of an estate, of a device, or both.
#[derive(Clone, Debug, Default)]
pub struct MissingQuery {
    pub estate: Option<EstateId>,
    pub device: Option<DeviceId>,
}

// ---------------------------------------------------------------- patrol

/// The answer of [`Store::apply_reference`]: the changes written, or every reason the
/// operations were refused (nothing written).
pub type RefOutcome = Result<Vec<RefChange>, Vec<RefError>>;

// ---------------------------------------------------------------- the trait

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;

    /// Is the database reachable?
    async fn ping(&self) -> StoreResult<()>;

    // estates and users
    async fn create_estate(
        &self,
        name: &str,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord>;
    /// Retires an estate: it leaves every feed as a `delete` tombstone.
    async fn retire_estate(&self, id: EstateId, now: i64) -> StoreResult<()>;
    async fn list_estates(&self) -> StoreResult<Vec<EstateRecord>>;
    async fn create_user(&self, user: NewUser, now: i64) -> StoreResult<UserId>;
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>>;
    async fn find_user(&self, id: UserId) -> StoreResult<Option<UserRow>>;
    async fn add_membership(&self, user: UserId, estate: EstateId, role: Role) -> StoreResult<()>;
    /// The user's roles in every estate, retired ones marked.
    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>>;
    /// The estate's members who are not disabled, one row per role, by name.
    async fn list_members(&self, estate: EstateId) -> StoreResult<Vec<MemberRow>>;

    // devices and sessions
    async fn upsert_device(&self, d: DeviceUpsert) -> StoreResult<()>;
    async fn get_device(&self, id: DeviceId) -> StoreResult<Option<DeviceRow>>;
    /// Devices last used by a member of the estate, most recently seen first.
    async fn list_devices(&self, estate: EstateId) -> StoreResult<Vec<DeviceRow>>;
    async fn create_session(&self, s: NewSession) -> StoreResult<()>;
    /// Exchanges a refresh token for a new one, in one transaction.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
    ) -> StoreResult<RotateOutcome>;
    /// The session, if it is neither revoked nor on a revoked device.
    async fn active_session(&self, id: SessionId) -> StoreResult<Option<ActiveSession>>;
    /// The live session and its user's memberships, in one query: what every
    /// authenticated request needs.
    async fn session_context(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(ActiveSession, Vec<Membership>)>>;
    async fn revoke_session(&self, id: SessionId, reason: &str, now: i64) -> StoreResult<()>;
    /// Marks the device revoked (the first time only) and ends its sessions: its tokens stop
    /// working at once and it cannot sign in again. False when there is no such device.
    async fn revoke_device(&self, id: DeviceId, now: i64) -> StoreResult<bool>;

    // sync
    /// Stores a batch in one transaction, or returns the first answer to the same batch id.
    async fn apply_push(&self, batch: PreparedBatch) -> StoreResult<PushOutcome>;
    /// The answer stored for this device's batch id, if that batch was stored: a replay is
    /// answered from it without checking the batch again or taking a write lock.
    async fn push_answer(
        &self,
        device: DeviceId,
        batch: BatchId,
    ) -> StoreResult<Option<PushResponse>>;
    /// Reads the feed after `after`, in commit order, at most `limit` items.
    async fn pull(&self, scope: &FeedScope, after: FeedPos, limit: usize) -> StoreResult<FeedPage>;
    /// Cursors before this position are too old: tombstones they have not seen are gone.
    async fn feed_floor(&self) -> StoreResult<FeedPos>;
    /// Removes tombstones changed before `before` and raises the feed floor past them.
    async fn prune_tombstones(&self, before: i64) -> StoreResult<u64>;
    /// Facts by id (for tests and tools).
    async fn get_fact(&self, id: shared_core::FactId) -> StoreResult<Option<FactRecord>>;
    async fn count_facts(&self) -> StoreResult<u64>;

    /// Quarantined changes pushed by members of `estates`, newest first, ids below `before`.
    async fn list_quarantine(
        &self,
        estates: &[EstateId],
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<QuarantineEntry>>;

    // hazards
    /// The estate's hazard policy (the default when none was set).
    async fn hazard_policy(&self, estate: EstateId) -> StoreResult<HazardPolicy>;
    async fn set_hazard_policy(
        &self,
        estate: EstateId,
        policy: &HazardPolicy,
        now: i64,
    ) -> StoreResult<()>;
    /// Folds an online event in at its place and stores it only if accepted.
    async fn post_hazard_event(&self, ev: OnlineEvent) -> StoreResult<OnlineOutcome>;
    async fn get_hazard(&self, id: HazardId) -> StoreResult<Option<Ticket>>;
    /// Tickets newest first, without their timelines.
    async fn list_hazards(&self, q: &HazardQuery) -> StoreResult<Vec<Ticket>>;
    /// What the statistics need, for tickets reported in [from, to).
    async fn hazard_summaries(
        &self,
        estate: EstateId,
        from: Option<i64>,
        to: Option<i64>,
    ) -> StoreResult<Vec<TicketSummary>>;
    /// Events with no report, received before `received_before`, oldest first.
    async fn held_hazard_events(
        &self,
        estate: EstateId,
        received_before: i64,
        limit: usize,
    ) -> StoreResult<Vec<HeldEvent>>;
    /// Every open ticket (for escalation), without timelines.
    async fn open_hazards(&self) -> StoreResult<Vec<Ticket>>;
    /// Does the user hold `role` in the (active) estate?
    async fn has_role(&self, user: UserId, estate: EstateId, role: Role) -> StoreResult<bool>;

    /// The ticket a stored hazard event belongs to (held events too: the ticket may not
    /// exist yet).
    async fn hazard_of_event(&self, event: FactId) -> StoreResult<Option<HazardId>>;
    /// Every recorded photo fact with this hash (lower-case hex).
    async fn photos_by_sha(&self, sha256: &str) -> StoreResult<Vec<PhotoRecord>>;
    /// The bytes held for this hash, if any.
    async fn photo_blob(&self, sha256: &str) -> StoreResult<Option<BlobRecord>>;
    /// Records that the blob store holds these bytes and refolds the hazard tickets whose
    /// timeline shows the photo (now `received`). `None` when the bytes were already held;
    /// else the estates whose tickets changed.
    async fn record_photo_blob(&self, b: &BlobRecord) -> StoreResult<Option<Vec<EstateId>>>;
    /// Photo facts whose bytes are not held, oldest first.
    async fn photos_missing(&self, q: &MissingQuery) -> StoreResult<Vec<PhotoRecord>>;
    /// The photo facts of `estate` whose subject is one of `ids` of `kind` (`scan`,
    /// `hazard_event`, `finding`), by subject, then as received.
    async fn photos_of_subjects(
        &self,
        estate: EstateId,
        kind: &str,
        ids: &[String],
    ) -> StoreResult<Vec<PhotoRecord>>;

    // patrol
    /// The estate's reference data as it stands (NotFound for an unknown estate).
    async fn reference(&self, estate: EstateId) -> StoreResult<ReferenceSet>;
    /// Applies reference operations in one transaction, checked with
    /// `shared_core::patrol::reference::apply` against the data as it stands inside that
    /// transaction (so two admins cannot interleave): writes each entity to `ref_changes`
    /// (pull carries it; a delete is a tombstone), keeps `checkpoint_tags` in step, and
    /// re-resolves stored scans whose tag was added, moved or removed.
    async fn apply_reference(
        &self,
        estate: EstateId,
        ops: Vec<RefOp>,
        now: i64,
    ) -> StoreResult<RefOutcome>;
    /// Changes the estate's time zone (an `estates` put in the feed).
    async fn set_estate_timezone(
        &self,
        estate: EstateId,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord>;
    /// Scans of the estate with trusted time in `[from, to)`, by trusted time.
    async fn scans_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<ScanObs>>;
    /// Run events of the estate with trusted time in `[from, to)`.
    async fn run_events_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<RunEventObs>>;
    /// Excuses of slots of the estate starting in `[from, to)`.
    async fn excuses_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Excuse>>;
    /// Records an excuse; `false` (and nothing changed) when the slot was already excused.
    async fn put_excuse(&self, estate: EstateId, excuse: &Excuse) -> StoreResult<bool>;
    /// Active estates with at least one patrol rule (for the missed-visit sweeper).
    async fn patrol_estates(&self) -> StoreResult<Vec<EstateId>>;

    // alerts
    /// Inserts alerts whose dedupe key is new; returns the estates that got any.
    async fn raise_alerts(&self, alerts: &[NewAlert]) -> StoreResult<Vec<EstateId>>;
    /// Newest first.
    async fn list_alerts(&self, q: &AlertQuery) -> StoreResult<Vec<Alert>>;
    async fn get_alert(&self, id: AlertId) -> StoreResult<Option<Alert>>;
    async fn close_alert(
        &self,
        id: AlertId,
        by: UserId,
        comment: &str,
        now: i64,
    ) -> StoreResult<CloseAlert>;

    /// Forwards change notifications from other server instances into `hub` (PostgreSQL
    /// `LISTEN`); a no-op where there is only one instance.
    async fn start_listener(&self, _hub: ChangeHub) -> StoreResult<()> {
        Ok(())
    }
}

/// Opens the store named by the URL's scheme (`sqlite:` or `postgres:`).
pub async fn connect(url: &str) -> anyhow::Result<DynStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        postgres::connect(url).await
    } else {
        anyhow::bail!("unsupported database URL {url:?}: use sqlite://FILE or postgres://…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_pushes_touch_nothing_but_the_ack() {
        let plan = push_rules::plan_ack(10, &[11, 12, 13], &[]);
        assert_eq!(
            plan,
            push_rules::AckPlan {
                new_ack: 13,
                remember: vec![],
                forget_through: None
            }
        );
    }

    #[test]
    fn a_gap_is_remembered_and_forgotten_when_filled() {
        // 11 and 14 arrive: 14 is held past the gap at 12, 13.
        let p = push_rules::plan_ack(10, &[11, 14], &[]);
        assert_eq!(
            (p.new_ack, p.remember.clone(), p.forget_through),
            (11, vec![14], None)
        );
        // 12 and 13 arrive: the prefix runs through the remembered 14, which is forgotten.
        let p = push_rules::plan_ack(11, &[13, 12], &[14]);
        assert_eq!(
            (p.new_ack, p.remember.clone(), p.forget_through),
            (14, vec![], Some(14))
        );
        // Only 13 arrives: still a gap at 12; 13 is remembered beside 14.
        let p = push_rules::plan_ack(11, &[13], &[14]);
        assert_eq!(
            (p.new_ack, p.remember.clone(), p.forget_through),
            (11, vec![13], None)
        );
        // A seq at or below the ack (a reused seq) changes nothing.
        let p = push_rules::plan_ack(11, &[5, 11], &[14]);
        assert_eq!(
            (p.new_ack, p.remember.clone(), p.forget_through),
            (11, vec![], None)
        );
    }

    #[test]
    fn ack_stops_at_the_first_gap() {
        assert_eq!(advance_ack(0, [1, 2, 3, 5, 6]), 3);
        assert_eq!(advance_ack(3, [5, 6]), 3);
        assert_eq!(advance_ack(3, [4, 5, 6]), 6);
        assert_eq!(advance_ack(0, []), 0);
        assert_eq!(advance_ack(2, [1, 2, 3]), 3);
    }
}
