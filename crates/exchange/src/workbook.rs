//! The Excel workbook an analyst opens: one sheet per table (totals, sectors, shares, partner
//! counts, sources), numbers as numeric cells, the printed forms beside them as text, the
//! header frozen and filterable. Rows are written a report at a time to temporary files
//! (rust_xlsxwriter's constant-memory mode); the zip is assembled at the end.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::document::{Basis, Dimension, Kind, Placement, ReportDoc, Role};
use crate::table::COLUMNS;

/// A cell: text or a number.
enum Cell<'a> {
    Text(&'a str),
    Number(f64),
}

use Cell::{Number, Text};

const SHEETS: [(&str, &[&str]); 5] = [
    (
        "Totals",
        &[
            "country_code",
            "country_name",
            "year",
            "report_kind",
            "title",
            "people_in_need",
            "people_targeted",
            "people_reached",
            "requirements_usd",
            "funding_usd",
            "unmet_usd",
            "funded_percent",
            "people_in_need_printed",
            "people_targeted_printed",
            "people_reached_printed",
            "requirements_printed",
            "funding_printed",
            "unmet_printed",
            "funded_percent_printed",
            "funding_as_of",
            "funding_source",
            "synthetic",
        ],
    ),
    ("Sectors", &[]),
    (
        "Shares",
        &[
            "country_code",
            "year",
            "report_kind",
            "dimension",
            "position",
            "label",
            "percent",
            "percent_printed",
            "basis",
        ],
    ),
    (
        "Partner counts",
        &[
            "country_code",
            "year",
            "report_kind",
            "role",
            "count",
            "printed",
            "footnote_marker",
        ],
    ),
    (
        "Sources",
        &[
            "country_code",
            "year",
            "report_kind",
            "position",
            "url",
            "label",
            "placement",
        ],
    ),
];

/// Builds a workbook one report at a time.
pub struct WorkbookWriter {
    book: Workbook,
    /// The next row of each sheet.
    rows: [u32; 5],
}

impl std::fmt::Debug for WorkbookWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkbookWriter")
            .field("rows", &self.rows)
            .finish()
    }
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::EndYear => "END_YEAR",
        Kind::MidYear => "MID_YEAR",
        Kind::Plan => "PLAN",
    }
}

impl WorkbookWriter {
    pub fn new() -> Result<Self, XlsxError> {
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        let sector_columns: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        for (name, columns) in SHEETS {
            let columns: &[&str] = if name == "Sectors" {
                &sector_columns
            } else {
                columns
            };
            // Constant memory: each sheet's rows go to a temporary file as they are written
            // (in row order, which is how a report at a time writes them), so a large
            // export does not hold every cell until the end.
            let sheet = book.add_worksheet_with_constant_memory()?;
            sheet.set_name(name)?;
            for (i, column) in columns.iter().enumerate() {
                let col = u16::try_from(i).unwrap_or(u16::MAX);
                sheet.write_string_with_format(0, col, *column, &bold)?;
                sheet.set_column_width(col, (column.len() as f64 + 2.0).max(10.0))?;
            }
            sheet.set_freeze_panes(1, 0)?;
            let last = u16::try_from(columns.len().saturating_sub(1)).unwrap_or(u16::MAX);
            sheet.autofilter(0, 0, 0, last)?;
        }
        Ok(Self { book, rows: [1; 5] })
    }

    fn row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), XlsxError> {
        let row = self.rows[sheet];
        let ws = self.book.worksheet_from_index(sheet)?;
        for (i, cell) in cells.iter().enumerate() {
            let col = u16::try_from(i).unwrap_or(u16::MAX);
            match cell {
                Text("") => {}
                Text(t) => {
                    ws.write_string(row, col, *t)?;
                }
                Number(n) => {
                    ws.write_number(row, col, *n)?;
                }
            }
        }
        self.rows[sheet] += 1;
        Ok(())
    }

    /// The rows of one report in every sheet.
    pub fn report(&mut self, doc: &ReportDoc) -> Result<(), XlsxError> {
        let iso3 = doc.country.iso3.as_str();
        let year = f64::from(doc.year);
        let k = kind(doc.kind);
        let t = &doc.totals;
        let as_of = doc.funding.as_of.map(|d| d.to_string()).unwrap_or_default();
        self.row(
            0,
            &[
                Text(iso3),
                Text(&doc.country.name),
                Number(year),
                Text(k),
                Text(&doc.title),
                Number(t.people_in_need.value as f64),
                Number(t.people_targeted.value as f64),
                Number(t.people_reached.value as f64),
                Number(t.requirements_usd.value as f64),
                Number(t.funding_usd.value as f64),
                Number(t.unmet_usd.value as f64),
                Number(t.funded_percent.value),
                Text(&t.people_in_need.printed),
                Text(&t.people_targeted.printed),
                Text(&t.people_reached.printed),
                Text(&t.requirements_usd.printed),
                Text(&t.funding_usd.printed),
                Text(&t.unmet_usd.printed),
                Text(&t.funded_percent.printed),
                Text(&as_of),
                Text(doc.funding.source.as_deref().unwrap_or("")),
                Text(if doc.synthetic { "true" } else { "false" }),
            ],
        )?;
        for s in &doc.sectors {
            self.row(
                1,
                &[
                    Text(iso3),
                    Text(&doc.country.name),
                    Number(year),
                    Text(k),
                    Text(&s.code),
                    Text(&s.name),
                    Text(s.parent.as_deref().unwrap_or("")),
                    Number(s.people_targeted.value as f64),
                    Number(s.people_reached.value as f64),
                    Number(s.reached_percent.value),
                    Number(s.requirements_usd.value as f64),
                    Number(s.funding_usd.value as f64),
                    Number(s.funded_percent.value),
                    Text(&s.people_targeted.printed),
                    Text(&s.people_reached.printed),
                    Text(&s.reached_percent.printed),
                    Text(&s.requirements_usd.printed),
                    Text(&s.funding_usd.printed),
                    Text(&s.funded_percent.printed),
                    Text(if doc.synthetic { "true" } else { "false" }),
                ],
            )?;
        }
        for s in &doc.shares {
            self.row(
                2,
                &[
                    Text(iso3),
                    Number(year),
                    Text(k),
                    Text(match s.dimension {
                        Dimension::AgeGender => "AGE_GENDER",
                        Dimension::PopulationType => "POPULATION_TYPE",
                    }),
                    Number(f64::from(s.position)),
                    Text(s.label.as_deref().unwrap_or("")),
                    Number(s.percent.value),
                    Text(&s.percent.printed),
                    Text(match s.basis {
                        Some(Basis::PeopleTargeted) => "PEOPLE_TARGETED",
                        Some(Basis::PeopleReached) => "PEOPLE_REACHED",
                        None => "",
                    }),
                ],
            )?;
        }
        for p in &doc.partner_counts {
            self.row(
                3,
                &[
                    Text(iso3),
                    Number(year),
                    Text(k),
                    Text(match p.role {
                        Role::Reporting => "REPORTING",
                        Role::Implementing => "IMPLEMENTING",
                        Role::RefugeeAndMigrantLed => "REFUGEE_AND_MIGRANT_LED",
                        Role::Donor => "DONOR",
                    }),
                    Number(f64::from(p.count)),
                    Text(&p.printed),
                    Text(p.footnote_marker.as_deref().unwrap_or("")),
                ],
            )?;
        }
        for (i, s) in doc.sources.iter().enumerate() {
            self.row(
                4,
                &[
                    Text(iso3),
                    Number(year),
                    Text(k),
                    Number(i as f64 + 1.0),
                    Text(&s.url),
                    Text(s.label.as_deref().unwrap_or("")),
                    Text(match s.placement {
                        Placement::Footnotes => "FOOTNOTES",
                        Placement::EndNotes => "END_NOTES",
                    }),
                ],
            )?;
        }
        Ok(())
    }

    /// The finished file's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, XlsxError> {
        self.book.save_to_buffer()
    }
}
