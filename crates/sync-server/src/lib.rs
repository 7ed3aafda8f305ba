//! patrol-sync server: the axum service and its storage.

pub mod storage;
