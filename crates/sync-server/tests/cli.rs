//! The `patrol-sync` binary as an operator uses it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sync_server::auth::password;
use sync_server::storage;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patrol-sync"));
    // The test process's own PATROL_* settings must not leak into the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("PATROL_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn serve_demo_prints_the_users_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start patrol-sync");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "server exited early:\n{printed}"
        );
        printed.push_str(&line);
        if let Some(rest) = line.strip_prefix("patrol-sync listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no 'listening' line:\n{printed}");
    };
    for user in [
        "manager1",
        "supervisor1",
        "guard1",
        "guard2",
        "engineer1",
        "engineer2",
        "guard3",
        "admin",
    ] {
        assert!(printed.contains(user), "{user} is printed:\n{printed}");
    }
    // It answers: a raw HTTP request to /healthz.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("patrol-hlc:"),
        "{answer}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "clean exit after SIGTERM, got {code:?}");
    assert!(
        dir.path().join("jwt-secret").exists(),
        "the generated secret is kept in the data dir"
    );
}

#[tokio::test]
async fn estate_and_user_add_make_a_user_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = bin();
        c.args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "estate",
            "add",
            "测试小区 Test Court",
            "--timezone",
            "Asia/Hong_Kong",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let estate_id = String::from_utf8(out.stdout)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();

    let out = run(
        &[
            "user",
            "add",
            "guard9",
            "--name",
            "Guard Nine",
            "--role",
            "测试小区 Test Court:guard",
            "--role",
            &format!("{estate_id}:engineer"),
        ],
        Some("correct horse\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Refusals say why and change nothing.
    let dup = run(
        &[
            "user",
            "add",
            "guard9",
            "--role",
            &format!("{estate_id}:guard"),
        ],
        Some("another pw\n"),
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad_role = run(
        &[
            "user",
            "add",
            "guard10",
            "--role",
            &format!("{estate_id}:captain"),
        ],
        Some("pw12345\n"),
    );
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role"));
    let bad_tz = run(&["estate", "add", "X", "--timezone", "Mars/Olympus"], None);
    assert!(!bad_tz.status.success());

    let store = storage::connect(&format!(
        "sqlite://{}",
        dir.path().join("patrol-sync.db").display()
    ))
    .await
    .unwrap();
    let user = store
        .find_user_by_username("guard9")
        .await
        .unwrap()
        .expect("guard9 exists");
    assert_eq!(user.name, "Guard Nine");
    assert!(password::verify("correct horse".into(), Some(user.password_hash.clone())).await);
    let mut roles: Vec<String> = store
        .memberships(user.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.role.to_string())
        .collect();
    roles.sort();
    assert_eq!(roles, vec!["engineer", "guard"]);
    assert!(store
        .find_user_by_username("guard10")
        .await
        .unwrap()
        .is_none());
}

/// `import checkpoints|routes`: a dry run writes nothing, a bad file names every bad line
/// and writes nothing, a good file is imported whole.
#[test]
fn import_checks_every_row_and_writes_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("run patrol-sync");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&["estate", "add", "江畔苑"]);
    assert!(ok, "{err}");
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "code,name,class,zone,nfc\nA-1,大门,key,门岗,04:a2:19:7c\nA-2,车库入口,general,车库,04A2197D\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "code,name,class,nfc\nB-1,一,key,0401\nB-2,二,sometimes,0402\nB-3,三,key,0401\n",
    )
    .unwrap();
    let g = good.to_str().unwrap();
    let b = bad.to_str().unwrap();

    let (ok, out, err) = run(&[
        "import",
        "checkpoints",
        g,
        "--estate",
        "江畔苑",
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("dry run") && out.contains("2 checkpoints to create"),
        "{out}"
    );

    let (ok, _, err) = run(&["import", "checkpoints", b, "--estate", "江畔苑"]);
    assert!(!ok, "a bad file fails");
    assert!(
        err.contains("bad.csv:3:"),
        "the bad class is on line 3: {err}"
    );
    assert!(
        err.contains("bad.csv:4:"),
        "the repeated tag is on line 4: {err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");

    let (ok, out, err) = run(&["import", "checkpoints", g, "--estate", "江畔苑"]);
    assert!(ok, "{err}");
    assert!(out.contains("imported into 江畔苑"), "{out}");
    // Again: the same codes update, nothing new.
    let (ok, out, err) = run(&["import", "checkpoints", g, "--estate", "江畔苑"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("0 checkpoints to create, 2 to update"),
        "{out}"
    );

    let (ok, _, err) = run(&["import", "routes", g, "--estate", "nowhere"]);
    assert!(!ok);
    assert!(err.contains("no such estate"), "{err}");
}
