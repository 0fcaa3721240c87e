//! The checks every request passes before it executes, in order: the text's limits before
//! anything parses it, the variables, the token where the profile or `_service` needs one,
//! the parsed document's limits, the operation's kind (no mutation over GET, one root field per
//! subscription); then what it runs with (its loaders, under the history budget).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Data, Request, Response, ServerError};
use plangraph_persistence::{Store, Version};
use secrecy::ExposeSecret;

use super::finish::{Seen, with_code};
use super::operation::{
    operation_type, reads_no_store, selects_root_field, subscription_root_fields,
};
use super::{Pipeline, Prepared, Refused, Transport, credentials, request_data};
use crate::Profile;
use crate::auth::Credentials;
use crate::limits;
use crate::loaders::{LoaderScope, LoaderSlot};

impl Pipeline {
    /// Checks a request and attaches what it runs with; an error is the answer, finished.
    pub(super) async fn prepare(
        &self,
        mut request: Request,
        session: Option<&Data>,
        mut seen: Seen,
        version: Option<Version>,
        kept_parse: Option<Arc<ExecutableDocument>>,
    ) -> Result<Prepared, Refused> {
        let refuse =
            |seen, error: ServerError| Err(Box::new((seen, Response::from_errors(vec![error]))));
        let Some(env) = &self.env else {
            let error = ServerError::new("the schema's registry is unavailable", None);
            return refuse(seen, with_code(error, "INTERNAL"));
        };
        // The text first, before anything parses it: async-graphql's value parser recurses
        // without a bound, and our own walks must never meet a document that could make them.
        if let Err(error) = limits::check_text(&request.query, &self.limits) {
            return refuse(seen, error.into());
        }
        if let Err(error) = limits::check_variables(&request.variables, &self.limits) {
            return refuse(seen, error.into());
        }
        seen.variables = request.variables.clone();
        // In production the schema is mapped only for callers with a valid token, over any
        // transport (a socket's token is in its session); so is the federation SDL when the
        // server says so. One look-up of the token for both.
        let valid_token =
            if self.profile == Profile::Production || self.limits.service_sdl_needs_token {
                Some(has_valid_token(&self.store, &request, session).await)
            } else {
                None
            };
        if self.profile == Profile::Production && valid_token == Some(false) {
            request = request.disable_introspection();
        }
        let over_get = request_data::<Transport>(&request) == Some(&Transport::HttpGet);
        // The parse the request executes is its own (async-graphql takes it by value); the one
        // kept beside it, for ordering the response and for later requests, is shared.
        let (shared, to_keep) = match kept_parse {
            Some(document) => {
                request.set_parsed_query((*document).clone());
                (document, None)
            }
            None => match request.parsed_query() {
                Ok(document) => (
                    Arc::new(document.clone()),
                    Some(Arc::<str>::from(request.query.as_str())),
                ),
                Err(error) => return refuse(seen, with_code(error, "GRAPHQL_PARSE_FAILED")),
            },
        };
        let document = &*shared;
        let name = seen.operation_name.as_deref();
        if let Err(error) =
            limits::check_document(document, name, &env.registry, &seen.variables, &self.limits)
        {
            return refuse(seen, error.into());
        }
        let ty = operation_type(document, name);
        if let (Some(text), Some(OperationType::Query)) = (to_keep, ty) {
            // Queries only: they are what dashboards repeat; a mutation's literals would take
            // the room of their documents.
            self.documents.keep(text, shared.clone()).await;
        }
        seen.ty = ty;
        if valid_token == Some(false)
            && self.limits.service_sdl_needs_token
            && ty == Some(OperationType::Query)
            && selects_root_field(document, name, "_service")
        {
            let error = ServerError::new(
                "this server answers the federation SDL (`_service`) to callers with a token only",
                None,
            );
            return refuse(seen, with_code(error, "UNAUTHENTICATED"));
        }
        if over_get && ty == Some(OperationType::Mutation) {
            let error = ServerError::new(
                "mutations are not allowed over GET; send them with POST",
                None,
            );
            return refuse(seen, with_code(error, "METHOD_NOT_ALLOWED"));
        }
        if ty == Some(OperationType::Subscription) && subscription_root_fields(document, name) != 1
        {
            // GraphQL §5.2.3.1: one root field, so one source stream, one event at a time (the
            // loader of each event is the request's while that event resolves).
            let error = ServerError::new("a subscription selects exactly one root field", None);
            return refuse(seen, with_code(error, "GRAPHQL_VALIDATION_FAILED"));
        }
        seen.document = Some(shared.clone());
        // Kept rows serve queries only: a mutation's reads before its write would gain nothing,
        // and each subscription event reads through loaders of its own.
        let kept = if ty == Some(OperationType::Query)
            && self.kept.keeps_rows()
            && !reads_no_store(document, name)
        {
            let version = match version {
                Some(version) => version,
                None => match self.version().await {
                    Ok(version) => version,
                    Err(response) => return Err(Box::new((seen, response))),
                },
            };
            Some((self.kept.clone(), version))
        } else {
            None
        };
        let scope = LoaderScope {
            request_id: seen.request_id.clone(),
            kept,
            history_budget: Some(Arc::new(AtomicI64::new(
                i64::try_from(self.limits.history_bytes_per_request).unwrap_or(i64::MAX),
            ))),
            prefetched: Arc::default(),
        };
        // A query's reads share one connection; a subscription keeps its loaders between
        // events and a mutation reads after its write, so theirs use the pool.
        let reads = match ty {
            Some(OperationType::Query) => self.store.with_session(),
            _ => self.store.clone(),
        };
        // The store as request data too: resolvers that read it directly (the organisations
        // listing) read through the session like the loaders.
        let request = request
            .data(LoaderSlot::scoped(&reads, scope))
            .data(reads.clone());
        Ok(Prepared {
            request,
            seen,
            reads,
        })
    }
}

/// Does the request carry a token the store knows (and has not revoked)?
async fn has_valid_token(store: &Store, request: &Request, session: Option<&Data>) -> bool {
    let Credentials::Bearer(secret) = credentials(request, session) else {
        return false;
    };
    matches!(
        store.actor_for_secret(secret.expose_secret()).await,
        Ok(Some(_))
    )
}
