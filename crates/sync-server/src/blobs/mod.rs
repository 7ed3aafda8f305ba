//! Photo bytes, content-addressed by their SHA-256: a local directory (the default) or any
//! S3-compatible store, behind one small trait. A blob is written whole or not at all:
//! nothing reads a half-written photo.

pub mod local;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::path::Path;
use std::sync::Arc;

pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;
pub type DynBlobStore = Arc<dyn BlobStore>;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `local` or `s3`.
    fn kind(&self) -> &'static str;
    /// The size of the blob under `key`, if it is there.
    async fn size(&self, key: &str) -> anyhow::Result<Option<u64>>;
    /// Stores the complete file at `file` under `key` (the file is consumed). Visible only
    /// once complete; storing a key that is already there leaves it as it was.
    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()>;
    /// The blob's bytes, all or the inclusive range `start..=end`; `None` if absent.
    async fn get(&self, key: &str, range: Option<(u64, u64)>)
        -> anyhow::Result<Option<ByteStream>>;
    /// Removes the blob (absent is fine).
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
}

/// The store the configuration names.
pub fn from_config(cfg: &crate::config::Config) -> anyhow::Result<DynBlobStore> {
    Ok(match cfg.photo_store {
        crate::config::PhotoStoreKind::Local => Arc::new(local::LocalBlobs::new(cfg.photo_dir())?),
        crate::config::PhotoStoreKind::S3 => Arc::new(s3::S3Blobs::from_config(cfg)?),
    })
}

/// Whether `key` is one the stores accept: a hash in lower-case hex, with an optional
/// `.suffix` of lower-case letters (`….thumb`).
pub fn valid_key(key: &str) -> bool {
    let (hash, suffix) = key.split_once('.').unwrap_or((key, ""));
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && suffix.bytes().all(|b| b.is_ascii_lowercase())
}
