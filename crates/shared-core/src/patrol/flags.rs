//! Anomaly flags of scans. They mark; they never refuse.

use super::*;

/// The flags of each scan (parallel to `scans`, each sorted), judged against the estate's
/// checkpoints and the other scans of the same device. Independent of the order `scans`
/// are given in.
pub fn flag_scans(scans: &[ScanObs], reference: &ReferenceSet) -> Vec<Vec<ScanFlag>> {
    let _ = (scans, reference);
    todo!()
}
