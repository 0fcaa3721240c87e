//! The reader of a published report's text (the layout of the RMRP End-Year Report).
//!
//! The text comes from a PDF, so the reader follows the printed order of the key-figures page
//! (sector table, people totals, shares, money totals, partner counts, title, footnotes, links)
//! and then the narrative (Situation, Response, Lessons Learned, cited links). Each block is
//! required: a missing or garbled block is an error naming the line where it was expected, so a
//! broken file never half-loads.

use chrono::NaiveDate;
use thiserror::Error;

use crate::codes::SectorCode;
use crate::reference;
use crate::report::{
    Footnote, LinkPlacement, NarrativeSection, PartnerCount, PartnerRole, ReportDocument,
    ReportKind, SectionKind, SectorRow, Share, ShareBasis, ShareDimension, SourceLink, Totals,
};
use crate::units::{PeopleCount, Percent, UnitError, Usd};

/// A structural problem with the report text; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not text ({0})")]
    NotText(String),
    #[error("cannot read {what}: {source}")]
    BadNumber {
        what: &'static str,
        source: UnitError,
    },
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("'{0}' is not a sector of the RMRP template")]
    UnknownSector(String),
    #[error("expected {expected} figures, found {found}")]
    FigureCount { expected: usize, found: usize },
    #[error("the sector {0} is printed twice")]
    DuplicateSector(String),
    /// The end of the text looks cut short (an interrupted copy or download): storing it would
    /// publish a paragraph or a link that is not the one printed.
    #[error("{}", .sign.message(.last))]
    Truncated {
        sign: TruncationSign,
        /// The end of the last line, quoted.
        last: String,
    },
}

/// What makes the end of a text look cut short.
///
/// A cut always lands at the end, so only the document's final line and final prose are
/// judged: the last line must be closed by a line break, and when it is prose the last
/// paragraph must end a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationSign {
    /// The last line is a link and no line break follows it: a URL has no end mark of its own,
    /// so only the line break shows it was written out whole.
    UnterminatedLink,
    /// The last line is prose and no line break follows it: a cut inside the line can land
    /// right after a full stop ("…substantial support." of "support. The short…"), which the
    /// sentence rule alone would accept.
    UnterminatedProse,
    /// The last paragraph of the last section does not end a sentence.
    UnfinishedSentence,
}

impl TruncationSign {
    /// The message of a [`ParseErrorKind::Truncated`], with what to do about it.
    fn message(self, last: &str) -> String {
        match self {
            Self::UnterminatedLink => format!(
                "the text may be cut short: it ends on the link {last} with no line break \
                 after it, so the link cannot be known to be complete; if the file is whole, \
                 end the file with a line break"
            ),
            Self::UnterminatedProse => format!(
                "the text may be cut short: it ends on the line {last} with no line break \
                 after it, so the paragraph cannot be known to be complete; if the file is \
                 whole, end the file with a line break"
            ),
            Self::UnfinishedSentence => format!(
                "the text looks cut short: its last paragraph ends mid-sentence ({last}); \
                 restore the rest of the report (a paragraph ends with . ! ? : or ;)"
            ),
        }
    }
}

impl ParseErrorKind {
    /// Stable code for scripts and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "REPORT_EMPTY",
            Self::NotText(_) => "REPORT_NOT_TEXT",
            Self::BadNumber { .. } => "REPORT_BAD_NUMBER",
            Self::Unexpected { .. } => "REPORT_UNEXPECTED_TEXT",
            Self::UnknownSector(_) => "REPORT_UNKNOWN_SECTOR",
            Self::FigureCount { .. } => "REPORT_FIGURE_COUNT",
            Self::DuplicateSector(_) => "REPORT_DUPLICATE_SECTOR",
            Self::Truncated { .. } => "REPORT_TRUNCATED",
        }
    }
}

fn err(line: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

/// Reads a report from the bytes of its text file.
pub fn parse_report(bytes: &[u8]) -> Result<ReportDocument, ParseError> {
    let text = decode(bytes)?;
    let mut cur = Cursor::new(text);
    if cur.peek().is_none() {
        return Err(err(1, ParseErrorKind::Empty));
    }
    cur.skip_artefacts();
    let sectors = read_sector_table(&mut cur)?;

    cur.expect_labels(
        "PEOPLE IN NEED (PIN) PEOPLE TARGETED PEOPLE REACHED",
        "the people totals (PEOPLE IN NEED / PEOPLE TARGETED / PEOPLE REACHED)",
    )?;
    let (people_line, people) = cur.expect_figures(3, "people totals", PeopleCount::parse)?;
    let [people_in_need, people_targeted, people_reached] = into_array(people_line, people)?;

    cur.expect_labels(
        "AGE AND GENDER DISAGGREGATION",
        "the age and gender disaggregation",
    )?;
    let (_, age_gender) = cur.expect_figures(0, "age and gender percentages", Percent::parse)?;
    let mut shares: Vec<Share> = age_gender
        .into_iter()
        .zip(1..)
        .map(|(percent, position)| Share {
            dimension: ShareDimension::AgeGender,
            position,
            label: None,
            percent,
            basis: None,
        })
        .collect();

    cur.expect_labels(
        "PERCENTAGE OF PEOPLE REACHED BY POPULATION TYPES",
        "the population-type percentages",
    )?;
    let (_, population) = cur.expect_figures(0, "population-type percentages", Percent::parse)?;
    let labels = cur.expect_known_labels(
        population.len(),
        reference::POPULATION_TYPE_LABELS,
        "population-type labels",
    )?;
    shares.extend(population.into_iter().zip(labels).zip(1..).map(
        |((percent, label), position)| Share {
            dimension: ShareDimension::PopulationType,
            position,
            label: Some(label),
            percent,
            // They add up to reached ÷ targeted, not to 100%: their basis is people targeted.
            basis: Some(ShareBasis::PeopleTargeted),
        },
    ));

    let money_labels = cur.expect_labels(
        "TOTAL REQUIREMENTS BUDGET RECEIVED* UNMET",
        "the funding totals (TOTAL REQUIREMENTS / BUDGET RECEIVED / UNMET)",
    )?;
    let funding_footnote_marker = marker_after(&money_labels, "RECEIVED");
    let (money_line, money) = cur.expect_figures(3, "funding totals", Usd::parse)?;
    let [requirements, funding_received, unmet] = into_array(money_line, money)?;
    cur.expect_labels(
        "PERCENTAGE OF BUDGET RECEIVED",
        "the percentage of budget received",
    )?;
    let (percent_line, funded) = cur.expect_figures(1, "percentage funded", Percent::parse)?;
    let [funded_percent] = into_array(percent_line, funded)?;

    let partner_counts = read_partner_counts(&mut cur)?;
    let (kind, year, title) = read_title(&mut cur)?;
    cur.expect_labels("KEY FIGURES BY SECTOR", "the heading KEY FIGURES BY SECTOR")?;
    let footnotes = read_footnotes(&mut cur)?;
    let mut sources = read_links(&mut cur, LinkPlacement::Footnotes);
    let sections = read_sections(&mut cur)?;
    sources.extend(read_links(&mut cur, LinkPlacement::EndNotes));
    if let Some((line, text)) = cur.peek() {
        return Err(err(
            line,
            ParseErrorKind::Unexpected {
                expected: "the end of the report after the cited links",
                found: quote(text),
            },
        ));
    }
    check_complete(text, &cur, &sections)?;

    let (funding_source, funding_as_of) = footnotes
        .iter()
        .find_map(|f| funding_note(&f.text))
        .map_or((None, None), |(s, d)| (Some(s), d));

    Ok(ReportDocument {
        kind,
        year,
        title,
        sectors,
        totals: Totals {
            people_in_need,
            people_targeted,
            people_reached,
            requirements,
            funding_received,
            unmet,
            funded_percent,
            people_line,
            money_line,
            percent_line,
        },
        shares,
        partner_counts,
        footnotes,
        funding_source,
        funding_as_of,
        funding_footnote_marker,
        sources,
        sections,
    })
}

/// The figures of a line as a fixed-size array (`expect_figures` already checked the count;
/// a mismatch is still an error rather than a panic).
fn into_array<T, const N: usize>(line: usize, items: Vec<T>) -> Result<[T; N], ParseError> {
    let found = items.len();
    items
        .try_into()
        .map_err(|_| err(line, ParseErrorKind::FigureCount { expected: N, found }))
}

fn decode(bytes: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        err(
            line,
            ParseErrorKind::NotText(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        )
    })?;
    for (index, line) in text.lines().enumerate() {
        if let Some(c) = line
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\u{c}'))
        {
            return Err(err(
                index + 1,
                ParseErrorKind::NotText(format!("control character U+{:04X}", u32::from(c))),
            ));
        }
    }
    // A byte-order mark is an encoding artefact, not text of the report.
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Refuses a text whose end looks cut short (see [`TruncationSign`]). Runs once the structure
/// has read whole, so the last non-blank line is either an end-note link or the final prose of
/// the last section; nothing earlier is judged, because a cut only ever removes the end.
fn check_complete(
    text: &str,
    cur: &Cursor<'_>,
    sections: &[NarrativeSection],
) -> Result<(), ParseError> {
    let Some((index, last)) = cur
        .lines
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty())
    else {
        return Err(err(1, ParseErrorKind::Empty));
    };
    let line = index + 1;
    let last = last.trim();
    // A line break (LF, CRLF, or the form feed PDF extractors end pages with) after the last
    // non-blank character; trailing spaces alone prove nothing, lines carry them mid-paragraph.
    let tail = &text[text.trim_end().len()..];
    let closed = tail.contains(['\n', '\u{c}']);
    let truncated = |sign| {
        err(
            line,
            ParseErrorKind::Truncated {
                sign,
                last: quote_end(last),
            },
        )
    };
    if is_link(last) {
        return if closed {
            Ok(())
        } else {
            Err(truncated(TruncationSign::UnterminatedLink))
        };
    }
    let final_prose = sections.last().and_then(|s| s.paragraphs.last());
    if let Some(paragraph) = final_prose
        && !ends_sentence(paragraph)
    {
        return Err(err(
            line,
            ParseErrorKind::Truncated {
                sign: TruncationSign::UnfinishedSentence,
                last: quote_end(paragraph),
            },
        ));
    }
    if !closed {
        return Err(truncated(TruncationSign::UnterminatedProse));
    }
    Ok(())
}

/// Does a paragraph end a sentence? It must end with . ! ? : ; or an ellipsis, optionally
/// followed by closing brackets or quotes ("….)", "…?”"). A bracket or quote alone is not
/// enough: "(FTS)" can close a line in mid-sentence, so a cut there would pass.
fn ends_sentence(paragraph: &str) -> bool {
    paragraph
        .trim_end()
        .trim_end_matches([')', ']', '”', '’', '"', '\'', '»'])
        .ends_with(['.', '!', '?', ':', ';', '…'])
}

/// The end of a line, quoted: where a cut lands is what the reader needs to see.
fn quote_end(text: &str) -> String {
    const MAX: usize = 60;
    let count = text.chars().count();
    if count > MAX {
        format!("'…{}'", text.chars().skip(count - MAX).collect::<String>())
    } else {
        format!("'{text}'")
    }
}

fn quote(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        format!("'{}…'", text.chars().take(MAX).collect::<String>())
    } else {
        format!("'{text}'")
    }
}

/// Lines of the text with a read position; blank lines are skipped by every read.
struct Cursor<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
            pos: 0,
        }
    }

    /// The next non-blank line (1-based number, trimmed text), without consuming it.
    fn peek(&mut self) -> Option<(usize, &'a str)> {
        while let Some(line) = self.lines.get(self.pos) {
            if line.trim().is_empty() {
                self.pos += 1;
            } else {
                return Some((self.pos + 1, line.trim()));
            }
        }
        None
    }

    /// The next line as is, blank or not (for paragraph breaks).
    fn raw(&self) -> Option<&'a str> {
        self.lines.get(self.pos).copied()
    }

    fn advance(&mut self) {
        self.pos += 1;
    }

    /// Line number to blame when the text ends early.
    fn end_line(&self) -> usize {
        self.lines.len().max(1)
    }

    fn missing(&mut self, expected: &'static str) -> ParseError {
        match self.peek() {
            Some((line, text)) => err(
                line,
                ParseErrorKind::Unexpected {
                    expected,
                    found: quote(text),
                },
            ),
            None => err(
                self.end_line(),
                ParseErrorKind::Unexpected {
                    expected,
                    found: "the end of the file".to_owned(),
                },
            ),
        }
    }

    /// Lines made only of symbols ("*", "%") are icon residue from the PDF.
    fn skip_artefacts(&mut self) {
        while let Some((_, text)) = self.peek() {
            if text.chars().any(char::is_alphanumeric) {
                break;
            }
            self.advance();
        }
    }

    /// Reads label lines (headings broken over several lines) until their words equal
    /// `expected`; returns the words as printed.
    fn expect_labels(
        &mut self,
        expected: &'static str,
        what: &'static str,
    ) -> Result<String, ParseError> {
        // An error names the first line that does not continue the heading (or the end of
        // the file), which is where a truncated or edited copy went wrong.
        let want: Vec<&str> = expected.split_whitespace().collect();
        let mut got: Vec<&str> = Vec::new();
        while got.len() < want.len() {
            let Some((_, text)) = self.peek() else {
                return Err(self.missing(what));
            };
            let words: Vec<&str> = text.split_whitespace().collect();
            let fits = got.len() + words.len() <= want.len()
                && words.iter().zip(&want[got.len()..]).all(|(a, b)| a == b);
            if !fits {
                return Err(self.missing(what));
            }
            got.extend(words);
            self.advance();
        }
        Ok(got.join(" "))
    }

    /// Reads one line of figures (`count` of them; 0 means any number, at least one).
    fn expect_figures<T>(
        &mut self,
        count: usize,
        what: &'static str,
        parse: impl Fn(&str) -> Result<T, UnitError>,
    ) -> Result<(usize, Vec<T>), ParseError> {
        let Some((line, text)) = self.peek() else {
            return Err(self.missing(what));
        };
        let tokens = figure_tokens(text);
        if tokens.is_empty() || !tokens[0].starts_with(|c: char| c.is_ascii_digit() || c == '$') {
            return Err(self.missing(what));
        }
        if count != 0 && tokens.len() != count {
            return Err(err(
                line,
                ParseErrorKind::FigureCount {
                    expected: count,
                    found: tokens.len(),
                },
            ));
        }
        let values = tokens
            .iter()
            .map(|t| {
                parse(t).map_err(|source| err(line, ParseErrorKind::BadNumber { what, source }))
            })
            .collect::<Result<Vec<T>, ParseError>>()?;
        self.advance();
        Ok((line, values))
    }

    /// Reads `count` labels from a closed list, possibly broken over lines
    /// ("Affected host" / "communities").
    fn expect_known_labels(
        &mut self,
        count: usize,
        known: &[&str],
        what: &'static str,
    ) -> Result<Vec<String>, ParseError> {
        let mut pending = String::new();
        let mut labels = Vec::new();
        while labels.len() < count {
            let Some((_, text)) = self.peek() else {
                return Err(self.missing(what));
            };
            if !pending.is_empty() {
                pending.push(' ');
            }
            pending.push_str(text);
            self.advance();
            // Take every known label at the front of what has been read so far.
            'take: loop {
                for label in known {
                    if let Some(rest) = pending.strip_prefix(label)
                        && (rest.is_empty() || rest.starts_with(' '))
                    {
                        labels.push((*label).to_owned());
                        pending = rest.trim_start().to_owned();
                        continue 'take;
                    }
                }
                break;
            }
            // Whatever remains must be the start of a known label, continued on the next line.
            if !pending.is_empty() && !known.iter().any(|l| l.starts_with(pending.as_str())) {
                self.pos -= 1;
                return Err(self.missing(what));
            }
        }
        if !pending.is_empty() || labels.len() != count {
            return Err(self.missing(what));
        }
        Ok(labels)
    }
}

/// Splits a line of figures, keeping a unit suffix with its number: "$22.68 M 36.2%" →
/// ["$22.68 M", "36.2%"].
fn figure_tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match (word, tokens.last_mut()) {
            ("K" | "M" | "B", Some(last)) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => tokens.push(word.to_owned()),
        }
    }
    tokens
}

/// The asterisks printed right after `word` in a label ("RECEIVED*" → "*").
fn marker_after(labels: &str, word: &str) -> Option<String> {
    labels.split_whitespace().find_map(|w| {
        let rest = w.strip_prefix(word)?;
        (!rest.is_empty() && rest.chars().all(|c| c == '*')).then(|| rest.to_owned())
    })
}

/// Does the line look like a key-figures row (an upper-case heading followed by figures)?
fn is_sector_row(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_uppercase())
        && (text.contains('$') || text.ends_with('%'))
}

fn read_sector_table(cur: &mut Cursor<'_>) -> Result<Vec<SectorRow>, ParseError> {
    let mut rows: Vec<SectorRow> = Vec::new();
    while let Some((line, text)) = cur.peek() {
        if !is_sector_row(text) {
            break;
        }
        let row = parse_sector_row(line, text)?;
        if rows.iter().any(|r| r.sector == row.sector) {
            return Err(err(
                line,
                ParseErrorKind::DuplicateSector(row.printed_heading),
            ));
        }
        rows.push(row);
        cur.advance();
    }
    if rows.is_empty() {
        return Err(cur.missing("the key figures by sector table"));
    }
    Ok(rows)
}

/// Reads a row right to left: % funded, funding, requirements, % reached, reached, targeted;
/// what is left is the sector heading.
fn parse_sector_row(line: usize, text: &str) -> Result<SectorRow, ParseError> {
    let mut tokens = figure_tokens(text);
    if tokens.len() < 7 {
        return Err(err(
            line,
            ParseErrorKind::FigureCount {
                expected: 6,
                found: tokens.len().saturating_sub(1),
            },
        ));
    }
    // Seven or more tokens: the six pops below always find one.
    let mut take = || tokens.pop().unwrap_or_default();
    let bad =
        |what: &'static str| move |source| err(line, ParseErrorKind::BadNumber { what, source });
    let funded_percent = Percent::parse(&take()).map_err(bad("% funded"))?;
    let funding = Usd::parse(&take()).map_err(bad("funding received"))?;
    let requirements = Usd::parse(&take()).map_err(bad("requirements"))?;
    let reached_percent = Percent::parse(&take()).map_err(bad("% reached"))?;
    let people_reached = PeopleCount::parse(&take()).map_err(bad("people reached"))?;
    let people_targeted = PeopleCount::parse(&take()).map_err(bad("people targeted"))?;
    let heading = tokens.join(" ");
    let def = reference::sector_by_heading(&heading)
        .ok_or_else(|| err(line, ParseErrorKind::UnknownSector(heading.clone())))?;
    let sector = SectorCode::parse(def.code)
        .map_err(|_| err(line, ParseErrorKind::UnknownSector(heading.clone())))?;
    Ok(SectorRow {
        line,
        sector,
        printed_heading: heading,
        people_targeted,
        people_reached,
        reached_percent,
        requirements,
        funding,
        funded_percent,
    })
}

/// "LABEL 54" → ("LABEL", 54).
fn trailing_count(
    line: usize,
    text: &str,
    what: &'static str,
) -> Result<(String, u32), ParseError> {
    let (label, number) = text.rsplit_once(' ').unwrap_or(("", text));
    let count = PeopleCount::parse(number)
        .map_err(|source| err(line, ParseErrorKind::BadNumber { what, source }))?
        .value();
    let count = u32::try_from(count).map_err(|_| {
        err(
            line,
            ParseErrorKind::BadNumber {
                what,
                source: UnitError::TooLarge(number.to_owned()),
            },
        )
    })?;
    Ok((label.trim_end().to_owned(), count))
}

fn read_partner_counts(cur: &mut Cursor<'_>) -> Result<Vec<PartnerCount>, ParseError> {
    // (role, printed label without markers, what to call it in an error)
    let boxes: [(PartnerRole, &str, &'static str); 2] = [
        (
            PartnerRole::Reporting,
            "REPORTING PARTNERS",
            "the reporting partners count",
        ),
        (
            PartnerRole::Implementing,
            "IMPLEMENTING PARTNERS",
            "the implementing partners count",
        ),
    ];
    let mut counts = Vec::new();
    for (role, label, what) in boxes {
        let Some((line, text)) = cur.peek() else {
            return Err(cur.missing(what));
        };
        let Some(rest) = text.strip_prefix(label) else {
            return Err(cur.missing(what));
        };
        let marker: String = rest.chars().take_while(|&c| c == '*').collect();
        let (_, count) = trailing_count(line, text, what)?;
        counts.push(PartnerCount {
            role,
            count,
            footnote_marker: (!marker.is_empty()).then_some(marker),
            printed: text.to_owned(),
        });
        cur.advance();
    }
    // "(INCLUDING 12 REFUGEE AND MIGRANT-LED ORGANIZATIONS)"
    let what = "the refugee- and migrant-led organisations count";
    let Some((line, text)) = cur.peek() else {
        return Err(cur.missing(what));
    };
    let inner = text
        .strip_prefix("(INCLUDING ")
        .and_then(|r| r.strip_suffix(" REFUGEE AND MIGRANT-LED ORGANIZATIONS)"));
    let Some(number) = inner else {
        return Err(cur.missing(what));
    };
    let (_, count) = trailing_count(line, number, what)?;
    counts.push(PartnerCount {
        role: PartnerRole::RefugeeAndMigrantLed,
        count,
        footnote_marker: None,
        printed: text.to_owned(),
    });
    cur.advance();

    let what = "the donors count";
    let Some((line, text)) = cur.peek() else {
        return Err(cur.missing(what));
    };
    if !text.starts_with("DONORS") {
        return Err(cur.missing(what));
    }
    let (_, count) = trailing_count(line, text, what)?;
    counts.push(PartnerCount {
        role: PartnerRole::Donor,
        count,
        footnote_marker: None,
        printed: text.to_owned(),
    });
    cur.advance();
    Ok(counts)
}

fn read_title(cur: &mut Cursor<'_>) -> Result<(ReportKind, i32, String), ParseError> {
    let what = "the report title (END-YEAR REPORT YYYY or MID-YEAR REPORT YYYY)";
    let Some((_, text)) = cur.peek() else {
        return Err(cur.missing(what));
    };
    let parsed = [
        ("END-YEAR REPORT ", ReportKind::EndYear),
        ("MID-YEAR REPORT ", ReportKind::MidYear),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| {
        let year = text.strip_prefix(prefix)?;
        (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
            .then(|| year.parse::<i32>().ok())
            .flatten()
            .map(|y| (kind, y))
    });
    let Some((kind, year)) = parsed else {
        return Err(cur.missing(what));
    };
    let title = text.to_owned();
    cur.advance();
    Ok((kind, year, title))
}

/// A footnote starts with its marker and a tab or space: "*\t Funding information…".
fn footnote_start(text: &str) -> Option<(&str, &str)> {
    let marker_len = text.chars().take_while(|&c| c == '*').count();
    if marker_len == 0 {
        return None;
    }
    let rest = &text[marker_len..];
    rest.starts_with([' ', '\t'])
        .then(|| (&text[..marker_len], rest.trim()))
}

fn is_link(text: &str) -> bool {
    text.starts_with("https://") || text.starts_with("http://")
}

fn is_heading(text: &str) -> bool {
    SectionKind::ALL.iter().any(|k| k.heading() == text)
}

fn read_footnotes(cur: &mut Cursor<'_>) -> Result<Vec<Footnote>, ParseError> {
    let mut notes = Vec::new();
    while let Some((_, text)) = cur.peek() {
        let Some((marker, first)) = footnote_start(text) else {
            break;
        };
        let marker = marker.to_owned();
        cur.advance();
        let mut blocks = vec![vec![first.to_owned()]];
        // The note runs until the next note, a link, or a section heading.
        while let Some(raw) = cur.raw() {
            let t = raw.trim();
            if t.is_empty() {
                if blocks.last().is_some_and(|b| !b.is_empty()) {
                    blocks.push(Vec::new());
                }
                cur.advance();
                continue;
            }
            if footnote_start(t).is_some() || is_link(t) || is_heading(t) {
                break;
            }
            if let Some(block) = blocks.last_mut() {
                block.push(t.to_owned());
            }
            cur.advance();
        }
        let text = join_paragraphs(&blocks).join("\n\n");
        notes.push(Footnote { marker, text });
    }
    if notes.is_empty() {
        return Err(cur.missing("the footnotes (lines starting with '*')"));
    }
    Ok(notes)
}

fn read_links(cur: &mut Cursor<'_>, placement: LinkPlacement) -> Vec<SourceLink> {
    let mut links = Vec::new();
    while let Some((_, text)) = cur.peek() {
        if !is_link(text) {
            break;
        }
        links.push(SourceLink {
            url: text.to_owned(),
            label: None,
            placement,
        });
        cur.advance();
    }
    links
}

fn read_sections(cur: &mut Cursor<'_>) -> Result<Vec<NarrativeSection>, ParseError> {
    let mut sections = Vec::new();
    for kind in SectionKind::ALL {
        let what = match kind {
            SectionKind::Situation => "the section heading 'Situation'",
            SectionKind::Response => "the section heading 'Response'",
            SectionKind::LessonsLearned => "the section heading 'Lessons Learned'",
        };
        match cur.peek() {
            Some((_, text)) if text == kind.heading() => cur.advance(),
            _ => return Err(cur.missing(what)),
        }
        let mut blocks: Vec<Vec<String>> = vec![Vec::new()];
        while let Some(raw) = cur.raw() {
            let t = raw.trim();
            if is_heading(t) || is_link(t) {
                break;
            }
            if t.is_empty() {
                if blocks.last().is_some_and(|b| !b.is_empty()) {
                    blocks.push(Vec::new());
                }
            } else if let Some(block) = blocks.last_mut() {
                block.push(t.to_owned());
            }
            cur.advance();
        }
        let paragraphs = join_paragraphs(&blocks);
        if paragraphs.is_empty() {
            return Err(cur.missing("a paragraph of the section"));
        }
        sections.push(NarrativeSection {
            kind,
            title: kind.heading().to_owned(),
            paragraphs,
        });
    }
    Ok(sections)
}

/// Joins the lines of each block into one paragraph, then re-joins paragraphs the PDF's columns
/// split ("…accompanied by technical" / "and financial support."): a block that does not end a
/// sentence, followed by one that starts in lower case, is the same paragraph.
fn join_paragraphs(blocks: &[Vec<String>]) -> Vec<String> {
    let mut paragraphs: Vec<String> = Vec::new();
    for block in blocks.iter().filter(|b| !b.is_empty()) {
        let text = join_lines(block);
        let continues = paragraphs.last().is_some_and(|prev| {
            !prev.ends_with(['.', '!', '?', ':', ';'])
                && text.starts_with(|c: char| c.is_lowercase())
        });
        match paragraphs.last_mut() {
            Some(prev) if continues => {
                prev.push(' ');
                prev.push_str(&text);
            }
            _ => paragraphs.push(text),
        }
    }
    paragraphs
}

/// Joins wrapped lines with a space; a line ending in a hyphen after a letter
/// ("environment-" / "related") was a hyphenated compound and joins without one.
fn join_lines(lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        let glued = out.ends_with('-')
            && out[..out.len() - 1].ends_with(char::is_alphabetic)
            && line.starts_with(char::is_alphabetic);
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(line.trim());
    }
    out
}

/// "…reported to the Financial Tracking Service (FTS) as of 1 April 2024." →
/// ("Financial Tracking Service (FTS)", 2024-04-01).
fn funding_note(text: &str) -> Option<(String, Option<NaiveDate>)> {
    let after = text.split_once("reported to the ")?.1;
    let (source, rest) = after.split_once(" as of ")?;
    let date_text = rest.split('.').next()?.trim();
    let date = NaiveDate::parse_from_str(date_text, "%d %B %Y").ok();
    Some((source.trim().to_owned(), date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_tokens_keep_units_with_their_numbers() {
        assert_eq!(
            figure_tokens("EDUCATION 103.3 K 37.4 K 36.2% $22.68 M"),
            vec!["EDUCATION", "103.3 K", "37.4 K", "36.2%", "$22.68 M"]
        );
    }

    #[test]
    fn hyphenated_line_breaks_join_without_a_space() {
        let lines = vec![
            "recent environment-".to_owned(),
            "related factors".to_owned(),
        ];
        assert_eq!(join_lines(&lines), "recent environment-related factors");
    }

    #[test]
    fn column_breaks_inside_a_sentence_are_joined() {
        let blocks = vec![
            vec!["accompanied by technical".to_owned()],
            vec!["and financial support.".to_owned()],
            vec!["Next paragraph.".to_owned()],
        ];
        assert_eq!(
            join_paragraphs(&blocks),
            vec![
                "accompanied by technical and financial support.".to_owned(),
                "Next paragraph.".to_owned()
            ]
        );
    }

    #[test]
    fn funding_note_names_source_and_date() {
        let note = "Funding information as reported to the Financial Tracking Service (FTS) as of 1 April 2024. This data";
        assert_eq!(
            funding_note(note),
            Some((
                "Financial Tracking Service (FTS)".to_owned(),
                NaiveDate::from_ymd_opt(2024, 4, 1)
            ))
        );
    }

    /// Every truncation, every single-line deletion and a few thousand byte edits of the real
    /// report give an answer, never a panic.
    #[test]
    fn damaged_copies_never_panic() {
        let text = crate::PERU_2023_END_YEAR;
        let lines: Vec<&str> = text.lines().collect();
        for n in 0..=lines.len() {
            let _ = parse_report(lines[..n].join("\n").as_bytes());
            let mut without = lines.clone();
            if n < without.len() {
                without.remove(n);
                let _ = parse_report(without.join("\n").as_bytes());
            }
        }
        // A fixed-seed generator: the same edits on every run.
        let mut seed: u64 = 0x5eed;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize
        };
        let replacements = b"0123456789.,$%KM* \n\tx-";
        for _ in 0..3_000 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let at = next() % bytes.len();
                bytes[at] = replacements[next() % replacements.len()];
            }
            let _ = parse_report(&bytes);
        }
    }

    #[test]
    fn a_byte_order_mark_and_windows_line_ends_read_the_same() {
        let plain = parse_report(crate::PERU_2023_END_YEAR.as_bytes());
        let windows = format!(
            "\u{feff}{}",
            crate::PERU_2023_END_YEAR.replace('\n', "\r\n")
        );
        assert!(plain.is_ok());
        assert_eq!(parse_report(windows.as_bytes()), plain);
    }

    /// The code and line of a parse, or `None` when it succeeds.
    fn refusal(text: &str) -> Option<(&'static str, usize)> {
        parse_report(text.as_bytes())
            .err()
            .map(|e| (e.kind.code(), e.line))
    }

    /// The Peru text cut after its first `percent` of bytes (rounded down to a character).
    fn cut_at(percent: usize) -> &'static str {
        let text = crate::PERU_2023_END_YEAR;
        let mut at = text.len() * percent / 100;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        &text[..at]
    }

    /// Succeeds only with what the full report holds: every paragraph and every link of the
    /// parsed copy equals the full report's one at the same place (fewer of them is fine).
    fn assert_nothing_cut_short(copy: &str, full: &ReportDocument) {
        let Ok(doc) = parse_report(copy.as_bytes()) else {
            return;
        };
        let at = copy.len();
        for (section, whole) in doc.sections.iter().zip(&full.sections) {
            assert_eq!(section.kind, whole.kind, "cut at byte {at}");
            for (p, q) in section.paragraphs.iter().zip(&whole.paragraphs) {
                assert_eq!(p, q, "cut at byte {at} stored a paragraph cut short");
            }
            assert!(section.paragraphs.len() <= whole.paragraphs.len());
        }
        for (s, t) in doc.sources.iter().zip(&full.sources) {
            assert_eq!(s, t, "cut at byte {at} stored a link cut short");
        }
        assert!(doc.sources.len() <= full.sources.len());
    }

    #[allow(clippy::unwrap_used)]
    fn full_peru() -> ReportDocument {
        parse_report(crate::PERU_2023_END_YEAR.as_bytes()).unwrap()
    }

    #[test]
    fn a_cut_at_any_line_of_the_last_quarter_never_stores_a_paragraph_or_link_cut_short() {
        let text = crate::PERU_2023_END_YEAR;
        let full = full_peru();
        let breaks = text
            .match_indices('\n')
            .map(|(i, _)| i)
            .filter(|&i| i >= text.len() * 3 / 4);
        for at in breaks {
            // Right before the line break, right after it, and as `lines().join` would give.
            assert_nothing_cut_short(&text[..at], &full);
            assert_nothing_cut_short(&text[..=at], &full);
            assert_nothing_cut_short(&format!("{}\n\n", &text[..at]), &full);
        }
    }

    #[test]
    fn a_cut_at_any_byte_of_the_last_fifteen_percent_never_stores_a_paragraph_or_link_cut_short() {
        let text = crate::PERU_2023_END_YEAR;
        let full = full_peru();
        for at in text.len() * 85 / 100..=text.len() {
            if text.is_char_boundary(at) {
                assert_nothing_cut_short(&text[..at], &full);
            } else {
                // Cut inside a character: not UTF-8, still no panic.
                assert!(parse_report(&text.as_bytes()[..at]).is_err());
            }
        }
    }

    #[test]
    fn a_copy_cut_at_ninety_percent_is_refused_as_truncated() {
        let copy = cut_at(90);
        assert!(copy.ends_with("for th"), "{copy:?}");
        let e = parse_report(copy.as_bytes()).err();
        assert_eq!(
            e.as_ref().map(|e| e.kind.code()),
            Some("REPORT_TRUNCATED"),
            "{e:?}"
        );
        assert_eq!(e.map(|e| e.line), Some(copy.lines().count()));
    }

    #[test]
    fn a_copy_cut_at_ninety_nine_percent_is_refused_as_truncated() {
        let copy = cut_at(99);
        assert_eq!(
            refusal(copy),
            Some(("REPORT_TRUNCATED", copy.lines().count()))
        );
    }

    #[test]
    fn a_report_ending_right_after_its_last_url_is_refused_with_the_fix() {
        let copy = crate::PERU_2023_END_YEAR.trim_end();
        let e = parse_report(copy.as_bytes()).err();
        assert_eq!(
            e.as_ref().map(|e| (e.kind.code(), e.line)),
            Some(("REPORT_TRUNCATED", copy.lines().count()))
        );
        let message = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("end the file with a line break"),
            "{message}"
        );
        assert!(message.contains("SOP_Trata_RyM_Peru"), "{message}");
    }

    #[test]
    fn the_full_report_and_its_line_break_variants_are_not_truncated() {
        let text = crate::PERU_2023_END_YEAR;
        assert!(parse_report(text.as_bytes()).is_ok());
        let body = text.trim_end();
        for end in ["\n", "\r\n", "\u{c}", "\n  \n", " \n"] {
            assert_eq!(refusal(&format!("{body}{end}")), None, "{end:?}");
        }
    }

    #[test]
    fn a_report_without_end_notes_must_end_its_last_paragraph_and_line() {
        let text = crate::PERU_2023_END_YEAR;
        let Some(notes) = text.find("https://www.gob.pe/") else {
            panic!("the end notes moved");
        };
        let prose = &text[..notes];
        assert_eq!(refusal(prose), None);
        let unterminated = prose.trim_end();
        assert_eq!(
            refusal(unterminated).map(|(code, _)| code),
            Some("REPORT_TRUNCATED")
        );
        // Cut inside the last line right after a full stop: only the line break can tell.
        let Some(stop) = prose.find("stakeholders.") else {
            panic!("the last paragraph moved");
        };
        let mid = format!("{}\n", &prose[..stop]);
        assert!(matches!(
            parse_report(mid.as_bytes()).map_err(|e| e.kind),
            Err(ParseErrorKind::Truncated {
                sign: TruncationSign::UnfinishedSentence,
                ..
            })
        ));
    }

    #[test]
    fn sentences_end_with_a_stop_perhaps_closed_by_a_bracket_or_quote() {
        for ended in [
            "done.",
            "why?",
            "as follows:",
            "done.)",
            "“done.”",
            "done!’",
            "so…",
        ] {
            assert!(ends_sentence(ended), "{ended}");
        }
        for open in ["for th", "the (FTS)", "partners,", "“quoted”", "2023"] {
            assert!(!ends_sentence(open), "{open}");
        }
    }

    #[test]
    fn every_paragraph_of_the_bundled_report_ends_a_sentence() {
        let full = full_peru();
        for paragraph in full.sections.iter().flat_map(|s| &s.paragraphs) {
            assert!(ends_sentence(paragraph), "{paragraph}");
        }
    }

    #[test]
    fn empty_and_binary_files_are_errors_on_a_line() {
        assert_eq!(parse_report(b"").map_err(|e| e.line), Err(1));
        assert_eq!(
            parse_report(b"  \n\n").map_err(|e| e.kind.code()),
            Err("REPORT_EMPTY")
        );
        let junk = [b'a', b'\n', 0xff, 0xfe, 0x00];
        assert_eq!(
            parse_report(&junk).map_err(|e| (e.line, e.kind.code())),
            Err((2, "REPORT_NOT_TEXT"))
        );
        assert_eq!(
            parse_report(b"abc\n\x00\x01").map_err(|e| (e.line, e.kind.code())),
            Err((2, "REPORT_NOT_TEXT"))
        );
    }
}
