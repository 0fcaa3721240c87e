//! Reference data that templates state, not documents: the sector list, the R4V countries and
//! the platforms DESIGN.md names. Reports are matched against these tables; nothing here is a
//! figure.

/// A sector or sub-sector of the RMRP template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorDef {
    pub code: &'static str,
    pub name: &'static str,
    /// The heading the report's key-figures table prints for this sector.
    pub printed_heading: &'static str,
    pub parent: Option<&'static str>,
}

/// Sectors in the order the RMRP template prints them; sub-sectors follow their parent.
pub const SECTORS: &[SectorDef] = &[
    sector("EDU", "Education", "EDUCATION", None),
    sector("FSC", "Food Security", "FOOD SECURITY", None),
    sector("HEA", "Health", "HEALTH", None),
    sector(
        "HTR",
        "Humanitarian Transportation",
        "HUMANITARIAN TRANSPORTATION",
        None,
    ),
    sector("INT", "Integration", "INTEGRATION", None),
    sector("NUT", "Nutrition", "NUTRITION", None),
    sector("PRO", "Protection", "PROTECTION", None),
    sector(
        "PRO-CPN",
        "Child Protection",
        "CHILD PROTECTION",
        Some("PRO"),
    ),
    sector(
        "PRO-GBV",
        "Gender-Based Violence (GBV)",
        "GENDER-BASED VIOLENCE (GBV)",
        Some("PRO"),
    ),
    sector(
        "PRO-HTS",
        "Human Trafficking and Smuggling",
        "HUMAN TRAFFICKING AND SMUGGLING",
        Some("PRO"),
    ),
    sector("SHL", "Shelter", "SHELTER", None),
    sector("WSH", "WASH", "WASH", None),
    sector(
        "MPC",
        "Multipurpose Cash Assistance (MPC)",
        "MULTIPURPOSE CASH ASSISTANCE (MPC)",
        None,
    ),
];

const fn sector(
    code: &'static str,
    name: &'static str,
    printed_heading: &'static str,
    parent: Option<&'static str>,
) -> SectorDef {
    SectorDef {
        code,
        name,
        printed_heading,
        parent,
    }
}

/// The sector whose printed heading is `heading` (upper case, as in the key-figures table).
pub fn sector_by_heading(heading: &str) -> Option<&'static SectorDef> {
    SECTORS.iter().find(|s| s.printed_heading == heading)
}

/// The population-type labels the key-figures template prints, in its order.
pub const POPULATION_TYPE_LABELS: &[&str] =
    &["In-destination", "In-transit", "Affected host communities"];

/// Scope of a coordination platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformScope {
    National,
    SubRegional,
    Regional,
}

impl PlatformScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::National => "NATIONAL",
            Self::SubRegional => "SUBREGIONAL",
            Self::Regional => "REGIONAL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformDef {
    pub code: &'static str,
    pub name: &'static str,
    pub scope: PlatformScope,
}

/// The platforms DESIGN.md names. Only those: a platform whose code we cannot cite is left out
/// rather than guessed.
pub const PLATFORMS: &[PlatformDef] = &[
    PlatformDef {
        code: "R4V",
        name: "Inter-Agency Coordination Platform for Refugees and Migrants from Venezuela",
        scope: PlatformScope::Regional,
    },
    PlatformDef {
        code: "GTRM",
        name: "Grupo de Trabajo para Refugiados y Migrantes (Peru)",
        scope: PlatformScope::National,
    },
    PlatformDef {
        code: "GIFMM",
        name: "Grupo Interagencial sobre Flujos Migratorios Mixtos (Colombia)",
        scope: PlatformScope::National,
    },
    PlatformDef {
        code: "CARIBBEAN",
        name: "Caribbean",
        scope: PlatformScope::SubRegional,
    },
    PlatformDef {
        code: "CAM",
        name: "Central America and Mexico",
        scope: PlatformScope::SubRegional,
    },
    PlatformDef {
        code: "SOUTHERN_CONE",
        name: "Southern Cone",
        scope: PlatformScope::SubRegional,
    },
];

pub fn platform(code: &str) -> Option<&'static PlatformDef> {
    PLATFORMS.iter().find(|p| p.code == code)
}

/// A country of the R4V response (ISO 3166-1 names and codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryDef {
    pub iso3: &'static str,
    pub name: &'static str,
    /// Platform code; `None` where the platform is not one DESIGN.md names.
    pub platform: Option<&'static str>,
    /// Aruba and Curaçao are constituent countries of the Kingdom of the Netherlands.
    pub sovereign: bool,
    /// The lower-case name as it appears in report file names ("...-report-peru.txt").
    pub file_slug: &'static str,
    /// Other spellings a report text uses for the country besides `name`: the Spanish,
    /// Portuguese or local name and the English demonym ("Perú", "Peruvian"). Case-sensitive,
    /// matched as whole words by [`crate::country_check`].
    pub aliases: &'static [&'static str],
}

impl CountryDef {
    /// The name followed by its aliases: every spelling that counts as a mention.
    pub fn spellings(&self) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

const fn country(
    iso3: &'static str,
    name: &'static str,
    platform: Option<&'static str>,
    sovereign: bool,
    file_slug: &'static str,
    aliases: &'static [&'static str],
) -> CountryDef {
    CountryDef {
        iso3,
        name,
        platform,
        sovereign,
        file_slug,
        aliases,
    }
}

/// The 17 countries of the R4V response.
pub const COUNTRIES: &[CountryDef] = &[
    country(
        "ARG",
        "Argentina",
        Some("SOUTHERN_CONE"),
        true,
        "argentina",
        &["Argentine", "Argentinian"],
    ),
    country(
        "ABW",
        "Aruba",
        Some("CARIBBEAN"),
        false,
        "aruba",
        &["Aruban"],
    ),
    country(
        "BOL",
        "Bolivia",
        Some("SOUTHERN_CONE"),
        true,
        "bolivia",
        &["Bolivian"],
    ),
    country(
        "BRA",
        "Brazil",
        None,
        true,
        "brazil",
        &["Brasil", "Brazilian"],
    ),
    country("CHL", "Chile", None, true, "chile", &["Chilean"]),
    country(
        "COL",
        "Colombia",
        Some("GIFMM"),
        true,
        "colombia",
        &["Colombian"],
    ),
    country(
        "CRI",
        "Costa Rica",
        Some("CAM"),
        true,
        "costa-rica",
        &["Costa Rican"],
    ),
    country(
        "CUW",
        "Curaçao",
        Some("CARIBBEAN"),
        false,
        "curacao",
        &["Curazao", "Curacao"],
    ),
    country(
        "DOM",
        "Dominican Republic",
        Some("CARIBBEAN"),
        true,
        "dominican-republic",
        &["República Dominicana", "Dominican"],
    ),
    country("ECU", "Ecuador", None, true, "ecuador", &["Ecuadorian"]),
    country(
        "GUY",
        "Guyana",
        Some("CARIBBEAN"),
        true,
        "guyana",
        &["Guyanese"],
    ),
    country(
        "MEX",
        "Mexico",
        Some("CAM"),
        true,
        "mexico",
        &["México", "Mexican"],
    ),
    country(
        "PAN",
        "Panama",
        Some("CAM"),
        true,
        "panama",
        &["Panamá", "Panamanian"],
    ),
    country(
        "PRY",
        "Paraguay",
        Some("SOUTHERN_CONE"),
        true,
        "paraguay",
        &["Paraguayan"],
    ),
    country(
        "PER",
        "Peru",
        Some("GTRM"),
        true,
        "peru",
        &["Perú", "Peruvian"],
    ),
    country(
        "TTO",
        "Trinidad and Tobago",
        Some("CARIBBEAN"),
        true,
        "trinidad-and-tobago",
        &["Trinidad y Tobago", "Trinidadian"],
    ),
    country(
        "URY",
        "Uruguay",
        Some("SOUTHERN_CONE"),
        true,
        "uruguay",
        &["Uruguayan"],
    ),
];

pub fn country_by_iso3(iso3: &str) -> Option<&'static CountryDef> {
    COUNTRIES.iter().find(|c| c.iso3 == iso3)
}

/// The country a report file is named after: `rmrp-2023-end-year-report-peru.txt` → Peru.
/// The slug must close the file stem, so "peru" inside another word does not match.
pub fn country_from_file_name(file_name: &str) -> Option<&'static CountryDef> {
    let stem = file_name
        .rsplit('/')
        .next()
        .unwrap_or(file_name)
        .trim_end_matches(".txt")
        .to_ascii_lowercase();
    COUNTRIES.iter().find(|c| {
        stem == c.file_slug
            || stem
                .strip_suffix(c.file_slug)
                .is_some_and(|rest| rest.ends_with('-') || rest.ends_with('_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventeen_countries_each_with_a_known_platform_or_none() {
        assert_eq!(COUNTRIES.len(), 17);
        for c in COUNTRIES {
            if let Some(p) = c.platform {
                assert!(
                    platform(p).is_some(),
                    "{} names unknown platform {p}",
                    c.iso3
                );
            }
        }
    }

    #[test]
    fn no_spelling_names_two_countries() {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for c in COUNTRIES {
            for spelling in c.spellings() {
                assert!(
                    !spelling.trim().is_empty(),
                    "{} has a blank spelling",
                    c.iso3
                );
                if let Some((_, other)) = seen.iter().find(|(s, _)| *s == spelling) {
                    panic!("{spelling} names both {other} and {}", c.iso3);
                }
                seen.push((spelling, c.iso3));
            }
        }
    }

    #[test]
    fn sub_sectors_follow_an_existing_parent() {
        for s in SECTORS {
            if let Some(parent) = s.parent {
                assert!(
                    SECTORS
                        .iter()
                        .any(|p| p.code == parent && p.parent.is_none())
                );
            }
        }
    }

    #[test]
    fn report_file_names_end_in_the_country() {
        assert_eq!(
            country_from_file_name("reports/rmrp-2023-end-year-report-peru.txt").map(|c| c.iso3),
            Some("PER")
        );
        assert_eq!(country_from_file_name("superu.txt"), None);
        assert_eq!(country_from_file_name("report.txt"), None);
    }
}
