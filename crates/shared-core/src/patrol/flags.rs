//! Anomaly flags of scans. They mark; they never refuse.
//!
//! Per-scan flags (`unknown_tag`, `outside_radius`, `mock_location`, `clock_skew`) read the
//! scan and its checkpoint; the others compare a scan with the other scans of its device,
//! taken in trusted-time order (ties by seq, then id), so the input order never matters.

use super::*;
use std::collections::HashMap;

/// Mean earth radius, metres (haversine).
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;
/// Reported accuracy is counted up to this many metres.
pub const MAX_ACCURACY_M: f64 = 100.0;
/// Faster than this between a device's consecutive scans is `impossible_speed`, m/s…
pub const MAX_SPEED_M_S: f64 = 10.0;
/// …when the two scans are more than this far apart, metres.
pub const MIN_SPEED_DISTANCE_M: f64 = 50.0;
/// A higher seq more than this before a lower seq's trusted time is `seq_time_disorder`, ms.
pub const SEQ_DISORDER_MS: i64 = 1_000;
/// `burst`: at least [`BURST_SCANS`] scans of [`BURST_PLACES`] checkpoints within this, ms.
pub const BURST_WINDOW_MS: i64 = 60_000;
/// Fewest scans in a `burst`.
pub const BURST_SCANS: usize = 5;
/// Fewest places (checkpoints, or tags on none) in a `burst`.
pub const BURST_PLACES: usize = 3;

/// Great-circle distance in metres (haversine on a sphere of [`EARTH_RADIUS_M`]).
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lng - a.lng).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The flags of each scan (parallel to `scans`, each sorted and without repeats), judged
/// against the estate's checkpoints and the other scans of the same device. Independent of
/// the order `scans` are given in. O(n log n).
pub fn flag_scans(scans: &[ScanObs], reference: &ReferenceSet) -> Vec<Vec<ScanFlag>> {
    let cps: HashMap<CheckpointId, &Checkpoint> =
        reference.checkpoints.iter().map(|c| (c.id, c)).collect();
    let checkpoint = |s: &ScanObs| s.checkpoint_id.and_then(|id| cps.get(&id).copied());
    let mut out: Vec<Vec<ScanFlag>> = vec![Vec::new(); scans.len()];

    // Each scan on its own.
    for (i, s) in scans.iter().enumerate() {
        let cp = checkpoint(s);
        if cp.is_none() {
            out[i].push(ScanFlag::UnknownTag);
        }
        if let Some(loc) = s.location {
            if loc.mock {
                out[i].push(ScanFlag::MockLocation);
            }
            if let Some(at) = cp.and_then(|c| c.location) {
                let accuracy = loc
                    .accuracy_m
                    .filter(|a| a.is_finite())
                    .map_or(0.0, |a| a.clamp(0.0, MAX_ACCURACY_M));
                if distance_m(point(loc), at) > cp.map_or(0.0, |c| c.radius_m) + accuracy {
                    out[i].push(ScanFlag::OutsideRadius);
                }
            }
        }
        if s.clock_skew {
            out[i].push(ScanFlag::ClockSkew);
        }
    }

    // Against the other scans of the device.
    let mut by_device: HashMap<DeviceId, Vec<usize>> = HashMap::new();
    for (i, s) in scans.iter().enumerate() {
        by_device.entry(s.device_id).or_default().push(i);
    }
    for mut idx in by_device.into_values() {
        seq_time_disorder(scans, &mut idx, &mut out);
        idx.sort_by_key(|&i| trusted_key(&scans[i]));
        impossible_speed(scans, &idx, &checkpoint, &mut out);
        burst(scans, &idx, &checkpoint, &mut out);
    }

    for f in &mut out {
        f.sort_unstable();
        f.dedup();
    }
    out
}

fn point(l: ScanLocation) -> GeoPoint {
    GeoPoint {
        lat: l.lat,
        lng: l.lng,
    }
}

/// Trusted-time order of a device's scans: trusted time, then seq, then id.
fn trusted_key(s: &ScanObs) -> (i64, u64, FactId) {
    (s.trusted_at, s.seq, s.id)
}

/// A scan with a higher seq whose trusted time is more than [`SEQ_DISORDER_MS`] before that
/// of some lower-seq scan of the device. Equal seqs do not compare with each other.
fn seq_time_disorder(scans: &[ScanObs], idx: &mut [usize], out: &mut [Vec<ScanFlag>]) {
    idx.sort_by_key(|&i| scans[i].seq);
    let mut max_before: Option<i64> = None;
    let mut g = 0;
    while g < idx.len() {
        let seq = scans[idx[g]].seq;
        let end = g + idx[g..]
            .iter()
            .take_while(|&&i| scans[i].seq == seq)
            .count();
        if let Some(m) = max_before {
            for &i in &idx[g..end] {
                if scans[i].trusted_at < m.saturating_sub(SEQ_DISORDER_MS) {
                    out[i].push(ScanFlag::SeqTimeDisorder);
                }
            }
        }
        let group_max = idx[g..end].iter().map(|&i| scans[i].trusted_at).max();
        max_before = max_before.max(group_max);
        g = end;
    }
}

/// Each scan against the device's previous one (in trusted-time order): flagged when more
/// than [`MIN_SPEED_DISTANCE_M`] apart and faster than [`MAX_SPEED_M_S`] (any such distance
/// in no time). A scan's position is its reported location, else its checkpoint's; a pair
/// with either position unknown is skipped.
fn impossible_speed<'a>(
    scans: &'a [ScanObs],
    idx: &[usize],
    checkpoint: &impl Fn(&'a ScanObs) -> Option<&'a Checkpoint>,
    out: &mut [Vec<ScanFlag>],
) {
    let pos = |s: &'a ScanObs| {
        s.location
            .map(point)
            .or_else(|| checkpoint(s).and_then(|c| c.location))
    };
    for w in idx.windows(2) {
        let (a, b) = (&scans[w[0]], &scans[w[1]]);
        let (Some(pa), Some(pb)) = (pos(a), pos(b)) else {
            continue;
        };
        let d = distance_m(pa, pb);
        if d <= MIN_SPEED_DISTANCE_M {
            continue;
        }
        let dt_s = b.trusted_at.saturating_sub(a.trusted_at) as f64 / 1000.0;
        if d > MAX_SPEED_M_S * dt_s {
            out[w[1]].push(ScanFlag::ImpossibleSpeed);
        }
    }
}

/// The place a scan counts as for `burst`: its checkpoint, or its tag when unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Place<'a> {
    Checkpoint(CheckpointId),
    Tag(&'a str),
}

/// Marks every scan in some span of at most [`BURST_WINDOW_MS`] (both ends included) that
/// holds at least [`BURST_SCANS`] scans of [`BURST_PLACES`] places. Only the longest span
/// from each scan needs checking (a superset of a burst is a burst); two pointers, O(n).
fn burst<'a>(
    scans: &'a [ScanObs],
    idx: &[usize],
    checkpoint: &impl Fn(&'a ScanObs) -> Option<&'a Checkpoint>,
    out: &mut [Vec<ScanFlag>],
) {
    if idx.len() < BURST_SCANS {
        return;
    }
    let place = |i: usize| {
        let s = &scans[i];
        match checkpoint(s) {
            Some(c) => Place::Checkpoint(c.id),
            None => Place::Tag(&s.tag_key),
        }
    };
    let mut counts: HashMap<Place<'a>, usize> = HashMap::new();
    // The span is idx[left..right]; `marked` is how far the flags have been set.
    let (mut right, mut marked) = (0, 0);
    for left in 0..idx.len() {
        let t0 = scans[idx[left]].trusted_at;
        while right < idx.len()
            && scans[idx[right]].trusted_at.saturating_sub(t0) <= BURST_WINDOW_MS
        {
            *counts.entry(place(idx[right])).or_default() += 1;
            right += 1;
        }
        if right - left >= BURST_SCANS && counts.len() >= BURST_PLACES {
            for &i in &idx[marked.max(left)..right] {
                out[i].push(ScanFlag::Burst);
            }
            marked = right;
        }
        let p = place(idx[left]);
        if let Some(n) = counts.get_mut(&p) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EstateId, UserId};
    use uuid::Uuid;

    fn cp(n: u128, lat: f64, lng: f64) -> Checkpoint {
        Checkpoint {
            id: CheckpointId(Uuid::from_u128(n)),
            estate_id: EstateId(Uuid::from_u128(1)),
            zone_id: None,
            code: format!("C{n}"),
            name: format!("C{n}"),
            class: CheckpointClass::General,
            location: Some(GeoPoint { lat, lng }),
            radius_m: 30.0,
            floor: None,
            instructions: None,
            tags: vec![],
        }
    }

    fn scan(n: u128, cp: u128, seq: u64, t: i64) -> ScanObs {
        ScanObs {
            id: FactId(Uuid::from_u128(n)),
            device_id: DeviceId(Uuid::from_u128(7)),
            user_id: UserId(Uuid::from_u128(8)),
            seq,
            trusted_at: t,
            verified: true,
            clock_skew: false,
            tag_key: format!("nfc:{cp}"),
            checkpoint_id: Some(CheckpointId(Uuid::from_u128(cp))),
            run_id: None,
            location: None,
        }
    }

    fn reference(cps: Vec<Checkpoint>) -> ReferenceSet {
        let mut r = ReferenceSet::empty(EstateId(Uuid::from_u128(1)), "Asia/Shanghai");
        r.checkpoints = cps;
        r
    }

    #[test]
    fn haversine_one_degree_of_latitude() {
        let d = distance_m(
            GeoPoint { lat: 0.0, lng: 0.0 },
            GeoPoint { lat: 1.0, lng: 0.0 },
        );
        assert!((d - 111_194.9).abs() < 1.0, "{d}");
    }

    #[test]
    fn checkpoint_missing_from_reference_is_unknown() {
        let r = reference(vec![cp(1, 0.0, 0.0)]);
        let f = flag_scans(&[scan(1, 2, 1, 0), scan(2, 1, 2, 1_000_000)], &r);
        assert_eq!(f, vec![vec![ScanFlag::UnknownTag], vec![]]);
    }

    #[test]
    fn equal_seqs_are_not_disorder() {
        let r = reference(vec![cp(1, 0.0, 0.0)]);
        let f = flag_scans(&[scan(1, 1, 5, 10_000), scan(2, 1, 5, 0)], &r);
        assert_eq!(f, vec![vec![], vec![]]);
    }

    #[test]
    fn burst_marks_the_whole_span_once() {
        let r = reference((1..=3).map(|n| cp(n, 0.0, 0.0)).collect());
        // Six scans in 50 s, then one 61 s after the first: the six are a burst; the last
        // is in a span of 5 scans (10 s .. 61 s) too.
        let mut s: Vec<ScanObs> = (0..6)
            .map(|k| scan(k + 1, 1 + k % 3, k as u64, k as i64 * 10_000))
            .collect();
        s.push(scan(7, 1, 6, 61_000));
        let f = flag_scans(&s, &r);
        assert!(f.iter().all(|x| x == &vec![ScanFlag::Burst]), "{f:?}");
    }
}
