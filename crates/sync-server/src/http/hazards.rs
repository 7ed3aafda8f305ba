//! The hazard tracker (DESIGN §7): report and act on tickets online, list and export them,
//! a ticket with its timeline, the printable rectification notice (整改通知单), statistics,
//! the estate's hazard policy and the events held without a report.

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::http::csv::{csv_row, wants_csv};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::AppState;
use crate::services::hazards::{self as svc, PhotoIn, Posted};
use crate::storage::{HazardQuery, HeldEvent, ZoneFilter};
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared_core::hazard::{
    Grade, HazardPolicy, HazardState, HazardStats, Location, RectificationPlan, Ticket,
};
use shared_core::wire::Timestamp;
use shared_core::{DeviceId, EstateId, FactId, HazardId, Role, UserId, ZoneId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hazards", get(list_hazards).post(report_hazard))
        .route("/v1/hazards.csv", get(export_hazards))
        .route("/v1/hazards/{id}", get(get_hazard))
        .route("/v1/hazards/{id}/events", post(post_hazard_event))
        .route("/v1/hazards/{id}/notice", get(hazard_notice))
        .route("/v1/estates/{id}/hazard-stats", get(hazard_stats))
        .route(
            "/v1/estates/{id}/hazard-policy",
            get(get_hazard_policy).put(put_hazard_policy),
        )
        .route("/v1/estates/{id}/hazard-events/held", get(held_events))
}

const OVERSEERS: [Role; 3] = [Role::Supervisor, Role::Manager, Role::Admin];

/// Default and largest page of the tracker list.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

// ---------------------------------------------------------------- bodies

/// A ticket with its full timeline, and whether it is overdue now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// Past its due date and neither closed nor cancelled, now.
    pub overdue: bool,
}

impl TicketView {
    fn new(ticket: Ticket, now: i64) -> Self {
        let overdue = ticket.is_overdue(now);
        TicketView { ticket, overdue }
    }
}

/// One page of the tracker list, newest report first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HazardPage {
    /// Tickets without their timelines (`GET /v1/hazards/{id}` has it).
    pub hazards: Vec<TicketView>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<String>,
}

/// `POST /v1/hazards`: a report's fields as a handset puts them in a `hazard_event`'s
/// `data`, plus the event id and photos. Unknown fields are kept in the event's data.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReportRequest {
    /// Event id (UUIDv7) for idempotent retries; generated when absent.
    pub id: Option<FactId>,
    /// The new hazard's id; when absent, the event id.
    pub hazard_id: Option<HazardId>,
    pub estate_id: EstateId,
    /// `report`, or absent.
    pub action: Option<String>,
    pub grade: Grade,
    pub category: String,
    pub title: String,
    pub description: Option<String>,
    pub location: Option<Location>,
    /// The scan or finding fact it came from.
    pub source_fact_id: Option<FactId>,
    /// A major hazard's rectification plan may come with the report.
    pub plan: Option<RectificationPlan>,
    /// Metadata of the photos (a `before` photo where the estate requires one).
    pub photos: Option<Vec<PhotoIn>>,
}

/// `POST /v1/hazards/{id}/events`: an action and its fields, as in a `hazard_event`'s
/// `data` (`hazard_id` and `estate_id` come from the ticket).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EventRequest {
    /// Event id (UUIDv7) for idempotent retries; generated when absent.
    pub id: Option<FactId>,
    /// `edit`, `assign`, `start`, `plan`, `request_extension`, `approve_extension`,
    /// `deny_extension`, `submit_fix`, `verify_pass`, `verify_fail`, `cancel`, `reopen`,
    /// `comment`.
    pub action: String,
    /// edit
    pub grade: Option<Grade>,
    /// edit
    pub category: Option<String>,
    /// edit
    pub title: Option<String>,
    /// edit
    pub description: Option<String>,
    /// edit
    pub location: Option<Location>,
    /// assign (an engineer of the estate)
    pub assignee: Option<UserId>,
    /// assign (absent: the grade's default), request_extension (required),
    /// approve_extension (absent: the requested date)
    pub due_at: Option<Timestamp>,
    /// plan (required)
    pub plan: Option<RectificationPlan>,
    /// request_extension, verify_fail, cancel, reopen (required); deny_extension
    pub reason: Option<String>,
    /// submit_fix, verify_pass
    pub note: Option<String>,
    /// comment (required)
    pub text: Option<String>,
    /// Evidence: `after` to submit a fix, `verification` to pass.
    pub photos: Option<Vec<PhotoIn>>,
}

// ---------------------------------------------------------------- post

fn posted(p: Posted, location: bool) -> Response {
    let now = now_ms();
    let (status, t) = match p {
        Posted::Created(t) => (StatusCode::CREATED, t),
        Posted::Duplicate(t) => (StatusCode::OK, t),
    };
    let loc = format!("/v1/hazards/{}", t.id);
    let mut resp = (status, Json(TicketView::new(t, now))).into_response();
    if location {
        if let Ok(v) = HeaderValue::from_str(&loc) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    resp
}

/// Report a hazard online. Read like a pushed `report` event; refusals carry the push's
/// rejection code (`code`) and a `/problems/<code>` type.
#[utoipa::path(post, path = "/v1/hazards", tag = "hazards", security(("bearer" = [])), request_body = ReportRequest, responses(
    (status = 201, description = "reported; Location names the ticket", body = TicketView, headers(("Location" = String, description = "/v1/hazards/{id}"))),
    (status = 200, description = "the same event id and content again: the ticket as it is", body = TicketView),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "role-forbidden", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "already-reported (the hazard id is taken), id-conflict (the event id is taken by other content)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "validation, missing-field, wrong-type, invalid-value, invalid-timestamp, invalid-text, evidence-required, plan-required", body = Problem, content_type = "application/problem+json")))]
pub async fn report_hazard(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<Response> {
    let p = svc::report(&state, &caller, body).await?;
    Ok(posted(p, true))
}

/// Take an action on a ticket: the same validation as a pushed `hazard_event`, folded at
/// once. An event the fold refuses is not stored; the problem carries its code.
#[utoipa::path(post, path = "/v1/hazards/{id}/events", tag = "hazards", security(("bearer" = [])),
    params(("id" = HazardId, Path, description = "hazard id")), request_body = EventRequest, responses(
    (status = 201, description = "stored: the ticket after it", body = TicketView),
    (status = 200, description = "the same event id and content again: the ticket as it is", body = TicketView),
    (status = 403, description = "role-forbidden, not-assignee, self-verification", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such hazard, or not one you may see", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "invalid-transition, already-reported, id-conflict", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "validation, missing-field, wrong-type, invalid-value, invalid-timestamp, invalid-text, evidence-required, plan-required, due-in-past, unknown-assignee, not-reported", body = Problem, content_type = "application/problem+json")))]
pub async fn post_hazard_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<Response> {
    let id: HazardId = id.parse().map_err(|_| AppError::NotFound)?;
    let p = svc::post_event(&state, &caller, id, body).await?;
    Ok(posted(p, false))
}

// ---------------------------------------------------------------- list and export

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HazardListParams {
    /// Only this estate (default: every estate of yours).
    #[param(value_type = Option<EstateId>)]
    pub estate_id: Option<String>,
    /// reported, assigned, in_rectification, extension_requested, pending_verification,
    /// closed, cancelled.
    #[param(value_type = Option<HazardState>)]
    pub state: Option<String>,
    /// general or major.
    #[param(value_type = Option<Grade>)]
    pub grade: Option<String>,
    pub category: Option<String>,
    /// Assigned to this user.
    #[param(value_type = Option<UserId>)]
    pub assignee: Option<String>,
    /// Located in this zone: the zone itself, or one of its checkpoints.
    #[param(value_type = Option<ZoneId>)]
    pub zone: Option<String>,
    /// true: only overdue tickets; false: only tickets that are not.
    #[param(value_type = Option<bool>)]
    pub overdue: Option<String>,
    /// Reported at or after (RFC 3339).
    #[param(value_type = Option<Timestamp>)]
    pub from: Option<String>,
    /// Reported before (RFC 3339).
    #[param(value_type = Option<Timestamp>)]
    pub to: Option<String>,
    /// Page size, default 100, at most 1,000 (ignored by the CSV export, which is complete).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The previous page's `next_before` (ignored by the CSV export).
    pub before: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

/// Parses an optional RFC 3339 query value into epoch ms.
fn timestamp_param(name: &str, v: &Option<String>, errors: &mut Vec<FieldError>) -> Option<i64> {
    let s = present(v)?;
    match Timestamp::parse(s) {
        Some(t) => Some(t.0),
        None => {
            errors.push(field(
                name,
                format!("{s:?} is not an RFC 3339 timestamp such as 2026-11-22T00:00:00+08:00"),
            ));
            None
        }
    }
}

/// Fills a zone filter's checkpoints from the reference data of the estates in scope.
async fn zone_checkpoints(state: &AppState, q: &mut HazardQuery) -> AppResult<()> {
    let Some(z) = q.zone.as_mut() else {
        return Ok(());
    };
    for e in q.full.iter().chain(&q.engineer).chain(&q.reporter) {
        let reference = state.store.reference(*e).await?;
        z.checkpoints.extend(
            reference
                .checkpoints
                .iter()
                .filter(|c| c.zone_id.map(|id| id.0) == Some(z.zone_id))
                .map(|c| c.id.0),
        );
    }
    Ok(())
}

/// The list's scope and filters, from the query. An `estate_id` that is not yours is 404.
fn hazard_query(caller: &Caller, p: &HazardListParams, now: i64) -> AppResult<HazardQuery> {
    let estates: Vec<EstateId> = match present(&p.estate_id) {
        Some(s) => {
            let e: EstateId = s.parse().map_err(|_| AppError::NotFound)?;
            if !caller.active.contains(&e) {
                return Err(AppError::NotFound);
            }
            vec![e]
        }
        None => caller.active.iter().copied().collect(),
    };
    let mut q = svc::list_scope(caller, &estates);
    let mut errors = Vec::new();
    if let Some(s) = present(&p.state) {
        match s.parse::<HazardState>() {
            Ok(v) => q.state = Some(v),
            Err(()) => errors.push(field(
                "state",
                format!(
                    "unknown state {s:?}; one of {}",
                    HazardState::ALL.map(|x| x.as_str()).join(", ")
                ),
            )),
        }
    }
    if let Some(s) = present(&p.grade) {
        match s.parse::<Grade>() {
            Ok(v) => q.grade = Some(v),
            Err(()) => errors.push(field(
                "grade",
                format!("unknown grade {s:?}; one of general, major"),
            )),
        }
    }
    q.category = present(&p.category).map(str::to_owned);
    if let Some(s) = present(&p.assignee) {
        match s.parse::<UserId>() {
            Ok(v) => q.assignee = Some(v),
            Err(_) => errors.push(field("assignee", format!("{s:?} is not a user id"))),
        }
    }
    if let Some(s) = present(&p.zone) {
        match s.parse::<uuid::Uuid>() {
            Ok(v) => {
                q.zone = Some(ZoneFilter {
                    zone_id: v,
                    checkpoints: vec![],
                })
            }
            Err(_) => errors.push(field("zone", format!("{s:?} is not a zone id"))),
        }
    }
    if let Some(s) = present(&p.overdue) {
        match s {
            "true" => q.overdue = Some(true),
            "false" => q.overdue = Some(false),
            _ => errors.push(field("overdue", "must be true or false")),
        }
    }
    q.from = timestamp_param("from", &p.from, &mut errors);
    q.to = timestamp_param("to", &p.to, &mut errors);
    if let (Some(f), Some(t)) = (q.from, q.to) {
        if f > t {
            errors.push(field("to", "must not be before from"));
        }
    }
    q.limit = match present(&p.limit) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(field("limit", format!("must be from 1 to {MAX_LIMIT}")));
                DEFAULT_LIMIT
            }
        },
    };
    if let Some(s) = present(&p.before) {
        match svc::decode_before(s) {
            Some(k) => q.before = Some(k),
            None => errors.push(field(
                "before",
                "not a next_before this server gave; pass it back unchanged",
            )),
        }
    }
    q.now = now;
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The tracker list, newest report first. With `Accept: text/csv`, the complete list as
/// CSV (as at `/v1/hazards.csv`).
#[utoipa::path(get, path = "/v1/hazards", tag = "hazards", security(("bearer" = [])), params(HazardListParams), responses(
    (status = 200, description = "one page; or, with Accept: text/csv, every matching ticket as CSV", content(
        (HazardPage = "application/json"),
        (String = "text/csv"))),
    (status = 404, description = "estate_id not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "a bad filter (errors[].path names it)", body = Problem, content_type = "application/problem+json")))]
pub async fn list_hazards(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<HazardListParams>,
) -> AppResult<Response> {
    let now = now_ms();
    let mut q = hazard_query(&caller, &p, now)?;
    zone_checkpoints(&state, &mut q).await?;
    if wants_csv(&headers) {
        return export(&state, q).await;
    }
    let tickets = if q.full.is_empty() && q.engineer.is_empty() && q.reporter.is_empty() {
        Vec::new()
    } else {
        state.store.list_hazards(&q).await?
    };
    let next_before = (tickets.len() == q.limit)
        .then(|| {
            tickets
                .last()
                .map(|t| svc::encode_before(t.reported_at.0, t.id))
        })
        .flatten();
    let page = HazardPage {
        hazards: tickets
            .into_iter()
            .map(|t| TicketView::new(t, now))
            .collect(),
        next_before,
    };
    let mut resp = Json(page).into_response();
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(resp)
}

/// The tracker list as CSV: every ticket matching the filters (no paging), newest first.
#[utoipa::path(get, path = "/v1/hazards.csv", tag = "hazards", security(("bearer" = [])), params(HazardListParams), responses(
    (status = 200, description = "code,id,estate_id,state,grade,category,title,reporter,reported_at,assignee,due_at,overdue,closed_at,reopen_count", body = String, content_type = "text/csv"),
    (status = 404, description = "estate_id not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "a bad filter", body = Problem, content_type = "application/problem+json")))]
pub async fn export_hazards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<HazardListParams>,
) -> AppResult<Response> {
    let mut q = hazard_query(&caller, &p, now_ms())?;
    zone_checkpoints(&state, &mut q).await?;
    export(&state, q).await
}

pub const CSV_COLUMNS: [&str; 14] = [
    "code",
    "id",
    "estate_id",
    "state",
    "grade",
    "category",
    "title",
    "reporter",
    "reported_at",
    "assignee",
    "due_at",
    "overdue",
    "closed_at",
    "reopen_count",
];

pub fn csv_ticket(t: &Ticket, now: i64, out: &mut String) {
    let ts = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    csv_row(
        &[
            t.code.clone(),
            t.id.to_string(),
            t.estate_id.to_string(),
            t.state.as_str().to_owned(),
            t.grade.as_str().to_owned(),
            t.category.clone(),
            t.title.clone(),
            t.reporter.to_string(),
            t.reported_at.to_rfc3339(),
            t.assignee.map(|a| a.to_string()).unwrap_or_default(),
            t.due_at.to_rfc3339(),
            t.is_overdue(now).to_string(),
            ts(t.closed_at),
            t.reopen_count.to_string(),
        ],
        out,
    );
}

async fn export(state: &AppState, mut q: HazardQuery) -> AppResult<Response> {
    let mut out = String::new();
    csv_row(&CSV_COLUMNS.map(str::to_owned), &mut out);
    if !(q.full.is_empty() && q.engineer.is_empty() && q.reporter.is_empty()) {
        q.limit = MAX_LIMIT;
        q.before = None;
        loop {
            let page = state.store.list_hazards(&q).await?;
            for t in &page {
                csv_ticket(t, q.now, &mut out);
            }
            match page.last() {
                Some(last) if page.len() == q.limit => {
                    q.before = Some((last.reported_at.0, last.id));
                }
                _ => break,
            }
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"hazards.csv\"",
            ),
            (header::VARY, "accept"),
        ],
        out,
    )
        .into_response())
}

// ---------------------------------------------------------------- one ticket

/// The ticket, if the caller may see it: else 404.
async fn visible_ticket(state: &AppState, caller: &Caller, id: &str) -> AppResult<Ticket> {
    let id: HazardId = id.parse().map_err(|_| AppError::NotFound)?;
    let t = state
        .store
        .get_hazard(id)
        .await?
        .ok_or(AppError::NotFound)?;
    if svc::may_view(caller, &t) {
        Ok(t)
    } else {
        Err(AppError::NotFound)
    }
}

/// A ticket with its whole timeline: every event, accepted or rejected (with its code and
/// reason), and the photos of each (`received: false` while the bytes have not arrived).
/// Overseers see any ticket of their estates, engineers those assigned to them and open
/// ones, others the tickets they reported.
#[utoipa::path(get, path = "/v1/hazards/{id}", tag = "hazards", security(("bearer" = [])),
    params(("id" = HazardId, Path, description = "hazard id")), responses(
    (status = 200, body = TicketView),
    (status = 404, description = "no such hazard, or not one you may see", body = Problem, content_type = "application/problem+json")))]
pub async fn get_hazard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<TicketView>> {
    let t = visible_ticket(&state, &caller, &id).await?;
    Ok(Json(TicketView::new(t, now_ms())))
}

/// The printable rectification notice (整改通知单): a self-contained HTML page.
#[utoipa::path(get, path = "/v1/hazards/{id}/notice", tag = "hazards", security(("bearer" = [])),
    params(("id" = HazardId, Path, description = "hazard id")), responses(
    (status = 200, description = "an HTML page to print", body = String, content_type = "text/html"),
    (status = 404, description = "no such hazard, or not one you may see", body = Problem, content_type = "application/problem+json")))]
pub async fn hazard_notice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let t = visible_ticket(&state, &caller, &id).await?;
    let (estate_name, tz) = caller
        .memberships
        .iter()
        .find(|m| m.estate.id == t.estate_id)
        .map(|m| (m.estate.name.clone(), m.estate.timezone.clone()))
        .unwrap_or_else(|| (t.estate_id.to_string(), "UTC".into()));
    let mut names = Vec::new();
    for u in [Some(t.reporter), t.assignee].into_iter().flatten() {
        if let Some(row) = state.store.find_user(u).await? {
            names.push((u, row.name));
        }
    }
    let name_of = |u: UserId| {
        names
            .iter()
            .find(|(id, _)| *id == u)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| u.to_string())
    };
    let html = notice_html(&NoticeFacts {
        ticket: &t,
        estate_name: &estate_name,
        timezone: &tz,
        reporter: name_of(t.reporter),
        assignee: t.assignee.map(name_of),
        now: now_ms(),
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response())
}

/// Text safe inside HTML elements and quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A time in the estate's zone: `2026-11-23 08:00 (Asia/Shanghai)`.
pub fn local_time(ms: i64, timezone: &str) -> String {
    let Some(utc) = chrono::Utc.timestamp_millis_opt(ms).single() else {
        return Timestamp(ms).to_rfc3339();
    };
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => format!(
            "{} ({timezone})",
            utc.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        ),
        Err(_) => format!("{} (UTC)", utc.format("%Y-%m-%d %H:%M")),
    }
}

fn grade_label(g: Grade) -> &'static str {
    match g {
        Grade::General => "一般隐患 <span class=\"en\">General</span>",
        Grade::Major => "<strong class=\"major\">重大隐患</strong> <span class=\"en\">Major</span>",
    }
}

fn state_label(s: HazardState) -> &'static str {
    match s {
        HazardState::Reported => "已上报 <span class=\"en\">Reported</span>",
        HazardState::Assigned => "已指派 <span class=\"en\">Assigned</span>",
        HazardState::InRectification => "整改中 <span class=\"en\">In rectification</span>",
        HazardState::ExtensionRequested => {
            "延期申请中 <span class=\"en\">Extension requested</span>"
        }
        HazardState::PendingVerification => "待验收 <span class=\"en\">Pending verification</span>",
        HazardState::Closed => "已验收关闭 <span class=\"en\">Closed</span>",
        HazardState::Cancelled => "已撤销 <span class=\"en\">Cancelled</span>",
    }
}

pub struct NoticeFacts<'a> {
    pub ticket: &'a Ticket,
    pub estate_name: &'a str,
    pub timezone: &'a str,
    pub reporter: String,
    pub assignee: Option<String>,
    pub now: i64,
}

fn row(out: &mut String, zh: &str, en: &str, value_html: &str) {
    out.push_str(&format!(
        "<tr><th>{zh}<span class=\"en\">{en}</span></th><td>{value_html}</td></tr>\n"
    ));
}

/// The notice page. Every value from the ticket is escaped.
pub fn notice_html(f: &NoticeFacts<'_>) -> String {
    let t = f.ticket;
    let e = |s: &str| html_escape(s);
    let tz = f.timezone;
    let mut rows = String::new();
    row(&mut rows, "隐患名称", "Title", &e(&t.title));
    row(&mut rows, "隐患等级", "Grade", grade_label(t.grade));
    row(&mut rows, "隐患类别", "Category", &e(&t.category));
    let mut loc = Vec::new();
    if let Some(text) = t.location.text.as_deref().filter(|s| !s.trim().is_empty()) {
        loc.push(e(text));
    }
    if let Some(z) = t.location.zone_id {
        loc.push(format!(
            "<span class=\"en\">zone {}</span>",
            e(&z.to_string())
        ));
    }
    if let Some(c) = t.location.checkpoint_id {
        loc.push(format!(
            "<span class=\"en\">checkpoint {}</span>",
            e(&c.to_string())
        ));
    }
    let loc = if loc.is_empty() {
        "—".to_owned()
    } else {
        loc.join("<br>")
    };
    row(&mut rows, "隐患位置", "Location", &loc);
    let desc = t
        .description
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|d| format!("<div class=\"pre\">{}</div>", e(d)))
        .unwrap_or_else(|| "—".into());
    row(&mut rows, "隐患描述", "Description", &desc);
    row(&mut rows, "上报人", "Reported by", &e(&f.reporter));
    row(
        &mut rows,
        "上报时间",
        "Reported at",
        &e(&local_time(t.reported_at.0, tz)),
    );
    let assignee = match &f.assignee {
        Some(a) => e(a),
        None => "未指派 <span class=\"en\">Not assigned</span>".into(),
    };
    row(&mut rows, "整改责任人", "Assignee", &assignee);
    let mut due = e(&local_time(t.due_at.0, tz));
    if t.is_overdue(f.now) {
        due.push_str(" <strong class=\"major\">已逾期 <span class=\"en\">Overdue</span></strong>");
    }
    row(&mut rows, "整改期限", "Due", &due);
    let mut st = state_label(t.state).to_owned();
    if let Some(c) = t.closed_at {
        st.push_str(&format!(" · {}", e(&local_time(c.0, tz))));
    }
    if let Some(r) = t.cancel_reason.as_deref() {
        st.push_str(&format!("<br>{}", e(r)));
    }
    row(&mut rows, "当前状态", "State", &st);

    let plan = match &t.plan {
        None => String::new(),
        Some(p) => {
            let mut r = String::new();
            row(
                &mut r,
                "整改目标",
                "Goal",
                &format!("<div class=\"pre\">{}</div>", e(&p.goal)),
            );
            row(
                &mut r,
                "整改措施",
                "Measures",
                &format!("<div class=\"pre\">{}</div>", e(&p.measures)),
            );
            row(&mut r, "整改资金", "Funds", &e(&p.funds));
            row(&mut r, "负责人", "Owner", &e(&p.owner));
            row(
                &mut r,
                "完成时限",
                "Deadline",
                &e(&local_time(p.deadline.0, tz)),
            );
            format!(
                "<h2>整改方案 <span class=\"en\">Rectification plan</span></h2>\n<table>\n{r}</table>\n"
            )
        }
    };

    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>隐患整改通知单 {code}</title>
<style>
@page {{ size: A4; margin: 16mm 15mm; }}
* {{ box-sizing: border-box; }}
body {{ font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; color: #111; background: #fff; margin: 0 auto; padding: 8mm; max-width: 190mm; font-size: 11pt; line-height: 1.5; }}
h1 {{ text-align: center; font-size: 20pt; letter-spacing: 0.15em; margin: 0 0 1mm; }}
h1 .en {{ display: block; letter-spacing: 0; font-size: 10pt; }}
h2 {{ font-size: 13pt; margin: 7mm 0 2mm; }}
.en {{ color: #555; font-size: 8.5pt; font-weight: normal; margin-left: 0.4em; }}
th .en {{ display: block; margin-left: 0; }}
.meta {{ display: flex; justify-content: space-between; margin: 4mm 0 2mm; }}
table {{ width: 100%; border-collapse: collapse; page-break-inside: auto; }}
tr {{ page-break-inside: avoid; }}
th, td {{ border: 1px solid #333; padding: 2mm 3mm; text-align: left; vertical-align: top; }}
th {{ width: 30%; background: #f0f0f0; font-weight: bold; }}
.pre {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
td {{ overflow-wrap: anywhere; }}
.major {{ color: #b00000; }}
.ask {{ margin: 6mm 0 0; }}
.ask .en {{ margin-left: 0; }}
.sign {{ width: 100%; margin-top: 12mm; border: 0; }}
.sign td {{ border: 0; padding: 4mm 2mm 0; width: 25%; vertical-align: bottom; }}
.sign .line {{ border-bottom: 1px solid #000; height: 10mm; }}
footer {{ margin-top: 10mm; color: #666; font-size: 8pt; text-align: right; }}
@media print {{ body {{ padding: 0; }} th {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }} }}
</style>
</head>
<body>
<h1>隐患整改通知单<span class="en">Hazard Rectification Notice</span></h1>
<div class="meta"><div>编号<span class="en">No.</span> <strong>{code}</strong></div><div>项目<span class="en">Estate</span> {estate}</div></div>
<table>
{rows}</table>
{plan}<p class="ask">请整改责任人于整改期限前完成整改，并提交整改后照片申请验收。<br><span class="en">Please complete the rectification before the due date and submit an after photo for verification.</span></p>
<table class="sign">
<tr><td>整改责任人（签字）<span class="en">Rectification owner (signature)</span></td><td class="line"></td><td>日期<span class="en">Date</span></td><td class="line"></td></tr>
<tr><td>验收人（签字）<span class="en">Verifier (signature)</span></td><td class="line"></td><td>日期<span class="en">Date</span></td><td class="line"></td></tr>
</table>
<footer>patrol-sync · {printed}</footer>
</body>
</html>
"#,
        code = e(&t.code),
        estate = e(f.estate_name),
        rows = rows,
        plan = plan,
        printed = e(&local_time(f.now, tz)),
    )
}

// ---------------------------------------------------------------- statistics

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Tickets reported at or after (RFC 3339).
    #[param(value_type = Option<Timestamp>)]
    pub from: Option<String>,
    /// Tickets reported before (RFC 3339).
    #[param(value_type = Option<Timestamp>)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HazardStatsResponse {
    pub estate_id: EstateId,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// The moment `overdue` was counted at.
    pub as_of: Timestamp,
    #[serde(flatten)]
    pub stats: HazardStats,
}

/// Statistics of the tickets reported in [from, to): open by grade, overdue, rectification
/// rate, on-time rate, mean and p90 hours to close, reopen rate. Overseers only.
#[utoipa::path(get, path = "/v1/estates/{id}/hazard-stats", tag = "hazards", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), StatsParams), responses(
    (status = 200, body = HazardStatsResponse),
    (status = 403, description = "needs role supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad from or to", body = Problem, content_type = "application/problem+json")))]
pub async fn hazard_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> AppResult<Json<HazardStatsResponse>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &OVERSEERS)?;
    let mut errors = Vec::new();
    let from = timestamp_param("from", &p.from, &mut errors);
    let to = timestamp_param("to", &p.to, &mut errors);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errors.push(field("to", "must not be before from"));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let now = now_ms();
    let summaries = state.store.hazard_summaries(estate, from, to).await?;
    Ok(Json(HazardStatsResponse {
        estate_id: estate,
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        as_of: Timestamp(now),
        stats: shared_core::hazard::stats(&summaries, now),
    }))
}

// ---------------------------------------------------------------- policy

/// The estate's hazard policy (defaults when none was set). Any member.
#[utoipa::path(get, path = "/v1/estates/{id}/hazard-policy", tag = "hazards", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), responses(
    (status = 200, body = HazardPolicy),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_hazard_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<HazardPolicy>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &Role::ALL)?;
    Ok(Json(state.store.hazard_policy(estate).await?))
}

/// Set the estate's hazard policy: due hours by grade, whether a report needs a `before`
/// photo, escalation steps. Absent fields take their defaults. Managers and admins.
#[utoipa::path(put, path = "/v1/estates/{id}/hazard-policy", tag = "hazards", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id")), request_body = HazardPolicy, responses(
    (status = 200, body = HazardPolicy),
    (status = 403, description = "needs role manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "an unknown field or a value out of range", body = Problem, content_type = "application/problem+json")))]
pub async fn put_hazard_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(policy): ApiJson<HazardPolicy>,
) -> AppResult<Json<HazardPolicy>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &[Role::Manager, Role::Admin])?;
    policy.validate().map_err(|m| {
        let (path, message) = match m.split_once(": ") {
            Some((p, rest)) => (p.to_owned(), rest.to_owned()),
            None => (String::new(), m),
        };
        AppError::Validation(vec![FieldError { path, message }])
    })?;
    state
        .store
        .set_hazard_policy(estate, &policy, now_ms())
        .await?;
    state.hub.notify(&[estate]);
    Ok(Json(policy))
}

// ---------------------------------------------------------------- held events

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeldParams {
    /// At most this many, default 100, at most 1,000.
    pub limit: Option<usize>,
}

/// A hazard event stored with no report, for longer than the configured time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldEventView {
    pub event_id: FactId,
    pub hazard_id: HazardId,
    pub estate_id: EstateId,
    pub action: String,
    /// Who pushed it.
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub received_at: Timestamp,
}

impl From<HeldEvent> for HeldEventView {
    fn from(h: HeldEvent) -> Self {
        HeldEventView {
            event_id: h.event_id,
            hazard_id: h.hazard_id,
            estate_id: h.estate_id,
            action: h.action,
            user_id: h.user_id,
            device_id: h.device_id,
            received_at: Timestamp(h.received_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldEvents {
    /// Oldest first.
    pub events: Vec<HeldEventView>,
}

/// Hazard events pushed for a hazard whose report has not arrived, held longer than
/// `hazard_held_after_secs` (their report may still be queued on another handset; they fold
/// in when it comes). Supervisors, managers and admins.
#[utoipa::path(get, path = "/v1/estates/{id}/hazard-events/held", tag = "hazards", security(("bearer" = [])),
    params(("id" = EstateId, Path, description = "estate id"), HeldParams), responses(
    (status = 200, body = HeldEvents),
    (status = 403, description = "needs role supervisor, manager or admin", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "estate not yours", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "bad limit", body = Problem, content_type = "application/problem+json")))]
pub async fn held_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<HeldParams>,
) -> AppResult<Json<HeldEvents>> {
    let estate: EstateId = id.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &OVERSEERS)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::Validation(vec![field(
            "limit",
            format!("must be from 1 to {MAX_LIMIT}"),
        )]));
    }
    let held_after = i64::try_from(state.config.hazard_held_after_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let events = state
        .store
        .held_hazard_events(estate, now_ms().saturating_sub(held_after), limit)
        .await?
        .into_iter()
        .map(HeldEventView::from)
        .collect();
    Ok(Json(HeldEvents { events }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::csv::csv_cell;
    use axum::http::HeaderValue;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("消防通道堵塞"), "消防通道堵塞");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+86 123"), "'+86 123");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell("a=b"), "a=b");
        let mut out = String::new();
        csv_row(&["x".into(), "y,z".into()], &mut out);
        assert_eq!(out, "x,\"y,z\"\r\n");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(html_escape("消防通道"), "消防通道");
    }

    #[test]
    fn local_times_are_in_the_estate_zone() {
        // 2026-11-23T00:00:00Z
        let ms = 1_795_392_000_000;
        assert_eq!(
            local_time(ms, "Asia/Shanghai"),
            "2026-11-23 08:00 (Asia/Shanghai)"
        );
        assert_eq!(local_time(ms, "Not/AZone"), "2026-11-23 00:00 (UTC)");
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn csv_is_chosen_only_when_preferred() {
        assert!(!wants_csv(&HeaderMap::new()));
        assert!(!wants_csv(&accept("*/*")));
        assert!(!wants_csv(&accept("application/json")));
        assert!(wants_csv(&accept("text/csv")));
        assert!(wants_csv(&accept("text/csv, */*;q=0.1")));
        assert!(wants_csv(&accept("Text/CSV; charset=utf-8")));
        assert!(!wants_csv(&accept("text/csv;q=0")));
        assert!(!wants_csv(&accept("text/csv;q=0.5, application/json")));
        assert!(wants_csv(&accept("application/json;q=0.2, text/csv")));
    }

    fn ticket() -> Ticket {
        Ticket {
            id: "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b".parse().unwrap(),
            code: "YH-20261122-0007".into(),
            estate_id: EstateId::new_v7(),
            state: HazardState::Assigned,
            grade: Grade::Major,
            category: "fire".into(),
            title: "<b>Fire door</b> wedged, \"open\"".into(),
            description: Some("line 1\nline 2 & more".into()),
            location: Location {
                text: Some("B2 <car park>".into()),
                ..Location::default()
            },
            source_fact_id: None,
            reporter: UserId::new_v7(),
            reported_at: Timestamp(1_795_392_000_000),
            assignee: Some(UserId::new_v7()),
            assigned_at: Some(Timestamp(1_795_392_000_000)),
            due_at: Timestamp(1_795_996_800_000),
            due_explicit: false,
            plan: Some(RectificationPlan {
                goal: "No <wedge>".into(),
                measures: "Fit a closer".into(),
                funds: "¥1,200".into(),
                owner: "Wang Wei".into(),
                deadline: Timestamp(1_795_996_800_000),
            }),
            extension: None,
            fixed_by: None,
            fixed_at: None,
            verified_by: None,
            closed_at: None,
            cancelled_at: None,
            cancel_reason: None,
            reopen_count: 0,
            timeline: vec![],
        }
    }

    #[test]
    fn the_notice_escapes_every_value_and_has_the_blanks() {
        let t = ticket();
        let html = notice_html(&NoticeFacts {
            ticket: &t,
            estate_name: "Harbour <View>",
            timezone: "Asia/Shanghai",
            reporter: "Li <Lei>".into(),
            assignee: Some("Zhang & Sons".into()),
            now: 1_795_392_000_000,
        });
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("YH-20261122-0007"));
        assert!(html.contains("&lt;b&gt;Fire door&lt;/b&gt; wedged, &quot;open&quot;"));
        assert!(html.contains("Harbour &lt;View&gt;"));
        assert!(html.contains("Li &lt;Lei&gt;"));
        assert!(html.contains("Zhang &amp; Sons"));
        assert!(html.contains("No &lt;wedge&gt;"));
        assert!(html.contains("B2 &lt;car park&gt;"));
        assert!(!html.contains("<b>Fire"));
        assert!(!html.contains("<wedge>"));
        assert!(html.contains("重大隐患"));
        assert!(html.contains("2026-11-30 08:00 (Asia/Shanghai)"));
        assert!(html.contains("整改责任人（签字）"));
        assert!(html.contains("验收人（签字）"));
        assert!(html.contains("整改方案"));
        assert!(!html.contains("已逾期"));
    }

    #[test]
    fn a_csv_row_has_every_column() {
        let t = ticket();
        let mut out = String::new();
        csv_ticket(&t, 1_795_392_000_000, &mut out);
        let line = out.trim_end();
        assert!(line.starts_with("YH-20261122-0007,0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b,"));
        assert!(line.contains(",assigned,major,fire,\"<b>Fire door</b> wedged, \"\"open\"\"\","));
        assert!(line.ends_with(",2026-11-30T00:00:00.000Z,false,,0"));
    }
}
