//! Rules expanded into visit slots, and each slot's result from the scans.

use super::*;

/// The trusted-time range of scans an evaluation of `[from, to)` needs.
pub fn scan_range(reference: &ReferenceSet, from: i64, to: i64) -> (i64, i64) {
    let _ = (reference, from, to);
    todo!()
}

/// Every slot of the interval rules starting in `[from, to)`.
pub fn expand_slots(
    reference: &ReferenceSet,
    tz: chrono_tz::Tz,
    from: i64,
    to: i64,
) -> Vec<SlotSpec> {
    let _ = (reference, tz, from, to);
    todo!()
}

/// Evaluates the period: slot results and count-rule windows.
pub fn evaluate(input: &EvalInput<'_>) -> Evaluation {
    let _ = input;
    todo!()
}
