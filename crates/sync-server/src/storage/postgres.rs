//! PostgreSQL storage (being written).
use super::DynStore;

pub async fn connect(_url: &str) -> anyhow::Result<DynStore> {
    anyhow::bail!("PostgreSQL storage is not built yet")
}
