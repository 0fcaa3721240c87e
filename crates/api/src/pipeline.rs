//! The request pipeline, inside the schema: every entry point (HTTP POST and GET, each WebSocket
//! operation, each request of a batch, federation look-ups) runs through it because async-graphql
//! runs it for every request it executes, not because a caller remembered to.
//!
//! Per request it
//! - attaches a [`LoaderSlot`]: a fresh DataLoader, so cached rows never outlive the request
//!   (a subscription swaps in a loader of each event's own, see [`LoaderSlot::set`]);
//! - refuses a mutation that arrived over HTTP GET ([`Transport::HttpGet`]);
//! - gives request errors (parse, validation, limits) their stable codes;
//! - puts every response, and every subscription event, in selection order.

use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use plangraph_persistence::Store;

use crate::Profile;
use crate::auth::Credentials;
use crate::limits::{self, LimitError, QueryLimits};
use crate::loaders::{Loaders, StoreLoader};
use crate::order;
use crate::row_cache::RowCache;

/// How a request reached the schema, when it matters to the rules: GraphQL over HTTP forbids
/// mutations over GET (a GET must be safe to repeat and to prefetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    HttpGet,
}

/// The request's DataLoader. Resolvers read it through [`LoaderSlot::current`]; a subscription
/// replaces it before each event so an event never sees rows cached before its change, and a
/// mutation after its write. Clones share the slot.
#[derive(Clone)]
pub struct LoaderSlot {
    current: Arc<Mutex<Arc<Loaders>>>,
}

impl std::fmt::Debug for LoaderSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderSlot").finish_non_exhaustive()
    }
}

/// A DataLoader over `store` with an empty cache.
pub fn new_loaders(store: &Store) -> Loaders {
    loaders_for(store, String::new(), None)
}

fn loaders_for(store: &Store, request_id: String, rows: Option<Arc<RowCache>>) -> Loaders {
    DataLoader::with_cache(
        StoreLoader::new(store.clone())
            .with_request_id(request_id)
            .with_rows(rows),
        spawn_batch,
        HashMapCache::default(),
    )
    // No timer before a batch: DataLoader's default 1 ms (a timer on another thread, so 1-2 ms)
    // was paid once per level of every request, most of a cached answer's time, while its
    // execution slot was held. A request resolves in one task, so the fields of a level ask
    // for their keys in one pass of it; the batch task, spawned behind it, starts after.
    .delay(std::time::Duration::ZERO)
}

/// Runs a loader's batch once the tasks ready now had their turn: the request that asked
/// (and any other woken with it) finishes its pass and adds its keys to the batch first.
fn spawn_batch(batch: async_graphql::futures_util::future::BoxFuture<'static, ()>) {
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        batch.await;
    });
}

/// [`new_loaders`], shared.
pub fn fresh_loaders(store: &Store) -> Arc<Loaders> {
    Arc::new(new_loaders(store))
}

impl LoaderSlot {
    pub fn new(store: &Store) -> Self {
        Self::with_request_id(store, String::new(), None)
    }

    /// A slot whose loaders name `request_id` when they log a failure and read through `rows`,
    /// the process's kept rows, when given.
    pub fn with_request_id(store: &Store, request_id: String, rows: Option<Arc<RowCache>>) -> Self {
        Self {
            current: Arc::new(Mutex::new(Arc::new(loaders_for(store, request_id, rows)))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Loaders>> {
        // The guarded value is only ever replaced whole, so a poisoned lock still holds a
        // valid loader.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn current(&self) -> Arc<Loaders> {
        self.lock().clone()
    }

    /// Resolves what follows with `loaders`. Subscription events are resolved one after the
    /// other, so setting the slot before yielding an event scopes the loader to that event.
    pub fn set(&self, loaders: Arc<Loaders>) {
        *self.lock() = loaders;
    }
}

/// The process's execution slots ([`QueryLimits::max_concurrent`]): a query or mutation runs
/// once it holds one. Subscription events are not counted: an event can be as large as any
/// query, so many subscribers of large selections still add up (a known gap).
#[derive(Debug, Clone)]
pub struct ExecutionSlots(pub Arc<tokio::sync::Semaphore>);

impl ExecutionSlots {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(
            slots.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        )))
    }
}

/// Installs the pipeline on a schema (`SchemaBuilder::extension(Pipeline)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipeline;

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestPipeline::default())
    }
}

/// What one request's pipeline remembers between its stages.
#[derive(Default)]
struct Seen {
    /// The request's id: in the log line of a failure and in the masked error the client gets.
    request_id: String,
    operation_name: Option<String>,
    /// The request's variables: `_entities` names each representation's type in them.
    variables: Variables,
    /// The parsed document, kept to put the response in selection order.
    document: Option<ExecutableDocument>,
    /// When the request's time budget ends.
    deadline: Option<tokio::time::Instant>,
}

#[derive(Default)]
struct RequestPipeline {
    seen: Arc<Mutex<Seen>>,
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    error
}

/// The type of the operation `name` selects in `doc` (the only one when `name` is `None`).
pub fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op.node.ty),
        // One anonymous operation cannot be selected by a name: async-graphql refuses it.
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The root fields a subscription operation selects, fragments included (a fragment nested
/// deeper than the document has fragments is a cycle, which validation refuses anyway).
fn subscription_root_fields(doc: &ExecutableDocument, name: Option<&str>) -> usize {
    fn count(doc: &ExecutableDocument, set: &SelectionSet, budget: usize) -> usize {
        if budget == 0 {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(inline) => {
                    count(doc, &inline.node.selection_set.node, budget - 1)
                }
                Selection::FragmentSpread(spread) => doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| count(doc, &f.node.selection_set.node, budget - 1)),
            })
            .sum()
    }
    let operation = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => ops.values().next(),
    };
    operation.map_or(0, |op| {
        count(doc, &op.node.selection_set.node, doc.fragments.len() + 1)
    })
}

/// 16 random hex digits (a counter if the system has no randomness to give).
fn new_request_id() -> String {
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = FALLBACK
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer to a request the store failed before it could execute (the HTTP response cache
/// reads the store revision first): the masked error, request id and one log line an executing
/// request's failure gets, without trying the store a second time.
pub fn store_failure_response(err: &plangraph_persistence::StoreError) -> Response {
    let request_id = new_request_id();
    tracing::error!(
        request_id = %request_id,
        code = err.code(),
        error = %err,
        "store failure while loading"
    );
    // The masked error resolvers give (`INTERNAL`, `storeCode`), with the id `finish` adds.
    let mut error = async_graphql::Error::from(crate::error::ApiError::Internal {
        store_code: err.code(),
    })
    .into_server_error(async_graphql::Pos::default());
    error.locations.clear();
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("requestId", request_id.as_str());
    Response::from_errors(vec![error])
}

/// The error of a request over its time budget.
fn timed_out(limits: &QueryLimits) -> ServerError {
    with_code(
        ServerError::new(
            format!(
                "the request ran longer than {:?} and was stopped",
                limits.timeout
            ),
            None,
        ),
        "QUERY_TIMEOUT",
    )
}

/// Does the request carry a token the store knows (and has not revoked)?
async fn has_valid_token(store: &Store, request: &Request) -> bool {
    let Some(Credentials::Bearer(secret)) = request
        .data
        .get(&std::any::TypeId::of::<Credentials>())
        .and_then(|d| d.downcast_ref::<Credentials>())
        .cloned()
    else {
        return false;
    };
    matches!(store.actor_for_secret(&secret).await, Ok(Some(_)))
}

fn refusal(error: LimitError) -> ServerError {
    with_code(ServerError::new(error.message, None), error.code)
}

/// The last stage of every response: codes for request errors, errors bounded in number and
/// length, then selection order.
fn finish(
    seen: &Mutex<Seen>,
    limits: &QueryLimits,
    schema: &async_graphql::SchemaEnv,
    response: &mut Response,
) {
    if response.errors.len() > limits.max_errors {
        let omitted = response.errors.len() - limits.max_errors;
        response.errors.truncate(limits.max_errors);
        response.errors.push(with_code(
            ServerError::new(format!("{omitted} more error(s) omitted"), None),
            "ERRORS_TRUNCATED",
        ));
    }
    let request_id = lock(seen).request_id.clone();
    for error in &mut response.errors {
        let internal = error
            .extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == Value::from("INTERNAL"));
        if internal && !request_id.is_empty() {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", request_id.as_str());
        }
        if error.message.chars().count() > limits.max_error_message {
            let kept: String = error
                .message
                .chars()
                .take(limits.max_error_message)
                .collect();
            error.message = format!("{kept}…");
        }
    }
    // Resolver errors come with data (at least `null` fields under it) and carry their own
    // code; errors before execution (an unknown operation name, say) come without data.
    if response.data == Value::Null {
        for error in &mut response.errors {
            *error = with_code(
                std::mem::replace(error, ServerError::new("", None)),
                "GRAPHQL_VALIDATION_FAILED",
            );
        }
    }
    let seen = lock(seen);
    if let Some(document) = &seen.document {
        let is_object_type = |name: &str| {
            matches!(
                schema.registry.types.get(name),
                Some(async_graphql::registry::MetaType::Object { .. })
            )
        };
        let ordering = order::Ordering {
            doc: document,
            variables: &seen.variables,
            is_object_type: &is_object_type,
        };
        order::in_selection_order(
            &mut response.data,
            &ordering,
            seen.operation_name.as_deref(),
        );
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestPipeline {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let limits = ctx.data_opt::<QueryLimits>().copied().unwrap_or_default();
        // One budget for the whole request: the wait for an execution slot, then a query's
        // execution (see `execute`). A mutation that started executing is never cut short: a
        // write committed behind a QUERY_TIMEOUT answer would be retried and done twice.
        let deadline = tokio::time::Instant::now() + limits.timeout;
        lock(&self.seen).deadline = Some(deadline);
        let slot = match ctx.data_opt::<ExecutionSlots>() {
            Some(slots) => match tokio::time::timeout_at(deadline, slots.0.acquire()).await {
                Ok(permit) => permit.ok(),
                Err(_) => {
                    let mut response = Response::from_errors(vec![timed_out(&limits)]);
                    finish(&self.seen, &limits, ctx.schema_env, &mut response);
                    return response;
                }
            },
            None => None,
        };
        let mut response = next.run(ctx).await;
        drop(slot);
        finish(&self.seen, &limits, ctx.schema_env, &mut response);
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let (deadline, mutation) = {
            let seen = lock(&self.seen);
            let mutation = seen
                .document
                .as_ref()
                .and_then(|doc| operation_type(doc, operation_name))
                == Some(OperationType::Mutation);
            (seen.deadline, mutation)
        };
        match deadline {
            Some(deadline) if !mutation => {
                match tokio::time::timeout_at(deadline, next.run(ctx, operation_name)).await {
                    Ok(response) => response,
                    Err(_) => {
                        let limits = ctx.data_opt::<QueryLimits>().copied().unwrap_or_default();
                        Response::from_errors(vec![timed_out(&limits)])
                    }
                }
            }
            _ => next.run(ctx, operation_name).await,
        }
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let seen = self.seen.clone();
        let limits = ctx.data_opt::<QueryLimits>().copied().unwrap_or_default();
        let schema = ctx.schema_env.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                finish(&seen, &limits, &schema, &mut response);
                response
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let store = ctx
            .data::<Store>()
            .map_err(|e| with_code(ServerError::new(e.message, None), "INTERNAL"))?;
        let request_id = new_request_id();
        {
            let mut seen = lock(&self.seen);
            seen.operation_name = request.operation_name.clone();
            seen.request_id = request_id.clone();
            seen.variables = request.variables.clone();
        }
        // In production the schema is mapped only for callers with a valid token.
        if ctx.data_opt::<Profile>() == Some(&Profile::Production)
            && !has_valid_token(store, &request).await
        {
            request = request.disable_introspection();
        }
        // The limits, before async-graphql touches the document: its own parse-stage checks
        // expand every fragment (a fragment-doubling document would cost 2^n there), ours cost
        // each fragment once. The document parsed here is the one that runs.
        let limits = ctx.data_opt::<QueryLimits>().copied().unwrap_or_default();
        limits::check_tokens(&request.query, limits.max_tokens).map_err(refusal)?;
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        let document = request
            .parsed_query()
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        limits::check_document(
            document,
            operation_name.as_deref(),
            &ctx.schema_env.registry,
            &variables,
            &limits,
        )
        .map_err(refusal)?;
        // Kept rows serve queries only: a mutation's reads before its write would gain nothing.
        let rows = (operation_type(document, operation_name.as_deref())
            == Some(OperationType::Query))
        .then(|| ctx.data_opt::<Arc<RowCache>>().cloned())
        .flatten();
        let request = request.data(LoaderSlot::with_request_id(store, request_id, rows));
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        let mut seen = lock(&self.seen);
        if ctx.data_opt::<Transport>() == Some(&Transport::HttpGet)
            && operation_type(&document, seen.operation_name.as_deref())
                == Some(OperationType::Mutation)
        {
            return Err(with_code(
                ServerError::new(
                    "mutations are not allowed over GET; send them with POST",
                    None,
                ),
                "METHOD_NOT_ALLOWED",
            ));
        }
        if operation_type(&document, seen.operation_name.as_deref())
            == Some(OperationType::Subscription)
            && subscription_root_fields(&document, seen.operation_name.as_deref()) != 1
        {
            // GraphQL §5.2.3.1: one root field, so one source stream, one event at a time (the
            // loader of each event is the request's while that event resolves).
            return Err(with_code(
                ServerError::new("a subscription selects exactly one root field", None),
                "GRAPHQL_VALIDATION_FAILED",
            ));
        }
        seen.document = Some(document.clone());
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // Limits were checked before validation (see `parse_query`); what fails here is the
        // document against the schema.
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED"))
                .collect()
        })
    }
}
