//! The importer's checks, shared by the command line and the `importReport` mutation: a report
//! text in, a document ready to store (or a refusal with a stable code) out. Nothing here
//! touches the store.

use std::io::Read;

use thiserror::Error;

use crate::checksum::sha256_hex;
use crate::codes::Iso3;
use crate::country_check::{CountryMismatch, check_country};
use crate::reference::{self, CountryDef};
use crate::report::ReportDocument;
use crate::{ParseError, Warning, parse_report, validate};

/// Largest report text taken by default. The Peru report is 9.6 KB; a whole plan with every
/// country would still be far below this, while a 200 MB file or an endless stream is refused
/// after reading at most this much.
pub const DEFAULT_MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;

/// Bytes read per call while reading a report.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error(
        "the report text is larger than the limit of {limit} bytes; nothing was read past it (raise the limit with --max-report-bytes or PLANGRAPH_MAX_REPORT_BYTES)"
    )]
    TooLarge { limit: usize },
    #[error("cannot read {source_name}: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}:{error}")]
    Report {
        source_name: String,
        error: ParseError,
    },
    #[error("cannot tell which country {source_name} is about; name the country (--country ISO3)")]
    UnknownCountry { source_name: String },
    #[error("'{0}' is not an R4V country code")]
    NotACountry(String),
    #[error(
        "{0} (nothing was written; --force-country / overrideCountryCheck: true if the code is right)"
    )]
    CountryMismatch(CountryMismatch),
    #[error("{source_name}: {error}: the API could not serve it back")]
    OutOfRange {
        source_name: String,
        error: crate::edit::EditError,
    },
}

impl ImportError {
    /// Stable code for scripts and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "REPORT_TOO_LARGE",
            Self::Io { .. } => "IO_ERROR",
            Self::Report { error, .. } => error.kind.code(),
            Self::UnknownCountry { .. } => "IMPORT_UNKNOWN_COUNTRY",
            Self::NotACountry(_) => "IMPORT_NOT_A_COUNTRY",
            Self::CountryMismatch(m) => m.code(),
            Self::OutOfRange { .. } => "REPORT_BAD_NUMBER",
        }
    }
}

/// Reads at most `limit` bytes, in chunks, never holding more than `limit` plus one chunk: a
/// source larger than the limit (or endless, like `/dev/zero`) is refused as soon as the limit
/// is passed.
pub fn read_capped(
    mut source: impl Read,
    limit: usize,
    source_name: &str,
) -> Result<Vec<u8>, ImportError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match source.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(ImportError::Io {
                    source_name: source_name.to_owned(),
                    error,
                });
            }
        };
        if bytes.len() + n > limit {
            return Err(ImportError::TooLarge { limit });
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// The file name of a path, for provenance: where the file sat on the importing machine is
/// nobody else's business.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// What to check a text against.
#[derive(Debug, Clone, Copy)]
pub struct ImportRequest<'a> {
    pub bytes: &'a [u8],
    /// A path or a name; only its file name is kept.
    pub source_name: &'a str,
    /// ISO3 code (any letter case); `None`: taken from the file name (`…-peru.txt`).
    pub country: Option<&'a str>,
    /// Import even when the text names another country far more than this one.
    pub override_country_check: bool,
    pub max_bytes: usize,
}

/// A report read and checked: nothing has touched the store yet.
#[derive(Debug, Clone)]
pub struct PreparedImport {
    pub document: ReportDocument,
    pub country: &'static CountryDef,
    /// The file name (never a path).
    pub source_name: String,
    pub sha256: String,
    pub warnings: Vec<Warning>,
}

/// Reads and checks a report text. A structural problem, a cut-short text, an oversized text
/// or a country the text does not name is an error; consistency problems become warnings.
pub fn prepare(request: ImportRequest<'_>) -> Result<PreparedImport, ImportError> {
    if request.bytes.len() > request.max_bytes {
        return Err(ImportError::TooLarge {
            limit: request.max_bytes,
        });
    }
    let source_name = file_name(request.source_name).to_owned();
    // A country the caller names is checked before the text: a wrong code is the clearer error.
    let named = request
        .country
        .map(|code| {
            let upper = code.trim().to_ascii_uppercase();
            Iso3::parse(&upper)
                .ok()
                .and_then(|iso3| reference::country_by_iso3(iso3.as_str()))
                .ok_or_else(|| ImportError::NotACountry(code.chars().take(32).collect()))
        })
        .transpose()?;
    let document = parse_report(request.bytes).map_err(|error| ImportError::Report {
        source_name: source_name.clone(),
        error,
    })?;
    crate::edit::check_document(&document).map_err(|error| ImportError::OutOfRange {
        source_name: source_name.clone(),
        error,
    })?;
    let country = match named {
        Some(country) => country,
        None => reference::country_from_file_name(&source_name).ok_or_else(|| {
            ImportError::UnknownCountry {
                source_name: source_name.clone(),
            }
        })?,
    };
    if !request.override_country_check {
        // The bytes parsed, so they are UTF-8.
        let text = String::from_utf8_lossy(request.bytes);
        check_country(&text, country).map_err(ImportError::CountryMismatch)?;
    }
    Ok(PreparedImport {
        warnings: validate(&document),
        document,
        country,
        source_name,
        sha256: sha256_hex(request.bytes),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::PERU_2023_END_YEAR;

    fn request(country: Option<&str>) -> ImportRequest<'_> {
        ImportRequest {
            bytes: PERU_2023_END_YEAR.as_bytes(),
            source_name: "/srv/uploads/rmrp-2023-end-year-report-peru.txt",
            country,
            override_country_check: false,
            max_bytes: DEFAULT_MAX_REPORT_BYTES,
        }
    }

    #[test]
    fn provenance_keeps_the_file_name_only() {
        let prepared = prepare(request(None)).unwrap();
        assert_eq!(prepared.source_name, "rmrp-2023-end-year-report-peru.txt");
        assert_eq!(prepared.country.iso3, "PER");
        assert_eq!(file_name("C:\\reports\\peru.txt"), "peru.txt");
    }

    #[test]
    fn the_peru_text_as_colombia_is_refused_unless_overridden() {
        let refused = prepare(request(Some("col"))).unwrap_err();
        assert_eq!(refused.code(), "IMPORT_COUNTRY_MISMATCH");
        let forced = prepare(ImportRequest {
            override_country_check: true,
            ..request(Some("COL"))
        })
        .unwrap();
        assert_eq!(forced.country.iso3, "COL");
    }

    #[test]
    fn a_report_with_a_figure_the_api_cannot_serve_is_refused() {
        let huge =
            PERU_2023_END_YEAR.replacen("2.06 M 990.2 K 513.6 K", "3.06 B 990.2 K 513.6 K", 1);
        let refused = prepare(ImportRequest {
            bytes: huge.as_bytes(),
            ..request(None)
        })
        .unwrap_err();
        assert_eq!(refused.code(), "REPORT_BAD_NUMBER");
    }

    #[test]
    fn a_text_over_the_limit_is_refused_before_parsing() {
        let refused = prepare(ImportRequest {
            max_bytes: 1_000,
            ..request(None)
        })
        .unwrap_err();
        assert_eq!(refused.code(), "REPORT_TOO_LARGE");
    }

    #[test]
    fn an_endless_source_is_read_no_further_than_the_limit() {
        /// Counts what is read from an endless stream of zeros.
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(0);
                self.0 += buf.len();
                Ok(buf.len())
            }
        }
        let mut source = Endless(0);
        let refused = read_capped(&mut source, 1_000_000, "/dev/zero").unwrap_err();
        assert_eq!(refused.code(), "REPORT_TOO_LARGE");
        assert!(source.0 <= 1_000_000 + CHUNK, "read {} bytes", source.0);
        assert_eq!(
            read_capped(PERU_2023_END_YEAR.as_bytes(), 1_000_000, "peru")
                .unwrap()
                .len(),
            PERU_2023_END_YEAR.len()
        );
    }
}
