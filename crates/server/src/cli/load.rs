//! `plangraph import FILE_OR_DIR...`: many reports in one run, each file checked whole before
//! it writes and each report its own transaction, so one bad file leaves the others loaded.
//! A progress bar on a terminal, a plain line per file otherwise (logs, CI), and a summary.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use plangraph_domain::access::Actor;
use plangraph_domain::importer;
use plangraph_exchange::apply::{self, ApplyOptions};
use plangraph_exchange::{InputKind, detect};
use plangraph_persistence::{Store, WriteOutcome};

use crate::error::CliError;
use crate::import::{ImportFlags, prepare_import, store_import};

/// Counts for the summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub created: usize,
    pub replaced: usize,
    pub unchanged: usize,
    pub rejected: Vec<(String, String)>,
    pub warnings: usize,
    pub previews: usize,
}

impl Tally {
    fn count(&mut self, outcome: &WriteOutcome, dry_run: bool) -> &'static str {
        if dry_run {
            self.previews += 1;
            return "would import";
        }
        match (outcome.replaced, outcome.change.is_some()) {
            (true, true) => {
                self.replaced += 1;
                "replaced"
            }
            (true, false) | (false, false) => {
                self.unchanged += 1;
                "unchanged"
            }
            (false, true) => {
                self.created += 1;
                "imported"
            }
        }
    }
}

/// The files named: each file itself, each directory's files (not its subdirectories), in
/// name order; `-` is standard input.
pub fn expand(inputs: &[String]) -> Result<Vec<String>, CliError> {
    let mut files = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if input != "-" && path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|error| CliError::File {
                    path: input.clone(),
                    error,
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    !p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
                })
                .collect();
            found.sort();
            files.extend(found.into_iter().map(|p| p.display().to_string()));
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(CliError::Usage("no file to import".to_owned()));
    }
    Ok(files)
}

/// How the run imports.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub flags: ImportFlags,
    pub country: Option<String>,
    /// Largest JSON document or table read, in bytes.
    pub max_document_bytes: usize,
    pub database: String,
}

/// Imports every file; `Err(Rejected)` when any was refused (after the others loaded).
pub async fn run(store: &Store, files: &[String], options: &LoadOptions) -> Result<(), CliError> {
    let bar = if std::io::stderr().is_terminal() && files.len() > 1 {
        let bar = ProgressBar::new(files.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {wide_msg}")
        {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let mut tally = Tally::default();
    for (i, file) in files.iter().enumerate() {
        if let Some(bar) = &bar {
            bar.set_message(file.clone());
        }
        let lines = match load_one(store, file, options, &mut tally).await {
            Ok(lines) => lines,
            Err(error) => {
                let line = format!("rejected {file}: error[{}]: {error}", error.code());
                tally.rejected.push((file.clone(), error.code().to_owned()));
                vec![line]
            }
        };
        for line in lines {
            match &bar {
                Some(bar) => bar.println(line),
                None => eprintln!("[{}/{}] {line}", i + 1, files.len()),
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let Tally {
        created,
        replaced,
        unchanged,
        warnings,
        previews,
        ..
    } = tally;
    let rejected = tally.rejected.len();
    println!(
        "{} file(s) into {}: {created} created, {replaced} replaced, {unchanged} unchanged, {previews} previewed, {rejected} rejected, {warnings} warning(s)",
        files.len(),
        options.database
    );
    for (file, code) in &tally.rejected {
        println!("  rejected {file} ({code})");
    }
    if rejected > 0 {
        return Err(CliError::Rejected {
            rejected,
            files: files.len(),
        });
    }
    Ok(())
}

/// One file, as `plangraph import FILE` always did: checked before `open` opens the store, a
/// line per report on standard output, a refusal returned as the command's error.
pub async fn single<F, Fut>(file: &str, options: &LoadOptions, open: F) -> Result<(), CliError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Store, CliError>>,
{
    let (kind, bytes) = read(file, options)?;
    let place = format!("into {}", options.database);
    let mut tally = Tally::default();
    let lines = import(file, kind, bytes, options, &place, open, &mut tally).await?;
    for line in lines {
        // Warnings go to standard error, the reports' lines to standard output.
        if line.starts_with("warning[") {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(())
}

/// The first bytes read to tell a file's kind (report text, JSON, table) before its cap applies.
const SNIFF: usize = 64 * 1024;

/// Reads a file whose kind decides its cap: a report text `max_report_bytes`, a JSON document
/// or table `max_document_bytes`. A regular file over its cap is refused from its size
/// without being read; any input (standard input, a pipe) is never read past the cap.
fn read(file: &str, options: &LoadOptions) -> Result<(InputKind, Vec<u8>), CliError> {
    let name = if file == "-" { "stdin" } else { file };
    let io = |error| {
        CliError::from(importer::ImportError::Io {
            source_name: name.to_owned(),
            error,
        })
    };
    let mut source: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(io)?)
    };
    let size = (file != "-")
        .then(|| std::fs::metadata(file).ok())
        .flatten()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut head = Vec::with_capacity(SNIFF);
    (&mut source)
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let kind = detect(&head);
    let limit = match kind {
        InputKind::ReportText => options.flags.max_bytes,
        InputKind::Json | InputKind::Table => options.max_document_bytes,
    };
    let too_large = || match kind {
        InputKind::ReportText => CliError::from(importer::ImportError::TooLarge { limit }),
        InputKind::Json | InputKind::Table => CliError::DocumentTooLarge {
            source_name: name.to_owned(),
            limit,
        },
    };
    if size.is_some_and(|len| len > limit as u64) || head.len() > limit {
        return Err(too_large());
    }
    match importer::read_capped(std::io::Cursor::new(head).chain(source), limit, name) {
        Ok(bytes) => Ok((kind, bytes)),
        Err(importer::ImportError::TooLarge { .. }) => Err(too_large()),
        Err(other) => Err(other.into()),
    }
}

/// One file of a bulk load: its lines for the log.
async fn load_one(
    store: &Store,
    file: &str,
    options: &LoadOptions,
    tally: &mut Tally,
) -> Result<Vec<String>, CliError> {
    let (kind, bytes) = read(file, options)?;
    let name = if file == "-" { "stdin" } else { file };
    let place = format!("from {name}");
    import(
        file,
        kind,
        bytes,
        options,
        &place,
        || async { Ok(store.clone()) },
        tally,
    )
    .await
}

/// Checks and writes one file of `kind`, the store opened (by `open`) only once a report text
/// or JSON document has passed its checks; the lines to print (warnings first), each report's
/// outcome said to have gone `place`.
async fn import<F, Fut>(
    file: &str,
    kind: InputKind,
    bytes: Vec<u8>,
    options: &LoadOptions,
    place: &str,
    open: F,
    tally: &mut Tally,
) -> Result<Vec<String>, CliError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Store, CliError>>,
{
    let flags = options.flags;
    let name = if file == "-" { "stdin" } else { file };
    let actor = Actor::local("plangraph import");
    let apply_options = ApplyOptions {
        country: options.country.clone(),
        expected_revision: None,
        allow_removals: flags.allow_removals,
        dry_run: flags.dry_run,
    };
    let mut lines = Vec::new();
    match kind {
        InputKind::ReportText => {
            let prepared = prepare_import(&bytes, name, options.country.as_deref(), flags)?;
            let store = open().await?;
            let summary = store_import(&store, prepared, flags).await?;
            for warning in &summary.warnings {
                lines.push(format!(
                    "warning[{}]: {name}:{warning}",
                    warning.check.code()
                ));
            }
            tally.warnings += summary.warnings.len();
            let verb = tally.count(&summary.outcome, flags.dry_run);
            lines.push(format!(
                "{verb} report {} ({} {}) {place}: revision {}, {} value(s) changed, {} warning(s)",
                summary
                    .report_id()
                    .map_or_else(|| "(new)".to_owned(), |id| id.to_string()),
                summary.country,
                summary.year,
                summary.outcome.revision,
                summary.outcome.fields.len(),
                summary.warnings.len()
            ));
            if flags.dry_run {
                for removal in &summary.outcome.removals {
                    lines.push(format!("  would remove {}", removal.path));
                }
            }
        }
        InputKind::Json => {
            let docs = apply::read_json(&bytes, name, options.country.as_deref())
                .map_err(plangraph_exchange::ApplyError::from)?;
            drop(bytes);
            let store = open().await?;
            // The file whole or not at all, as `apply_documents` takes it.
            let applied =
                apply::apply_documents(&store, &actor, name, &docs, &apply_options).await?;
            outcome_lines(&applied, place, flags.dry_run, tally, &mut lines);
        }
        InputKind::Table => {
            let store = open().await?;
            let reports =
                apply::read_table(&store, &bytes, name, options.country.as_deref()).await?;
            let applied = apply::apply_table(&store, &actor, name, reports, &apply_options).await?;
            outcome_lines(&applied, place, flags.dry_run, tally, &mut lines);
        }
    }
    Ok(lines)
}

fn outcome_lines(
    applied: &[apply::Applied],
    place: &str,
    dry_run: bool,
    tally: &mut Tally,
    lines: &mut Vec<String>,
) {
    for a in applied {
        let verb = tally.count(&a.outcome, dry_run);
        lines.push(format!(
            "{verb} report {} ({}) {place}: revision {}, {} value(s) changed",
            a.outcome
                .report_id
                .map_or_else(|| "(new)".to_owned(), |id| id.to_string()),
            a.report,
            a.outcome.revision,
            a.outcome.fields.len(),
        ));
        if dry_run {
            for removal in &a.outcome.removals {
                lines.push(format!("  would remove {}", removal.path));
            }
        }
    }
}
