//! The request pipeline: every entry point (HTTP POST and GET, each WebSocket operation,
//! federation look-ups) runs through it because [`crate::Api`], the only handle on the schema,
//! runs every request through it, not because a caller remembered to.
//!
//! Per request it
//! - measures the document's text (tokens, nesting, literal lengths) before anything parses it,
//!   and its variables; then parses it once and checks the rest of the limits on it
//!   ([`crate::limits`]), so an abusive document is refused in microseconds and runs no SQL;
//! - reads the store's version once, when anything kept can serve it ([`crate::kept`]): an
//!   anonymous query is answered from the kept answers at that version when it can be (one
//!   computes, the others wait), and a query's loaders read the kept rows at that version;
//! - attaches a `LoaderSlot`: the request's DataLoader (a subscription swaps in a loader of
//!   each event's own, see `LoaderSlot::set`), with the request's history budget;
//! - refuses a mutation that arrived over HTTP GET ([`Transport::HttpGet`]);
//! - holds an execution slot and the time budget while a query or mutation executes (over HTTP
//!   or a WebSocket), and runs each WebSocket operation in a task of its own;
//! - gives request errors (parse, validation, limits) their stable codes, bounds the answer's
//!   size, and puts every response, and every subscription event, in selection order;
//! - logs within a span that names the request's id, and counts it in the metrics.
//!
//! The checks before execution are `prepare.rs`'s; the finishing of answers `finish.rs`'s.

mod documents;
mod finish;
mod operation;
mod prepare;
mod slots;

use std::sync::Arc;

use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::stream::{self, BoxStream};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Request, Response, SchemaEnv, ServerError};
use bytes::Bytes;
use plangraph_persistence::{Store, Version};
use tracing::Instrument;

use crate::auth::Credentials;
use crate::kept::{AnswerKey, Computed, Kept};
use crate::limits::QueryLimits;
use crate::{PlangraphSchema, Profile};

pub use finish::new_request_id;
use finish::{Seen, record, store_failure, timed_out, with_code};
pub use operation::operation_type;
use operation::{reads_no_store, schema_env};
pub use slots::{EventSlot, ExecutionSlots};

/// How a request reached the schema, attached by the transport as request data: a metrics
/// label, and a rule (GraphQL over HTTP forbids mutations over GET: a GET must be safe to
/// repeat and to prefetch). A request without one came from inside the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    HttpGet,
    HttpPost,
    WebSocket,
}

impl Transport {
    fn label(transport: Option<&Self>) -> &'static str {
        match transport {
            Some(Self::HttpGet) => "http_get",
            Some(Self::HttpPost) => "http_post",
            Some(Self::WebSocket) => "websocket",
            None => "in_process",
        }
    }
}

/// The id the transport gave the request (its log span names it, and so does the masked error
/// of a store failure); a request without one gets a fresh id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// An answer, as the transports write it.
#[derive(Debug)]
pub enum Answer {
    /// An anonymous query's answer as written JSON, given from the kept answers
    /// (`fresh: false`) or computed now (`fresh: true`); it has no errors.
    Written { body: Bytes, fresh: bool },
    /// Any other answer.
    Response(Response),
}

impl Answer {
    /// The answer as a response (a written one read back: rare, for WebSocket operations and
    /// in-process callers).
    pub fn into_response(self) -> Response {
        match self {
            Self::Response(response) => response,
            Self::Written { body, .. } => serde_json::from_slice(&body).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a kept answer could not be read back");
                Response::from_errors(vec![with_code(
                    ServerError::new("internal error", None),
                    "INTERNAL",
                )])
            }),
        }
    }
}

/// A request that passed the checks, ready to run.
struct Prepared {
    request: Request,
    seen: Seen,
    /// The store the request's loaders read through: a query's holds one connection for its
    /// reads (`Store::with_session`), given back as soon as it has executed.
    reads: Store,
}

/// Ends a query's session (gives its connection back) when dropped: once the query has
/// executed, or when it is cut short (its time budget, its client gone), so the batches it left
/// behind do not keep running on the connection.
struct EndsSession(Store);

impl Drop for EndsSession {
    fn drop(&mut self) {
        self.0.end_session();
    }
}

/// A request past its first stage, with the key its answer may be kept under.
struct Ready {
    prepared: Prepared,
    key: Option<AnswerKey>,
    version: Option<Version>,
    transport: Option<Transport>,
}

/// A request refused before it ran, and its answer (boxed: it is the rare path).
type Refused = Box<(Seen, Response)>;

/// What the first stage gave.
enum Started {
    Done(Box<Answer>),
    Ready(Box<Ready>),
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
    kept: Arc<Kept>,
    documents: documents::Documents,
}

impl Pipeline {
    /// The pipeline around a schema from [`crate::builder`] for `profile`: its registry, its
    /// execution slots (also schema data, for subscription events) and what it keeps.
    pub(crate) fn new(store: Store, limits: QueryLimits, profile: Profile) -> Self {
        Self {
            env: schema_env(crate::builder(profile)),
            store,
            limits,
            profile,
            slots: ExecutionSlots::new(
                limits.max_concurrent,
                limits.max_concurrent_events,
                limits.replay_events_per_second,
            ),
            kept: Arc::new(Kept::new(
                limits.response_cache_bytes,
                limits.row_cache_bytes,
            )),
            documents: documents::Documents::new(),
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

    pub(crate) fn kept(&self) -> &Arc<Kept> {
        &self.kept
    }

    /// Runs one request (a query or mutation) through `schema`; `session` is a WebSocket's
    /// data (its credentials and subscription quota).
    pub(crate) async fn answer(
        &self,
        schema: &PlangraphSchema,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> Answer {
        let (seen, span) = self.seen(&request);
        async {
            // Boxed: the stages' futures are large (async-graphql's execution inside), and
            // a debug build would otherwise build them on a worker's stack.
            match Box::pin(self.start(request, session.as_deref(), seen)).await {
                Started::Done(answer) => *answer,
                Started::Ready(ready) => {
                    Box::pin(self.complete(schema, ready, session.as_deref())).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// What the last stage will need, and the span the request's log lines go in.
    fn seen(&self, request: &Request) -> (Seen, tracing::Span) {
        let request_id =
            request_data::<RequestId>(request).map_or_else(new_request_id, |id| id.0.clone());
        let span = tracing::info_span!("request", id = %request_id);
        let transport = Transport::label(request_data::<Transport>(request));
        let seen = Seen::new(
            request_id,
            transport,
            request.operation_name.clone(),
            Default::default(),
        );
        (seen, span)
    }

    /// The first stage: an answer kept for this request, or the request checked and ready.
    async fn start(&self, request: Request, session: Option<&Data>, mut seen: Seen) -> Started {
        // An anonymous request may be answered from what was kept for the same text at the
        // store's current version: kept answers were computed from this very text, so it
        // passed every check then, and had no errors.
        let anonymous = credentials(&request, session) == Credentials::None;
        let mut version = None;
        let mut key = None;
        // The one look-up of the document's kept parse: it tells whether the query reads the
        // store at all, and `prepare` uses it instead of parsing.
        let kept_parse = self.documents.get(&request.query).await;
        let reads_store = !kept_parse
            .as_deref()
            .is_some_and(|doc| reads_no_store(doc, request.operation_name.as_deref()));
        if anonymous && self.kept.keeps_answers() && reads_store {
            match self.version().await {
                Ok(v) => version = Some(v),
                Err(response) => {
                    return Started::Done(Box::new(Answer::Response(
                        self.finished(&seen, response),
                    )));
                }
            }
            let answer_key = AnswerKey {
                version: version.unwrap_or_default(),
                query: request.query.clone(),
                operation_name: request.operation_name.clone(),
                variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            };
            if let Some(body) = self.kept.kept_answer(&answer_key).await {
                seen.ty = Some(OperationType::Query);
                record(&seen, &Response::new(async_graphql::Value::Null));
                return Started::Done(Box::new(Answer::Written { body, fresh: false }));
            }
            key = Some(answer_key);
        }
        let transport = request_data::<Transport>(&request).copied();
        match self
            .prepare(request, session, seen, version, kept_parse)
            .await
        {
            Ok(prepared) => Started::Ready(Box::new(Ready {
                prepared,
                key,
                version,
                transport,
            })),
            Err(refused) => {
                let (seen, response) = *refused;
                Started::Done(Box::new(Answer::Response(self.finished(&seen, response))))
            }
        }
    }

    /// The last stage of a query or mutation: run it, or, for an anonymous query, take the
    /// answer another request is computing for the same key (one computes, the others wait,
    /// within their own budget).
    async fn complete(
        &self,
        schema: &PlangraphSchema,
        ready: Box<Ready>,
        session: Option<&Data>,
    ) -> Answer {
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let Ready {
            prepared,
            key,
            version,
            transport,
        } = *ready;
        let Some(key) = key.filter(|_| prepared.seen.ty == Some(OperationType::Query)) else {
            return Answer::Response(self.run(schema, prepared, deadline).await);
        };
        // What this request is, should it have to run again after waiting for another.
        let again = (
            prepared.seen.request_id.clone(),
            prepared.seen.transport,
            key.query.clone(),
            key.operation_name.clone(),
            prepared.seen.variables.clone(),
        );
        let computed = tokio::time::timeout_at(
            deadline,
            Box::pin(self.kept.answer(key, async {
                let response = self.run(schema, prepared, deadline).await;
                if !response.errors.is_empty() {
                    return Err(response);
                }
                serde_json::to_vec(&response)
                    .map(Bytes::from)
                    .map_err(|_| response)
            })),
        )
        .await;
        let (request_id, label, query, operation_name, variables) = again;
        match computed {
            Ok(Computed::Written { body, fresh }) => Answer::Written { body, fresh },
            Ok(Computed::NotKept(response)) => Answer::Response(response),
            Ok(Computed::Waited) => {
                // Another request computed it and could not keep it: this one runs its own.
                let kept_parse = self.documents.get(&query).await;
                let mut request = Request::new(query).variables(variables);
                request.operation_name = operation_name.clone();
                if let Some(transport) = transport {
                    request = request.data(transport);
                }
                let seen = Seen::new(request_id, label, operation_name, Default::default());
                match self
                    .prepare(request, session, seen, version, kept_parse)
                    .await
                {
                    Ok(prepared) => Answer::Response(self.run(schema, prepared, deadline).await),
                    Err(refused) => {
                        let (seen, response) = *refused;
                        Answer::Response(self.finished(&seen, response))
                    }
                }
            }
            Err(_) => {
                let seen = Seen::new(request_id, label, operation_name, Default::default());
                let response = Response::from_errors(vec![timed_out(&self.limits)]);
                Answer::Response(self.finished(&seen, response))
            }
        }
    }

    /// The store's version for this request, read once (shared with the requests arriving at
    /// the same time: `Store::fresh_version`); a newer one drops what was kept before it.
    async fn version(&self) -> Result<Version, Response> {
        match self.store.fresh_version().await {
            Ok(version) => {
                self.kept.observe(version);
                Ok(version)
            }
            // The store is failing: answered as an executing request's failure is, at once
            // (executing would wait out the connection timeout a second time).
            Err(err) => Err(store_failure(&err)),
        }
    }

    /// Runs a prepared query or mutation in an execution slot, within the request's budget.
    async fn run(
        &self,
        schema: &PlangraphSchema,
        prepared: Prepared,
        deadline: tokio::time::Instant,
    ) -> Response {
        let Prepared {
            request,
            seen,
            reads,
        } = prepared;
        let ends = EndsSession(reads);
        let response = self
            .in_slot(deadline, seen.ty, async move {
                let response = Box::pin(schema.execute(request)).await;
                // The connection goes back before the answer is finished and written.
                drop(ends);
                Some(response)
            })
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
        let Ok(slot) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
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
    /// the one answer of a query or mutation sent over a WebSocket, as over HTTP (kept answers,
    /// slots, budget).
    pub(crate) fn execute_stream(
        &self,
        schema: PlangraphSchema,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let pipeline = self.clone();
        let request = if request_data::<Transport>(&request).is_none() {
            request.data(Transport::WebSocket)
        } else {
            request
        };
        let (seen, span) = self.seen(&request);
        let responses = stream::once(
            async move {
                let ready = match Box::pin(pipeline.start(request, session.as_deref(), seen)).await
                {
                    Started::Done(answer) => {
                        return stream::once(std::future::ready(answer.into_response())).boxed();
                    }
                    Started::Ready(ready) => ready,
                };
                if ready.prepared.seen.ty != Some(OperationType::Subscription) {
                    if let Some(listening) =
                        request_data::<crate::Listening>(&ready.prepared.request)
                    {
                        listening.not_a_subscription();
                    }
                    let answer =
                        Box::pin(pipeline.complete(&schema, ready, session.as_deref())).await;
                    return stream::once(std::future::ready(answer.into_response())).boxed();
                }
                let Prepared { request, seen, .. } = ready.prepared;
                schema
                    .execute_stream_with_session_data(request, session.unwrap_or_default())
                    .map(move |response| pipeline.finished(&seen, response))
                    .boxed()
            }
            .instrument(span),
        )
        .flatten()
        .boxed();
        detached(responses)
    }

    fn finished(&self, seen: &Seen, mut response: Response) -> Response {
        finish::finish(seen, &self.limits, self.env.as_ref(), &mut response);
        record(seen, &response);
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

/// What the client presented: in the request (HTTP) or in the socket's session (WebSocket).
fn credentials(request: &Request, session: Option<&Data>) -> Credentials {
    request_data::<Credentials>(request)
        .or_else(|| {
            session.and_then(|data| {
                data.get(&std::any::TypeId::of::<Credentials>())
                    .and_then(|d| d.downcast_ref::<Credentials>())
            })
        })
        .cloned()
        .unwrap_or_default()
}

/// The answer to a request the store failed before it could execute, with a request id.
pub fn store_failure_response(err: &plangraph_persistence::StoreError) -> Response {
    let mut response = store_failure(err);
    let id = new_request_id();
    for error in &mut response.errors {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("requestId", id.as_str());
    }
    response
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
