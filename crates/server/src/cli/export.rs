//! `plangraph export`: a selection of reports written to standard output or a file, a report at
//! a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use plangraph_exchange::{Export, Format, Selection};
use plangraph_persistence::Store;

use crate::error::CliError;

/// The SQLite file a `sqlite:` URL names (`None` for Postgres or an in-memory store).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// `path` with its directory resolved (the file itself need not exist).
fn resolved(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    std::fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |d| d.join(name))
}

/// Refuses an output that is the store itself (or its journal files), always, and one that
/// exists unless `force`: an export never destroys a file by a typo.
pub fn check_output(output: &Path, store_file: Option<&Path>, force: bool) -> Result<(), CliError> {
    let target = resolved(output);
    if let Some(store) = store_file.map(resolved) {
        let store_text = store.as_os_str().to_string_lossy().into_owned();
        let is_store = [
            String::new(),
            "-wal".into(),
            "-shm".into(),
            "-journal".into(),
        ]
        .iter()
        .any(|suffix| target.as_os_str() == format!("{store_text}{suffix}").as_str());
        if is_store {
            return Err(CliError::ExportTarget {
                path: output.display().to_string(),
                is_store: true,
            });
        }
    }
    if output.exists() && !force {
        return Err(CliError::ExportTarget {
            path: output.display().to_string(),
            is_store: false,
        });
    }
    Ok(())
}

/// Writes the export to `output` (created beside, then renamed into place, so a cut export
/// never looks whole), or to standard output when there is none.
pub async fn run(
    store: &Store,
    selection: &Selection,
    format: Format,
    output: Option<&Path>,
) -> Result<(), CliError> {
    if output.is_none() && !format.is_text() {
        return Err(CliError::Usage(format!(
            "an {format} export is a binary file: name it with --output FILE"
        )));
    }
    let started = std::time::Instant::now();
    let mut export = Export::start(store, selection, format).await?;
    let reports = export.report_count();
    let file_error = |path: &Path, error: std::io::Error| CliError::File {
        path: path.display().to_string(),
        error,
    };
    let mut bytes = 0usize;
    match output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // Beside the target, so the rename is atomic; readable as any file the user writes.
            let mut file = tempfile::Builder::new()
                .prefix(".plangraph-export-")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(dir)
                .map_err(|e| file_error(path, e))?;
            while let Some(chunk) = export.next_chunk().await? {
                bytes += chunk.len();
                file.write_all(&chunk).map_err(|e| file_error(path, e))?;
            }
            file.as_file().sync_all().map_err(|e| file_error(path, e))?;
            file.persist(path).map_err(|e| file_error(path, e.error))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            while let Some(chunk) = export.next_chunk().await? {
                bytes += chunk.len();
                out.write_all(&chunk)
                    .map_err(|e| file_error(Path::new("stdout"), e))?;
            }
            out.flush()
                .map_err(|e| file_error(Path::new("stdout"), e))?;
        }
    }
    eprintln!(
        "exported {reports} report(s) as {format} to {} ({bytes} bytes) in {:.2} s",
        output.map_or_else(|| "standard output".to_owned(), |p| p.display().to_string()),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
