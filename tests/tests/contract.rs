//! The checked-in `schema.graphql` is what the server serves.

#[test]
fn schema_graphql_matches_the_served_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let served = plangraph_api::sdl();
    assert!(
        checked_in == served,
        "schema.graphql differs from the served schema; regenerate it with \
         `cargo run -p plangraph-server -- schema > schema.graphql`"
    );
}

#[test]
fn the_contract_names_are_served() {
    let sdl = plangraph_api::sdl();
    for name in [
        "countries: [Country!]!",
        "country(iso3: String!): Country",
        "sectors: [Sector!]!",
        "sector(code: String!): Sector",
        "report(id: ID!): Report",
        "reports(filter: ReportFilter, first: Int, after: String): ReportConnection!",
        "organizations(filter: OrganizationFilter, first: Int, after: String): OrganizationConnection!",
        "reports(year: Int, kind: ReportKind): [Report!]!",
        "report(year: Int!, kind: ReportKind! = END_YEAR): Report",
        "fundingAsOf: Date",
        "sectors: [SectorFigures!]!",
        "sector(code: String!): SectorFigures",
        "ageGender: [Share!]!",
        "populationTypes: [Share!]!",
        "partnerCounts: [PartnerCount!]!",
        "partners: [Organization!]!",
        "donors: [Organization!]!",
        "sections: [NarrativeSection!]!",
        "footnotes: [Footnote!]!",
        "sources: [SourceLink!]!",
        "requirementsUsd: Float",
        "peopleTargeted: Int",
    ] {
        assert!(sdl.contains(name), "the SDL lacks `{name}`");
    }
}

/// The printed SDL comes from the builder that serves: the schema of a running `Api` (with its
/// store, limits and pipeline) prints exactly the same.
#[tokio::test]
async fn the_served_and_printed_schemas_are_one() {
    let test = crate::support::empty_store(crate::support::Backend::Sqlite).await;
    let api = plangraph_api::Api::new(test.store.clone());
    assert_eq!(api.sdl(), plangraph_api::sdl());
    for name in [
        "type Mutation",
        "type Subscription",
        "reportChanged(countryIso3: String, year: Int, reportId: ID, afterRevision: Int): Change!",
        "figuresChanged(reportId: ID!, sectorCode: String, afterRevision: Int): FiguresChange!",
        "importReport(text: String!, country: String!, expectedRevision: Int!",
        "revision: Int!",
        "history(first: Int, after: String): ChangeConnection!",
    ] {
        assert!(api.sdl().contains(name), "the SDL lacks `{name}`");
    }
}

/// The subgraph SDL a gateway composes is checked in as `schema.federation.graphql`, printed by
/// `plangraph schema --federation` from the serving builder, with every entity's key.
#[tokio::test]
async fn the_federation_sdl_is_checked_in_and_carries_the_keys() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.federation.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let printed = plangraph_api::federation_sdl();
    assert!(
        checked_in == printed,
        "schema.federation.graphql differs from the served subgraph schema; regenerate it with \
         `cargo run -p plangraph-server -- schema --federation > schema.federation.graphql`"
    );
    let test = crate::support::empty_store(crate::support::Backend::Sqlite).await;
    assert_eq!(
        plangraph_api::Api::new(test.store.clone()).federation_sdl(),
        printed
    );
    for needle in [
        "url: \"https://specs.apollo.dev/federation/v2",
        "type Country @key(fields: \"iso3\")",
        "type Platform @key(fields: \"code\")",
        "type Plan @key(fields: \"code\")",
        "type Report @key(fields: \"id\")",
        "type Sector @key(fields: \"code\")",
        "type Organization @key(fields: \"id\") @key(fields: \"ftsId\")",
        "type PageInfo @shareable",
        "type Subscription",
    ] {
        assert!(
            printed.contains(needle),
            "the subgraph SDL lacks `{needle}`"
        );
    }
    // The plain schema stays free of the federation plumbing.
    let plain = plangraph_api::sdl();
    for absent in ["_entities", "_service", "_Any", "@key"] {
        assert!(!plain.contains(absent), "schema.graphql shows `{absent}`");
    }
}
