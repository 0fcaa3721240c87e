//! The sector figures table: one row per report and sector, as CSV, or as HXL (the same table
//! with a hashtag row under the header, which HDX's tools read as is).
//!
//! Read back, a table carries figures for reports the store already holds: each row names its
//! report (country, year, kind) and sector, and its printed forms decide the numbers, as in
//! the published text. The number columns must agree with them when filled in.

use std::collections::HashMap;
use std::io::Read;

use plangraph_domain::reference;
use plangraph_domain::units::{PeopleCount, Percent, Usd};

use crate::document::{Dollars, Kind, Pct, People, ReportDoc};
use crate::error::{ExchangeError, Location, Problem};

/// Columns in order: header name and HXL hashtag.
pub const COLUMNS: [(&str, &str); 20] = [
    ("country_code", "#country+code"),
    ("country_name", "#country+name"),
    ("year", "#date+year"),
    ("report_kind", "#meta+report+kind"),
    ("sector_code", "#sector+code"),
    ("sector_name", "#sector+name"),
    ("parent_sector_code", "#sector+code+parent"),
    ("people_targeted", "#targeted"),
    ("people_reached", "#reached"),
    ("reached_percent", "#reached+pct"),
    ("requirements_usd", "#value+required+usd"),
    ("funding_usd", "#value+funding+usd"),
    ("funded_percent", "#value+funding+pct"),
    ("people_targeted_printed", "#targeted+printed"),
    ("people_reached_printed", "#reached+printed"),
    ("reached_percent_printed", "#reached+pct+printed"),
    ("requirements_printed", "#value+required+usd+printed"),
    ("funding_printed", "#value+funding+usd+printed"),
    ("funded_percent_printed", "#value+funding+pct+printed"),
    ("synthetic", "#meta+synthetic"),
];

/// Which flavour of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Csv,
    Hxl,
}

/// A percentage's hundredths as an exact decimal ("36.2", "101.5", "0.07", "100").
pub fn percent_text(value: f64) -> String {
    let hundredths = (value * 100.0).round() as i64;
    let whole = hundredths / 100;
    let frac = (hundredths % 100).abs();
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::EndYear => "END_YEAR",
        Kind::MidYear => "MID_YEAR",
        Kind::Plan => "PLAN",
    }
}

/// Writes a table as bytes, a report at a time (each piece a whole number of CSV records).
#[derive(Debug, Clone, Copy)]
pub struct TableWriter {
    flavour: Flavour,
}

fn records<'a>(rows: impl IntoIterator<Item = Vec<&'a str>>) -> std::io::Result<Vec<u8>> {
    let mut out = csv::WriterBuilder::new().from_writer(Vec::new());
    for row in rows {
        out.write_record(row)?;
    }
    out.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl TableWriter {
    pub fn new(flavour: Flavour) -> Self {
        Self { flavour }
    }

    /// The header, and for HXL the hashtag row under it.
    pub fn header(&self) -> std::io::Result<Vec<u8>> {
        let mut rows = vec![COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>()];
        if self.flavour == Flavour::Hxl {
            rows.push(COLUMNS.iter().map(|c| c.1).collect());
        }
        records(rows)
    }

    /// The rows of one report.
    pub fn report(&self, doc: &ReportDoc) -> std::io::Result<Vec<u8>> {
        let year = doc.year.to_string();
        let cells: Vec<[String; 6]> = doc
            .sectors
            .iter()
            .map(|s| {
                [
                    s.people_targeted.value.to_string(),
                    s.people_reached.value.to_string(),
                    percent_text(s.reached_percent.value),
                    s.requirements_usd.value.to_string(),
                    s.funding_usd.value.to_string(),
                    percent_text(s.funded_percent.value),
                ]
            })
            .collect();
        records(doc.sectors.iter().zip(&cells).map(|(s, n)| {
            vec![
                doc.country.iso3.as_str(),
                doc.country.name.as_str(),
                year.as_str(),
                kind_text(doc.kind),
                s.code.as_str(),
                s.name.as_str(),
                s.parent.as_deref().unwrap_or(""),
                n[0].as_str(),
                n[1].as_str(),
                n[2].as_str(),
                n[3].as_str(),
                n[4].as_str(),
                n[5].as_str(),
                s.people_targeted.printed.as_str(),
                s.people_reached.printed.as_str(),
                s.reached_percent.printed.as_str(),
                s.requirements_usd.printed.as_str(),
                s.funding_usd.printed.as_str(),
                s.funded_percent.printed.as_str(),
                if doc.synthetic { "true" } else { "false" },
            ]
        }))
    }
}

/// Reads a printed figure: its number and its printed form as kept.
type ParseFigure<'a> = &'a dyn Fn(&str) -> Result<(u64, String), String>;

/// Which report a row is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportKey {
    pub iso3: String,
    pub year: i32,
    pub kind: &'static str,
}

/// One row read back: the figures for one sector of one report.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureRow {
    pub line: u64,
    pub report: ReportKey,
    pub sector: &'static reference::SectorDef,
    pub people_targeted: People,
    pub people_reached: People,
    pub reached_percent: Pct,
    pub requirements_usd: Dollars,
    pub funding_usd: Dollars,
    pub funded_percent: Pct,
}

/// The kind's text as the table writes it, if it is one.
pub fn kind_of(text: &str) -> Option<&'static str> {
    ["END_YEAR", "MID_YEAR", "PLAN"]
        .into_iter()
        .find(|k| *k == text)
}

/// Reads a table (CSV or HXL, told apart by its second row) into rows, checking every cell;
/// `country`, when given, is the only country rows may be of, and `stored`, when given, holds
/// the reports rows may name (a row of any other is refused at its line, before the rest of
/// the file is read).
pub fn read(
    input: impl Read,
    source_name: &str,
    country: Option<&str>,
    stored: Option<&HashMap<ReportKey, i32>>,
) -> Result<Vec<FigureRow>, ExchangeError> {
    let err = |problem, line: u64, column: usize, message: String| {
        ExchangeError::new(
            problem,
            source_name,
            Some(Location {
                line,
                column: column as u64 + 1,
            }),
            message,
        )
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(input);
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(record)) => record,
        Some(Err(e)) => return Err(csv_error(source_name, &e)),
        None => return Err(err(Problem::BadHeader, 1, 0, "the file is empty".into())),
    };
    // Columns by name, in any order; every column plangraph writes must be there.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        let Some((known, _)) = COLUMNS.iter().find(|c| c.0 == name) else {
            return Err(err(
                Problem::BadHeader,
                1,
                i,
                format!("'{name}' is not a column of the sector figures table"),
            ));
        };
        if index.insert(known, i).is_some() {
            return Err(err(
                Problem::BadHeader,
                1,
                i,
                format!("column '{name}' appears twice"),
            ));
        }
    }
    if let Some((missing, _)) = COLUMNS.iter().find(|c| !index.contains_key(c.0)) {
        return Err(err(
            Problem::BadHeader,
            1,
            header.len(),
            format!("the column '{missing}' is missing"),
        ));
    }
    let col = |name: &str| index.get(name).copied().unwrap_or_default();
    let mut rows = Vec::new();
    let mut seen: HashMap<(ReportKey, &'static str), u64> = HashMap::new();
    for (n, record) in records.enumerate() {
        let record = record.map_err(|e| csv_error(source_name, &e))?;
        let line = record.position().map_or(n as u64 + 2, |p| p.line());
        // The HXL hashtag row, right under the header: checked, not read as figures.
        if n == 0
            && record
                .get(0)
                .is_some_and(|c| c.trim_start().starts_with('#'))
        {
            for (name, tag) in COLUMNS {
                let i = col(name);
                let cell = record.get(i).unwrap_or("").trim();
                if cell != tag {
                    return Err(err(
                        Problem::BadHeader,
                        line,
                        i,
                        format!("the hashtag of '{name}' is '{cell}', expected '{tag}'"),
                    ));
                }
            }
            continue;
        }
        let cell = |name: &str| record.get(col(name)).unwrap_or("").trim();
        let iso3 = cell("country_code");
        if reference::country_by_iso3(iso3).is_none() {
            return Err(err(
                Problem::UnknownCountry,
                line,
                col("country_code"),
                format!("'{iso3}' is not an R4V country code"),
            ));
        }
        if let Some(only) = country.filter(|c| !c.eq_ignore_ascii_case(iso3)) {
            return Err(err(
                Problem::OtherCountry,
                line,
                col("country_code"),
                format!(
                    "a row of {iso3} in an import for {}",
                    only.to_ascii_uppercase()
                ),
            ));
        }
        let year: i32 = cell("year").parse().map_err(|_| {
            err(
                Problem::BadNumber,
                line,
                col("year"),
                format!("'{}' is not a year", cell("year")),
            )
        })?;
        let Some(kind) = kind_of(cell("report_kind")) else {
            return Err(err(
                Problem::BadValue,
                line,
                col("report_kind"),
                format!(
                    "'{}' is not a report kind (END_YEAR, MID_YEAR or PLAN)",
                    cell("report_kind")
                ),
            ));
        };
        let code = cell("sector_code");
        let Some(sector) = reference::SECTORS.iter().find(|s| s.code == code) else {
            return Err(err(
                Problem::UnknownSector,
                line,
                col("sector_code"),
                format!("'{code}' is not a sector code of the reference"),
            ));
        };
        let report = ReportKey {
            iso3: iso3.to_owned(),
            year,
            kind,
        };
        if stored.is_some_and(|known| !known.contains_key(&report)) {
            return Err(err(
                Problem::UnknownReport,
                line,
                0,
                format!(
                    "no {iso3} {year} {kind} report is stored (a table carries figures for stored reports; import the report first)"
                ),
            ));
        }
        if let Some(first) = seen.insert((report.clone(), sector.code), line) {
            return Err(err(
                Problem::DuplicateRow,
                line,
                col("sector_code"),
                format!(
                    "{} {year} {kind} sector {} again (first on line {first})",
                    report.iso3, sector.code
                ),
            ));
        }
        // Each figure: its printed form decides; its number, when filled in, must agree.
        let figure = |number: &str, printed: &str, parse: ParseFigure<'_>| {
            let text = cell(printed);
            let (value, printed_text) =
                parse(text).map_err(|e| err(Problem::BadNumber, line, col(printed), e))?;
            let given = cell(number);
            if !given.is_empty() {
                // A spreadsheet may write a whole number as "1530000.0": the same number.
                let read = given.parse::<u64>().ok().or_else(|| {
                    given
                        .parse::<f64>()
                        .ok()
                        .filter(|g| g.fract() == 0.0 && *g >= 0.0)
                        .map(|g| g as u64)
                });
                match read {
                    Some(n) if n == value => {}
                    Some(_) => {
                        return Err(err(
                            Problem::ValueMismatch,
                            line,
                            col(number),
                            format!(
                                "'{given}' disagrees with {printed} '{text}', which reads {value} (the printed form decides: change both)"
                            ),
                        ));
                    }
                    None => {
                        return Err(err(
                            Problem::BadNumber,
                            line,
                            col(number),
                            format!("'{given}' is not a whole number"),
                        ));
                    }
                }
            }
            Ok((value, printed_text))
        };
        let people = |v: &str| {
            PeopleCount::parse(v)
                .map(|p| (p.value(), p.printed().to_owned()))
                .map_err(|e| e.to_string())
        };
        let usd = |v: &str| {
            Usd::parse(v)
                .map(|p| (p.value(), p.printed().to_owned()))
                .map_err(|e| e.to_string())
        };
        let percent = |number: &str, printed: &str| -> Result<Pct, ExchangeError> {
            let text = cell(printed);
            let parsed = Percent::parse(text)
                .map_err(|e| err(Problem::BadNumber, line, col(printed), e.to_string()))?;
            let given = cell(number);
            if !given.is_empty() {
                match given.parse::<f64>() {
                    Ok(g)
                        if g.is_finite()
                            && g >= 0.0
                            && (g * 100.0).round() as u64 == parsed.hundredths() => {}
                    Ok(_) => {
                        return Err(err(
                            Problem::ValueMismatch,
                            line,
                            col(number),
                            format!(
                                "'{given}' disagrees with {printed} '{text}', which reads {} (the printed form decides: change both)",
                                percent_text(parsed.as_f64())
                            ),
                        ));
                    }
                    Err(_) => {
                        return Err(err(
                            Problem::BadNumber,
                            line,
                            col(number),
                            format!("'{given}' is not a number"),
                        ));
                    }
                }
            }
            Ok(Pct {
                value: parsed.as_f64(),
                printed: parsed.printed().to_owned(),
            })
        };
        let (v, p) = figure("people_targeted", "people_targeted_printed", &people)?;
        let people_targeted = People {
            value: v,
            printed: p,
        };
        let (v, p) = figure("people_reached", "people_reached_printed", &people)?;
        let people_reached = People {
            value: v,
            printed: p,
        };
        let (v, p) = figure("requirements_usd", "requirements_printed", &usd)?;
        let requirements_usd = Dollars {
            value: v,
            printed: p,
        };
        let (v, p) = figure("funding_usd", "funding_printed", &usd)?;
        let funding_usd = Dollars {
            value: v,
            printed: p,
        };
        rows.push(FigureRow {
            line,
            report,
            sector,
            people_targeted,
            people_reached,
            reached_percent: percent("reached_percent", "reached_percent_printed")?,
            requirements_usd,
            funding_usd,
            funded_percent: percent("funded_percent", "funded_percent_printed")?,
        });
    }
    Ok(rows)
}

fn csv_error(source_name: &str, error: &csv::Error) -> ExchangeError {
    let location = error.position().map(|p| Location {
        line: p.line(),
        column: 1,
    });
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("a row of {len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the text is not UTF-8".to_owned(),
        _ => error.to_string(),
    };
    ExchangeError::new(Problem::BadCsv, source_name, location, message)
}
