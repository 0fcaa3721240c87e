//! Organisations: the partners and donors reports name.

use super::*;

pub struct Organization(pub Row<organization::Model>);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn acronym(&self) -> Option<&str> {
        self.0.acronym.as_deref()
    }

    #[graphql(name = "type")]
    async fn org_type(&self) -> Option<&str> {
        self.0.org_type.as_deref()
    }

    async fn refugee_and_migrant_led(&self) -> bool {
        self.0.refugee_and_migrant_led
    }

    /// The organization's id in OCHA's Financial Tracking Service, when known.
    async fn fts_id(&self) -> Option<&str> {
        self.0.fts_id.as_deref()
    }

    /// True for organisations `plangraph generate` made for load tests (their names say
    /// "synthetic" too); every organisation a partner creates is real.
    async fn synthetic(&self) -> bool {
        self.0.synthetic
    }

    /// The store revision of the organisation's last change (0: none recorded).
    async fn revision(&self) -> Result<i32> {
        revision(self.0.revision)
    }

    /// Changes to the organisation and to its links with reports, newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<HistoryConnection> {
        history_page(ctx, HistoryOwner::Organization, self.0.id, first, after).await
    }
}
