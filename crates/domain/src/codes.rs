//! Identifiers shared with the humanitarian data world (ISO 3166 alpha-3, OCHA/R4V sector codes).

use std::fmt;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    #[error("'{0}' is not an ISO3 country code (three letters A-Z)")]
    Iso3(String),
    #[error("'{0}' is not a sector code (letters, digits and '-', at most 16)")]
    Sector(String),
}

/// An ISO 3166-1 alpha-3 code such as `PER`. Upper case only: codes are keys, not prose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iso3(String);

impl Iso3 {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CodeError::Iso3(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Iso3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sector code such as `EDU` or, for a sub-sector, `PRO-GBV`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectorCode(String);

impl SectorCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let ok = !text.is_empty()
            && text.len() <= 16
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(CodeError::Sector(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent's code for a sub-sector (`PRO` for `PRO-GBV`), `None` for a sector.
    pub fn parent(&self) -> Option<SectorCode> {
        self.0
            .split_once('-')
            .map(|(parent, _)| SectorCode(parent.to_owned()))
    }
}

impl fmt::Display for SectorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso3_accepts_three_upper_case_letters_only() {
        assert!(Iso3::parse("PER").is_ok());
        assert!(Iso3::parse("per").is_err());
        assert!(Iso3::parse("PE").is_err());
        assert!(Iso3::parse("PERU").is_err());
        assert!(Iso3::parse("P3R").is_err());
    }

    #[test]
    fn sub_sector_codes_name_their_parent() {
        let gbv = SectorCode::parse("PRO-GBV").ok();
        assert_eq!(
            gbv.and_then(|c| c.parent()).map(|p| p.0),
            Some("PRO".to_owned())
        );
        assert_eq!(SectorCode::parse("EDU").ok().and_then(|c| c.parent()), None);
        assert!(SectorCode::parse("-PRO").is_err());
        assert!(SectorCode::parse("edu").is_err());
    }
}
