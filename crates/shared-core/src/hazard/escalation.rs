//! Escalation: which steps of the estate's policy an open ticket has reached.

use super::{EscalationTarget, HazardPolicy, Ticket};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationDue {
    /// Index into `policy.escalation`.
    pub step: usize,
    pub to: EscalationTarget,
    pub at_percent: u32,
    /// When the step was reached (epoch ms).
    pub reached_at: i64,
    /// Stable per ticket, due date and step: raising the same key twice is one alert; a new
    /// due date (extension) starts the steps again.
    pub key: String,
}

/// The steps an open ticket has reached by `now`, in policy order. The time allowed runs
/// from the assignment (or the report, while unassigned) to the due date; step `i` is
/// reached at `at_percent` of it. Steps for the assignee are skipped while nobody is
/// assigned. Closed and cancelled tickets escalate nothing.
pub fn escalations_due(ticket: &Ticket, policy: &HazardPolicy, now: i64) -> Vec<EscalationDue> {
    if !ticket.state.is_open() {
        return Vec::new();
    }
    let start = ticket.assigned_at.unwrap_or(ticket.reported_at).0;
    let due = ticket.due_at.0;
    let span = (i128::from(due) - i128::from(start)).max(1);
    policy
        .escalation
        .iter()
        .enumerate()
        .filter(|(_, s)| s.to != EscalationTarget::Assignee || ticket.assignee.is_some())
        .filter_map(|(i, s)| {
            let reached = i128::from(start) + span * i128::from(s.at_percent) / 100;
            let reached_at = i64::try_from(reached).unwrap_or(i64::MAX);
            (reached_at <= now).then(|| EscalationDue {
                step: i,
                to: s.to,
                at_percent: s.at_percent,
                reached_at,
                key: format!("{}:{}:{}", ticket.id, due, s.at_percent),
            })
        })
        .collect()
}
