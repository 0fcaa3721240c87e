//! A response-sized synthetic data set for load tests: reports for many countries and years,
//! shaped like the published ones (every sector and sub-sector, shares, partner counts,
//! narrative of realistic length, footnotes, sources) and organisations to link as partners and
//! donors.
//!
//! Nothing here is a real figure. Every report's title, funding source, footnotes and first
//! paragraph say it is synthetic, every organisation's name ends in "(synthetic NNNN)", and the
//! store marks both (`Report.synthetic`, `Organization.synthetic`). The numbers are drawn from a
//! seeded generator, so the same plan gives the same data on every machine; each report draws
//! from its own stream (seed, country, year), so a smaller plan is a subset of a larger one.
//!
//! Documents are built the way the parser builds them, from printed forms ("2.06 M",
//! "$318.70 M", "36.2%"), and pass the same consistency checks ([`crate::validate`]): the
//! percentages are computed from the printed figures beside them.

use std::fmt;

use chrono::NaiveDate;

use crate::codes::SectorCode;
use crate::reference::{COUNTRIES, CountryDef, POPULATION_TYPE_LABELS, SECTORS};
use crate::report::{
    Footnote, LinkPlacement, NarrativeSection, PartnerCount, PartnerRole, ReportDocument,
    ReportKind, SectionKind, SectorRow, Share, ShareBasis, ShareDimension, SourceLink, Totals,
};
use crate::units::{PeopleCount, Percent, Usd};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The first this many R4V countries, in reference order (1 to 17).
    pub countries: usize,
    /// End-year reports for this many years, ending with `last_year`.
    pub years: u32,
    pub last_year: i32,
    pub seed: u64,
    /// Organisations in all; a fifth of them (at least one) are donors, the rest partners.
    pub organizations: usize,
    pub partners_per_report: usize,
    pub donors_per_report: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            countries: COUNTRIES.len(),
            years: 6,
            last_year: 2024,
            seed: 1,
            organizations: 200,
            partners_per_report: 40,
            donors_per_report: 12,
        }
    }
}

/// A plan that cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("--countries must be between 1 and {max}, not {given}")]
    Countries { given: usize, max: usize },
    #[error("--years must be between 1 and 50, not {0}")]
    Years(u32),
    #[error("--last-year must be between 2000 and 2100, not {0}")]
    LastYear(i32),
    #[error(
        "{per_report} {role} per report need at least that many {role} among the organisations, but {pool} of {organizations} are {role} (a fifth are donors): raise --organizations"
    )]
    Pool {
        role: &'static str,
        per_report: usize,
        pool: usize,
        organizations: usize,
    },
    #[error("--organizations must be at most 100000, not {0}")]
    Organizations(usize),
    /// A generated figure that does not read back as printed: a bug in this module.
    #[error("a generated figure did not read back: {0}")]
    Figure(String),
}

impl PlanError {
    /// Stable code for scripts.
    pub fn code(&self) -> &'static str {
        "GENERATE_INVALID_PLAN"
    }
}

/// A generated organisation; its index in [`DataSet::organizations`] is how reports link it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticOrganization {
    pub name: String,
    pub acronym: String,
    pub org_type: String,
    pub refugee_and_migrant_led: bool,
    /// A key no real FTS id has (`SYN-{seed}-{n}`), so a rerun finds its own organisations.
    pub fts_id: String,
    pub donor: bool,
}

/// A generated end-year report and the organisations it links (indices into the data set's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticReport {
    pub country: &'static CountryDef,
    pub document: ReportDocument,
    pub partners: Vec<usize>,
    pub donors: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSet {
    pub organizations: Vec<SyntheticOrganization>,
    /// Country by country in reference order, years ascending.
    pub reports: Vec<SyntheticReport>,
}

/// The funding source every synthetic report names, so no one reads its money as FTS data.
pub const FUNDING_SOURCE: &str = "Synthetic funding source (plangraph generate)";

/// Generates the data set `plan` describes.
pub fn generate(plan: &Plan) -> Result<DataSet, PlanError> {
    check(plan)?;
    let organizations = organizations(plan);
    let partner_pool: Vec<usize> = (0..organizations.len())
        .filter(|&i| !organizations[i].donor)
        .collect();
    let donor_pool: Vec<usize> = (0..organizations.len())
        .filter(|&i| organizations[i].donor)
        .collect();
    let first_year = plan.last_year - plan.years as i32 + 1;
    let mut reports = Vec::with_capacity(plan.countries * plan.years as usize);
    for country in &COUNTRIES[..plan.countries] {
        let mut scale_rng = Rng::stream(plan.seed, &[country.iso3.as_bytes()]);
        // People in need of the country's response: tens of thousands to a few million.
        let base_need = scale_rng.log_uniform(40_000.0, 3_000_000.0);
        for year in first_year..=plan.last_year {
            let mut rng = Rng::stream(plan.seed, &[country.iso3.as_bytes(), &year.to_le_bytes()]);
            let partners = rng.sample(&partner_pool, plan.partners_per_report);
            let donors = rng.sample(&donor_pool, plan.donors_per_report);
            let led = partners
                .iter()
                .filter(|&&i| organizations[i].refugee_and_migrant_led)
                .count();
            let people_in_need = base_need * rng.between(0.85, 1.15);
            let document = document(
                &mut rng,
                &ReportShape {
                    country,
                    year,
                    seed: plan.seed,
                    people_in_need,
                    implementing: partners.len(),
                    led,
                    donors: donors.len(),
                },
            )?;
            reports.push(SyntheticReport {
                country,
                document,
                partners,
                donors,
            });
        }
    }
    Ok(DataSet {
        organizations,
        reports,
    })
}

/// Whether `plan` can be generated, without generating it.
pub fn check(plan: &Plan) -> Result<(), PlanError> {
    if plan.countries == 0 || plan.countries > COUNTRIES.len() {
        return Err(PlanError::Countries {
            given: plan.countries,
            max: COUNTRIES.len(),
        });
    }
    if plan.years == 0 || plan.years > 50 {
        return Err(PlanError::Years(plan.years));
    }
    if !(2000..=2100).contains(&plan.last_year) {
        return Err(PlanError::LastYear(plan.last_year));
    }
    if plan.organizations > 100_000 {
        return Err(PlanError::Organizations(plan.organizations));
    }
    let donors = donor_count(plan.organizations);
    let partners = plan.organizations - donors;
    for (role, per_report, pool) in [
        ("partners", plan.partners_per_report, partners),
        ("donors", plan.donors_per_report, donors),
    ] {
        if per_report > pool {
            return Err(PlanError::Pool {
                role,
                per_report,
                pool,
                organizations: plan.organizations,
            });
        }
    }
    Ok(())
}

fn donor_count(organizations: usize) -> usize {
    (organizations / 5).max(1).min(organizations)
}

const PARTNER_TYPES: &[&str] = &[
    "National NGO",
    "International NGO",
    "UN Agency",
    "Faith-based organization",
    "Civil society organization",
    "Red Cross / Red Crescent",
];
const PARTNER_FORMS: &[&str] = &[
    "Asociación",
    "Fundación",
    "Red",
    "Centro",
    "Alianza",
    "Colectivo",
    "Instituto",
    "Movimiento",
];
const PARTNER_THEMES: &[&str] = &[
    "Solidaria",
    "de Ayuda Humanitaria",
    "para la Integración",
    "de Apoyo al Migrante",
    "por los Derechos Humanos",
    "Esperanza",
    "de Desarrollo Comunitario",
    "de Protección Infantil",
    "Mujeres en Movimiento",
    "Caminos Seguros",
];
const DONOR_FORMS: &[&str] = &["Fund", "Foundation", "Trust", "Programme", "Facility"];
const DONOR_THEMES: &[&str] = &[
    "Humanitarian Response",
    "Migration and Development",
    "Regional Solidarity",
    "Emergency Relief",
    "Inclusion",
    "Resilience",
];

fn organizations(plan: &Plan) -> Vec<SyntheticOrganization> {
    let mut rng = Rng::stream(plan.seed, &[b"organizations"]);
    (0..plan.organizations)
        .map(|n| {
            let number = n + 1;
            // Donors are spread through the list rather than all at its end.
            // Every fifth is a donor, so donors are spread through the list; a list shorter
            // than five has its last one.
            let donor = if plan.organizations >= 5 {
                n % 5 == 4
            } else {
                n + 1 == plan.organizations
            };
            let (name, org_type, led) = if donor {
                (
                    format!(
                        "{} {} {}",
                        rng.pick(&["Global", "Regional", "Joint", "Common", "Pooled"]),
                        rng.pick(DONOR_THEMES),
                        rng.pick(DONOR_FORMS)
                    ),
                    "Donor".to_owned(),
                    false,
                )
            } else {
                let led = rng.chance(0.2);
                let org_type = if led {
                    "Refugee- and migrant-led organization"
                } else {
                    rng.pick(PARTNER_TYPES)
                };
                (
                    format!("{} {}", rng.pick(PARTNER_FORMS), rng.pick(PARTNER_THEMES)),
                    org_type.to_owned(),
                    led,
                )
            };
            let acronym: String = name
                .split_whitespace()
                .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
                .filter_map(|w| w.chars().next())
                .collect();
            SyntheticOrganization {
                name: format!("{name} (synthetic {number:04})"),
                acronym: format!("{acronym}-S{number}"),
                org_type,
                refugee_and_migrant_led: led,
                fts_id: format!("SYN-{}-{number:05}", plan.seed),
                donor,
            }
        })
        .collect()
}

struct ReportShape {
    country: &'static CountryDef,
    year: i32,
    seed: u64,
    people_in_need: f64,
    implementing: usize,
    led: usize,
    donors: usize,
}

fn document(rng: &mut Rng, shape: &ReportShape) -> Result<ReportDocument, PlanError> {
    let people_in_need = people(shape.people_in_need)?;
    let people_targeted = people(people_in_need.value() as f64 * rng.between(0.3, 0.6))?;
    let people_reached = people(people_targeted.value() as f64 * rng.between(0.3, 0.75))?;

    let mut sectors = Vec::with_capacity(SECTORS.len());
    let mut protection_targeted = 0.0;
    for def in SECTORS {
        let targeted = match def.parent {
            None => people_targeted.value() as f64 * rng.between(0.03, 0.8),
            // Sub-sectors are a part of their parent's caseload.
            Some(_) => protection_targeted * rng.between(0.02, 0.3),
        };
        let targeted = people(targeted.max(100.0))?;
        if def.code == "PRO" {
            protection_targeted = targeted.value() as f64;
        }
        let reached = people(targeted.value() as f64 * rng.between(0.1, 0.8))?;
        let requirements = usd(targeted.value() as f64 * rng.log_uniform(20.0, 300.0))?;
        // A few rows are funded past their requirements, as Nutrition was in Peru 2023.
        let funded = if rng.chance(0.05) {
            rng.between(1.0, 1.1)
        } else {
            rng.between(0.01, 0.9)
        };
        let funding = usd(requirements.value() as f64 * funded)?;
        sectors.push(SectorRow {
            line: 0,
            sector: SectorCode::parse(def.code).map_err(|e| PlanError::Figure(e.to_string()))?,
            printed_heading: def.printed_heading.to_owned(),
            reached_percent: percent_of(reached.value(), targeted.value())?,
            funded_percent: percent_of(funding.value(), requirements.value())?,
            people_targeted: targeted,
            people_reached: reached,
            requirements,
            funding,
        });
    }

    let parents: u64 = sectors
        .iter()
        .filter(|r| r.sector.parent().is_none())
        .map(|r| r.requirements.value())
        .sum();
    // Totals are printed, not summed: common services and cross-sector needs come on top.
    let requirements = usd(parents as f64 * rng.between(1.0, 1.2))?;
    let funding_received = usd(requirements.value() as f64 * rng.between(0.1, 0.5))?;
    let unmet = usd(requirements
        .value()
        .saturating_sub(funding_received.value()) as f64)?;
    let totals = Totals {
        funded_percent: percent_of(funding_received.value(), requirements.value())?,
        people_in_need,
        people_targeted,
        people_reached,
        requirements,
        funding_received,
        unmet,
        people_line: 0,
        money_line: 0,
        percent_line: 0,
    };

    let mut shares = Vec::with_capacity(4 + POPULATION_TYPE_LABELS.len());
    for (tenths, position) in split_tenths(rng, 1000, 4).into_iter().zip(1..) {
        shares.push(Share {
            dimension: ShareDimension::AgeGender,
            position,
            label: None,
            percent: tenths_percent(tenths)?,
            basis: None,
        });
    }
    let reach_tenths = (totals.people_reached.value() * 1000 + totals.people_targeted.value() / 2)
        / totals.people_targeted.value();
    let population = split_tenths(rng, reach_tenths, POPULATION_TYPE_LABELS.len());
    for ((tenths, label), position) in population.into_iter().zip(POPULATION_TYPE_LABELS).zip(1..) {
        shares.push(Share {
            dimension: ShareDimension::PopulationType,
            position,
            label: Some((*label).to_owned()),
            percent: tenths_percent(tenths)?,
            basis: Some(ShareBasis::PeopleTargeted),
        });
    }

    let implementing = shape.implementing as u32;
    let reporting = (implementing as f64 * rng.between(0.7, 0.95)).round() as u32;
    let partner_counts = vec![
        count(
            PartnerRole::Reporting,
            reporting,
            None,
            format!("REPORTING PARTNERS {reporting}"),
        ),
        count(
            PartnerRole::Implementing,
            implementing,
            Some("**"),
            format!("IMPLEMENTING PARTNERS** {implementing}"),
        ),
        count(
            PartnerRole::RefugeeAndMigrantLed,
            shape.led as u32,
            None,
            format!(
                "(INCLUDING {} REFUGEE AND MIGRANT-LED ORGANIZATIONS)",
                shape.led
            ),
        ),
        count(
            PartnerRole::Donor,
            shape.donors as u32,
            None,
            format!("DONORS {}", shape.donors),
        ),
    ];

    let iso3 = shape.country.iso3.to_ascii_lowercase();
    let year = shape.year;
    let mut sources = vec![SourceLink {
        url: format!("https://example.org/synthetic/{iso3}/{year}/funding-dashboard"),
        label: None,
        placement: LinkPlacement::Footnotes,
    }];
    for n in 1..=rng.below(4) + 2 {
        sources.push(SourceLink {
            url: format!("https://example.org/synthetic/{iso3}/{year}/source-{n}"),
            label: None,
            placement: LinkPlacement::EndNotes,
        });
    }

    let text = Narrative {
        country: shape.country.name,
        year,
        seed: shape.seed,
    };
    let sections = SectionKind::ALL
        .into_iter()
        .map(|kind| NarrativeSection {
            kind,
            title: kind.heading().to_owned(),
            paragraphs: text.paragraphs(rng, kind, &sectors),
        })
        .collect();

    Ok(ReportDocument {
        kind: ReportKind::EndYear,
        year,
        title: format!("END-YEAR REPORT {year} (SYNTHETIC)"),
        sectors,
        totals,
        shares,
        partner_counts,
        footnotes: vec![
            Footnote {
                marker: "*".to_owned(),
                text: format!(
                    "Synthetic funding figures made by plangraph generate (seed {}) for load tests; they are not reported to any tracking service and describe no real contribution.",
                    shape.seed
                ),
            },
            Footnote {
                marker: "**".to_owned(),
                text: "Synthetic partner figures: implementing partners are the organisations this data set links to the report; quote partner figures separately and do not sum them.".to_owned(),
            },
        ],
        funding_source: Some(FUNDING_SOURCE.to_owned()),
        funding_as_of: NaiveDate::from_ymd_opt(year, 12, 31),
        funding_footnote_marker: Some("*".to_owned()),
        sources,
        sections,
    })
}

fn count(role: PartnerRole, count: u32, marker: Option<&str>, printed: String) -> PartnerCount {
    PartnerCount {
        role,
        count,
        footnote_marker: marker.map(str::to_owned),
        printed,
    }
}

/// A number of people printed as the reports print them: "2.06 M", "990.2 K", "832".
fn people(value: f64) -> Result<PeopleCount, PlanError> {
    let printed = magnitude(value.round().max(1.0));
    PeopleCount::parse(&printed).map_err(|e| PlanError::Figure(e.to_string()))
}

/// An amount printed as the reports print it: "$318.70 M", "$31.6 K", "$950".
fn usd(value: f64) -> Result<Usd, PlanError> {
    let printed = format!("${}", magnitude(value.round().max(0.0)));
    Usd::parse(&printed).map_err(|e| PlanError::Figure(e.to_string()))
}

fn magnitude(value: f64) -> String {
    if value >= 999_500.0 {
        format!("{:.2} M", value / 1_000_000.0)
    } else if value >= 999.5 {
        format!("{:.1} K", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}

/// `part` as a percentage of `whole`, to one decimal, from the printed figures.
fn percent_of(part: u64, whole: u64) -> Result<Percent, PlanError> {
    let tenths = if whole == 0 {
        0
    } else {
        (u128::from(part) * 1000 + u128::from(whole) / 2) / u128::from(whole)
    };
    tenths_percent(tenths as u64)
}

fn tenths_percent(tenths: u64) -> Result<Percent, PlanError> {
    Percent::parse(&format!("{}.{}%", tenths / 10, tenths % 10))
        .map_err(|e| PlanError::Figure(e.to_string()))
}

/// `total` tenths split into `parts` shares, none of them zero when the total allows.
fn split_tenths(rng: &mut Rng, total: u64, parts: usize) -> Vec<u64> {
    let weights: Vec<f64> = (0..parts).map(|_| rng.between(0.3, 1.0)).collect();
    let sum: f64 = weights.iter().sum();
    let mut shares: Vec<u64> = weights
        .iter()
        .map(|w| (w / sum * total as f64).floor() as u64)
        .collect();
    let given: u64 = shares.iter().sum();
    if let Some(first) = shares.first_mut() {
        *first += total - given;
    }
    shares
}

/// Narrative text of realistic length: sentences about the country's figures, assembled from
/// templates, 60 to 140 words a paragraph.
struct Narrative {
    country: &'static str,
    year: i32,
    seed: u64,
}

const SITUATION: &[&str] = &[
    "During {year}, refugees and migrants in {country} continued to face barriers to regular status, documentation and access to services.",
    "Many arrived after long journeys on foot and reported needs for shelter, food and information on safe routes.",
    "Rising living costs and informal work left households with little income to cover rent, food and health care.",
    "Partners observed growing movements in both directions across the borders, including families returning and moving onward.",
    "Host communities in border areas shared limited services with new arrivals, which increased pressure on schools and clinics.",
    "Women and children were exposed to heightened protection risks, including gender-based violence, trafficking and exploitation.",
    "Regularization processes opened during the year, yet many people could not afford the fees or gather the documents required.",
    "Climate-related events, including floods and droughts, affected livelihoods in several regions hosting refugees and migrants.",
];
const RESPONSE: &[&str] = &[
    "Partners reached {reached} people in {sector}, against {targeted} targeted for the year.",
    "Requirements for {sector} stood at {requirements}, of which {funding} was received.",
    "Cash assistance allowed families to meet basic needs while supporting local markets.",
    "Mobile teams delivered health care, psychosocial support and information at border crossings and along transit routes.",
    "Education partners supported enrolment, school supplies and catch-up classes for children out of school.",
    "Legal orientation and case management helped people apply for documentation and access national services.",
    "Integration activities focused on employment, entrepreneurship and recognition of qualifications.",
    "Coordination with local authorities strengthened referral pathways for survivors of violence and unaccompanied children.",
];
const LESSONS: &[&str] = &[
    "Flexible funding allowed partners to adapt quickly when movements changed direction.",
    "Joint needs assessments reduced duplication and gave partners a common picture of priorities.",
    "Engaging refugee- and migrant-led organizations improved outreach to people who avoid formal services.",
    "Underfunding in {sector} limited the continuity of services and forced partners to prioritize the most vulnerable.",
    "Information management improved as more partners reported their activities on time.",
    "Longer-term integration programmes need predictable, multi-year funding to show results.",
    "Partnerships with the private sector opened job placements that short projects could not offer.",
    "Feedback mechanisms helped adjust assistance to what communities said they needed most.",
];

impl Narrative {
    fn paragraphs(&self, rng: &mut Rng, kind: SectionKind, rows: &[SectorRow]) -> Vec<String> {
        let templates = match kind {
            SectionKind::Situation => SITUATION,
            SectionKind::Response => RESPONSE,
            SectionKind::LessonsLearned => LESSONS,
        };
        let count = 3 + rng.below(4) as usize;
        let mut paragraphs = Vec::with_capacity(count);
        if kind == SectionKind::Situation {
            paragraphs.push(format!(
                "This report is synthetic: plangraph generate made it for load tests (seed {}), and none of its figures or text describe the real response in {} in {}. It has the shape of an RMRP end-year report so that queries over it cost what queries over real reports cost.",
                self.seed, self.country, self.year
            ));
        }
        while paragraphs.len() < count {
            let target = 60 + rng.below(81) as usize;
            let mut words = 0;
            let mut sentences = Vec::new();
            while words < target {
                let row = &rows[rng.below(rows.len() as u64) as usize];
                let sentence = rng
                    .pick(templates)
                    .replace("{year}", &self.year.to_string())
                    .replace("{country}", self.country)
                    .replace("{sector}", &sector_name(row))
                    .replace("{reached}", row.people_reached.printed())
                    .replace("{targeted}", row.people_targeted.printed())
                    .replace("{requirements}", row.requirements.printed())
                    .replace("{funding}", row.funding.printed());
                words += sentence.split_whitespace().count();
                sentences.push(sentence);
            }
            paragraphs.push(sentences.join(" "));
        }
        paragraphs
    }
}

fn sector_name(row: &SectorRow) -> String {
    SECTORS
        .iter()
        .find(|s| s.code == row.sector.as_str())
        .map_or_else(|| row.printed_heading.clone(), |s| s.name.to_owned())
}

/// SplitMix64: tiny, fast and the same on every platform, which is all load-test data needs.
struct Rng(u64);

impl Rng {
    /// A stream of its own for `seed` and `parts` (FNV-1a over the parts, mixed with the seed).
    fn stream(seed: u64, parts: &[&[u8]]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in part.iter().chain(&[0xff]) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let mut rng = Self(seed ^ hash);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn log_uniform(&mut self, low: f64, high: f64) -> f64 {
        (low.ln() + (high.ln() - low.ln()) * self.unit()).exp()
    }

    /// Uniform in [0, n); 0 when n is 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.below(items.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    }

    /// `n` distinct items of `pool`, in pool order (a partial Fisher–Yates shuffle).
    fn sample(&mut self, pool: &[usize], n: usize) -> Vec<usize> {
        let mut items = pool.to_vec();
        let n = n.min(items.len());
        for i in 0..n {
            let j = i + self.below((items.len() - i) as u64) as usize;
            items.swap(i, j);
        }
        items.truncate(n);
        items.sort_unstable();
        items
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} countries × {} years ({}–{}), seed {}, {} organisations, {} partners and {} donors per report",
            self.countries,
            self.years,
            self.last_year - self.years as i32 + 1,
            self.last_year,
            self.seed,
            self.organizations,
            self.partners_per_report,
            self.donors_per_report
        )
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::edit::check_document;
    use crate::validate;

    fn small() -> Plan {
        Plan {
            countries: 3,
            years: 2,
            ..Plan::default()
        }
    }

    #[test]
    fn every_reference_sector_code_parses() {
        for s in SECTORS {
            assert!(SectorCode::parse(s.code).is_ok(), "{}", s.code);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
        let a = generate(&small()).expect("plan");
        let b = generate(&small()).expect("plan");
        assert_eq!(a, b);
        let c = generate(&Plan { seed: 2, ..small() }).expect("plan");
        assert_ne!(a.reports[0].document, c.reports[0].document);
        assert_ne!(a.organizations, c.organizations);
    }

    #[test]
    fn a_smaller_plan_is_a_subset_of_a_larger_one() {
        let big = generate(&Plan::default()).expect("plan");
        let little = generate(&small()).expect("plan");
        for report in &little.reports {
            let same = big
                .reports
                .iter()
                .find(|r| {
                    r.country.iso3 == report.country.iso3 && r.document.year == report.document.year
                })
                .expect("in the larger set");
            assert_eq!(same, report);
        }
    }

    #[test]
    fn generated_reports_pass_every_check_the_published_ones_pass() {
        let set = generate(&Plan::default()).expect("plan");
        assert_eq!(set.reports.len(), 17 * 6);
        assert_eq!(set.organizations.len(), 200);
        assert_eq!(set.organizations.iter().filter(|o| o.donor).count(), 40);
        for report in &set.reports {
            let doc = &report.document;
            assert_eq!(
                validate(doc),
                vec![],
                "{} {}",
                report.country.iso3,
                doc.year
            );
            assert_eq!(check_document(doc), Ok(()));
            assert_eq!(doc.sectors.len(), SECTORS.len());
            assert_eq!(doc.shares.len(), 7);
            assert!(doc.title.contains("SYNTHETIC"));
            assert_eq!(doc.funding_source.as_deref(), Some(FUNDING_SOURCE));
            assert!(doc.sections[0].paragraphs[0].starts_with("This report is synthetic"));
            let age: u64 = doc
                .shares
                .iter()
                .filter(|s| s.dimension == ShareDimension::AgeGender)
                .map(|s| s.percent.hundredths())
                .sum();
            assert_eq!(age, 10_000);
            for section in &doc.sections {
                assert!((3..=6).contains(&section.paragraphs.len()));
                for p in &section.paragraphs[1..] {
                    let words = p.split_whitespace().count();
                    assert!((60..=180).contains(&words), "{words} words");
                }
            }
            assert_eq!(report.partners.len(), 40);
            assert_eq!(report.donors.len(), 12);
            assert!(report.partners.iter().all(|&i| !set.organizations[i].donor));
            assert!(report.donors.iter().all(|&i| set.organizations[i].donor));
            let implementing = doc
                .partner_counts
                .iter()
                .find(|c| c.role == PartnerRole::Implementing)
                .map(|c| c.count);
            assert_eq!(implementing, Some(40));
        }
        for (n, org) in set.organizations.iter().enumerate() {
            assert!(org.name.ends_with(&format!("(synthetic {:04})", n + 1)));
            assert_eq!(org.fts_id, format!("SYN-1-{:05}", n + 1));
        }
    }

    #[test]
    fn plans_that_cannot_be_met_are_refused_with_a_code() {
        for plan in [
            Plan {
                countries: 18,
                ..Plan::default()
            },
            Plan {
                countries: 0,
                ..Plan::default()
            },
            Plan {
                years: 0,
                ..Plan::default()
            },
            Plan {
                organizations: 10,
                ..Plan::default()
            },
            Plan {
                donors_per_report: 41,
                ..Plan::default()
            },
        ] {
            let err = generate(&plan).expect_err("refused");
            assert_eq!(err.code(), "GENERATE_INVALID_PLAN");
        }
    }

    #[test]
    fn printed_forms_follow_the_reports() {
        let printed = |p: Result<PeopleCount, PlanError>| p.expect("reads").printed().to_owned();
        assert_eq!(printed(people(2_061_234.0)), "2.06 M");
        assert_eq!(printed(people(990_240.0)), "990.2 K");
        assert_eq!(printed(people(832.0)), "832");
        assert_eq!(printed(people(999_960.0)), "1.00 M");
        assert_eq!(usd(318_701_000.0).expect("reads").printed(), "$318.70 M");
        assert_eq!(usd(31_600.0).expect("reads").printed(), "$31.6 K");
        assert_eq!(percent_of(374, 1033).expect("reads").printed(), "36.2%");
        assert_eq!(percent_of(2040, 2010).expect("reads").printed(), "101.5%");
    }
}
