//! Photos in an S3-compatible store through `object_store`: uploaded in parts from the
//! local file (never held whole in memory); S3 makes an object visible only once complete.

use super::{valid_key, BlobStore, ByteStream};
use anyhow::Context;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
}

/// Where an S3-compatible store is and how to sign in to it.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: bool,
}

impl S3Blobs {
    pub fn from_config(cfg: &crate::config::Config) -> anyhow::Result<Self> {
        Self::new(S3Settings {
            endpoint: cfg.s3_endpoint.clone(),
            bucket: cfg.s3_bucket.clone().context("s3_bucket is not set")?,
            region: cfg.s3_region.clone(),
            access_key_id: cfg.s3_access_key_id.as_ref().map(|s| s.expose().to_owned()),
            secret_access_key: cfg
                .s3_secret_access_key
                .as_ref()
                .map(|s| s.expose().to_owned()),
            allow_http: cfg.s3_allow_http,
        })
    }

    pub fn new(s: S3Settings) -> anyhow::Result<Self> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_allow_http(s.allow_http);
        if let Some(e) = &s.endpoint {
            // Path-style addressing: what MinIO, moto, s3s and most self-hosted stores want.
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let Some(k) = &s.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        Ok(Self {
            store: Arc::new(b.build().context("configuring the S3 photo store")?),
        })
    }

    fn path(key: &str) -> anyhow::Result<ObjPath> {
        anyhow::ensure!(valid_key(key), "not a blob key: {key:?}");
        Ok(ObjPath::from(format!("photos/{key}")))
    }
}

/// Part size for uploads (S3's smallest allowed part but the last).
const PART: usize = 5 * 1024 * 1024;

#[async_trait]
impl BlobStore for S3Blobs {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.store.head(&Self::path(key)?).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        let path = Self::path(key)?;
        if self.size(key).await?.is_some() {
            let _ = tokio::fs::remove_file(file).await;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    w.abort().await?;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await?;
            w.write(&buf[..n]);
        }
        w.finish().await?;
        let _ = tokio::fs::remove_file(file).await;
        Ok(())
    }

    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> anyhow::Result<Option<ByteStream>> {
        let opts = GetOptions {
            range: range.map(|(a, b)| GetRange::Bounded(a..b + 1)),
            ..Default::default()
        };
        match self.store.get_opts(&Self::path(key)?, opts).await {
            Ok(r) => Ok(Some(
                r.into_stream()
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
