//! GraphQL enums and their stored spellings.

use async_graphql::Enum;

use crate::error::ApiError;

/// An enum stored as text: the variant names are the stored text, so the mapping cannot drift.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub fn from_stored(text: &str) -> Result<Self, ApiError> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(ApiError::corrupt(stringify!($name), other)),
                }
            }

            pub fn as_stored(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }
    };
}

stored_enum!(
    /// Which report of a plan cycle.
    ReportKind {
        EndYear => "END_YEAR",
        MidYear => "MID_YEAR",
        Plan => "PLAN",
    }
);

stored_enum!(
    /// Roles whose partner counts a report publishes. Counts are never summed across roles:
    /// the report's own footnote warns this would double-count.
    PartnerRole {
        Reporting => "REPORTING",
        Implementing => "IMPLEMENTING",
        RefugeeAndMigrantLed => "REFUGEE_AND_MIGRANT_LED",
        Donor => "DONOR",
    }
);

stored_enum!(
    /// Kinds of narrative section.
    SectionKind {
        Situation => "SITUATION",
        Response => "RESPONSE",
        LessonsLearned => "LESSONS_LEARNED",
    }
);

stored_enum!(
    /// What a share is a share of.
    ShareBasis {
        PeopleTargeted => "PEOPLE_TARGETED",
        PeopleReached => "PEOPLE_REACHED",
    }
);

stored_enum!(
    /// Which breakdown a share belongs to.
    ShareDimension {
        AgeGender => "AGE_GENDER",
        PopulationType => "POPULATION_TYPE",
    }
);

stored_enum!(
    /// Where in the document a link was printed.
    LinkPlacement {
        /// Under the footnotes of the key-figures page.
        Footnotes => "FOOTNOTES",
        /// The cited URLs that close the report.
        EndNotes => "END_NOTES",
    }
);

stored_enum!(
    /// Scope of a coordination platform.
    PlatformScope {
        National => "NATIONAL",
        Subregional => "SUBREGIONAL",
        Regional => "REGIONAL",
    }
);

stored_enum!(
    /// How an organization takes part in a report.
    OrganizationRole {
        Partner => "PARTNER",
        Donor => "DONOR",
    }
);
