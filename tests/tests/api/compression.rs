//! Compressed bodies (issue 5): a handset may push gzip or zstd and ask for compressed
//! answers; the size limits hold for the decompressed bytes; anything else is a clear
//! problem, never a 500.

use crate::helpers::{assert_problem, batch, json_ok, Scan, Session, TestApp, ESTATE_1};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::io::{Read, Write};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

async fn push_encoded(app: &TestApp, s: &Session, encoding: &str, body: Vec<u8>) -> Response {
    app.client
        .post(app.url("/v1/sync/push"))
        .bearer_auth(&s.access)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_ENCODING, encoding)
        .body(body)
        .send()
        .await
        .expect("push request")
}

fn changes(estate: &str, from_seq: u64, n: u64) -> Vec<Value> {
    (from_seq..from_seq + n)
        .map(|seq| Scan::new(estate, seq).json())
        .collect()
}

#[tokio::test]
async fn gzip_and_zstd_pushes_are_stored_like_plain_ones() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("guard1").await;
    let estate = s.estate(ESTATE_1);
    for (i, (encoding, pack)) in [
        ("gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("zstd", zstd),
        ("identity", |b: &[u8]| b.to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        let body = batch(s.device_id, changes(&estate, 1 + 10 * i as u64, 10));
        let raw = serde_json::to_vec(&body).unwrap();
        let answer = json_ok(push_encoded(&app, &s, encoding, pack(&raw)).await).await;
        let statuses: Vec<&str> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["accepted"; 10], "{encoding}: {answer}");
    }
    assert_eq!(app.pull_all(&s, None).await.facts().len(), 30);
}

#[tokio::test]
async fn answers_are_compressed_when_asked_and_plain_otherwise() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("guard1").await;
    let estate = s.estate(ESTATE_1);
    app.push_ok(&s, changes(&estate, 1, 50)).await;
    let pull = |encoding: Option<&'static str>| {
        let mut req = app
            .client
            .get(app.url("/v1/sync/pull"))
            .bearer_auth(&s.access);
        if let Some(e) = encoding {
            req = req.header(ACCEPT_ENCODING, e);
        }
        req.send()
    };
    let plain = pull(None).await.unwrap();
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.unwrap();
    let expected: Value = serde_json::from_slice(&plain).unwrap();
    // The 50 scans and the estates' reference changes.
    assert!(
        expected["changes"].as_array().unwrap().len() >= 50,
        "{expected}"
    );

    for encoding in ["gzip", "zstd"] {
        let resp = pull(Some(encoding)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_ENCODING], encoding);
        let packed = resp.bytes().await.unwrap();
        assert!(
            packed.len() * 4 < plain.len(),
            "{encoding}: {} bytes for {} plain",
            packed.len(),
            plain.len()
        );
        let mut out = Vec::new();
        match encoding {
            "gzip" => {
                flate2::read::GzDecoder::new(&packed[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            _ => out = zstd::decode_all(&packed[..]).unwrap(),
        }
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got["changes"], expected["changes"], "{encoding}");
    }
}

#[tokio::test]
async fn bad_encodings_are_clear_problems() {
    let app = TestApp::spawn().await;
    let s = app.login_new_device("guard1").await;
    let estate = s.estate(ESTATE_1);
    let raw = serde_json::to_vec(&batch(s.device_id, changes(&estate, 1, 3))).unwrap();

    // An encoding the server does not decode.
    let p = assert_problem(
        push_encoded(&app, &s, "br", raw.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "/problems/unsupported-encoding",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("gzip"), "{p}");

    // Said gzip, is not.
    assert_problem(
        push_encoded(&app, &s, "gzip", raw.clone()).await,
        StatusCode::BAD_REQUEST,
        "/problems/bad-encoding",
    )
    .await;
    // A cut zstd stream.
    let cut = zstd(&raw);
    assert_problem(
        push_encoded(&app, &s, "zstd", cut[..cut.len() / 2].to_vec()).await,
        StatusCode::BAD_REQUEST,
        "/problems/bad-encoding",
    )
    .await;

    // A small body that decompresses past the batch limit: refused by its real size.
    let mut big = br#"{"device_id":""#.to_vec();
    big.extend(std::iter::repeat_n(b'0', 64 << 20));
    let bomb = gzip(&big);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    assert_problem(
        push_encoded(&app, &s, "gzip", bomb).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "/problems/batch-too-large",
    )
    .await;

    // Nothing of it was stored.
    assert!(app.pull_all(&s, None).await.facts().is_empty());
}
