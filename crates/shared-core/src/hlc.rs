//! The hybrid logical clock that decides which edit wins.
//!
//! Wire form: `"<13-digit epoch ms>-<4 hex digits counter>"`, e.g. `"1732240200123-0001"`.
//! Because both parts are fixed width, comparing the strings compares the clocks; ties
//! between equal clocks break by device id, then fact id ([`FactOrder`]).

use crate::ids::{DeviceId, FactId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The largest epoch-millisecond value that still fits the 13-digit wire form (year 2286).
pub const MAX_MS: u64 = 9_999_999_999_999;

/// Hybrid logical clock value; on the wire `"<13-digit epoch ms>-<4 hex digits>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Physical part: epoch milliseconds.
    pub ms: u64,
    /// Logical part: orders events within one millisecond.
    pub counter: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an HLC is \"<13-digit epoch ms>-<4 hex digits>\", e.g. \"1732240200123-0001\"")]
pub struct HlcParseError;

impl Hlc {
    pub const fn new(ms: u64, counter: u16) -> Self {
        Self { ms, counter }
    }

    /// The next value after this one, carrying into the millisecond when the counter is full.
    pub fn successor(self) -> Self {
        if self.counter == u16::MAX {
            Self::new(self.ms + 1, 0)
        } else {
            Self::new(self.ms, self.counter + 1)
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}-{:04x}", self.ms, self.counter)
    }
}

impl FromStr for Hlc {
    type Err = HlcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 18 || b[13] != b'-' {
            return Err(HlcParseError);
        }
        let (ms, counter) = (&s[..13], &s[14..]);
        if !ms.bytes().all(|c| c.is_ascii_digit()) {
            return Err(HlcParseError);
        }
        // Lower-case hex only, so that string order and clock order agree.
        if !counter
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(HlcParseError);
        }
        Ok(Hlc {
            ms: ms.parse().map_err(|_| HlcParseError)?,
            counter: u16::from_str_radix(counter, 16).map_err(|_| HlcParseError)?,
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The total order of facts for folding: HLC, then device id, then fact id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FactOrder {
    pub hlc: Hlc,
    pub device_id: DeviceId,
    pub id: FactId,
}

/// A clock's state. Pure: the caller passes the wall clock in, so tests control time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
}

/// What happened to a remote clock value when the server observed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The value to store for the fact: the remote one, or the server's own if clamped.
    pub effective: Hlc,
    /// True when the remote value was more than the allowed drift ahead and was replaced.
    pub clamped: bool,
}

impl HlcClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last value issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new local event: `max(wall, last)`, advanced past `last`.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let next = if wall_ms > self.last.ms {
            Hlc::new(wall_ms.min(MAX_MS), 0)
        } else {
            self.last.successor()
        };
        self.last = next;
        next
    }

    /// Observe a value from a handset. A value more than `max_drift_ms` ahead of the wall
    /// clock is not trusted: the server stores its own new tick instead and says so, so one
    /// handset with a wrong clock can neither win every conflict nor drag every clock forward.
    /// Otherwise the clock advances past the remote value, so anything the server answers
    /// afterwards orders after it.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64, max_drift_ms: u64) -> Observed {
        if remote.ms > wall_ms.saturating_add(max_drift_ms) {
            return Observed {
                effective: self.tick(wall_ms),
                clamped: true,
            };
        }
        if remote > self.last {
            self.last = remote;
        }
        Observed {
            effective: remote,
            clamped: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_form_round_trips() {
        let h: Hlc = "1732240200123-0001".parse().unwrap();
        assert_eq!(h, Hlc::new(1_732_240_200_123, 1));
        assert_eq!(h.to_string(), "1732240200123-0001");
        assert_eq!(Hlc::new(5, 0xabc).to_string(), "0000000000005-0abc");
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "1732240200123",
            "1732240200123-001",
            "1732240200123-00001",
            "173224020012-00001",
            "1732240200123_0001",
            "1732240200123-00G1",
            "1732240200123-00A1",
            "+732240200123-0001",
            "17322402001230-001",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn tick_is_monotonic_even_when_the_wall_clock_goes_back() {
        let mut c = HlcClock::new();
        let a = c.tick(1000);
        let b = c.tick(900);
        let d = c.tick(900);
        assert!(a < b && b < d);
        assert_eq!(b, Hlc::new(1000, 1));
    }

    #[test]
    fn counter_overflow_carries_into_the_millisecond() {
        assert_eq!(Hlc::new(7, u16::MAX).successor(), Hlc::new(8, 0));
    }

    #[test]
    fn observing_a_far_future_value_clamps_it_and_does_not_move_the_clock() {
        let mut c = HlcClock::new();
        let o = c.observe(Hlc::new(10_000_000, 0), 1_000, 60_000);
        assert!(o.clamped);
        assert_eq!(o.effective, Hlc::new(1_000, 0));
        assert_eq!(c.last(), Hlc::new(1_000, 0));
    }

    #[test]
    fn observing_a_value_within_drift_advances_the_clock_past_it() {
        let mut c = HlcClock::new();
        let remote = Hlc::new(1_000 + 59_000, 3);
        let o = c.observe(remote, 1_000, 60_000);
        assert!(!o.clamped);
        assert_eq!(o.effective, remote);
        assert!(c.tick(1_000) > remote);
    }

    fn any_hlc() -> impl Strategy<Value = Hlc> {
        (0..=MAX_MS, any::<u16>()).prop_map(|(ms, c)| Hlc::new(ms, c))
    }

    proptest! {
        #[test]
        fn string_order_is_clock_order(a in any_hlc(), b in any_hlc()) {
            prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
            prop_assert_eq!(a.to_string().parse::<Hlc>().unwrap(), a);
        }

        #[test]
        fn fact_order_is_a_total_order(
            xs in proptest::collection::vec((any_hlc(), any::<u128>(), any::<u128>()), 1..40)
        ) {
            let keys: Vec<FactOrder> = xs.iter().map(|(h, d, i)| FactOrder {
                hlc: *h,
                device_id: DeviceId(uuid::Uuid::from_u128(*d)),
                id: FactId(uuid::Uuid::from_u128(*i)),
            }).collect();
            for a in &keys {
                for b in &keys {
                    // Antisymmetric and total: exactly one of <, =, > holds, = only for equal keys.
                    let (lt, gt) = (a < b, a > b);
                    prop_assert!(!(lt && gt));
                    prop_assert_eq!(!lt && !gt, a == b);
                    for c in &keys {
                        if a <= b && b <= c { prop_assert!(a <= c); }
                    }
                }
            }
            // Sorting any permutation gives the same sequence.
            let mut s1 = keys.clone(); s1.sort();
            let mut s2 = keys.clone(); s2.reverse(); s2.sort();
            prop_assert_eq!(s1, s2);
        }

        #[test]
        fn clock_never_goes_backwards(
            steps in proptest::collection::vec((any::<bool>(), 0u64..2_000_000, any_hlc()), 1..60)
        ) {
            let mut c = HlcClock::new();
            let mut prev = c.last();
            for (is_tick, wall, remote) in steps {
                let now = if is_tick { c.tick(wall) } else { c.observe(remote, wall, 60_000); c.last() };
                prop_assert!(now >= prev);
                if is_tick { prop_assert!(now > prev); }
                prev = now;
            }
        }
    }
}
