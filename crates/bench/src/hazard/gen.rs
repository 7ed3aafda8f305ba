//! The estate the benchmark builds: N hazard tickets, each a life story of events by a
//! guard, a supervisor and an engineer, spread over the past `days`, with ~`events` events
//! in all. Deterministic for a seed (ids aside, which are fresh UUIDv7s).
//!
//! A ticket's events fall into *runs*: consecutive events by the same actor. The runs of a
//! ticket alternate guard → supervisor → engineer → supervisor → engineer → ..., so the
//! r-th run of every ticket is by the same actor, and pushing round r only after round r-1
//! has been answered keeps every event behind the events it depends on (an assign stored
//! before the start that needs it), whichever handset carries them.

use serde_json::{json, Value};
use uuid::Uuid;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The server's default due dates by grade (HazardPolicy::default()).
pub const GENERAL_DUE: i64 = 24 * HOUR;
pub const MAJOR_DUE: i64 = 168 * HOUR;

/// Events end at least this long before generation time (they must be in the past).
const END_MARGIN: i64 = 5 * MINUTE;
/// Reports are at least this old.
const NEWEST_REPORT: i64 = 2 * HOUR;
/// A photo is taken this long before the event it documents.
pub const PHOTO_LEAD_MS: i64 = 500;
/// No two events of a ticket closer than this (after squeezing a story into the time left).
const MIN_GAP: i64 = 1_000;

pub const CATEGORIES: &[&str] = &[
    "fire",
    "electrical",
    "structural",
    "water",
    "slip_trip",
    "security",
    "sanitation",
    "lift",
    "traffic",
    "equipment",
];

const TITLES: &[&str] = &[
    "Blocked fire exit",
    "Exposed wiring in the switch room",
    "Cracked balcony railing",
    "Water leaking onto the stairwell",
    "Loose paving at the entrance",
    "Broken lock on the bike store",
    "Overflowing refuse point",
    "Lift door closing too fast",
    "Speed bump missing its paint",
    "Extinguisher past its inspection date",
];

/// Splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); n > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [lo, hi); hi > lo.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// 64 hex digits.
    pub fn sha256_hex(&mut self) -> String {
        (0..4)
            .map(|_| format!("{:016x}", self.next_u64()))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    Guard,
    Supervisor,
    Engineer,
}

impl Actor {
    #[cfg(test)]
    pub const ALL: [Actor; 3] = [Actor::Guard, Actor::Supervisor, Actor::Engineer];

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Guard => "guard",
            Actor::Supervisor => "supervisor",
            Actor::Engineer => "engineer",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    Report,
    Comment,
    Assign,
    Plan,
    Start,
    RequestExtension,
    ApproveExtension,
    DenyExtension,
    SubmitFix,
    VerifyPass,
    VerifyFail,
    Cancel,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Report => "report",
            Act::Comment => "comment",
            Act::Assign => "assign",
            Act::Plan => "plan",
            Act::Start => "start",
            Act::RequestExtension => "request_extension",
            Act::ApproveExtension => "approve_extension",
            Act::DenyExtension => "deny_extension",
            Act::SubmitFix => "submit_fix",
            Act::VerifyPass => "verify_pass",
            Act::VerifyFail => "verify_fail",
            Act::Cancel => "cancel",
        }
    }

    /// The photo this action carries as evidence, by its role.
    pub fn photo_role(self) -> Option<&'static str> {
        match self {
            Act::Report => Some("before"),
            Act::SubmitFix => Some("after"),
            Act::VerifyPass => Some("verification"),
            _ => None,
        }
    }
}

/// Where a ticket's story ends: the state the server should show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum End {
    Reported,
    Assigned,
    InRectification,
    ExtensionRequested,
    PendingVerification,
    Closed,
    Cancelled,
}

impl End {
    pub const ALL: [End; 7] = [
        End::Reported,
        End::Assigned,
        End::InRectification,
        End::ExtensionRequested,
        End::PendingVerification,
        End::Closed,
        End::Cancelled,
    ];

    /// The server's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            End::Reported => "reported",
            End::Assigned => "assigned",
            End::InRectification => "in_rectification",
            End::ExtensionRequested => "extension_requested",
            End::PendingVerification => "pending_verification",
            End::Closed => "closed",
            End::Cancelled => "cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, End::Closed | End::Cancelled)
    }

    /// Share of tickets ending here: ~60 % closed by a supervisor's verify_pass.
    const WEIGHTS: [(End, f64); 7] = [
        (End::Cancelled, 0.06),
        (End::Reported, 0.04),
        (End::Assigned, 0.05),
        (End::InRectification, 0.12),
        (End::ExtensionRequested, 0.03),
        (End::PendingVerification, 0.10),
        (End::Closed, 0.60),
    ];

    fn pick(rng: &mut Rng) -> End {
        let mut x = rng.f64();
        for (e, w) in End::WEIGHTS {
            if x < w {
                return e;
            }
            x -= w;
        }
        End::Closed
    }
}

/// One event of a ticket.
#[derive(Clone, Debug)]
pub struct Step {
    pub act: Act,
    pub actor: Actor,
    /// Epoch ms: the event's recorded_at and the ms of its HLC.
    pub at: i64,
    /// The event fact's id.
    pub id: Uuid,
    /// The photo fact's id, for actions that carry one.
    pub photo_id: Option<Uuid>,
    /// `due_at` of an assign (when explicit) or of an extension request.
    pub due: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Ticket {
    pub n: usize,
    pub hazard_id: Uuid,
    pub major: bool,
    pub category: &'static str,
    pub reported_at: i64,
    pub end: End,
    /// Whether a verification failed on the way (a reopening).
    pub reopened: bool,
    pub steps: Vec<Step>,
}

impl Ticket {
    /// The ticket's runs: index ranges of consecutive steps by one actor.
    pub fn runs(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.steps.len() {
            if i == self.steps.len() || self.steps[i].actor != self.steps[start].actor {
                out.push(start..i);
                start = i;
            }
        }
        out
    }

    /// Due date the server derives at the end of the story.
    pub fn final_due(&self) -> i64 {
        let mut due = self.reported_at + if self.major { MAJOR_DUE } else { GENERAL_DUE };
        let mut requested = None;
        for s in &self.steps {
            match s.act {
                Act::Assign => {
                    if let Some(d) = s.due {
                        due = d;
                    }
                }
                Act::RequestExtension => requested = s.due,
                Act::ApproveExtension => {
                    if let Some(d) = requested.take() {
                        due = d;
                    }
                }
                Act::DenyExtension => requested = None,
                _ => {}
            }
        }
        due
    }

    pub fn photos(&self) -> usize {
        self.steps.iter().filter(|s| s.photo_id.is_some()).count()
    }
}

/// What to build.
#[derive(Clone, Debug)]
pub struct Spec {
    pub tickets: usize,
    /// Total events to aim for: comments fill the gap above each story's bare minimum.
    pub events: u64,
    pub days: u32,
    pub seed: u64,
    /// Generation time (epoch ms): every event is before it.
    pub now: i64,
}

/// A story's skeleton: (action, actor, gap in ms since the previous event).
type Skeleton = Vec<(Act, Actor, i64)>;

fn skeleton(rng: &mut Rng, major: bool, end: End) -> (Skeleton, bool) {
    use Act::*;
    use Actor::*;
    let mut s: Skeleton = vec![(Report, Guard, 0)];
    let mut reopened = false;
    let gap = |rng: &mut Rng, lo: i64, hi: i64| rng.range(lo, hi);
    if end == End::Cancelled {
        s.push((Cancel, Supervisor, gap(rng, 10 * MINUTE, DAY)));
        return (s, reopened);
    }
    if end == End::Reported {
        return (s, reopened);
    }
    let g = if major {
        gap(rng, HOUR, 2 * DAY)
    } else {
        gap(rng, 10 * MINUTE, 6 * HOUR)
    };
    s.push((Assign, Supervisor, g));
    if major {
        s.push((Plan, Supervisor, gap(rng, HOUR, 12 * HOUR)));
    }
    if end == End::Assigned {
        return (s, reopened);
    }
    let g = if major {
        gap(rng, DAY, 5 * DAY)
    } else {
        gap(rng, 30 * MINUTE, DAY)
    };
    s.push((Start, Engineer, g));
    if end == End::ExtensionRequested || rng.chance(0.06) {
        s.push((RequestExtension, Engineer, gap(rng, 2 * HOUR, 2 * DAY)));
        if end == End::ExtensionRequested {
            return (s, reopened);
        }
        let answer = if rng.chance(0.7) {
            ApproveExtension
        } else {
            DenyExtension
        };
        s.push((answer, Supervisor, gap(rng, HOUR, DAY)));
    }
    // Some in-rectification tickets are still being worked on; the others failed a
    // verification and are back with the engineer.
    if end == End::InRectification && rng.chance(0.6) {
        return (s, reopened);
    }
    let g = if major {
        gap(rng, DAY, 14 * DAY)
    } else {
        gap(rng, HOUR, 36 * HOUR)
    };
    s.push((SubmitFix, Engineer, g));
    if end == End::InRectification || rng.chance(0.15) {
        reopened = true;
        s.push((VerifyFail, Supervisor, gap(rng, HOUR, 2 * DAY)));
        if end == End::InRectification {
            return (s, reopened);
        }
        s.push((SubmitFix, Engineer, gap(rng, 2 * HOUR, 2 * DAY)));
    }
    if end == End::PendingVerification {
        return (s, reopened);
    }
    s.push((VerifyPass, Supervisor, gap(rng, HOUR, 2 * DAY)));
    (s, reopened)
}

/// Builds the tickets.
pub fn plan(spec: &Spec) -> Vec<Ticket> {
    let mut rng = Rng::new(spec.seed);
    let span = i64::from(spec.days.max(1)) * DAY;
    let mut stories: Vec<(Ticket, Skeleton)> = (0..spec.tickets)
        .map(|n| {
            let major = rng.chance(0.15);
            let end = End::pick(&mut rng);
            let (sk, reopened) = skeleton(&mut rng, major, end);
            let reported_at = spec.now - rng.range(NEWEST_REPORT, span.max(NEWEST_REPORT + 1));
            let t = Ticket {
                n,
                hazard_id: Uuid::now_v7(),
                major,
                category: CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize],
                reported_at,
                end,
                reopened,
                steps: Vec::new(),
            };
            (t, sk)
        })
        .collect();

    // Comments make up the rest, each by whoever acted just before it (so the runs, and
    // the rounds, stay as they are).
    let base: u64 = stories.iter().map(|(_, s)| s.len() as u64).sum();
    if spec.tickets > 0 {
        for _ in base..spec.events {
            let (_, sk) = &mut stories[rng.below(spec.tickets as u64) as usize];
            let pos = 1 + rng.below(sk.len() as u64) as usize;
            let actor = sk[pos - 1].1;
            sk.insert(pos, (Act::Comment, actor, rng.range(5 * MINUTE, 6 * HOUR)));
        }
    }

    for (t, sk) in &mut stories {
        // Squeeze the story into the time between its report and now when it would run
        // past now.
        let total: i64 = sk.iter().map(|s| s.2).sum();
        let room = spec.now - END_MARGIN - t.reported_at;
        let scale = if total > room {
            room as f64 / total as f64
        } else {
            1.0
        };
        let mut at = t.reported_at;
        let mut due = t.reported_at + if t.major { MAJOR_DUE } else { GENERAL_DUE };
        let mut requested = None;
        for (i, &(act, actor, gap)) in sk.iter().enumerate() {
            if i > 0 {
                at += ((gap as f64 * scale) as i64).max(MIN_GAP);
            }
            let step_due = match act {
                // Half the assignments set their own due date.
                Act::Assign if rng.chance(0.5) => {
                    let d = at
                        + if t.major {
                            rng.range(5 * DAY, 30 * DAY)
                        } else {
                            rng.range(DAY, 3 * DAY)
                        };
                    due = d;
                    Some(d)
                }
                Act::RequestExtension => {
                    let d = due.max(at) + rng.range(2 * DAY, 10 * DAY);
                    requested = Some(d);
                    Some(d)
                }
                Act::ApproveExtension => {
                    if let Some(d) = requested.take() {
                        due = d;
                    }
                    None
                }
                _ => None,
            };
            t.steps.push(Step {
                act,
                actor,
                at,
                id: Uuid::now_v7(),
                photo_id: act.photo_role().map(|_| Uuid::now_v7()),
                due: step_due,
            });
        }
    }
    stories.into_iter().map(|(t, _)| t).collect()
}

pub fn rfc3339(ms: i64) -> String {
    crate::facts::rfc3339(ms)
}

/// The ids the events name.
#[derive(Clone, Debug)]
pub struct Names {
    pub estate_id: Uuid,
    pub engineer_id: Uuid,
}

/// `data` of a ticket's `i`-th event.
pub fn event_data(t: &Ticket, i: usize, names: &Names, rng: &mut Rng) -> Value {
    let s = &t.steps[i];
    let mut d = json!({
        "estate_id": names.estate_id.to_string(),
        "hazard_id": t.hazard_id.to_string(),
        "action": s.act.as_str(),
    });
    let title_n = CATEGORIES
        .iter()
        .position(|c| *c == t.category)
        .unwrap_or(0);
    match s.act {
        Act::Report => {
            d["grade"] = json!(if t.major { "major" } else { "general" });
            d["category"] = json!(t.category);
            d["title"] = json!(format!("{} (#{})", TITLES[title_n], t.n + 1));
            d["description"] = json!(format!(
                "Found on the evening round near block {}, level {}. Reported with a photo; \
                 residents have been kept away for now.",
                1 + rng.below(12),
                rng.below(30)
            ));
            d["location"] = json!({
                "text": format!("Block {}, stair {}", 1 + rng.below(12), 1 + rng.below(4))
            });
        }
        Act::Comment => {
            d["text"] = json!(format!(
                "Checked again at {}: {}",
                rfc3339(s.at),
                [
                    "no change",
                    "cordon still in place",
                    "materials ordered",
                    "residents informed",
                    "waiting for the contractor",
                ][rng.below(5) as usize]
            ));
        }
        Act::Assign => {
            d["assignee"] = json!(names.engineer_id.to_string());
            if let Some(due) = s.due {
                d["due_at"] = json!(rfc3339(due));
            }
        }
        Act::Plan => {
            d["plan"] = json!({
                "goal": "Remove the hazard for good and keep the area safe meanwhile",
                "measures": "Cordon off the area, replace the failed parts, inspect weekly for a month",
                "funds": format!("¥{},000", 2 + rng.below(40)),
                "owner": "Liu Gong (engineering)",
                "deadline": rfc3339(t.reported_at + 30 * DAY),
            });
        }
        Act::Start => {}
        Act::RequestExtension => {
            d["due_at"] = json!(rfc3339(s.due.expect("an extension request has a date")));
            d["reason"] = json!("Parts on back order from the supplier");
        }
        Act::ApproveExtension => {}
        Act::DenyExtension => d["reason"] = json!("Use the temporary fix meanwhile"),
        Act::SubmitFix => d["note"] = json!("Repaired and tested; photo attached"),
        Act::VerifyPass => d["note"] = json!("Checked on site: fixed"),
        Act::VerifyFail => d["reason"] = json!("Still loose when tested; redo the fixing"),
        Act::Cancel => d["reason"] = json!("Duplicate of an earlier report"),
    }
    d
}

/// `data` of the photo documenting a ticket's `i`-th event.
pub fn photo_data(t: &Ticket, i: usize, names: &Names, rng: &mut Rng) -> Value {
    let s = &t.steps[i];
    json!({
        "estate_id": names.estate_id.to_string(),
        "sha256": rng.sha256_hex(),
        "bytes": 150_000 + rng.below(1_500_000),
        "mime": "image/jpeg",
        "subject": { "kind": "hazard_event", "id": s.id.to_string() },
        "role": s.act.photo_role().expect("an action with a photo"),
    })
}

/// Tallies of a plan.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub tickets: usize,
    pub events: u64,
    pub photos: u64,
    pub by_action: std::collections::BTreeMap<&'static str, u64>,
    pub by_end: std::collections::BTreeMap<&'static str, u64>,
    pub major: u64,
    pub reopened: u64,
    pub rounds: usize,
    /// Open tickets past their due date at `now`.
    pub overdue_at_now: u64,
}

pub fn tally(tickets: &[Ticket], now: i64) -> Tally {
    let mut t = Tally {
        tickets: tickets.len(),
        ..Tally::default()
    };
    for k in tickets {
        t.events += k.steps.len() as u64;
        t.photos += k.photos() as u64;
        for s in &k.steps {
            *t.by_action.entry(s.act.as_str()).or_default() += 1;
        }
        *t.by_end.entry(k.end.as_str()).or_default() += 1;
        t.major += u64::from(k.major);
        t.reopened += u64::from(k.reopened);
        t.rounds = t.rounds.max(k.runs().len());
        if k.end.is_open() && now > k.final_due() {
            t.overdue_at_now += 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn spec(tickets: usize, events: u64) -> Spec {
        Spec {
            tickets,
            events,
            days: 90,
            seed: 7,
            now: NOW,
        }
    }

    #[test]
    fn the_rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        for _ in 0..1000 {
            let x = a.range(-5, 5);
            assert_eq!(x, b.range(-5, 5));
            assert!((-5..5).contains(&x));
            let f = a.f64();
            b.f64();
            assert!((0.0..1.0).contains(&f));
        }
        let h = a.sha256_hex();
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_total_reaches_the_events_asked_for() {
        let p = plan(&spec(2_000, 20_000));
        let t = tally(&p, NOW);
        assert_eq!(t.tickets, 2_000);
        assert_eq!(t.events, 20_000);
        // Every report, fix and pass carries its photo.
        let with_photo: u64 = ["report", "submit_fix", "verify_pass"]
            .iter()
            .map(|a| t.by_action.get(a).copied().unwrap_or(0))
            .sum();
        assert_eq!(t.photos, with_photo);
        let closed = t.by_end["closed"] as f64 / 2_000.0;
        assert!((0.55..0.65).contains(&closed), "{closed}");
        assert!(t.by_end["cancelled"] > 0 && t.reopened > 0 && t.major > 0);
        assert!(t.by_action["approve_extension"] > 0 && t.by_action["plan"] > 0);
    }

    #[test]
    fn a_small_target_leaves_the_bare_stories() {
        let p = plan(&spec(100, 1));
        assert!(tally(&p, NOW).events >= 200);
        assert!(p
            .iter()
            .all(|t| t.steps.iter().all(|s| s.act != Act::Comment)));
    }

    /// The rules the server's fold applies, as far as the generator must respect them.
    #[test]
    fn every_story_is_valid_at_each_step() {
        for t in plan(&spec(3_000, 30_000)) {
            let runs = t.runs();
            // Runs alternate guard, supervisor, engineer, supervisor, engineer...
            for (r, range) in runs.iter().enumerate() {
                let want = match r {
                    0 => Actor::Guard,
                    r if r % 2 == 1 => Actor::Supervisor,
                    _ => Actor::Engineer,
                };
                assert_eq!(t.steps[range.start].actor, want, "ticket {} run {r}", t.n);
            }
            assert_eq!(t.steps[0].act, Act::Report);
            assert_eq!(t.steps[0].at, t.reported_at);
            let mut state = "reported";
            let mut due = t.reported_at + if t.major { MAJOR_DUE } else { GENERAL_DUE };
            let mut requested = None;
            let mut planned = false;
            for (i, s) in t.steps.iter().enumerate() {
                assert!(s.at < NOW - END_MARGIN + 60_000, "in the past");
                if i > 0 {
                    assert!(s.at - t.steps[i - 1].at >= MIN_GAP);
                    assert!(s.at - PHOTO_LEAD_MS > t.steps[i - 1].at);
                }
                let allowed: &[Actor] = match s.act {
                    Act::Report | Act::Comment => &Actor::ALL,
                    Act::Start | Act::RequestExtension | Act::SubmitFix => &[Actor::Engineer],
                    _ => &[Actor::Supervisor],
                };
                assert!(allowed.contains(&s.actor), "{:?} by {:?}", s.act, s.actor);
                assert_eq!(s.photo_id.is_some(), s.act.photo_role().is_some());
                state = match (s.act, state) {
                    (Act::Report, _) if i == 0 => "reported",
                    (Act::Comment, st) => st,
                    (Act::Cancel, "reported") => "cancelled",
                    (Act::Assign, "reported") => {
                        if let Some(d) = s.due {
                            assert!(d > s.at + 1_000);
                            due = d;
                        }
                        "assigned"
                    }
                    (Act::Plan, st) if st != "pending_verification" => {
                        planned = true;
                        st
                    }
                    (Act::Start, "assigned") => {
                        assert!(!t.major || planned, "a major hazard needs its plan first");
                        "in_rectification"
                    }
                    (Act::RequestExtension, "in_rectification") => {
                        let d = s.due.unwrap();
                        assert!(d > s.at && d > due);
                        requested = Some(d);
                        "extension_requested"
                    }
                    (Act::ApproveExtension, "extension_requested") => {
                        let d = requested.take().unwrap();
                        assert!(d > s.at);
                        due = d;
                        "in_rectification"
                    }
                    (Act::DenyExtension, "extension_requested") => "in_rectification",
                    (Act::SubmitFix, "in_rectification") => "pending_verification",
                    (Act::VerifyFail, "pending_verification") => "in_rectification",
                    (Act::VerifyPass, "pending_verification") => "closed",
                    (a, st) => panic!("ticket {}: {a:?} in state {st}", t.n),
                };
            }
            assert_eq!(state, t.end.as_str(), "ticket {}", t.n);
            assert_eq!(due, t.final_due());
        }
    }

    #[test]
    fn event_data_has_the_fields_the_server_reads() {
        let p = plan(&spec(300, 3_000));
        let names = Names {
            estate_id: Uuid::now_v7(),
            engineer_id: Uuid::now_v7(),
        };
        let mut rng = Rng::new(3);
        let major = p.iter().find(|t| t.major && t.end == End::Closed).unwrap();
        for (i, s) in major.steps.iter().enumerate() {
            let d = event_data(major, i, &names, &mut rng);
            assert_eq!(d["action"], s.act.as_str());
            assert_eq!(d["hazard_id"], major.hazard_id.to_string());
            match s.act {
                Act::Report => {
                    assert_eq!(d["grade"], "major");
                    assert!(d["title"].as_str().unwrap().len() > 5);
                    let ph = photo_data(major, i, &names, &mut rng);
                    assert_eq!(ph["role"], "before");
                    assert_eq!(ph["subject"]["id"], s.id.to_string());
                    assert_eq!(ph["subject"]["kind"], "hazard_event");
                    assert_eq!(ph["sha256"].as_str().unwrap().len(), 64);
                }
                Act::Assign => assert_eq!(d["assignee"], names.engineer_id.to_string()),
                Act::Plan => {
                    for f in ["goal", "measures", "funds", "owner", "deadline"] {
                        assert!(d["plan"][f].is_string(), "{f}");
                    }
                }
                _ => {}
            }
        }
    }
}
