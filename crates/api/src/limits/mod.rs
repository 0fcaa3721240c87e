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
//! | `QUERY_TOO_DEEP` | nesting of fields, fragments included (12) |
//! | `QUERY_TOO_COMPLEX` | fields to resolve, each list's fields counted once per item it may hold (100,000; the full nested dashboard query counts 54,656) |
//! | `TOO_MANY_ALIASES` | aliased fields in the document (50) |
//! | `TOO_MANY_ROOT_FIELDS` | fields at the operation's root, fragments included (20) |
//! | `TOO_MANY_DIRECTIVES` | directives in the document (50) |
//! | `TOO_MANY_FRAGMENT_SPREADS` | fragment spreads in the document (100) |
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
    /// Keys of loaded rows kept per store revision for queries (see [`crate::row_cache`]); 0,
    /// the library's default, keeps none (`plangraph serve` keeps
    /// [`crate::row_cache::DEFAULT_ROW_CACHE_KEYS`]).
    pub row_cache_keys: usize,
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
            max_errors: 50,
            max_error_message: 1_000,
            timeout: Duration::from_secs(10),
            max_concurrent: default_concurrency(),
            row_cache_keys: 0,
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

/// Counts lexical tokens (names, numbers, strings, punctuators), stopping past `max`: refuses a
/// document before it is even parsed.
pub fn check_tokens(query: &str, max: usize) -> Result<(), LimitError> {
    let bytes = query.as_bytes();
    let mut count = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            // A byte-order mark.
            0xEF if bytes.get(i..i + 3) == Some(&[0xEF, 0xBB, 0xBF]) => i += 3,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                count += 1;
                if bytes.get(i..i + 3) == Some(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && bytes.get(i..i + 3) != Some(b"\"\"\"") {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'.' if bytes.get(i..i + 3) == Some(b"...") => {
                count += 1;
                i += 3;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                count += 1;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            _ => {
                count += 1;
                i += 1;
            }
        }
        if count > max {
            return Err(LimitError::new(
                "TOO_MANY_TOKENS",
                format!("the document has more than {max} tokens"),
            ));
        }
    }
    Ok(())
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
    /// The `first` argument of a paged field, from a literal or a variable.
    fn first(&self, field: &async_graphql::parser::types::Field) -> Option<u64> {
        let (_, value) = field.arguments.iter().find(|(n, _)| n.node == "first")?;
        let value = value
            .node
            .clone()
            .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()));
        match value {
            Ok(Value::Number(n)) => n.as_u64(),
            _ => None,
        }
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
                    let multiplier = match (self.first(field), meta) {
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
                    let sub = if field.selection_set.node.items.is_empty() {
                        Cost::default()
                    } else {
                        self.set(
                            &field.selection_set.node,
                            child_type.unwrap_or(""),
                            level + 1,
                        )?
                    };
                    cost.add(Cost {
                        depth: sub.depth + 1,
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

/// Checks a parsed document against every limit but tokens; linear in its size.
pub fn check_document(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    registry: &Registry,
    variables: &Variables,
    limits: &QueryLimits,
) -> Result<(), LimitError> {
    let mut aliases = 0usize;
    let mut directives = 0usize;
    let mut spreads = 0usize;
    let mut sets: Vec<&SelectionSet> = Vec::new();
    let operations: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    for op in &operations {
        directives += op.node.directives.len();
        sets.push(&op.node.selection_set.node);
    }
    for fragment in doc.fragments.values() {
        directives += fragment.node.directives.len();
        sets.push(&fragment.node.selection_set.node);
    }
    for set in sets {
        let mut stack = vec![set];
        while let Some(set) = stack.pop() {
            for item in &set.items {
                match &item.node {
                    Selection::Field(f) => {
                        aliases += usize::from(f.node.alias.is_some());
                        directives += f.node.directives.len();
                        stack.push(&f.node.selection_set.node);
                    }
                    Selection::InlineFragment(i) => {
                        directives += i.node.directives.len();
                        stack.push(&i.node.selection_set.node);
                    }
                    Selection::FragmentSpread(s) => {
                        spreads += 1;
                        directives += s.node.directives.len();
                    }
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_counted_past_strings_comments_and_spreads() {
        // { a b ( c : "x y z" ) ... F }: 11 tokens; the comment is none.
        let query = "{ a b(c: \"x y z\") ...F } # a comment with words";
        assert!(check_tokens(query, 11).is_ok());
        assert!(check_tokens(query, 10).is_err());
        assert_eq!(
            check_tokens("{ a b c d }", 5).map_err(|e| e.code),
            Err("TOO_MANY_TOKENS")
        );
        let block = format!("{{ a(s: \"\"\"{}\"\"\") }}", "w ".repeat(1000));
        assert!(check_tokens(&block, 10).is_ok());
    }
}
