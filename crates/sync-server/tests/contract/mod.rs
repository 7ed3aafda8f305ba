//! The storage contract: test bodies, each run on SQLite and PostgreSQL by
//! `tests/store_contract.rs`.

pub mod accounts;
pub mod concurrency;
pub mod fixtures;
pub mod harness;
pub mod hazards;
pub mod patrol;
pub mod photos;
pub mod property;
pub mod pull;
pub mod push;
