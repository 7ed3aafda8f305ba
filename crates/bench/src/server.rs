//! The real `patrol-sync` binary as a child process: started with a clean `PATROL_*`
//! environment, waited for on `/readyz`, stopped with SIGTERM (SIGKILL if it lingers), and
//! killed whenever this handle is dropped, error paths included.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: PathBuf,
}

/// A port nobody listens on right now (the server binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `BIN serve --demo` on 127.0.0.1:`port` with `data_dir` and `database_url`.
    /// Its stdout and stderr go to `data_dir/server.log`.
    #[allow(dead_code)] // not every benchmark binary uses it
    pub fn spawn(
        bin: &Path,
        data_dir: &Path,
        port: u16,
        database_url: &str,
        rust_log: Option<&str>,
    ) -> anyhow::Result<Server> {
        Self::spawn_with_env(bin, data_dir, port, database_url, rust_log, &[])
    }

    /// As [`Server::spawn`], with extra `PATROL_*` settings (`("PATROL_X", "value")`).
    pub fn spawn_with_env(
        bin: &Path,
        data_dir: &Path,
        port: u16,
        database_url: &str,
        rust_log: Option<&str>,
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let log = data_dir.join("server.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--demo");
        // Only what this run sets: no stray PATROL_* (or config file) from the caller.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PATROL_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env_remove("RUST_LOG");
        if let Some(l) = rust_log {
            cmd.env("RUST_LOG", l);
        }
        cmd.env("PATROL_LISTEN", format!("127.0.0.1:{port}"))
            .env("PATROL_DATA_DIR", data_dir)
            .env("PATROL_DATABASE_URL", database_url)
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        Ok(Server {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    /// Polls `/readyz` until it answers 200, the server exits, or `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let start = Instant::now();
        let url = format!("{}/readyz", self.base);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was ready; its log ends:\n{}",
                    self.log_tail(30)
                );
            }
            let last = match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if start.elapsed() > timeout {
                bail!(
                    "the server was not ready after {timeout:?} (last: {last}); its log ends:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `n` lines of the server's output, colour codes removed.
    pub fn log_tail(&self, n: usize) -> String {
        let text = strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM, then up to 15 s for the graceful drain, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // SAFETY: kill(2) with a pid we spawned and have not reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                eprintln!("the server did not stop within 15 s of SIGTERM: killing it");
                self.child.kill().await?;
                Ok(self.child.wait().await?)
            }
        }
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m answered"),
            "2026  INFO answered"
        );
    }
}
