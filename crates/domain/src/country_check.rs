//! Does a report text belong to the country it is imported for?
//!
//! A report names its own country throughout (the Peru report says "Peru" in its situation, its
//! response and its cited links); neighbours appear too, but rarely (the border with Chile, twice).
//! So a text that names another R4V country far more often than the asked one was almost
//! certainly given the wrong country code, or the wrong file was picked. Importing it would file
//! one country's figures under another; the check refuses it, and the caller may override it
//! when the text is right after all (a regional report, a report about a border).

use std::fmt;

use crate::reference::{COUNTRIES, CountryDef};

/// Mentions another country needs before it can outweigh the asked one: a neighbour named once
/// or twice in passing is normal.
const MIN_MENTIONS: usize = 3;

/// How many times the asked country's mentions another country must exceed.
const FACTOR: usize = 2;

/// How often the text names each of the 17 R4V countries, in the order of
/// [`COUNTRIES`], zero counts included.
///
/// A mention is any of the country's spellings ([`CountryDef::spellings`]: its name, its
/// Spanish, Portuguese or local name, its English demonym), case-sensitive and as a whole word:
/// the characters before and after must not be letters or digits, so "Perugia" is not Peru but
/// "Peru’s" and "…_RyM_Peru" in a URL are. Where several spellings start at one place the
/// longest counts, once ("Dominican Republic" is one mention, not also a "Dominican").
pub fn country_mentions(text: &str) -> Vec<(&'static CountryDef, usize)> {
    let mut counts = vec![0_usize; COUNTRIES.len()];
    let mut previous: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let at_word_start = !previous.is_some_and(char::is_alphanumeric);
        let found = if at_word_start {
            longest_mention(rest)
        } else {
            None
        };
        match found {
            Some((index, len)) => {
                if let Some(count) = counts.get_mut(index) {
                    *count += 1;
                }
                previous = rest[..len].chars().next_back();
                rest = &rest[len..];
            }
            None => {
                previous = Some(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    COUNTRIES.iter().zip(counts).collect()
}

/// The longest spelling of any country at the start of `text` that ends a word: the index of
/// its country in [`COUNTRIES`] and its length in bytes.
fn longest_mention(text: &str) -> Option<(usize, usize)> {
    COUNTRIES
        .iter()
        .enumerate()
        .flat_map(|(index, c)| c.spellings().map(move |s| (index, s)))
        .filter(|(_, spelling)| {
            text.strip_prefix(spelling)
                .is_some_and(|after| !after.starts_with(char::is_alphanumeric))
        })
        .map(|(index, spelling)| (index, spelling.len()))
        .max_by_key(|&(_, len)| len)
}

/// A text that names another country far more often than the one it is imported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryMismatch {
    /// The country the import was asked for.
    pub asked: &'static CountryDef,
    pub asked_mentions: usize,
    /// The country the text names most.
    pub named: &'static CountryDef,
    pub named_mentions: usize,
}

impl CountryMismatch {
    /// Stable code for scripts and API clients.
    pub fn code(&self) -> &'static str {
        "IMPORT_COUNTRY_MISMATCH"
    }
}

impl fmt::Display for CountryMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the text names {} {} and {} {}; import it as {}, or override the check if {} is right",
            self.named.name,
            times(self.named_mentions),
            self.asked.name,
            times(self.asked_mentions),
            self.named.iso3,
            self.asked.iso3,
        )
    }
}

impl std::error::Error for CountryMismatch {}

fn times(n: usize) -> String {
    if n == 1 {
        "once".to_owned()
    } else {
        format!("{n} times")
    }
}

/// Refuses a text for `asked` when another R4V country has at least 3 mentions and more than
/// twice as many as `asked` (see [`country_mentions`]); the error names the country mentioned
/// most (the first in [`COUNTRIES`] order on a tie).
///
/// Both bounds are there for a reason: the floor of 3 lets a text that hardly names any country
/// through (nothing to judge by), and the factor of 2 lets a report about a border name its
/// neighbour often as long as it names itself about as often.
///
/// `asked` is `&'static` because it comes from [`COUNTRIES`] (through
/// [`crate::reference::country_by_iso3`] or the file name) and the mismatch points back into it.
pub fn check_country(text: &str, asked: &'static CountryDef) -> Result<(), CountryMismatch> {
    let mentions = country_mentions(text);
    let asked_mentions = mentions
        .iter()
        .find(|(c, _)| c.iso3 == asked.iso3)
        .map_or(0, |&(_, n)| n);
    // The most-named rival; `max_by_key` keeps the last of equals, so walk the table backwards
    // to keep the first.
    let named = mentions
        .iter()
        .rev()
        .filter(|&&(c, n)| c.iso3 != asked.iso3 && n >= MIN_MENTIONS && n > FACTOR * asked_mentions)
        .max_by_key(|&&(_, n)| n)
        .copied();
    match named {
        None => Ok(()),
        Some((named, named_mentions)) => Err(CountryMismatch {
            asked,
            asked_mentions,
            named,
            named_mentions,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::reference::country_by_iso3;

    fn country(iso3: &str) -> &'static CountryDef {
        country_by_iso3(iso3).expect("a country of the table")
    }

    fn count(text: &str, iso3: &str) -> usize {
        country_mentions(text)
            .into_iter()
            .find(|(c, _)| c.iso3 == iso3)
            .map_or(0, |(_, n)| n)
    }

    #[test]
    fn mentions_are_counted_for_all_seventeen_countries_in_table_order() {
        let mentions = country_mentions("");
        assert_eq!(mentions.len(), 17);
        assert!(
            mentions
                .iter()
                .zip(COUNTRIES)
                .all(|((c, n), d)| c.iso3 == d.iso3 && *n == 0)
        );
    }

    #[test]
    fn the_peru_report_imported_as_peru_passes() {
        assert_eq!(
            check_country(crate::PERU_2023_END_YEAR, country("PER")),
            Ok(())
        );
    }

    #[test]
    fn the_peru_report_imported_as_colombia_is_refused_naming_peru() {
        let text = crate::PERU_2023_END_YEAR;
        let e = check_country(text, country("COL")).unwrap_err();
        assert_eq!(e.named.iso3, "PER");
        assert_eq!(e.asked.iso3, "COL");
        assert_eq!(e.asked_mentions, 0);
        assert_eq!(e.named_mentions, count(text, "PER"));
        assert_eq!(e.code(), "IMPORT_COUNTRY_MISMATCH");
        let message = e.to_string();
        assert!(message.contains("Peru"), "{message}");
        assert!(message.contains("import it as PER"), "{message}");
        assert!(message.contains("if COL is right"), "{message}");
    }

    #[test]
    fn the_peru_report_imported_as_chile_is_refused_though_it_names_chile_twice() {
        let text = crate::PERU_2023_END_YEAR;
        assert_eq!(count(text, "CHL"), 2);
        let e = check_country(text, country("CHL")).unwrap_err();
        assert_eq!((e.asked_mentions, e.named.iso3), (2, "PER"));
        assert!(e.named_mentions > 4);
    }

    #[test]
    fn a_text_that_names_no_country_passes_for_every_country() {
        let text = "Partners delivered food, shelter and cash to refugees and migrants.";
        for c in COUNTRIES {
            assert_eq!(check_country(text, c), Ok(()), "{}", c.iso3);
        }
    }

    #[test]
    fn the_most_named_rival_is_named_the_first_in_the_table_on_a_tie() {
        let e = check_country("Chile Chile Chile Ecuador Ecuador Ecuador", country("PER"));
        assert_eq!(e.map_err(|e| e.named.iso3), Err("CHL"));
        let e = check_country(
            "Chile Chile Chile Ecuador Ecuador Ecuador Ecuador",
            country("PER"),
        );
        assert_eq!(e.map_err(|e| e.named.iso3), Err("ECU"));
    }

    #[test]
    fn a_neighbour_named_twice_as_often_or_less_than_three_times_passes() {
        // Three Chiles against two Perus: not more than twice as many.
        let border = "Peru and Chile. Chile. Chile. Peru.";
        assert_eq!(check_country(border, country("PER")), Ok(()));
        // Two Chiles against none: too few to judge by.
        assert_eq!(check_country("Chile, Chile.", country("PER")), Ok(()));
        let e = check_country("Chile, Chile, Chile.", country("PER")).unwrap_err();
        assert_eq!((e.named.iso3, e.named_mentions), ("CHL", 3));
        assert_eq!(
            e.to_string(),
            "the text names Chile 3 times and Peru 0 times; import it as CHL, or override the \
             check if PER is right"
        );
    }

    #[test]
    fn mentions_are_whole_words_and_demonyms_count_for_their_country() {
        assert_eq!(count("Perugia", "PER"), 0);
        assert_eq!(
            count("Peruvian partners in Perú and Peru’s border", "PER"),
            3
        );
        assert_eq!(count("Chilean authorities", "CHL"), 1);
        assert_eq!(count("Chilean authorities", "PER"), 0);
        assert_eq!(count("SOP_Trata_RyM_Peru", "PER"), 1);
        assert_eq!(count("peru", "PER"), 0);
        let nigeria = country_mentions("Nigeria and Niger, Dominica");
        assert!(nigeria.iter().all(|&(_, n)| n == 0), "{nigeria:?}");
    }

    #[test]
    fn the_longest_spelling_at_a_place_counts_once() {
        assert_eq!(count("the Dominican Republic", "DOM"), 1);
        assert_eq!(count("Dominican partners", "DOM"), 1);
        assert_eq!(count("República Dominicana", "DOM"), 1);
        assert_eq!(count("Costa Rican and Costa Rica", "CRI"), 2);
        assert_eq!(count("Trinidad and Tobago, Trinidad y Tobago", "TTO"), 2);
        assert_eq!(count("Curaçao, Curazao, Curacao", "CUW"), 3);
        assert_eq!(count("Brasil, Brazil, Brazilian", "BRA"), 3);
    }
}
