//! The web console end to end, in a real browser: `patrol-sync serve --demo` (this crate's
//! binary) on a free port, then `tests/e2e/console.e2e.mjs` driving Debian's headless
//! Chromium through `playwright-core`: sign in as a manager, the heat map and a missed
//! slot's detail, a hazard assigned and verified through the pages, devices, the language
//! switch, sign-out, and a guard kept out. Screenshots of each page are kept under
//! `target/e2e/screenshots/` (the CI artifacts).
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci --prefix tests/e2e`.
//! Without them the test says what is missing and passes; with `REQUIRE_E2E=1` (as in
//! `.ci/run`) it fails instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// What is missing for the browser test, if anything.
fn missing(root: &Path, chromium: &str) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !Path::new(chromium).exists() {
        return Some(format!(
            "{chromium} is missing (apt-get install chromium, or set CHROMIUM)"
        ));
    }
    if !root.join("tests/e2e/node_modules/playwright-core").exists() {
        return Some("playwright-core is missing (npm ci --prefix tests/e2e)".into());
    }
    None
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

#[test]
fn console_end_to_end_in_headless_chromium() {
    let root = workspace();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if let Some(why) = missing(&root, &chromium) {
        if std::env::var("REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("REQUIRE_E2E=1 but the browser test cannot run: {why}");
        }
        eprintln!("skipping the console's browser test: {why}");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(data.path().join("server.log")).unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_patrol-sync"))
            .args(["serve", "--demo", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start patrol-sync serve --demo"),
    );
    let started = Instant::now();
    while !ready(port) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not become ready; log: {}",
            std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let shots = root.join("target/e2e/screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg("console.e2e.mjs")
        .current_dir(root.join("tests/e2e"))
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}); server log:\n{}",
        shots.display(),
        std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default()
    );
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 8, "a screenshot of each page: {taken} taken");
}

/// The console's shared module without a browser: `node --test tests/e2e/core.test.mjs`
/// (CSV cells defused like the server's exports, messages, percentages).
#[test]
fn console_core_module_unit_tests() {
    let root = workspace();
    if Command::new("node").arg("--version").output().is_err() {
        if std::env::var("REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("REQUIRE_E2E=1 but node is not installed");
        }
        eprintln!("skipping the console's module tests: node is not installed");
        return;
    }
    let out = Command::new("node")
        .args(["--test", "core.test.mjs"])
        .current_dir(root.join("tests/e2e"))
        .output()
        .expect("run node --test");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
