//! `plangraph backup` and `plangraph restore`: a SQLite store copied out, or brought back,
//! while servers run on it (the work is `plangraph_persistence::backup`'s). A Postgres store
//! is refused before any connection: `pg_dump` and `pg_restore` do it (see the README). Neither
//! command migrates a store that has plangraph's tables: a server of another version may run
//! on it.

use std::path::Path;

use plangraph_persistence::{BackupError, Store, redact};
use secrecy::ExposeSecret;

use super::StoreArgs;
use crate::error::CliError;

/// `plangraph backup FILE`: prints one line, what the copy holds.
pub async fn backup(file: &Path, store: &StoreArgs) -> Result<(), CliError> {
    let url = store.database_url.expose_secret();
    refuse_postgres(url, "a backup")?;
    // Not migrated: a backup changes nothing, even when a server of an older plangraph runs
    // on the store.
    let handle = Store::connect(url).await?;
    let summary = handle.backup(file).await?;
    println!(
        "backed up {} to {}: {} bytes, revision {}, {} report(s)",
        redact(url),
        summary.path.display(),
        summary.bytes,
        summary.revision,
        summary.reports
    );
    Ok(())
}

/// `plangraph restore FILE`: prints one line, what the store holds now.
pub async fn restore(file: &Path, store: &StoreArgs) -> Result<(), CliError> {
    let url = store.database_url.expose_secret();
    refuse_postgres(url, "a restore")?;
    // Not migrated here either: the backup must hold the store's own migrations (a new, empty
    // store is migrated by the restore).
    let handle = Store::connect(url).await?;
    let summary = handle.restore(file).await?;
    println!(
        "restored {} ({} bytes) into {}: revision {}, {} report(s); running servers see it at their next request",
        summary.path.display(),
        summary.bytes,
        redact(url),
        summary.revision,
        summary.reports
    );
    Ok(())
}

/// Postgres has its own tools; said before connecting, so the advice comes even when the
/// database is down.
fn refuse_postgres(url: &str, what: &'static str) -> Result<(), CliError> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Err(BackupError::UsePgDump(what).into());
    }
    Ok(())
}
