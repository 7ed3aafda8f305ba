//! Startup split: [`Application::build`] does everything that can fail (config, database,
//! migrations, demo seed, keys, binding the port); [`Application::run_until_stopped`] only
//! serves, and drains in-flight requests when asked to stop.

use crate::auth::Keys;
use crate::clock::{now_ms, ServerClock};
use crate::config::Config;
use crate::http::{router, AppState};
use crate::storage::{self, ChangeHub};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

pub struct BuildOptions {
    /// Seed the demo estates and users when the database has none.
    pub demo: bool,
    /// With `demo`: also the first estate's patrol plan and a simulated week of patrols
    /// (`serve --demo` does; tests that want a quiet estate do not).
    pub demo_patrols: bool,
}

impl Application {
    pub async fn build(config: Config, opts: BuildOptions) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
        let store = storage::connect(&config.database_url()).await?;
        store.migrate().await?;
        if opts.demo {
            crate::demo::seed(store.as_ref(), opts.demo_patrols).await?;
        }
        let keys = Keys::load(&config)?;
        let hub = ChangeHub::new();
        store.start_listener(hub.clone()).await?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let blobs = crate::blobs::from_config(&config)?;
        let state = AppState {
            store,
            blobs,
            keys: Arc::new(keys),
            clock: Arc::new(ServerClock::new()),
            hub,
            push_permits: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_pushes)),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
        };
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, wakes long-polls and lets
    /// in-flight requests (pushes mid-transaction included) finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let stop = state.shutdown.clone();
        tokio::spawn(prune_tombstones_periodically(state.clone()));
        tokio::spawn(escalate_hazards_periodically(state.clone()));
        tokio::spawn(expire_uploads_periodically(state.clone()));
        tokio::spawn(sweep_missed_visits_periodically(state.clone()));
        // Turned into a service once: `axum::serve(listener, router)` would deep-clone every
        // route's handler and layers for each accepted connection (~60 KiB each; 3,000
        // parked long-polls held ~200 MiB for that alone). tests/connection_memory.rs.
        let app = router(state).into_make_service();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight requests");
                stop.cancel();
            })
            .await?;
        Ok(())
    }
}

/// Removes tombstones past the retention window, hourly. Idempotent, so every instance may
/// run it.
async fn prune_tombstones_periodically(state: AppState) {
    let retention = state.config.tombstone_retention_days as i64 * 86_400_000;
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        match state.store.prune_tombstones(now_ms() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned tombstones"),
            Err(e) => tracing::warn!(error = %e, "pruning tombstones failed"),
        }
    }
}

/// Raises hazard escalation alerts every `escalation_interval_secs`. Idempotent (one alert
/// per ticket, due date and step), so every instance may run it.
async fn escalate_hazards_periodically(state: AppState) {
    let period = Duration::from_secs(state.config.escalation_interval_secs.max(1));
    // The first sweep one period after start, not at once: a restart storm does not sweep
    // on every start, and what a fresh server holds is not raced by alerts.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        if let Err(e) = crate::services::hazards::escalate(&state.store, &state.hub, now_ms()).await
        {
            tracing::warn!(error = %e, "hazard escalation sweep failed");
        }
    }
}

/// Finalises visit slots and raises `missed_visit` alerts every
/// `missed_visit_interval_secs`. Idempotent (one alert per rule, checkpoint and slot), so
/// every instance may run it.
async fn sweep_missed_visits_periodically(state: AppState) {
    let period = Duration::from_secs(state.config.missed_visit_interval_secs.max(1));
    let lookback = state.config.missed_visit_lookback_hours as i64 * 3_600_000;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        if let Err(e) =
            crate::services::patrol::sweep_missed(&state.store, &state.hub, now_ms(), lookback)
                .await
        {
            tracing::warn!(error = %e, "missed-visit sweep failed");
        }
    }
}

/// Deletes partial photo uploads untouched for `upload_expiry_secs`, checking every tenth
/// of that (at most hourly). Every instance may run it.
async fn expire_uploads_periodically(state: AppState) {
    let expiry = Duration::from_secs(state.config.upload_expiry_secs.max(1));
    let period = (expiry / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let n = crate::http::photos::expire_uploads(&state.config.upload_dir(), expiry).await;
        if n > 0 {
            tracing::info!(removed = n, "expired partial photo uploads");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
