//! The fleet simulator: N guard handsets played against a patrol-sync server.
//!
//! - [`plan`]: what every handset will push, from shared-core's patrol simulator plus hazard
//!   reports with photos; deterministic for a seed.
//! - [`run`]: signs the handsets in, pulls the reference data, replays the plan with time
//!   compression, lost answers, timeouts, retries; a supervisor and an engineer work the
//!   hazards; a summary with the ledger of every fact created.
//! - [`verify`]: a full pull compared with the ledger: nothing lost, nothing doubled.
//!
//! The `fleet-sim` binary is the command line over [`run::run`] and [`verify`]; the
//! shift-change storm benchmark (`storm-bench`) uses the same pieces.

pub mod client;
pub mod ledger;
pub mod photo;
pub mod plan;
pub mod push;
pub mod run;
pub mod verify;

pub use ledger::Ledger;
pub use plan::{FleetPlan, PlanConfig};
pub use run::{RunConfig, RunReport};
