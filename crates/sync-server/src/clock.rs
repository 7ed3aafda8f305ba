//! The server's clocks: wall time, and the hybrid logical clock every response carries.

use shared_core::hlc::Observed;
use shared_core::{Hlc, HlcClock};
use std::sync::Mutex;

#[derive(Default)]
pub struct ServerClock {
    hlc: Mutex<HlcClock>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ServerClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh HLC value for a response.
    pub fn tick(&self) -> Hlc {
        self.hlc
            .lock()
            .expect("clock lock")
            .tick(now_ms().max(0) as u64)
    }

    /// Observes a handset's HLC, clamping it when it is too far ahead.
    pub fn observe(&self, remote: Hlc, now: i64, max_drift_ms: u64) -> Observed {
        self.hlc
            .lock()
            .expect("clock lock")
            .observe(remote, now.max(0) as u64, max_drift_ms)
    }
}
