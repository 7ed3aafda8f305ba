//! Pure domain of patrol-sync: ids, wire types, the hybrid logical clock, trusted time and
//! the validation of handset facts. No I/O, no HTTP, no SQL: the handset team can reuse it.

pub mod fact;
pub mod hazard;
pub mod hlc;
pub mod ids;
#[cfg(feature = "openapi")]
mod openapi;
pub mod patrol;
pub mod roles;
pub mod time;
pub mod validate;
pub mod wire;

pub use fact::{ClockTrust, FactKind, Flag};
pub use hlc::{Hlc, HlcClock};
pub use ids::{
    AlertId, BatchId, CheckpointId, DeviceId, EstateId, FactId, HazardId, RouteId, RuleId, RunId,
    UserId, ZoneId,
};
pub use roles::{Role, Scope};
