//! Patrol runs: `run_event` facts and the scans naming the run, folded.

use super::*;

/// Folds run events and scans (any order) into runs, by run id, newest start first.
pub fn fold_runs(events: &[RunEventObs], scans: &[ScanObs], reference: &ReferenceSet) -> Vec<Run> {
    let _ = (events, scans, reference);
    todo!()
}
