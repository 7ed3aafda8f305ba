//! The demo seed: two estates and a user per role, all with the password `demo`.

use crate::auth::password;
use crate::clock::now_ms;
use crate::storage::{NewUser, OnlineEvent, OnlineOutcome, Store};
use serde_json::{json, Value};
use shared_core::hazard::{parse_event, EventInput, PhotoRef, PhotoRole};
use shared_core::{DeviceId, EstateId, FactId, HazardId, Hlc, Role};

pub const DEMO_PASSWORD: &str = "demo";

/// A demo user: username, display name, and roles as (index into ESTATES, role).
type DemoUser = (&'static str, &'static str, &'static [(usize, Role)]);

const USERS: &[DemoUser] = &[
    ("manager1", "王经理 Wang (manager)", &[(0, Role::Manager)]),
    (
        "supervisor1",
        "李主管 Li (supervisor)",
        &[(0, Role::Supervisor)],
    ),
    ("guard1", "张保安 Zhang (guard)", &[(0, Role::Guard)]),
    ("guard2", "陈保安 Chen (guard)", &[(0, Role::Guard)]),
    ("engineer1", "刘工 Liu (engineer)", &[(0, Role::Engineer)]),
    ("engineer2", "赵工 Zhao (engineer)", &[(0, Role::Engineer)]),
    ("guard3", "周保安 Zhou (guard)", &[(1, Role::Guard)]),
    (
        "admin",
        "系统管理员 Admin",
        &[(0, Role::Admin), (1, Role::Admin)],
    ),
];

const ESTATES: &[(&str, &str)] = &[
    ("海景花园 Harbour View Gardens", "Asia/Shanghai"),
    ("江畔苑 Riverside Court", "Asia/Shanghai"),
];

/// Seeds the demo data unless the `admin` user already exists. Prints what it made.
pub async fn seed(store: &dyn Store, patrols: bool) -> anyhow::Result<()> {
    if store.find_user_by_username("admin").await?.is_some() {
        println!("demo data already present; users below have the password \"{DEMO_PASSWORD}\" unless changed");
        print_users();
        return Ok(());
    }
    let now = now_ms();
    let mut estates = Vec::new();
    for (name, tz) in ESTATES {
        estates.push(store.create_estate(name, tz, now).await?);
    }
    let hash = password::hash(DEMO_PASSWORD.into()).await?;
    for (username, name, roles) in USERS {
        let id = store
            .create_user(
                NewUser {
                    username: (*username).into(),
                    name: (*name).into(),
                    password_hash: hash.clone(),
                },
                now,
            )
            .await?;
        for (estate, role) in *roles {
            store.add_membership(id, estates[*estate].id, *role).await?;
        }
    }
    seed_hazards(store, estates[0].id, now).await?;
    if patrols {
        seed_patrols(store, estates[0].id, now).await?;
    }
    println!("demo data seeded:");
    for e in &estates {
        println!("  estate {}  {}", e.id, e.name);
    }
    print_users();
    Ok(())
}

/// The first estate's patrol plan and a simulated week by its two guards.
async fn seed_patrols(store: &dyn Store, estate: EstateId, now: i64) -> anyhow::Result<()> {
    let mut guards = Vec::new();
    for username in ["guard1", "guard2"] {
        if let Some(u) = store.find_user_by_username(username).await? {
            guards.push(u.id);
        }
    }
    let (refs, facts) = crate::demo_patrol::seed(store, estate, &guards, now).await?;
    println!(
        "  patrol plan of {} ({refs} zones, checkpoints, routes and rules) and patrols from local midnight {} days ago until now ({facts} scans and run events)",
        ESTATES[0].0,
        crate::demo_patrol::DEMO_DAYS
    );
    Ok(())
}

fn print_users() {
    println!("  users (password \"{DEMO_PASSWORD}\"):");
    for (username, _, roles) in USERS {
        let r: Vec<String> = roles
            .iter()
            .map(|(e, r)| format!("{r} in {}", ESTATES[*e].0))
            .collect();
        println!("    {username:<12} {}", r.join(", "));
    }
}

const HOUR: i64 = 3_600_000;

/// One demo hazard event: who (a demo username), how long ago, the event's data, and the
/// role of the photo that comes with it, if any.
type DemoEvent = (&'static str, i64, Value, Option<PhotoRole>);

/// A few hazard tickets in every state, some overdue, so the tracker answers at once.
fn demo_hazards(engineer1: &str, engineer2: &str) -> Vec<Vec<DemoEvent>> {
    let report = |title: &str, grade: &str, category: &str, text: &str| {
        json!({"action": "report", "grade": grade, "category": category, "title": title,
               "location": {"text": text}})
    };
    let assign = |who: &str| json!({"action": "assign", "assignee": who});
    let plan = json!({"action": "plan", "plan": {
        "goal": "配电房无渗水 No water in the switch room",
        "measures": "封堵屋面裂缝，加装挡水板 Seal the roof crack, fit a flood barrier",
        "funds": "¥18,000", "owner": "刘工 Liu", "deadline": "2026-12-31T10:00:00Z"}});
    vec![
        // Reported two hours ago: waiting to be assigned.
        vec![(
            "guard1",
            2 * HOUR,
            report(
                "消防通道被电动车堵塞 Fire lane blocked by e-bikes",
                "general",
                "fire",
                "3栋北侧 North of block 3",
            ),
            Some(PhotoRole::Before),
        )],
        // Being fixed, and overdue (a general hazard is due 24 h after its report).
        vec![
            (
                "guard2",
                30 * HOUR,
                report(
                    "地库照明损坏 Car park lights out",
                    "general",
                    "electrical",
                    "B2 车库 C 区 Car park B2, zone C",
                ),
                Some(PhotoRole::Before),
            ),
            ("supervisor1", 29 * HOUR, assign(engineer1), None),
            ("engineer1", 28 * HOUR, json!({"action": "start"}), None),
        ],
        // A major hazard with its rectification plan, in rectification.
        vec![
            (
                "guard1",
                72 * HOUR,
                report(
                    "配电房漏水 Water leaking into the switch room",
                    "major",
                    "electrical",
                    "1栋配电房 Block 1 switch room",
                ),
                Some(PhotoRole::Before),
            ),
            ("supervisor1", 71 * HOUR, plan, None),
            ("supervisor1", 70 * HOUR, assign(engineer2), None),
            ("engineer2", 69 * HOUR, json!({"action": "start"}), None),
            (
                "engineer2",
                20 * HOUR,
                json!({"action": "comment", "text": "防水材料已到 Waterproofing material delivered"}),
                None,
            ),
        ],
        // Fixed, waiting for a supervisor to verify.
        vec![
            (
                "guard2",
                20 * HOUR,
                report(
                    "单元门闭门器失效 Lobby door closer broken",
                    "general",
                    "security",
                    "5栋1单元 Block 5, entrance 1",
                ),
                Some(PhotoRole::Before),
            ),
            ("supervisor1", 19 * HOUR, assign(engineer2), None),
            ("engineer2", 18 * HOUR, json!({"action": "start"}), None),
            (
                "engineer2",
                5 * HOUR,
                json!({"action": "submit_fix", "note": "更换闭门器 Door closer replaced"}),
                Some(PhotoRole::After),
            ),
        ],
        // Closed after a failed first verification.
        vec![
            (
                "guard1",
                50 * HOUR,
                report(
                    "井盖松动 Loose manhole cover",
                    "general",
                    "structural",
                    "中心花园 Central garden",
                ),
                Some(PhotoRole::Before),
            ),
            ("supervisor1", 49 * HOUR, assign(engineer1), None),
            ("engineer1", 48 * HOUR, json!({"action": "start"}), None),
            (
                "engineer1",
                40 * HOUR,
                json!({"action": "submit_fix"}),
                Some(PhotoRole::After),
            ),
            (
                "supervisor1",
                39 * HOUR,
                json!({"action": "verify_fail", "reason": "仍有晃动 Still rocks underfoot"}),
                None,
            ),
            (
                "engineer1",
                30 * HOUR,
                json!({"action": "submit_fix", "note": "加垫片固定 Shimmed and bolted"}),
                Some(PhotoRole::After),
            ),
            (
                "supervisor1",
                29 * HOUR,
                json!({"action": "verify_pass"}),
                Some(PhotoRole::Verification),
            ),
        ],
        // Cancelled: a duplicate report.
        vec![
            (
                "guard2",
                10 * HOUR,
                report("地库照明 Car park lights", "general", "electrical", "B2"),
                Some(PhotoRole::Before),
            ),
            (
                "supervisor1",
                9 * HOUR,
                json!({"action": "cancel", "reason": "重复上报 Duplicate of the car park lights ticket"}),
                None,
            ),
        ],
    ]
}

async fn seed_hazards(store: &dyn Store, estate: EstateId, now: i64) -> anyhow::Result<()> {
    let mut who = std::collections::HashMap::new();
    for (username, _, roles) in USERS {
        let Some(u) = store.find_user_by_username(username).await? else {
            continue;
        };
        let in_estate: Vec<Role> = roles
            .iter()
            .filter(|(e, _)| *e == 0)
            .map(|(_, r)| *r)
            .collect();
        who.insert(*username, (u.id, in_estate, DeviceId::new_v7()));
    }
    let e1 = who["engineer1"].0.to_string();
    let e2 = who["engineer2"].0.to_string();
    let mut n = 0;
    for (k, story) in demo_hazards(&e1, &e2).into_iter().enumerate() {
        let hazard = HazardId::new_v7();
        for (i, (by, ago, mut data, photo)) in story.into_iter().enumerate() {
            let (user, roles, device) = who[by].clone();
            let at = now - ago;
            data["hazard_id"] = json!(hazard);
            data["estate_id"] = json!(estate);
            let parsed = parse_event(&data)
                .map_err(|r| anyhow::anyhow!("demo hazard {k} event {i}: {}", r.message))?;
            let id = FactId::new_v7();
            let photos = photo
                .map(|role| PhotoRef {
                    id: FactId::new_v7(),
                    role,
                    sha256: format!("{:064x}", (k * 100 + i) as u64),
                    received: false,
                })
                .into_iter()
                .collect();
            let input = EventInput {
                id,
                hazard_id: hazard,
                estate_id: estate,
                hlc: Hlc::new(at as u64, 0),
                device_id: device,
                actor: user,
                roles,
                at,
                body: parsed.body,
                data,
                photos,
            };
            match store
                .post_hazard_event(OnlineEvent {
                    input,
                    content_hash: format!("demo:{id}"),
                    received_at: at,
                })
                .await?
            {
                OnlineOutcome::Stored(_) => {}
                other => anyhow::bail!("demo hazard {k} event {i} was not stored: {other:?}"),
            }
        }
        n += 1;
    }
    println!("  {n} demo hazard tickets in {estate}");
    Ok(())
}
