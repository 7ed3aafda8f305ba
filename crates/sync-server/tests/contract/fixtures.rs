//! Builders for the contract tests: a little world of estates, users and devices, and push
//! batches built by hand the way the service would prepare them.

use serde_json::{json, Value};
use shared_core::hazard::PhotoRole;
use shared_core::patrol::{RunEventData, ScanData, ScanLocation, ScanMethod};
use shared_core::validate::{content_hash, ValidChange};
use shared_core::wire::{
    ChangeStatus, EstateRecord, FactRecord, PushResponse, RejectCode, Timestamp,
};
use shared_core::{
    BatchId, ClockTrust, DeviceId, EstateId, FactId, FactKind, Flag, Hlc, Role, RunId, UserId,
};
use std::time::{Duration, Instant};
use sync_server::storage::{
    DeviceUpsert, DynStore, FeedItem, FeedPos, FeedScope, HazardAttach, NewUser, PatrolAttach,
    PreparedBatch, PreparedFact, PreparedRejection, PushOutcome,
};

/// "Now" for every test: 2025-11-22T08:26:40Z. Times are passed in, never read.
pub const NOW: i64 = 1_763_800_000_000;

pub async fn estate(store: &DynStore, name: &str) -> EstateRecord {
    store
        .create_estate(name, "Asia/Shanghai", NOW)
        .await
        .expect("create_estate")
}

/// A user with the given roles; the username is made unique so tests never collide.
pub async fn user(store: &DynStore, name: &str, roles: &[(EstateId, Role)]) -> UserId {
    let id = store
        .create_user(
            NewUser {
                username: format!("{name}-{}", uuid::Uuid::new_v4().simple()),
                name: name.to_owned(),
                password_hash: "$argon2id$not-a-real-hash".into(),
            },
            NOW,
        )
        .await
        .expect("create_user");
    for (estate, role) in roles {
        store
            .add_membership(id, *estate, *role)
            .await
            .expect("add_membership");
    }
    id
}

pub async fn device(store: &DynStore, user: UserId) -> DeviceId {
    let id = DeviceId::new_v7();
    store
        .upsert_device(DeviceUpsert {
            id,
            name: Some("handset".into()),
            platform: Some("android".into()),
            app_version: Some("1.0.0".into()),
            user_id: user,
            now: NOW,
        })
        .await
        .expect("upsert_device");
    id
}

/// A fact as a handset would have sent it, with the server's annotations filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct TestFact {
    pub record: FactRecord,
    pub hash: String,
    /// What the service would have read from a hazard event or photo.
    pub hazard: Option<HazardAttach>,
    /// What the service would have read from a scan or run event.
    pub patrol: Option<PatrolAttach>,
}

impl TestFact {
    /// A fact whose fields vary with `seq`, so every column makes a round trip.
    pub fn new(estate: EstateId, device: DeviceId, user: UserId, seq: u64) -> Self {
        let kinds = FactKind::ALL;
        let kind = kinds[(seq as usize) % kinds.len()];
        let clamped = seq % 5 == 3;
        let verified = seq & 1 == 0;
        let hlc = Hlc::new(NOW as u64 - 60_000 + seq * 10, (seq % 7) as u16);
        let record = FactRecord {
            id: FactId::new_v7(),
            kind,
            estate_id: estate,
            device_id: device,
            user_id: user,
            batch_id: BatchId(uuid::Uuid::nil()),
            seq,
            hlc: if clamped {
                Hlc::new(NOW as u64, 1)
            } else {
                hlc
            },
            hlc_sent: clamped.then_some(Hlc::new(NOW as u64 + 3_600_000, 0)),
            recorded_at: Timestamp(NOW - 60_000 + seq as i64 * 10),
            age_ms: verified.then_some(60_000 - seq as i64 * 10),
            sent_at: Timestamp(NOW - 5),
            received_at: Timestamp(NOW),
            trusted_at: Timestamp(NOW - 60_000 + seq as i64 * 10),
            clock_trust: if verified {
                ClockTrust::Verified
            } else {
                ClockTrust::Estimated
            },
            flags: if clamped {
                vec![Flag::ClockAhead]
            } else {
                vec![]
            },
            data: json!({
                "estate_id": estate,
                "tag": format!("04:A2:19:{:02X}", seq % 256),
                "method": "nfc",
                "note": format!("fact {seq} of {device}"),
            }),
        };
        let mut f = TestFact {
            record,
            hash: String::new(),
            hazard: None,
            patrol: None,
        };
        f.rehash();
        f
    }

    /// A `hazard_event` with `data` (which must name the hazard and action), at `hlc_ms`,
    /// by a user holding `roles`; parsed as the service would.
    pub fn hazard_event(
        estate: EstateId,
        device: DeviceId,
        user: UserId,
        seq: u64,
        hlc_ms: i64,
        roles: &[Role],
        mut data: Value,
    ) -> Self {
        data["estate_id"] = json!(estate);
        let mut f = TestFact::new(estate, device, user, seq);
        let r = &mut f.record;
        r.kind = FactKind::HazardEvent;
        r.hlc = Hlc::new(hlc_ms as u64, 0);
        r.hlc_sent = None;
        r.flags = vec![];
        r.recorded_at = Timestamp(hlc_ms);
        r.trusted_at = Timestamp(hlc_ms);
        r.data = data;
        let parsed = shared_core::hazard::parse_event(&r.data).expect("a well-formed event");
        f.hazard = Some(HazardAttach::Event {
            parsed: Box::new(parsed),
            roles: roles.to_vec(),
        });
        f.rehash();
        f
    }

    /// A photo of a hazard event, with its evidence role.
    pub fn hazard_photo(
        estate: EstateId,
        device: DeviceId,
        user: UserId,
        seq: u64,
        event: FactId,
        role: PhotoRole,
    ) -> Self {
        let mut f = TestFact::new(estate, device, user, seq);
        let sha = format!("{:064x}", seq);
        let r = &mut f.record;
        r.kind = FactKind::Photo;
        r.data = json!({"estate_id": estate, "sha256": sha, "bytes": 1000, "mime": "image/jpeg",
                        "subject": {"kind": "hazard_event", "id": event}, "role": role.as_str()});
        f.hazard = Some(HazardAttach::Photo {
            event_id: event,
            role,
            sha256: sha,
        });
        f.rehash();
        f
    }

    /// A `scan` of `tag` (an NFC UID, normalised: `04A2197C`) at trusted time `at`, read as
    /// the service would: resolved by the key `nfc:<tag>`.
    pub fn scan(
        estate: EstateId,
        device: DeviceId,
        user: UserId,
        seq: u64,
        at: i64,
        tag: &str,
    ) -> Self {
        let mut f = TestFact::new(estate, device, user, seq);
        let r = &mut f.record;
        r.kind = FactKind::Scan;
        r.hlc = Hlc::new(at as u64, 0);
        r.hlc_sent = None;
        r.recorded_at = Timestamp(at);
        r.trusted_at = Timestamp(at);
        r.data = json!({"estate_id": estate, "tag": tag, "method": "nfc"});
        f.patrol = Some(PatrolAttach::Scan(ScanData {
            method: ScanMethod::Nfc,
            tag_raw: tag.to_owned(),
            tag_key: format!("nfc:{tag}"),
            run_id: None,
            location: None,
        }));
        f.rehash();
        f
    }

    /// This scan, made during a run.
    pub fn in_run(mut self, run: RunId) -> Self {
        self.record.data["run_id"] = json!(run);
        if let Some(PatrolAttach::Scan(s)) = &mut self.patrol {
            s.run_id = Some(run);
        }
        self.rehash();
        self
    }

    /// This scan, made where the handset said it was.
    pub fn located(mut self, l: ScanLocation) -> Self {
        self.record.data["location"] =
            json!({"lat": l.lat, "lng": l.lng, "accuracy_m": l.accuracy_m, "mock": l.mock});
        if let Some(PatrolAttach::Scan(s)) = &mut self.patrol {
            s.location = Some(l);
        }
        self.rehash();
        self
    }

    /// A `run_event` at trusted time `at`.
    pub fn run_event(
        estate: EstateId,
        device: DeviceId,
        user: UserId,
        seq: u64,
        at: i64,
        event: RunEventData,
    ) -> Self {
        let mut f = TestFact::new(estate, device, user, seq);
        let r = &mut f.record;
        r.kind = FactKind::RunEvent;
        r.hlc = Hlc::new(at as u64, 0);
        r.hlc_sent = None;
        r.recorded_at = Timestamp(at);
        r.trusted_at = Timestamp(at);
        r.data = json!({"estate_id": estate, "run_id": event.run_id,
                        "action": event.action.as_str(), "route_id": event.route_id,
                        "reason": event.reason});
        f.patrol = Some(PatrolAttach::RunEvent(event));
        f.rehash();
        f
    }

    /// Another fact under the same id: different content.
    pub fn altered(&self) -> Self {
        let mut f = self.clone();
        f.record.data["note"] = json!("edited: a fact must never change");
        f.rehash();
        f
    }

    pub fn rehash(&mut self) {
        let r = &self.record;
        self.hash = content_hash(
            r.device_id,
            &ValidChange {
                kind: r.kind,
                id: r.id,
                seq: r.seq,
                hlc: r.hlc_sent.unwrap_or(r.hlc),
                recorded_at: r.recorded_at,
                age_ms: r.age_ms,
                estate_id: r.estate_id,
                data: r.data.clone(),
            },
        );
    }

    /// The change as it arrived on the wire.
    pub fn raw(&self) -> Value {
        let r = &self.record;
        json!({
            "kind": r.kind,
            "id": r.id,
            "seq": r.seq,
            "hlc": r.hlc_sent.unwrap_or(r.hlc),
            "recorded_at": r.recorded_at,
            "age_ms": r.age_ms,
            "data": r.data,
        })
    }
}

#[derive(Clone, Debug)]
enum Change {
    Fact(Box<TestFact>),
    Reject(PreparedRejection),
}

/// A push batch, built change by change in index order.
#[derive(Clone, Debug)]
pub struct Batch {
    pub device: DeviceId,
    pub user: UserId,
    pub id: BatchId,
    pub received_at: i64,
    changes: Vec<Change>,
}

impl Batch {
    pub fn new(device: DeviceId, user: UserId) -> Self {
        Self {
            device,
            user,
            id: BatchId::new_v7(),
            received_at: NOW,
            changes: vec![],
        }
    }

    pub fn fact(mut self, f: &TestFact) -> Self {
        self.changes.push(Change::Fact(Box::new(f.clone())));
        self
    }

    pub fn facts<'a>(mut self, fs: impl IntoIterator<Item = &'a TestFact>) -> Self {
        for f in fs {
            self = self.fact(f);
        }
        self
    }

    /// A change the service refused before the store saw it.
    pub fn reject(
        mut self,
        change_id: Option<&str>,
        seq: Option<u64>,
        code: RejectCode,
        raw: Value,
    ) -> Self {
        let index = self.changes.len();
        self.changes.push(Change::Reject(PreparedRejection {
            index,
            change_id: change_id.map(str::to_owned),
            seq,
            code,
            message: format!("{}: refused by the test", code.as_str()),
            raw,
        }));
        self
    }

    /// The record of the fact at `index` as this batch would store it.
    pub fn record_at(&self, index: usize) -> FactRecord {
        match &self.changes[index] {
            Change::Fact(f) => self.stamp(f),
            Change::Reject(_) => panic!("change {index} is a rejection"),
        }
    }

    fn stamp(&self, f: &TestFact) -> FactRecord {
        let mut r = f.record.clone();
        r.batch_id = self.id;
        r.received_at = Timestamp(self.received_at);
        r
    }

    pub fn prepared(&self) -> PreparedBatch {
        let mut facts = vec![];
        let mut rejections = vec![];
        let mut raw_by_index = vec![];
        for (index, c) in self.changes.iter().enumerate() {
            match c {
                Change::Fact(f) => {
                    facts.push(PreparedFact {
                        index,
                        record: self.stamp(f),
                        content_hash: f.hash.clone(),
                        hazard: f.hazard.clone(),
                        patrol: f.patrol.clone(),
                    });
                    raw_by_index.push(Some(f.raw()));
                }
                Change::Reject(r) => {
                    rejections.push(r.clone());
                    raw_by_index.push(None);
                }
            }
        }
        PreparedBatch {
            device_id: self.device,
            user_id: self.user,
            batch_id: self.id,
            received_at: self.received_at,
            clock_offset_ms: 5,
            len: self.changes.len(),
            facts,
            rejections,
            raw_by_index,
        }
    }
}

/// Pushes a batch that must be new, and returns its answer.
pub async fn push(store: &DynStore, b: &Batch) -> PushResponse {
    match store.apply_push(b.prepared()).await.expect("apply_push") {
        PushOutcome::Stored { response, .. } => response,
        PushOutcome::Replayed(r) => panic!("batch {} was new, yet replayed: {r:?}", b.id),
    }
}

pub fn statuses(r: &PushResponse) -> Vec<ChangeStatus> {
    r.results.iter().map(|c| c.status).collect()
}

pub fn scope_full(user: UserId, estates: &[EstateId]) -> FeedScope {
    FeedScope {
        user_id: user,
        full: estates.to_vec(),
        own: vec![],
        engineer: vec![],
    }
}

/// Reads the feed after `after` to its end in pages of `limit`, checking what every page
/// must satisfy when nothing is being written: at most `limit` items, positions strictly
/// increasing, `has_more` true exactly when another item follows. Pages held back (another
/// transaction on the server is still open) are retried for a while.
pub async fn drain(
    store: &DynStore,
    scope: &FeedScope,
    after: FeedPos,
    limit: usize,
) -> Vec<FeedItem> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut cursor = after;
    let mut out: Vec<FeedItem> = vec![];
    let mut prev_has_more: Option<bool> = None;
    let mut log: Vec<String> = vec![];
    loop {
        let page = store.pull(scope, cursor, limit).await.expect("pull");
        log.push(format!(
            "pull(after {cursor:?}, limit {limit}) -> {:?}, has_more {}, held_back {}",
            page.items
                .iter()
                .map(|i| (i.pos.txid, i.pos.seq))
                .collect::<Vec<_>>(),
            page.has_more,
            page.held_back
        ));
        assert!(
            page.items.len() <= limit,
            "pull(limit {limit}) returned {} items",
            page.items.len()
        );
        if page.items.is_empty() {
            if page.held_back {
                assert!(
                    Instant::now() < deadline,
                    "the feed stayed held back for 20 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            assert!(!page.has_more, "an empty, not held back page says has_more");
            assert_ne!(
                prev_has_more,
                Some(true),
                "a page said has_more, but the feed ended:\n{}",
                log.join("\n")
            );
            return out;
        }
        assert_ne!(
            prev_has_more,
            Some(false),
            "a page said !has_more, yet more items followed:\n{}",
            log.join("\n")
        );
        for item in page.items {
            assert!(
                item.pos > cursor,
                "feed positions must increase: {:?} came after {cursor:?}",
                item.pos
            );
            cursor = item.pos;
            out.push(item);
        }
        prev_has_more = Some(page.has_more);
    }
}

/// The facts among feed items, decoded.
pub fn facts_of(items: &[FeedItem]) -> Vec<FactRecord> {
    items
        .iter()
        .filter(|i| i.change.collection == "facts")
        .map(|i| {
            let data = i
                .change
                .data
                .clone()
                .expect("a fact in the feed carries its record");
            let rec: FactRecord =
                serde_json::from_value(data).expect("a fact decodes as FactRecord");
            assert_eq!(
                i.change.id,
                rec.id.to_string(),
                "feed id and record id agree"
            );
            rec
        })
        .collect()
}
