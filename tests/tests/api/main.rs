//! Black-box tests: the real patrol-sync server on port 0 with its own database, talked to
//! over HTTP. One binary with modules, so it links once.

mod admin;
mod auth;
mod compression;
mod console;
mod devices;
mod hazards;
mod health;
mod helpers;
mod patrol;
mod photos;
mod postgres;
mod pull;
mod push;
mod restart;
mod scoping;
