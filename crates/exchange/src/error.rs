//! What can be wrong with a file brought in, and where: every error names its code, and the line
//! and column when the file has them, so an analyst finds the cell to fix.

use std::fmt;

use thiserror::Error;

/// A place in a file: 1-based line and column (a CSV column is the field's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a file could not be brought in. Nothing is written when any of these is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not JSON, or JSON that is not a plangraph document (a missing or mistyped field).
    BadJson,
    /// A document of another format, or of a version this build does not read.
    UnsupportedVersion,
    /// The table's header (or its HXL hashtag row) is not the one plangraph writes.
    BadHeader,
    /// A row of the wrong width, or text that is not CSV.
    BadCsv,
    /// A sector code that is not in the reference.
    UnknownSector,
    /// A country code that is not an R4V country.
    UnknownCountry,
    /// A figure whose printed form does not parse, or a number that does not parse.
    BadNumber,
    /// A number column that disagrees with its printed form (the printed form decides).
    ValueMismatch,
    /// A text or enumerated value the store would refuse (an empty title, an unknown kind).
    BadValue,
    /// The same report and sector twice in one table, or the same report twice in one import.
    DuplicateRow,
    /// A report of another country than the one the import is for.
    OtherCountry,
    /// A table row for a report the store does not hold (tables carry figures for existing
    /// reports only; whole reports come as JSON documents or report text).
    UnknownReport,
}

impl Problem {
    pub fn code(self) -> &'static str {
        match self {
            Self::BadJson => "EXCHANGE_BAD_JSON",
            Self::UnsupportedVersion => "EXCHANGE_UNSUPPORTED_VERSION",
            Self::BadHeader => "EXCHANGE_BAD_HEADER",
            Self::BadCsv => "EXCHANGE_BAD_CSV",
            Self::UnknownSector => "EXCHANGE_UNKNOWN_SECTOR",
            Self::UnknownCountry => "EXCHANGE_UNKNOWN_COUNTRY",
            Self::BadNumber => "EXCHANGE_BAD_NUMBER",
            Self::ValueMismatch => "EXCHANGE_VALUE_MISMATCH",
            Self::BadValue => "EXCHANGE_BAD_VALUE",
            Self::DuplicateRow => "EXCHANGE_DUPLICATE_ROW",
            Self::OtherCountry => "EXCHANGE_OTHER_COUNTRY",
            Self::UnknownReport => "EXCHANGE_UNKNOWN_REPORT",
        }
    }

    /// The problem whose code `text` starts with (`[CODE] …`), as the JSON reader's own checks
    /// tag their messages so they keep serde_json's line and column.
    pub(crate) fn from_tag(text: &str) -> Option<(Self, &str)> {
        let rest = text.strip_prefix('[')?;
        let (code, message) = rest.split_once("] ")?;
        ALL.iter().find(|p| p.code() == code).map(|p| (*p, message))
    }

    /// `message` tagged with this problem's code, for [`Problem::from_tag`].
    pub(crate) fn tag(self, message: impl fmt::Display) -> String {
        format!("[{}] {message}", self.code())
    }
}

const ALL: [Problem; 12] = [
    Problem::BadJson,
    Problem::UnsupportedVersion,
    Problem::BadHeader,
    Problem::BadCsv,
    Problem::UnknownSector,
    Problem::UnknownCountry,
    Problem::BadNumber,
    Problem::ValueMismatch,
    Problem::BadValue,
    Problem::DuplicateRow,
    Problem::OtherCountry,
    Problem::UnknownReport,
];

/// A problem in a named file, at a place when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ExchangeError {
    pub problem: Problem,
    /// The file (or `stdin`, or the mutation's name).
    pub source_name: String,
    pub location: Option<Location>,
    pub message: String,
}

impl ExchangeError {
    pub fn new(
        problem: Problem,
        source_name: &str,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            problem,
            source_name: source_name.to_owned(),
            location,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        self.problem.code()
    }

    /// A serde_json error as a problem at its line and column.
    pub(crate) fn from_json(source_name: &str, error: &serde_json::Error) -> Self {
        let location = (error.line() > 0).then(|| Location {
            line: error.line() as u64,
            column: error.column() as u64,
        });
        // serde_json appends " at line L column C"; the location says it already.
        let text = error.to_string();
        let text = match text.rfind(" at line ") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        let (problem, message) = match Problem::from_tag(&text) {
            Some((problem, message)) => (problem, message.to_owned()),
            None => (Problem::BadJson, text.clone()),
        };
        Self::new(problem, source_name, location, message)
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(
                f,
                "{}:{}:{}: {}",
                self.source_name, at.line, at.column, self.message
            ),
            None => write!(f, "{}: {}", self.source_name, self.message),
        }?;
        f.write_str(" (nothing was written)")
    }
}
