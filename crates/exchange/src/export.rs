//! Exports: a selection of reports written in one format, one report at a time, so memory stays
//! that of one report whatever the selection (the workbook's rows go to temporary files, and
//! its zip, a few hundred KiB for a response, is assembled and given whole at the end).

use std::fmt;

use plangraph_persistence::{ReportQuery, Store, StoreError, WholeReports};
use thiserror::Error;

use crate::convert::References;
use crate::document::{COLLECTION_FORMAT, ReportDoc, VERSION};
use crate::table::{Flavour, TableWriter};
use crate::workbook::WorkbookWriter;

/// The formats an export is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Hxl,
    Xlsx,
}

impl Format {
    pub const ALL: [Self; 4] = [Self::Json, Self::Csv, Self::Hxl, Self::Xlsx];

    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Hxl => "hxl",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == text)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv | Self::Hxl => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The file name's ending (an HXL table is a CSV file: `….hxl.csv`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Hxl => "hxl.csv",
            Self::Xlsx => "xlsx",
        }
    }

    /// Text a terminal can show (the workbook is not).
    pub fn is_text(self) -> bool {
        self != Self::Xlsx
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which reports: one by id, or every report of a country and/or a year (all when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub report_id: Option<i32>,
    pub country_iso3: Option<String>,
    pub year: Option<i32>,
}

impl Selection {
    /// A file name for the selection: `plangraph-PER-2023.csv`, `plangraph-all.json`.
    pub fn file_name(&self, format: Format) -> String {
        let mut parts = vec!["plangraph".to_owned()];
        if let Some(id) = self.report_id {
            parts.push(format!("report-{id}"));
        }
        if let Some(c) = &self.country_iso3 {
            parts.push(c.clone());
        }
        if let Some(y) = self.year {
            parts.push(y.to_string());
        }
        if parts.len() == 1 {
            parts.push("all".to_owned());
        }
        format!("{}.{}", parts.join("-"), format.extension())
    }
}

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("report {0} is not stored, or not among the reports the other parameters select")]
    NotFound(i32),
    #[error("writing the {format} export: {message}")]
    Write { format: Format, message: String },
}

impl ExportError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => e.code(),
            Self::NotFound(_) => "NOT_FOUND",
            Self::Write { .. } => "EXPORT_WRITE_FAILED",
        }
    }
}

enum Output {
    Json { first: bool },
    Table(TableWriter),
    Book(Box<WorkbookWriter>),
}

/// An export under way: [`Export::next_chunk`] gives its bytes a report at a time.
pub struct Export {
    reader: Option<WholeReports>,
    refs: References,
    ids: Vec<i32>,
    next: usize,
    format: Format,
    output: Output,
    started: bool,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("format", &self.format)
            .field("reports", &self.ids.len())
            .field("next", &self.next)
            .finish()
    }
}

impl Export {
    /// Opens the store's read for the selection and finds its reports.
    pub async fn start(
        store: &Store,
        selection: &Selection,
        format: Format,
    ) -> Result<Self, ExportError> {
        let reader = store.whole_reports().await?;
        let filter = ReportQuery {
            country_iso3: selection.country_iso3.clone(),
            year: selection.year,
            ..ReportQuery::default()
        };
        let ids = reader.report_ids(&filter, selection.report_id).await?;
        if let Some(id) = selection.report_id.filter(|_| ids.is_empty()) {
            reader.finish().await?;
            return Err(ExportError::NotFound(id));
        }
        let refs = References {
            sectors: reader.sectors().await?,
            platforms: reader.platforms().await?,
        };
        let output = match format {
            Format::Json => Output::Json { first: true },
            Format::Csv => Output::Table(TableWriter::new(Flavour::Csv)),
            Format::Hxl => Output::Table(TableWriter::new(Flavour::Hxl)),
            Format::Xlsx => Output::Book(Box::new(WorkbookWriter::new().map_err(|e| {
                ExportError::Write {
                    format,
                    message: e.to_string(),
                }
            })?)),
        };
        Ok(Self {
            reader: Some(reader),
            refs,
            ids,
            next: 0,
            format,
            output,
            started: false,
        })
    }

    /// How many reports the export holds.
    pub fn report_count(&self) -> usize {
        self.ids.len()
    }

    /// The next piece of the file, `None` once it is whole. Every piece but the workbook's
    /// (given whole at the end) holds at most one report.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        let format = self.format;
        let fail = |message: String| ExportError::Write { format, message };
        let Some(reader) = self.reader.as_ref() else {
            return Ok(None);
        };
        let mut chunk = Vec::new();
        if !self.started {
            self.started = true;
            match &mut self.output {
                Output::Json { .. } => chunk.extend_from_slice(
                    format!(
                        "{{\"format\":\"{COLLECTION_FORMAT}\",\"version\":{VERSION},\"reports\":["
                    )
                    .as_bytes(),
                ),
                Output::Table(table) => {
                    chunk.extend(table.header().map_err(|e| fail(e.to_string()))?);
                }
                Output::Book(_) => {}
            }
        }
        if let Some(&id) = self.ids.get(self.next) {
            self.next += 1;
            // A report deleted since the listing: not in this snapshot's list, so never here;
            // a report that vanished mid-read of a corrupt store is skipped rather than invented.
            if let Some(rows) = reader.report(id).await? {
                let doc = ReportDoc::from_rows(&rows, &self.refs);
                drop(rows);
                match &mut self.output {
                    Output::Json { first } => {
                        chunk.extend_from_slice(if *first { b"\n" } else { b",\n" });
                        *first = false;
                        serde_json::to_writer_pretty(&mut chunk, &doc)
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    Output::Table(table) => {
                        chunk.extend(table.report(&doc).map_err(|e| fail(e.to_string()))?);
                    }
                    Output::Book(book) => book.report(&doc).map_err(|e| fail(e.to_string()))?,
                }
            }
            return Ok(Some(chunk));
        }
        // The end: close the read, finish the file.
        if let Some(reader) = self.reader.take() {
            reader.finish().await?;
        }
        match std::mem::replace(&mut self.output, Output::Json { first: false }) {
            Output::Json { .. } => chunk.extend_from_slice(b"\n]}\n"),
            Output::Table(_) => {}
            Output::Book(book) => chunk.extend(book.finish().map_err(|e| fail(e.to_string()))?),
        }
        Ok(Some(chunk))
    }
}
