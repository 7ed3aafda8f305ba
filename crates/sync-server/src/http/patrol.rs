//! Patrol plans and coverage: the estate's reference data (zones, checkpoints, routes,
//! rules), its time zone, and what managers read — coverage, slots, the heat map, runs —
//! with supervisors' excuses. Handlers only read the request and shape the answer; the
//! evaluation is `services::patrol` over shared-core's pure functions.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::http::csv::{csv_response, csv_row, wants_csv};
use crate::http::extract::{parse_json, ApiJson, ApiQuery};
use crate::http::AppState;
use crate::services::patrol::{zone_of, PeriodData, MAX_PERIOD_MS};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared_core::patrol::coverage::{local_day_bounds, CoverageReport, GroupBy, Heatmap};
use shared_core::patrol::{
    runs, slots, Checkpoint, Excuse, RefCollection, RefEntity, RefOp, ReferenceSet, Route, Rule,
    Run, ScanFlag, SlotResult, SlotStatus, Zone,
};
use shared_core::wire::{EstateRecord, Timestamp};
use shared_core::{CheckpointId, DeviceId, EstateId, FactId, Role, RuleId, UserId, ZoneId};
use std::str::FromStr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/estates/{id}", axum::routing::patch(update_estate))
        .route("/v1/estates/{id}/coverage", get(get_coverage))
        .route("/v1/estates/{id}/coverage.csv", get(export_coverage))
        .route("/v1/estates/{id}/slots", get(list_slots))
        .route("/v1/estates/{id}/slots.csv", get(export_slots))
        .route("/v1/estates/{id}/slots/excuse", post(excuse_slot))
        .route("/v1/estates/{id}/heatmap", get(get_heatmap))
        .route("/v1/estates/{id}/heatmap.csv", get(export_heatmap))
        .route("/v1/estates/{id}/runs", get(list_runs))
        .route(
            "/v1/estates/{id}/{collection}",
            get(list_reference).post(create_reference),
        )
        .route(
            "/v1/estates/{id}/{collection}/{item}",
            get(get_reference)
                .put(put_reference)
                .delete(delete_reference),
        )
}

/// Who may change reference data: managers and administrators.
const EDITORS: [Role; 2] = [Role::Manager, Role::Admin];
/// Who may read coverage and excuse slots: supervisors, managers, administrators.
const OVERSEERS: [Role; 3] = [Role::Supervisor, Role::Manager, Role::Admin];
/// Longest excuse reason, in characters.
pub const MAX_REASON: usize = 2000;

fn estate_of(id: &str) -> AppResult<EstateId> {
    id.parse().map_err(|_| AppError::NotFound)
}

fn collection_of(name: &str) -> AppResult<RefCollection> {
    RefCollection::from_str(name).map_err(|_| AppError::NotFound)
}

fn invalid(path: &str, message: impl Into<String>) -> AppError {
    AppError::Validation(vec![FieldError {
        path: path.into(),
        message: message.into(),
    }])
}

// ------------------------------------------------------------------ reference data

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferenceList {
    /// The collection's live entities (zones, checkpoints, routes or rules), by code or name.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

fn entities(set: &ReferenceSet, c: RefCollection) -> Vec<RefEntity> {
    match c {
        RefCollection::Zones => set.zones.iter().cloned().map(RefEntity::Zone).collect(),
        RefCollection::Checkpoints => set
            .checkpoints
            .iter()
            .cloned()
            .map(RefEntity::Checkpoint)
            .collect(),
        RefCollection::Routes => set.routes.iter().cloned().map(RefEntity::Route).collect(),
        RefCollection::Rules => set.rules.iter().cloned().map(RefEntity::Rule).collect(),
    }
}

fn sort_key(e: &RefEntity) -> String {
    match e {
        RefEntity::Zone(z) => z.code.clone(),
        RefEntity::Checkpoint(c) => c.code.clone(),
        RefEntity::Route(r) => r.code.clone(),
        RefEntity::Rule(r) => r.name.clone(),
    }
}

/// Lists an estate's zones, checkpoints (with their tags), routes or rules. Every member
/// may read them (handsets get the same through pull).
#[utoipa::path(get, path = "/v1/estates/{id}/{collection}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"),
        ("collection" = String, Path, description = "zones | checkpoints | routes | rules")),
    responses((status = 200, body = ReferenceList),
    (status = 404, description = "estate not yours, or no such collection", body = Problem, content_type = "application/problem+json")))]
pub async fn list_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, collection)): Path<(String, String)>,
) -> AppResult<Json<ReferenceList>> {
    let estate = estate_of(&id)?;
    let collection = collection_of(&collection)?;
    caller.require_role(estate, &Role::ALL)?;
    let set = state.store.reference(estate).await?;
    let mut items = entities(&set, collection);
    items.sort_by_key(sort_key);
    Ok(Json(ReferenceList {
        items: items.iter().map(RefEntity::to_json).collect(),
    }))
}

/// One zone, checkpoint, route or rule.
#[utoipa::path(get, path = "/v1/estates/{id}/{collection}/{item}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"),
        ("collection" = String, Path, description = "zones | checkpoints | routes | rules"),
        ("item" = String, Path, description = "entity id")),
    responses((status = 200, description = "the entity", body = Object),
    (status = 404, description = "no such entity in your estates", body = Problem, content_type = "application/problem+json")))]
pub async fn get_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, collection, item)): Path<(String, String, String)>,
) -> AppResult<Json<Value>> {
    let estate = estate_of(&id)?;
    let collection = collection_of(&collection)?;
    caller.require_role(estate, &Role::ALL)?;
    let item: uuid::Uuid = item.parse().map_err(|_| AppError::NotFound)?;
    let set = state.store.reference(estate).await?;
    entities(&set, collection)
        .into_iter()
        .find(|e| e.id() == item)
        .map(|e| Json(e.to_json()))
        .ok_or(AppError::NotFound)
}

/// Reads a request body as an entity of `collection` with this id and estate, filling the
/// documented defaults (a checkpoint's radius 30 m and no tags; a route strict, 60 min).
fn read_entity(
    collection: RefCollection,
    estate: EstateId,
    id: uuid::Uuid,
    body: Value,
) -> AppResult<RefEntity> {
    let Value::Object(mut obj) = body else {
        return Err(invalid("", "the body must be a JSON object"));
    };
    obj.insert("id".into(), Value::String(id.to_string()));
    obj.insert("estate_id".into(), Value::String(estate.to_string()));
    let defaults: &[(&str, Value)] = match collection {
        RefCollection::Checkpoints => &[
            (
                "radius_m",
                Value::from(shared_core::patrol::DEFAULT_RADIUS_M),
            ),
            ("tags", Value::Array(vec![])),
        ],
        RefCollection::Routes => &[
            ("strict", Value::Bool(true)),
            ("expected_minutes", Value::from(60)),
        ],
        _ => &[],
    };
    for (k, v) in defaults {
        if obj.get(*k).is_none_or(Value::is_null) {
            obj.insert((*k).into(), v.clone());
        }
    }
    let bytes = serde_json::to_vec(&Value::Object(obj)).map_err(anyhow::Error::from)?;
    Ok(match collection {
        RefCollection::Zones => RefEntity::Zone(parse_json::<Zone>(&bytes)?),
        RefCollection::Checkpoints => RefEntity::Checkpoint(parse_json::<Checkpoint>(&bytes)?),
        RefCollection::Routes => RefEntity::Route(parse_json::<Route>(&bytes)?),
        RefCollection::Rules => RefEntity::Rule(parse_json::<Rule>(&bytes)?),
    })
}

/// Applies one operation; the entity as stored after it (None for a delete).
async fn apply_one(state: &AppState, estate: EstateId, op: RefOp) -> AppResult<Option<Value>> {
    let changes = state
        .store
        .apply_reference(estate, vec![op], now_ms())
        .await?
        .map_err(AppError::Reference)?;
    state.hub.notify(&[estate]);
    Ok(changes.into_iter().next().and_then(|c| c.data))
}

/// Creates a zone, checkpoint, route or rule (managers and administrators). The body is the
/// entity without `id` and `estate_id` (see the schemas `Zone`, `Checkpoint`, `Route`,
/// `Rule`). Tags are normalised (NFC UIDs to upper-case hex); codes and tags must be unique
/// in the estate. Handsets receive it through pull.
#[utoipa::path(post, path = "/v1/estates/{id}/{collection}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"),
        ("collection" = String, Path, description = "zones | checkpoints | routes | rules")),
    request_body(content = Object, description = "Zone | Checkpoint | Route | Rule without id and estate_id"),
    responses((status = 201, description = "created; the entity as stored", body = Object),
    (status = 403, description = "not a manager or admin of the estate", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "a code or tag already taken (`reference-conflict`, errors with codes)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "a bad field or a reference to something that does not exist (`invalid-reference` or `validation`)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, collection)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<Response> {
    let estate = estate_of(&id)?;
    let collection = collection_of(&collection)?;
    caller.require_role(estate, &EDITORS)?;
    let entity = read_entity(collection, estate, uuid::Uuid::now_v7(), body)?;
    let stored = apply_one(&state, estate, RefOp::Put(entity)).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// Creates or replaces the entity with this id (managers and administrators).
#[utoipa::path(put, path = "/v1/estates/{id}/{collection}/{item}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"),
        ("collection" = String, Path, description = "zones | checkpoints | routes | rules"),
        ("item" = String, Path, description = "entity id (a UUID; a new one creates)")),
    request_body(content = Object, description = "Zone | Checkpoint | Route | Rule without id and estate_id"),
    responses((status = 200, description = "replaced; the entity as stored", body = Object),
    (status = 201, description = "created", body = Object),
    (status = 403, description = "not a manager or admin of the estate", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "a code or tag already taken", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "a bad field or reference", body = Problem, content_type = "application/problem+json")))]
pub async fn put_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, collection, item)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<Response> {
    let estate = estate_of(&id)?;
    let collection = collection_of(&collection)?;
    caller.require_role(estate, &EDITORS)?;
    let item: uuid::Uuid = item
        .parse()
        .map_err(|_| invalid("item", "must be a UUID"))?;
    let existed = entities(&state.store.reference(estate).await?, collection)
        .iter()
        .any(|e| e.id() == item);
    let entity = read_entity(collection, estate, item, body)?;
    let stored = apply_one(&state, estate, RefOp::Put(entity)).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(stored)).into_response())
}

/// Retires a zone, checkpoint, route or rule (managers and administrators): handsets get a
/// `delete` tombstone. Refused (409 `in_use`) while something still refers to it. Past
/// coverage is recomputed without a deleted rule.
#[utoipa::path(delete, path = "/v1/estates/{id}/{collection}/{item}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"),
        ("collection" = String, Path, description = "zones | checkpoints | routes | rules"),
        ("item" = String, Path, description = "entity id")),
    responses((status = 204, description = "retired"),
    (status = 404, description = "no such entity", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "still in use", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, collection, item)): Path<(String, String, String)>,
) -> AppResult<StatusCode> {
    let estate = estate_of(&id)?;
    let collection = collection_of(&collection)?;
    caller.require_role(estate, &EDITORS)?;
    let item: uuid::Uuid = item.parse().map_err(|_| AppError::NotFound)?;
    apply_one(
        &state,
        estate,
        RefOp::Delete {
            collection,
            id: item,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstatePatch {
    /// IANA time zone, e.g. `Asia/Shanghai`: rule windows are in it.
    pub timezone: Option<String>,
}

/// Changes the estate's time zone (managers and administrators). Coverage of past periods
/// is recomputed in the new zone.
#[utoipa::path(patch, path = "/v1/estates/{id}", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), request_body = EstatePatch,
    responses((status = 200, body = EstateRecord),
    (status = 403, description = "not a manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "unknown time zone", body = Problem, content_type = "application/problem+json")))]
pub async fn update_estate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<EstatePatch>,
) -> AppResult<Json<EstateRecord>> {
    let estate = estate_of(&id)?;
    caller.require_role(estate, &EDITORS)?;
    let Some(tz) = p.timezone else {
        return Err(invalid("timezone", "required"));
    };
    let tz = tz.trim();
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Err(invalid(
            "timezone",
            format!("{tz:?} is not an IANA time zone such as Asia/Shanghai"),
        ));
    }
    let rec = state
        .store
        .set_estate_timezone(estate, tz, now_ms())
        .await?;
    state.hub.notify(&[estate]);
    Ok(Json(rec))
}

// ------------------------------------------------------------------ periods

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// Start: RFC 3339, or a local date `2026-11-21` (its midnight in the estate's zone).
    /// Default: 24 hours before `to`.
    pub from: Option<String>,
    /// End (exclusive), same forms; default now.
    pub to: Option<String>,
    /// coverage: `checkpoint | zone | route | guard | hour | day`.
    pub group_by: Option<String>,
    /// slots: statuses, comma separated (`missed,late` by default; `all`).
    pub status: Option<String>,
    /// slots: at most this many, earliest first (default 1,000, at most 10,000).
    pub limit: Option<usize>,
    /// slots: only this checkpoint's (its id).
    pub checkpoint: Option<String>,
}

fn parse_instant(s: &str, tz: chrono_tz::Tz, path: &str) -> AppResult<i64> {
    if let Some(t) = Timestamp::parse(s) {
        return Ok(t.0);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(local_day_bounds(d, tz).0);
    }
    Err(invalid(
        path,
        format!("{s:?} is neither an RFC 3339 time nor a date YYYY-MM-DD"),
    ))
}

/// The period `[from, to)` asked for, checked: from before to, at most 92 days.
fn period(p: &PeriodParams, tz: chrono_tz::Tz, now: i64) -> AppResult<(i64, i64)> {
    let to = match &p.to {
        Some(s) => parse_instant(s, tz, "to")?,
        None => now,
    };
    let from = match &p.from {
        Some(s) => parse_instant(s, tz, "from")?,
        None => to - 86_400_000,
    };
    if from >= to {
        return Err(invalid("from", "must be before to"));
    }
    if to - from > MAX_PERIOD_MS {
        return Err(invalid("to", "a period is at most 92 days"));
    }
    Ok((from, to))
}

pub(crate) async fn load_period(
    state: &AppState,
    caller: &Caller,
    id: &str,
    p: &PeriodParams,
    counts: bool,
) -> AppResult<PeriodData> {
    let estate = estate_of(id)?;
    caller.require_role(estate, &OVERSEERS)?;
    let reference = state.store.reference(estate).await?;
    let now = now_ms();
    let (from, to) = period(p, zone_of(&reference), now)?;
    Ok(PeriodData::load_with(&state.store, reference, from, to, now, counts).await?)
}

fn group_by(p: &PeriodParams) -> AppResult<Option<GroupBy>> {
    p.group_by
        .as_deref()
        .map(|g| {
            GroupBy::from_str(g).map_err(|_| {
                invalid(
                    "group_by",
                    "must be one of checkpoint, zone, route, guard, hour, day",
                )
            })
        })
        .transpose()
}

// ------------------------------------------------------------------ coverage

/// Coverage over a period, from the guards' scans by trusted time: totals (expected,
/// on_time, late, early, missed, excused, pending; coverage, strict and verified coverage)
/// and, with `group_by`, one row per checkpoint, zone, route, guard, local hour or day.
/// Count rules' windows (≥ N complete runs) are listed. `Accept: text/csv` (or
/// `/coverage.csv`) gives the rows as CSV. Supervisors, managers, administrators.
#[utoipa::path(get, path = "/v1/estates/{id}/coverage", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), PeriodParams),
    responses((status = 200, description = "the report; or CSV with Accept: text/csv", content(
        (CoverageReport = "application/json"), (String = "text/csv"))),
    (status = 403, description = "not a supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad from, to or group_by", body = Problem, content_type = "application/problem+json")))]
pub async fn get_coverage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<PeriodParams>,
) -> AppResult<Response> {
    let g = group_by(&p)?;
    let data = load_period(&state, &caller, &id, &p, true).await?;
    let report = data.report(g);
    if wants_csv(&headers) {
        return Ok(csv_response("coverage.csv", coverage_csv(&report)));
    }
    Ok(Json(report).into_response())
}

/// The coverage report as CSV: a `total` row, then one per group.
#[utoipa::path(get, path = "/v1/estates/{id}/coverage.csv", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), PeriodParams),
    responses((status = 200, description = "group,key,label,expected,on_time,late,early,missed,excused,pending,verified,coverage,strict_coverage,verified_coverage,max_gap_minutes", body = String, content_type = "text/csv")))]
pub async fn export_coverage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PeriodParams>,
) -> AppResult<Response> {
    let g = group_by(&p)?;
    let data = load_period(&state, &caller, &id, &p, true).await?;
    Ok(csv_response("coverage.csv", coverage_csv(&data.report(g))))
}

fn ratio(r: Option<f64>) -> String {
    r.map(|x| format!("{x:.4}")).unwrap_or_default()
}

fn coverage_csv(r: &CoverageReport) -> String {
    let mut out = String::new();
    csv_row(
        &[
            "group",
            "key",
            "label",
            "expected",
            "on_time",
            "late",
            "early",
            "missed",
            "excused",
            "pending",
            "verified",
            "coverage",
            "strict_coverage",
            "verified_coverage",
            "max_gap_minutes",
        ]
        .map(str::to_owned),
        &mut out,
    );
    let group = r
        .group_by
        .map(|g| {
            serde_json::to_value(g)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut row = |g: &str,
                   key: &str,
                   label: &str,
                   c: &shared_core::patrol::coverage::Counts,
                   gap: Option<f64>| {
        csv_row(
            &[
                g.to_owned(),
                key.to_owned(),
                label.to_owned(),
                c.expected.to_string(),
                c.on_time.to_string(),
                c.late.to_string(),
                c.early.to_string(),
                c.missed.to_string(),
                c.excused.to_string(),
                c.pending.to_string(),
                c.verified.to_string(),
                ratio(c.coverage),
                ratio(c.strict_coverage),
                ratio(c.verified_coverage),
                gap.map(|m| format!("{m:.1}")).unwrap_or_default(),
            ],
            &mut out,
        );
    };
    row("total", "", "total", &r.totals, None);
    for g in &r.groups {
        row(
            &group,
            g.key.as_deref().unwrap_or(""),
            &g.label,
            &g.counts,
            g.max_gap_minutes,
        );
    }
    out
}

// ------------------------------------------------------------------ slots

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanView {
    pub id: FactId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// When it really happened (DESIGN §4).
    pub trusted_at: Timestamp,
    /// `verified` (monotonic age) or `estimated`.
    pub clock_trust: String,
    pub flags: Vec<ScanFlag>,
    /// Photos taken with the scan (photo facts whose subject is this scan), as received.
    /// The bytes: `GET /v1/photos/{sha256}`.
    pub photos: Vec<ScanPhoto>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanPhoto {
    /// The photo fact's id.
    pub id: FactId,
    pub sha256: String,
    pub role: String,
    pub mime: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    pub rule_id: RuleId,
    pub rule_name: String,
    pub checkpoint_id: CheckpointId,
    pub checkpoint_code: String,
    pub checkpoint_name: String,
    pub zone_id: Option<ZoneId>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// After this a slot without a visit is missed.
    pub grace_end: Timestamp,
    pub status: SlotStatus,
    /// The scan that settled it (on time, late or early).
    pub scan: Option<ScanView>,
    pub excuse: Option<Excuse>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlotList {
    pub from: Timestamp,
    pub to: Timestamp,
    pub timezone: String,
    /// Earliest first.
    pub slots: Vec<SlotView>,
    /// More slots matched than `limit`.
    pub truncated: bool,
}

fn slot_view(data: &PeriodData, s: &SlotResult) -> SlotView {
    let cp = data
        .reference
        .checkpoints
        .iter()
        .find(|c| c.id == s.spec.checkpoint_id);
    let rule = data.reference.rules.iter().find(|r| r.id == s.spec.rule_id);
    SlotView {
        rule_id: s.spec.rule_id,
        rule_name: rule.map(|r| r.name.clone()).unwrap_or_default(),
        checkpoint_id: s.spec.checkpoint_id,
        checkpoint_code: cp.map(|c| c.code.clone()).unwrap_or_default(),
        checkpoint_name: cp.map(|c| c.name.clone()).unwrap_or_default(),
        zone_id: cp.and_then(|c| c.zone_id),
        start: Timestamp(s.spec.start),
        end: Timestamp(s.spec.end),
        grace_end: Timestamp(s.spec.end + s.spec.grace_ms),
        status: s.status,
        scan: s.scan.and_then(|i| {
            let sc = data.scans.get(i)?;
            Some(ScanView {
                id: sc.id,
                user_id: sc.user_id,
                device_id: sc.device_id,
                trusted_at: Timestamp(sc.trusted_at),
                clock_trust: if sc.verified { "verified" } else { "estimated" }.into(),
                flags: data.flags.get(i).cloned().unwrap_or_default(),
                photos: vec![],
            })
        }),
        excuse: s.excuse.clone(),
    }
}

/// Fills each listed scan's photos, in one query.
async fn attach_photos(
    state: &AppState,
    estate: EstateId,
    slots: &mut [SlotView],
) -> AppResult<()> {
    let ids: Vec<String> = slots
        .iter()
        .filter_map(|s| s.scan.as_ref().map(|sc| sc.id.to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut by_scan: std::collections::HashMap<String, Vec<ScanPhoto>> = Default::default();
    for p in state.store.photos_of_subjects(estate, "scan", &ids).await? {
        by_scan.entry(p.subject_id).or_default().push(ScanPhoto {
            id: p.id,
            sha256: p.sha256,
            role: p.role,
            mime: p.mime,
        });
    }
    for scan in slots.iter_mut().filter_map(|s| s.scan.as_mut()) {
        if let Some(photos) = by_scan.get(&scan.id.to_string()) {
            scan.photos = photos
                .iter()
                .map(|p| ScanPhoto {
                    id: p.id,
                    sha256: p.sha256.clone(),
                    role: p.role.clone(),
                    mime: p.mime.clone(),
                })
                .collect();
        }
    }
    Ok(())
}

fn statuses(p: &PeriodParams) -> AppResult<Vec<SlotStatus>> {
    let s = p.status.as_deref().unwrap_or("missed,late");
    if s == "all" {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|x| {
            SlotStatus::from_str(x.trim()).map_err(|_| {
                invalid(
                    "status",
                    format!("{x:?}: use on_time, late, early, missed, excused, pending or all"),
                )
            })
        })
        .collect()
}

async fn slot_list(
    state: &AppState,
    caller: &Caller,
    id: &str,
    p: &PeriodParams,
) -> AppResult<SlotList> {
    let wanted = statuses(p)?;
    let limit = p.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(invalid("limit", "must be from 1 to 10000"));
    }
    let checkpoint = p
        .checkpoint
        .as_deref()
        .map(|c| {
            c.parse::<CheckpointId>()
                .map_err(|_| invalid("checkpoint", "must be a checkpoint id"))
        })
        .transpose()?;
    let data = load_period(state, caller, id, p, false).await?;
    let eval = data.evaluate();
    let mut matching = eval.slots.iter().filter(|s| {
        (wanted.is_empty() || wanted.contains(&s.status))
            && checkpoint.is_none_or(|c| s.spec.checkpoint_id == c)
    });
    let mut slots: Vec<SlotView> = matching
        .by_ref()
        .take(limit)
        .map(|s| slot_view(&data, s))
        .collect();
    let truncated = matching.next().is_some();
    attach_photos(state, data.reference.estate_id, &mut slots).await?;
    Ok(SlotList {
        from: Timestamp(data.from),
        to: Timestamp(data.to),
        timezone: data.reference.timezone.clone(),
        slots,
        truncated,
    })
}

/// Visit slots of a period (missed and late by default), each with its checkpoint, window,
/// grace and the scan that settled it (trusted time, clock trust, anomaly flags).
/// `Accept: text/csv` or `/slots.csv` for CSV.
#[utoipa::path(get, path = "/v1/estates/{id}/slots", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), PeriodParams),
    responses((status = 200, description = "the slots; or CSV", content((SlotList = "application/json"), (String = "text/csv"))),
    (status = 403, description = "not a supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad period, status or limit", body = Problem, content_type = "application/problem+json")))]
pub async fn list_slots(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<PeriodParams>,
) -> AppResult<Response> {
    let list = slot_list(&state, &caller, &id, &p).await?;
    if wants_csv(&headers) {
        return Ok(csv_response("slots.csv", slots_csv(&list)));
    }
    Ok(Json(list).into_response())
}

/// The slots as CSV.
#[utoipa::path(get, path = "/v1/estates/{id}/slots.csv", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), PeriodParams),
    responses((status = 200, description = "start,end,grace_end,status,rule,checkpoint_code,checkpoint_name,scan_id,scan_trusted_at,clock_trust,flags,guard,excuse_reason", body = String, content_type = "text/csv")))]
pub async fn export_slots(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PeriodParams>,
) -> AppResult<Response> {
    let list = slot_list(&state, &caller, &id, &p).await?;
    Ok(csv_response("slots.csv", slots_csv(&list)))
}

fn slots_csv(list: &SlotList) -> String {
    let mut out = String::new();
    csv_row(
        &[
            "start",
            "end",
            "grace_end",
            "status",
            "rule",
            "checkpoint_code",
            "checkpoint_name",
            "scan_id",
            "scan_trusted_at",
            "clock_trust",
            "flags",
            "guard",
            "excuse_reason",
        ]
        .map(str::to_owned),
        &mut out,
    );
    for s in &list.slots {
        let scan = s.scan.as_ref();
        csv_row(
            &[
                s.start.to_rfc3339(),
                s.end.to_rfc3339(),
                s.grace_end.to_rfc3339(),
                s.status.as_str().to_owned(),
                s.rule_name.clone(),
                s.checkpoint_code.clone(),
                s.checkpoint_name.clone(),
                scan.map(|x| x.id.to_string()).unwrap_or_default(),
                scan.map(|x| x.trusted_at.to_rfc3339()).unwrap_or_default(),
                scan.map(|x| x.clock_trust.clone()).unwrap_or_default(),
                scan.map(|x| {
                    x.flags
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .unwrap_or_default(),
                scan.map(|x| x.user_id.to_string()).unwrap_or_default(),
                s.excuse
                    .as_ref()
                    .map(|e| e.reason.clone())
                    .unwrap_or_default(),
            ],
            &mut out,
        );
    }
    out
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcuseRequest {
    pub rule_id: RuleId,
    pub checkpoint_id: CheckpointId,
    /// The slot's start, as listed by `/slots`.
    pub slot_start: Timestamp,
    /// Why the visit was not needed or not possible (required).
    pub reason: String,
}

/// Excuses one slot with a reason (supervisors, managers, administrators): it counts as
/// `excused`, out of the coverage denominators, in every report from now on.
#[utoipa::path(post, path = "/v1/estates/{id}/slots/excuse", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), request_body = ExcuseRequest,
    responses((status = 201, body = Excuse),
    (status = 403, description = "not a supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such slot (rule, checkpoint and start must name one)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "already excused", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "no reason", body = Problem, content_type = "application/problem+json")))]
pub async fn excuse_slot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ExcuseRequest>,
) -> AppResult<(StatusCode, Json<Excuse>)> {
    let estate = estate_of(&id)?;
    caller.require_role(estate, &OVERSEERS)?;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(invalid("reason", "required: say why the visit is excused"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(invalid(
            "reason",
            format!("at most {MAX_REASON} characters"),
        ));
    }
    let reference = state.store.reference(estate).await?;
    let start = req.slot_start.0;
    let exists = slots::expand_slots(&reference, zone_of(&reference), start, start + 1)
        .iter()
        .any(|s| {
            s.rule_id == req.rule_id && s.checkpoint_id == req.checkpoint_id && s.start == start
        });
    if !exists {
        return Err(AppError::NotFound);
    }
    let excuse = Excuse {
        rule_id: req.rule_id,
        checkpoint_id: req.checkpoint_id,
        slot_start: req.slot_start,
        reason: reason.to_owned(),
        by: caller.user_id,
        at: Timestamp(now_ms()),
    };
    if !state.store.put_excuse(estate, &excuse).await? {
        return Err(AppError::Conflict("this slot is already excused".into()));
    }
    Ok((StatusCode::CREATED, Json(excuse)))
}

// ------------------------------------------------------------------ heat map

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeatmapParams {
    /// The local date, `2026-11-21`; default today in the estate's zone.
    pub date: Option<String>,
}

async fn load_heatmap(
    state: &AppState,
    caller: &Caller,
    id: &str,
    p: &HeatmapParams,
) -> AppResult<Heatmap> {
    let estate = estate_of(id)?;
    caller.require_role(estate, &OVERSEERS)?;
    let reference = state.store.reference(estate).await?;
    let tz = zone_of(&reference);
    let now = now_ms();
    let date = match &p.date {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| invalid("date", format!("{d:?} is not a date YYYY-MM-DD")))?,
        None => {
            use chrono::TimeZone;
            tz.timestamp_millis_opt(now)
                .single()
                .map(|t| t.date_naive())
                .ok_or_else(|| anyhow::anyhow!("now is not a time"))?
        }
    };
    let (from, to) = local_day_bounds(date, tz);
    let data = PeriodData::load_with(&state.store, reference, from, to, now, false).await?;
    Ok(data.heatmap(date))
}

/// The checkpoint × hour matrix of one local day: each cell the worst status of the slots
/// starting in that hour (missed, late, early, pending, excused, on time) with counts.
/// 23 or 25 columns on a daylight-saving change. `Accept: text/csv` or `/heatmap.csv`.
#[utoipa::path(get, path = "/v1/estates/{id}/heatmap", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), HeatmapParams),
    responses((status = 200, description = "the heat map; or CSV", content((Heatmap = "application/json"), (String = "text/csv"))),
    (status = 403, description = "not a supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad date", body = Problem, content_type = "application/problem+json")))]
pub async fn get_heatmap(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<HeatmapParams>,
) -> AppResult<Response> {
    let h = load_heatmap(&state, &caller, &id, &p).await?;
    if wants_csv(&headers) {
        return Ok(csv_response("heatmap.csv", heatmap_csv(&h)));
    }
    Ok(Json(h).into_response())
}

/// The heat map as CSV: one row per checkpoint, one column per hour (the worst status).
#[utoipa::path(get, path = "/v1/estates/{id}/heatmap.csv", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), HeatmapParams),
    responses((status = 200, description = "code,name,class,00,01,…", body = String, content_type = "text/csv")))]
pub async fn export_heatmap(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<HeatmapParams>,
) -> AppResult<Response> {
    let h = load_heatmap(&state, &caller, &id, &p).await?;
    Ok(csv_response("heatmap.csv", heatmap_csv(&h)))
}

fn heatmap_csv(h: &Heatmap) -> String {
    let mut out = String::new();
    let mut head = vec!["code".to_owned(), "name".to_owned(), "class".to_owned()];
    head.extend(h.hours.iter().cloned());
    csv_row(&head, &mut out);
    for r in &h.rows {
        let mut cells = vec![r.code.clone(), r.name.clone(), r.class.as_str().to_owned()];
        cells.extend(
            r.cells
                .iter()
                .map(|c| c.status.map(|s| s.as_str().to_owned()).unwrap_or_default()),
        );
        csv_row(&cells, &mut out);
    }
    out
}

// ------------------------------------------------------------------ runs

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    /// Runs started in the period, newest first.
    pub runs: Vec<Run>,
}

/// Patrol runs started in a period: status (in progress, completed, incomplete, aborted),
/// checkpoints scanned of the route's, those missed, order deviations.
#[utoipa::path(get, path = "/v1/estates/{id}/runs", tag = "patrol", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), PeriodParams),
    responses((status = 200, body = RunList),
    (status = 403, description = "not a supervisor, manager or admin", body = Problem, content_type = "application/problem+json")))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PeriodParams>,
) -> AppResult<Json<RunList>> {
    let estate = estate_of(&id)?;
    caller.require_role(estate, &OVERSEERS)?;
    let reference = state.store.reference(estate).await?;
    let (from, to) = period(&p, zone_of(&reference), now_ms())?;
    // A run's events and scans may fall a little outside the period it started in.
    let margin = 12 * 3_600_000;
    let events = state
        .store
        .run_events_between(estate, from - margin, to + margin)
        .await?;
    let scans = state
        .store
        .scans_between(estate, from - margin, to + margin)
        .await?;
    let runs = runs::fold_runs(&events, &scans, &reference)
        .into_iter()
        .filter(|r| (from..to).contains(&r.started_at.0))
        .collect();
    Ok(Json(RunList { runs }))
}
