//! Runs one contract test body against a fresh store of each backend.
//!
//! SQLite: a new file in a temp dir per test. PostgreSQL: a new database per test, created
//! from `TEST_DATABASE_URL` and dropped afterwards (best effort). Without that variable the
//! PostgreSQL half says it is skipped and passes, unless `REQUIRE_POSTGRES=1`, which makes it
//! fail instead: a PostgreSQL half that silently never runs proves nothing.

use futures::FutureExt;
use sqlx::Connection;
use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use sync_server::storage::{self, DynStore};
use tokio::sync::Semaphore;

/// Fresh PostgreSQL databases alive at once: keeps the suite under `max_connections` and
/// stops two CPUs from thrashing.
static PG_SLOTS: Semaphore = Semaphore::const_new(3);

pub async fn run_sqlite<F, Fut>(name: &str, body: F)
where
    F: FnOnce(DynStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = dir.path().join("store.db");
    let url = format!("sqlite://{}", path.display());
    let store = storage::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot open SQLite store {url}: {e:#}"));
    assert_eq!(store.backend(), "sqlite");
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("{name}: SQLite migrations failed: {e:#}"));
    body(store).await;
    drop(dir);
}

pub async fn run_postgres<F, Fut>(name: &str, body: F)
where
    F: FnOnce(DynStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(admin_url) = postgres_url(name) else {
        return;
    };
    let _slot = PG_SLOTS.acquire().await.expect("semaphore is never closed");
    let db = format!("patrol_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot connect to TEST_DATABASE_URL: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{name}: CREATE DATABASE {db} failed: {e}"));
    let _ = admin.close().await;

    let url = with_database(&admin_url, &db);
    // Everything that can fail after the database exists runs under catch_unwind, so the
    // database is dropped whatever happens.
    let outcome = AssertUnwindSafe(async {
        let store = storage::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot open PostgreSQL store: {e:#}"));
        assert_eq!(store.backend(), "postgres");
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{name}: PostgreSQL migrations failed: {e:#}"));
        body(store).await;
    })
    .catch_unwind()
    .await;

    drop_database(&admin_url, &db).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The admin URL, or `None` (after saying so) when the PostgreSQL half is to be skipped.
fn postgres_url(name: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "PostgreSQL contract test {name}: REQUIRE_POSTGRES=1 but TEST_DATABASE_URL \
                     is not set (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)"
                );
            }
            // Straight to stderr: libtest would swallow an eprintln! of a passing test, and
            // a skip nobody sees is how a PostgreSQL half silently never runs.
            let _ = writeln!(
                std::io::stderr(),
                "skipping PostgreSQL contract test {name}: TEST_DATABASE_URL is not set"
            );
            None
        }
    }
}

/// `url` with its database name replaced by `db`, query string kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn drop_database(admin_url: &str, db: &str) {
    let result = async {
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        // FORCE ends the store's pooled connections, which the trait cannot close.
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        admin.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("warning: could not drop test database {db}: {e}");
    }
}

#[test]
fn database_name_is_replaced_in_the_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}
