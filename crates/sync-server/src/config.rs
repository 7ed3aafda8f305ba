//! Configuration: defaults → optional TOML file → `PATROL_*` environment (`__` nests),
//! the environment last so it wins.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address and port to serve on (`PATROL_LISTEN`).
    pub listen: String,
    /// Where the SQLite file, the generated JWT secret and (later) photos live
    /// (`PATROL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://FILE` or `postgres://…` (`PATROL_DATABASE_URL`); default: a SQLite file in
    /// the data directory.
    pub database_url: Option<String>,
    /// HMAC key for access tokens (`PATROL_JWT_SECRET`); default: generated once and kept
    /// in the data directory, so restarts keep sessions valid. Every instance behind a load
    /// balancer must share it.
    pub jwt_secret: Option<Secret>,
    /// Keys still accepted for verification after a rotation (`PATROL_JWT_PREVIOUS_SECRETS`).
    pub jwt_previous_secrets: Vec<Secret>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    /// An HLC further ahead of the server clock than this is clamped (`clock_ahead`).
    pub max_clock_drift_ms: u64,
    /// How long tombstones are kept; older cursors must reset.
    pub tombstone_retention_days: u64,
    pub max_batch_changes: usize,
    pub max_batch_bytes: usize,
    /// Pushes worked on at once (`PATROL_MAX_CONCURRENT_PUSHES`): a push past this many
    /// waits, holding only its raw body, until one finishes. Bounds the memory of a
    /// shift-change storm (a parsed batch is ~20× its bytes) without refusing anyone.
    pub max_concurrent_pushes: usize,
    pub default_pull_limit: usize,
    pub max_pull_limit: usize,
    /// Longest `wait` a pull may ask for, in seconds.
    pub max_pull_wait_secs: u64,
    /// How often the hazard escalation sweep runs, in seconds
    /// (`PATROL_ESCALATION_INTERVAL_SECS`).
    pub escalation_interval_secs: u64,
    /// A hazard event with no report for longer than this is listed for managers as held
    /// (`PATROL_HAZARD_HELD_AFTER_SECS`).
    pub hazard_held_after_secs: u64,
    /// How often the missed-visit sweep finalises slots and raises alerts, in seconds
    /// (`PATROL_MISSED_VISIT_INTERVAL_SECS`).
    pub missed_visit_interval_secs: u64,
    /// How far back the missed-visit sweep looks, in hours: a slot missed longer ago than
    /// this (while the server was down) raises no alert (`PATROL_MISSED_VISIT_LOOKBACK_HOURS`).
    pub missed_visit_lookback_hours: u64,
    pub log_format: LogFormat,
    /// Largest photo accepted, in bytes (`PATROL_MAX_PHOTO_BYTES`; default 20 MiB).
    pub max_photo_bytes: u64,
    /// Where photo bytes go: `local` (a directory, default `<data_dir>/photos`) or `s3`
    /// (`PATROL_PHOTO_STORE`).
    pub photo_store: PhotoStoreKind,
    /// The local photo directory (`PATROL_PHOTO_DIR`); default `<data_dir>/photos`.
    pub photo_dir: Option<PathBuf>,
    /// S3-compatible store (`PATROL_S3_ENDPOINT`, …); used when `photo_store = "s3"`.
    pub s3_endpoint: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<Secret>,
    pub s3_secret_access_key: Option<Secret>,
    /// Allow `http://` endpoints (a store on loopback or a private network).
    pub s3_allow_http: bool,
    /// Partial uploads untouched for longer than this are deleted
    /// (`PATROL_UPLOAD_EXPIRY_SECS`; default 24 h).
    pub upload_expiry_secs: u64,
    /// How long a web console sign-in lasts, in hours (`PATROL_CONSOLE_SESSION_HOURS`;
    /// default 12). Signing out, or revoking the browser's device, ends it at once.
    pub console_session_hours: u64,
    /// Serve the console's files from this directory instead of the copies built into the
    /// binary (`PATROL_CONSOLE_DIR`): for working on the pages without rebuilding.
    pub console_dir: Option<PathBuf>,
    /// Mark the console's cookies `Secure` (`PATROL_COOKIE_SECURE`). Default: when the
    /// request came over HTTPS as the load balancer says in `X-Forwarded-Proto`/`Forwarded`.
    pub cookie_secure: Option<bool>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PhotoStoreKind {
    Local,
    S3,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            jwt_secret: None,
            jwt_previous_secrets: vec![],
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            max_clock_drift_ms: 60_000,
            tombstone_retention_days: 90,
            max_batch_changes: 1_000,
            max_batch_bytes: 1024 * 1024,
            max_concurrent_pushes: 32,
            default_pull_limit: 1_000,
            max_pull_limit: 5_000,
            max_pull_wait_secs: 60,
            escalation_interval_secs: 60,
            hazard_held_after_secs: 86_400,
            missed_visit_interval_secs: 60,
            missed_visit_lookback_hours: 26,
            log_format: LogFormat::Text,
            max_photo_bytes: 20 * 1024 * 1024,
            photo_store: PhotoStoreKind::Local,
            photo_dir: None,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
            upload_expiry_secs: 86_400,
            console_session_hours: 12,
            console_dir: None,
            cookie_secure: None,
        }
    }
}

impl Config {
    /// Loads the configuration. `file` (or `PATROL_CONFIG`) names an optional TOML file.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let env_file = std::env::var_os("PATROL_CONFIG").map(PathBuf::from);
        if let Some(path) = file.map(Path::to_path_buf).or(env_file) {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        let cfg: Config = fig
            .merge(Env::prefixed("PATROL_").ignore(&["config"]).split("__"))
            .extract()?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_batch_changes > 0,
            "max_batch_changes must be positive"
        );
        anyhow::ensure!(
            self.max_batch_bytes >= 1024,
            "max_batch_bytes must be at least 1024"
        );
        anyhow::ensure!(
            self.max_concurrent_pushes > 0,
            "max_concurrent_pushes must be positive"
        );
        anyhow::ensure!(
            (1..=self.max_pull_limit).contains(&self.default_pull_limit),
            "default_pull_limit must be from 1 to max_pull_limit"
        );
        anyhow::ensure!(
            self.access_token_ttl_secs >= 30,
            "access_token_ttl_secs must be at least 30"
        );
        anyhow::ensure!(
            self.escalation_interval_secs > 0,
            "escalation_interval_secs must be positive"
        );
        anyhow::ensure!(
            self.missed_visit_interval_secs > 0,
            "missed_visit_interval_secs must be positive"
        );
        anyhow::ensure!(
            (1..=24 * 92).contains(&self.missed_visit_lookback_hours),
            "missed_visit_lookback_hours must be from 1 to 2208"
        );
        anyhow::ensure!(self.max_photo_bytes > 0, "max_photo_bytes must be positive");
        anyhow::ensure!(
            (1..=24 * 30).contains(&self.console_session_hours),
            "console_session_hours must be from 1 to 720"
        );
        if self.photo_store == PhotoStoreKind::S3 {
            anyhow::ensure!(
                self.s3_bucket.as_deref().is_some_and(|b| !b.is_empty()),
                "photo_store = \"s3\" needs s3_bucket"
            );
        }
        Ok(())
    }

    /// The local photo directory: `photo_dir`, else `<data_dir>/photos`.
    pub fn photo_dir(&self) -> PathBuf {
        self.photo_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("photos"))
    }

    /// Where partial uploads wait: `<data_dir>/uploads`.
    pub fn upload_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("patrol-sync.db").display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's Jail closure returns its own (large) error type; nothing to shrink here.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "listen = \"0.0.0.0:9000\"\nmax_clock_drift_ms = 5000\n",
            )?;
            jail.set_env("PATROL_MAX_CLOCK_DRIFT_MS", "7000");
            jail.set_env("PATROL_DATA_DIR", "/var/lib/patrol");
            let c = Config::load(Some(Path::new("p.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!(c.max_clock_drift_ms, 7000);
            assert_eq!(c.database_url(), "sqlite:///var/lib/patrol/patrol-sync.db");
            assert_eq!(c.max_batch_changes, 1000);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn hazard_timings_have_defaults_and_follow_the_environment() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.escalation_interval_secs, 60);
            assert_eq!(c.hazard_held_after_secs, 86_400);
            jail.set_env("PATROL_ESCALATION_INTERVAL_SECS", "15");
            jail.set_env("PATROL_HAZARD_HELD_AFTER_SECS", "3600");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.escalation_interval_secs, 15);
            assert_eq!(c.hazard_held_after_secs, 3600);
            jail.set_env("PATROL_ESCALATION_INTERVAL_SECS", "0");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn photo_settings_have_defaults_and_s3_needs_a_bucket() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PATROL_DATA_DIR", "/srv/p");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.max_photo_bytes, 20 * 1024 * 1024);
            assert_eq!(c.photo_store, PhotoStoreKind::Local);
            assert_eq!(c.photo_dir(), PathBuf::from("/srv/p/photos"));
            assert_eq!(c.upload_expiry_secs, 86_400);
            jail.set_env("PATROL_PHOTO_STORE", "s3");
            assert!(Config::load(None).is_err());
            jail.set_env("PATROL_S3_BUCKET", "evidence");
            jail.set_env("PATROL_S3_ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("PATROL_S3_ALLOW_HTTP", "true");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.photo_store, PhotoStoreKind::S3);
            assert_eq!(c.s3_bucket.as_deref(), Some("evidence"));
            assert!(c.s3_allow_http);
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let c = Config {
            jwt_secret: Some(Secret::new("hunter2")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
