//! The blob store contract: one body of tests, run on the local directory store and on the
//! S3 store against a real S3-compatible server on loopback (`python3 -m moto.server`).
//! Without moto the S3 half says why it skips; with `REQUIRE_S3=1` it fails instead.

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use sync_server::blobs::local::LocalBlobs;
use sync_server::blobs::s3::{S3Blobs, S3Settings};
use sync_server::blobs::BlobStore;

fn key_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file_with(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(format!("upload-{}", uuid::Uuid::new_v4()));
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

async fn read(store: &dyn BlobStore, key: &str, range: Option<(u64, u64)>) -> Option<Vec<u8>> {
    let s = store.get(key, range).await.unwrap()?;
    let parts: Vec<bytes::Bytes> = s.try_collect().await.unwrap();
    Some(parts.concat())
}

async fn contract(store: &dyn BlobStore) {
    let tmp = tempfile::tempdir().unwrap();
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let key = key_of(&photo);

    // Absent: no size, no bytes, deleting is fine.
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert!(store.get(&key, None).await.unwrap().is_none());
    store.delete(&key).await.unwrap();

    // Stored whole; the upload file is consumed.
    let f = file_with(tmp.path(), &photo);
    store.put_file(&key, &f).await.unwrap();
    assert!(!f.exists(), "the upload file is consumed");
    assert_eq!(store.size(&key).await.unwrap(), Some(photo.len() as u64));
    assert_eq!(read(store, &key, None).await.unwrap(), photo);
    assert_eq!(
        read(store, &key, Some((10, 19))).await.unwrap(),
        photo[10..20].to_vec()
    );
    let last = photo.len() as u64 - 1;
    assert_eq!(
        read(store, &key, Some((last - 4, last))).await.unwrap(),
        photo[photo.len() - 5..].to_vec()
    );

    // Storing the same key again leaves the first bytes (content-addressed: the same).
    let again = file_with(tmp.path(), &photo);
    store.put_file(&key, &again).await.unwrap();
    assert!(!again.exists());
    assert_eq!(read(store, &key, None).await.unwrap(), photo);

    // A thumbnail beside it has its own key.
    let thumb_key = format!("{key}.thumb");
    let thumb = file_with(tmp.path(), b"small");
    store.put_file(&thumb_key, &thumb).await.unwrap();
    assert_eq!(read(store, &thumb_key, None).await.unwrap(), b"small");

    // A photo larger than one upload part (S3 multipart) round-trips.
    let big: Vec<u8> = (0..(6 * 1024 * 1024 + 123) as u32)
        .map(|i| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    let big_key = key_of(&big);
    store
        .put_file(&big_key, &file_with(tmp.path(), &big))
        .await
        .unwrap();
    assert_eq!(store.size(&big_key).await.unwrap(), Some(big.len() as u64));
    let got = read(store, &big_key, None).await.unwrap();
    assert_eq!(key_of(&got), big_key);

    // Keys that are not hashes are refused (no path tricks).
    for bad in ["../etc/passwd", "ABC", "", &key.to_uppercase()] {
        assert!(store.size(bad).await.is_err(), "{bad}");
        assert!(store
            .put_file(bad, &file_with(tmp.path(), b"x"))
            .await
            .is_err());
    }

    // Deleted.
    store.delete(&key).await.unwrap();
    store.delete(&thumb_key).await.unwrap();
    store.delete(&big_key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert!(store.get(&big_key, None).await.unwrap().is_none());
}

#[tokio::test]
async fn local_blob_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::new(dir.path().join("photos")).unwrap();
    contract(&store).await;
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = walk(&dir.path().join("photos"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A moto server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Result<Moto, String> {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("python3 is not runnable: {e}"))?;
    if !ok.success() {
        return Err("the moto package is not installed (pip install 'moto[server]')".into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start moto: {e}"))?;
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("moto did not start listening within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

/// Creates a bucket with a plain S3 `PUT /bucket` (moto does not check signatures).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blob_store_contract() {
    let moto = match start_moto() {
        Ok(m) => m,
        Err(why) if std::env::var_os("REQUIRE_S3").is_some() => {
            panic!("REQUIRE_S3 is set but the S3 test server cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping the S3 blob store contract: {why}");
            return;
        }
    };
    create_bucket(moto.port, "patrol-photos");
    let store = S3Blobs::new(S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
        bucket: "patrol-photos".into(),
        region: "us-east-1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
    })
    .unwrap();
    contract(&store).await;
}
