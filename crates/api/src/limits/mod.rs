//! Limits on what a document may ask for, checked before it is validated or executed, at a cost
//! linear in the document's size.
//!
//! async-graphql's own depth and complexity checks walk the document with every fragment
//! expanded, so a 1 KB document whose fragments each spread the previous one twice costs 2^n
//! before it is refused (n = 29 held a worker for 105 s). Here each fragment is costed once and
//! its cost reused wherever it is spread, so the walk is linear and the refusal immediate; a
//! refused document runs no SQL. Each limit has its own stable code.
//!
//! | code | limit (default) |
//! |---|---|
//! | `TOO_MANY_TOKENS` | lexical tokens in the document (10,000) |
//! | `QUERY_TOO_DEEP` | nesting of fields, fragments included (12; a type reference's `ofType` adds none) |
//! | `QUERY_TOO_COMPLEX` | fields to resolve, each list's fields counted once per item it may hold (100,000; the full nested dashboard query counts 54,656) |
//! | `TOO_MANY_ALIASES` | aliased fields in the document (50) |
//! | `TOO_MANY_ROOT_FIELDS` | fields at the operation's root, fragments included (20) |
//! | `TOO_MANY_DIRECTIVES` | directives in the document (50) |
//! | `TOO_MANY_FRAGMENT_SPREADS` | fragment spreads in the document (100) |
//! | `VALUE_TOO_DEEP` | nesting of lists and input objects (and list types), in the document and in the variables (32) |
//! | `VALUE_TOO_LONG` | a string (4 MiB, the report cap: `importReport` carries a report's text) or a number (64 characters) |
//! | `TOO_MANY_VALUES` | values in the variables, each list, object and member counted (20,000); counted in the JSON text before it is parsed ([`json`]) as well as after |
//! | `TOO_MANY_REPRESENTATIONS` | representations one `_entities` call resolves (1,000); each is counted in complexity as the item it is |
//! | `GRAPHQL_VALIDATION_FAILED` | a directive the schema does not define (`@zzz`), refused here because async-graphql runs it |
//!
//! The first four checks run on the text before it is parsed ([`lexical`]), the rest on the
//! parsed document and its variables ([`values`]), each in one pass.
//!
//! Complexity counts a list field's selection once per item it may hold: the `first` argument
//! of a paged field (default [`crate::DEFAULT_PAGE`]), the size of the reference tables where the
//! list is one (17 countries, 13 sectors), and [`DEFAULT_LIST_SIZE`] otherwise.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Name;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Value, Variables};

pub mod json;
pub mod lexical;
pub mod values;

pub use json::check as check_json;
pub use lexical::check as check_text;
pub use values::check_variables;

/// Every code a limit refuses a request with, before anything runs: such an answer has no
/// `data` (GraphQL over HTTP answers it with a 400 for `application/graphql-response+json`).
pub const CODES: &[&str] = &[
    "TOO_MANY_TOKENS",
    "QUERY_TOO_DEEP",
    "QUERY_TOO_COMPLEX",
    "TOO_MANY_ALIASES",
    "TOO_MANY_ROOT_FIELDS",
    "TOO_MANY_DIRECTIVES",
    "TOO_MANY_FRAGMENT_SPREADS",
    "VALUE_TOO_DEEP",
    "VALUE_TOO_LONG",
    "TOO_MANY_VALUES",
    "TOO_MANY_REPRESENTATIONS",
];

/// Replayed events a second, process-wide, in bursts of a tenth of that: a client catching up on
/// a thousand changes waits about a tenth of a second; a crowd replaying the whole history
/// together is held to the rate (`bench/abuse.py`, attack 8: 200 sockets replaying 4,302
/// changes each took the dashboard query's p99 to 9.6× of alone unpaced, 2.4× paced).
pub const DEFAULT_REPLAY_EVENTS_PER_SECOND: u32 = 5_000;

/// Items a list field is assumed to hold when nothing better is known.
pub const DEFAULT_LIST_SIZE: u64 = 10;

/// The limits, all configurable; [`QueryLimits::default`] is the safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_tokens: usize,
    pub max_depth: u64,
    pub max_complexity: u64,
    pub max_aliases: usize,
    pub max_root_fields: u64,
    pub max_directives: usize,
    pub max_fragment_spreads: usize,
    /// Nesting of lists and input objects (and list types) in the document and the variables.
    pub max_value_depth: u64,
    /// Longest string in the document or the variables, in bytes: a report's text, which
    /// `importReport` carries, is the longest any request needs.
    pub max_string_bytes: usize,
    /// Values in a request's variables (each list, object and member counted): a wide tree
    /// costs hundreds of bytes a value to build, whatever its text cost to send.
    pub max_input_values: usize,
    /// Representations one `_entities` call may resolve.
    pub max_representations: usize,
    /// Largest answer, as written (JSON); a larger one is answered with `RESPONSE_TOO_LARGE`.
    pub max_response_bytes: usize,
    /// Errors returned per response; the rest are summarised in one more.
    pub max_errors: usize,
    /// Longest error message returned (a parse error may quote the document).
    pub max_error_message: usize,
    /// How long a request may wait for an execution slot and a query run before it is answered
    /// with `QUERY_TIMEOUT`; a mutation that started executing is never cut short.
    pub timeout: Duration,
    /// Queries and mutations executing at once in this process; the rest wait their turn, in
    /// arrival order. More than a few per core only adds memory (each holds its answer while
    /// it builds) and latency, not throughput.
    pub max_concurrent: usize,
    /// How many of those slots subscription events may hold at once (0: half of them): a
    /// crowd of replays or subscribers waits its turn in this share, and queries always find
    /// the rest free.
    pub max_concurrent_events: usize,
    /// Replayed subscription events (`afterRevision`: changes committed before the
    /// subscription began) delivered per second by the whole process; 0 leaves them unpaced.
    /// Live events are never paced.
    pub replay_events_per_second: u32,
    /// Bytes of answers kept for repeated anonymous queries (see [`crate::kept`]); 0, the
    /// library's default, keeps none.
    pub response_cache_bytes: usize,
    /// Bytes of loaded rows kept for queries (see [`crate::kept`]); 0, the library's default,
    /// keeps none.
    pub row_cache_bytes: usize,
    /// Bytes of recorded history one request may read (every `history` page of the request
    /// together); pages past it come back cut short, with `hasNextPage`.
    pub history_bytes_per_request: usize,
    /// Answer the federation SDL (`{ _service { sdl } }`) only to callers with a valid token
    /// (`UNAUTHENTICATED` otherwise). Off by default: gateways fetch it anonymously.
    pub service_sdl_needs_token: bool,
}

/// The default number of execution slots: four per core, at least eight.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .saturating_mul(4)
        .max(8)
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_tokens: 10_000,
            max_depth: 12,
            max_complexity: 100_000,
            max_aliases: 50,
            max_root_fields: 20,
            max_directives: 50,
            max_fragment_spreads: 100,
            max_value_depth: 32,
            max_string_bytes: plangraph_domain::importer::DEFAULT_MAX_REPORT_BYTES,
            max_input_values: 20_000,
            max_representations: 1_000,
            max_response_bytes: 16 * 1024 * 1024,
            max_errors: 50,
            max_error_message: 1_000,
            timeout: Duration::from_secs(10),
            max_concurrent: default_concurrency(),
            max_concurrent_events: 0,
            replay_events_per_second: DEFAULT_REPLAY_EVENTS_PER_SECOND,
            response_cache_bytes: 0,
            row_cache_bytes: 0,
            history_bytes_per_request: 16 * 1024 * 1024,
            service_sdl_needs_token: false,
        }
    }
}

/// A document over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub code: &'static str,
    pub message: String,
}

impl LimitError {
    fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }
}

/// The GraphQL error a refusal is answered with, its code in `extensions.code` (every
/// transport answers limits the same way).
impl From<LimitError> for async_graphql::ServerError {
    fn from(error: LimitError) -> Self {
        let mut refused = Self::new(error.message, None);
        refused
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", error.code);
        refused
    }
}

/// What a selection set costs: how deep it goes, how many fields it resolves, how many of them
/// at its own level.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    depth: u64,
    complexity: u64,
    fields: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.depth = self.depth.max(other.depth);
        self.complexity = self.complexity.saturating_add(other.complexity);
        self.fields = self.fields.saturating_add(other.fields);
    }
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    registry: &'a Registry,
    variables: &'a Variables,
    limits: &'a QueryLimits,
    /// Each fragment's cost, computed once (`None` while it is being computed: a cycle).
    fragments: HashMap<&'a Name, Option<Cost>>,
}

/// Items a list field may hold, for complexity.
fn list_size(parent: &str, field: &str) -> u64 {
    match (parent, field) {
        ("Query", "countries") => 17,
        ("Query", "sectors") => 13,
        ("Report", "sectors") => 13,
        ("Sector", "subSectors") => 3,
        ("Report", "sections") => 3,
        ("Report", "ageGender") => 4,
        ("Report", "populationTypes") => 3,
        ("Report", "partnerCounts") => 4,
        _ => DEFAULT_LIST_SIZE,
    }
}

fn is_list(type_name: &str) -> bool {
    match MetaTypeName::create(type_name) {
        MetaTypeName::List(_) => true,
        MetaTypeName::NonNull(inner) => is_list(inner),
        MetaTypeName::Named(_) => false,
    }
}

impl<'a> Walk<'a> {
    /// An argument's value, from a literal or a variable.
    fn argument(&self, field: &async_graphql::parser::types::Field, name: &str) -> Option<Value> {
        let (_, value) = field.arguments.iter().find(|(n, _)| n.node == name)?;
        value
            .node
            .clone()
            .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
            .ok()
    }

    /// The `first` argument of a paged field, from a literal or a variable.
    fn first(&self, field: &async_graphql::parser::types::Field) -> Option<u64> {
        match self.argument(field, "first") {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        }
    }

    /// How many representations an `_entities` field resolves: each is an item of the answer,
    /// counted in complexity as such, and there may be at most
    /// [`QueryLimits::max_representations`].
    fn representations(
        &self,
        field: &async_graphql::parser::types::Field,
    ) -> Result<u64, LimitError> {
        let count = match self.argument(field, "representations") {
            Some(Value::List(items)) => items.len(),
            _ => 1,
        };
        if count > self.limits.max_representations {
            return Err(LimitError::new(
                "TOO_MANY_REPRESENTATIONS",
                format!(
                    "_entities was given {count} representations, over the limit of {}; send them in smaller batches",
                    self.limits.max_representations
                ),
            ));
        }
        Ok(count as u64)
    }

    fn set(&mut self, set: &'a SelectionSet, parent: &str, level: u64) -> Result<Cost, LimitError> {
        let mut cost = Cost::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let meta = self
                        .registry
                        .types
                        .get(parent)
                        .and_then(|t| t.field_by_name(name));
                    let child_type = meta.map(|m| MetaTypeName::concrete_typename(&m.ty));
                    let entities = name == "_entities" && level == 0;
                    let multiplier = match (self.first(field), meta) {
                        _ if entities => self.representations(field)?,
                        (Some(first), _) => first.max(1),
                        // A connection's edges are counted by its `first`.
                        _ if parent.ends_with("Connection") => 1,
                        (None, Some(m)) if is_list(&m.ty) => list_size(parent, name),
                        (None, Some(m))
                            if m.args.contains_key("first") && m.args.contains_key("after") =>
                        {
                            crate::DEFAULT_PAGE as u64
                        }
                        _ => 1,
                    };
                    // A type reference's `ofType` only unwraps a list or a non-null: the chain
                    // is as long as the schema wraps its types (then `null`), so it adds no
                    // depth. The standard introspection query (GraphiQL's) nests it seven deep.
                    let unwraps = parent == "__Type" && name == "ofType";
                    let sub = if field.selection_set.node.items.is_empty() {
                        Cost::default()
                    } else {
                        self.set(
                            &field.selection_set.node,
                            child_type.unwrap_or(""),
                            if unwraps { level } else { level + 1 },
                        )?
                    };
                    cost.add(Cost {
                        depth: sub.depth + u64::from(!unwraps),
                        complexity: multiplier.saturating_mul(sub.complexity).saturating_add(1),
                        fields: 1,
                    });
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = inline
                        .type_condition
                        .as_ref()
                        .map_or(parent, |c| c.node.on.node.as_str());
                    let sub = self.set(&inline.selection_set.node, on, level)?;
                    cost.add(sub);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let sub = match self.fragments.get(name) {
                        Some(Some(known)) => *known,
                        Some(None) => {
                            return Err(LimitError::new(
                                "GRAPHQL_VALIDATION_FAILED",
                                format!("the fragment {name} spreads itself"),
                            ));
                        }
                        None => {
                            let Some((key, fragment)) = self.doc.fragments.get_key_value(name)
                            else {
                                // Unknown fragments are validation's to report.
                                continue;
                            };
                            self.fragments.insert(key, None);
                            let on = fragment.node.type_condition.node.on.node.as_str();
                            let known = self.set(&fragment.node.selection_set.node, on, level)?;
                            self.fragments.insert(key, Some(known));
                            known
                        }
                    };
                    cost.add(sub);
                }
            }
            if cost.complexity > self.limits.max_complexity {
                return Err(LimitError::new(
                    "QUERY_TOO_COMPLEX",
                    format!(
                        "the query would resolve more than {} fields (lists counted by the items they may hold)",
                        self.limits.max_complexity
                    ),
                ));
            }
            if level.saturating_add(cost.depth) > self.limits.max_depth {
                return Err(LimitError::new(
                    "QUERY_TOO_DEEP",
                    format!(
                        "the query nests deeper than {} levels",
                        self.limits.max_depth
                    ),
                ));
            }
        }
        Ok(cost)
    }
}

/// Directives of the document: how many, and the first the schema does not define.
#[derive(Default)]
struct Directives<'a> {
    count: usize,
    unknown: Option<&'a str>,
}

impl<'a> Directives<'a> {
    fn note(
        &mut self,
        list: &'a [async_graphql::Positioned<async_graphql::parser::types::Directive>],
        registry: &Registry,
    ) {
        self.count += list.len();
        if self.unknown.is_none() {
            self.unknown = list
                .iter()
                .map(|d| d.node.name.node.as_str())
                .find(|name| !registry.directives.contains_key(*name));
        }
    }
}

/// Checks a parsed document against every limit but those of its text ([`lexical`]); linear in
/// its size.
pub fn check_document(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    registry: &Registry,
    variables: &Variables,
    limits: &QueryLimits,
) -> Result<(), LimitError> {
    let mut aliases = 0usize;
    let mut directives = Directives::default();
    let mut spreads = 0usize;
    let mut sets: Vec<&SelectionSet> = Vec::new();
    let operations: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    for op in &operations {
        directives.note(&op.node.directives, registry);
        for variable in &op.node.variable_definitions {
            directives.note(&variable.node.directives, registry);
        }
        sets.push(&op.node.selection_set.node);
    }
    for fragment in doc.fragments.values() {
        directives.note(&fragment.node.directives, registry);
        sets.push(&fragment.node.selection_set.node);
    }
    for set in sets {
        let mut stack = vec![set];
        while let Some(set) = stack.pop() {
            for item in &set.items {
                match &item.node {
                    Selection::Field(f) => {
                        aliases += usize::from(f.node.alias.is_some());
                        directives.note(&f.node.directives, registry);
                        stack.push(&f.node.selection_set.node);
                    }
                    Selection::InlineFragment(i) => {
                        directives.note(&i.node.directives, registry);
                        stack.push(&i.node.selection_set.node);
                    }
                    Selection::FragmentSpread(s) => {
                        spreads += 1;
                        directives.note(&s.node.directives, registry);
                    }
                }
            }
        }
    }
    // GraphQL §5.7.1: directives are defined. async-graphql 7.2 does not check it (it runs
    // `{ __typename @zzz }`), so it is checked here.
    if let Some(name) = directives.unknown {
        return Err(LimitError::new(
            "GRAPHQL_VALIDATION_FAILED",
            format!(
                "unknown directive @{}",
                name.chars().take(64).collect::<String>()
            ),
        ));
    }
    let directives = directives.count;
    let over = |count: usize, max: usize, code: &'static str, what: &str| {
        if count > max {
            Err(LimitError::new(
                code,
                format!("the document has {count} {what}, over the limit of {max}"),
            ))
        } else {
            Ok(())
        }
    };
    over(aliases, limits.max_aliases, "TOO_MANY_ALIASES", "aliases")?;
    over(
        directives,
        limits.max_directives,
        "TOO_MANY_DIRECTIVES",
        "directives",
    )?;
    over(
        spreads,
        limits.max_fragment_spreads,
        "TOO_MANY_FRAGMENT_SPREADS",
        "fragment spreads",
    )?;

    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    // No operation to run is validation's to report.
    let Some(operation) = operation else {
        return Ok(());
    };
    use async_graphql::parser::types::OperationType;
    let root = match operation.node.ty {
        OperationType::Query => registry.query_type.as_str(),
        OperationType::Mutation => registry.mutation_type.as_deref().unwrap_or("Mutation"),
        OperationType::Subscription => registry
            .subscription_type
            .as_deref()
            .unwrap_or("Subscription"),
    };
    let mut walk = Walk {
        doc,
        registry,
        variables,
        limits,
        fragments: HashMap::new(),
    };
    let cost = walk.set(&operation.node.selection_set.node, root, 0)?;
    if cost.fields > limits.max_root_fields {
        return Err(LimitError::new(
            "TOO_MANY_ROOT_FIELDS",
            format!(
                "the operation selects {} root fields, over the limit of {}",
                cost.fields, limits.max_root_fields
            ),
        ));
    }
    Ok(())
}
