//! A deterministic patrol simulator: an estate's patrol plan ([`estate_plan`]) and the push
//! batches its guards' handsets would send ([`simulate`]). The server's demo seeding and the
//! coverage benchmark both use it, so the demo week and the benchmark share one model of a
//! patrol.
//!
//! # The plan
//!
//! [`estate_plan`] writes zones `Z01…`, checkpoints `CP-001…` (key and general, each with one
//! NFC tag of 7 bytes, within about 300 m of a base point), routes and rules:
//!
//! - `R1` 夜间全区 Night full: every key checkpoint, strict order;
//! - `R2`, `R3`, …: the general checkpoints of a group of zones (even ones strict, odd ones
//!   any order);
//! - key checkpoints every 60 minutes, grace 15 minutes, the whole day;
//! - general checkpoints every 120 minutes, grace 20 %, the whole day;
//! - at least 4 completed runs of `R1` between 22:00 and 06:00.
//!
//! Everything is derived from the seed: the same seed gives the same ids, tags and places.
//!
//! # The patrols
//!
//! [`simulate`] reads any [`ReferenceSet`] (not only a generated one). Each interval rule is
//! expanded into its slots (aligned on the window's start in the estate's time zone); the
//! slots of one rule starting at one instant form a *round*, walked by the team on duty
//! (shifts start at 06:00, 14:00 and 22:00 local; each interval rule has its own team, so
//! with enough guards two rounds never share a handset). Within a round:
//!
//! - each visit is intended `on_time` (scanned inside `[start + grace, end − grace)`, so
//!   that a neighbour's late or early window never takes it), `late` (`p_late`: scanned in
//!   `[end, end + grace)`, only when the next slot is on time, as the evaluation asks) or
//!   `missed` (`p_missed`: no scan);
//! - routes whose checkpoints are all due in the round are walked as runs (`run_event`
//!   start, scans naming the run in route order, finish); a route with a count rule only
//!   inside that rule's window, where `min_runs + 1` of the window's runs are kept clean
//!   (nothing late, missed or aborted) so the count rule is met; a run may be aborted
//!   (`p_abort`) with a reason, the rest of its checkpoints then scanned outside the run;
//! - scans carry a location within a few metres of the checkpoint, sometimes ~300 m off
//!   (`p_outside_radius`), sometimes none (`p_no_location`), sometimes a mock
//!   (`p_mock_location`); NFC UIDs are written in the forms handsets report (`04A2…`,
//!   `04:a2:…`, `04-A2-…`, `0x04a2…`); now and then a stray tag of no checkpoint is scanned
//!   (`p_unknown_tag`).
//!
//! Handsets are offline between syncs, every `sync_min_ms..sync_max_ms` (10 to 120
//! minutes), and a last one just before `to`; a sync pushes everything recorded since the
//! last one in batches of at most `max_batch` changes, received a few hundred ms after they
//! are sent. A fact at true time `t` has `age_ms = received_at − t`, so its trusted time is
//! exactly `t`; its `recorded_at` is `t` plus the handset clock's error (a second or two,
//! or `skew_ms` in a skewed batch, `p_skewed_batch`). After a reboot (`p_reboot_batch`) a
//! batch has no `age_ms` and an honest clock, so its trusted time is `t` plus the
//! transit time. `seq` counts from 1 per handset, the HLC ticks on the handset's clock.
//!
//! # Scale
//!
//! The demo ([`EstateSpec::demo`], [`SimConfig::demo`]): 12 key and 28 general
//! checkpoints, 12 × 24 + 28 × 12 = 624 visits a day, about 4,250 scans a week, in a few
//! tens of milliseconds. The benchmark scales by `team_size`: each round is walked by that
//! many guards, each scanning every checkpoint with their own handset. With
//! [`EstateSpec::sized`]`(200)` (60 key, 140 general: 3,120 visits a day) and
//! [`SimConfig::benchmark`] (`team_size` 11, 24 guards), 30 days give about 1.0 million
//! scans. The rules are the plan and are never made more frequent to reach a scale.

use super::reference::parse_timezone;
use super::*;
use crate::fact::FactKind;
use crate::hlc::HlcClock;
use crate::ids::BatchId;
use crate::wire::{PushRequest, Timestamp};
use chrono::{Offset, TimeZone, Utc};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

// ------------------------------------------------------------------ PRNG

/// A small deterministic PRNG (splitmix64). Not for secrets.
#[derive(Clone, Debug)]
pub struct Prng {
    state: u64,
}

/// The splitmix64 finaliser: a good 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng { state: mix(seed) }
    }

    /// A generator for a sub-stream, independent of how much this one is used later.
    pub fn derive(seed: u64, salt: &[u64]) -> Self {
        let mut s = mix(seed);
        for x in salt {
            s = mix(s ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        Prng { state: s }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi as i128 - lo as i128) as u64;
        (lo as i128 + self.below(span) as i128) as i64
    }

    /// Uniform in `[lo, hi)`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn bytes10(&mut self) -> [u8; 10] {
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    }

    /// A UUIDv7 at `ms` with random bits from this generator.
    pub fn uuid_v7(&mut self, ms: i64) -> Uuid {
        uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &self.bytes10()).into_uuid()
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

// ------------------------------------------------------------------ the plan

/// The shape of a generated estate.
#[derive(Clone, Debug, PartialEq)]
pub struct EstateSpec {
    pub zones: usize,
    pub key_checkpoints: usize,
    pub general_checkpoints: usize,
    /// `R1` over the key checkpoints, then one route per group of zones over their general
    /// checkpoints (routes that would be empty are left out).
    pub routes: usize,
    /// The middle of the estate.
    pub base: GeoPoint,
    /// Checkpoints lie within this distance of `base`, metres.
    pub spread_m: f64,
    pub radius_m: f64,
}

impl EstateSpec {
    /// The demo estate: 6 zones, 12 key and 28 general checkpoints, 3 routes, in Shanghai.
    pub fn demo() -> Self {
        EstateSpec {
            zones: 6,
            key_checkpoints: 12,
            general_checkpoints: 28,
            routes: 3,
            base: GeoPoint {
                lat: 31.2304,
                lng: 121.4737,
            },
            spread_m: 300.0,
            radius_m: DEFAULT_RADIUS_M,
        }
    }

    /// A bigger estate of `checkpoints` checkpoints (30 % key, rounded), one zone per 20,
    /// 3 routes. Up to 1,000 checkpoints (a route holds at most [`MAX_ROUTE_LEN`]).
    pub fn sized(checkpoints: usize) -> Self {
        let key = (checkpoints * 3 + 5) / 10;
        EstateSpec {
            zones: checkpoints.div_ceil(20).clamp(1, 99),
            key_checkpoints: key,
            general_checkpoints: checkpoints - key,
            ..EstateSpec::demo()
        }
    }

    pub fn checkpoints(&self) -> usize {
        self.key_checkpoints + self.general_checkpoints
    }
}

const ZONE_NAMES: [(&str, &str); 6] = [
    ("1号楼", "Block 1"),
    ("2号楼", "Block 2"),
    ("3号楼", "Block 3"),
    ("地下车库", "Car park"),
    ("会所", "Clubhouse"),
    ("周界", "Perimeter"),
];

const KEY_PLACES: [(&str, &str, &str); 8] = [
    ("配电房", "Switch room", "B1"),
    ("水泵房", "Pump room", "B1"),
    ("消防控制室", "Fire control room", "1F"),
    ("电梯机房", "Lift machine room", "RF"),
    ("消防通道", "Fire exit", "1F"),
    ("车库坡道", "Ramp", "B1"),
    ("屋顶", "Roof", "RF"),
    ("发电机房", "Generator room", "B2"),
];

const GENERAL_PLACES: [(&str, &str, &str); 8] = [
    ("大堂", "Lobby", "1F"),
    ("单元门", "Entrance", "1F"),
    ("走廊", "Corridor", "*"),
    ("垃圾房", "Bin store", "1F"),
    ("自行车棚", "Bike shed", "1F"),
    ("花园", "Garden", "1F"),
    ("信报箱", "Mailboxes", "1F"),
    ("楼梯间", "Stairwell", "*"),
];

const ABORT_REASONS: [&str; 4] = [
    "消防报警 fire alarm call",
    "住户求助 resident asked for help",
    "巡更机故障 handset trouble",
    "交接班 called to shift handover",
];

/// Entity kinds, for deterministic reference ids.
const K_ZONE: u64 = 1;
const K_CHECKPOINT: u64 = 2;
const K_ROUTE: u64 = 3;
const K_RULE: u64 = 4;
const K_TAG: u64 = 5;

/// A deterministic UUIDv7 for entity `n` of `kind` under `seed`.
fn ref_uuid(seed: u64, kind: u64, n: u64) -> Uuid {
    let mut p = Prng::derive(seed, &[kind, n]);
    // 2024-01-01 plus up to a year: a plausible creation time.
    let ms = 1_704_067_200_000 + p.below(365 * DAY as u64) as i64;
    p.uuid_v7(ms)
}

fn zone_name(z: usize) -> (String, String) {
    match ZONE_NAMES.get(z) {
        Some((cn, en)) => ((*cn).to_owned(), (*en).to_owned()),
        None => {
            let n = z - ZONE_NAMES.len() + 4;
            (format!("{n}号楼"), format!("Block {n}"))
        }
    }
}

/// `base` moved by `north` and `east` metres.
fn offset_point(base: GeoPoint, north: f64, east: f64) -> GeoPoint {
    const M_PER_DEG: f64 = 111_320.0;
    GeoPoint {
        lat: base.lat + north / M_PER_DEG,
        lng: base.lng + east / (M_PER_DEG * base.lat.to_radians().cos().max(0.01)),
    }
}

/// Rounds to 6 decimals (about 0.1 m), as a handset or a survey would write it.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The operations that create the estate's zones, checkpoints, routes and rules.
pub fn estate_plan(estate: EstateId, spec: &EstateSpec, seed: u64) -> Vec<RefOp> {
    let mut ops = Vec::new();
    let mut rng = Prng::derive(seed, &[0x91A4]);
    let zones_n = spec.zones.max(1);

    let mut zones = Vec::new();
    let mut centres = Vec::new();
    for z in 0..zones_n {
        let (cn, en) = zone_name(z);
        zones.push(Zone {
            id: ZoneId(ref_uuid(seed, K_ZONE, z as u64)),
            estate_id: estate,
            code: format!("Z{:02}", z + 1),
            name: format!("{cn} {en}"),
        });
        // A sunflower of zone centres, within 80 % of the spread.
        let angle = z as f64 * 2.399_963 + rng.float(0.0, 0.3);
        let dist = spec.spread_m * 0.8 * ((z as f64 + 0.5) / zones_n as f64).sqrt();
        centres.push(offset_point(
            spec.base,
            dist * angle.sin(),
            dist * angle.cos(),
        ));
    }

    let total = spec.checkpoints();
    let mut checkpoints: Vec<Checkpoint> = Vec::with_capacity(total);
    let mut tags = HashSet::new();
    let (mut key_seen, mut general_seen) = (0usize, 0usize);
    for i in 0..total {
        let z = i * zones_n / total;
        let is_key = (i + 1) * spec.key_checkpoints / total > i * spec.key_checkpoints / total;
        let (class, place, k) = if is_key {
            key_seen += 1;
            (
                CheckpointClass::Key,
                KEY_PLACES[key_seen % KEY_PLACES.len()],
                key_seen,
            )
        } else {
            general_seen += 1;
            (
                CheckpointClass::General,
                GENERAL_PLACES[general_seen % GENERAL_PLACES.len()],
                general_seen,
            )
        };
        let (zcn, zen) = zone_name(z);
        let floor = if place.2 == "*" {
            format!("{}F", 2 + k % 17)
        } else {
            place.2.to_owned()
        };
        let r = rng.float(0.0, spec.spread_m * 0.13);
        let a = rng.float(0.0, std::f64::consts::TAU);
        let p = offset_point(centres[z], r * a.sin(), r * a.cos());
        let mut tag_rng = Prng::derive(seed, &[K_TAG, i as u64]);
        let tag = loop {
            let b = tag_rng.bytes10();
            let t = format!(
                "04{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            );
            if tags.insert(t.clone()) {
                break t;
            }
        };
        checkpoints.push(Checkpoint {
            id: CheckpointId(ref_uuid(seed, K_CHECKPOINT, i as u64)),
            estate_id: estate,
            zone_id: Some(zones[z].id),
            code: format!("CP-{:03}", i + 1),
            name: format!("{zcn}{} {zen} {}", place.0, place.1),
            class,
            location: Some(GeoPoint {
                lat: round6(p.lat),
                lng: round6(p.lng),
            }),
            radius_m: spec.radius_m,
            floor: Some(floor),
            instructions: is_key.then(|| "检查门锁与设备 Check locks and equipment".to_owned()),
            tags: vec![Tag {
                kind: TagKind::Nfc,
                value: tag,
            }],
        });
    }

    let mut routes = Vec::new();
    let key_ids: Vec<CheckpointId> = checkpoints
        .iter()
        .filter(|c| c.class == CheckpointClass::Key)
        .map(|c| c.id)
        .collect();
    if spec.routes >= 1 && !key_ids.is_empty() {
        routes.push(Route {
            id: RouteId(ref_uuid(seed, K_ROUTE, 0)),
            estate_id: estate,
            code: "R1".into(),
            name: "夜间全区 Night full".into(),
            expected_minutes: (key_ids.len() as u32 * 3).clamp(10, 1440),
            checkpoints: key_ids,
            strict: true,
        });
    }
    let groups = spec.routes.saturating_sub(1);
    for g in 0..groups {
        let cps: Vec<CheckpointId> = checkpoints
            .iter()
            .filter(|c| c.class == CheckpointClass::General)
            .filter(|c| {
                let z = zones
                    .iter()
                    .position(|x| Some(x.id) == c.zone_id)
                    .unwrap_or(0);
                z * groups / zones_n == g
            })
            .map(|c| c.id)
            .collect();
        if cps.is_empty() {
            continue;
        }
        let letter = (b'A' + (g % 26) as u8) as char;
        routes.push(Route {
            id: RouteId(ref_uuid(seed, K_ROUTE, g as u64 + 1)),
            estate_id: estate,
            code: format!("R{}", g + 2),
            name: format!("{letter}组 日常巡查 Group {letter} rounds"),
            expected_minutes: (cps.len() as u32 * 3).clamp(10, 1440),
            checkpoints: cps,
            strict: g % 2 == 0,
        });
    }

    let whole_day = Window {
        start: TimeOfDay(0),
        end: TimeOfDay(0),
    };
    let mut rules = vec![
        Rule {
            id: RuleId(ref_uuid(seed, K_RULE, 0)),
            estate_id: estate,
            name: "重点巡更点 每小时 Key checkpoints hourly".into(),
            window: whole_day,
            kind: RuleKind::Interval {
                target: RuleTarget::Class(CheckpointClass::Key),
                every_minutes: 60,
                grace: Some(Grace::Minutes(15)),
            },
        },
        Rule {
            id: RuleId(ref_uuid(seed, K_RULE, 1)),
            estate_id: estate,
            name: "一般巡更点 每两小时 General checkpoints every 2 h".into(),
            window: whole_day,
            kind: RuleKind::Interval {
                target: RuleTarget::Class(CheckpointClass::General),
                every_minutes: 120,
                grace: Some(Grace::Percent(20)),
            },
        },
    ];
    if let Some(r1) = routes.first().filter(|r| r.code == "R1") {
        rules.push(Rule {
            id: RuleId(ref_uuid(seed, K_RULE, 2)),
            estate_id: estate,
            name: "夜间全区巡更 至少4次 Night full route ×4".into(),
            window: Window {
                start: TimeOfDay(22 * 60),
                end: TimeOfDay(6 * 60),
            },
            kind: RuleKind::Count {
                route_id: r1.id,
                min_runs: 4,
            },
        });
    }

    ops.extend(zones.into_iter().map(|x| RefOp::Put(RefEntity::Zone(x))));
    ops.extend(
        checkpoints
            .into_iter()
            .map(|x| RefOp::Put(RefEntity::Checkpoint(x))),
    );
    ops.extend(routes.into_iter().map(|x| RefOp::Put(RefEntity::Route(x))));
    ops.extend(rules.into_iter().map(|x| RefOp::Put(RefEntity::Rule(x))));
    ops
}

// ------------------------------------------------------------------ configuration

/// A guard and the handset they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimGuard {
    pub user_id: UserId,
    pub device_id: DeviceId,
}

/// `count` guards with deterministic user and device ids (for benchmarks and tests).
pub fn sim_guards(count: usize, seed: u64) -> Vec<SimGuard> {
    (0..count as u64)
        .map(|i| {
            let mut p = Prng::derive(seed, &[0x6A2D, i]);
            SimGuard {
                user_id: UserId(p.uuid_v7(1_704_067_200_000 + i as i64)),
                device_id: DeviceId(p.uuid_v7(1_704_067_200_000 + i as i64)),
            }
        })
        .collect()
}

/// What to simulate. Every field is public so a benchmark can scale it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Period simulated (epoch ms): slots starting in `[from, to)`; every fact's trusted
    /// time and every batch's receipt lie in `[from, to]`.
    pub from: i64,
    pub to: i64,
    /// Guards in roster order; each carries one handset.
    pub guards: Vec<SimGuard>,
    pub seed: u64,
    /// Guards walking each round, each scanning every checkpoint (1). Capped at the number
    /// of guards. The scale knob: scans grow linearly with it.
    pub team_size: usize,
    /// A visit is late (scanned within grace after its slot) (0.03).
    pub p_late: f64,
    /// A visit is missed (0.03).
    pub p_missed: f64,
    /// A scan's location is about 300 m off the checkpoint (0.02).
    pub p_outside_radius: f64,
    /// A scan's location comes from a mock provider (0.005).
    pub p_mock_location: f64,
    /// A scan has no location (0.03).
    pub p_no_location: f64,
    /// A guard scans a stray tag of no checkpoint during a round (0.01 per round and guard).
    pub p_unknown_tag: f64,
    /// A run is aborted (0.03); never one of the runs kept clean for a count rule.
    pub p_abort: f64,
    /// A batch is sent from a handset whose clock is `skew_ms` ahead (0.05).
    pub p_skewed_batch: f64,
    /// 600,000 (10 minutes).
    pub skew_ms: i64,
    /// A batch is sent after a reboot, without `age_ms` (0.02).
    pub p_reboot_batch: f64,
    /// Time between a handset's syncs, uniform in `[sync_min_ms, sync_max_ms)` (10 and
    /// 120 minutes).
    pub sync_min_ms: i64,
    pub sync_max_ms: i64,
    /// Most changes in one batch (500).
    pub max_batch: usize,
    /// Longest walk between two checkpoints of a round, ms (150,000); shorter when the
    /// round would not fit its slot.
    pub step_ms: i64,
}

impl SimConfig {
    /// The demo: one guard per round, the default probabilities.
    pub fn demo(from: i64, to: i64, guards: Vec<SimGuard>) -> SimConfig {
        SimConfig {
            from,
            to,
            guards,
            seed: 0x5EED_2026_1122,
            team_size: 1,
            p_late: 0.03,
            p_missed: 0.03,
            p_outside_radius: 0.02,
            p_mock_location: 0.005,
            p_no_location: 0.03,
            p_unknown_tag: 0.01,
            p_abort: 0.03,
            p_skewed_batch: 0.05,
            skew_ms: 10 * MINUTE,
            p_reboot_batch: 0.02,
            sync_min_ms: 10 * MINUTE,
            sync_max_ms: 120 * MINUTE,
            max_batch: 500,
            step_ms: 150_000,
        }
    }

    /// The coverage benchmark's scale: the demo model walked by teams of 11 guards (give it
    /// at least 22, e.g. [`sim_guards`]`(24, …)`). With [`EstateSpec::sized`]`(200)` that is
    /// about 33,000 scans a day, 1.0 million over 30 days.
    pub fn benchmark(from: i64, to: i64, guards: Vec<SimGuard>) -> SimConfig {
        SimConfig {
            team_size: 11,
            ..SimConfig::demo(from, to, guards)
        }
    }
}

// ------------------------------------------------------------------ output

/// One push batch as a handset would send it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimBatch {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub batch_id: BatchId,
    /// Handset clock when sent (epoch ms).
    pub sent_at: i64,
    /// Server clock when received (epoch ms): pass it as the receipt time.
    pub received_at: i64,
    /// `ChangeEnvelope` JSON objects, in seq order.
    pub changes: Vec<Value>,
    /// The handset's clock was `skew_ms` ahead.
    pub skewed: bool,
    /// Sent after a reboot: no `age_ms`.
    pub rebooted: bool,
}

impl SimBatch {
    /// The body of `POST /v1/sync/push`: `{device_id, batch_id, sent_at, changes}`.
    pub fn push_body(&self) -> Value {
        serde_json::to_value(PushRequest {
            device_id: self.device_id,
            batch_id: self.batch_id,
            sent_at: Timestamp(self.sent_at),
            changes: self.changes.clone(),
        })
        .unwrap_or(Value::Null)
    }
}

/// The batches and what was meant by them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimOutput {
    /// By receipt time, then device.
    pub batches: Vec<SimBatch>,
    /// `scan` facts, stray tags included.
    pub scans: usize,
    pub run_events: usize,
    pub runs_started: usize,
    pub runs_aborted: usize,
    /// Intended results of the slots decided by `to` (`end + grace <= to`), one per slot
    /// (whatever the team size): what an evaluation with `now = to` should find when each
    /// checkpoint is targeted by one interval rule.
    pub on_time: usize,
    pub late: usize,
    pub missed: usize,
    /// Slots starting in the period but not decided by `to` (pending, or settled early).
    pub undecided: usize,
    pub outside_radius: usize,
    pub mock_location: usize,
    pub no_location: usize,
    pub unknown_tag: usize,
    pub skewed_batches: usize,
    pub reboot_batches: usize,
}

// ------------------------------------------------------------------ simulation

/// The instances `[start, end)` of a window overlapping `[from, to)`, in order: the same
/// expansion as the slots the server evaluates.
fn window_instances(tz: chrono_tz::Tz, w: Window, from: i64, to: i64) -> Vec<(i64, i64)> {
    super::slots::window_instances(w, tz, from, to)
}

/// Local shift number of an instant: shifts start at 06:00, 14:00 and 22:00.
fn shift_of(tz: chrono_tz::Tz, ms: i64) -> i64 {
    let offset = Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|u| {
            tz.offset_from_utc_datetime(&u.naive_utc())
                .fix()
                .local_minus_utc() as i64
        })
        .unwrap_or(0)
        * 1000;
    (ms + offset - 6 * HOUR).div_euclid(8 * HOUR)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    OnTime,
    Late,
    Missed,
}

struct Visit {
    cp: usize,
    outcome: Outcome,
    /// Where the walk puts it (the scan time when on time).
    planned: i64,
    /// The next slot of the same rule and checkpoint when it starts where this one ends.
    next: Option<usize>,
    protected: bool,
}

/// A count rule: its route (index), its window instances in the period, `min_runs`.
struct CountPlan {
    route: usize,
    windows: Vec<(i64, i64)>,
    min_runs: u32,
}

struct Round {
    rule: usize,
    start: i64,
    end: i64,
    grace: i64,
    /// Visit indices, in target order.
    visits: Vec<usize>,
    /// Routes walked as runs: (route index, positions into `visits` in walking order,
    /// protected).
    runs: Vec<(usize, Vec<usize>, bool)>,
    /// Positions walked outside any run.
    free: Vec<usize>,
}

/// A fact before it has a device counter and clock.
struct Pending {
    t: i64,
    ord: u64,
    kind: FactKind,
    data: Value,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    rng: Prng,
    estate: String,
    cutoff: i64,
    facts: Vec<Vec<Pending>>,
    ord: u64,
    out: SimOutput,
    tags: HashSet<String>,
}

impl Sim<'_> {
    fn push(&mut self, device: usize, t: i64, kind: FactKind, data: Value) {
        if t < self.cfg.from || t >= self.cutoff {
            return;
        }
        match kind {
            FactKind::Scan => self.out.scans += 1,
            FactKind::RunEvent => self.out.run_events += 1,
            _ => {}
        }
        self.ord += 1;
        self.facts[device].push(Pending {
            t,
            ord: self.ord,
            kind,
            data,
        });
    }

    fn run_event(&mut self, device: usize, t: i64, run: Uuid, action: RunAction, extra: Value) {
        if t < self.cfg.from || t >= self.cutoff {
            return;
        }
        match action {
            RunAction::Start => self.out.runs_started += 1,
            RunAction::Abort => self.out.runs_aborted += 1,
            RunAction::Finish => {}
        }
        let mut m = Map::new();
        m.insert("estate_id".into(), Value::String(self.estate.clone()));
        m.insert("run_id".into(), Value::String(run.to_string()));
        m.insert("action".into(), Value::String(action.as_str().into()));
        if let Value::Object(x) = extra {
            m.extend(x);
        }
        self.push(device, t, FactKind::RunEvent, Value::Object(m));
    }

    /// A tag value as a handset might report it.
    fn tag_form(&mut self, tag: &Tag) -> String {
        if tag.kind != TagKind::Nfc {
            return tag.value.clone();
        }
        let v = &tag.value;
        let pairs = || {
            v.as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        };
        match self.rng.below(20) {
            0..=11 => v.clone(),
            12..=16 => pairs().join(":").to_ascii_lowercase(),
            17..=18 => pairs().join("-"),
            _ => format!("0x{}", v.to_ascii_lowercase()),
        }
    }

    fn scan(&mut self, device: usize, t: i64, cp: &Checkpoint, run: Option<Uuid>) {
        if t < self.cfg.from || t >= self.cutoff {
            return;
        }
        let Some(tag) = cp.tags.first() else {
            return;
        };
        let raw = self.tag_form(tag);
        let mut m = Map::new();
        m.insert("estate_id".into(), Value::String(self.estate.clone()));
        m.insert("tag".into(), Value::String(raw));
        m.insert(
            "method".into(),
            Value::String(
                match tag.kind {
                    TagKind::Nfc => "nfc",
                    TagKind::Qr => "qr",
                }
                .into(),
            ),
        );
        if let Some(r) = run {
            m.insert("run_id".into(), Value::String(r.to_string()));
        }
        if let Some(loc) = self.location(cp.location) {
            m.insert("location".into(), loc);
        }
        self.push(device, t, FactKind::Scan, Value::Object(m));
    }

    fn location(&mut self, at: Option<GeoPoint>) -> Option<Value> {
        let at = at?;
        if self.rng.chance(self.cfg.p_no_location) {
            self.out.no_location += 1;
            return None;
        }
        let far = self.rng.chance(self.cfg.p_outside_radius);
        let dist = if far {
            self.out.outside_radius += 1;
            self.rng.float(260.0, 360.0)
        } else {
            self.rng.float(0.0, 9.0)
        };
        let a = self.rng.float(0.0, std::f64::consts::TAU);
        let p = offset_point(at, dist * a.sin(), dist * a.cos());
        let accuracy = (self.rng.float(3.0, 16.0) * 10.0).round() / 10.0;
        let mock = self.rng.chance(self.cfg.p_mock_location);
        if mock {
            self.out.mock_location += 1;
        }
        Some(serde_json::json!({
            "lat": round6(p.lat),
            "lng": round6(p.lng),
            "accuracy_m": accuracy,
            "mock": mock,
        }))
    }

    fn stray_scan(&mut self, device: usize, t: i64) {
        if t < self.cfg.from || t >= self.cutoff {
            return;
        }
        let tag = loop {
            let b = self.rng.bytes10();
            let t = format!(
                "04{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            );
            if !self.tags.contains(&t) {
                break t;
            }
        };
        self.out.unknown_tag += 1;
        let data = serde_json::json!({
            "estate_id": self.estate,
            "tag": tag,
            "method": "nfc",
        });
        self.push(device, t, FactKind::Scan, data);
    }
}

/// Simulates the patrols of `cfg.guards` over `[cfg.from, cfg.to)` against `reference`.
/// Deterministic: the same reference and configuration give the same batches.
pub fn simulate(reference: &ReferenceSet, cfg: &SimConfig) -> SimOutput {
    let n_guards = cfg.guards.len();
    if n_guards == 0 || cfg.to <= cfg.from {
        return SimOutput::default();
    }
    let tz = parse_timezone(&reference.timezone).unwrap_or(chrono_tz::UTC);
    let team = cfg.team_size.clamp(1, n_guards);
    let cps = &reference.checkpoints;
    let cp_index: HashMap<CheckpointId, usize> =
        cps.iter().enumerate().map(|(i, c)| (c.id, i)).collect();

    let mut sim = Sim {
        cfg,
        rng: Prng::derive(cfg.seed, &[0x5107]),
        estate: reference.estate_id.to_string(),
        cutoff: cfg.to - 2_000,
        facts: (0..n_guards).map(|_| Vec::new()).collect(),
        ord: 0,
        out: SimOutput::default(),
        tags: cps
            .iter()
            .flat_map(|c| c.tags.iter().map(|t| t.value.clone()))
            .collect(),
    };

    // Count rules: (route index, its window instances, min_runs).
    let count_rules: Vec<CountPlan> = reference
        .rules
        .iter()
        .filter_map(|r| match &r.kind {
            RuleKind::Count { route_id, min_runs } => {
                let route = reference.routes.iter().position(|x| x.id == *route_id)?;
                let w = window_instances(tz, r.window, cfg.from, cfg.to);
                Some(CountPlan {
                    route,
                    windows: w,
                    min_runs: *min_runs,
                })
            }
            RuleKind::Interval { .. } => None,
        })
        .collect();
    let route_cps: Vec<Vec<usize>> = reference
        .routes
        .iter()
        .map(|r| {
            r.checkpoints
                .iter()
                .filter_map(|c| cp_index.get(c).copied())
                .collect()
        })
        .collect();

    // 1. Slots into rounds, each visit with its intended outcome.
    let mut visits: Vec<Visit> = Vec::new();
    let mut rounds: Vec<Round> = Vec::new();
    let mut interval_rules = 0usize;
    for rule in &reference.rules {
        let RuleKind::Interval {
            target,
            every_minutes,
            ..
        } = &rule.kind
        else {
            continue;
        };
        let rule_no = interval_rules;
        interval_rules += 1;
        let every = (*every_minutes).max(1) as i64 * MINUTE;
        let grace = rule.grace_ms();
        let targets: Vec<usize> = match target {
            RuleTarget::Class(c) => (0..cps.len()).filter(|&i| cps[i].class == *c).collect(),
            RuleTarget::Zone(z) => (0..cps.len())
                .filter(|&i| cps[i].zone_id == Some(*z))
                .collect(),
            RuleTarget::Checkpoints(ids) => {
                let mut v: Vec<usize> = ids
                    .iter()
                    .filter_map(|c| cp_index.get(c).copied())
                    .collect();
                v.dedup();
                v
            }
        };
        if targets.is_empty() {
            continue;
        }
        let mut prev_round: Option<usize> = None;
        for (ws, we) in window_instances(tz, rule.window, cfg.from, cfg.to) {
            let mut s = ws;
            while s < we {
                let e = (s + every).min(we);
                if s >= cfg.from && s < cfg.to {
                    let first = visits.len();
                    for &cp in &targets {
                        let outcome = if sim.rng.chance(cfg.p_missed) {
                            Outcome::Missed
                        } else if sim.rng.chance(cfg.p_late) {
                            Outcome::Late
                        } else {
                            Outcome::OnTime
                        };
                        visits.push(Visit {
                            cp,
                            outcome,
                            planned: s,
                            next: None,
                            protected: false,
                        });
                    }
                    if let Some(p) = prev_round {
                        if rounds[p].end == s {
                            for i in 0..targets.len() {
                                let v = rounds[p].visits[i];
                                visits[v].next = Some(first + i);
                            }
                        }
                    }
                    prev_round = Some(rounds.len());
                    rounds.push(Round {
                        rule: rule_no,
                        start: s,
                        end: e,
                        grace,
                        visits: (first..visits.len()).collect(),
                        runs: Vec::new(),
                        free: Vec::new(),
                    });
                }
                s += every;
            }
        }
    }

    // 2. Runs: routes whose checkpoints are all due in a round.
    let mut by_instance: Vec<Vec<Vec<(usize, usize)>>> = count_rules
        .iter()
        .map(|c| vec![Vec::new(); c.windows.len()])
        .collect();
    for (ri, round) in rounds.iter_mut().enumerate() {
        let pos: HashMap<usize, usize> = round
            .visits
            .iter()
            .enumerate()
            .map(|(p, &v)| (visits[v].cp, p))
            .collect();
        let mut used = vec![false; round.visits.len()];
        for (route, cps_of) in route_cps.iter().enumerate() {
            if cps_of.is_empty() {
                continue;
            }
            let Some(stops) = cps_of
                .iter()
                .map(|c| pos.get(c).copied())
                .collect::<Option<Vec<usize>>>()
            else {
                continue;
            };
            if stops.iter().any(|&p| used[p]) {
                continue;
            }
            // A route under a count rule is walked as a run only inside its windows.
            let mut governed = false;
            let mut inside = false;
            for (k, c) in count_rules.iter().enumerate() {
                if c.route != route {
                    continue;
                }
                governed = true;
                if let Some(i) = c
                    .windows
                    .iter()
                    .position(|&(s, e)| round.start >= s && round.start < e)
                {
                    inside = true;
                    by_instance[k][i].push((ri, round.runs.len()));
                }
            }
            if governed && !inside {
                continue;
            }
            let mut stops = stops;
            if !reference.routes[route].strict {
                for i in (1..stops.len()).rev() {
                    let j = sim.rng.below(i as u64 + 1) as usize;
                    stops.swap(i, j);
                }
            }
            for &p in &stops {
                used[p] = true;
            }
            round.runs.push((route, stops, false));
        }
        round.free = (0..round.visits.len()).filter(|&p| !used[p]).collect();
    }
    // Keep min_runs + 1 runs of each count-rule window clean.
    for (k, c) in count_rules.iter().enumerate() {
        for inst in &by_instance[k] {
            let mut cands = inst.clone();
            let keep = (c.min_runs as usize + 1).min(cands.len());
            for i in 0..keep {
                let j = i + sim.rng.below((cands.len() - i) as u64) as usize;
                cands.swap(i, j);
                let (ri, run) = cands[i];
                let round = &mut rounds[ri];
                round.runs[run].2 = true;
                for &p in &round.runs[run].1 {
                    let v = round.visits[p];
                    visits[v].protected = true;
                    visits[v].outcome = Outcome::OnTime;
                }
            }
        }
    }

    // 3. Walk times.
    let spread = team as i64 * 5_000;
    for round in &rounds {
        let order: Vec<usize> = round
            .runs
            .iter()
            .flat_map(|r| r.1.iter().copied())
            .chain(round.free.iter().copied())
            .collect();
        let n = order.len() as i64;
        let mut lo = round.start + round.grace;
        let mut hi = round.end - round.grace.max(MINUTE) - spread;
        if hi - lo < n * 20_000 {
            lo = round.start;
            hi = round.end - spread - 1_000;
        }
        let step = cfg.step_ms.min((hi - lo).max(0) / (n + 1)).max(1);
        let walk = step * n;
        let mut t = lo + sim.rng.range(0, (hi - lo - walk).max(1));
        for &p in &order {
            t += sim.rng.range(step * 2 / 3, step + 1);
            visits[round.visits[p]].planned = t;
        }
    }

    // 4. Late only where the evaluation will see it: the next slot keeps its own scan.
    for i in 0..visits.len() {
        if visits[i].outcome != Outcome::Late {
            continue;
        }
        if let Some(nx) = visits[i].next {
            if visits[nx].outcome != Outcome::OnTime || visits[nx].planned >= sim.cutoff {
                visits[i].outcome = Outcome::OnTime;
            }
        }
    }
    for round in &rounds {
        let decided = round.end + round.grace <= cfg.to;
        for &v in &round.visits {
            if !decided {
                sim.out.undecided += 1;
                continue;
            }
            match visits[v].outcome {
                Outcome::OnTime => sim.out.on_time += 1,
                Outcome::Late => sim.out.late += 1,
                Outcome::Missed => sim.out.missed += 1,
            }
        }
    }

    // 5. Facts, per team member.
    for round in &rounds {
        let shift = shift_of(tz, round.start);
        let base = shift.rem_euclid(n_guards as i64) as usize + round.rule * team;
        let late_at: Vec<i64> = round
            .visits
            .iter()
            .map(|_| round.end + (round.grace as f64 * sim.rng.float(0.15, 0.7)) as i64)
            .collect();
        let aborts: Vec<Option<(usize, &'static str)>> = round
            .runs
            .iter()
            .map(|(_, stops, protected)| {
                (!protected && stops.len() >= 2 && sim.rng.chance(cfg.p_abort)).then(|| {
                    (
                        1 + sim.rng.below(stops.len() as u64 - 1) as usize,
                        *sim.rng.pick(&ABORT_REASONS),
                    )
                })
            })
            .collect();
        for j in 0..team {
            let device = (base + j) % n_guards;
            let off = j as i64 * 4_000 + sim.rng.range(0, 900);
            let half = cfg.step_ms.min(60_000) / 2;
            let mut after_abort = Vec::new();
            for (k, (route, stops, _)) in round.runs.iter().enumerate() {
                let first = visits[round.visits[stops[0]]].planned + off;
                let last = visits[round.visits[stops[stops.len() - 1]]].planned + off;
                let run = sim.rng.uuid_v7(first - half);
                let route_id = reference.routes[*route].id.to_string();
                sim.run_event(
                    device,
                    (first - half).max(cfg.from),
                    run,
                    RunAction::Start,
                    serde_json::json!({ "route_id": route_id }),
                );
                let abort = aborts[k];
                for (s, &p) in stops.iter().enumerate() {
                    let v = &visits[round.visits[p]];
                    if abort.is_some_and(|(at, _)| s >= at) {
                        after_abort.push(p);
                        continue;
                    }
                    if v.outcome == Outcome::OnTime {
                        sim.scan(device, v.planned + off, &cps[v.cp], Some(run));
                    }
                }
                match abort {
                    Some((at, reason)) => {
                        let t = visits[round.visits[stops[at - 1]]].planned + off + half;
                        sim.run_event(
                            device,
                            t,
                            run,
                            RunAction::Abort,
                            serde_json::json!({ "reason": reason }),
                        );
                    }
                    None => sim.run_event(device, last + half, run, RunAction::Finish, Value::Null),
                }
            }
            // After an abort the guard carries on without a run.
            for &p in after_abort.iter().chain(round.free.iter()) {
                let v = &visits[round.visits[p]];
                if v.outcome == Outcome::OnTime {
                    sim.scan(device, v.planned + off, &cps[v.cp], None);
                }
            }
            for (p, &v) in round.visits.iter().enumerate() {
                let v = &visits[v];
                if v.outcome == Outcome::Late {
                    sim.scan(device, late_at[p] + off, &cps[v.cp], None);
                }
            }
            if sim.rng.chance(cfg.p_unknown_tag) {
                let t = sim.rng.range(round.start, round.end);
                sim.stray_scan(device, t);
            }
        }
    }

    // 6. Syncs: batches per handset.
    let facts = std::mem::take(&mut sim.facts);
    let mut out = sim.out;
    for (g, mut list) in facts.into_iter().enumerate() {
        list.sort_by_key(|f| (f.t, f.ord));
        let guard = cfg.guards[g];
        let mut rng = Prng::derive(cfg.seed, &[0x5CC, g as u64]);
        let mut clock = HlcClock::new();
        let mut seq = 0u64;
        let mut next = 0usize;
        let last_sync = cfg.to - 1_500;
        let mut sync =
            cfg.from + rng.range(cfg.sync_min_ms, cfg.sync_max_ms.max(cfg.sync_min_ms + 1));
        loop {
            let at = sync.min(last_sync);
            let upto = list[next..].partition_point(|f| f.t <= at) + next;
            let latency = rng.range(150, 900);
            for (k, chunk) in list[next..upto].chunks(cfg.max_batch.max(1)).enumerate() {
                let sent_true = at + k as i64;
                let received_at = sent_true + latency;
                let skewed = rng.chance(cfg.p_skewed_batch);
                let rebooted = !skewed && rng.chance(cfg.p_reboot_batch);
                let clock_error = if skewed {
                    cfg.skew_ms
                } else if rebooted {
                    0
                } else {
                    rng.range(-1_500, 1_500)
                };
                out.skewed_batches += skewed as usize;
                out.reboot_batches += rebooted as usize;
                let mut changes = Vec::with_capacity(chunk.len());
                for f in chunk {
                    seq += 1;
                    let recorded_at = f.t + clock_error;
                    let hlc = clock.tick(recorded_at.max(0) as u64);
                    let mut m = Map::new();
                    m.insert("kind".into(), Value::String(f.kind.as_str().into()));
                    m.insert(
                        "id".into(),
                        Value::String(rng.uuid_v7(recorded_at).to_string()),
                    );
                    m.insert("seq".into(), Value::from(seq));
                    m.insert("hlc".into(), Value::String(hlc.to_string()));
                    m.insert(
                        "recorded_at".into(),
                        Value::String(Timestamp(recorded_at).to_rfc3339()),
                    );
                    if !rebooted {
                        m.insert("age_ms".into(), Value::from(received_at - f.t));
                    }
                    m.insert("data".into(), f.data.clone());
                    changes.push(Value::Object(m));
                }
                out.batches.push(SimBatch {
                    device_id: guard.device_id,
                    user_id: guard.user_id,
                    batch_id: BatchId(rng.uuid_v7(sent_true + clock_error)),
                    sent_at: sent_true + clock_error,
                    received_at,
                    changes,
                    skewed,
                    rebooted,
                });
            }
            next = upto;
            if at >= last_sync {
                break;
            }
            sync += rng.range(cfg.sync_min_ms, cfg.sync_max_ms.max(cfg.sync_min_ms + 1));
        }
    }
    out.batches
        .sort_by_key(|b| (b.received_at, b.device_id, b.sent_at));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_is_deterministic_and_in_range() {
        let mut a = Prng::new(7);
        let mut b = Prng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(-5, 5);
            assert!((-5..5).contains(&x));
            assert!(a.below(3) < 3);
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            b.range(-5, 5);
            b.below(3);
            b.unit();
        }
        assert_ne!(Prng::new(1).next_u64(), Prng::new(2).next_u64());
        assert_eq!(Prng::new(1).range(4, 4), 4);
        let n = (0..10_000).filter(|_| a.chance(0.25)).count();
        assert!((2_200..2_800).contains(&n), "{n}");
        assert_eq!(a.uuid_v7(1_700_000_000_000).get_version_num(), 7);
    }

    #[test]
    fn window_instances_wrap_midnight_in_the_estate_zone() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-20T00:00+08:00 .. one day.
        let from = 1_795_132_800_000 - 8 * HOUR;
        let night = Window {
            start: TimeOfDay(22 * 60),
            end: TimeOfDay(6 * 60),
        };
        let w = window_instances(tz, night, from, from + DAY);
        assert_eq!(
            w,
            vec![
                (from - 2 * HOUR, from + 6 * HOUR),
                (from + 22 * HOUR, from + 30 * HOUR)
            ]
        );
        let day = Window {
            start: TimeOfDay(0),
            end: TimeOfDay(0),
        };
        assert_eq!(
            window_instances(tz, day, from, from + DAY),
            vec![(from, from + DAY)]
        );
        assert_eq!(
            shift_of(tz, from + 6 * HOUR) + 2,
            shift_of(tz, from + 22 * HOUR)
        );
    }
}
