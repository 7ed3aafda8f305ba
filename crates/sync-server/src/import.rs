//! `patrol-sync import checkpoints|routes FILE.csv --estate …`: reads the file against the
//! estate's data with shared-core's import planner (every bad row reported with its line),
//! then applies the whole plan in one transaction, or shows it (`--dry-run`).

use crate::cli::ImportKind;
use crate::clock::now_ms;
use crate::storage::DynStore;
use indicatif::{ProgressBar, ProgressStyle};
use shared_core::patrol::import::{plan_checkpoints, plan_routes, ImportPlan};
use shared_core::patrol::RefError;
use std::path::Path;

/// Largest CSV file accepted.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One line per refused row, in line order.
pub fn format_errors(file: &Path, errors: &[RefError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&format!(
            "{}:{}: {} [{}]: {}\n",
            file.display(),
            e.at,
            e.field,
            e.code,
            e.message
        ));
    }
    out
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} rows ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

pub async fn run(
    store: &DynStore,
    what: ImportKind,
    file: &Path,
    estate: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let estates = store.list_estates().await?;
    let e = estates
        .iter()
        .find(|e| e.id.to_string() == estate || e.name == estate)
        .ok_or_else(|| {
            anyhow::anyhow!("--estate {estate:?}: no such estate (see `patrol-sync estate list`)")
        })?;
    let meta = std::fs::metadata(file)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", file.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE_BYTES,
        "{} is {} bytes; at most {MAX_FILE_BYTES} are accepted",
        file.display(),
        meta.len()
    );
    let bytes = std::fs::read(file)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|err| anyhow::anyhow!("{} is not UTF-8 text: {err}", file.display()))?;
    let rows = text.lines().count().saturating_sub(1) as u64;

    let current = store.reference(e.id).await?;
    let pb = bar(rows, "checking");
    let mut progress = |n: usize| pb.set_position(n as u64);
    let mut new_id = uuid::Uuid::now_v7;
    let plan: Result<ImportPlan, Vec<RefError>> = match what {
        ImportKind::Checkpoints => plan_checkpoints(&text, &current, &mut new_id, &mut progress),
        ImportKind::Routes => plan_routes(&text, &current, &mut new_id, &mut progress),
    };
    pb.finish_and_clear();
    let plan = match plan {
        Ok(p) => p,
        Err(errors) => {
            eprint!("{}", format_errors(file, &errors));
            anyhow::bail!(
                "{} problem(s) in {}; nothing was imported",
                errors.len(),
                file.display()
            );
        }
    };
    let kind = match what {
        ImportKind::Checkpoints => "checkpoints",
        ImportKind::Routes => "routes",
    };
    let summary = format!(
        "{} rows: {} {kind} to create, {} to update{}",
        plan.rows,
        plan.created,
        plan.updated,
        if plan.new_zones.is_empty() {
            String::new()
        } else {
            format!("; new zones: {}", plan.new_zones.join(", "))
        }
    );
    if dry_run {
        println!("dry run, nothing written: {summary} in {}", e.name);
        return Ok(());
    }
    let pb = ProgressBar::new_spinner();
    pb.set_message(format!(
        "writing {} changes in one transaction",
        plan.ops.len()
    ));
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    let outcome = store.apply_reference(e.id, plan.ops, now_ms()).await?;
    pb.finish_and_clear();
    match outcome {
        Ok(changes) => {
            println!(
                "imported into {}: {summary} ({} changes)",
                e.name,
                changes.len()
            );
            Ok(())
        }
        Err(errors) => {
            // The data changed between planning and writing (someone else edited it).
            eprint!("{}", format_errors(file, &errors));
            anyhow::bail!(
                "the estate's data changed while importing; nothing was imported, run it again"
            )
        }
    }
}
