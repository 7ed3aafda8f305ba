//! Id newtypes, so an estate id can never be passed where a user id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
                #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(x: $name) -> Uuid {
                x.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// An estate (小区 / 项目): the unit a property company manages.
    EstateId
);
id_type!(
    /// A person who signs in: guard, engineer, supervisor, manager or administrator.
    UserId
);
id_type!(
    /// A handset, named by the id the handset generated for itself. Shared handsets are
    /// common (a phone passed at shift change), so a device is not owned by one user.
    DeviceId
);
id_type!(
    /// A fact's client-generated UUIDv7.
    FactId
);
id_type!(
    /// A push batch's client-generated id; replaying it returns the first answer.
    BatchId
);
id_type!(
    /// A hazard ticket (隐患), named by the id the reporting handset generated.
    HazardId
);
id_type!(
    /// An alert raised by the server (missed visit, hazard escalation).
    AlertId
);
id_type!(
    /// A zone of an estate (区域): a building, a car park level, the perimeter.
    ZoneId
);
id_type!(
    /// A checkpoint (巡更点) guards scan.
    CheckpointId
);
id_type!(
    /// A patrol route (巡更路线): an ordered list of checkpoints.
    RouteId
);
id_type!(
    /// A patrol rule (巡更规则): what must be visited how often, or how many runs.
    RuleId
);
id_type!(
    /// A patrol run (一次巡更), named by the id the handset generated when it started.
    RunId
);
