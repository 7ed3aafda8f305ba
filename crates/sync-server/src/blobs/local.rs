//! Photos in a local directory: `<dir>/<ab>/<abcdef…>`, written to a temporary file in the
//! same directory and renamed into place, so a reader sees the whole photo or nothing.

use super::{valid_key, BlobStore, ByteStream};
use anyhow::Context;
use async_trait::async_trait;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

pub struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the photo directory {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(valid_key(key), "not a blob key: {key:?}");
        Ok(self.dir.join(&key[..2]).join(key))
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        let dest = self.path(key)?;
        let parent = dest.parent().expect("a blob path has a parent");
        tokio::fs::create_dir_all(parent).await?;
        if tokio::fs::try_exists(&dest).await? {
            let _ = tokio::fs::remove_file(file).await;
            return Ok(());
        }
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        // A rename when the file is on the same file system; a copy (then rename) otherwise.
        if tokio::fs::rename(file, &tmp).await.is_err() {
            tokio::fs::copy(file, &tmp).await?;
            let f = tokio::fs::File::open(&tmp).await?;
            f.sync_all().await?;
            let _ = tokio::fs::remove_file(file).await;
        }
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> anyhow::Result<Option<ByteStream>> {
        let mut f = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(match range {
            None => ReaderStream::new(f).boxed(),
            Some((start, end)) => {
                f.seek(std::io::SeekFrom::Start(start)).await?;
                ReaderStream::new(f.take(end + 1 - start)).boxed()
            }
        }))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
