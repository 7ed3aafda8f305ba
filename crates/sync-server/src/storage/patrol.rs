//! Patrol coverage in the store, decided once for both backends: applying reference
//! operations (checked by shared-core inside the writing transaction), keeping the tag map
//! and the scans' resolved checkpoints in step, and recording the scans and run events a
//! push inserts.
//!
//! Each backend implements [`PatrolTx`] on its open write transaction: the SQL
//! (`sqlite_patrol.rs`, `postgres_patrol.rs`). Everything here is the order of steps, so
//! SQLite and PostgreSQL cannot decide differently.

use super::{PatrolAttach, PreparedBatch, RefOutcome, StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value;
use shared_core::patrol::{
    Checkpoint, RefChange, RefCollection, RefError, RefOp, ReferenceSet, Route, Rule, RunEventData,
    ScanData, Zone,
};
use shared_core::wire::FactRecord;
use shared_core::{CheckpointId, ClockTrust, EstateId, Flag};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The estate as a reference write needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstateRow {
    pub timezone: String,
    pub retired: bool,
}

/// A scan to record beside its fact.
#[derive(Clone, Copy, Debug)]
pub struct ScanRow<'a> {
    pub record: &'a FactRecord,
    pub scan: &'a ScanData,
}

impl ScanRow<'_> {
    pub fn verified(&self) -> bool {
        self.record.clock_trust == ClockTrust::Verified
    }
    pub fn clock_skew(&self) -> bool {
        self.record.flags.contains(&Flag::ClockSkew)
    }
}

/// A run event to record beside its fact.
#[derive(Clone, Copy, Debug)]
pub struct RunEventRow<'a> {
    pub record: &'a FactRecord,
    pub event: &'a RunEventData,
}

/// The patrol SQL a backend runs inside its write transaction.
#[async_trait]
pub trait PatrolTx: Send {
    /// Serialises reference writers of the estate until commit, and holds off scans being
    /// recorded in it meanwhile (PostgreSQL: an exclusive advisory lock; SQLite: the one
    /// writer already does).
    async fn lock_estate(&mut self, estate: EstateId) -> StoreResult<()>;
    /// Lets scans of these estates be recorded alongside each other, but not while a
    /// reference write re-resolves them (PostgreSQL: shared advisory locks, in id order).
    async fn lock_estates_shared(&mut self, estates: &[EstateId]) -> StoreResult<()>;
    async fn estate(&mut self, estate: EstateId) -> StoreResult<Option<EstateRow>>;
    /// `(collection, data)` of every live (`put`) zone, checkpoint, route and rule of the
    /// estate, by collection then id.
    async fn reference_rows(&mut self, estate: EstateId) -> StoreResult<Vec<(String, Value)>>;
    /// Of these entities, those stored under another estate.
    async fn owned_elsewhere(
        &mut self,
        estate: EstateId,
        ids: &[(RefCollection, Uuid)],
    ) -> StoreResult<Vec<(RefCollection, Uuid)>>;
    /// Writes each change to `ref_changes` (upsert; a delete is a tombstone), each at a new
    /// feed position. A row of another estate under the same collection and id is left as
    /// it is.
    async fn write_ref_changes(
        &mut self,
        estate: EstateId,
        changes: &[RefChange],
        now: i64,
    ) -> StoreResult<()>;
    /// Drops these tag keys from the estate's tag map, then maps the given ones.
    async fn set_tags(
        &mut self,
        estate: EstateId,
        remove: &[String],
        insert: &[(String, CheckpointId)],
    ) -> StoreResult<()>;
    /// Resolves the stored scans of these tag keys again, by the tag map as it stands.
    async fn reresolve_scans(&mut self, estate: EstateId, keys: &[String]) -> StoreResult<()>;
    /// Records scans, resolving each tag by the tag map as it stands.
    async fn insert_scans(&mut self, rows: &[ScanRow<'_>]) -> StoreResult<()>;
    async fn insert_run_events(&mut self, rows: &[RunEventRow<'_>]) -> StoreResult<()>;
}

/// Builds the estate's reference set from its stored rows.
pub fn reference_from_rows(
    estate: EstateId,
    timezone: String,
    rows: impl IntoIterator<Item = (String, Value)>,
) -> StoreResult<ReferenceSet> {
    let mut set = ReferenceSet::empty(estate, timezone);
    for (collection, data) in rows {
        let unreadable = |e: serde_json::Error| {
            StoreError::Other(anyhow::anyhow!(
                "unreadable {collection} entity of estate {estate} in database: {e}"
            ))
        };
        match collection.parse::<RefCollection>() {
            Ok(RefCollection::Zones) => set
                .zones
                .push(serde_json::from_value::<Zone>(data).map_err(unreadable)?),
            Ok(RefCollection::Checkpoints) => set
                .checkpoints
                .push(serde_json::from_value::<Checkpoint>(data).map_err(unreadable)?),
            Ok(RefCollection::Routes) => set
                .routes
                .push(serde_json::from_value::<Route>(data).map_err(unreadable)?),
            Ok(RefCollection::Rules) => set
                .rules
                .push(serde_json::from_value::<Rule>(data).map_err(unreadable)?),
            Err(()) => {}
        }
    }
    Ok(set)
}

/// Reads the estate's reference data in `tx` (NotFound for an unknown estate).
pub async fn load_reference(tx: &mut dyn PatrolTx, estate: EstateId) -> StoreResult<ReferenceSet> {
    let e = tx.estate(estate).await?.ok_or(StoreError::NotFound)?;
    let rows = tx.reference_rows(estate).await?;
    reference_from_rows(estate, e.timezone, rows)
}

/// Applies reference operations in `tx`; the caller commits only on `Ok(Ok(_))`, and rolls
/// back otherwise (a refusal may come after writing). A retired estate is NotFound, as an
/// unknown one: nothing new goes into it.
pub async fn apply_reference(
    tx: &mut dyn PatrolTx,
    estate: EstateId,
    ops: &[RefOp],
    now: i64,
) -> StoreResult<RefOutcome> {
    tx.lock_estate(estate).await?;
    match tx.estate(estate).await? {
        Some(e) if !e.retired => {}
        _ => return Err(StoreError::NotFound),
    }
    let before = load_reference(tx, estate).await?;
    let (after, changes) = match shared_core::patrol::reference::apply(&before, ops) {
        Ok(done) => done,
        Err(errors) => return Ok(Err(errors)),
    };

    tx.write_ref_changes(estate, &changes, now).await?;

    // Entity ids are the client's, and ref_changes is keyed on collection and id alone: an
    // id another estate already uses is not taken over (the upsert leaves such rows as
    // they are) but refused here. Checked after writing, so that an estate which wrote the
    // same id concurrently and committed first is seen too; the caller then rolls back.
    let puts: Vec<(RefCollection, Uuid)> = changes
        .iter()
        .filter(|c| c.data.is_some())
        .map(|c| (c.collection, c.id))
        .collect();
    let taken = if puts.is_empty() {
        vec![]
    } else {
        tx.owned_elsewhere(estate, &puts).await?
    };
    if !taken.is_empty() {
        return Ok(Err(taken
            .into_iter()
            .map(|(collection, id)| {
                RefError::new(
                    op_index(ops, collection, id),
                    "invalid_value",
                    "id",
                    format!(
                        "{id} is already used in {} of another estate; use a new id",
                        collection.as_str()
                    ),
                )
            })
            .collect()));
    }

    let diff = tag_diff(&before, &after);
    if !diff.changed.is_empty() {
        tx.set_tags(estate, &diff.changed, &diff.mapped).await?;
        tx.reresolve_scans(estate, &diff.changed).await?;
    }
    Ok(Ok(changes))
}

/// The index of the last op writing this entity (what a refusal points at).
fn op_index(ops: &[RefOp], collection: RefCollection, id: Uuid) -> usize {
    ops.iter()
        .rposition(|op| match op {
            RefOp::Put(e) => e.collection() == collection && e.id() == id,
            RefOp::Delete {
                collection: c,
                id: i,
            } => *c == collection && *i == id,
        })
        .unwrap_or(0)
}

/// How the tag map changes between two reference sets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TagDiff {
    /// Keys added, moved to another checkpoint or removed (sorted).
    pub changed: Vec<String>,
    /// Of those, the ones mapped afterwards, with their checkpoint.
    pub mapped: Vec<(String, CheckpointId)>,
}

fn tag_map(set: &ReferenceSet) -> BTreeMap<String, CheckpointId> {
    set.checkpoints
        .iter()
        .flat_map(|c| c.tags.iter().map(move |t| (t.key(), c.id)))
        .collect()
}

pub fn tag_diff(before: &ReferenceSet, after: &ReferenceSet) -> TagDiff {
    let old = tag_map(before);
    let new = tag_map(after);
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut diff = TagDiff::default();
    for k in keys {
        let now = new.get(k);
        if old.get(k) != now {
            diff.changed.push(k.clone());
            if let Some(cp) = now {
                diff.mapped.push((k.clone(), *cp));
            }
        }
    }
    diff
}

/// After a push's facts are inserted: records the scans and run events among them.
/// `new` are indexes into `b.facts` of the facts this push inserted (first occurrences), so
/// a re-sent fact is never recorded twice.
pub async fn after_push(
    tx: &mut dyn PatrolTx,
    b: &PreparedBatch,
    new: &[usize],
) -> StoreResult<()> {
    if b.facts.iter().all(|f| f.patrol.is_none()) {
        return Ok(());
    }
    let mut scans = Vec::new();
    let mut events = Vec::new();
    for &i in new {
        let f = &b.facts[i];
        match &f.patrol {
            Some(PatrolAttach::Scan(scan)) => scans.push(ScanRow {
                record: &f.record,
                scan,
            }),
            Some(PatrolAttach::RunEvent(event)) => events.push(RunEventRow {
                record: &f.record,
                event,
            }),
            None => {}
        }
    }
    if !scans.is_empty() {
        let estates: BTreeSet<EstateId> = scans.iter().map(|s| s.record.estate_id).collect();
        tx.lock_estates_shared(&estates.into_iter().collect::<Vec<_>>())
            .await?;
        tx.insert_scans(&scans).await?;
    }
    if !events.is_empty() {
        tx.insert_run_events(&events).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_core::patrol::{CheckpointClass, Tag, TagKind};

    fn cp(id: CheckpointId, estate: EstateId, tags: &[&str]) -> Checkpoint {
        Checkpoint {
            id,
            estate_id: estate,
            zone_id: None,
            code: id.to_string(),
            name: "cp".into(),
            class: CheckpointClass::Key,
            location: None,
            radius_m: 30.0,
            floor: None,
            instructions: None,
            tags: tags
                .iter()
                .map(|v| Tag {
                    kind: TagKind::Nfc,
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn tag_diff_names_added_moved_and_removed_keys() {
        let e = EstateId::new_v7();
        let (a, b) = (CheckpointId::new_v7(), CheckpointId::new_v7());
        let mut before = ReferenceSet::empty(e, "UTC");
        before.checkpoints = vec![cp(a, e, &["01", "02", "03"]), cp(b, e, &["04"])];
        let mut after = ReferenceSet::empty(e, "UTC");
        after.checkpoints = vec![cp(a, e, &["01", "05"]), cp(b, e, &["04", "02"])];
        let d = tag_diff(&before, &after);
        assert_eq!(d.changed, vec!["nfc:02", "nfc:03", "nfc:05"]);
        assert_eq!(
            d.mapped,
            vec![("nfc:02".to_string(), b), ("nfc:05".to_string(), a)]
        );
        assert_eq!(tag_diff(&after, &after), TagDiff::default());
    }
}
