//! Patrol coverage in the store: backend-neutral steps (the SQL is in `sqlite_patrol.rs` and
//! `postgres_patrol.rs`).
