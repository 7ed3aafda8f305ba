//! Photos: metadata pushed offline first and the bytes later, stored once by hash, checked
//! (hash, type, size, declared metadata) with clear problems, served scoped with ETag and
//! ranges, and the bytes still missing listed per device.

use crate::helpers::*;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use uuid::Uuid;

/// Bytes that sniff as a JPEG, different per `seed`.
fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.extend((0..len.saturating_sub(4)).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    b
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A `photo` fact of `bytes` (as a JPEG unless `mime` says otherwise).
fn photo_fact(estate: &str, seq: u64, sha256: &str, len: usize, mime: &str) -> Value {
    let mut c = Scan::new(estate, seq).json();
    c["kind"] = json!("photo");
    c["data"] = json!({
        "estate_id": estate,
        "sha256": sha256,
        "bytes": len,
        "mime": mime,
        "width": 4032, "height": 3024,
        "taken_at": "2026-11-22T01:30:00Z",
        "subject": { "kind": "scan", "id": Uuid::now_v7() },
        "role": "evidence",
    });
    c
}

async fn put(app: &TestApp, s: &Session, sha256: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/photos/{sha256}")))
        .bearer_auth(&s.access)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, s: &Session, sha256: &str) -> reqwest::RequestBuilder {
    app.client
        .get(app.url(&format!("/v1/photos/{sha256}")))
        .bearer_auth(&s.access)
}

/// Every file under `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = vec![];
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn missing(app: &TestApp, s: &Session, estate: &str) -> Value {
    json_ok(
        app.client
            .get(app.url(&format!("/v1/estates/{estate}/photos/missing")))
            .bearer_auth(&s.access)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn metadata_offline_first_then_the_bytes() {
    metadata_offline_first_then_the_bytes_on(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn metadata_offline_first_then_the_bytes_postgres() {
    if let Some(app) =
        TestApp::spawn_postgres("metadata_offline_first_then_the_bytes_postgres").await
    {
        metadata_offline_first_then_the_bytes_on(&app).await;
    }
}

async fn metadata_offline_first_then_the_bytes_on(app: &TestApp) {
    let guard = app.login_new_device("guard1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(1, 50_000);
    let h = sha(&bytes);

    // The metadata syncs at once; the answer says the bytes are still owed.
    let answer = app
        .push_ok(
            &guard,
            vec![photo_fact(
                &estate,
                1,
                &h.to_uppercase(),
                bytes.len(),
                "image/jpeg",
            )],
        )
        .await;
    assert_eq!(results(&answer, 1)[0]["status"], "accepted", "{answer}");
    assert_eq!(answer["photos_missing"], json!([h]), "{answer}");
    // The manager sees which handset still holds it.
    // (The demo data's online photos have no bytes either.)
    let m = missing(app, &manager, &estate).await;
    let mine = device_entry(&m, guard.device_id).expect("the guard's handset is listed");
    assert_eq!(mine["photos"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(mine["photos"][0]["sha256"], h);
    assert_eq!(mine["photos"][0]["role"], "evidence");
    assert_eq!(mine["photos"][0]["bytes"], bytes.len());
    // Not a guard's business.
    let r = app
        .client
        .get(app.url(&format!("/v1/estates/{estate}/photos/missing")))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    // Before the bytes: 404.
    let r = get(app, &guard, &h).await.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Later, on a better link, the bytes.
    let r = put(app, &guard, &h, bytes.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["bytes"], bytes.len());
    assert_eq!(body["mime"], "image/jpeg");
    // Again: idempotent, nothing rewritten.
    let r = put(app, &guard, &h, bytes.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["created"], false);

    // Served to the pusher and the manager, with ETag and caching.
    for who in [&guard, &manager] {
        let r = get(app, who, &h).await.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[ETAG], format!("\"{h}\"").as_str());
        assert_eq!(r.headers()[CONTENT_TYPE], "image/jpeg");
        let cc = r.headers()[CACHE_CONTROL].to_str().unwrap().to_owned();
        assert!(cc.contains("private") && cc.contains("immutable"), "{cc}");
        assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    }
    let r = get(app, &guard, &h)
        .await
        .header(IF_NONE_MATCH, format!("\"{h}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // HEAD: the headers only.
    let r = app
        .client
        .head(app.url(&format!("/v1/photos/{h}")))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[CONTENT_LENGTH],
        bytes.len().to_string().as_str()
    );
    // Ranges.
    let r = get(app, &guard, &h)
        .await
        .header(RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()[CONTENT_RANGE],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[100..200].to_vec());
    let r = get(app, &guard, &h)
        .await
        .header(RANGE, format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[CONTENT_RANGE],
        format!("bytes */{}", bytes.len()).as_str()
    );
    assert_problem(
        r,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "/problems/range-not-satisfiable",
    )
    .await;

    // Nothing is missing any more.
    let answer = app
        .push_ok(&guard, vec![Scan::new(&estate, 2).json()])
        .await;
    assert_eq!(answer["photos_missing"], json!([]), "{answer}");
    let m = missing(app, &manager, &estate).await;
    assert!(device_entry(&m, guard.device_id).is_none(), "{m}");
}

fn device_entry(m: &Value, device: Uuid) -> Option<&Value> {
    m["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("devices is an array: {m}"))
        .iter()
        .find(|d| d["device_id"] == json!(device))
}

#[tokio::test]
async fn the_same_photo_from_two_devices_is_stored_once() {
    the_same_photo_from_two_devices_is_stored_once_on(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn the_same_photo_from_two_devices_is_stored_once_postgres() {
    if let Some(app) =
        TestApp::spawn_postgres("the_same_photo_from_two_devices_is_stored_once_postgres").await
    {
        the_same_photo_from_two_devices_is_stored_once_on(&app).await;
    }
}

async fn the_same_photo_from_two_devices_is_stored_once_on(app: &TestApp) {
    let a = app.login_new_device("guard1").await;
    let b = app.login_new_device("guard2").await;
    let estate = a.estate(ESTATE_1);
    let bytes = jpeg(2, 20_000);
    let h = sha(&bytes);
    for s in [&a, &b] {
        app.push_ok(
            s,
            vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
        )
        .await;
    }
    assert_eq!(
        put(app, &a, &h, bytes.clone()).await.status(),
        StatusCode::CREATED
    );
    let r = put(app, &b, &h, bytes.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["created"], false);
    let stored = files(&app.data_dir.join("photos"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(files(&app.data_dir.join("uploads")).is_empty());
    // Each device's push answer no longer lists it.
    let answer = app.push_ok(&b, vec![Scan::new(&estate, 2).json()]).await;
    assert_eq!(answer["photos_missing"], json!([]));
}

#[tokio::test]
async fn bad_bytes_are_refused_clearly_and_nothing_is_stored() {
    let s = TestApp::spawn_with(|c| c.max_photo_bytes = 10_000).await;
    let app = &s.app;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);

    // Wrong hash: bytes that are not the URL's hash.
    let bytes = jpeg(3, 5_000);
    let h = sha(&bytes);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
    )
    .await;
    let mut other = bytes.clone();
    other[4000] ^= 1;
    let body = assert_problem(
        put(app, &guard, &h, other).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/hash-mismatch",
    )
    .await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("nothing was stored"));

    // Wrong type: a GIF is not a photo we take, whatever the metadata says.
    let gif: Vec<u8> = b"GIF89a"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0, 994))
        .collect();
    let gh = sha(&gif);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 2, &gh, gif.len(), "image/png")],
    )
    .await;
    assert_problem(
        put(app, &guard, &gh, gif).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "/problems/unsupported-photo-type",
    )
    .await;

    // Not what the metadata declared: a PNG declared as a JPEG, and a wrong size.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend([9u8; 500]);
    let ph = sha(&png);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 3, &ph, png.len(), "image/jpeg")],
    )
    .await;
    assert_problem(
        put(app, &guard, &ph, png).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/metadata-mismatch",
    )
    .await;
    let small = jpeg(4, 700);
    let sh = sha(&small);
    app.push_ok(&guard, vec![photo_fact(&estate, 4, &sh, 999, "image/jpeg")])
        .await;
    assert_problem(
        put(app, &guard, &sh, small).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/metadata-mismatch",
    )
    .await;

    // Too large: over max_photo_bytes, refused while streaming.
    let big = jpeg(5, 20_000);
    let bh = sha(&big);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 5, &bh, 9_000, "image/jpeg")],
    )
    .await;
    let body = assert_problem(
        put(app, &guard, &bh, big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "/problems/photo-too-large",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("10000"));

    // Metadata declaring more than the limit is refused at push.
    let answer = app
        .push_ok(
            &guard,
            vec![photo_fact(
                &estate,
                6,
                &"a".repeat(64),
                10_001,
                "image/jpeg",
            )],
        )
        .await;
    assert_eq!(results(&answer, 1)[0]["code"], "invalid_value", "{answer}");

    // Nothing stored, nothing left behind; every photo is still missing.
    assert!(files(&app.data_dir.join("photos")).is_empty());
    assert!(files(&app.data_dir.join("uploads")).is_empty());
    for x in [&h, &gh, &ph, &sh, &bh] {
        assert_eq!(
            get(app, &guard, x).await.send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    let answer = app
        .push_ok(&guard, vec![Scan::new(&estate, 7).json()])
        .await;
    assert_eq!(
        answer["photos_missing"].as_array().unwrap().len(),
        5,
        "{answer}"
    );
}

#[tokio::test]
async fn photos_are_scoped_and_metadata_comes_first() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let colleague = app.login_new_device("guard2").await;
    let elsewhere = app.login_new_device("guard3").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(6, 3_000);
    let h = sha(&bytes);

    // Bytes with no metadata: 404, metadata first.
    assert_problem(
        put(&app, &guard, &h, bytes.clone()).await,
        StatusCode::NOT_FOUND,
        "/problems/not-found",
    )
    .await;
    // Not a hash at all.
    assert_eq!(
        put(&app, &guard, "abc", bytes.clone()).await.status(),
        StatusCode::NOT_FOUND
    );

    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
    )
    .await;
    assert_eq!(
        put(&app, &guard, &h, bytes.clone()).await.status(),
        StatusCode::CREATED
    );
    // Another estate's guard, and a guard of the same estate who did not take it: 404.
    for s in [&elsewhere, &colleague] {
        let r = get(&app, s, &h).await.send().await.unwrap();
        assert_problem(r, StatusCode::NOT_FOUND, "/problems/not-found").await;
        assert_eq!(
            put(&app, s, &h, bytes.clone()).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // Without a token: 401.
    let r = app
        .client
        .get(app.url(&format!("/v1/photos/{h}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn photo_facts_are_read_for_their_meaning() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let h = "b".repeat(64);
    let mut bad_mime = photo_fact(&estate, 1, &h, 10, "image/gif");
    let mut no_subject = photo_fact(&estate, 2, &h, 10, "image/jpeg");
    no_subject["data"]
        .as_object_mut()
        .unwrap()
        .remove("subject");
    let mut bad_role = photo_fact(&estate, 3, &h, 10, "image/jpeg");
    bad_role["data"]["role"] = json!("selfie");
    let mut bytes_text = photo_fact(&estate, 4, &h, 10, "image/jpeg");
    bytes_text["data"]["bytes"] = json!("10");
    let good = photo_fact(&estate, 5, &h, 10, "image/webp");
    let answer = app
        .push_ok(
            &guard,
            vec![bad_mime.take(), no_subject, bad_role, bytes_text, good],
        )
        .await;
    let r = results(&answer, 5);
    let codes: Vec<&str> = r.iter().map(|x| x["code"].as_str().unwrap_or("")).collect();
    assert_eq!(
        codes,
        [
            "invalid_value",
            "missing_field",
            "invalid_value",
            "wrong_type",
            ""
        ],
        "{answer}"
    );
    assert_eq!(r[4]["status"], "accepted");
}

#[tokio::test]
async fn a_ticket_shows_whether_its_photos_bytes_arrived() {
    a_ticket_shows_whether_its_photos_bytes_arrived_on(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_ticket_shows_whether_its_photos_bytes_arrived_postgres() {
    if let Some(app) =
        TestApp::spawn_postgres("a_ticket_shows_whether_its_photos_bytes_arrived_postgres").await
    {
        a_ticket_shows_whether_its_photos_bytes_arrived_on(&app).await;
    }
}

async fn a_ticket_shows_whether_its_photos_bytes_arrived_on(app: &TestApp) {
    let guard = app.login_new_device("guard1").await;
    let manager = app.login_new_device("manager1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(7, 4_000);
    let h = sha(&bytes);
    let r = app
        .client
        .post(app.url("/v1/hazards"))
        .bearer_auth(&guard.access)
        .json(&json!({
            "estate_id": estate, "grade": "general", "category": "fire",
            "title": "Fire door wedged open",
            "photos": [{ "sha256": h, "role": "before", "bytes": bytes.len(), "mime": "image/jpeg" }],
        }))
        .send()
        .await
        .unwrap();
    let t = json_status(r, StatusCode::CREATED).await;
    assert_eq!(t["timeline"][0]["photos"][0]["received"], false, "{t}");
    // The reporter's photo is missing until uploaded, and counts for the manager's list.
    let m = missing(app, &manager, &estate).await;
    assert!(device_entry(&m, guard.device_id).is_some(), "{m}");
    assert_eq!(
        put(app, &guard, &h, bytes.clone()).await.status(),
        StatusCode::CREATED
    );
    let id = t["id"].as_str().unwrap();
    let t = json_ok(
        app.client
            .get(app.url(&format!("/v1/hazards/{id}")))
            .bearer_auth(&manager.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(t["timeline"][0]["photos"][0]["received"], true, "{t}");
    // And the manager may fetch the evidence.
    let r = get(app, &manager, &h).await.send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);

    // A photo is visible to whoever may see its subject: engineers see an open ticket's
    // before photo; another guard of the estate, who may not see the ticket, gets 404.
    let engineer = app.login_new_device("engineer1").await;
    let r = get(app, &engineer, &h).await.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    let colleague = app.login_new_device("guard2").await;
    let r = get(app, &colleague, &h).await.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

fn part(
    app: &TestApp,
    s: &Session,
    h: &str,
    range: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    app.client
        .put(app.url(&format!("/v1/photos/{h}")))
        .bearer_auth(&s.access)
        .header(CONTENT_RANGE, range.to_owned())
        .body(body)
}

async fn head_offset(app: &TestApp, s: &Session, h: &str) -> (StatusCode, Option<u64>) {
    let r = app
        .client
        .head(app.url(&format!("/v1/photos/{h}")))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    let off = r
        .headers()
        .get("upload-offset")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status(), off)
}

#[tokio::test]
async fn an_upload_cut_in_the_middle_resumes_where_the_server_stopped() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(8, 300_000);
    let h = sha(&bytes);
    let total = bytes.len();
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, total, "image/jpeg")],
    )
    .await;
    assert_eq!(
        head_offset(&app, &guard, &h).await,
        (StatusCode::NOT_FOUND, Some(0))
    );

    // The link drops after 100,000 of the 300,000 bytes: a raw connection closed mid-body.
    {
        use tokio::io::AsyncWriteExt;
        let addr = app.address.trim_start_matches("http://").to_owned();
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "PUT /v1/photos/{h} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Range: bytes 0-{}/{total}\r\nContent-Length: {total}\r\n\r\n",
            guard.access,
            total - 1
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(&bytes[..100_000]).await.unwrap();
        sock.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(sock);
    }
    // The server kept what arrived.
    let mut held = 0;
    for _ in 0..50 {
        let (status, off) = head_offset(&app, &guard, &h).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        held = off.unwrap();
        if held == 100_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(held, 100_000);

    // A part that does not start where the server stands: 409 with the offset.
    let r = part(
        &app,
        &guard,
        &h,
        &format!("bytes 200000-{}/{total}", total - 1),
        bytes[200_000..].to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["upload-offset"], "100000");
    assert_problem(r, StatusCode::CONFLICT, "/problems/upload-offset-mismatch").await;

    // Resume in two parts: the middle (202, the new offset), then the rest (201, stored).
    let r = part(
        &app,
        &guard,
        &h,
        &format!("bytes 100000-199999/{total}"),
        bytes[100_000..200_000].to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["upload-offset"], "200000");
    assert_eq!(r.headers()[RANGE], "bytes=0-199999");
    let r = part(
        &app,
        &guard,
        &h,
        &format!("bytes 200000-{}/{total}", total - 1),
        bytes[200_000..].to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = get(&app, &guard, &h)
        .await
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), bytes);
    assert_eq!(head_offset(&app, &guard, &h).await.0, StatusCode::OK);
    assert!(files(&app.data_dir.join("uploads")).is_empty());
}

#[tokio::test]
async fn a_resumed_upload_is_checked_like_a_whole_one() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(9, 20_000);
    let h = sha(&bytes);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
    )
    .await;
    let r = part(
        &app,
        &guard,
        &h,
        "bytes 0-9999/20000",
        bytes[..10_000].to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut tail = bytes[10_000..].to_vec();
    tail[5] ^= 0xFF;
    let r = part(&app, &guard, &h, "bytes 10000-19999/20000", tail)
        .send()
        .await
        .unwrap();
    assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/hash-mismatch",
    )
    .await;
    assert!(files(&app.data_dir.join("uploads")).is_empty());
    assert!(files(&app.data_dir.join("photos")).is_empty());
    // A bad Content-Range is a validation problem.
    let r = part(&app, &guard, &h, "bytes 5-1/20000", vec![0; 10])
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
}

#[tokio::test]
async fn partial_uploads_expire() {
    let s = TestApp::spawn_with(|c| c.upload_expiry_secs = 1).await;
    let app = &s.app;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = jpeg(10, 20_000);
    let h = sha(&bytes);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
    )
    .await;
    let r = part(
        app,
        &guard,
        &h,
        "bytes 0-9999/20000",
        bytes[..10_000].to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(head_offset(app, &guard, &h).await.1, Some(10_000));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while head_offset(app, &guard, &h).await.1 != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the partial upload did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(files(&app.data_dir.join("uploads")).is_empty());
}

/// A real 640×320 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6).
fn rotated_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 320, |x, _| image::Rgb([(x % 256) as u8, 80, 160]));
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut plain)
        .encode_image(&img)
        .unwrap();
    let tiff: [u8; 26] = [
        0x49, 0x49, 0x2A, 0x00, 0x08, 0, 0, 0, // little-endian TIFF, IFD at 8
        1, 0, // one entry
        0x12, 0x01, 0x03, 0x00, 0x01, 0, 0, 0, 0x06, 0x00, 0, 0, // Orientation = 6
        0, 0, 0, 0, // no next IFD
    ];
    let mut app1 = vec![0xFF, 0xE1, 0x00, (2 + 6 + tiff.len()) as u8];
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec();
    out.extend(app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[tokio::test]
async fn a_thumbnail_is_made_once_upright() {
    let app = TestApp::spawn().await;
    let guard = app.login_new_device("guard1").await;
    let estate = guard.estate(ESTATE_1);
    let bytes = rotated_jpeg();
    let h = sha(&bytes);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 1, &h, bytes.len(), "image/jpeg")],
    )
    .await;
    assert_eq!(
        put(&app, &guard, &h, bytes.clone()).await.status(),
        StatusCode::CREATED
    );
    let r = app
        .client
        .get(app.url(&format!("/v1/photos/{h}?size=thumb")))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/jpeg");
    assert_eq!(r.headers()[ETAG], format!("\"{h}-thumb\"").as_str());
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    // 640×320 turned upright is 320×640; its thumbnail 160×320.
    assert_eq!((thumb.width(), thumb.height()), (160, 320));
    // The original is untouched; an unknown size is a validation problem.
    let r = get(&app, &guard, &h).await.send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    let r = app
        .client
        .get(app.url(&format!("/v1/photos/{h}?size=huge")))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
    // Photos that cannot be decoded are stored without one: ?size=thumb is 404.
    let fake = jpeg(11, 2_000);
    let fh = sha(&fake);
    app.push_ok(
        &guard,
        vec![photo_fact(&estate, 2, &fh, fake.len(), "image/jpeg")],
    )
    .await;
    assert_eq!(
        put(&app, &guard, &fh, fake).await.status(),
        StatusCode::CREATED
    );
    let r = app
        .client
        .get(app.url(&format!("/v1/photos/{fh}?size=thumb")))
        .bearer_auth(&guard.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
