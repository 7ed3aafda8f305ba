//! Tracker statistics over ticket summaries.

use super::{Grade, HazardState};
use crate::ids::{HazardId, UserId};
use serde::{Deserialize, Serialize};

/// The columns of a ticket the statistics need.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketSummary {
    pub id: HazardId,
    pub state: HazardState,
    pub grade: Grade,
    pub category: String,
    pub assignee: Option<UserId>,
    pub reported_at: i64,
    pub due_at: i64,
    pub closed_at: Option<i64>,
    pub reopen_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HazardStats {
    pub total: u64,
    pub open: u64,
    pub open_general: u64,
    pub open_major: u64,
    pub overdue: u64,
    pub closed: u64,
    pub cancelled: u64,
    /// closed / (total − cancelled); null when nothing counts.
    pub rectification_rate: Option<f64>,
    /// closed on or before the due date / closed.
    pub on_time_rate: Option<f64>,
    /// Report to close, over closed tickets.
    pub mean_hours_to_close: Option<f64>,
    pub p90_hours_to_close: Option<f64>,
    /// tickets reopened at least once (failed verification or reopen) / (total − cancelled).
    pub reopen_rate: Option<f64>,
    /// Per category, most tickets first.
    pub by_category: Vec<GroupStats>,
    /// Per assignee (unassigned tickets are not listed), most open first.
    pub by_assignee: Vec<AssigneeStats>,
}

/// Counts for one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupStats {
    pub category: String,
    pub total: u64,
    pub open: u64,
    pub overdue: u64,
    pub closed: u64,
}

/// Counts for one assignee: their workload and how much of it is late.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssigneeStats {
    pub assignee: UserId,
    pub open: u64,
    pub overdue: u64,
    pub closed: u64,
}

const MS_PER_HOUR: f64 = 3_600_000.0;

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Summarises tickets as of `now` (epoch ms), which decides what is overdue.
///
/// A closed ticket without a `closed_at` (which the fold never produces) counts as closed
/// but neither on time nor in the hours to close.
pub fn stats(tickets: &[TicketSummary], now: i64) -> HazardStats {
    let count = |f: &dyn Fn(&TicketSummary) -> bool| tickets.iter().filter(|t| f(t)).count() as u64;

    let total = tickets.len() as u64;
    let open = count(&|t| t.state.is_open());
    let open_general = count(&|t| t.state.is_open() && t.grade == Grade::General);
    let open_major = count(&|t| t.state.is_open() && t.grade == Grade::Major);
    let overdue = count(&|t| t.state.is_open() && now > t.due_at);
    let closed = count(&|t| t.state == HazardState::Closed);
    let cancelled = count(&|t| t.state == HazardState::Cancelled);
    let counted = total - cancelled;
    let reopened = count(&|t| t.state != HazardState::Cancelled && t.reopen_count > 0);

    let closings: Vec<(i64, i64, i64)> = tickets
        .iter()
        .filter(|t| t.state == HazardState::Closed)
        .filter_map(|t| t.closed_at.map(|c| (t.reported_at, t.due_at, c)))
        .collect();
    let on_time = closings.iter().filter(|(_, due, c)| c <= due).count() as u64;
    let mut hours: Vec<f64> = closings
        .iter()
        .map(|(rep, _, c)| (c - rep) as f64 / MS_PER_HOUR)
        .collect();
    hours.sort_by(f64::total_cmp);
    let mean_hours_to_close =
        (!hours.is_empty()).then(|| hours.iter().sum::<f64>() / hours.len() as f64);
    // Nearest rank: the smallest value with at least 90 % of the values at or below it.
    let p90_hours_to_close = (!hours.is_empty()).then(|| {
        let rank = (hours.len() * 9).div_ceil(10);
        hours[rank.max(1) - 1]
    });

    let mut categories: std::collections::BTreeMap<&str, GroupStats> = Default::default();
    let mut assignees: std::collections::BTreeMap<UserId, AssigneeStats> = Default::default();
    for t in tickets {
        let (open, overdue) = (t.state.is_open(), t.state.is_open() && now > t.due_at);
        let closed = t.state == HazardState::Closed;
        let c = categories
            .entry(t.category.as_str())
            .or_insert_with(|| GroupStats {
                category: t.category.clone(),
                total: 0,
                open: 0,
                overdue: 0,
                closed: 0,
            });
        c.total += 1;
        c.open += u64::from(open);
        c.overdue += u64::from(overdue);
        c.closed += u64::from(closed);
        if let Some(a) = t.assignee {
            let s = assignees.entry(a).or_insert(AssigneeStats {
                assignee: a,
                open: 0,
                overdue: 0,
                closed: 0,
            });
            s.open += u64::from(open);
            s.overdue += u64::from(overdue);
            s.closed += u64::from(closed);
        }
    }
    let mut by_category: Vec<GroupStats> = categories.into_values().collect();
    by_category.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.category.cmp(&b.category))
    });
    let mut by_assignee: Vec<AssigneeStats> = assignees.into_values().collect();
    by_assignee.sort_by(|a, b| {
        b.open
            .cmp(&a.open)
            .then_with(|| a.assignee.cmp(&b.assignee))
    });

    HazardStats {
        by_category,
        by_assignee,
        total,
        open,
        open_general,
        open_major,
        overdue,
        closed,
        cancelled,
        rectification_rate: ratio(closed, counted),
        on_time_rate: ratio(on_time, closed),
        mean_hours_to_close,
        p90_hours_to_close,
        reopen_rate: ratio(reopened, counted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const H: i64 = 3_600_000;

    fn t(
        n: u128,
        state: HazardState,
        grade: Grade,
        reported_h: i64,
        due_h: i64,
        closed_h: Option<i64>,
        reopen_count: u32,
    ) -> TicketSummary {
        TicketSummary {
            id: HazardId(Uuid::from_u128(n)),
            state,
            grade,
            category: "fire".into(),
            assignee: None,
            reported_at: reported_h * H,
            due_at: due_h * H,
            closed_at: closed_h.map(|c| c * H),
            reopen_count,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_small_hand_computed_set() {
        use Grade::*;
        use HazardState::*;
        let tickets = [
            // Closed in 10 h, due in 24 h: on time.
            t(1, Closed, General, 0, 24, Some(10), 0),
            // Closed in 200 h, due in 168 h: late; failed a verification once.
            t(2, Closed, Major, 0, 168, Some(200), 1),
            // Open and past due at 100 h.
            t(3, InRectification, General, 50, 74, None, 0),
            // Open, not due yet.
            t(4, Assigned, Major, 90, 258, None, 0),
            // Cancelled: past its due date, but neither overdue nor counted in the rates.
            t(5, Cancelled, General, 0, 24, None, 0),
            // Closed exactly at its due date (on time), after two rounds.
            t(6, Closed, General, 20, 44, Some(44), 2),
            // Due exactly now: not overdue yet.
            t(7, Reported, General, 76, 100, None, 0),
        ];
        let s = stats(&tickets, 100 * H);
        assert_eq!(s.total, 7);
        assert_eq!(s.open, 3);
        assert_eq!(s.open_general, 2);
        assert_eq!(s.open_major, 1);
        assert_eq!(s.overdue, 1);
        assert_eq!(s.closed, 3);
        assert_eq!(s.cancelled, 1);
        assert!(close(s.rectification_rate.unwrap(), 3.0 / 6.0));
        assert!(close(s.on_time_rate.unwrap(), 2.0 / 3.0));
        // (10 + 200 + 24) / 3
        assert!(close(s.mean_hours_to_close.unwrap(), 78.0));
        // Nearest rank of 3 values: ceil(0.9 × 3) = 3rd.
        assert!(close(s.p90_hours_to_close.unwrap(), 200.0));
        assert!(close(s.reopen_rate.unwrap(), 2.0 / 6.0));

        // A millisecond later ticket 7 is overdue.
        assert_eq!(stats(&tickets, 100 * H + 1).overdue, 2);
    }

    #[test]
    fn breakdowns_by_category_and_assignee() {
        use HazardState::*;
        let (a, b) = (UserId(Uuid::from_u128(1)), UserId(Uuid::from_u128(2)));
        let mut ts = vec![
            t(1, InRectification, Grade::General, 0, 10, None, 0),
            t(2, Assigned, Grade::General, 0, 100, None, 0),
            t(3, Closed, Grade::General, 0, 10, Some(5), 0),
            t(4, Reported, Grade::Major, 0, 10, None, 0),
        ];
        ts[0].assignee = Some(a);
        ts[1].assignee = Some(b);
        ts[2].assignee = Some(a);
        ts[3].category = "water".into();
        let s = stats(&ts, 20 * H);
        assert_eq!(
            s.by_category,
            vec![
                GroupStats {
                    category: "fire".into(),
                    total: 3,
                    open: 2,
                    overdue: 1,
                    closed: 1
                },
                GroupStats {
                    category: "water".into(),
                    total: 1,
                    open: 1,
                    overdue: 1,
                    closed: 0
                },
            ]
        );
        assert_eq!(
            s.by_assignee,
            vec![
                AssigneeStats {
                    assignee: a,
                    open: 1,
                    overdue: 1,
                    closed: 1
                },
                AssigneeStats {
                    assignee: b,
                    open: 1,
                    overdue: 0,
                    closed: 0
                },
            ],
            "unassigned tickets are not listed; ties by id"
        );
    }

    #[test]
    fn rates_are_null_when_nothing_counts() {
        let s = stats(&[], 0);
        assert_eq!(
            s,
            HazardStats {
                total: 0,
                open: 0,
                open_general: 0,
                open_major: 0,
                overdue: 0,
                closed: 0,
                cancelled: 0,
                rectification_rate: None,
                on_time_rate: None,
                mean_hours_to_close: None,
                p90_hours_to_close: None,
                reopen_rate: None,
                by_category: vec![],
                by_assignee: vec![],
            }
        );
        // Only cancelled tickets: nothing to rate.
        let s = stats(
            &[t(1, HazardState::Cancelled, Grade::Major, 0, 1, None, 0)],
            5 * H,
        );
        assert_eq!((s.total, s.cancelled, s.overdue), (1, 1, 0));
        assert_eq!(s.rectification_rate, None);
        assert_eq!(s.reopen_rate, None);
        // Open tickets but none closed: a rectification rate of 0, no closing figures.
        let s = stats(
            &[t(1, HazardState::Reported, Grade::General, 0, 24, None, 0)],
            0,
        );
        assert_eq!(s.rectification_rate, Some(0.0));
        assert_eq!(s.on_time_rate, None);
        assert_eq!(s.mean_hours_to_close, None);
        assert_eq!(s.p90_hours_to_close, None);
    }

    #[test]
    fn hours_to_close_are_fractional_and_p90_is_nearest_rank() {
        let closed = |n: u128, minutes: i64| TicketSummary {
            closed_at: Some(minutes * 60_000),
            ..t(n, HazardState::Closed, Grade::General, 0, 24, None, 0)
        };
        let s = stats(&[closed(1, 90)], 0);
        assert!(close(s.mean_hours_to_close.unwrap(), 1.5));
        assert!(close(s.p90_hours_to_close.unwrap(), 1.5));

        // 1..=10 hours, in no order: the 9th smallest.
        let ten: Vec<_> = [7, 3, 10, 1, 9, 2, 8, 4, 6, 5]
            .iter()
            .enumerate()
            .map(|(i, h)| closed(i as u128, h * 60))
            .collect();
        let s = stats(&ten, 0);
        assert!(close(s.p90_hours_to_close.unwrap(), 9.0));
        assert!(close(s.mean_hours_to_close.unwrap(), 5.5));
        // 11 values: ceil(9.9) = 10th.
        let mut eleven = ten.clone();
        eleven.push(closed(99, 11 * 60));
        assert!(close(stats(&eleven, 0).p90_hours_to_close.unwrap(), 10.0));
    }
}
