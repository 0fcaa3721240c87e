//! The GraphQL schema of plangraph, free of any transport: tests call [`Api::execute`]
//! directly and the server only wires it to HTTP.
//!
//! [`Api::execute`] attaches the request's DataLoader, gives request errors (parse, validation,
//! limits) their stable codes and puts the response in selection order.

mod enums;
mod error;
mod loaders;
mod order;
mod query;
mod scalars;
mod types;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{
    EmptyMutation, EmptySubscription, Request, Response, Schema, ServerError, Value,
};
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

/// The schema and the store it reads, built once at start-up and shared by every request.
#[derive(Clone)]
pub struct Api {
    schema: PlangraphSchema,
    store: Store,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(store: Store) -> Self {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .data(store.clone())
            .limit_depth(MAX_DEPTH)
            .limit_complexity(MAX_COMPLEXITY)
            .finish();
        Self { schema, store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs one request: a fresh DataLoader, then the schema; then codes for errors that
    /// stopped the request before any resolver ran, and the response's fields put in
    /// selection order.
    pub async fn execute(&self, request: impl Into<Request>) -> Response {
        let mut request = request.into();
        // The one parse of the request: async-graphql executes this document, and the copy
        // kept here puts the response in selection order.
        let document = match request.parsed_query() {
            Ok(document) => document.clone(),
            Err(error) => {
                return Response::from_errors(vec![with_code(error, "GRAPHQL_PARSE_FAILED")]);
            }
        };
        let operation_name = request.operation_name.clone();
        let mut response = self
            .schema
            .execute(with_loaders(request, &self.store))
            .await;
        tag_request_errors(&mut response);
        order::in_selection_order(&mut response.data, &document, operation_name.as_deref());
        response
    }
}

/// The schema without a store, for printing the SDL.
pub fn sdl() -> String {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .finish()
        .sdl()
}

/// Attaches a request-scoped DataLoader over `store`: one per request, so cached rows never
/// outlive the request that read them.
fn with_loaders(request: impl Into<Request>, store: &Store) -> Request {
    let loader: loaders::Loaders = DataLoader::with_cache(
        StoreLoader::new(store.clone()),
        tokio::spawn,
        HashMapCache::default(),
    );
    request.into().data(loader)
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// async-graphql reports validation and limit errors with a message only. Each gets a stable
/// code here (parse errors get theirs in [`Api::execute`]):
///
/// | code | when |
/// |---|---|
/// | `GRAPHQL_PARSE_FAILED` | the document is not GraphQL |
/// | `GRAPHQL_VALIDATION_FAILED` | it is, but not valid against the schema (or its variables) |
/// | `QUERY_TOO_DEEP` | deeper than [`MAX_DEPTH`] |
/// | `QUERY_TOO_COMPLEX` | over [`MAX_COMPLEXITY`] |
fn tag_request_errors(response: &mut Response) {
    // Resolver errors come with data (at least `null` fields under it) and carry their own code.
    if response.data != Value::Null {
        return;
    }
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        let code = match error.message.as_str() {
            "Query is nested too deep." => "QUERY_TOO_DEEP",
            "Query is too complex." => "QUERY_TOO_COMPLEX",
            _ => "GRAPHQL_VALIDATION_FAILED",
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}
