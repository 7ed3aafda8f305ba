//! Reference data of one estate and the checks that keep it consistent.
//!
//! [`apply`] works on a copy: operations are applied in order, then the result is checked as
//! a whole, so an operation list may delete a zone together with the checkpoints that use it,
//! or move a tag from one checkpoint to another, in any order. Entities the operations do not
//! touch are taken as they are (they were checked when they were written); only what the
//! operations wrote, and what the operations' deletes leave dangling, is judged.

use super::*;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Largest checkpoint radius, metres.
pub const MAX_RADIUS_M: f64 = 10_000.0;
/// Shortest period of an interval rule, minutes.
pub const MIN_EVERY_MINUTES: u32 = 5;
/// Longest period of an interval rule, and longest expected route time, minutes.
pub const MAX_MINUTES: u32 = 1440;
/// Most runs a count rule may ask for in one window.
pub const MAX_MIN_RUNS: u32 = 100;

/// Normalises a tag value as a handset may report it. NFC UIDs come as `04:a2:19:7c`,
/// `04-A2-19-7C`, `04 a2 19 7c`, `0x04A2197C` …: separators and a `0x` prefix are dropped and
/// hex is upper-cased (`04A2197C`). A value that is not hex after that is kept upper-cased
/// (it will not match a tag, and the scan is flagged `unknown_tag`, never refused). QR
/// payloads are trimmed of surrounding white space only.
pub fn normalise_tag(kind: TagKind, raw: &str) -> String {
    let trimmed = raw.trim();
    match kind {
        TagKind::Qr => trimmed.to_owned(),
        TagKind::Nfc => {
            let body = trimmed
                .strip_prefix("0x")
                .or_else(|| trimmed.strip_prefix("0X"))
                .unwrap_or(trimmed);
            let hex: String = body
                .chars()
                .filter(|c| !matches!(c, ':' | '-' | ' ' | '.'))
                .map(|c| c.to_ascii_uppercase())
                .collect();
            if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                hex
            } else {
                trimmed.to_uppercase()
            }
        }
    }
}

/// Reads an estate's IANA time zone name (`Asia/Shanghai`), exactly as given.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, RefError> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        RefError::new(
            0,
            "invalid_timezone",
            "timezone",
            format!(
                "{:?} is not an IANA time zone name such as Asia/Shanghai",
                shorten(name)
            ),
        )
    })
}

/// Applies `ops` in order to `set` and checks the result as a whole. On success, the new set
/// and one [`RefChange`] per entity written (puts and tombstones, in op order; an entity put
/// twice appears once, last write). On failure, every problem found, each `at` its op index;
/// nothing is applied.
///
/// Puts are normalised first: codes and names trimmed, tag values normalised
/// ([`normalise_tag`]). A problem of one entity is reported at the last op that wrote it; a
/// reference left dangling at whichever of the two (the user's put, the target's delete)
/// came later: `unknown_…` at the put, `in_use` at the delete.
pub fn apply(
    set: &ReferenceSet,
    ops: &[RefOp],
) -> Result<(ReferenceSet, Vec<RefChange>), Vec<RefError>> {
    let mut zones = Coll::new(&set.zones);
    let mut checkpoints = Coll::new(&set.checkpoints);
    let mut routes = Coll::new(&set.routes);
    let mut rules = Coll::new(&set.rules);

    let mut errors = Vec::new();
    let mut order: Vec<Key> = Vec::new();
    let mut last: HashMap<Key, usize> = HashMap::new();
    // What a deleted entity was called, for messages.
    let mut gone: HashMap<Key, String> = HashMap::new();

    for (i, op) in ops.iter().enumerate() {
        let key = match op {
            RefOp::Put(e) => {
                let key = (e.collection(), e.id());
                match normalised(e) {
                    RefEntity::Zone(x) => zones.put(x),
                    RefEntity::Checkpoint(x) => checkpoints.put(x),
                    RefEntity::Route(x) => routes.put(x),
                    RefEntity::Rule(x) => rules.put(x),
                }
                key
            }
            RefOp::Delete { collection, id } => {
                let label = match collection {
                    RefCollection::Zones => zones.delete(*id).map(|x| zone_label(&x)),
                    RefCollection::Checkpoints => {
                        checkpoints.delete(*id).map(|x| checkpoint_label(&x))
                    }
                    RefCollection::Routes => routes.delete(*id).map(|x| route_label(&x)),
                    RefCollection::Rules => rules.delete(*id).map(|x| rule_label(&x)),
                };
                let Some(label) = label else {
                    errors.push(RefError::new(
                        i,
                        "not_found",
                        "id",
                        format!("there is no {} {id} to delete", singular(*collection)),
                    ));
                    continue;
                };
                gone.insert((*collection, *id), label);
                (*collection, *id)
            }
        };
        if last.insert(key, i).is_none() {
            order.push(key);
        }
    }

    let result = ReferenceSet {
        estate_id: set.estate_id,
        timezone: set.timezone.clone(),
        zones: zones.into_vec(),
        checkpoints: checkpoints.into_vec(),
        routes: routes.into_vec(),
        rules: rules.into_vec(),
    };

    let mut checker = Checker::new(&result, &last, &gone);
    checker.run();
    errors.extend(checker.finish());
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.at);
        return Err(errors);
    }

    let existed_before: std::collections::HashSet<Key> = entity_keys(set).collect();
    let after: HashMap<Key, RefEntity> = entities(&result).map(|e| (key_of(&e), e)).collect();
    let changes = order
        .into_iter()
        .filter_map(|key| {
            let data = after.get(&key).map(RefEntity::to_json);
            if data.is_none() && !existed_before.contains(&key) {
                // Created and deleted within the same operations: nothing to write.
                return None;
            }
            Some(RefChange {
                collection: key.0,
                id: key.1,
                data,
            })
        })
        .collect();
    Ok((result, changes))
}

type Key = (RefCollection, Uuid);

fn key_of(e: &RefEntity) -> Key {
    (e.collection(), e.id())
}

fn entities(set: &ReferenceSet) -> impl Iterator<Item = RefEntity> + '_ {
    set.zones
        .iter()
        .cloned()
        .map(RefEntity::Zone)
        .chain(set.checkpoints.iter().cloned().map(RefEntity::Checkpoint))
        .chain(set.routes.iter().cloned().map(RefEntity::Route))
        .chain(set.rules.iter().cloned().map(RefEntity::Rule))
}

fn entity_keys(set: &ReferenceSet) -> impl Iterator<Item = Key> + '_ {
    set.zones
        .iter()
        .map(|x| (RefCollection::Zones, x.id.0))
        .chain(
            set.checkpoints
                .iter()
                .map(|x| (RefCollection::Checkpoints, x.id.0)),
        )
        .chain(set.routes.iter().map(|x| (RefCollection::Routes, x.id.0)))
        .chain(set.rules.iter().map(|x| (RefCollection::Rules, x.id.0)))
}

fn singular(c: RefCollection) -> &'static str {
    match c {
        RefCollection::Zones => "zone",
        RefCollection::Checkpoints => "checkpoint",
        RefCollection::Routes => "route",
        RefCollection::Rules => "rule",
    }
}

fn zone_label(z: &Zone) -> String {
    format!("zone {:?}", shorten(&z.code))
}
fn checkpoint_label(c: &Checkpoint) -> String {
    format!("checkpoint {:?}", shorten(&c.code))
}
fn route_label(r: &Route) -> String {
    format!("route {:?}", shorten(&r.code))
}
fn rule_label(r: &Rule) -> String {
    format!("rule {:?}", shorten(&r.name))
}

/// A value as quoted in a message: at most 40 characters.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(39).collect();
        t.push('…');
        t
    }
}

fn trim(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_owned();
    }
}

fn normalised(e: &RefEntity) -> RefEntity {
    let mut e = e.clone();
    match &mut e {
        RefEntity::Zone(z) => {
            trim(&mut z.code);
            trim(&mut z.name);
        }
        RefEntity::Checkpoint(c) => {
            trim(&mut c.code);
            trim(&mut c.name);
            for t in &mut c.tags {
                t.value = normalise_tag(t.kind, &t.value);
            }
        }
        RefEntity::Route(r) => {
            trim(&mut r.code);
            trim(&mut r.name);
        }
        RefEntity::Rule(r) => trim(&mut r.name),
    }
    e
}

trait Keyed {
    fn uid(&self) -> Uuid;
}
impl Keyed for Zone {
    fn uid(&self) -> Uuid {
        self.id.0
    }
}
impl Keyed for Checkpoint {
    fn uid(&self) -> Uuid {
        self.id.0
    }
}
impl Keyed for Route {
    fn uid(&self) -> Uuid {
        self.id.0
    }
}
impl Keyed for Rule {
    fn uid(&self) -> Uuid {
        self.id.0
    }
}

/// One collection being edited: replaced in place, deleted as holes, new ones appended.
struct Coll<T> {
    items: Vec<Option<T>>,
    index: HashMap<Uuid, usize>,
}

impl<T: Keyed + Clone> Coll<T> {
    fn new(v: &[T]) -> Self {
        Coll {
            items: v.iter().cloned().map(Some).collect(),
            index: v.iter().enumerate().map(|(i, x)| (x.uid(), i)).collect(),
        }
    }
    fn put(&mut self, x: T) {
        match self.index.get(&x.uid()) {
            Some(&i) => self.items[i] = Some(x),
            None => {
                self.index.insert(x.uid(), self.items.len());
                self.items.push(Some(x));
            }
        }
    }
    fn delete(&mut self, id: Uuid) -> Option<T> {
        let i = self.index.remove(&id)?;
        self.items[i].take()
    }
    fn into_vec(self) -> Vec<T> {
        self.items.into_iter().flatten().collect()
    }
}

/// The whole-set checks of a result.
struct Checker<'a> {
    set: &'a ReferenceSet,
    last: &'a HashMap<Key, usize>,
    gone: &'a HashMap<Key, String>,
    zones: HashMap<Uuid, &'a Zone>,
    checkpoints: HashMap<Uuid, &'a Checkpoint>,
    routes: HashMap<Uuid, &'a Route>,
    errors: Vec<RefError>,
    /// Deleted entities still used: (delete op, target) → users.
    in_use: BTreeMap<(usize, Key), Vec<String>>,
}

impl<'a> Checker<'a> {
    fn new(
        set: &'a ReferenceSet,
        last: &'a HashMap<Key, usize>,
        gone: &'a HashMap<Key, String>,
    ) -> Self {
        Checker {
            set,
            last,
            gone,
            zones: set.zones.iter().map(|x| (x.id.0, x)).collect(),
            checkpoints: set.checkpoints.iter().map(|x| (x.id.0, x)).collect(),
            routes: set.routes.iter().map(|x| (x.id.0, x)).collect(),
            errors: Vec::new(),
            in_use: BTreeMap::new(),
        }
    }

    fn at(&self, c: RefCollection, id: Uuid) -> Option<usize> {
        self.last.get(&(c, id)).copied()
    }

    /// The entity was there before op `at`: not written by the ops, or last by an earlier op.
    fn settled_before(&self, c: RefCollection, id: Uuid, at: usize) -> bool {
        match self.at(c, id) {
            None => true,
            Some(a) => a < at,
        }
    }

    fn err(&mut self, at: usize, code: &str, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(RefError::new(at, code, field, msg));
    }

    fn finish(mut self) -> Vec<RefError> {
        let in_use = std::mem::take(&mut self.in_use);
        for ((at, target), users) in in_use {
            let what = self
                .gone
                .get(&target)
                .cloned()
                .unwrap_or_else(|| format!("{} {}", singular(target.0), target.1));
            let mut names: Vec<String> = users.iter().take(10).cloned().collect();
            if users.len() > 10 {
                names.push(format!("{} more", users.len() - 10));
            }
            self.err(
                at,
                "in_use",
                "id",
                format!(
                    "{what} cannot be deleted: {} still use it",
                    names.join(", ")
                ),
            );
        }
        self.errors
    }

    /// `user` (in the result) refers to `target`, which is not in the result. Reported at
    /// whichever op came later: the user's put (`code`) or the target's delete (`in_use`).
    fn dangling(
        &mut self,
        user: Key,
        user_label: &str,
        target: Key,
        code: &str,
        field: impl Into<String>,
    ) {
        let lu = self.last.get(&user).copied();
        let lt = self.last.get(&target).copied();
        let in_use_at = match (lu, lt) {
            (Some(u), Some(t)) if t > u => Some(t),
            (Some(u), _) => {
                let what = singular(target.0);
                self.err(
                    u,
                    code,
                    field,
                    format!("{what} {} is not a {what} of this estate", target.1),
                );
                None
            }
            (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        if let Some(t) = in_use_at {
            self.in_use
                .entry((t, target))
                .or_default()
                .push(user_label.to_owned());
        }
    }

    fn run(&mut self) {
        let set = self.set;
        for z in &set.zones {
            if let Some(at) = self.at(RefCollection::Zones, z.id.0) {
                self.estate(at, z.estate_id);
                self.text(at, "code", &z.code, MAX_CODE, true);
                self.text(at, "name", &z.name, MAX_NAME, true);
            }
        }
        for c in &set.checkpoints {
            self.checkpoint(c);
        }
        for r in &set.routes {
            self.route(r);
        }
        for r in &set.rules {
            self.rule(r);
        }
        self.duplicate_codes(
            RefCollection::Zones,
            set.zones
                .iter()
                .map(|x| (x.id.0, x.code.as_str(), x.name.as_str())),
        );
        self.duplicate_codes(
            RefCollection::Checkpoints,
            set.checkpoints
                .iter()
                .map(|x| (x.id.0, x.code.as_str(), x.name.as_str())),
        );
        self.duplicate_codes(
            RefCollection::Routes,
            set.routes
                .iter()
                .map(|x| (x.id.0, x.code.as_str(), x.name.as_str())),
        );
        self.duplicate_tags();
    }

    fn estate(&mut self, at: usize, estate_id: EstateId) {
        if estate_id != self.set.estate_id {
            self.err(
                at,
                "invalid_value",
                "estate_id",
                format!(
                    "estate_id {estate_id} is not this estate ({})",
                    self.set.estate_id
                ),
            );
        }
    }

    /// A text of at most `max` characters; `required`: not empty.
    fn text(&mut self, at: usize, field: &str, value: &str, max: usize, required: bool) {
        if required && value.is_empty() {
            self.err(at, "missing_field", field, format!("{field} is required"));
        } else if value.chars().count() > max {
            self.err(
                at,
                "invalid_value",
                field,
                format!(
                    "{field} {:?} is {} characters long; at most {max} are allowed",
                    shorten(value),
                    value.chars().count()
                ),
            );
        }
    }

    fn checkpoint(&mut self, c: &'a Checkpoint) {
        let key = (RefCollection::Checkpoints, c.id.0);
        let label = checkpoint_label(c);
        if let Some(z) = c.zone_id {
            if !self.zones.contains_key(&z.0) {
                self.dangling(
                    key,
                    &label,
                    (RefCollection::Zones, z.0),
                    "unknown_zone",
                    "zone_id",
                );
            }
        }
        let Some(at) = self.at(key.0, key.1) else {
            return;
        };
        self.estate(at, c.estate_id);
        self.text(at, "code", &c.code, MAX_CODE, true);
        self.text(at, "name", &c.name, MAX_NAME, true);
        if let Some(p) = c.location {
            if !(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat)) {
                self.err(
                    at,
                    "invalid_value",
                    "location.lat",
                    format!("latitude {} is not from -90 to 90", p.lat),
                );
            }
            if !(p.lng.is_finite() && (-180.0..=180.0).contains(&p.lng)) {
                self.err(
                    at,
                    "invalid_value",
                    "location.lng",
                    format!("longitude {} is not from -180 to 180", p.lng),
                );
            }
        }
        if !(c.radius_m.is_finite() && c.radius_m > 0.0 && c.radius_m <= MAX_RADIUS_M) {
            self.err(
                at,
                "invalid_value",
                "radius_m",
                format!(
                    "radius_m {} is not more than 0 and at most {MAX_RADIUS_M} metres",
                    c.radius_m
                ),
            );
        }
        if let Some(f) = &c.floor {
            self.text(at, "floor", f, MAX_NAME, false);
        }
        if let Some(s) = &c.instructions {
            self.text(at, "instructions", s, MAX_INSTRUCTIONS, false);
        }
        for (i, t) in c.tags.iter().enumerate() {
            let field = format!("tags[{i}].value");
            if t.value.is_empty() {
                self.err(
                    at,
                    "invalid_value",
                    field,
                    format!("{} tag value must not be empty", t.kind.as_str()),
                );
            } else if t.value.chars().count() > MAX_TAG {
                self.err(
                    at,
                    "invalid_value",
                    field,
                    format!(
                        "tag {:?} is {} characters long; at most {MAX_TAG} are allowed",
                        shorten(&t.key()),
                        t.value.chars().count()
                    ),
                );
            }
        }
    }

    fn route(&mut self, r: &'a Route) {
        let key = (RefCollection::Routes, r.id.0);
        let label = route_label(r);
        let at = self.at(key.0, key.1);
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for (i, cp) in r.checkpoints.iter().enumerate() {
            if !self.checkpoints.contains_key(&cp.0) {
                self.dangling(
                    key,
                    &label,
                    (RefCollection::Checkpoints, cp.0),
                    "unknown_checkpoint",
                    format!("checkpoints[{i}]"),
                );
            }
            if let Some(&first) = seen.get(&cp.0) {
                if let Some(at) = at {
                    let name = self
                        .checkpoints
                        .get(&cp.0)
                        .map(|c| checkpoint_label(c))
                        .unwrap_or_else(|| format!("checkpoint {cp}"));
                    self.err(
                        at,
                        "invalid_value",
                        format!("checkpoints[{i}]"),
                        format!(
                            "{name} is on the route twice (stops {} and {})",
                            first + 1,
                            i + 1
                        ),
                    );
                }
            } else {
                seen.insert(cp.0, i);
            }
        }
        let Some(at) = at else {
            return;
        };
        self.estate(at, r.estate_id);
        self.text(at, "code", &r.code, MAX_CODE, true);
        self.text(at, "name", &r.name, MAX_NAME, true);
        if r.checkpoints.is_empty() {
            self.err(
                at,
                "invalid_value",
                "checkpoints",
                "a route needs at least one checkpoint",
            );
        } else if r.checkpoints.len() > MAX_ROUTE_LEN {
            self.err(
                at,
                "invalid_value",
                "checkpoints",
                format!(
                    "a route of {} checkpoints is too long; at most {MAX_ROUTE_LEN} are allowed",
                    r.checkpoints.len()
                ),
            );
        }
        if !(1..=MAX_MINUTES).contains(&r.expected_minutes) {
            self.err(
                at,
                "invalid_value",
                "expected_minutes",
                format!(
                    "expected_minutes {} is not from 1 to {MAX_MINUTES}",
                    r.expected_minutes
                ),
            );
        }
    }

    fn rule(&mut self, r: &'a Rule) {
        let key = (RefCollection::Rules, r.id.0);
        let label = rule_label(r);
        let at = self.at(key.0, key.1);
        match &r.kind {
            RuleKind::Interval { target, .. } => match target {
                RuleTarget::Class(_) => {}
                RuleTarget::Zone(z) => {
                    if !self.zones.contains_key(&z.0) {
                        self.dangling(
                            key,
                            &label,
                            (RefCollection::Zones, z.0),
                            "unknown_zone",
                            "target.zone",
                        );
                    }
                }
                RuleTarget::Checkpoints(cps) => {
                    for (i, cp) in cps.iter().enumerate() {
                        if !self.checkpoints.contains_key(&cp.0) {
                            self.dangling(
                                key,
                                &label,
                                (RefCollection::Checkpoints, cp.0),
                                "unknown_checkpoint",
                                format!("target.checkpoints[{i}]"),
                            );
                        }
                    }
                }
            },
            RuleKind::Count { route_id, .. } => {
                if !self.routes.contains_key(&route_id.0) {
                    self.dangling(
                        key,
                        &label,
                        (RefCollection::Routes, route_id.0),
                        "unknown_route",
                        "route_id",
                    );
                }
            }
        }
        let Some(at) = at else {
            return;
        };
        self.estate(at, r.estate_id);
        self.text(at, "name", &r.name, MAX_NAME, true);
        for (field, t) in [
            ("window.start", r.window.start),
            ("window.end", r.window.end),
        ] {
            if t.minutes() >= 1440 {
                self.err(
                    at,
                    "invalid_time",
                    field,
                    format!("{field} of {} minutes is past the end of the day", t.0),
                );
            }
        }
        match &r.kind {
            RuleKind::Interval {
                target,
                every_minutes,
                grace,
            } => {
                let every = *every_minutes;
                if !(MIN_EVERY_MINUTES..=MAX_MINUTES).contains(&every) {
                    self.err(
                        at,
                        "invalid_value",
                        "every_minutes",
                        format!(
                            "every_minutes {every} is not from {MIN_EVERY_MINUTES} to {MAX_MINUTES}"
                        ),
                    );
                }
                match grace {
                    Some(Grace::Minutes(m)) if *m > every => self.err(
                        at,
                        "invalid_value",
                        "grace.minutes",
                        format!(
                            "a grace of {m} minutes is longer than the period of {every} minutes"
                        ),
                    ),
                    Some(Grace::Percent(p)) if *p > 100 => self.err(
                        at,
                        "invalid_value",
                        "grace.percent",
                        format!("a grace of {p} % is not from 0 to 100 %"),
                    ),
                    _ => {}
                }
                if let RuleTarget::Checkpoints(cps) = target {
                    if cps.is_empty() {
                        self.err(
                            at,
                            "invalid_value",
                            "target.checkpoints",
                            "a rule's checkpoint list must not be empty",
                        );
                    }
                    let mut seen = std::collections::HashSet::new();
                    for (i, cp) in cps.iter().enumerate() {
                        if !seen.insert(cp.0) {
                            self.err(
                                at,
                                "invalid_value",
                                format!("target.checkpoints[{i}]"),
                                format!("checkpoint {cp} is listed twice"),
                            );
                        }
                    }
                }
            }
            RuleKind::Count { min_runs, .. } => {
                if !(1..=MAX_MIN_RUNS).contains(min_runs) {
                    self.err(
                        at,
                        "invalid_value",
                        "min_runs",
                        format!("min_runs {min_runs} is not from 1 to {MAX_MIN_RUNS}"),
                    );
                }
            }
        }
    }

    /// Codes unique in a collection: each written entity whose code another has (one not
    /// written by these ops, or one last written by an earlier op) is reported.
    fn duplicate_codes<'b>(
        &mut self,
        c: RefCollection,
        items: impl Iterator<Item = (Uuid, &'b str, &'b str)>,
    ) {
        let items: Vec<(Uuid, &str, &str)> = items.collect();
        let mut by_code: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, (_, code, _)) in items.iter().enumerate() {
            if !code.is_empty() {
                by_code.entry(code).or_default().push(i);
            }
        }
        for (m, (id, code, _)) in items.iter().enumerate() {
            let Some(at) = self.at(c, *id) else {
                continue;
            };
            let Some(group) = by_code.get(code) else {
                continue;
            };
            let other = group
                .iter()
                .copied()
                .find(|&o| o != m && self.settled_before(c, items[o].0, at));
            if let Some(o) = other {
                self.err(
                    at,
                    "duplicate_code",
                    "code",
                    format!(
                        "code {:?} is already the code of {} {:?} ({})",
                        shorten(code),
                        singular(c),
                        shorten(items[o].2),
                        items[o].0
                    ),
                );
            }
        }
    }

    /// A tag key on one checkpoint of the estate, once.
    fn duplicate_tags(&mut self) {
        let set = self.set;
        let cps = &set.checkpoints;
        let mut by_key: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (ci, c) in cps.iter().enumerate() {
            for (ti, t) in c.tags.iter().enumerate() {
                by_key.entry(t.key()).or_default().push((ci, ti));
            }
        }
        for (ci, c) in cps.iter().enumerate() {
            let Some(at) = self.at(RefCollection::Checkpoints, c.id.0) else {
                continue;
            };
            for (ti, t) in c.tags.iter().enumerate() {
                if t.value.is_empty() {
                    continue;
                }
                let key = t.key();
                let Some(group) = by_key.get(&key) else {
                    continue;
                };
                let field = format!("tags[{ti}].value");
                if group.iter().any(|&(oc, ot)| oc == ci && ot < ti) {
                    self.err(
                        at,
                        "duplicate_tag",
                        field,
                        format!(
                            "tag {:?} is on checkpoint {:?} twice",
                            shorten(&key),
                            shorten(&c.code)
                        ),
                    );
                    continue;
                }
                let other = group.iter().map(|&(oc, _)| oc).find(|&oc| {
                    oc != ci && self.settled_before(RefCollection::Checkpoints, cps[oc].id.0, at)
                });
                if let Some(oc) = other {
                    self.err(
                        at,
                        "duplicate_tag",
                        field,
                        format!(
                            "tag {:?} is already on checkpoint {:?}",
                            shorten(&key),
                            shorten(&cps[oc].code)
                        ),
                    );
                }
            }
        }
    }
}
