//! The OpenAPI document, generated from the handlers and wire types. `api/openapi.json` is
//! this document, checked in; `tests/openapi.rs` fails when it is stale
//! (regenerate: `cargo run -p sync-server -- openapi > api/openapi.json`).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "patrol-sync",
        description = "Sync API for estate patrol handsets: push immutable facts, pull a scoped change feed. Protocol: docs/PROTOCOL.md.",
        version = "1"
    ),
    paths(
        crate::http::health::healthz,
        crate::http::health::readyz,
        crate::http::auth::login,
        crate::http::auth::refresh,
        crate::http::auth::logout,
        crate::http::auth::me,
        crate::http::sync::push,
        crate::http::sync::pull,
        crate::http::admin::list_quarantine,
        crate::http::admin::create_estate,
        crate::http::admin::retire_estate,
        crate::http::devices::list_devices,
        crate::http::devices::revoke_device,
        crate::http::devices::list_members,
        crate::http::photos::put_photo,
        crate::http::photos::get_photo,
        crate::http::photos::head_photo,
        crate::http::photos::list_missing,
        crate::http::hazards::report_hazard,
        crate::http::hazards::list_hazards,
        crate::http::hazards::export_hazards,
        crate::http::hazards::get_hazard,
        crate::http::hazards::post_hazard_event,
        crate::http::hazards::hazard_notice,
        crate::http::hazards::hazard_stats,
        crate::http::hazards::get_hazard_policy,
        crate::http::hazards::put_hazard_policy,
        crate::http::hazards::held_events,
        crate::http::alerts::list_alerts,
        crate::http::alerts::close_alert,
        crate::http::patrol::list_reference,
        crate::http::patrol::get_reference,
        crate::http::patrol::create_reference,
        crate::http::patrol::put_reference,
        crate::http::patrol::delete_reference,
        crate::http::patrol::update_estate,
        crate::http::patrol::get_coverage,
        crate::http::patrol::export_coverage,
        crate::http::patrol::list_slots,
        crate::http::patrol::export_slots,
        crate::http::patrol::excuse_slot,
        crate::http::patrol::get_heatmap,
        crate::http::patrol::export_heatmap,
        crate::http::patrol::list_runs,
    ),
    components(schemas(
        crate::http::photos::PhotoStored,
        crate::http::photos::MissingPhoto,
        crate::http::photos::DeviceMissing,
        crate::http::photos::MissingList,
        shared_core::wire::ChangeEnvelope,
        shared_core::wire::FactRecord,
        shared_core::wire::EstateRecord,
        shared_core::wire::ChangeOp,
        crate::error::Problem,
        crate::http::hazards::TicketView,
        crate::http::hazards::HazardPage,
        crate::http::hazards::ReportRequest,
        crate::http::hazards::EventRequest,
        crate::http::hazards::HazardStatsResponse,
        crate::http::hazards::HeldEvents,
        crate::http::hazards::HeldEventView,
        crate::services::hazards::PhotoIn,
        crate::http::alerts::AlertList,
        crate::http::alerts::CloseAlertRequest,
        shared_core::hazard::Ticket,
        shared_core::hazard::TimelineEntry,
        shared_core::hazard::HazardPolicy,
        shared_core::hazard::HazardStats,
        shared_core::wire::Alert,
        crate::http::patrol::ReferenceList,
        crate::http::patrol::EstatePatch,
        crate::http::patrol::SlotList,
        crate::http::patrol::SlotView,
        crate::http::patrol::ScanView,
        crate::http::patrol::ExcuseRequest,
        crate::http::patrol::RunList,
        shared_core::patrol::Zone,
        shared_core::patrol::Checkpoint,
        shared_core::patrol::Route,
        shared_core::patrol::Rule,
        shared_core::patrol::RuleKind,
        shared_core::patrol::RuleTarget,
        shared_core::patrol::Window,
        shared_core::patrol::Grace,
        shared_core::patrol::Tag,
        shared_core::patrol::RefError,
        shared_core::patrol::Excuse,
        shared_core::patrol::Run,
        shared_core::patrol::coverage::CoverageReport,
        shared_core::patrol::coverage::Heatmap,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in and sessions"),
        (name = "sync", description = "Push facts, pull changes"),
        (name = "admin", description = "Estates and quarantine"),
        (name = "devices", description = "Handset sync health"),
        (name = "hazards", description = "Hazard rectification: tickets, tracker, notice, statistics, policy"),
        (name = "alerts", description = "Alerts, closed with a comment"),
        (name = "patrol", description = "Patrol plans (zones, checkpoints, routes, rules) and coverage: slots, heat map, runs, excuses"),
        (name = "operations", description = "Health"),
    )
)]
pub struct ApiDoc;

/// The document as checked in: pretty JSON with a trailing newline.
pub fn document() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .expect("OpenAPI document serialises");
    s.push('\n');
    s
}
