//! postgres: patrol reference data, scans, run events and excuses (the SQL behind
//! `storage::patrol`).

use super::*;
use crate::storage::RefOutcome;
use shared_core::patrol::{Excuse, RefOp, ReferenceSet, RunEventObs, ScanObs};

impl PgStore {
    pub(super) async fn pt_reference(&self, estate: EstateId) -> StoreResult<ReferenceSet> {
        let _ = estate;
        todo!()
    }
    pub(super) async fn pt_apply_reference(
        &self,
        estate: EstateId,
        ops: Vec<RefOp>,
        now: i64,
    ) -> StoreResult<RefOutcome> {
        let _ = (estate, ops, now);
        todo!()
    }
    pub(super) async fn pt_set_timezone(
        &self,
        estate: EstateId,
        timezone: &str,
        now: i64,
    ) -> StoreResult<EstateRecord> {
        let _ = (estate, timezone, now);
        todo!()
    }
    pub(super) async fn pt_scans_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<ScanObs>> {
        let _ = (estate, from, to);
        todo!()
    }
    pub(super) async fn pt_run_events_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<RunEventObs>> {
        let _ = (estate, from, to);
        todo!()
    }
    pub(super) async fn pt_excuses_between(
        &self,
        estate: EstateId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Excuse>> {
        let _ = (estate, from, to);
        todo!()
    }
    pub(super) async fn pt_put_excuse(
        &self,
        estate: EstateId,
        excuse: &Excuse,
    ) -> StoreResult<bool> {
        let _ = (estate, excuse);
        todo!()
    }
    pub(super) async fn pt_patrol_estates(&self) -> StoreResult<Vec<EstateId>> {
        todo!()
    }
}
