//! Models read by the position of their columns, not by their names.
//!
//! sea-orm's derived decoding looks every column up by name, and for a joined table formats
//! `{prefix}{column}` into a new string first: that was a fifth of the server's CPU on a page
//! of reports, and a tenth on the dashboard's 1,326 sector rows. A select of an entity lists
//! its columns in the entity's order (and `report_parts` appends each joined entity's the same
//! way), so each model reads its fields from consecutive columns instead.

use sea_orm::{DbErr, FromQueryResult, QueryResult, TryGetError};

use crate::entities::{
    country, footnote, organization, partner_count, plan, platform, report, report_totals, sector,
    sector_figures, share, source_link,
};

/// A model whose fields are read from consecutive columns from `offset` on.
pub(crate) trait Positional: Sized {
    /// The model's fields in declaration order; a test holds them equal to the entity's
    /// columns, so no two columns of one type can be read into each other's fields.
    const FIELDS: &'static [&'static str];
    fn at(row: &QueryResult, offset: usize) -> Result<Self, TryGetError>;
}

macro_rules! positional {
    ($($module:ident { $($field:ident),* $(,)? })*) => {$(
        impl Positional for $module::Model {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            #[allow(unused_assignments)]
            fn at(row: &QueryResult, offset: usize) -> Result<Self, TryGetError> {
                let mut index = offset;
                // A struct expression evaluates its fields in the order written.
                Ok(Self {$(
                    $field: {
                        let value = row.try_get_by_index_nullable(index)?;
                        index += 1;
                        value
                    },
                )*})
            }
        }
    )*};
}

positional! {
    report {
        id, plan_id, platform_id, country_id, kind, year, title, funding_source, funding_as_of,
        funding_footnote_marker, source_name, source_sha256, imported_at, synthetic, revision,
    }
    plan { id, code, name, start_year, end_year }
    country { id, iso3, name, platform_id, sovereign }
    platform { id, code, name, scope }
    report_totals {
        report_id, people_in_need, people_in_need_printed, people_targeted,
        people_targeted_printed, people_reached, people_reached_printed, requirements_usd,
        requirements_printed, funding_usd, funding_printed, unmet_usd, unmet_printed,
        funded_percent_hundredths, funded_percent_printed,
    }
    organization { id, name, acronym, org_type, refugee_and_migrant_led, fts_id, revision, synthetic }
    share { id, report_id, dimension, position, label, percent_hundredths, percent_printed, basis }
    partner_count { id, report_id, role, count, footnote_marker, printed }
    footnote { id, report_id, position, marker, body }
    source_link { id, report_id, position, url, label, placement }
    sector { id, code, name, parent_id, position }
    sector_figures {
        id, report_id, sector_id, position, printed_heading, people_targeted,
        people_targeted_printed, people_reached, people_reached_printed,
        reached_percent_hundredths, reached_percent_printed, requirements_usd,
        requirements_printed, funding_usd, funding_printed, funded_percent_hundredths,
        funded_percent_printed,
    }
}

/// Decodes a select of the entity of `M` (its columns in order, nothing before them) by
/// position: `select.into_model::<ByPosition<M>>()`.
pub(crate) struct ByPosition<M>(pub M);

impl<M: Positional> FromQueryResult for ByPosition<M> {
    fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        Ok(Self(M::at(row, 0)?))
    }
}

/// The columns of `E`, in the order a select of it lists them.
#[cfg(test)]
fn columns<E: sea_orm::EntityTrait>() -> Vec<&'static str> {
    use sea_orm::{IdenStatic, Iterable};
    E::Column::iter().map(|column| column.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each positional reader names the entity's columns in the entity's order.
    #[test]
    fn positional_fields_are_the_entities_columns_in_order() {
        let pairs = [
            (report::Model::FIELDS, columns::<report::Entity>()),
            (plan::Model::FIELDS, columns::<plan::Entity>()),
            (country::Model::FIELDS, columns::<country::Entity>()),
            (platform::Model::FIELDS, columns::<platform::Entity>()),
            (
                report_totals::Model::FIELDS,
                columns::<report_totals::Entity>(),
            ),
            (
                organization::Model::FIELDS,
                columns::<organization::Entity>(),
            ),
            (share::Model::FIELDS, columns::<share::Entity>()),
            (
                partner_count::Model::FIELDS,
                columns::<partner_count::Entity>(),
            ),
            (footnote::Model::FIELDS, columns::<footnote::Entity>()),
            (source_link::Model::FIELDS, columns::<source_link::Entity>()),
            (sector::Model::FIELDS, columns::<sector::Entity>()),
            (
                sector_figures::Model::FIELDS,
                columns::<sector_figures::Entity>(),
            ),
        ];
        for (fields, columns) in pairs {
            assert_eq!(fields, columns);
        }
    }
}
