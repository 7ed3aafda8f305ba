//! The pull cursor: opaque to handsets, a feed position bound to the caller's scope.

use crate::error::AppError;
use crate::storage::FeedPos;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Format version.
    pub v: u8,
    /// Feed position: transaction id and sequence (see `FeedPos`).
    pub t: i64,
    pub s: i64,
    /// Fingerprint of the scope the cursor was minted for.
    pub f: String,
    /// When it was minted (epoch ms), to retire cursors older than the tombstone window.
    pub i: i64,
}

impl Cursor {
    pub fn new(pos: FeedPos, fingerprint: String, now: i64) -> Self {
        Self {
            v: 1,
            t: pos.txid,
            s: pos.seq,
            f: fingerprint,
            i: now,
        }
    }

    pub fn pos(&self) -> FeedPos {
        FeedPos {
            txid: self.t,
            seq: self.s,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Result<Cursor, AppError> {
        let bad = || {
            AppError::InvalidCursor(
                "pass back the cursor of the last pull exactly as received, or none to start again"
                    .into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if c.v != 1 {
            return Err(bad());
        }
        Ok(c)
    }

    /// Checks the cursor still fits the caller and the feed.
    pub fn check(
        &self,
        fingerprint: &str,
        floor: FeedPos,
        now: i64,
        retention_ms: i64,
    ) -> Result<(), AppError> {
        if self.f != fingerprint {
            return Err(AppError::MustReset(
                "the cursor was made for another user or another set of estates and roles".into(),
            ));
        }
        if now - self.i > retention_ms {
            return Err(AppError::MustReset(
                "the cursor is older than the tombstone retention window".into(),
            ));
        }
        if self.pos() < floor {
            return Err(AppError::MustReset(
                "tombstones this cursor has not seen have been removed".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let c = Cursor::new(FeedPos { txid: 7, seq: 42 }, "abc".into(), 1000);
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(matches!(
            Cursor::decode("!!"),
            Err(AppError::InvalidCursor(_))
        ));
        assert!(matches!(
            Cursor::decode("e30"),
            Err(AppError::InvalidCursor(_))
        ));
    }

    #[test]
    fn another_scope_an_old_cursor_or_a_pruned_position_must_reset() {
        let c = Cursor::new(FeedPos { txid: 0, seq: 10 }, "abc".into(), 1000);
        assert!(c.check("abc", FeedPos::default(), 2000, 10_000).is_ok());
        assert!(matches!(
            c.check("xyz", FeedPos::default(), 2000, 10_000),
            Err(AppError::MustReset(_))
        ));
        assert!(matches!(
            c.check("abc", FeedPos::default(), 20_000, 10_000),
            Err(AppError::MustReset(_))
        ));
        assert!(matches!(
            c.check("abc", FeedPos { txid: 0, seq: 11 }, 2000, 10_000),
            Err(AppError::MustReset(_))
        ));
        assert!(c
            .check("abc", FeedPos { txid: 0, seq: 10 }, 2000, 10_000)
            .is_ok());
    }
}
