//! The fact model: what a handset sends is an immutable fact, annotated by the server.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of fact a handset may push. Unknown kinds are rejected, not guessed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A checkpoint scan (NFC or QR).
    Scan,
    /// An event on a hazard ticket (report, assign, fix, verify, ...).
    HazardEvent,
    /// A photo's metadata; the bytes travel separately.
    Photo,
    /// A patrol run started, finished or aborted.
    RunEvent,
}

impl FactKind {
    pub const ALL: [FactKind; 4] = [
        FactKind::Scan,
        FactKind::HazardEvent,
        FactKind::Photo,
        FactKind::RunEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::Scan => "scan",
            FactKind::HazardEvent => "hazard_event",
            FactKind::Photo => "photo",
            FactKind::RunEvent => "run_event",
        }
    }
}

impl fmt::Display for FactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FactKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        FactKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(())
    }
}

/// How far the server trusts a fact's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClockTrust {
    /// From the handset's monotonic clock (`age_ms`): the wall clock cannot move it.
    Verified,
    /// From the handset's wall clock, corrected by the batch's clock offset.
    Estimated,
}

impl ClockTrust {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockTrust::Verified => "verified",
            ClockTrust::Estimated => "estimated",
        }
    }
}

impl FromStr for ClockTrust {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "verified" => Ok(ClockTrust::Verified),
            "estimated" => Ok(ClockTrust::Estimated),
            _ => Err(()),
        }
    }
}

/// Marks the server puts on a fact. Flags mark; they never refuse a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The fact's HLC was too far ahead of the server's clock and was replaced.
    ClockAhead,
    /// The batch's wall clock was more than two minutes off the server's.
    ClockSkew,
    /// The device had already used this `seq` for another fact.
    SeqReused,
}
