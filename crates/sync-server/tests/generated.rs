//! Generated and mirrored artifacts stay in step with the code.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn checked_in_openapi_document_is_current() {
    let path = root().join("api/openapi.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = sync_server::openapi::document();
    if checked_in != generated {
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write api/openapi.json");
            return;
        }
        panic!(
            "api/openapi.json is stale: regenerate it with\n  cargo run -p sync-server -- openapi > api/openapi.json\n(or run this test with UPDATE_OPENAPI=1)"
        );
    }
}

fn versions(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join("migrations").join(dir))
        .expect("migrations folder")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .split('_')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_versions() {
    let sqlite = versions("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        versions("postgres"),
        "migrations/sqlite and migrations/postgres must list the same versions"
    );
}
