//! Wakes long-polling pulls when something in their estates changes.
//!
//! One `watch` channel per estate: a push bumps the estates it touched, and a waiting pull
//! subscribes to its own estates only, so a push in one estate does not wake every handset
//! in the country. Across server instances, PostgreSQL `NOTIFY` feeds the same hub.

use futures::future::select_all;
use shared_core::EstateId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct ChangeHub {
    channels: Arc<Mutex<HashMap<EstateId, watch::Sender<u64>>>>,
}

pub struct Subscription {
    receivers: Vec<watch::Receiver<u64>>,
}

impl ChangeHub {
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(map: &mut HashMap<EstateId, watch::Sender<u64>>, e: EstateId) -> &watch::Sender<u64> {
        map.entry(e).or_insert_with(|| watch::channel(0).0)
    }

    /// Something changed in these estates.
    pub fn notify(&self, estates: &[EstateId]) {
        let mut map = self.channels.lock().expect("hub lock");
        for e in estates {
            Self::sender(&mut map, *e).send_modify(|v| *v += 1);
        }
    }

    /// Something changed everywhere (e.g. a notification whose estate could not be read).
    pub fn notify_all(&self) {
        let map = self.channels.lock().expect("hub lock");
        for s in map.values() {
            s.send_modify(|v| *v += 1);
        }
    }

    /// Subscribe before reading the feed, then wait: a change committed between the read
    /// and the wait still wakes the waiter.
    pub fn subscribe(&self, estates: impl IntoIterator<Item = EstateId>) -> Subscription {
        let mut map = self.channels.lock().expect("hub lock");
        Subscription {
            receivers: estates
                .into_iter()
                .map(|e| Self::sender(&mut map, e).subscribe())
                .collect(),
        }
    }
}

impl Subscription {
    /// Resolves when any subscribed estate changes after the subscription was made.
    /// Never resolves for an empty subscription.
    pub async fn changed(&mut self) {
        if self.receivers.is_empty() {
            return futures::future::pending().await;
        }
        let futs = self
            .receivers
            .iter_mut()
            .map(|r| Box::pin(r.changed()))
            .collect::<Vec<_>>();
        let _ = select_all(futs).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use uuid::Uuid;

    #[tokio::test]
    async fn wakes_only_subscribers_of_the_estate() {
        let hub = ChangeHub::new();
        let a = EstateId(Uuid::from_u128(1));
        let b = EstateId(Uuid::from_u128(2));
        let mut sub_a = hub.subscribe([a]);
        let mut sub_b = hub.subscribe([b]);
        hub.notify(&[a]);
        tokio::time::timeout(Duration::from_secs(1), sub_a.changed())
            .await
            .expect("subscriber of a is woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), sub_b.changed())
                .await
                .is_err(),
            "subscriber of b must not be woken"
        );
    }

    #[tokio::test]
    async fn a_change_between_subscribe_and_wait_is_not_lost() {
        let hub = ChangeHub::new();
        let a = EstateId(Uuid::from_u128(1));
        let mut sub = hub.subscribe([a]);
        hub.notify(&[a]);
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .expect("woken");
    }
}
