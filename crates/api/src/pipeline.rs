//! The request pipeline: every entry point (HTTP POST and GET, each WebSocket operation,
//! federation look-ups) runs through it because [`crate::Api`], the only handle on the schema,
//! runs every request through it, not because a caller remembered to.
//!
//! Per request it
//! - checks the limits on the document, parsed once, before async-graphql sees it;
//! - attaches a [`LoaderSlot`]: a fresh DataLoader, so cached rows never outlive the request
//!   (a subscription swaps in a loader of each event's own, see [`LoaderSlot::set`]);
//! - refuses a mutation that arrived over HTTP GET ([`Transport::HttpGet`]);
//! - holds an execution slot and the time budget while a query or mutation executes (over HTTP
//!   or a WebSocket), and runs each WebSocket operation in a task of its own;
//! - gives request errors (parse, validation, limits) their stable codes;
//! - puts every response, and every subscription event, in selection order.

use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::futures_util::stream::{self, BoxStream};
use async_graphql::futures_util::{FutureExt, StreamExt};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    Data, Request, Response, SchemaBuilder, SchemaEnv, ServerError, Value, Variables,
};
use plangraph_persistence::Store;

use crate::auth::Credentials;
use crate::limits::{self, LimitError, QueryLimits};
use crate::loaders::{Loaders, StoreLoader};
use crate::order;
use crate::row_cache::RowCache;
use crate::{Mutation, PlangraphSchema, Profile, Query, Subscription};

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

    // The guarded value is only ever replaced whole, so a poisoned lock still holds a valid
    // loader (see `lock`).
    pub fn current(&self) -> Arc<Loaders> {
        lock(&self.current).clone()
    }

    /// Resolves what follows with `loaders`. Subscription events are resolved one after the
    /// other, so setting the slot before yielding an event scopes the loader to that event.
    pub fn set(&self, loaders: Arc<Loaders>) {
        *lock(&self.current) = loaders;
    }
}

/// The process's execution slots ([`QueryLimits::max_concurrent`]): a query or mutation (over
/// HTTP or a WebSocket) runs once it holds one, and a subscription event resolves once it holds
/// one (so a thousand subscribers of a large selection build a few answers at a time, not a
/// thousand at once).
#[derive(Debug, Clone)]
pub struct ExecutionSlots(pub Arc<tokio::sync::Semaphore>);

impl ExecutionSlots {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(
            slots.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        )))
    }
}

/// What one request's last stage needs from its first.
#[derive(Default)]
struct Seen {
    /// The request's id: in the log line of a failure and in the masked error the client gets.
    request_id: String,
    operation_name: Option<String>,
    /// The request's variables: `_entities` names each representation's type in them.
    variables: Variables,
    /// The parsed document, kept to put the response in selection order.
    document: Option<ExecutableDocument>,
}

/// The request pipeline around the schema (see the module's documentation). It is not an
/// async-graphql extension: any extension makes async-graphql run every field of every
/// response through the extension chain (a type and field look-up and boxed futures per field;
/// the benchmark's dashboard computed over kept rows went from 86 to 175 requests a second
/// without it), and this pipeline needs nothing per field.
#[derive(Clone)]
pub(crate) struct Pipeline {
    /// The schema's registry (types and fields), for the limits and the selection order.
    env: Option<SchemaEnv>,
    store: Store,
    limits: QueryLimits,
    profile: Profile,
    slots: ExecutionSlots,
    rows: Option<Arc<RowCache>>,
}

impl Pipeline {
    /// The pipeline around a schema from [`crate::builder`] for `profile`: its registry, its
    /// execution slots (also schema data, for subscription events) and the kept rows.
    pub(crate) fn new(store: Store, limits: QueryLimits, profile: Profile) -> Self {
        Self {
            env: schema_env(crate::builder(profile)),
            store,
            limits,
            profile,
            slots: ExecutionSlots::new(limits.max_concurrent),
            rows: RowCache::new(limits.row_cache_keys).map(Arc::new),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    pub(crate) fn slots(&self) -> &ExecutionSlots {
        &self.slots
    }

    /// Everything before async-graphql sees the request: the limits, the document parsed once,
    /// the refusals, the request's loaders. A refusal comes back with what `finish` needs.
    async fn prepare(
        &self,
        mut request: Request,
    ) -> Result<(Request, Seen, Option<OperationType>), (Seen, ServerError)> {
        let request_id = new_request_id();
        let mut seen = Seen {
            request_id: request_id.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            document: None,
        };
        let Some(env) = &self.env else {
            let error = ServerError::new("the schema's registry is unavailable", None);
            return Err((seen, with_code(error, "INTERNAL")));
        };
        // In production the schema is mapped only for callers with a valid token.
        if self.profile == Profile::Production && !has_valid_token(&self.store, &request).await {
            request = request.disable_introspection();
        }
        // The limits, before async-graphql touches the document: its own parse-stage checks
        // expand every fragment (a fragment-doubling document would cost 2^n there), ours cost
        // each fragment once. The document parsed here is the one that runs.
        if let Err(error) = limits::check_tokens(&request.query, self.limits.max_tokens) {
            return Err((seen, refusal(error)));
        }
        let over_get = request_data::<Transport>(&request) == Some(&Transport::HttpGet);
        let document = match request.parsed_query() {
            Ok(document) => document,
            Err(error) => return Err((seen, with_code(error, "GRAPHQL_PARSE_FAILED"))),
        };
        let name = seen.operation_name.as_deref();
        if let Err(error) =
            limits::check_document(document, name, &env.registry, &seen.variables, &self.limits)
        {
            return Err((seen, refusal(error)));
        }
        let ty = operation_type(document, name);
        if over_get && ty == Some(OperationType::Mutation) {
            let error = ServerError::new(
                "mutations are not allowed over GET; send them with POST",
                None,
            );
            return Err((seen, with_code(error, "METHOD_NOT_ALLOWED")));
        }
        if ty == Some(OperationType::Subscription) && subscription_root_fields(document, name) != 1
        {
            // GraphQL §5.2.3.1: one root field, so one source stream, one event at a time (the
            // loader of each event is the request's while that event resolves).
            let error = ServerError::new("a subscription selects exactly one root field", None);
            return Err((seen, with_code(error, "GRAPHQL_VALIDATION_FAILED")));
        }
        seen.document = Some(document.clone());
        // Kept rows serve queries only: a mutation's reads before its write would gain nothing.
        let rows = (ty == Some(OperationType::Query))
            .then(|| self.rows.clone())
            .flatten();
        let request = request.data(LoaderSlot::with_request_id(&self.store, request_id, rows));
        Ok((request, seen, ty))
    }

    /// Runs one request through `schema`.
    pub(crate) async fn execute(&self, schema: &PlangraphSchema, request: Request) -> Response {
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let (request, seen, ty) = match self.prepare(request).await {
            Ok(prepared) => prepared,
            Err((seen, error)) => return self.finished(&seen, Response::from_errors(vec![error])),
        };
        let response = self
            .in_slot(deadline, ty, async { Some(schema.execute(request).await) })
            .await;
        self.finished(&seen, response)
    }

    /// Runs one answer in an execution slot, within the request's budget: the wait for the
    /// slot, then a query's execution. A mutation that started executing is never cut short: a
    /// write committed behind a QUERY_TIMEOUT answer would be retried and done twice.
    async fn in_slot(
        &self,
        deadline: tokio::time::Instant,
        ty: Option<OperationType>,
        answer: impl Future<Output = Option<Response>>,
    ) -> Response {
        let Ok(slot) = tokio::time::timeout_at(deadline, self.slots.0.acquire()).await else {
            return Response::from_errors(vec![timed_out(&self.limits)]);
        };
        let response = if ty == Some(OperationType::Mutation) {
            answer.await
        } else {
            tokio::time::timeout_at(deadline, answer)
                .await
                .unwrap_or_else(|_| Some(Response::from_errors(vec![timed_out(&self.limits)])))
        };
        drop(slot);
        response.unwrap_or_else(|| {
            let error = ServerError::new("the operation ended without an answer", None);
            Response::from_errors(vec![with_code(error, "INTERNAL")])
        })
    }

    /// Runs one request as a stream of responses, each finished like an HTTP answer: a
    /// subscription's events (each resolving in a slot of its own, see `subscription.rs`), or
    /// the one answer of a query or mutation sent over a WebSocket, in a slot and within the
    /// budget as over HTTP.
    pub(crate) fn execute_stream(
        &self,
        schema: PlangraphSchema,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let pipeline = self.clone();
        let responses = stream::once(async move {
            let deadline = tokio::time::Instant::now() + pipeline.limits.timeout;
            let (request, seen, ty) = match pipeline.prepare(request).await {
                Ok(prepared) => prepared,
                Err((seen, error)) => {
                    let refused = pipeline.finished(&seen, Response::from_errors(vec![error]));
                    return stream::once(std::future::ready(refused)).boxed();
                }
            };
            let mut responses =
                schema.execute_stream_with_session_data(request, session.unwrap_or_default());
            if ty == Some(OperationType::Subscription) {
                return responses
                    .map(move |response| pipeline.finished(&seen, response))
                    .boxed();
            }
            let response = pipeline.in_slot(deadline, ty, responses.next()).await;
            stream::once(std::future::ready(pipeline.finished(&seen, response))).boxed()
        })
        .flatten()
        .boxed();
        detached(responses)
    }

    fn finished(&self, seen: &Seen, mut response: Response) -> Response {
        finish(seen, &self.limits, self.env.as_ref(), &mut response);
        response
    }
}

/// Runs `responses` in a task of its own, handing each response over once the caller asks.
///
/// A WebSocket's protocol machine polls its operations only while its socket makes progress; an
/// operation polled no more in the middle of a statement would keep its pooled connection (or a
/// mutation its write transaction) for as long as the socket stalls — a few stalled sockets
/// would take the whole pool. Here every statement runs to its end whatever the socket does: the
/// task waits only between responses, holding nothing, and ends when the caller drops the
/// stream.
fn detached(mut responses: BoxStream<'static, Response>) -> BoxStream<'static, Response> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = responses.next() => match next {
                    Some(response) => {
                        if sender.send(response).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                () = sender.closed() => return,
            }
        }
    });
    stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|response| (response, receiver))
    })
    .boxed()
}

/// A value the transport attached to the request (`Request::data`).
fn request_data<T: std::any::Any>(request: &Request) -> Option<&T> {
    request
        .data
        .get(&std::any::TypeId::of::<T>())
        .and_then(|d| d.downcast_ref::<T>())
}

/// The schema's registry, read once from a schema built by the same builder: async-graphql
/// shows it only to extensions, so a throwaway schema with a one-hook extension runs
/// `{ __typename }` once (no I/O; the hook runs on the first poll).
fn schema_env(builder: SchemaBuilder<Query, Mutation, Subscription>) -> Option<SchemaEnv> {
    struct Capture(Arc<Mutex<Option<SchemaEnv>>>);
    struct CaptureHook(Arc<Mutex<Option<SchemaEnv>>>);
    impl ExtensionFactory for Capture {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(CaptureHook(self.0.clone()))
        }
    }
    #[async_graphql::async_trait::async_trait]
    impl Extension for CaptureHook {
        async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
            *lock(&self.0) = Some(ctx.schema_env.clone());
            next.run(ctx).await
        }
    }
    let captured = Arc::new(Mutex::new(None));
    let schema = builder.extension(Capture(captured.clone())).finish();
    let _ = schema.execute("{ __typename }").now_or_never();
    lock(&captured).take()
}

/// A lock whose holder panicked still guards a whole value here (values are replaced whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
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
    let Some(Credentials::Bearer(secret)) = request_data::<Credentials>(request).cloned() else {
        return false;
    };
    matches!(store.actor_for_secret(&secret).await, Ok(Some(_)))
}

fn refusal(error: LimitError) -> ServerError {
    with_code(ServerError::new(error.message, None), error.code)
}

/// The last stage of every response: codes for request errors, errors bounded in number and
/// length, then selection order.
fn finish(seen: &Seen, limits: &QueryLimits, env: Option<&SchemaEnv>, response: &mut Response) {
    if response.errors.len() > limits.max_errors {
        let omitted = response.errors.len() - limits.max_errors;
        response.errors.truncate(limits.max_errors);
        response.errors.push(with_code(
            ServerError::new(format!("{omitted} more error(s) omitted"), None),
            "ERRORS_TRUNCATED",
        ));
    }
    for error in &mut response.errors {
        let internal = error
            .extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == Value::from("INTERNAL"));
        if internal && !seen.request_id.is_empty() {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", seen.request_id.as_str());
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
    // code; errors before execution (validation, an unknown operation name) come without data.
    if response.data == Value::Null {
        for error in &mut response.errors {
            *error = with_code(
                std::mem::replace(error, ServerError::new("", None)),
                "GRAPHQL_VALIDATION_FAILED",
            );
        }
    }
    if let (Some(document), Some(env)) = (&seen.document, env) {
        let is_object_type = |name: &str| {
            matches!(
                env.registry.types.get(name),
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

#[cfg(test)]
mod tests {
    use super::schema_env;
    use crate::{Profile, builder};

    #[test]
    fn the_registry_is_read_from_the_serving_builder() {
        let env = schema_env(builder(Profile::Production));
        assert!(env.is_some_and(|env| env.registry.types.contains_key("Report")));
    }
}
