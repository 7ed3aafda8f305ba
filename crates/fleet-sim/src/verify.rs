//! After a run: an overseer signs in on a new device and pulls the estate from no cursor to
//! the end. Every ledger fact must be there exactly once, of its kind; no fact of the fleet's
//! handsets may be there that the ledger lacks.

use crate::client::Session;
use crate::ledger::Ledger;
use anyhow::Context;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// Facts pulled in all (any device), and those of the fleet's handsets.
    pub pulled_facts: usize,
    pub fleet_facts: usize,
    pub pages: usize,
    /// Per kind: ledger ids, and found exactly once.
    pub expected: BTreeMap<String, usize>,
    pub found: BTreeMap<String, usize>,
    /// Ledger ids not pulled.
    pub missing: Vec<(String, Uuid)>,
    /// Ids pulled more than once (with the count).
    pub doubled: Vec<(Uuid, usize)>,
    /// Facts of the fleet's devices the ledger lacks.
    pub extra: Vec<Uuid>,
    /// Pulled with another kind than the ledger's.
    pub wrong_kind: Vec<(Uuid, String, String)>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.missing.is_empty()
            && self.doubled.is_empty()
            && self.extra.is_empty()
            && self.wrong_kind.is_empty()
            && self.expected == self.found
    }

    pub fn to_json(&self) -> Value {
        let few = |v: Vec<String>| v.into_iter().take(20).collect::<Vec<_>>();
        json!({
            "ok": self.ok(),
            "pulled_facts": self.pulled_facts,
            "fleet_facts": self.fleet_facts,
            "pages": self.pages,
            "expected": self.expected,
            "found_once": self.found,
            "missing": self.missing.len(),
            "doubled": self.doubled.len(),
            "extra": self.extra.len(),
            "wrong_kind": self.wrong_kind.len(),
            "first_missing": few(self.missing.iter().map(|(k, id)| format!("{k} {id}")).collect()),
            "first_doubled": few(self.doubled.iter().map(|(id, n)| format!("{id} ×{n}")).collect()),
            "first_extra": few(self.extra.iter().map(Uuid::to_string).collect()),
        })
    }

    /// A few lines saying what is wrong (empty when all is well).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, n) in &self.expected {
            let f = self.found.get(k).copied().unwrap_or(0);
            if f != *n {
                out.push(format!("{k}: {n} created, {f} on the server exactly once"));
            }
        }
        for (k, id) in self.missing.iter().take(10) {
            out.push(format!("missing {k} {id}"));
        }
        for (id, n) in self.doubled.iter().take(10) {
            out.push(format!("pulled {n} times: {id}"));
        }
        for id in self.extra.iter().take(10) {
            out.push(format!(
                "a fact of the fleet's handsets the ledger lacks: {id}"
            ));
        }
        for (id, want, got) in self.wrong_kind.iter().take(10) {
            out.push(format!("{id}: created as {want}, pulled as {got}"));
        }
        out
    }
}

/// Compares what `session` pulls (from no cursor) with `ledger`.
pub async fn verify(session: &mut Session, ledger: &Ledger) -> anyhow::Result<Verification> {
    // id → (kind, device, times pulled)
    let mut seen: HashMap<Uuid, (String, Option<Uuid>, usize)> = HashMap::new();
    let mut pulled = 0usize;
    let (_, pages) = session
        .pull_all(None, 5000, |c| {
            if c["collection"] != "facts" || c["op"] != "put" {
                return;
            }
            let Some(id) = c["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) else {
                return;
            };
            pulled += 1;
            let kind = c["data"]["kind"].as_str().unwrap_or("").to_owned();
            let device = c["data"]["device_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok());
            seen.entry(id).or_insert((kind, device, 0)).2 += 1;
        })
        .await
        .context("verifying: pulling the estate")?;
    Ok(compare(ledger, &seen, pulled, pages))
}

/// The comparison itself (separate so it can be tested on its own).
pub fn compare(
    ledger: &Ledger,
    seen: &HashMap<Uuid, (String, Option<Uuid>, usize)>,
    pulled: usize,
    pages: usize,
) -> Verification {
    let mut v = Verification {
        pulled_facts: pulled,
        pages,
        ..Verification::default()
    };
    for (kind, ids) in &ledger.by_kind {
        v.expected.insert(kind.clone(), ids.len());
        let mut once = 0;
        for id in ids {
            match seen.get(id) {
                None => v.missing.push((kind.clone(), *id)),
                Some((k, _, n)) => {
                    if k != kind {
                        v.wrong_kind.push((*id, kind.clone(), k.clone()));
                    } else if *n == 1 {
                        once += 1;
                    }
                    if *n > 1 {
                        v.doubled.push((*id, *n));
                    }
                }
            }
        }
        v.found.insert(kind.clone(), once);
    }
    for (id, (_, device, n)) in seen {
        if device.is_some_and(|d| ledger.devices.contains(&d)) {
            v.fleet_facts += n;
            if ledger.kind_of(id).is_none() {
                v.extra.push(*id);
            }
        }
    }
    v.extra.sort();
    v
}
