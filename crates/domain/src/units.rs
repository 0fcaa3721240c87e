//! Checked quantities as the reports print them.
//!
//! Reports mix units ("$31.6 K" beside "$318.70 M", "2.06 M" beside "832"). Each type here is
//! parsed once at the edge, holds an exact integer (people, whole US dollars, hundredths of a
//! percent) and keeps the printed text, so the store can answer with the number *and* show where
//! it came from. Parsing is decimal, never through `f64`, so "103.3 K" is exactly 103 300.

use std::fmt;

use thiserror::Error;

/// Why a printed quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    #[error("'{0}' is not a number")]
    NotANumber(String),
    #[error("'{0}' is not a whole number of {1}")]
    NotWhole(String, &'static str),
    #[error("'{0}' is too large")]
    TooLarge(String),
    #[error("'{0}' has more than two decimals")]
    TooPrecise(String),
    #[error("'{0}' does not start with '$'")]
    MissingDollarSign(String),
    #[error("'{0}' does not end with '%'")]
    MissingPercentSign(String),
    #[error("'{0}' has an unknown unit suffix '{1}'")]
    UnknownSuffix(String, String),
}

/// A non-negative decimal as printed: digits, optional thousands commas, optional fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    /// All digits without the point: "103.3" is 1033.
    mantissa: u64,
    /// Digits after the point: "103.3" has 1.
    scale: u32,
}

impl Decimal {
    fn parse(text: &str) -> Result<Self, UnitError> {
        let bad = || UnitError::NotANumber(text.to_owned());
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int_part.is_empty() {
            return Err(bad());
        }
        // Thousands separators must group by three ("214,633"), never "21,4633".
        let groups: Vec<&str> = int_part.split(',').collect();
        if groups.len() > 1
            && (groups[0].is_empty()
                || groups[0].len() > 3
                || groups[1..].iter().any(|g| g.len() != 3))
        {
            return Err(bad());
        }
        let mut mantissa: u64 = 0;
        let mut scale = 0;
        let digits = groups
            .iter()
            .flat_map(|g| g.chars())
            .map(|c| (c, false))
            .chain(frac_part.unwrap_or("").chars().map(|c| (c, true)));
        if frac_part.is_some_and(str::is_empty) {
            return Err(bad());
        }
        for (c, fractional) in digits {
            let d = c.to_digit(10).ok_or_else(bad)?;
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d)))
                .ok_or_else(|| UnitError::TooLarge(text.to_owned()))?;
            if fractional {
                scale += 1;
            }
        }
        Ok(Self { mantissa, scale })
    }

    /// The value times `multiplier`, which must come out whole.
    fn scaled(self, multiplier: u64, text: &str, unit: &'static str) -> Result<u64, UnitError> {
        let divisor = 10u64
            .checked_pow(self.scale)
            .ok_or_else(|| UnitError::TooLarge(text.to_owned()))?;
        let product = self
            .mantissa
            .checked_mul(multiplier)
            .ok_or_else(|| UnitError::TooLarge(text.to_owned()))?;
        if product % divisor != 0 {
            return Err(UnitError::NotWhole(text.to_owned(), unit));
        }
        Ok(product / divisor)
    }
}

/// Splits "103.3 K" / "103.3K" / "2.06 M" / "832" into the number and its multiplier; also
/// returns half of the printed rounding step, which the consistency checks use as tolerance.
fn split_magnitude(text: &str) -> Result<(Decimal, u64), UnitError> {
    let trimmed = text.trim();
    let (number, multiplier) = match trimmed.char_indices().last() {
        Some((i, 'K')) => (trimmed[..i].trim_end(), 1_000),
        Some((i, 'M')) => (trimmed[..i].trim_end(), 1_000_000),
        Some((i, 'B')) => (trimmed[..i].trim_end(), 1_000_000_000),
        Some((_, c)) if c.is_ascii_alphabetic() => {
            let suffix: String = trimmed
                .chars()
                .rev()
                .take_while(char::is_ascii_alphabetic)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(UnitError::UnknownSuffix(trimmed.to_owned(), suffix));
        }
        _ => (trimmed, 1),
    };
    Ok((Decimal::parse(number)?, multiplier))
}

fn half_step(decimal: Decimal, multiplier: u64) -> u64 {
    multiplier / 10u64.pow(decimal.scale.min(9)) / 2
}

/// A number of people as printed ("103.3 K", "2.06 M", "832", "214,633").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleCount {
    value: u64,
    printed: String,
    half_step: u64,
}

impl PeopleCount {
    /// Reads a printed count of people; the result must be a whole number of people.
    pub fn parse(printed: &str) -> Result<Self, UnitError> {
        let (decimal, multiplier) = split_magnitude(printed)?;
        let value = decimal.scaled(multiplier, printed, "people")?;
        Ok(Self {
            value,
            printed: printed.trim().to_owned(),
            half_step: half_step(decimal, multiplier),
        })
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// The text exactly as the document printed it.
    pub fn printed(&self) -> &str {
        &self.printed
    }

    /// Half the rounding step of the printed form: "103.3 K" may stand for anything within 50.
    pub fn rounding(&self) -> u64 {
        self.half_step
    }
}

impl fmt::Display for PeopleCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printed)
    }
}

/// An amount of US dollars as printed ("$31.6 K", "$318.70 M"), held in whole dollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usd {
    value: u64,
    printed: String,
    half_step: u64,
}

impl Usd {
    /// Reads a printed dollar amount; it must start with `$` and come out in whole dollars.
    pub fn parse(printed: &str) -> Result<Self, UnitError> {
        let trimmed = printed.trim();
        let rest = trimmed
            .strip_prefix('$')
            .ok_or_else(|| UnitError::MissingDollarSign(trimmed.to_owned()))?;
        let (decimal, multiplier) = split_magnitude(rest)?;
        let value = decimal.scaled(multiplier, trimmed, "US dollars")?;
        Ok(Self {
            value,
            printed: trimmed.to_owned(),
            half_step: half_step(decimal, multiplier),
        })
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    pub fn printed(&self) -> &str {
        &self.printed
    }

    /// Half the rounding step of the printed form: "$318.70 M" may stand for anything within
    /// $5 000.
    pub fn rounding(&self) -> u64 {
        self.half_step
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printed)
    }
}

/// A percentage as printed ("36.2%", "101.5%"), held in hundredths of a percent.
///
/// Over 100% is legitimate (Nutrition was 101.5% funded), so there is no upper bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Percent {
    hundredths: u64,
    printed: String,
}

impl Percent {
    pub fn parse(printed: &str) -> Result<Self, UnitError> {
        let trimmed = printed.trim();
        let number = trimmed
            .strip_suffix('%')
            .ok_or_else(|| UnitError::MissingPercentSign(trimmed.to_owned()))?
            .trim_end();
        let decimal = Decimal::parse(number)?;
        if decimal.scale > 2 {
            return Err(UnitError::TooPrecise(trimmed.to_owned()));
        }
        let hundredths = decimal.scaled(100, trimmed, "hundredths of a percent")?;
        Ok(Self {
            hundredths,
            printed: trimmed.to_owned(),
        })
    }

    pub fn hundredths(&self) -> u64 {
        self.hundredths
    }

    /// The percentage as a float: `36.2` for "36.2%". Exact to the printed digits.
    pub fn as_f64(&self) -> f64 {
        self.hundredths as f64 / 100.0
    }

    pub fn printed(&self) -> &str {
        &self.printed
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(s: &str) -> u64 {
        PeopleCount::parse(s).map(|p| p.value()).unwrap_or(u64::MAX)
    }

    #[test]
    fn people_counts_in_thousands_and_millions_are_exact() {
        assert_eq!(people("103.3 K"), 103_300);
        assert_eq!(people("2.06 M"), 2_060_000);
        assert_eq!(people("990.2 K"), 990_200);
        assert_eq!(people("513.6K"), 513_600);
        assert_eq!(people("832"), 832);
        assert_eq!(people("214,633"), 214_633);
    }

    #[test]
    fn printed_text_is_kept_as_published() {
        let p = PeopleCount::parse("103.3 K").map(|p| p.printed().to_owned());
        assert_eq!(p.as_deref(), Ok("103.3 K"));
    }

    #[test]
    fn rounding_is_half_the_printed_step() {
        assert_eq!(PeopleCount::parse("103.3 K").map(|p| p.rounding()), Ok(50));
        assert_eq!(Usd::parse("$318.70 M").map(|u| u.rounding()), Ok(5_000));
        assert_eq!(PeopleCount::parse("832").map(|p| p.rounding()), Ok(0));
    }

    #[test]
    fn dollar_amounts_mix_units() {
        let usd = |s: &str| Usd::parse(s).map(|u| u.value());
        assert_eq!(usd("$31.6 K"), Ok(31_600));
        assert_eq!(usd("$488.5 K"), Ok(488_500));
        assert_eq!(usd("$318.70 M"), Ok(318_700_000));
        assert_eq!(usd("$22.68 M"), Ok(22_680_000));
    }

    #[test]
    fn percentages_keep_hundredths_and_allow_over_one_hundred() {
        let pct = |s: &str| Percent::parse(s).map(|p| p.hundredths());
        assert_eq!(pct("36.2%"), Ok(3_620));
        assert_eq!(pct("101.5%"), Ok(10_150));
        assert_eq!(Percent::parse("36.2%").map(|p| p.as_f64()), Ok(36.2));
    }

    #[test]
    fn garbled_numbers_are_rejected() {
        assert!(PeopleCount::parse("1O3.3 K").is_err());
        assert!(PeopleCount::parse("21,4633").is_err());
        assert!(PeopleCount::parse("1.2345 K").is_err());
        assert!(PeopleCount::parse("12 X").is_err());
        assert!(PeopleCount::parse("").is_err());
        assert!(PeopleCount::parse(".5 K").is_err());
        assert!(Usd::parse("31.6 K").is_err());
        assert!(Usd::parse("$6.7x2 M").is_err());
        assert!(Percent::parse("36.2").is_err());
        assert!(Percent::parse("36.234%").is_err());
        assert!(PeopleCount::parse("99999999999999999999").is_err());
    }
}
