//! The patrol simulator: its plans apply, its batches are what a handset would send, and it
//! is deterministic.

use shared_core::patrol::reference::apply;
use shared_core::patrol::scan::{parse_run_event, parse_scan};
use shared_core::patrol::sim::{
    estate_plan, sim_guards, simulate, EstateSpec, SimConfig, SimOutput,
};
use shared_core::patrol::*;
use shared_core::time::{trusted_time, TimeEvidence};
use shared_core::validate::validate_change;
use shared_core::wire::Timestamp;
use shared_core::{CheckpointId, DeviceId, EstateId, FactKind, Hlc};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

const SEED: u64 = 20_261_122;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-15T00:00+08:00.
const MIDNIGHT: i64 = 1_794_700_800_000 - 8 * HOUR;

fn estate() -> EstateId {
    EstateId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_e57a))
}

fn reference(spec: &EstateSpec) -> ReferenceSet {
    let ops = estate_plan(estate(), spec, SEED);
    apply(&ReferenceSet::empty(estate(), "Asia/Shanghai"), &ops)
        .unwrap_or_else(|e| panic!("the plan was refused: {e:#?}"))
        .0
}

/// A demo week ending at an odd time of day, as the server's seeding would run it.
fn demo_week() -> (ReferenceSet, SimConfig, SimOutput) {
    let r = reference(&EstateSpec::demo());
    let to = MIDNIGHT + 7 * DAY + 13 * HOUR + 1_234_567;
    let cfg = SimConfig::demo(to - 7 * DAY, to, sim_guards(2, 1));
    let out = simulate(&r, &cfg);
    (r, cfg, out)
}

fn json_of(out: &SimOutput) -> String {
    let v: Vec<_> = out
        .batches
        .iter()
        .map(|b| serde_json::json!([b.received_at, b.push_body()]))
        .collect();
    serde_json::to_string(&v).unwrap()
}

#[test]
fn the_plans_apply_cleanly() {
    let demo = reference(&EstateSpec::demo());
    assert_eq!(demo.zones.len(), 6);
    assert_eq!(demo.checkpoints.len(), 40);
    let key = demo
        .checkpoints
        .iter()
        .filter(|c| c.class == CheckpointClass::Key)
        .count();
    assert_eq!(key, 12);
    assert_eq!(demo.routes.len(), 3);
    assert_eq!(demo.rules.len(), 3);
    assert_eq!(demo.zones[0].code, "Z01");
    assert_eq!(demo.checkpoints[0].code, "CP-001");
    let r1 = &demo.routes[0];
    assert_eq!(
        (r1.code.as_str(), r1.checkpoints.len(), r1.strict),
        ("R1", 12, true)
    );
    for c in &demo.checkpoints {
        let t = &c.tags[0].value;
        assert_eq!(t.len(), 14);
        assert!(t
            .chars()
            .all(|x| x.is_ascii_digit() || x.is_ascii_uppercase()));
        let p = c.location.unwrap();
        let north = (p.lat - 31.2304) * 111_320.0;
        let east = (p.lng - 121.4737) * 111_320.0 * 31.2304f64.to_radians().cos();
        assert!(north.hypot(east) < 300.0, "{} is too far", c.code);
        assert_eq!(c.radius_m, 30.0);
    }
    // Every general checkpoint is on exactly one of R2, R3.
    let on: Vec<_> = demo.routes[1..]
        .iter()
        .flat_map(|r| r.checkpoints.iter())
        .collect();
    assert_eq!(on.len(), 28);
    assert_eq!(on.iter().collect::<HashSet<_>>().len(), 28);

    let big = reference(&EstateSpec::sized(200));
    assert_eq!(big.checkpoints.len(), 200);
    let key = big
        .checkpoints
        .iter()
        .filter(|c| c.class == CheckpointClass::Key)
        .count();
    assert_eq!(key, 60);
    assert_eq!(big.routes.len(), 3);

    // The same seed gives the same plan; another seed other ids and tags.
    assert_eq!(reference(&EstateSpec::demo()), demo);
    let other = estate_plan(estate(), &EstateSpec::demo(), SEED + 1);
    let other = apply(&ReferenceSet::empty(estate(), "Asia/Shanghai"), &other)
        .unwrap()
        .0;
    assert_ne!(other.checkpoints[0].id, demo.checkpoints[0].id);
    assert_ne!(other.checkpoints[0].tags, demo.checkpoints[0].tags);
}

#[test]
fn simulate_is_deterministic_and_the_seed_matters() {
    let (r, cfg, a) = demo_week();
    let b = simulate(&r, &cfg);
    assert_eq!(a, b);
    assert_eq!(json_of(&a), json_of(&b));
    let c = simulate(
        &r,
        &SimConfig {
            seed: cfg.seed + 1,
            ..cfg.clone()
        },
    );
    assert_ne!(json_of(&a), json_of(&c));
}

#[test]
fn every_change_is_a_valid_fact() {
    let (r, _, out) = demo_week();
    let known: HashSet<String> = r
        .checkpoints
        .iter()
        .flat_map(|c| c.tags.iter().map(Tag::key))
        .collect();
    let (mut scans, mut events, mut unknown, mut forms) = (0, 0, 0, HashSet::new());
    for b in &out.batches {
        assert!(b.changes.len() <= 500);
        assert!(!b.changes.is_empty());
        let body = b.push_body();
        assert_eq!(body["device_id"], b.device_id.to_string());
        assert_eq!(body["changes"].as_array().unwrap().len(), b.changes.len());
        assert_eq!(
            Timestamp::parse(body["sent_at"].as_str().unwrap()),
            Some(Timestamp(b.sent_at))
        );
        for raw in &b.changes {
            let c =
                validate_change(raw, |e| e == estate()).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            assert_eq!(c.id.0.get_version_num(), 7);
            assert_eq!(c.age_ms.is_none(), b.rebooted);
            match c.kind {
                FactKind::Scan => {
                    scans += 1;
                    let s = parse_scan(&c.data).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
                    if !known.contains(&s.tag_key) {
                        unknown += 1;
                    }
                    forms.insert(
                        s.tag_raw
                            .chars()
                            .find(|x| !x.is_ascii_alphanumeric())
                            .unwrap_or(if s.tag_raw.chars().any(|x| x.is_ascii_lowercase()) {
                                'x'
                            } else {
                                'U'
                            }),
                    );
                }
                FactKind::RunEvent => {
                    events += 1;
                    parse_run_event(&c.data).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
                }
                k => panic!("unexpected kind {k}"),
            }
        }
    }
    assert_eq!(scans, out.scans);
    assert_eq!(events, out.run_events);
    assert_eq!(unknown, out.unknown_tag);
    // Tags come upper-case plain, with colons, with dashes and with 0x.
    assert!(forms.len() >= 3, "{forms:?}");
}

#[test]
fn seq_and_hlc_run_on_per_device_and_trusted_times_lie_in_the_period() {
    let (_, cfg, out) = demo_week();
    let mut per_device: BTreeMap<DeviceId, Vec<(u64, Hlc)>> = BTreeMap::new();
    let mut last_received = i64::MIN;
    for b in &out.batches {
        assert!(b.received_at >= last_received, "batches by receipt");
        last_received = b.received_at;
        assert!(b.received_at > b.sent_at - 11 * 60_000);
        assert!((cfg.from..=cfg.to).contains(&b.received_at));
        for raw in &b.changes {
            let c = validate_change(raw, |_| true).unwrap();
            per_device
                .entry(b.device_id)
                .or_default()
                .push((c.seq, c.hlc));
            let t = trusted_time(TimeEvidence {
                received_at: b.received_at,
                sent_at: b.sent_at,
                recorded_at: c.recorded_at.0,
                age_ms: c.age_ms,
            });
            assert!(
                (cfg.from..=cfg.to).contains(&t.trusted_at),
                "{raw} trusted at {}",
                t.trusted_at
            );
            assert_eq!(t.clock_skew, b.skewed);
        }
    }
    assert_eq!(per_device.len(), 2);
    for (d, mut v) in per_device {
        let in_order: Vec<u64> = v.iter().map(|x| x.0).collect();
        v.sort();
        assert_eq!(
            v.iter().map(|x| x.0).collect::<Vec<_>>(),
            (1..=v.len() as u64).collect::<Vec<_>>(),
            "{d}: seq from 1 without gaps"
        );
        assert!(
            v.windows(2).all(|w| w[0].1 < w[1].1),
            "{d}: hlc increases with seq"
        );
        // Within the output, a device's facts come in seq order.
        assert!(in_order.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn the_demo_week_has_the_expected_size_and_mix() {
    let t = std::time::Instant::now();
    let (r, _, out) = demo_week();
    let took = t.elapsed();
    // 12 × 24 + 28 × 12 = 624 visits a day; a few missed.
    assert!((4_000..=4_600).contains(&out.scans), "{}", out.scans);
    let slots = out.on_time + out.late + out.missed + out.undecided;
    assert!((7 * 624 - 80..=7 * 624 + 80).contains(&slots), "{slots}");
    let decided = (out.on_time + out.late + out.missed) as f64;
    let late = out.late as f64 / decided;
    let missed = out.missed as f64 / decided;
    assert!((0.01..0.05).contains(&late), "late {late}");
    assert!((0.015..0.05).contains(&missed), "missed {missed}");
    assert!(out.outside_radius > 20 && out.mock_location > 0);
    assert!(out.skewed_batches > 0 && out.reboot_batches > 0);
    assert!(out.runs_aborted > 0);
    assert!(out.runs_started >= 7 * 8, "{}", out.runs_started);
    assert!(out.batches.len() > 100);
    // Well under a second in release; debug builds get slack.
    assert!(took.as_secs_f64() < 5.0, "{took:?}");

    // Each night has at least 4 complete runs of R1: started, finished, every stop scanned.
    let r1 = &r.routes[0];
    let r1_tags: HashSet<String> = r1
        .checkpoints
        .iter()
        .map(|id| r.checkpoints.iter().find(|c| c.id == *id).unwrap().tags[0].key())
        .collect();
    let mut started: HashMap<String, i64> = HashMap::new();
    let mut finished = HashSet::new();
    let mut scanned: HashMap<String, HashSet<String>> = HashMap::new();
    for b in &out.batches {
        for raw in &b.changes {
            let c = validate_change(raw, |_| true).unwrap();
            let at = b.received_at - c.age_ms.unwrap_or(b.received_at - c.recorded_at.0);
            match c.kind {
                FactKind::RunEvent => {
                    let e = parse_run_event(&c.data).unwrap();
                    match e.action {
                        RunAction::Start if e.route_id == Some(r1.id) => {
                            started.insert(e.run_id.to_string(), at);
                        }
                        RunAction::Finish => {
                            finished.insert(e.run_id.to_string());
                        }
                        _ => {}
                    }
                }
                _ => {
                    let s = parse_scan(&c.data).unwrap();
                    if let Some(run) = s.run_id {
                        scanned
                            .entry(run.to_string())
                            .or_default()
                            .insert(s.tag_key);
                    }
                }
            }
        }
    }
    let mut per_night: BTreeMap<i64, usize> = BTreeMap::new();
    for (run, at) in &started {
        let complete =
            finished.contains(run) && scanned.get(run).is_some_and(|s| s.is_superset(&r1_tags));
        // Nights by the local date they start on (22:00 +08:00 = 14:00 UTC).
        let night = (at - MIDNIGHT - 22 * HOUR).div_euclid(DAY);
        *per_night.entry(night).or_default() += complete as usize;
    }
    let (first, last) = (
        *per_night.keys().next().unwrap(),
        *per_night.keys().last().unwrap(),
    );
    for (night, complete) in &per_night {
        if *night != first && *night != last {
            assert!(*complete >= 4, "night {night}: {complete} complete runs");
        }
    }
    assert!(per_night.len() >= 7);
}

#[test]
fn a_benchmark_day_is_a_thirtieth_of_a_million_scans() {
    let r = reference(&EstateSpec::sized(200));
    let from = MIDNIGHT;
    let cfg = SimConfig::benchmark(from, from + DAY, sim_guards(24, 9));
    let t = std::time::Instant::now();
    let out = simulate(&r, &cfg);
    let took = t.elapsed();
    // 60 × 24 + 140 × 12 = 3,120 visits, 97 % scanned, by 11 guards each.
    assert!((31_000..=35_500).contains(&out.scans), "{}", out.scans);
    assert!(took.as_secs_f64() < 20.0, "{took:?}");
    let devices: HashSet<_> = out.batches.iter().map(|b| b.device_id).collect();
    assert!(devices.len() >= 22);
    assert!(out.batches.iter().all(|b| b.changes.len() <= 500));
}

#[test]
fn no_guards_or_an_empty_period_simulate_nothing() {
    let r = reference(&EstateSpec::demo());
    let out = simulate(&r, &SimConfig::demo(MIDNIGHT, MIDNIGHT + DAY, vec![]));
    assert!(out.batches.is_empty());
    let out = simulate(&r, &SimConfig::demo(MIDNIGHT, MIDNIGHT, sim_guards(2, 1)));
    assert_eq!(out.scans, 0);
}

/// The slot rules of docs/PROTOCOL.md, naively, for an estate whose checkpoints are each
/// under one whole-day interval rule: (on_time, late, early, missed) of the slots decided
/// by `to`.
fn naive_slot_counts(r: &ReferenceSet, cfg: &SimConfig, out: &SimOutput) -> [usize; 4] {
    let index: HashMap<CheckpointId, usize> = r
        .checkpoints
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let mut scans: Vec<Vec<i64>> = vec![vec![]; r.checkpoints.len()];
    for s in observations(r, out) {
        if let Some(&i) = s.checkpoint_id.and_then(|c| index.get(&c)) {
            scans[i].push(s.trusted_at);
        }
    }
    let mut counts = [0; 4];
    for (ci, c) in r.checkpoints.iter().enumerate() {
        let rule = r
            .rules
            .iter()
            .find(|x| matches!(&x.kind, RuleKind::Interval { target: RuleTarget::Class(k), .. } if *k == c.class))
            .unwrap();
        let RuleKind::Interval { every_minutes, .. } = rule.kind else {
            unreachable!()
        };
        let (every, grace) = (every_minutes as i64 * 60_000, rule.grace_ms());
        let mut v = scans[ci].clone();
        v.sort();
        let mut used = vec![false; v.len()];
        let free = |lo: i64, hi: i64, used: &[bool]| {
            (0..v.len()).find(|&i| !used[i] && v[i] >= lo && v[i] < hi)
        };
        let mut s = MIDNIGHT - 30 * DAY;
        while s < cfg.to {
            let end = s + every;
            if s >= cfg.from && end + grace <= cfg.to {
                if let Some(i) = free(s, end, &used) {
                    used[i] = true;
                    counts[0] += 1;
                } else if let Some(i) = free(end, end + grace, &used) {
                    // Taken from the next slot only when that slot keeps another on-time scan.
                    let mut rest = used.clone();
                    rest[i] = true;
                    if free(end, end + every, &rest).is_some() {
                        used[i] = true;
                        counts[1] += 1;
                    } else {
                        counts[3] += 1;
                    }
                } else if let Some(i) = (0..v.len())
                    .rev()
                    .find(|&i| !used[i] && v[i] >= s - grace && v[i] < s)
                {
                    used[i] = true;
                    counts[2] += 1;
                } else {
                    counts[3] += 1;
                }
            }
            s = end;
        }
    }
    counts
}

#[test]
fn intended_slot_results_are_what_the_slot_rules_find() {
    let (r, cfg, out) = demo_week();
    assert_eq!(
        naive_slot_counts(&r, &cfg, &out),
        [out.on_time, out.late, 0, out.missed]
    );
    // Teams: the extra scans of a team never change a slot's result.
    let r = reference(&EstateSpec::sized(200));
    let to = MIDNIGHT + DAY + 5 * HOUR + 987_654;
    let cfg = SimConfig::benchmark(to - DAY, to, sim_guards(24, 9));
    let out = simulate(&r, &cfg);
    assert_eq!(
        naive_slot_counts(&r, &cfg, &out),
        [out.on_time, out.late, 0, out.missed]
    );
}

/// The simulator's scans, as the store would give them to coverage.
fn observations(r: &ReferenceSet, out: &SimOutput) -> Vec<ScanObs> {
    let by_tag: HashMap<String, CheckpointId> = r
        .checkpoints
        .iter()
        .flat_map(|c| c.tags.iter().map(move |t| (t.key(), c.id)))
        .collect();
    let mut scans = Vec::new();
    for b in &out.batches {
        for raw in &b.changes {
            let c = validate_change(raw, |_| true).unwrap();
            if c.kind != FactKind::Scan {
                continue;
            }
            let s = parse_scan(&c.data).unwrap();
            let t = trusted_time(TimeEvidence {
                received_at: b.received_at,
                sent_at: b.sent_at,
                recorded_at: c.recorded_at.0,
                age_ms: c.age_ms,
            });
            scans.push(ScanObs {
                id: c.id,
                device_id: b.device_id,
                user_id: b.user_id,
                seq: c.seq,
                trusted_at: t.trusted_at,
                verified: t.clock_trust == shared_core::ClockTrust::Verified,
                clock_skew: t.clock_skew,
                checkpoint_id: by_tag.get(&s.tag_key).copied(),
                tag_key: s.tag_key,
                run_id: s.run_id,
                location: s.location,
            });
        }
    }
    scans
}

/// The server's own evaluation (`slots::evaluate`) of the simulated scans finds the
/// results the simulator intended, for the demo week and a benchmark day with teams.
#[test]
fn the_slot_evaluation_finds_what_the_simulator_intended() {
    use shared_core::patrol::slots::evaluate;
    let cases = {
        let (r, cfg, out) = demo_week();
        let big = reference(&EstateSpec::sized(200));
        let to = MIDNIGHT + 2 * DAY;
        let big_cfg = SimConfig::benchmark(to - 2 * DAY, to, sim_guards(24, 9));
        let big_out = simulate(&big, &big_cfg);
        vec![(r, cfg, out), (big, big_cfg, big_out)]
    };
    for (r, cfg, out) in cases {
        let scans = observations(&r, &out);
        let flags = vec![vec![]; scans.len()];
        let e = evaluate(&EvalInput {
            reference: &r,
            from: cfg.from,
            to: cfg.to,
            now: cfg.to,
            scans: &scans,
            flags: &flags,
            excuses: &[],
            runs: &[],
        });
        let decided = e
            .slots
            .iter()
            .filter(|s| s.spec.start >= cfg.from && s.spec.end + s.spec.grace_ms <= cfg.to);
        let mut got = [0usize; 4];
        for s in decided {
            match s.status {
                SlotStatus::OnTime => got[0] += 1,
                SlotStatus::Late => got[1] += 1,
                SlotStatus::Early => got[2] += 1,
                SlotStatus::Missed => got[3] += 1,
                other => panic!("a decided slot is {other:?}"),
            }
        }
        assert_eq!(got, [out.on_time, out.late, 0, out.missed]);
    }
}
