//! Reference data of an estate: tag normalisation, `apply` and its checks, CSV imports.

use shared_core::patrol::import::{plan_checkpoints, plan_routes, ImportPlan};
use shared_core::patrol::reference::{apply, normalise_tag, parse_timezone};
use shared_core::patrol::*;
use shared_core::{CheckpointId, EstateId, RouteId, RuleId, ZoneId};
use uuid::Uuid;

// ------------------------------------------------------------------ fixtures

fn estate() -> EstateId {
    EstateId(Uuid::from_u128(0xE57A7E))
}

fn zone(n: u128, code: &str) -> Zone {
    Zone {
        id: ZoneId(Uuid::from_u128(0x100 + n)),
        estate_id: estate(),
        code: code.into(),
        name: format!("Zone {code}"),
    }
}

fn cp(n: u128, code: &str, zone: Option<&Zone>, tags: &[&str]) -> Checkpoint {
    Checkpoint {
        id: CheckpointId(Uuid::from_u128(0x200 + n)),
        estate_id: estate(),
        zone_id: zone.map(|z| z.id),
        code: code.into(),
        name: format!("Checkpoint {code}"),
        class: CheckpointClass::Key,
        location: Some(GeoPoint {
            lat: 31.23,
            lng: 121.47,
        }),
        radius_m: 30.0,
        floor: Some("B1".into()),
        instructions: None,
        tags: tags
            .iter()
            .map(|t| match t.strip_prefix("qr:") {
                Some(q) => Tag {
                    kind: TagKind::Qr,
                    value: q.into(),
                },
                None => Tag {
                    kind: TagKind::Nfc,
                    value: (*t).into(),
                },
            })
            .collect(),
    }
}

fn route(n: u128, code: &str, cps: &[&Checkpoint]) -> Route {
    Route {
        id: RouteId(Uuid::from_u128(0x300 + n)),
        estate_id: estate(),
        code: code.into(),
        name: format!("Route {code}"),
        checkpoints: cps.iter().map(|c| c.id).collect(),
        strict: true,
        expected_minutes: 45,
    }
}

fn interval(n: u128, target: RuleTarget) -> Rule {
    Rule {
        id: RuleId(Uuid::from_u128(0x400 + n)),
        estate_id: estate(),
        name: format!("Rule {n}"),
        window: Window {
            start: "22:00".parse().unwrap(),
            end: "06:00".parse().unwrap(),
        },
        kind: RuleKind::Interval {
            target,
            every_minutes: 60,
            grace: None,
        },
    }
}

fn count(n: u128, r: &Route) -> Rule {
    Rule {
        id: RuleId(Uuid::from_u128(0x400 + n)),
        estate_id: estate(),
        name: format!("Rule {n}"),
        window: Window {
            start: "20:00".parse().unwrap(),
            end: "08:00".parse().unwrap(),
        },
        kind: RuleKind::Count {
            route_id: r.id,
            min_runs: 4,
        },
    }
}

fn put<E: Into<Ent>>(e: E) -> RefOp {
    RefOp::Put(e.into().0)
}

struct Ent(RefEntity);
impl From<Zone> for Ent {
    fn from(x: Zone) -> Self {
        Ent(RefEntity::Zone(x))
    }
}
impl From<Checkpoint> for Ent {
    fn from(x: Checkpoint) -> Self {
        Ent(RefEntity::Checkpoint(x))
    }
}
impl From<Route> for Ent {
    fn from(x: Route) -> Self {
        Ent(RefEntity::Route(x))
    }
}
impl From<Rule> for Ent {
    fn from(x: Rule) -> Self {
        Ent(RefEntity::Rule(x))
    }
}

fn del(collection: RefCollection, id: impl Into<Uuid>) -> RefOp {
    RefOp::Delete {
        collection,
        id: id.into(),
    }
}

fn empty() -> ReferenceSet {
    ReferenceSet::empty(estate(), "Asia/Shanghai")
}

/// A small estate: zones A and B, checkpoints CP-01 (A, two tags), CP-02 (B), CP-03 (none),
/// route R1 over all three, an interval rule on zone A and a count rule on R1.
fn good_estate() -> (ReferenceSet, Vec<RefOp>) {
    let za = zone(1, "A");
    let zb = zone(2, "B");
    let c1 = cp(
        1,
        "CP-01",
        Some(&za),
        &["04A2197C", "qr:https://t.example/1"],
    );
    let c2 = cp(2, "CP-02", Some(&zb), &["04A2197D"]);
    let c3 = cp(3, "CP-03", None, &[]);
    let r1 = route(1, "R1", &[&c1, &c2, &c3]);
    let ops = vec![
        put(za.clone()),
        put(zb),
        put(c1.clone()),
        put(c2.clone()),
        put(c3.clone()),
        put(r1.clone()),
        put(interval(1, RuleTarget::Zone(za.id))),
        put(interval(2, RuleTarget::Checkpoints(vec![c1.id, c3.id]))),
        put(interval(3, RuleTarget::Class(CheckpointClass::General))),
        put(count(4, &r1)),
    ];
    let set = apply(&empty(), &ops).expect("the good estate applies");
    (set.0, ops)
}

fn errs(set: &ReferenceSet, ops: &[RefOp]) -> Vec<RefError> {
    apply(set, ops).expect_err("should be refused")
}

/// The single error of a refused op list.
fn one_err(set: &ReferenceSet, ops: &[RefOp]) -> RefError {
    let e = errs(set, ops);
    assert_eq!(e.len(), 1, "expected one error: {e:#?}");
    e.into_iter().next().unwrap()
}

fn assert_err(e: &RefError, at: usize, code: &str, field: &str, msg_has: &str) {
    assert_eq!(
        (e.at, e.code.as_str(), e.field.as_str()),
        (at, code, field),
        "{e:?}"
    );
    assert!(
        e.message.contains(msg_has),
        "{:?} should contain {msg_has:?}",
        e.message
    );
}

// ------------------------------------------------------------------ normalise_tag

#[test]
fn nfc_tags_are_normalised_from_every_form() {
    for raw in [
        "04:a2:19:7c",
        "04-A2-19-7C",
        "04 a2 19 7c",
        "0x04A2197C",
        "0X04a2197c",
        "  04.a2.19.7c\t",
        "04A2197C",
        "0x04:a2-19 7c",
    ] {
        assert_eq!(normalise_tag(TagKind::Nfc, raw), "04A2197C", "{raw:?}");
    }
    // Not hex after normalising: kept trimmed and upper-cased, separators and all.
    assert_eq!(normalise_tag(TagKind::Nfc, " gate-7 "), "GATE-7");
    assert_eq!(normalise_tag(TagKind::Nfc, "0x"), "0X");
    assert_eq!(normalise_tag(TagKind::Nfc, " : "), ":");
    assert_eq!(normalise_tag(TagKind::Nfc, ""), "");
    assert_eq!(normalise_tag(TagKind::Nfc, "门禁"), "门禁");
}

#[test]
fn qr_tags_are_only_trimmed() {
    assert_eq!(
        normalise_tag(TagKind::Qr, "  https://t.example/cp/7?x=ab:CD \n"),
        "https://t.example/cp/7?x=ab:CD"
    );
    assert_eq!(normalise_tag(TagKind::Qr, "04:a2"), "04:a2");
    let t = Tag {
        kind: TagKind::Qr,
        value: normalise_tag(TagKind::Qr, " X "),
    };
    assert_eq!(t.key(), "qr:X");
}

#[test]
fn time_zones_are_checked() {
    assert_eq!(
        parse_timezone("Asia/Shanghai").unwrap(),
        chrono_tz::Asia::Shanghai
    );
    let e = parse_timezone("Mars/Olympus").unwrap_err();
    assert_err(&e, 0, "invalid_timezone", "timezone", "\"Mars/Olympus\"");
    assert!(parse_timezone("").is_err());
}

// ------------------------------------------------------------------ apply: good

#[test]
fn a_good_estate_is_accepted_with_one_change_per_entity() {
    let (_, ops) = good_estate();
    let (set, changes) = apply(&empty(), &ops).unwrap();
    assert_eq!(set.zones.len(), 2);
    assert_eq!(set.checkpoints.len(), 3);
    assert_eq!(set.routes.len(), 1);
    assert_eq!(set.rules.len(), 4);
    assert_eq!(changes.len(), ops.len());
    for (op, ch) in ops.iter().zip(&changes) {
        let RefOp::Put(e) = op else { unreachable!() };
        assert_eq!((ch.collection, ch.id), (e.collection(), e.id()));
        assert_eq!(ch.data.as_ref(), Some(&e.to_json()));
    }
    assert_eq!(changes[2].data.as_ref().unwrap()["code"], "CP-01");
    assert_eq!(changes[9].data.as_ref().unwrap()["kind"], "count");
}

#[test]
fn puts_are_normalised_and_an_entity_put_twice_changes_once() {
    let (set, _) = good_estate();
    let mut c1 = set.checkpoints[0].clone();
    c1.code = "  CP-01 ".into();
    c1.name = " Pump room\t".into();
    c1.tags[0].value = "04:a2:19:7c".into();
    let mut z2 = set.zones[1].clone();
    z2.name = "Block B".into();
    let mut z2b = z2.clone();
    z2b.name = " Block B, east ".into();
    let ops = [put(z2), put(c1), put(z2b)];
    let (after, changes) = apply(&set, &ops).unwrap();
    assert_eq!(after.checkpoints[0].code, "CP-01");
    assert_eq!(after.checkpoints[0].name, "Pump room");
    assert_eq!(after.checkpoints[0].tags[0].value, "04A2197C");
    assert_eq!(after.zones[1].name, "Block B, east");
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].collection, RefCollection::Zones);
    assert_eq!(
        changes[0].data.as_ref().unwrap()["name"],
        "Block B, east",
        "the last write"
    );
    assert_eq!(changes[1].collection, RefCollection::Checkpoints);
    assert_eq!(
        changes[1].data.as_ref().unwrap()["tags"][0]["value"],
        "04A2197C"
    );
    // The input set itself is untouched.
    assert_eq!(set.checkpoints[0].name, "Checkpoint CP-01");
}

#[test]
fn entity_order_is_stable_and_new_ones_are_appended() {
    let (set, _) = good_estate();
    let za = set.zones[0].clone();
    let mut c2 = set.checkpoints[1].clone();
    c2.name = "Gate".into();
    let c4 = cp(4, "CP-04", Some(&za), &[]);
    let ops = [put(c4), put(c2)];
    let (after, _) = apply(&set, &ops).unwrap();
    let codes: Vec<&str> = after.checkpoints.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["CP-01", "CP-02", "CP-03", "CP-04"]);
    assert_eq!(after.checkpoints[1].name, "Gate");
}

#[test]
fn a_tag_moved_between_checkpoints_in_one_list_is_fine_in_either_order() {
    let (set, _) = good_estate();
    let mut a = set.checkpoints[0].clone();
    let mut b = set.checkpoints[1].clone();
    let moved = a.tags.remove(0);
    b.tags.push(moved);
    for ops in [
        vec![put(a.clone()), put(b.clone())],
        vec![put(b.clone()), put(a.clone())],
    ] {
        let (after, changes) = apply(&set, &ops).unwrap();
        assert_eq!(after.checkpoints[1].tags.len(), 2);
        assert_eq!(changes.len(), 2);
    }
}

// ------------------------------------------------------------------ apply: each error

#[test]
fn estate_must_be_the_sets() {
    let mut z = zone(9, "Z");
    z.estate_id = EstateId(Uuid::from_u128(77));
    let e = one_err(&empty(), &[put(z)]);
    assert_err(&e, 0, "invalid_value", "estate_id", "is not this estate");
}

#[test]
fn codes_and_names_are_required_and_bounded() {
    let (set, _) = good_estate();
    let mut z = zone(9, "   ");
    z.name = "n".repeat(MAX_NAME + 1);
    let e = errs(&set, &[put(z)]);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_err(&e[0], 0, "missing_field", "code", "code is required");
    assert_err(&e[1], 0, "invalid_value", "name", "201 characters");

    let c = cp(9, &"C".repeat(MAX_CODE + 1), None, &[]);
    assert_err(
        &one_err(&set, &[put(c)]),
        0,
        "invalid_value",
        "code",
        "65 characters",
    );
    let mut c = cp(9, &"C".repeat(MAX_CODE), None, &[]);
    c.name = "".into();
    assert_err(
        &one_err(&set, &[put(c)]),
        0,
        "missing_field",
        "name",
        "required",
    );

    let mut r = route(9, "R9", &[&set.checkpoints[0]]);
    r.name = " ".into();
    assert_err(&one_err(&set, &[put(r)]), 0, "missing_field", "name", "");
    let mut rule = interval(9, RuleTarget::Class(CheckpointClass::Key));
    rule.name = "".into();
    assert_err(&one_err(&set, &[put(rule)]), 0, "missing_field", "name", "");
}

#[test]
fn codes_are_unique_per_collection() {
    let (set, _) = good_estate();
    // A new zone with an existing code.
    let e = one_err(&set, &[put(zone(9, "A"))]);
    assert_err(
        &e,
        0,
        "duplicate_code",
        "code",
        "\"A\" is already the code of zone",
    );
    // Two new checkpoints sharing a code: the second is reported, naming the first.
    let e = one_err(
        &set,
        &[
            put(cp(8, "CP-08", None, &[])),
            put(cp(9, " CP-08", None, &[])),
        ],
    );
    assert_err(&e, 1, "duplicate_code", "code", "\"CP-08\"");
    // An existing route renamed onto another's code.
    let r2 = route(2, "R2", &[&set.checkpoints[0]]);
    let mut r1 = set.routes[0].clone();
    r1.code = "R2".into();
    let e = one_err(&set, &[put(r2), put(r1)]);
    assert_err(&e, 1, "duplicate_code", "code", "route \"Route R2\"");
    // A zone and a checkpoint may share a code.
    assert!(apply(&set, &[put(zone(9, "CP-01"))]).is_ok());
    // Codes swapped between two checkpoints in one list are fine.
    let mut a = set.checkpoints[0].clone();
    let mut b = set.checkpoints[1].clone();
    std::mem::swap(&mut a.code, &mut b.code);
    assert!(apply(&set, &[put(a), put(b)]).is_ok());
}

#[test]
fn a_checkpoint_zone_must_be_of_the_set() {
    let (set, _) = good_estate();
    let ghost = zone(9, "GHOST");
    let e = one_err(&set, &[put(cp(9, "CP-09", Some(&ghost), &[]))]);
    assert_err(&e, 0, "unknown_zone", "zone_id", &ghost.id.to_string());
}

type Edit = Box<dyn Fn(&mut Checkpoint)>;

#[test]
fn checkpoint_location_radius_and_texts_are_bounded() {
    let (set, _) = good_estate();
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|c| {
                c.location = Some(GeoPoint {
                    lat: 90.1,
                    lng: 0.0,
                })
            }),
            "location.lat",
            "latitude 90.1",
        ),
        (
            Box::new(|c| {
                c.location = Some(GeoPoint {
                    lat: f64::NAN,
                    lng: 0.0,
                })
            }),
            "location.lat",
            "NaN",
        ),
        (
            Box::new(|c| {
                c.location = Some(GeoPoint {
                    lat: 0.0,
                    lng: -181.0,
                })
            }),
            "location.lng",
            "-181",
        ),
        (Box::new(|c| c.radius_m = 0.0), "radius_m", "radius_m 0"),
        (Box::new(|c| c.radius_m = 10_000.5), "radius_m", "10000.5"),
        (Box::new(|c| c.radius_m = f64::INFINITY), "radius_m", "inf"),
        (
            Box::new(|c| c.floor = Some("f".repeat(MAX_NAME + 1))),
            "floor",
            "201 characters",
        ),
        (
            Box::new(|c| c.instructions = Some("i".repeat(MAX_INSTRUCTIONS + 1))),
            "instructions",
            "2001 characters",
        ),
        (
            Box::new(|c| {
                c.tags.push(Tag {
                    kind: TagKind::Qr,
                    value: "  ".into(),
                })
            }),
            "tags[0].value",
            "must not be empty",
        ),
        (
            Box::new(|c| {
                c.tags.push(Tag {
                    kind: TagKind::Qr,
                    value: "q".repeat(MAX_TAG + 1),
                })
            }),
            "tags[0].value",
            "513 characters",
        ),
    ];
    for (edit, field, msg) in cases {
        let mut c = cp(9, "CP-09", None, &[]);
        edit(&mut c);
        assert_err(&one_err(&set, &[put(c)]), 0, "invalid_value", field, msg);
    }
    // The bounds themselves are fine.
    let mut c = cp(9, "CP-09", None, &[]);
    c.location = Some(GeoPoint {
        lat: -90.0,
        lng: 180.0,
    });
    c.radius_m = 10_000.0;
    c.floor = Some("f".repeat(MAX_NAME));
    c.instructions = Some("i".repeat(MAX_INSTRUCTIONS));
    c.location = None;
    assert!(apply(&set, &[put(c)]).is_ok());
}

#[test]
fn a_tag_is_on_one_checkpoint_once() {
    let (set, _) = good_estate();
    // Against an existing checkpoint, in another spelling.
    let e = one_err(&set, &[put(cp(9, "CP-09", None, &["04:a2:19:7c"]))]);
    assert_err(
        &e,
        0,
        "duplicate_tag",
        "tags[0].value",
        "tag \"nfc:04A2197C\" is already on checkpoint \"CP-01\"",
    );
    // Twice on one checkpoint.
    let e = one_err(
        &set,
        &[put(cp(9, "CP-09", None, &["qr:X", "0x0A", "qr: X "]))],
    );
    assert_err(&e, 0, "duplicate_tag", "tags[2].value", "twice");
    // Two new checkpoints in one list: the second is reported.
    let e = one_err(
        &set,
        &[
            put(cp(8, "CP-08", None, &["AA"])),
            put(cp(9, "CP-09", None, &["aa"])),
        ],
    );
    assert_err(&e, 1, "duplicate_tag", "tags[0].value", "\"CP-08\"");
    // The same value as NFC and QR is two different tags.
    assert!(apply(&set, &[put(cp(9, "CP-09", None, &["qr:04A2197C"]))]).is_ok());
}

#[test]
fn route_checks() {
    let (set, _) = good_estate();
    let c1 = set.checkpoints[0].clone();
    let c2 = set.checkpoints[1].clone();
    let ghost = cp(9, "GHOST", None, &[]);

    let e = one_err(&set, &[put(route(9, "R9", &[]))]);
    assert_err(&e, 0, "invalid_value", "checkpoints", "at least one");

    let e = one_err(&set, &[put(route(9, "R9", &[&c1, &ghost]))]);
    assert_err(
        &e,
        0,
        "unknown_checkpoint",
        "checkpoints[1]",
        &ghost.id.to_string(),
    );

    let e = one_err(&set, &[put(route(9, "R9", &[&c1, &c2, &c1]))]);
    assert_err(
        &e,
        0,
        "invalid_value",
        "checkpoints[2]",
        "checkpoint \"CP-01\" is on the route twice (stops 1 and 3)",
    );

    let mut long = route(9, "R9", &[]);
    long.checkpoints = vec![c1.id; MAX_ROUTE_LEN + 1];
    let e = errs(&set, &[put(long)]);
    assert!(e
        .iter()
        .any(|e| e.field == "checkpoints" && e.message.contains("501")));

    for m in [0, 1441] {
        let mut r = route(9, "R9", &[&c1]);
        r.expected_minutes = m;
        let e = one_err(&set, &[put(r)]);
        assert_err(&e, 0, "invalid_value", "expected_minutes", &m.to_string());
    }
}

#[test]
fn rule_checks() {
    let (set, _) = good_estate();
    let key = || RuleTarget::Class(CheckpointClass::Key);
    let with = |every: u32, grace: Option<Grace>, target: RuleTarget| {
        let mut r = interval(9, target);
        r.kind = RuleKind::Interval {
            target: r_target(&r),
            every_minutes: every,
            grace,
        };
        r
    };
    fn r_target(r: &Rule) -> RuleTarget {
        match &r.kind {
            RuleKind::Interval { target, .. } => target.clone(),
            _ => unreachable!(),
        }
    }

    for every in [4, 1441] {
        let e = one_err(&set, &[put(with(every, None, key()))]);
        assert_err(&e, 0, "invalid_value", "every_minutes", &every.to_string());
    }
    assert!(apply(&set, &[put(with(5, Some(Grace::Minutes(5)), key()))]).is_ok());
    assert!(apply(&set, &[put(with(1440, Some(Grace::Percent(100)), key()))]).is_ok());
    let e = one_err(&set, &[put(with(60, Some(Grace::Minutes(61)), key()))]);
    assert_err(&e, 0, "invalid_value", "grace.minutes", "61 minutes");
    let e = one_err(&set, &[put(with(60, Some(Grace::Percent(101)), key()))]);
    assert_err(&e, 0, "invalid_value", "grace.percent", "101");

    let ghost_zone = zone(9, "GHOST");
    let e = one_err(
        &set,
        &[put(with(60, None, RuleTarget::Zone(ghost_zone.id)))],
    );
    assert_err(
        &e,
        0,
        "unknown_zone",
        "target.zone",
        "is not a zone of this estate",
    );

    let e = one_err(
        &set,
        &[put(with(60, None, RuleTarget::Checkpoints(vec![])))],
    );
    assert_err(&e, 0, "invalid_value", "target.checkpoints", "empty");
    let ghost = cp(9, "GHOST", None, &[]);
    let e = one_err(
        &set,
        &[put(with(
            60,
            None,
            RuleTarget::Checkpoints(vec![set.checkpoints[0].id, ghost.id]),
        ))],
    );
    assert_err(&e, 0, "unknown_checkpoint", "target.checkpoints[1]", "");

    let ghost_route = route(9, "GHOST", &[]);
    let e = one_err(&set, &[put(count(9, &ghost_route))]);
    assert_err(
        &e,
        0,
        "unknown_route",
        "route_id",
        &ghost_route.id.to_string(),
    );
    for runs in [0, 101] {
        let mut r = count(9, &set.routes[0]);
        r.kind = RuleKind::Count {
            route_id: set.routes[0].id,
            min_runs: runs,
        };
        let e = one_err(&set, &[put(r)]);
        assert_err(&e, 0, "invalid_value", "min_runs", &runs.to_string());
    }

    let mut r = with(60, None, key());
    r.window.end = TimeOfDay(1440);
    let e = one_err(&set, &[put(r)]);
    assert_err(&e, 0, "invalid_time", "window.end", "1440");
}

#[test]
fn every_error_is_reported_sorted_by_op() {
    let (set, _) = good_estate();
    let ghost = zone(9, "GHOST");
    let mut bad_cp = cp(9, "", Some(&ghost), &["04a2197d"]);
    bad_cp.radius_m = -1.0;
    let ops = [
        put(zone(8, "A")),                               // 0: duplicate code
        del(RefCollection::Rules, Uuid::from_u128(999)), // 1: not found
        put(bad_cp),                                     // 2: four problems
        put(route(9, "R9", &[])),                        // 3: empty route
    ];
    let e = errs(&set, &ops);
    let got: Vec<(usize, &str, &str)> = e
        .iter()
        .map(|e| (e.at, e.code.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(got.len(), 7, "{e:#?}");
    let ats: Vec<usize> = got.iter().map(|g| g.0).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]), "{ats:?}");
    for want in [
        (0, "duplicate_code", "code"),
        (1, "not_found", "id"),
        (2, "unknown_zone", "zone_id"),
        (2, "missing_field", "code"),
        (2, "invalid_value", "radius_m"),
        (2, "duplicate_tag", "tags[0].value"),
        (3, "invalid_value", "checkpoints"),
    ] {
        assert!(got.contains(&want), "{want:?} missing from {got:?}");
    }
    // Nothing applied: the set handed in is as it was, and a retry of the good part works.
    assert!(apply(&set, &ops[3..3]).is_ok());
}

// ------------------------------------------------------------------ apply: deletes

#[test]
fn deleting_what_is_not_there_is_not_found() {
    let (set, _) = good_estate();
    let id = Uuid::from_u128(0xDEAD);
    let e = one_err(&set, &[del(RefCollection::Checkpoints, id)]);
    assert_err(&e, 0, "not_found", "id", &id.to_string());
    // A zone id is not a checkpoint id.
    let e = one_err(&set, &[del(RefCollection::Checkpoints, set.zones[0].id)]);
    assert_eq!(e.code, "not_found");
    // Deleted twice: the second one is not found.
    let z = zone(9, "Z");
    let e = one_err(
        &set,
        &[
            put(z.clone()),
            del(RefCollection::Zones, z.id),
            del(RefCollection::Zones, z.id),
        ],
    );
    assert_err(&e, 2, "not_found", "id", "there is no zone");
}

#[test]
fn deleting_what_is_used_is_in_use() {
    let (set, _) = good_estate();
    // Zone A: used by CP-01 and by rule 1.
    let e = one_err(&set, &[del(RefCollection::Zones, set.zones[0].id)]);
    assert_err(&e, 0, "in_use", "id", "zone \"A\" cannot be deleted");
    assert!(e.message.contains("checkpoint \"CP-01\""), "{}", e.message);
    assert!(e.message.contains("rule \"Rule 1\""), "{}", e.message);
    // CP-03: on route R1 and in rule 2.
    let e = one_err(
        &set,
        &[
            put(zone(9, "Z")),
            del(RefCollection::Checkpoints, set.checkpoints[2].id),
        ],
    );
    assert_err(&e, 1, "in_use", "id", "checkpoint \"CP-03\"");
    assert!(e.message.contains("route \"R1\""), "{}", e.message);
    assert!(e.message.contains("rule \"Rule 2\""), "{}", e.message);
    // R1: counted by rule 4.
    let e = one_err(&set, &[del(RefCollection::Routes, set.routes[0].id)]);
    assert_err(&e, 0, "in_use", "id", "rule \"Rule 4\"");
    // A put of the user after the delete, still naming it: the put is at fault.
    let mut c1 = set.checkpoints[0].clone();
    c1.name = "renamed".into();
    let mut rule1 = set.rules[0].clone();
    rule1.name = "Zone A rounds".into();
    let e = errs(
        &set,
        &[
            del(RefCollection::Zones, set.zones[0].id),
            put(c1),
            put(rule1),
        ],
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_err(&e[0], 1, "unknown_zone", "zone_id", "");
    assert_err(&e[1], 2, "unknown_zone", "target.zone", "");
}

#[test]
fn deleting_a_thing_with_its_users_is_fine_in_any_order() {
    let (set, _) = good_estate();
    let za = set.zones[0].id;
    let c1 = set.checkpoints[0].id;
    let r1 = set.routes[0].id;
    let mut c1_moved = set.checkpoints[0].clone();
    c1_moved.zone_id = Some(set.zones[1].id);
    let rule1 = set.rules[0].id;
    let rule4 = set.rules[3].id;
    let ops = [
        del(RefCollection::Zones, za),
        put(c1_moved),
        del(RefCollection::Rules, rule1),
        del(RefCollection::Routes, r1),
        del(RefCollection::Rules, rule4),
    ];
    let (after, changes) = apply(&set, &ops).unwrap();
    assert_eq!(after.zones.len(), 1);
    assert_eq!(after.routes.len(), 0);
    assert_eq!(after.rules.len(), 2);
    let got: Vec<(RefCollection, Uuid, bool)> = changes
        .iter()
        .map(|c| (c.collection, c.id, c.data.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            (RefCollection::Zones, za.0, false),
            (RefCollection::Checkpoints, c1.0, true),
            (RefCollection::Rules, rule1.0, false),
            (RefCollection::Routes, r1.0, false),
            (RefCollection::Rules, rule4.0, false),
        ]
    );
    // Deleting a checkpoint and taking it off the route and the rule.
    let c3 = set.checkpoints[2].clone();
    let mut r = set.routes[0].clone();
    r.checkpoints.retain(|c| *c != c3.id);
    let mut rule2 = set.rules[1].clone();
    rule2.kind = RuleKind::Interval {
        target: RuleTarget::Checkpoints(vec![set.checkpoints[0].id]),
        every_minutes: 60,
        grace: Some(Grace::Percent(20)),
    };
    assert!(apply(
        &set,
        &[del(RefCollection::Checkpoints, c3.id), put(r), put(rule2)]
    )
    .is_ok());
}

#[test]
fn delete_and_recreate_and_create_and_delete() {
    let (set, _) = good_estate();
    // Deleted then put again with the same id: one change, the new state, appended.
    let mut c3 = set.checkpoints[2].clone();
    let mut r = set.routes[0].clone();
    r.checkpoints.pop();
    let mut rule2 = set.rules[1].clone();
    rule2.kind = RuleKind::Interval {
        target: RuleTarget::Checkpoints(vec![set.checkpoints[0].id]),
        every_minutes: 60,
        grace: None,
    };
    c3.name = "Back again".into();
    let ops = [
        put(r),
        put(rule2),
        del(RefCollection::Checkpoints, c3.id),
        put(c3.clone()),
    ];
    let (after, changes) = apply(&set, &ops).unwrap();
    assert_eq!(after.checkpoints.last().unwrap().name, "Back again");
    let ch = changes.iter().find(|c| c.id == c3.id.0).unwrap();
    assert_eq!(ch.data.as_ref().unwrap()["name"], "Back again");
    assert_eq!(changes.len(), 3);

    // Created and deleted in one list: no change at all for it.
    let z = zone(9, "TMP");
    let (after, changes) = apply(
        &set,
        &[
            put(z.clone()),
            put(zone(8, "KEEP")),
            del(RefCollection::Zones, z.id),
        ],
    )
    .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].id, zone(8, "KEEP").id.0);
    assert_eq!(after.zones.len(), 3);

    // An existing one deleted: a tombstone.
    let z2 = set.zones[1].id;
    let mut c2 = set.checkpoints[1].clone();
    c2.zone_id = None;
    let (_, changes) = apply(&set, &[put(c2), del(RefCollection::Zones, z2)]).unwrap();
    assert_eq!(changes[1].data, None);
}

#[test]
fn untouched_entities_are_not_judged_again() {
    let (mut set, _) = good_estate();
    // An old checkpoint with a radius the checks would now refuse.
    set.checkpoints[2].radius_m = 20_000.0;
    assert!(apply(&set, &[put(zone(9, "Z"))]).is_ok());
    let c3 = set.checkpoints[2].clone();
    let e = one_err(&set, &[put(c3)]);
    assert_eq!(e.field, "radius_m");
}

// ------------------------------------------------------------------ import: checkpoints

fn ids(start: u128) -> impl FnMut() -> Uuid {
    let mut n = start;
    move || {
        n += 1;
        Uuid::from_u128(n)
    }
}

fn plan_cp(csv: &str, set: &ReferenceSet) -> Result<ImportPlan, Vec<RefError>> {
    let mut next = ids(0xF000);
    plan_checkpoints(csv, set, &mut next, &mut |_| {})
}

fn plan_rt(csv: &str, set: &ReferenceSet) -> Result<ImportPlan, Vec<RefError>> {
    let mut next = ids(0xF000);
    plan_routes(csv, set, &mut next, &mut |_| {})
}

fn lines(e: &[RefError]) -> Vec<(usize, &str, &str)> {
    e.iter()
        .map(|e| (e.at, e.code.as_str(), e.field.as_str()))
        .collect()
}

#[test]
fn a_good_checkpoints_csv_is_planned() {
    let (set, _) = good_estate();
    let csv = "\
Code,Name,CLASS,zone,lat,lng,radius_m,floor,instructions,nfc,qr
CP-01,Pump room,key,A,31.1,121.2,25,B2,Check the pumps,04:a2:19:7c;0A:0B,
CP-10,Gate 3,general,C,,,,,,,https://t.example/10;https://t.example/10b
CP-11,Ramp,key,C,31,121,,,,,
";
    let mut progress = vec![];
    let mut next = ids(0xF000);
    let plan = plan_checkpoints(csv, &set, &mut next, &mut |n| progress.push(n)).unwrap();
    assert_eq!(progress, [1, 2, 3]);
    assert_eq!(plan.rows, 3);
    assert_eq!((plan.created, plan.updated), (2, 1));
    assert_eq!(plan.new_zones, ["C"]);
    assert_eq!(plan.ops.len(), 4, "one new zone and three checkpoints");

    let (after, changes) = apply(&set, &plan.ops).unwrap();
    assert_eq!(changes.len(), 4);
    let cp1 = &after.checkpoints[0];
    assert_eq!(
        cp1.id, set.checkpoints[0].id,
        "an existing code keeps its id"
    );
    assert_eq!(cp1.name, "Pump room");
    assert_eq!(cp1.zone_id, Some(set.zones[0].id), "an existing zone code");
    assert_eq!(cp1.radius_m, 25.0);
    assert_eq!(cp1.floor.as_deref(), Some("B2"));
    assert_eq!(cp1.instructions.as_deref(), Some("Check the pumps"));
    let keys: Vec<String> = cp1.tags.iter().map(Tag::key).collect();
    assert_eq!(keys, ["nfc:04A2197C", "nfc:0A0B"]);
    let zc = after.zones.iter().find(|z| z.code == "C").unwrap();
    assert_eq!((zc.name.as_str(), zc.estate_id), ("C", estate()));
    let cp10 = after
        .checkpoints
        .iter()
        .find(|c| c.code == "CP-10")
        .unwrap();
    assert_eq!(cp10.class, CheckpointClass::General);
    assert_eq!(cp10.zone_id, Some(zc.id));
    assert_eq!(cp10.location, None);
    assert_eq!(cp10.radius_m, DEFAULT_RADIUS_M);
    assert_eq!(cp10.floor, None);
    assert_eq!(cp10.tags.len(), 2);
    assert_eq!(cp10.tags[1].key(), "qr:https://t.example/10b");
    let cp11 = after
        .checkpoints
        .iter()
        .find(|c| c.code == "CP-11")
        .unwrap();
    assert_eq!(cp11.zone_id, Some(zc.id), "the new zone is created once");
    assert_eq!(
        cp11.location,
        Some(GeoPoint {
            lat: 31.0,
            lng: 121.0
        })
    );
}

#[test]
fn an_import_is_only_a_plan() {
    let (set, _) = good_estate();
    let before = set.clone();
    let csv = "code,name,class,zone\nCP-01,Renamed,key,NEWZONE\n";
    let plan = plan_cp(csv, &set).unwrap();
    assert_eq!(set, before, "the current data is not changed");
    // Every op is a put; nothing is deleted.
    assert!(plan.ops.iter().all(|op| matches!(op, RefOp::Put(_))));
    // The same file planned twice gives the same plan.
    assert_eq!(plan_cp(csv, &set).unwrap(), plan);
    // Columns not in the file keep what the checkpoint had (tags, location, floor).
    let (after, _) = apply(&set, &plan.ops).unwrap();
    assert_eq!(after.checkpoints[0].tags, set.checkpoints[0].tags);
    assert_eq!(after.checkpoints[0].location, set.checkpoints[0].location);
    assert_eq!(after.checkpoints[0].name, "Renamed");
}

#[test]
fn a_zone_may_be_named_by_id_of_this_estate_only() {
    let (set, _) = good_estate();
    let zb = set.zones[1].id;
    let csv = format!("code,name,class,zone\nCP-20,X,key,{zb}\n");
    let plan = plan_cp(&csv, &set).unwrap();
    assert!(plan.new_zones.is_empty());
    let (after, _) = apply(&set, &plan.ops).unwrap();
    assert_eq!(after.checkpoints.last().unwrap().zone_id, Some(zb));

    let other = Uuid::from_u128(0xABCDEF);
    let csv = format!("code,name,class,zone\nCP-20,X,key,{other}\nCP-21,Y,key,B\n");
    let e = plan_cp(&csv, &set).unwrap_err();
    assert_eq!(lines(&e), [(2, "unknown_zone", "zone")]);
    assert!(e[0].message.contains("is not a zone of this estate"));
}

#[test]
fn duplicate_tags_are_reported_on_their_lines() {
    let (set, _) = good_estate();
    // Line 3 repeats line 2's tag in another spelling; line 5 takes CP-02's existing tag.
    let csv = "\
code,name,class,nfc
CP-20,A,key,AA:BB
CP-21,B,key,aabb
CP-22,C,key,CC
CP-23,D,key,04-a2-19-7d
";
    let e = plan_cp(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [(3, "duplicate_tag", "nfc"), (5, "duplicate_tag", "nfc")],
        "{e:#?}"
    );
    assert!(e[0].message.contains("line 2"), "{}", e[0].message);
    assert!(e[1].message.contains("CP-02"), "{}", e[1].message);
}

#[test]
fn bad_rows_are_all_reported_with_their_lines() {
    let (set, _) = good_estate();
    let csv = "\
code,name,class,lat,lng,radius_m
CP-20,A,vip,,,
CP-21,B,key,31.2,,
CP-22,,general,,,
CP-23,D,key,north,121,
CP-24,E,key,,,wide
CP-20,F,key,,,
CP-25,G,key,95,121,
CP-26,H,Key,,,
";
    let e = plan_cp(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [
            (2, "invalid_value", "class"),
            (3, "missing_field", "lng"),
            (4, "missing_field", "name"),
            (5, "invalid_value", "lat"),
            (6, "invalid_value", "radius_m"),
            (7, "duplicate_code", "code"),
            (8, "invalid_value", "lat"),
        ],
        "{e:#?}"
    );
    assert!(e[0].message.contains("\"vip\""), "{}", e[0].message);
    assert!(e[5].message.contains("line 2"), "{}", e[5].message);
}

#[test]
fn header_problems_are_on_line_one() {
    let (set, _) = good_estate();
    let e = plan_cp("code,name,class,colour,Size\nCP-20,A,key,red,2\n", &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [(1, "invalid_value", "colour"), (1, "invalid_value", "size")]
    );
    let e = plan_cp("code,class\nCP-20,key\n", &set).unwrap_err();
    assert_eq!(lines(&e), [(1, "missing_field", "name")]);
    let e = plan_cp("", &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [
            (1, "missing_field", "code"),
            (1, "missing_field", "name"),
            (1, "missing_field", "class")
        ]
    );
    let e = plan_cp("code,name,class,code\n", &set).unwrap_err();
    assert_eq!(lines(&e), [(1, "invalid_value", "code")]);
    // Only a header: nothing to do.
    let plan = plan_cp("code,name,class\n", &set).unwrap();
    assert_eq!((plan.rows, plan.ops.len()), (0, 0));
}

#[test]
fn quoted_multi_line_fields_keep_line_numbers_right() {
    let (set, _) = good_estate();
    let csv = "code,name,class,instructions\r\n\
CP-20,A,key,\"Check the door,\r\nthen the window,\r\nthen the lights\"\r\n\
CP-21,B,vip,\r\n\
CP-22,\"C\nwith a line\",key,\"x\"\"y\"\r\n\
CP-23,D,nope,\r\n";
    let e = plan_cp(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [(5, "invalid_value", "class"), (8, "invalid_value", "class")]
    );
}

#[test]
fn a_bom_and_crlf_are_read() {
    let (set, _) = good_estate();
    let csv = "\u{feff}code,name,class\r\nCP-20,A,key\r\nCP-21,B,general\r\n";
    let plan = plan_cp(csv, &set).unwrap();
    assert_eq!((plan.rows, plan.created), (2, 2));
    let (after, _) = apply(&set, &plan.ops).unwrap();
    assert_eq!(after.checkpoints[3].code, "CP-20");
    assert_eq!(after.checkpoints[4].name, "B");
}

#[test]
fn blank_lines_and_lone_cr_line_ends_keep_line_numbers_right() {
    let (set, _) = good_estate();
    // Blank lines (and a line of spaces) are skipped but counted.
    let csv = "code,name,class\n\n\nCP-20,A,vip\n   \n,,\nCP-21,B,vip\n";
    let e = plan_cp(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [(4, "invalid_value", "class"), (7, "invalid_value", "class")]
    );
    // Old Mac line ends.
    let csv = "code,name,class\rCP-20,A,vip\rCP-21,B,key\rCP-22,C,vip";
    let e = plan_cp(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [(2, "invalid_value", "class"), (4, "invalid_value", "class")]
    );
}

#[test]
fn a_tag_moved_by_an_import_is_fine() {
    let (set, _) = good_estate();
    // CP-02 gives up its tag in the same file that puts it on a new checkpoint.
    let csv = "code,name,class,nfc\nCP-23,D,key,04-a2-19-7d\nCP-02,Gate,general,\n";
    let plan = plan_cp(csv, &set).unwrap();
    let (after, _) = apply(&set, &plan.ops).unwrap();
    assert!(after.checkpoints[1].tags.is_empty());
    assert_eq!(after.checkpoints[3].tags[0].value, "04A2197D");
}

#[test]
fn ragged_rows_are_reported() {
    let (set, _) = good_estate();
    let e = plan_cp(
        "code,name,class\nCP-20,A\nCP-21,B,key,extra\nCP-22,C,key\n",
        &set,
    )
    .unwrap_err();
    assert_eq!(
        lines(&e),
        [(2, "invalid_value", "row"), (3, "invalid_value", "row")]
    );
}

#[test]
fn apply_problems_of_an_import_come_back_on_their_lines() {
    let (set, _) = good_estate();
    let long_zone = "Z".repeat(MAX_CODE + 1);
    let csv = format!(
        "code,name,class,zone,radius_m\nCP-20,A,key,,20000\nCP-21,B,key,{long_zone},\nCP-22,C,key,{long_zone},\n"
    );
    let e = plan_cp(&csv, &set).unwrap_err();
    let got = lines(&e);
    assert!(got.contains(&(2, "invalid_value", "radius_m")), "{got:?}");
    assert!(got.contains(&(3, "invalid_value", "zone")), "{got:?}");
    assert!(!got.iter().any(|g| g.0 == 4), "{got:?}");
}

// ------------------------------------------------------------------ import: routes

#[test]
fn a_good_routes_csv_is_planned() {
    let (set, _) = good_estate();
    let csv = "\
route,name,strict,expected_minutes,position,checkpoint
R1,Night round,no,50,3,CP-01
R2,,,,,CP-02
R1,ignored name,yes,99,1,CP-03
R2,,,,,CP-01
R1,,,,2,CP-02
";
    let mut progress = 0;
    let mut next = ids(0xF000);
    let plan = plan_routes(csv, &set, &mut next, &mut |n| progress = n).unwrap();
    assert_eq!(progress, 5);
    assert_eq!((plan.rows, plan.created, plan.updated), (5, 1, 1));
    assert!(plan.new_zones.is_empty());
    let (after, _) = apply(&set, &plan.ops).unwrap();
    let r1 = &after.routes[0];
    assert_eq!(r1.id, set.routes[0].id);
    assert_eq!(r1.name, "Night round");
    assert!(!r1.strict);
    assert_eq!(r1.expected_minutes, 50);
    let c = |i: usize| set.checkpoints[i].id;
    assert_eq!(r1.checkpoints, [c(2), c(1), c(0)], "sorted by position");
    let r2 = &after.routes[1];
    assert_eq!(r2.code, "R2");
    assert_eq!(r2.name, "R2", "no name given: the code");
    assert!(r2.strict);
    assert_eq!(r2.expected_minutes, 60);
    assert_eq!(r2.checkpoints, [c(1), c(0)], "file order");
}

#[test]
fn bad_route_rows_are_reported_with_their_lines() {
    let (set, _) = good_estate();
    let csv = "\
route,strict,position,checkpoint
R5,maybe,1,CP-01
R5,,2,CP-99
R5,,x,CP-02
R5,,4,CP-01
R6,,,
,,,CP-01
";
    let e = plan_rt(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [
            (2, "invalid_value", "strict"),
            (3, "unknown_checkpoint", "checkpoint"),
            (4, "invalid_value", "position"),
            (5, "invalid_value", "checkpoint"),
            (6, "missing_field", "checkpoint"),
            (7, "missing_field", "route"),
        ],
        "{e:#?}"
    );
    assert!(e[1].message.contains("\"CP-99\""), "{}", e[1].message);
    assert!(e[3].message.contains("line 2"), "{}", e[3].message);
    let e = plan_rt("route,stop\nR1,CP-01\n", &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [
            (1, "invalid_value", "stop"),
            (1, "missing_field", "checkpoint")
        ]
    );
}

#[test]
fn route_positions_are_all_or_none_and_distinct() {
    let (set, _) = good_estate();
    let csv = "route,position,checkpoint\nR5,1,CP-01\nR5,,CP-02\nR6,1,CP-01\nR6,1,CP-02\n";
    let e = plan_rt(csv, &set).unwrap_err();
    assert_eq!(
        lines(&e),
        [
            (3, "missing_field", "position"),
            (5, "invalid_value", "position")
        ],
        "{e:#?}"
    );
    assert!(e[1].message.contains("line 4"), "{}", e[1].message);
}

#[test]
fn route_apply_problems_come_back_on_their_lines() {
    let (set, _) = good_estate();
    let csv = "route,expected_minutes,checkpoint\nR7,2000,CP-01\nR7,,CP-02\n";
    let e = plan_rt(csv, &set).unwrap_err();
    assert_eq!(lines(&e), [(2, "invalid_value", "expected_minutes")]);
}

// ------------------------------------------------------------------ never panics

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn csvish() -> impl Strategy<Value = String> {
        let cell = prop_oneof![
            Just("".to_string()),
            Just("CP-01".to_string()),
            Just("key".to_string()),
            Just("A".to_string()),
            Just("\"q,\nx\"".to_string()),
            Just("\u{feff}".to_string()),
            Just("04:a2:19:7c;;qr".to_string()),
            "[-0-9.eE]{0,6}",
            "\\PC{0,8}",
        ];
        let header = prop::sample::subsequence(
            vec![
                "code",
                "name",
                "class",
                "zone",
                "lat",
                "lng",
                "radius_m",
                "floor",
                "instructions",
                "nfc",
                "qr",
                "route",
                "strict",
                "expected_minutes",
                "position",
                "checkpoint",
                "bogus",
            ],
            0..8,
        )
        .prop_map(|h| h.join(","));
        let row = prop::collection::vec(cell, 0..8).prop_map(|r| r.join(","));
        (header, prop::collection::vec(row, 0..6), prop::bool::ANY).prop_map(|(h, rows, crlf)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut s = h;
            for r in rows {
                s.push_str(nl);
                s.push_str(&r);
            }
            s
        })
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::{json, Value};
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            "\\PC{0,12}".prop_map(Value::String),
            Just(json!("nfc")),
            Just(json!("qr")),
            Just(json!("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            let keys = prop_oneof![
                Just("tag".to_string()),
                Just("method".to_string()),
                Just("run_id".to_string()),
                Just("location".to_string()),
                Just("lat".to_string()),
                Just("lng".to_string()),
                Just("accuracy_m".to_string()),
                Just("mock".to_string()),
                Just("action".to_string()),
                Just("route_id".to_string()),
                Just("reason".to_string()),
                "[a-z]{0,4}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn plans_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let (set, _) = good_estate();
            let s = String::from_utf8_lossy(&bytes);
            let _ = plan_cp(&s, &set);
            let _ = plan_rt(&s, &set);
        }

        #[test]
        fn plans_never_panic_on_text(s in "\\PC{0,200}") {
            let (set, _) = good_estate();
            let _ = plan_cp(&s, &set);
            let _ = plan_rt(&s, &set);
        }

        #[test]
        fn plans_never_panic_on_csv_like_text(s in csvish()) {
            let (set, _) = good_estate();
            if let Ok(plan) = plan_cp(&s, &set) {
                // A plan that is returned always applies.
                prop_assert!(apply(&set, &plan.ops).is_ok());
            }
            if let Ok(plan) = plan_rt(&s, &set) {
                prop_assert!(apply(&set, &plan.ops).is_ok());
            }
        }

        #[test]
        fn scan_parsing_never_panics(v in json(), tag in "\\PC{0,40}") {
            let _ = shared_core::patrol::scan::parse_scan(&v);
            let _ = shared_core::patrol::scan::parse_run_event(&v);
            let v2 = serde_json::json!({"tag": tag, "method": "nfc", "location": v});
            let _ = shared_core::patrol::scan::parse_scan(&v2);
        }
    }
}
