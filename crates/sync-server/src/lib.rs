//! patrol-sync server: the axum service, its storage and the operator's CLI.

pub mod auth;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod demo_patrol;
pub mod error;
pub mod http;
pub mod import;
pub mod openapi;
pub mod services;
pub mod startup;
pub mod storage;
pub mod telemetry;
