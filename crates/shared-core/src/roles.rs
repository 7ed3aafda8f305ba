//! Roles per estate, and the scope a caller's pull is limited to.

use crate::ids::{EstateId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Guard,
    Engineer,
    Supervisor,
    Manager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Guard,
        Role::Engineer,
        Role::Supervisor,
        Role::Manager,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guard => "guard",
            Role::Engineer => "engineer",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Roles that oversee an estate and so see every fact in it, with the server's notes.
    pub fn oversees(self) -> bool {
        matches!(self, Role::Supervisor | Role::Manager | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: one of guard, engineer, supervisor, manager, admin")
            })
    }
}

/// What one caller may see: per estate, everything (oversight roles) or only reference
/// data and the caller's own facts (guards and engineers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub user_id: UserId,
    pub roles: BTreeMap<EstateId, BTreeSet<Role>>,
}

impl Scope {
    pub fn new(user_id: UserId, roles: BTreeMap<EstateId, BTreeSet<Role>>) -> Self {
        Self { user_id, roles }
    }

    pub fn estates(&self) -> impl Iterator<Item = EstateId> + '_ {
        self.roles.keys().copied()
    }

    pub fn contains(&self, estate: EstateId) -> bool {
        self.roles.contains_key(&estate)
    }

    pub fn has_role(&self, estate: EstateId, role: Role) -> bool {
        self.roles.get(&estate).is_some_and(|r| r.contains(&role))
    }

    pub fn has_role_anywhere(&self, role: Role) -> bool {
        self.roles.values().any(|r| r.contains(&role))
    }

    /// Estates where the caller sees every fact.
    pub fn overseen_estates(&self) -> Vec<EstateId> {
        self.roles
            .iter()
            .filter(|(_, r)| r.iter().any(|r| r.oversees()))
            .map(|(e, _)| *e)
            .collect()
    }

    /// Estates where the caller sees reference data and only their own facts.
    pub fn member_estates(&self) -> Vec<EstateId> {
        self.roles
            .iter()
            .filter(|(_, r)| !r.iter().any(|r| r.oversees()))
            .map(|(e, _)| *e)
            .collect()
    }

    /// Of [`Scope::member_estates`], those where the caller is an engineer: they also see
    /// hazard tickets assigned to them and every open one.
    pub fn engineer_estates(&self) -> Vec<EstateId> {
        self.roles
            .iter()
            .filter(|(_, r)| !r.iter().any(|r| r.oversees()) && r.contains(&Role::Engineer))
            .map(|(e, _)| *e)
            .collect()
    }

    /// A short fingerprint of this scope. A pull cursor carries it, so a cursor minted for
    /// another scope (another user, or roles that changed) is refused instead of silently
    /// skipping the data the new scope would have seen.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.user_id.0.as_bytes());
        for (estate, full, engineer) in self.roles.iter().map(|(e, r)| {
            (
                e,
                r.iter().any(|r| r.oversees()),
                r.contains(&Role::Engineer),
            )
        }) {
            h.update(estate.0.as_bytes());
            // The engineer bit only where it changes what is seen (hazard tickets), so
            // the fingerprints of every other scope stay as they were.
            h.update([full as u8 | (u8::from(engineer && !full) << 1)]);
        }
        hex::encode(&h.finalize()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn scope(entries: &[(u128, &[Role])]) -> Scope {
        Scope::new(
            UserId(Uuid::from_u128(1)),
            entries
                .iter()
                .map(|(e, r)| (EstateId(Uuid::from_u128(*e)), r.iter().copied().collect()))
                .collect(),
        )
    }

    #[test]
    fn oversight_is_per_estate() {
        let s = scope(&[(10, &[Role::Guard]), (20, &[Role::Guard, Role::Supervisor])]);
        assert_eq!(s.overseen_estates(), vec![EstateId(Uuid::from_u128(20))]);
        assert_eq!(s.member_estates(), vec![EstateId(Uuid::from_u128(10))]);
    }

    #[test]
    fn fingerprint_changes_with_scope_but_not_with_equivalent_roles() {
        let a = scope(&[(10, &[Role::Guard])]);
        // Engineers see more hazard tickets than guards: another scope.
        let b = scope(&[(10, &[Role::Guard, Role::Engineer])]);
        let c = scope(&[(10, &[Role::Manager])]);
        let d = scope(&[(10, &[Role::Guard]), (20, &[Role::Guard])]);
        // Under oversight, an engineer role adds nothing: the same scope.
        let e = scope(&[(10, &[Role::Manager, Role::Engineer])]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_ne!(a.fingerprint(), d.fingerprint());
        assert_eq!(c.fingerprint(), e.fingerprint());
        assert_eq!(
            b.engineer_estates(),
            vec![EstateId(Uuid::from_u128(10))],
            "an engineer without oversight"
        );
        assert!(e.engineer_estates().is_empty());
    }
}
