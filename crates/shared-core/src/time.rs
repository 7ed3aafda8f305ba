//! Trusted time: when a fact really happened, whatever the handset's wall clock says.
//!
//! `trusted_at = received_at − age_ms` when the handset sent its monotonic age of the fact
//! (`verified`); otherwise `recorded_at + (received_at − sent_at)` (`estimated`): the handset
//! clock's error, measured on the batch, is taken back out. Never later than `received_at`.

use crate::fact::ClockTrust;

/// A batch whose clock offset exceeds this flags its facts `clock_skew`.
pub const SKEW_LIMIT_MS: i64 = 2 * 60 * 1000;

/// The clock readings that decide a fact's trusted time. All epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEvidence {
    /// Server clock when the batch arrived.
    pub received_at: i64,
    /// Handset wall clock when the batch was sent.
    pub sent_at: i64,
    /// Handset wall clock when the fact was recorded.
    pub recorded_at: i64,
    /// Handset monotonic age of the fact at send time, when it has not rebooted since.
    pub age_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedTime {
    pub trusted_at: i64,
    pub clock_trust: ClockTrust,
    /// The batch's clock offset exceeded [`SKEW_LIMIT_MS`].
    pub clock_skew: bool,
}

/// Server clock minus handset clock, as measured on one batch.
pub fn batch_offset_ms(received_at: i64, sent_at: i64) -> i64 {
    received_at.saturating_sub(sent_at)
}

pub fn trusted_time(e: TimeEvidence) -> TrustedTime {
    let offset = batch_offset_ms(e.received_at, e.sent_at);
    let (at, clock_trust) = match e.age_ms {
        Some(age) => (
            e.received_at.saturating_sub(age.max(0)),
            ClockTrust::Verified,
        ),
        None => (e.recorded_at.saturating_add(offset), ClockTrust::Estimated),
    };
    TrustedTime {
        trusted_at: at.min(e.received_at),
        clock_trust,
        clock_skew: offset.saturating_abs() > SKEW_LIMIT_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RECEIVED: i64 = 1_795_000_000_000;

    #[test]
    fn age_gives_verified_time_whatever_the_wall_clock_says() {
        // The guard set the phone back an hour: recorded_at and sent_at are both wrong.
        let t = trusted_time(TimeEvidence {
            received_at: RECEIVED,
            sent_at: RECEIVED - 3_600_000,
            recorded_at: RECEIVED - 3_600_000 - 5_400_000,
            age_ms: Some(5_400_000),
        });
        assert_eq!(t.trusted_at, RECEIVED - 5_400_000);
        assert_eq!(t.clock_trust, ClockTrust::Verified);
        assert!(t.clock_skew);
    }

    #[test]
    fn without_age_the_batch_offset_is_taken_out() {
        // Handset clock 10 minutes slow; fact recorded 30 handset-minutes before sending.
        let slow = 600_000;
        let t = trusted_time(TimeEvidence {
            received_at: RECEIVED,
            sent_at: RECEIVED - slow,
            recorded_at: RECEIVED - slow - 1_800_000,
            age_ms: None,
        });
        assert_eq!(t.trusted_at, RECEIVED - 1_800_000);
        assert_eq!(t.clock_trust, ClockTrust::Estimated);
        assert!(t.clock_skew);
    }

    #[test]
    fn a_small_offset_is_not_skew() {
        let t = trusted_time(TimeEvidence {
            received_at: RECEIVED,
            sent_at: RECEIVED - SKEW_LIMIT_MS,
            recorded_at: RECEIVED - 1000,
            age_ms: None,
        });
        assert!(!t.clock_skew);
    }

    #[test]
    fn a_fact_recorded_after_sending_is_capped_at_receipt() {
        let t = trusted_time(TimeEvidence {
            received_at: RECEIVED,
            sent_at: RECEIVED,
            recorded_at: RECEIVED + 86_400_000,
            age_ms: None,
        });
        assert_eq!(t.trusted_at, RECEIVED);
    }

    proptest! {
        #[test]
        fn trusted_time_is_never_after_receipt(
            received in 0i64..4_000_000_000_000,
            sent in any::<i64>(),
            recorded in any::<i64>(),
            age in proptest::option::of(any::<i64>()),
        ) {
            let t = trusted_time(TimeEvidence { received_at: received, sent_at: sent, recorded_at: recorded, age_ms: age });
            prop_assert!(t.trusted_at <= received);
        }

        #[test]
        fn moving_the_handset_clock_does_not_move_trusted_time(
            received in 1_000_000_000_000i64..3_000_000_000_000,
            lag in 0i64..1_000_000,
            age in 0i64..86_400_000,
            shift in -86_400_000i64..86_400_000,
            with_age in any::<bool>(),
        ) {
            // The same fact, sent with an honest clock and with a clock shifted by `shift`.
            let honest = TimeEvidence { received_at: received, sent_at: received - lag, recorded_at: received - lag - age, age_ms: with_age.then_some(age) };
            let shifted = TimeEvidence { sent_at: honest.sent_at + shift, recorded_at: honest.recorded_at + shift, ..honest };
            prop_assert_eq!(trusted_time(honest).trusted_at, trusted_time(shifted).trusted_at);
        }
    }
}
