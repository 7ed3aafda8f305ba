//! The demo seed: two estates and a user per role, all with the password `demo`.

use crate::auth::password;
use crate::clock::now_ms;
use crate::storage::{NewUser, Store};
use shared_core::Role;

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
pub async fn seed(store: &dyn Store) -> anyhow::Result<()> {
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
    println!("demo data seeded:");
    for e in &estates {
        println!("  estate {}  {}", e.id, e.name);
    }
    print_users();
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
