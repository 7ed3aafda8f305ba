//! The ledger: every fact id the fleet created, by kind, and the handsets that made them.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    /// Fact ids by kind (`scan`, `run_event`, `hazard_event`, `photo`).
    pub by_kind: BTreeMap<String, BTreeSet<Uuid>>,
    /// Every handset of the fleet (guards and the hazard crew).
    pub devices: BTreeSet<Uuid>,
}

impl Ledger {
    pub fn add(&mut self, kind: &str, id: Uuid) {
        self.by_kind.entry(kind.to_owned()).or_default().insert(id);
    }

    pub fn len(&self) -> usize {
        self.by_kind.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of `id`, if the ledger has it.
    pub fn kind_of(&self, id: &Uuid) -> Option<&str> {
        self.by_kind
            .iter()
            .find(|(_, ids)| ids.contains(id))
            .map(|(k, _)| k.as_str())
    }

    pub fn merge(&mut self, other: &Ledger) {
        for (k, ids) in &other.by_kind {
            self.by_kind
                .entry(k.clone())
                .or_default()
                .extend(ids.iter().copied());
        }
        self.devices.extend(other.devices.iter().copied());
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.by_kind
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    /// `{counts, total, devices, ids: {kind: [id…]}}`.
    pub fn to_json(&self, with_ids: bool) -> Value {
        let mut v = json!({
            "counts": self.counts(),
            "total": self.len(),
            "devices": self.devices.len(),
        });
        if with_ids {
            v["ids"] = json!(self.by_kind);
        }
        v
    }
}
