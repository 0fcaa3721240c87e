//! The GraphQL schema of plangraph, free of any transport: tests run `schema.execute(..)`
//! directly and the server only wires it to HTTP.
//!
//! Every request must carry a fresh DataLoader: build requests with [`with_loaders`].

mod enums;
mod error;
mod loaders;
mod query;
mod scalars;
mod types;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{EmptyMutation, EmptySubscription, Request, Schema};
use plangraph_persistence::Store;

pub use enums::*;
pub use error::ApiError;
pub use loaders::StoreLoader;
pub use query::{DEFAULT_PAGE, MAX_PAGE, Query};

pub type PlangraphSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Deepest selection a query may nest. The full nested dashboard query (countries → reports →
/// sectors → sector → parent → fields) is 7 deep.
pub const MAX_DEPTH: usize = 12;
/// Upper bound on a query's complexity (one point per field).
pub const MAX_COMPLEXITY: usize = 2_000;

/// The schema, holding the store for root look-ups.
pub fn build_schema(store: Store) -> PlangraphSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(store)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema without a store, for printing the SDL.
pub fn sdl() -> String {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .finish()
        .sdl()
}

/// Attaches a request-scoped DataLoader over `store`: one per request, so cached rows never
/// outlive the request that read them.
pub fn with_loaders(request: impl Into<Request>, store: &Store) -> Request {
    let loader: loaders::Loaders = DataLoader::with_cache(
        StoreLoader::new(store.clone()),
        tokio::spawn,
        HashMapCache::default(),
    );
    request.into().data(loader)
}
