//! Patrol runs: `run_event` facts and the scans naming the run, folded.

use super::*;
use crate::wire::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// Folds run events and scans (any order) into runs, by run id, newest start first (ties by
/// run id). A run id named only by scans is still a run (`in_progress`, route unknown).
///
/// - route, user and device: from the start (the earliest, by trusted time then HLC);
///   without one, user and device from the earliest event or scan;
/// - `started_at`: the start's trusted time, else the earliest event's or scan's;
///   `finished_at`: the earliest abort's when aborted, else the earliest finish's;
/// - status: `aborted` on any abort (with the earliest abort's reason), else on a finish
///   `completed` or `incomplete` by whether every route checkpoint was scanned, else
///   `in_progress`;
/// - `scanned`/`missed` count scans naming the run at any time; `order_deviations` (strict
///   routes) takes the first scan of each route checkpoint in trusted-time order.
pub fn fold_runs(events: &[RunEventObs], scans: &[ScanObs], reference: &ReferenceSet) -> Vec<Run> {
    let mut acc: BTreeMap<RunId, (Vec<&RunEventObs>, Vec<&ScanObs>)> = BTreeMap::new();
    for e in events {
        acc.entry(e.data.run_id).or_default().0.push(e);
    }
    for s in scans {
        if let Some(r) = s.run_id {
            acc.entry(r).or_default().1.push(s);
        }
    }
    let routes: HashMap<RouteId, &Route> = reference.routes.iter().map(|r| (r.id, r)).collect();

    let mut runs: Vec<Run> = acc
        .into_iter()
        .map(|(id, (mut evs, mut scs))| {
            evs.sort_by_key(|e| event_key(e));
            scs.sort_by_key(|s| scan_key(s));
            fold_one(id, &evs, &scs, &routes)
        })
        .collect();
    runs.sort_by(|a, b| b.started_at.0.cmp(&a.started_at.0).then(a.id.cmp(&b.id)));
    runs
}

fn event_key(e: &RunEventObs) -> (i64, Hlc, FactId) {
    (e.trusted_at, e.hlc, e.fact_id)
}

fn scan_key(s: &ScanObs) -> (i64, u64, FactId) {
    (s.trusted_at, s.seq, s.id)
}

/// One run from its events and scans, each sorted by trusted time; at least one is
/// non-empty.
fn fold_one(
    id: RunId,
    evs: &[&RunEventObs],
    scs: &[&ScanObs],
    routes: &HashMap<RouteId, &Route>,
) -> Run {
    let first = |action: RunAction| evs.iter().find(|e| e.data.action == action).copied();
    let (start, finish, abort) = (
        first(RunAction::Start),
        first(RunAction::Finish),
        first(RunAction::Abort),
    );

    // Who and when: the start, else the earliest of events and scans (an event before a
    // scan at the same trusted time).
    let (user_id, device_id, started_at) = match (start, evs.first(), scs.first()) {
        (Some(e), _, _) => (e.user_id, e.device_id, e.trusted_at),
        (None, Some(e), Some(s)) if s.trusted_at < e.trusted_at => {
            (s.user_id, s.device_id, s.trusted_at)
        }
        (None, Some(e), _) => (e.user_id, e.device_id, e.trusted_at),
        (None, None, Some(s)) => (s.user_id, s.device_id, s.trusted_at),
        (None, None, None) => unreachable!("a run has an event or a scan"),
    };

    let route_id = start.and_then(|e| e.data.route_id);
    let route = route_id.and_then(|r| routes.get(&r).copied());
    let route_cps: &[CheckpointId] = route.map_or(&[], |r| &r.checkpoints);
    let position: HashMap<CheckpointId, usize> = route_cps
        .iter()
        .enumerate()
        .rev() // the first position wins should a checkpoint repeat
        .map(|(i, c)| (*c, i))
        .collect();

    // Route positions of the first scan of each route checkpoint, in scan order.
    let mut seen = vec![false; route_cps.len()];
    let mut order = Vec::new();
    for s in scs {
        if let Some(&p) = s.checkpoint_id.and_then(|c| position.get(&c)) {
            if !seen[p] {
                seen[p] = true;
                order.push(p);
            }
        }
    }
    let missed: Vec<CheckpointId> = route_cps
        .iter()
        .filter(|c| !seen[position[*c]])
        .copied()
        .collect();
    let expected = route_cps.len() as u32;
    let scanned = expected - missed.len() as u32;
    let order_deviations = match route {
        Some(r) if r.strict => (order.len() - longest_increasing(&order)) as u32,
        _ => 0,
    };

    let (status, finished_at) = match (abort, finish) {
        (Some(a), _) => (RunStatus::Aborted, Some(a.trusted_at)),
        (None, Some(f)) if missed.is_empty() => (RunStatus::Completed, Some(f.trusted_at)),
        (None, Some(f)) => (RunStatus::Incomplete, Some(f.trusted_at)),
        (None, None) => (RunStatus::InProgress, None),
    };

    Run {
        id,
        route_id,
        user_id,
        device_id,
        status,
        started_at: Timestamp(started_at),
        finished_at: finished_at.map(Timestamp),
        abort_reason: abort.and_then(|a| a.data.reason.clone()),
        expected,
        scanned,
        coverage: if expected == 0 {
            1.0
        } else {
            scanned as f64 / expected as f64
        },
        missed,
        order_deviations,
    }
}

/// Length of the longest strictly increasing subsequence (patience sorting, O(n log n)).
fn longest_increasing(xs: &[usize]) -> usize {
    let mut tails: Vec<usize> = Vec::new();
    for &x in xs {
        let k = tails.partition_point(|&t| t < x);
        if k == tails.len() {
            tails.push(x);
        } else {
            tails[k] = x;
        }
    }
    tails.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lis() {
        assert_eq!(longest_increasing(&[]), 0);
        assert_eq!(longest_increasing(&[1, 0, 2]), 2);
        assert_eq!(longest_increasing(&[0, 1, 2, 3]), 4);
        assert_eq!(longest_increasing(&[3, 2, 1, 0]), 1);
        assert_eq!(longest_increasing(&[2, 0, 3, 1, 4, 5]), 4);
        assert_eq!(longest_increasing(&[1, 1, 1]), 1);
    }
}
