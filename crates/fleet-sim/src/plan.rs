//! The fleet's plan: what every handset will push, decided before anything is sent and
//! byte-identical for the same seed, reference data and period.
//!
//! The patrols are shared-core's simulator ([`sim::simulate`]: rounds at the rules' cadence,
//! late / missed visits, runs, out-of-radius and mock locations, stray tags, skewed clocks,
//! rebooted handsets, offline gaps between syncs). On top of it the fleet adds hazards: after
//! a scan, with probability `p_hazard`, the guard reports a hazard at that checkpoint — a
//! `photo` fact (role `before`, a small real JPEG whose bytes are kept for upload) and the
//! `hazard_event` `report` it documents, in the same batch, right after the scan. Seqs are
//! then renumbered per handset so they count from 1 without gaps.

use crate::ledger::Ledger;
use crate::photo::Photo;
use serde_json::{json, Map, Value};
use shared_core::hlc::Hlc;
use shared_core::patrol::reference::normalise_tag;
use shared_core::patrol::sim::{self, Prng, SimConfig, SimGuard};
use shared_core::patrol::{ReferenceSet, TagKind};
use shared_core::wire::Timestamp;
use std::collections::HashMap;
use uuid::Uuid;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;

/// What to plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanConfig {
    pub seed: u64,
    pub handsets: usize,
    /// The simulated period (epoch ms).
    pub from: i64,
    pub to: i64,
    /// Guards walking each round (each scans every checkpoint of it). Default: every
    /// handset, so each one walks both interval rules' rounds.
    pub team_size: usize,
    /// Most changes in one batch.
    pub max_batch: usize,
    /// Offline gaps between a handset's syncs, uniform in `[min, max)` ms. A single sync at
    /// the end (a whole backlog) when `min` is beyond the period.
    pub sync_min_ms: i64,
    pub sync_max_ms: i64,
    /// A scan leads to a hazard report (with its photo).
    pub p_hazard: f64,
    /// A reported hazard is major.
    pub p_major: f64,
    /// Batch-level clock trouble, as the simulator models it.
    pub p_skewed_batch: f64,
    pub p_reboot_batch: f64,
    /// Backlog mode ([`PlanConfig::backlog`]): the instant the handsets went offline.
    pub offline_from: Option<i64>,
}

impl PlanConfig {
    /// The demo model for `handsets` over `[from, to)`.
    pub fn new(seed: u64, handsets: usize, from: i64, to: i64) -> PlanConfig {
        PlanConfig {
            seed,
            handsets,
            from,
            to,
            team_size: handsets.max(1),
            max_batch: 100,
            sync_min_ms: 10 * MINUTE,
            sync_max_ms: 120 * MINUTE,
            p_hazard: 0.01,
            p_major: 0.2,
            p_skewed_batch: 0.05,
            p_reboot_batch: 0.02,
            offline_from: None,
        }
    }

    /// A shift-change backlog: every handset was on patrol since `max(backlog, 2 h)` before
    /// the last `backlog_ms` (so the rounds are under way, not starting from nothing),
    /// synced once when it went offline (its *warm-up* batches), and has held everything
    /// since: one sync at `to`. The period starts earlier accordingly.
    pub fn backlog(mut self, backlog_ms: i64) -> PlanConfig {
        let backlog_ms = backlog_ms.max(1);
        let warm = backlog_ms.max(2 * HOUR);
        self.from = self.to - backlog_ms - warm;
        self.sync_min_ms = warm;
        self.sync_max_ms = warm + 1;
        self.offline_from = Some(self.to - backlog_ms);
        self
    }
}

/// A hazard report a batch carries.
#[derive(Clone, Debug, PartialEq)]
pub struct HazardReport {
    pub hazard_id: Uuid,
    pub event_id: Uuid,
    pub major: bool,
}

/// One push as planned (before it is moved to its sending moment).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedBatch {
    pub batch_id: Uuid,
    /// Handset clock when sent, simulated (epoch ms).
    pub sent_at: i64,
    /// Server clock when received, simulated.
    pub received_at: i64,
    /// The changes, in seq order.
    pub changes: Vec<Value>,
    pub skewed: bool,
    pub rebooted: bool,
    /// The photos whose facts are in this batch (bytes to upload after it).
    pub photos: Vec<Photo>,
    pub reports: Vec<HazardReport>,
    /// Backlog mode: sent when the handset went offline, before the backlog.
    pub warmup: bool,
}

impl PlannedBatch {
    pub fn last_seq(&self) -> Option<u64> {
        self.changes.last().and_then(|c| c["seq"].as_u64())
    }

    /// The push body as sent `shift` ms after its simulated moment: `sent_at` and every
    /// `age_ms` moved by `shift`, so trusted times stay the simulated ones.
    pub fn body_at(&self, device_id: Uuid, shift: i64) -> Vec<u8> {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(age) = c.get("age_ms").and_then(Value::as_i64) {
                    c["age_ms"] = Value::from(age + shift);
                }
                c
            })
            .collect();
        let body = json!({
            "device_id": device_id,
            "batch_id": self.batch_id,
            "sent_at": Timestamp(self.sent_at + shift).to_rfc3339(),
            "changes": changes,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HandsetPlan {
    pub index: usize,
    pub device_id: Uuid,
    pub batches: Vec<PlannedBatch>,
}

/// What the simulator meant, in counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanStats {
    pub scans: usize,
    pub run_events: usize,
    pub hazard_reports: usize,
    pub photos: usize,
    pub batches: usize,
    pub skewed_batches: usize,
    pub reboot_batches: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FleetPlan {
    pub handsets: Vec<HandsetPlan>,
    pub ledger: Ledger,
    pub stats: PlanStats,
}

impl FleetPlan {
    pub fn changes(&self) -> usize {
        self.handsets
            .iter()
            .flat_map(|h| &h.batches)
            .map(|b| b.changes.len())
            .sum()
    }
}

/// The simulated handsets (device ids follow from the seed): `sim_guards(n + 2)` gives the
/// same first `n` as `sim_guards(n)`; the two after them are the hazard crew's handsets.
pub fn guards(seed: u64, handsets: usize) -> Vec<SimGuard> {
    sim::sim_guards(handsets, seed)
}

/// The supervisor's and the engineer's handsets (the crew that works hazards).
pub fn crew_devices(seed: u64, handsets: usize) -> (Uuid, Uuid) {
    let g = sim::sim_guards(handsets + 2, seed);
    (g[handsets].device_id.0, g[handsets + 1].device_id.0)
}

const CATEGORIES: [(&str, &str); 8] = [
    ("fire", "Fire door wedged open"),
    ("electrical", "Exposed wiring by the switch room"),
    ("water", "Water leaking onto the stairwell"),
    ("slip_trip", "Loose paving at the entrance"),
    ("security", "Broken lock on the bike store"),
    ("sanitation", "Overflowing refuse point"),
    ("lift", "Lift door closing too fast"),
    ("equipment", "Extinguisher past its inspection date"),
];

/// Plans the fleet's pushes over `reference`.
pub fn build(reference: &ReferenceSet, cfg: &PlanConfig) -> FleetPlan {
    let guards = guards(cfg.seed, cfg.handsets);
    let mut sc = SimConfig::demo(cfg.from, cfg.to, guards.clone());
    sc.seed = cfg.seed;
    sc.team_size = cfg.team_size.clamp(1, cfg.handsets.max(1));
    sc.max_batch = cfg.max_batch.max(1);
    sc.sync_min_ms = cfg.sync_min_ms;
    sc.sync_max_ms = cfg.sync_max_ms;
    sc.p_skewed_batch = cfg.p_skewed_batch;
    sc.p_reboot_batch = cfg.p_reboot_batch;
    let out = sim::simulate(reference, &sc);

    // Tag → checkpoint, for where a hazard is.
    let mut by_tag: HashMap<String, Uuid> = HashMap::new();
    for cp in &reference.checkpoints {
        for t in &cp.tags {
            by_tag.insert(t.key(), cp.id.0);
        }
    }
    let index_of: HashMap<Uuid, usize> = guards
        .iter()
        .enumerate()
        .map(|(i, g)| (g.device_id.0, i))
        .collect();
    let mut handsets: Vec<HandsetPlan> = guards
        .iter()
        .enumerate()
        .map(|(i, g)| HandsetPlan {
            index: i,
            device_id: g.device_id.0,
            batches: Vec::new(),
        })
        .collect();
    let mut stats = PlanStats {
        scans: out.scans,
        run_events: out.run_events,
        skewed_batches: out.skewed_batches,
        reboot_batches: out.reboot_batches,
        ..PlanStats::default()
    };
    let mut rngs: Vec<Prng> = (0..guards.len())
        .map(|i| Prng::derive(cfg.seed, &[0x4A2A, i as u64]))
        .collect();
    let estate = reference.estate_id.0.to_string();
    for b in out.batches {
        let Some(&i) = index_of.get(&b.device_id.0) else {
            continue;
        };
        let rng = &mut rngs[i];
        let mut changes = Vec::with_capacity(b.changes.len());
        let mut photos = Vec::new();
        let mut reports = Vec::new();
        for c in b.changes {
            let is_scan = c["kind"] == "scan";
            let hazard = is_scan && rng.chance(cfg.p_hazard);
            if !hazard {
                changes.push(c);
                continue;
            }
            let (photo_fact, report, photo, rep) =
                hazard_after(&c, &estate, &by_tag, rng, cfg.p_major);
            changes.push(c);
            changes.push(photo_fact);
            changes.push(report);
            photos.push(photo);
            reports.push(rep);
        }
        stats.hazard_reports += reports.len();
        stats.photos += photos.len();
        handsets[i].batches.push(PlannedBatch {
            batch_id: b.batch_id.0,
            sent_at: b.sent_at,
            received_at: b.received_at,
            changes,
            skewed: b.skewed,
            rebooted: b.rebooted,
            photos,
            reports,
            // The simulator receives a sync's batches within a second or two of it.
            warmup: cfg.offline_from.is_some_and(|t| b.received_at < t + MINUTE),
        });
    }

    let mut ledger = Ledger::default();
    for h in &mut handsets {
        ledger.devices.insert(h.device_id);
        let mut seq = 0u64;
        for b in &mut h.batches {
            for c in &mut b.changes {
                seq += 1;
                c["seq"] = Value::from(seq);
                if let (Some(kind), Some(id)) = (
                    c["kind"].as_str(),
                    c["id"].as_str().and_then(|s| s.parse().ok()),
                ) {
                    ledger.add(kind, id);
                }
            }
        }
        stats.batches += h.batches.len();
    }
    FleetPlan {
        handsets,
        ledger,
        stats,
    }
}

/// The photo fact and the hazard report that follow `scan` (same clock readings; HLC
/// counters just after the scan's).
fn hazard_after(
    scan: &Value,
    estate: &str,
    by_tag: &HashMap<String, Uuid>,
    rng: &mut Prng,
    p_major: f64,
) -> (Value, Value, Photo, HazardReport) {
    let recorded_at = scan["recorded_at"].clone();
    let ms = scan["recorded_at"]
        .as_str()
        .and_then(Timestamp::parse)
        .map(|t| t.0)
        .unwrap_or(0);
    let hlc: Hlc = scan["hlc"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Hlc {
            ms: ms.max(0) as u64,
            counter: 0,
        });
    let hlc_at = |k: u16| {
        Hlc {
            ms: hlc.ms,
            counter: hlc.counter.saturating_add(k),
        }
        .to_string()
    };
    let tag = scan["data"]["tag"].as_str().unwrap_or("");
    let checkpoint = by_tag
        .get(&format!("nfc:{}", normalise_tag(TagKind::Nfc, tag)))
        .or_else(|| by_tag.get(&format!("qr:{}", normalise_tag(TagKind::Qr, tag))));
    let hazard_id = rng.uuid_v7(ms);
    let event_id = rng.uuid_v7(ms + 1);
    let photo_id = rng.uuid_v7(ms);
    let major = rng.chance(p_major);
    let (category, title) = *rng.pick(&CATEGORIES);
    let photo = Photo::new(photo_id, rng.next_u64());
    let envelope = |kind: &str, id: Uuid, hlc: String, data: Value| {
        let mut m = Map::new();
        m.insert("kind".into(), json!(kind));
        m.insert("id".into(), json!(id.to_string()));
        m.insert("seq".into(), json!(0));
        m.insert("hlc".into(), json!(hlc));
        m.insert("recorded_at".into(), recorded_at.clone());
        if let Some(age) = scan.get("age_ms") {
            m.insert("age_ms".into(), age.clone());
        }
        m.insert("data".into(), data);
        Value::Object(m)
    };
    let photo_fact = envelope(
        "photo",
        photo_id,
        hlc_at(1),
        json!({
            "estate_id": estate,
            "sha256": photo.sha256,
            "bytes": photo.bytes.len(),
            "mime": "image/jpeg",
            "width": crate::photo::SIDE,
            "height": crate::photo::SIDE,
            "subject": { "kind": "hazard_event", "id": event_id.to_string() },
            "role": "before",
        }),
    );
    let mut location = json!({ "text": format!("at the checkpoint of tag {tag}") });
    if let Some(cp) = checkpoint {
        location["checkpoint_id"] = json!(cp.to_string());
    }
    let mut data = json!({
        "estate_id": estate,
        "hazard_id": hazard_id.to_string(),
        "action": "report",
        "grade": if major { "major" } else { "general" },
        "category": category,
        "title": title,
        "description": "Found on the patrol round; photo attached (fleet-sim).",
        "location": location,
    });
    if let Some(id) = scan["id"].as_str() {
        data["source_fact_id"] = json!(id);
    }
    let report = envelope("hazard_event", event_id, hlc_at(2), data);
    (
        photo_fact,
        report,
        photo,
        HazardReport {
            hazard_id,
            event_id,
            major,
        },
    )
}

/// The reference data a pull carried, as a [`ReferenceSet`] (ordered by code, so the plan
/// does not depend on the order the server sent it in).
pub fn reference_from_pull(
    estate: Uuid,
    timezone: &str,
    changes: &[Value],
) -> anyhow::Result<ReferenceSet> {
    use shared_core::patrol::{Checkpoint, Route, Rule, Zone};
    let mut latest: HashMap<(String, String), Option<Value>> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut tz = timezone.to_owned();
    for c in changes {
        let coll = c["collection"].as_str().unwrap_or("");
        let id = c["id"].as_str().unwrap_or("").to_owned();
        if coll == "estates" && id == estate.to_string() {
            if let Some(z) = c["data"]["timezone"].as_str() {
                tz = z.to_owned();
            }
            continue;
        }
        if !matches!(coll, "zones" | "checkpoints" | "routes" | "rules") {
            continue;
        }
        if c["data"]["estate_id"]
            .as_str()
            .is_some_and(|e| e != estate.to_string())
        {
            continue;
        }
        let key = (coll.to_owned(), id);
        if !latest.contains_key(&key) {
            order.push(key.clone());
        }
        let data = (c["op"] == "put").then(|| c["data"].clone());
        latest.insert(key, data);
    }
    let mut set = ReferenceSet::empty(shared_core::EstateId(estate), tz);
    for key in order {
        let Some(Some(data)) = latest.remove(&key) else {
            continue;
        };
        let what = format!("the {} entity {}", key.0, key.1);
        let bad = |e: serde_json::Error| anyhow::anyhow!("{what} does not read: {e}");
        match key.0.as_str() {
            "zones" => set
                .zones
                .push(serde_json::from_value::<Zone>(data).map_err(bad)?),
            "checkpoints" => set
                .checkpoints
                .push(serde_json::from_value::<Checkpoint>(data).map_err(bad)?),
            "routes" => set
                .routes
                .push(serde_json::from_value::<Route>(data).map_err(bad)?),
            _ => set
                .rules
                .push(serde_json::from_value::<Rule>(data).map_err(bad)?),
        }
    }
    set.zones.sort_by(|a, b| a.code.cmp(&b.code));
    set.checkpoints.sort_by(|a, b| a.code.cmp(&b.code));
    set.routes.sort_by(|a, b| a.code.cmp(&b.code));
    set.rules
        .sort_by(|a, b| (a.name.as_str(), a.id.0).cmp(&(b.name.as_str(), b.id.0)));
    Ok(set)
}
