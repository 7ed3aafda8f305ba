//! Scan anomaly flags and the run fold (PROTOCOL "Scans and runs"): each flag rule on both
//! sides of its threshold, runs by status, and property tests that neither depends on the
//! order of its input.

use proptest::prelude::*;
use shared_core::hlc::Hlc;
use shared_core::patrol::flags::{distance_m, flag_scans};
use shared_core::patrol::runs::fold_runs;
use shared_core::patrol::*;
use shared_core::wire::Timestamp;
use shared_core::{CheckpointId, DeviceId, EstateId, FactId, RouteId, RunId, UserId};
use std::collections::HashMap;
use uuid::Uuid;

use ScanFlag::*;

// ------------------------------------------------------------------ fixtures

/// 2024-11-22T01:30:00Z.
const T0: i64 = 1_732_239_000_000;
const SEC: i64 = 1_000;
const BASE: GeoPoint = GeoPoint {
    lat: 31.23,
    lng: 121.47,
};

fn estate() -> EstateId {
    EstateId(Uuid::from_u128(0xE57A7E))
}
fn cp_id(n: u128) -> CheckpointId {
    CheckpointId(Uuid::from_u128(0x200 + n))
}
fn route_id(n: u128) -> RouteId {
    RouteId(Uuid::from_u128(0x300 + n))
}
fn run_id(n: u128) -> RunId {
    RunId(Uuid::from_u128(0x500 + n))
}
fn device(n: u128) -> DeviceId {
    DeviceId(Uuid::from_u128(0x600 + n))
}
fn user(n: u128) -> UserId {
    UserId(Uuid::from_u128(0x700 + n))
}

/// A point `m` metres due north of [`BASE`] (along a meridian the haversine distance is the
/// difference in metres, to float precision).
fn north(m: f64) -> GeoPoint {
    let m_per_deg = 6_371_000.0 * std::f64::consts::PI / 180.0;
    GeoPoint {
        lat: BASE.lat + m / m_per_deg,
        lng: BASE.lng,
    }
}

/// Checkpoint `n`, radius 30 m, `m` metres north of [`BASE`] (`None`: no location).
fn cp(n: u128, m: Option<f64>) -> Checkpoint {
    Checkpoint {
        id: cp_id(n),
        estate_id: estate(),
        zone_id: None,
        code: format!("CP{n}"),
        name: format!("Checkpoint {n}"),
        class: CheckpointClass::General,
        location: m.map(north),
        radius_m: DEFAULT_RADIUS_M,
        floor: None,
        instructions: None,
        tags: vec![Tag {
            kind: TagKind::Nfc,
            value: format!("{n:08X}"),
        }],
    }
}

/// Checkpoints `(n, metres north)`.
fn reference(cps: &[(u128, f64)]) -> ReferenceSet {
    let mut r = ReferenceSet::empty(estate(), "Asia/Shanghai");
    r.checkpoints = cps.iter().map(|&(n, m)| cp(n, Some(m))).collect();
    r
}

fn route(n: u128, cps: &[u128], strict: bool) -> Route {
    Route {
        id: route_id(n),
        estate_id: estate(),
        code: format!("R{n}"),
        name: format!("Route {n}"),
        checkpoints: cps.iter().map(|&c| cp_id(c)).collect(),
        strict,
        expected_minutes: 30,
    }
}

/// Scan `n` of checkpoint `c` by device 1 at `T0 + t`, seq `n`, verified, no location.
fn scan(n: u128, c: u128, t: i64) -> ScanObs {
    ScanObs {
        id: FactId(Uuid::from_u128(0x1000 + n)),
        device_id: device(1),
        user_id: user(1),
        seq: n as u64,
        trusted_at: T0 + t,
        verified: true,
        clock_skew: false,
        tag_key: format!("nfc:{c:08X}"),
        checkpoint_id: Some(cp_id(c)),
        run_id: None,
        location: None,
    }
}

trait ScanExt: Sized {
    fn with(self, f: impl FnOnce(&mut ScanObs)) -> Self;
    /// Reported `m` metres north of [`BASE`].
    fn at(self, m: f64) -> Self {
        self.at_point(north(m))
    }
    fn at_point(self, p: GeoPoint) -> Self {
        self.with(|s| {
            s.location = Some(ScanLocation {
                lat: p.lat,
                lng: p.lng,
                accuracy_m: None,
                mock: false,
            })
        })
    }
    fn acc(self, a: f64) -> Self {
        self.with(|s| s.location.as_mut().unwrap().accuracy_m = Some(a))
    }
    fn mock(self) -> Self {
        self.with(|s| s.location.as_mut().unwrap().mock = true)
    }
    fn dev(self, d: u128) -> Self {
        self.with(|s| s.device_id = device(d))
    }
    fn seq(self, q: u64) -> Self {
        self.with(|s| s.seq = q)
    }
    fn run(self, r: u128) -> Self {
        self.with(|s| s.run_id = Some(run_id(r)))
    }
    /// A tag on no checkpoint.
    fn unknown(self, tag: &str) -> Self {
        self.with(|s| {
            s.checkpoint_id = None;
            s.tag_key = format!("nfc:{tag}");
        })
    }
}

impl ScanExt for ScanObs {
    fn with(mut self, f: impl FnOnce(&mut ScanObs)) -> Self {
        f(&mut self);
        self
    }
}

fn flags(scans: &[ScanObs], r: &ReferenceSet) -> Vec<Vec<ScanFlag>> {
    flag_scans(scans, r)
}

/// Whether each scan has `flag`.
fn has(scans: &[ScanObs], r: &ReferenceSet, flag: ScanFlag) -> Vec<bool> {
    flags(scans, r).iter().map(|f| f.contains(&flag)).collect()
}

fn event(n: u128, run: u128, action: RunAction, t: i64) -> RunEventObs {
    RunEventObs {
        fact_id: FactId(Uuid::from_u128(0x2000 + n)),
        device_id: device(1),
        user_id: user(1),
        hlc: Hlc::new((T0 + t) as u64, 0),
        trusted_at: T0 + t,
        data: RunEventData {
            run_id: run_id(run),
            action,
            route_id: None,
            reason: None,
        },
    }
}

fn start(n: u128, run: u128, route: u128, t: i64) -> RunEventObs {
    let mut e = event(n, run, RunAction::Start, t);
    e.data.route_id = Some(route_id(route));
    e
}

fn abort(n: u128, run: u128, reason: &str, t: i64) -> RunEventObs {
    let mut e = event(n, run, RunAction::Abort, t);
    e.data.reason = Some(reason.into());
    e
}

/// Checkpoints 1..=5 close together, routes 1 (strict: 1, 2, 3) and 2 (any order: 1, 2, 3).
fn run_reference() -> ReferenceSet {
    let mut r = reference(&[(1, 0.0), (2, 5.0), (3, 10.0), (4, 15.0), (5, 20.0)]);
    r.routes = vec![route(1, &[1, 2, 3], true), route(2, &[1, 2, 3], false)];
    r
}

fn one_run(events: &[RunEventObs], scans: &[ScanObs]) -> Run {
    let runs = fold_runs(events, scans, &run_reference());
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

// ------------------------------------------------------------------ flags, scan by scan

#[test]
fn a_clean_scan_has_no_flags() {
    let r = reference(&[(1, 0.0)]);
    assert_eq!(flags(&[scan(1, 1, 0).at(10.0).acc(5.0)], &r), vec![vec![]]);
    assert_eq!(flags(&[], &r), Vec::<Vec<ScanFlag>>::new());
}

#[test]
fn a_tag_on_no_checkpoint_is_unknown_tag() {
    let r = reference(&[(1, 0.0)]);
    let s = [
        scan(1, 1, 0).unknown("DEADBEEF"),
        scan(2, 9, 0),
        scan(3, 1, 0),
    ];
    // Checkpoint 9 is not in the reference data: unknown too.
    assert_eq!(
        flags(&s, &r),
        vec![vec![UnknownTag], vec![UnknownTag], vec![]]
    );
}

#[test]
fn a_scan_far_from_its_checkpoint_is_outside_radius() {
    let r = reference(&[(1, 0.0)]);
    assert_eq!(
        flags(&[scan(1, 1, 0).at(1000.0)], &r),
        vec![vec![OutsideRadius]]
    );
    assert_eq!(flags(&[scan(1, 1, 0).at(29.0)], &r), vec![vec![]]);
    assert_eq!(
        flags(&[scan(1, 1, 0).at(31.0)], &r),
        vec![vec![OutsideRadius]]
    );
    // The reported accuracy widens the radius…
    assert_eq!(flags(&[scan(1, 1, 0).at(45.0).acc(20.0)], &r), vec![vec![]]);
    assert_eq!(
        flags(&[scan(1, 1, 0).at(51.0).acc(20.0)], &r),
        vec![vec![OutsideRadius]]
    );
    // …counted up to 100 m.
    assert_eq!(
        flags(&[scan(1, 1, 0).at(129.0).acc(500.0)], &r),
        vec![vec![]]
    );
    assert_eq!(
        flags(&[scan(1, 1, 0).at(131.0).acc(500.0)], &r),
        vec![vec![OutsideRadius]]
    );
}

#[test]
fn exactly_radius_plus_accuracy_is_inside() {
    let p = north(80.0);
    let d = distance_m(p, BASE);
    assert!((d - 80.0).abs() < 1e-6, "{d}");
    let at = |radius: f64, acc: Option<f64>, extra: f64| {
        let mut r = reference(&[(1, 0.0)]);
        r.checkpoints[0].radius_m = radius;
        let mut s = scan(1, 1, 0).at_point(p);
        s.location.as_mut().unwrap().accuracy_m = acc.map(|a| a - extra);
        flags(&[s], &r)
    };
    assert_eq!(d - 20.0 + 20.0, d, "the test's sum must be exact");
    assert_eq!(at(d, None, 0.0), vec![vec![]]);
    assert_eq!(at(d - 20.0, Some(20.0), 0.0), vec![vec![]]);
    assert_eq!(at(0.0, Some(d), 0.0), vec![vec![]]);
    assert_eq!(at(d - 20.0, Some(20.0), 0.01), vec![vec![OutsideRadius]]);
}

#[test]
fn outside_radius_needs_both_locations() {
    let mut r = reference(&[(1, 0.0)]);
    assert_eq!(flags(&[scan(1, 1, 0)], &r), vec![vec![]]);
    r.checkpoints[0].location = None;
    assert_eq!(flags(&[scan(1, 1, 0).at(1000.0)], &r), vec![vec![]]);
    // An unknown tag has no checkpoint to be far from.
    assert_eq!(
        flags(&[scan(1, 1, 0).unknown("X").at(1000.0)], &r),
        vec![vec![UnknownTag]]
    );
}

#[test]
fn a_mock_location_is_flagged() {
    let r = reference(&[(1, 0.0)]);
    assert_eq!(
        flags(&[scan(1, 1, 0).at(0.0).mock()], &r),
        vec![vec![MockLocation]]
    );
    assert_eq!(
        flags(&[scan(1, 1, 0).at(1000.0).mock()], &r),
        vec![vec![OutsideRadius, MockLocation]]
    );
}

#[test]
fn clock_skew_is_carried() {
    let r = reference(&[(1, 0.0)]);
    let s = scan(1, 1, 0).with(|s| s.clock_skew = true);
    assert_eq!(flags(&[s], &r), vec![vec![ClockSkew]]);
}

#[test]
fn flags_are_sorted_and_unrepeated() {
    let r = reference(&[(1, 0.0)]);
    let s = scan(1, 1, 0)
        .unknown("X")
        .at(5000.0)
        .mock()
        .with(|s| s.clock_skew = true);
    assert_eq!(
        flags(&[s], &r),
        vec![vec![MockLocation, ClockSkew, UnknownTag]]
    );
}

// ------------------------------------------------------------------ impossible speed

#[test]
fn faster_than_10_m_s_over_more_than_50_m_is_impossible_speed() {
    let r = reference(&[(1, 0.0), (2, 99.0), (3, 101.0), (4, 99.99)]);
    // 9.9 m/s: no; 10.1 m/s: the later scan only; 9.999 m/s: no.
    assert_eq!(
        flags(&[scan(1, 1, 0), scan(2, 2, 10 * SEC)], &r),
        vec![vec![], vec![]]
    );
    assert_eq!(
        flags(&[scan(1, 1, 0), scan(2, 3, 10 * SEC)], &r),
        vec![vec![], vec![ImpossibleSpeed]]
    );
    assert_eq!(
        flags(&[scan(1, 1, 0), scan(2, 4, 10 * SEC)], &r),
        vec![vec![], vec![]]
    );
}

#[test]
fn fifty_metres_or_less_is_never_impossible_speed() {
    let r = reference(&[(1, 0.0), (2, 49.0), (3, 51.0)]);
    assert_eq!(
        has(&[scan(1, 1, 0), scan(2, 2, 0)], &r, ImpossibleSpeed),
        [false, false]
    );
    assert_eq!(
        has(&[scan(1, 1, 0), scan(2, 3, 0)], &r, ImpossibleSpeed),
        [false, true]
    );
    assert_eq!(
        has(&[scan(1, 1, 0), scan(2, 2, 1)], &r, ImpossibleSpeed),
        [false, false]
    );
}

#[test]
fn speed_reads_the_reported_location_before_the_checkpoints() {
    let r = reference(&[(1, 0.0), (2, 1000.0)]);
    // Both reported at the same place (the second one far outside its radius).
    let s = [scan(1, 1, 0).at(0.0), scan(2, 2, SEC).at(0.0)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, false]);
    // Reported 1 km from the first checkpoint's position one second later.
    let s = [scan(1, 1, 0), scan(2, 1, SEC).at(1000.0)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, true]);
}

#[test]
fn speed_skips_a_pair_with_an_unknown_position() {
    let mut r = reference(&[(1, 0.0), (2, 1000.0)]);
    let s = [scan(1, 1, 0).unknown("X"), scan(2, 2, SEC)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, false]);
    r.checkpoints[1].location = None;
    let s = [scan(1, 1, 0), scan(2, 2, SEC)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, false]);
}

#[test]
fn speed_compares_only_the_previous_scan_of_the_same_device_by_trusted_time() {
    let r = reference(&[(1, 0.0), (2, 1000.0)]);
    // Two devices at two places at once.
    let s = [scan(1, 1, 0).dev(1), scan(2, 2, 0).dev(2)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, false]);
    // By trusted time, not seq or input order: 1 → 1 → 2 in one second flags the third.
    let s = [
        scan(3, 2, SEC).seq(1),
        scan(1, 1, 0).seq(3),
        scan(2, 1, 500).seq(2),
    ];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [true, false, false]);
    // Only against the previous one: 1 → 2 slowly → 1 slowly.
    let s = [scan(1, 1, 0), scan(2, 2, 200 * SEC), scan(3, 1, 400 * SEC)];
    assert_eq!(has(&s, &r, ImpossibleSpeed), [false, false, false]);
}

// ------------------------------------------------------------------ seq/time disorder

#[test]
fn a_higher_seq_more_than_1s_earlier_is_seq_time_disorder() {
    let r = reference(&[(1, 0.0)]);
    let pair = |dt: i64| {
        has(
            &[scan(1, 1, 10 * SEC), scan(2, 1, 10 * SEC - dt)],
            &r,
            SeqTimeDisorder,
        )
    };
    assert_eq!(pair(900), [false, false]);
    assert_eq!(pair(1000), [false, false]);
    assert_eq!(pair(1001), [false, true]);
    assert_eq!(pair(5000), [false, true]);
    // Any lower seq counts, not only the one just before.
    let s = [
        scan(1, 1, 0),
        scan(2, 1, 20 * SEC),
        scan(3, 1, 18 * SEC + 500),
    ];
    assert_eq!(has(&s, &r, SeqTimeDisorder), [false, false, true]);
    // Other devices are not compared.
    let s = [scan(1, 1, 10 * SEC).dev(1), scan(2, 1, 0).dev(2)];
    assert_eq!(has(&s, &r, SeqTimeDisorder), [false, false]);
}

// ------------------------------------------------------------------ burst

/// `n` scans of device 1, `every` ms apart, cycling over `places` checkpoints 1..
fn spree(n: u128, places: u128, every: i64) -> Vec<ScanObs> {
    (0..n)
        .map(|k| scan(k + 1, 1 + k % places, k as i64 * every))
        .collect()
}

#[test]
fn five_scans_of_three_checkpoints_in_60s_is_a_burst() {
    let r = reference(&[(1, 0.0), (2, 5.0), (3, 10.0)]);
    // Exactly 60 s from first to last: all five.
    assert_eq!(flags(&spree(5, 3, 15 * SEC), &r), vec![vec![Burst]; 5]);
    // 61 s: none.
    assert_eq!(flags(&spree(5, 3, 15_250), &r), vec![vec![]; 5]);
    // Four scans: none.
    assert_eq!(flags(&spree(4, 3, SEC), &r), vec![vec![]; 4]);
    // Two checkpoints: none.
    assert_eq!(flags(&spree(5, 2, SEC), &r), vec![vec![]; 5]);
}

#[test]
fn a_burst_marks_only_the_scans_in_it() {
    let r = reference(&[(1, 0.0), (2, 5.0), (3, 10.0)]);
    let mut s = vec![scan(10, 1, -120 * SEC)];
    s.extend(spree(5, 3, SEC));
    s.push(scan(11, 2, 4 * SEC + 60 * SEC + 1));
    let b = has(&s, &r, Burst);
    assert_eq!(b, [false, true, true, true, true, true, false]);
}

#[test]
fn burst_counts_unknown_tags_by_tag_and_devices_apart() {
    let r = reference(&[(1, 0.0)]);
    let s: Vec<ScanObs> = (0..5)
        .map(|k| {
            let s = scan(k + 1, 1, k as i64 * SEC);
            match k {
                1 => s.unknown("AA"),
                3 => s.unknown("BB"),
                _ => s,
            }
        })
        .collect();
    assert_eq!(has(&s, &r, Burst), [true; 5]);
    // The same unknown tag twice is one place.
    let s: Vec<ScanObs> = s
        .into_iter()
        .map(|s| {
            if s.checkpoint_id.is_none() {
                s.unknown("AA")
            } else {
                s
            }
        })
        .collect();
    assert_eq!(has(&s, &r, Burst), [false; 5]);
    // Five scans of three checkpoints, but on two devices.
    let r = reference(&[(1, 0.0), (2, 5.0), (3, 10.0)]);
    let s: Vec<ScanObs> = spree(5, 3, SEC)
        .into_iter()
        .enumerate()
        .map(|(k, s)| s.dev(1 + (k % 2) as u128))
        .collect();
    assert_eq!(has(&s, &r, Burst), [false; 5]);
}

#[test]
fn many_scans_of_one_device_at_once_are_not_quadratic() {
    let r = reference(&[(1, 0.0), (2, 5.0), (3, 10.0)]);
    let n = 100_000;
    let s: Vec<ScanObs> = (0..n)
        .map(|k| scan(k, 1 + k % 3, (k % 50) as i64))
        .collect();
    let started = std::time::Instant::now();
    let f = flags(&s, &r);
    assert!(f.iter().all(|x| x.contains(&Burst)));
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

// ------------------------------------------------------------------ runs

#[test]
fn a_strict_run_walked_out_of_order_and_finished_short_is_incomplete() {
    let ev = [start(1, 1, 1, 0), event(2, 1, RunAction::Finish, 300 * SEC)];
    let sc = [scan(1, 2, 60 * SEC).run(1), scan(2, 1, 120 * SEC).run(1)];
    let run = one_run(&ev, &sc);
    assert_eq!(
        run,
        Run {
            id: run_id(1),
            route_id: Some(route_id(1)),
            user_id: user(1),
            device_id: device(1),
            status: RunStatus::Incomplete,
            started_at: Timestamp(T0),
            finished_at: Some(Timestamp(T0 + 300 * SEC)),
            abort_reason: None,
            expected: 3,
            scanned: 2,
            coverage: 2.0 / 3.0,
            missed: vec![cp_id(3)],
            order_deviations: 1,
        }
    );
}

#[test]
fn a_run_with_every_checkpoint_scanned_and_finished_is_completed() {
    let ev = [start(1, 1, 1, 0), event(2, 1, RunAction::Finish, 300 * SEC)];
    // In order, with repeats and a scan of a checkpoint off the route.
    let sc = [
        scan(1, 1, 10 * SEC).run(1),
        scan(2, 1, 20 * SEC).run(1),
        scan(3, 5, 25 * SEC).run(1),
        scan(4, 2, 30 * SEC).run(1),
        scan(5, 3, 40 * SEC).run(1),
        scan(6, 1, 50 * SEC).run(1),
    ];
    let run = one_run(&ev, &sc);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((run.expected, run.scanned, run.coverage), (3, 3, 1.0));
    assert_eq!(run.missed, vec![]);
    assert_eq!(run.order_deviations, 0);
}

#[test]
fn order_deviations_take_the_first_scan_of_each_checkpoint() {
    let ev = [start(1, 1, 1, 0)];
    // 3, 1, 2 → longest in-order run 1, 2: one deviation; later repeats change nothing.
    let sc = [
        scan(1, 3, 10 * SEC).run(1),
        scan(2, 1, 20 * SEC).run(1),
        scan(3, 3, 25 * SEC).run(1),
        scan(4, 2, 30 * SEC).run(1),
        scan(5, 3, 40 * SEC).run(1),
    ];
    let run = one_run(&ev, &sc);
    assert_eq!(run.order_deviations, 1);
    assert_eq!(run.status, RunStatus::InProgress);
    // 3, 2, 1: two.
    let sc = [
        scan(1, 3, 10 * SEC).run(1),
        scan(2, 2, 20 * SEC).run(1),
        scan(3, 1, 30 * SEC).run(1),
    ];
    assert_eq!(one_run(&ev, &sc).order_deviations, 2);
    // Any-order route: none.
    let ev = [start(1, 1, 2, 0)];
    assert_eq!(one_run(&ev, &sc).order_deviations, 0);
    assert_eq!(one_run(&ev, &sc).scanned, 3);
}

#[test]
fn only_scans_naming_the_run_count() {
    let ev = [start(1, 1, 1, 0), event(2, 1, RunAction::Finish, 300 * SEC)];
    let sc = [
        scan(1, 1, 10 * SEC).run(1),
        scan(2, 2, 20 * SEC),
        scan(3, 3, 30 * SEC).run(2),
    ];
    let runs = fold_runs(&ev, &sc, &run_reference());
    let run = runs.iter().find(|r| r.id == run_id(1)).unwrap();
    assert_eq!(run.status, RunStatus::Incomplete);
    assert_eq!(run.missed, vec![cp_id(2), cp_id(3)]);
    // The scan naming run 2 makes a run of its own.
    assert_eq!(runs.len(), 2);
}

#[test]
fn an_abort_wins_over_a_finish() {
    let ev = [
        start(1, 1, 1, 0),
        abort(2, 1, "called to an incident", 100 * SEC),
        event(3, 1, RunAction::Finish, 200 * SEC),
        abort(4, 1, "later", 150 * SEC),
    ];
    let sc = [
        scan(1, 1, 10 * SEC).run(1),
        scan(2, 2, 20 * SEC).run(1),
        scan(3, 3, 30 * SEC).run(1),
    ];
    let run = one_run(&ev, &sc);
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(run.abort_reason.as_deref(), Some("called to an incident"));
    assert_eq!(run.finished_at, Some(Timestamp(T0 + 100 * SEC)));
    assert_eq!(run.scanned, 3);
}

#[test]
fn a_started_run_not_finished_is_in_progress() {
    let run = one_run(&[start(1, 1, 1, 0)], &[]);
    assert_eq!(run.status, RunStatus::InProgress);
    assert_eq!(run.finished_at, None);
    assert_eq!((run.expected, run.scanned, run.coverage), (3, 0, 0.0));
    assert_eq!(run.missed, vec![cp_id(1), cp_id(2), cp_id(3)]);
}

#[test]
fn a_run_known_only_by_its_scans() {
    let sc = [
        scan(2, 2, 20 * SEC).run(1).dev(3),
        scan(1, 1, 10 * SEC)
            .run(1)
            .dev(2)
            .with(|s| s.user_id = user(2)),
    ];
    let run = one_run(&[], &sc);
    assert_eq!(run.status, RunStatus::InProgress);
    assert_eq!(run.route_id, None);
    assert_eq!((run.user_id, run.device_id), (user(2), device(2)));
    assert_eq!(run.started_at, Timestamp(T0 + 10 * SEC));
    assert_eq!((run.expected, run.scanned, run.coverage), (0, 0, 1.0));
    assert_eq!(run.missed, vec![]);
}

#[test]
fn without_a_start_the_earliest_event_or_scan_dates_the_run() {
    let mut fin = event(1, 1, RunAction::Finish, 100 * SEC);
    fin.user_id = user(3);
    let sc = [scan(1, 1, 50 * SEC).run(1)];
    let run = one_run(&[fin.clone()], &sc);
    assert_eq!(run.started_at, Timestamp(T0 + 50 * SEC));
    assert_eq!(run.user_id, user(1));
    // Route unknown: nothing expected, so finished is completed.
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.finished_at, Some(Timestamp(T0 + 100 * SEC)));
    let run = one_run(&[fin], &[]);
    assert_eq!(
        (run.started_at, run.user_id),
        (Timestamp(T0 + 100 * SEC), user(3))
    );
}

#[test]
fn the_earliest_start_names_the_route_and_the_guard() {
    let mut late = start(2, 1, 2, 60 * SEC);
    late.user_id = user(9);
    let run = one_run(&[late, start(1, 1, 1, 0)], &[]);
    assert_eq!(run.route_id, Some(route_id(1)));
    assert_eq!(run.user_id, user(1));
    assert_eq!(run.started_at, Timestamp(T0));
    // A route not in the reference data: nothing expected.
    let run = one_run(&[start(1, 1, 99, 0)], &[scan(1, 1, SEC).run(1)]);
    assert_eq!(run.route_id, Some(route_id(99)));
    assert_eq!((run.expected, run.scanned, run.order_deviations), (0, 0, 0));
}

#[test]
fn runs_come_newest_start_first_then_by_id() {
    let ev = [
        start(1, 1, 1, 0),
        start(2, 3, 1, 60 * SEC),
        start(3, 2, 1, 60 * SEC),
    ];
    let runs = fold_runs(&ev, &[], &run_reference());
    let ids: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![run_id(2), run_id(3), run_id(1)]);
    assert!(fold_runs(&[], &[], &run_reference()).is_empty());
}

// ------------------------------------------------------------------ properties

fn prop_reference() -> ReferenceSet {
    let mut r = reference(&[(1, 0.0), (2, 40.0), (3, 120.0), (4, 600.0), (5, 2000.0)]);
    r.checkpoints.push(cp(6, None));
    r.routes = vec![
        route(1, &[1, 2, 3, 4], true),
        route(2, &[3, 4, 5, 6], false),
        route(3, &[6, 5, 4, 3, 2, 1], true),
    ];
    r
}

/// Scans of 3 devices over a few minutes: checkpoints 1..=6 or an unknown tag (0 or 7),
/// sometimes a location, accuracy, mock, skew, run.
fn arb_scans() -> impl Strategy<Value = Vec<ScanObs>> {
    let one = (
        (1u128..=3, 0u128..=7, 0u64..12, 0i64..240),
        (
            prop::option::of((
                0.0f64..2500.0,
                prop::option::of(0.0f64..150.0),
                prop::bool::weighted(0.1),
            )),
            prop::bool::weighted(0.1),
            prop::option::of(1u128..=4),
        ),
    );
    prop::collection::vec(one, 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(n, ((d, c, seq, t), (loc, skew, run)))| {
                let mut s = scan(n as u128, c, t * 500).dev(d).seq(seq);
                if c == 0 || c == 7 {
                    s = s.unknown(&format!("U{c}"));
                }
                if let Some((m, acc, mock)) = loc {
                    s = s.at(m);
                    s.location.as_mut().unwrap().accuracy_m = acc;
                    s.location.as_mut().unwrap().mock = mock;
                }
                s.clock_skew = skew;
                s.run_id = run.map(run_id);
                s
            })
            .collect()
    })
}

fn arb_events() -> impl Strategy<Value = Vec<RunEventObs>> {
    let one = (1u128..=5, 0u8..3, 1u128..=4, 0i64..240, 0u16..3);
    prop::collection::vec(one, 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(n, (run, a, route, t, counter))| {
                let mut e = match a {
                    0 => start(n as u128, run, route, t * 500),
                    1 => event(n as u128, run, RunAction::Finish, t * 500),
                    _ => abort(n as u128, run, &format!("reason {n}"), t * 500),
                };
                e.hlc.counter = counter;
                e.user_id = user(n as u128 % 3);
                e
            })
            .collect()
    })
}

fn by_id(scans: &[ScanObs], flags: Vec<Vec<ScanFlag>>) -> HashMap<FactId, Vec<ScanFlag>> {
    scans.iter().map(|s| s.id).zip(flags).collect()
}

/// Burst by its definition, in O(n²): some span of ≤ 60 s holds the scan and ≥ 5 scans of
/// ≥ 3 places of its device.
fn burst_oracle(scans: &[ScanObs], r: &ReferenceSet) -> Vec<bool> {
    let place = |s: &ScanObs| match s
        .checkpoint_id
        .filter(|c| r.checkpoints.iter().any(|x| x.id == *c))
    {
        Some(c) => c.to_string(),
        None => s.tag_key.clone(),
    };
    scans
        .iter()
        .map(|s| {
            scans
                .iter()
                .filter(|a| a.device_id == s.device_id)
                .any(|a| {
                    let lo = a.trusted_at;
                    if s.trusted_at < lo || s.trusted_at - lo > 60 * SEC {
                        return false;
                    }
                    let inside: Vec<&ScanObs> = scans
                        .iter()
                        .filter(|x| {
                            x.device_id == s.device_id
                                && x.trusted_at >= lo
                                && x.trusted_at - lo <= 60 * SEC
                        })
                        .collect();
                    let places: std::collections::HashSet<String> =
                        inside.iter().map(|x| place(x)).collect();
                    inside.len() >= 5 && places.len() >= 3
                })
        })
        .collect()
}

fn disorder_oracle(scans: &[ScanObs]) -> Vec<bool> {
    scans
        .iter()
        .map(|s| {
            scans.iter().any(|x| {
                x.device_id == s.device_id && x.seq < s.seq && x.trusted_at - s.trusted_at > SEC
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flags_do_not_depend_on_the_order_of_scans(
        (scans, shuffled) in arb_scans().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let r = prop_reference();
        let a = flag_scans(&scans, &r);
        let b = flag_scans(&shuffled, &r);
        prop_assert_eq!(a.len(), scans.len());
        for f in &a {
            let mut g = f.clone();
            g.sort();
            g.dedup();
            prop_assert_eq!(&g, f);
        }
        prop_assert_eq!(by_id(&scans, a), by_id(&shuffled, b));
    }

    #[test]
    fn burst_and_disorder_match_their_definitions(scans in arb_scans()) {
        let r = prop_reference();
        let f = flag_scans(&scans, &r);
        let got: Vec<bool> = f.iter().map(|x| x.contains(&Burst)).collect();
        prop_assert_eq!(got, burst_oracle(&scans, &r));
        let got: Vec<bool> = f.iter().map(|x| x.contains(&SeqTimeDisorder)).collect();
        prop_assert_eq!(got, disorder_oracle(&scans));
    }

    #[test]
    fn runs_do_not_depend_on_the_order_of_events_and_scans(
        (events, ev_shuffled) in arb_events().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        (scans, sc_shuffled) in arb_scans().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let r = prop_reference();
        let a = fold_runs(&events, &scans, &r);
        let b = fold_runs(&ev_shuffled, &sc_shuffled, &r);
        prop_assert_eq!(&a, &b);
        for run in &a {
            prop_assert_eq!(run.scanned as usize + run.missed.len(), run.expected as usize);
            prop_assert!(run.order_deviations <= run.scanned);
        }
        for w in a.windows(2) {
            prop_assert!((w[0].started_at.0, std::cmp::Reverse(w[0].id)) >= (w[1].started_at.0, std::cmp::Reverse(w[1].id)));
        }
    }
}
