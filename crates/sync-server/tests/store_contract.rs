//! Storage contract tests: every behaviour of `Store`, one generic body each, run against a
//! fresh SQLite file and a fresh PostgreSQL database (`TEST_DATABASE_URL`; set
//! `REQUIRE_POSTGRES=1` to make its absence a failure rather than a skip).
//!
//! `cargo test -p sync-server --test store_contract sqlite_` runs the SQLite half;
//! `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p sync-server
//! --test store_contract postgres_` the PostgreSQL half.

mod contract;

use contract::accounts::*;
use contract::concurrency::*;
use contract::harness::{run_postgres, run_sqlite};
use contract::hazards::*;
use contract::patrol::*;
use contract::photos::*;
use contract::property::*;
use contract::pull::*;
use contract::push::*;

/// `body => sqlite_name, postgres_name;` makes two tests of one body.
macro_rules! contract_tests {
    ($($body:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                run_sqlite(stringify!($sqlite), $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                run_postgres(stringify!($postgres), $body).await;
            }
        )*
    };
}

contract_tests! {
    estates_lifecycle => sqlite_estates_lifecycle, postgres_estates_lifecycle;
    users_and_memberships => sqlite_users_and_memberships, postgres_users_and_memberships;
    sessions_and_refresh_rotation => sqlite_sessions_and_refresh_rotation, postgres_sessions_and_refresh_rotation;
    session_context_is_the_session_and_its_memberships => sqlite_session_context_is_the_session_and_its_memberships, postgres_session_context_is_the_session_and_its_memberships;
    revoking_a_device_ends_its_sessions_and_keeps_the_first_time => sqlite_revoking_a_device_ends_its_sessions_and_keeps_the_first_time, postgres_revoking_a_device_ends_its_sessions_and_keeps_the_first_time;
    members_are_listed_per_estate_one_row_per_role => sqlite_members_are_listed_per_estate_one_row_per_role, postgres_members_are_listed_per_estate_one_row_per_role;
    push_accept_replay_duplicate_conflict => sqlite_push_accept_replay_duplicate_conflict, postgres_push_accept_replay_duplicate_conflict;
    push_rejections_are_quarantined_in_index_order => sqlite_push_rejections_are_quarantined_in_index_order, postgres_push_rejections_are_quarantined_in_index_order;
    acked_through_seq_is_the_held_prefix => sqlite_acked_through_seq_is_the_held_prefix, postgres_acked_through_seq_is_the_held_prefix;
    devices_are_listed_per_estate_with_their_gaps => sqlite_devices_are_listed_per_estate_with_their_gaps, postgres_devices_are_listed_per_estate_with_their_gaps;
    seq_reused_is_flagged => sqlite_seq_reused_is_flagged, postgres_seq_reused_is_flagged;
    pull_scope_paging_and_tombstones => sqlite_pull_scope_paging_and_tombstones, postgres_pull_scope_paging_and_tombstones;
    repeated_ids_do_not_collide_in_the_feed => sqlite_repeated_ids_do_not_collide_in_the_feed, postgres_repeated_ids_do_not_collide_in_the_feed;
    prune_tombstones_raises_the_floor => sqlite_prune_tombstones_raises_the_floor, postgres_prune_tombstones_raises_the_floor;
    prop_any_split_order_and_resend_stores_each_fact_once => sqlite_prop_any_split_order_and_resend_stores_each_fact_once, postgres_prop_any_split_order_and_resend_stores_each_fact_once;
    hazard_lifecycle_through_push => sqlite_hazard_lifecycle_through_push, postgres_hazard_lifecycle_through_push;
    self_verification_is_rejected => sqlite_self_verification_is_rejected, postgres_self_verification_is_rejected;
    late_cancel_wins_and_held_events_fold_in => sqlite_late_cancel_wins_and_held_events_fold_in, postgres_late_cancel_wins_and_held_events_fold_in;
    online_events_are_stored_only_when_accepted => sqlite_online_events_are_stored_only_when_accepted, postgres_online_events_are_stored_only_when_accepted;
    hazards_are_listed_by_zone => sqlite_hazards_are_listed_by_zone, postgres_hazards_are_listed_by_zone;
    hazard_pull_and_list_scopes => sqlite_hazard_pull_and_list_scopes, postgres_hazard_pull_and_list_scopes;
    alerts_are_raised_once_and_closed_with_a_comment => sqlite_alerts_are_raised_once_and_closed_with_a_comment, postgres_alerts_are_raised_once_and_closed_with_a_comment;
    concurrent_pushes_on_one_ticket_lose_no_event => sqlite_concurrent_pushes_on_one_ticket_lose_no_event, postgres_concurrent_pushes_on_one_ticket_lose_no_event;
    any_arrival_order_and_batching_gives_the_same_ticket => sqlite_any_arrival_order_and_batching_gives_the_same_ticket, postgres_any_arrival_order_and_batching_gives_the_same_ticket;
    a_report_waits_for_its_photo => sqlite_a_report_waits_for_its_photo, postgres_a_report_waits_for_its_photo;
    photo_metadata_is_recorded_and_missing_bytes_listed => sqlite_photo_metadata_is_recorded_and_missing_bytes_listed, postgres_photo_metadata_is_recorded_and_missing_bytes_listed;
    pull_never_skips_under_concurrent_pushes => sqlite_pull_never_skips_under_concurrent_pushes, postgres_pull_never_skips_under_concurrent_pushes;
    patrol_reference_round_trip => sqlite_patrol_reference_round_trip, postgres_patrol_reference_round_trip;
    patrol_refused_reference_writes_nothing => sqlite_patrol_refused_reference_writes_nothing, postgres_patrol_refused_reference_writes_nothing;
    patrol_scans_resolve_by_the_tags_as_they_stand => sqlite_patrol_scans_resolve_by_the_tags_as_they_stand, postgres_patrol_scans_resolve_by_the_tags_as_they_stand;
    patrol_a_scan_is_recorded_once => sqlite_patrol_a_scan_is_recorded_once, postgres_patrol_a_scan_is_recorded_once;
    patrol_run_events_and_excuses => sqlite_patrol_run_events_and_excuses, postgres_patrol_run_events_and_excuses;
    patrol_set_estate_timezone => sqlite_patrol_set_estate_timezone, postgres_patrol_set_estate_timezone;
    patrol_concurrent_reference_writes_serialise => sqlite_patrol_concurrent_reference_writes_serialise, postgres_patrol_concurrent_reference_writes_serialise;
    patrol_scans_pushed_during_a_tag_change_are_resolved => sqlite_patrol_scans_pushed_during_a_tag_change_are_resolved, postgres_patrol_scans_pushed_during_a_tag_change_are_resolved;
    patrol_estates_are_those_with_rules => sqlite_patrol_estates_are_those_with_rules, postgres_patrol_estates_are_those_with_rules;
}
