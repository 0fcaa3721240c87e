//! The GraphQL schema of plangraph, free of any transport: tests call [`Api::execute`]
//! directly and the server only wires it to HTTP and WebSocket.
//!
//! Everything a request needs beyond the resolvers (limits, its DataLoader, stable error codes,
//! selection order) lives in [`pipeline`], around the schema; [`Api`] is the only handle on the
//! schema, so every entry point gets it.

mod auth;
mod connection;
mod enums;
mod error;
mod exchange_mutation;
pub mod kept;
pub mod limits;
mod loaders;
mod mutation;
mod order;
pub mod pipeline;
mod query;
mod scalars;
mod subscription;
mod types;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Executor, Request, Response, Schema, SchemaBuilder};
use plangraph_persistence::Store;

pub use auth::Credentials;
pub use connection::{DEFAULT_PAGE, MAX_PAGE};
pub use enums::*;
pub use error::ApiError;
pub use exchange_mutation::MAX_CONCURRENT_IMPORTS;
pub use limits::QueryLimits;
pub use loaders::StoreLoader;
pub use mutation::{MAX_LIST, Mutation, WriteLimits};
pub use pipeline::{Answer, RequestId, Transport};
pub use query::Query;
pub use subscription::{Listening, MAX_SUBSCRIPTIONS_PER_SOCKET, Subscription, SubscriptionQuota};

pub type PlangraphSchema = Schema<Query, Mutation, Subscription>;

/// How the server presents itself to callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// Introspection and "Did you mean …?" suggestions for everyone.
    #[default]
    Development,
    /// On the public internet: no introspection for callers without a valid token, no field
    /// suggestions (both map the schema for an attacker).
    Production,
}

/// The one schema builder: the schema that serves and the schema `plangraph schema` prints
/// both come from here, so they cannot drift apart (the profile changes no type). Only
/// request-independent data (the store, the limits) is added afterwards.
fn builder(profile: Profile) -> SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(Query, Mutation::default(), Subscription)
        // An Apollo Federation v2 subgraph, subscriptions included so a gateway passes them on.
        .enable_federation()
        .enable_subscription_in_federation();
    match profile {
        Profile::Development => builder,
        Profile::Production => builder.disable_suggestions(),
    }
}

/// The schema and the store it reads, built once at start-up and shared by every request.
#[derive(Clone)]
pub struct Api {
    schema: PlangraphSchema,
    pipeline: pipeline::Pipeline,
    imports: exchange_mutation::ImportSlots,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("store", self.store())
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(store: Store) -> Self {
        Self::with_limits(store, WriteLimits::default())
    }

    pub fn with_limits(store: Store, limits: WriteLimits) -> Self {
        Self::with_all_limits(store, limits, QueryLimits::default())
    }

    pub fn with_all_limits(store: Store, limits: WriteLimits, query: QueryLimits) -> Self {
        Self::configured(store, limits, query, Profile::Development)
    }

    pub fn configured(
        store: Store,
        limits: WriteLimits,
        query: QueryLimits,
        profile: Profile,
    ) -> Self {
        let pipeline = pipeline::Pipeline::new(store.clone(), query, profile);
        // What resolvers read; the pipeline holds the rest. Queries, mutations and subscription
        // events take turns in the same slots.
        let imports = exchange_mutation::ImportSlots::default();
        let schema = builder(profile)
            .data(store)
            .data(limits)
            .data(pipeline.slots().clone())
            .data(imports.clone())
            .finish();
        Self {
            schema,
            pipeline,
            imports,
        }
    }

    pub fn store(&self) -> &Store {
        self.pipeline.store()
    }

    /// The slots `importDocument` runs in (each holds a whole file while it is checked and
    /// written); more at once are refused with `IMPORT_BUSY`.
    pub fn import_slots(&self) -> &std::sync::Arc<tokio::sync::Semaphore> {
        &self.imports.0
    }

    /// The query limits the schema serves with.
    pub fn query_limits(&self) -> &QueryLimits {
        self.pipeline.limits()
    }

    /// Runs one request through the pipeline (see [`pipeline`]): what every entry point runs.
    pub async fn execute(&self, request: impl Into<Request>) -> Response {
        self.answer(request).await.into_response()
    }

    /// Runs one request through the pipeline and gives its answer as transports write it: an
    /// anonymous query's answer as kept JSON when it was kept (or computed to be), else the
    /// response.
    pub async fn answer(&self, request: impl Into<Request>) -> Answer {
        self.pipeline
            .answer(&self.schema, request.into(), None)
            .await
    }

    /// What the process keeps between requests (answers and rows), for its metrics and tests.
    pub fn kept(&self) -> &kept::Kept {
        self.pipeline.kept()
    }

    /// Runs one request as a stream of responses: a subscription's events, or the one answer
    /// of a query or mutation (what a WebSocket operation runs), with the socket's session
    /// data (its credentials and subscription quota).
    pub fn execute_stream(
        &self,
        request: impl Into<Request>,
        session: Option<std::sync::Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        self.pipeline
            .execute_stream(self.schema.clone(), request.into(), session)
    }

    /// The SDL of the schema that serves (the plain public schema; see [`sdl`]).
    pub fn sdl(&self) -> String {
        without_federation_plumbing(&self.schema.sdl())
    }

    /// The subgraph SDL of the schema that serves (see [`federation_sdl`]).
    pub fn federation_sdl(&self) -> String {
        self.schema
            .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
    }
}

/// Transports that drive a schema themselves (async-graphql's WebSocket protocols) drive the
/// [`Api`], so their operations go through the pipeline too.
impl Executor for Api {
    async fn execute(&self, request: Request) -> Response {
        Api::execute(self, request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<std::sync::Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        Api::execute_stream(self, request, session_data)
    }
}

/// The SDL, from the same builder as the serving schema: the plain public schema, without the
/// federation plumbing (`_service`, `_entities` and their types) a gateway uses.
pub fn sdl() -> String {
    without_federation_plumbing(&builder(Profile::default()).finish().sdl())
}

/// The SDL with `_service`, `_entities`, `_Any`, `_Entity` and `_Service` left out. The SDL is
/// printed as blank-line-separated definitions, each with its description, so a definition is
/// dropped whole.
fn without_federation_plumbing(sdl: &str) -> String {
    const PLUMBING: [&str; 3] = ["scalar _Any", "union _Entity", "type _Service"];
    let kept: Vec<String> = sdl
        .split("\n\n")
        .filter(|block| {
            !block
                .lines()
                .any(|line| PLUMBING.iter().any(|p| line.starts_with(p)))
        })
        .map(|block| {
            block
                .lines()
                .filter(|line| {
                    let line = line.trim_start();
                    !line.starts_with("_service:") && !line.starts_with("_entities(")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let mut out = kept.join("\n\n");
    if sdl.ends_with('\n') && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The Apollo Federation v2 subgraph SDL (`@link`, `@key`, `@shareable`), from the same builder:
/// what `_service { sdl }` answers.
pub fn federation_sdl() -> String {
    builder(Profile::default())
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}
