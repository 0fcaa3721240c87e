//! What the pipeline reads off a document and the schema: the operation's type, a
//! subscription's root fields, whether it reads the store at all, and the schema's registry.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::Positioned;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::futures_util::FutureExt;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Response, SchemaBuilder, SchemaEnv};

use crate::{Mutation, Query, Subscription};

/// The schema's registry, read once from a schema built by the same builder: async-graphql
/// shows it only to extensions, so a throwaway schema with a one-hook extension runs
/// `{ __typename }` once (no I/O; the hook runs on the first poll).
pub(crate) fn schema_env(
    builder: SchemaBuilder<Query, Mutation, Subscription>,
) -> Option<SchemaEnv> {
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
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(ctx.schema_env.clone());
            next.run(ctx).await
        }
    }
    let captured = Arc::new(Mutex::new(None));
    let schema = builder.extension(Capture(captured.clone())).finish();
    let _ = schema.execute("{ __typename }").now_or_never();
    captured
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// The operation `name` selects in `doc` (the only one when `name` is `None`), as
/// async-graphql selects it.
fn operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op),
        // One anonymous operation cannot be selected by a name: async-graphql refuses it.
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The type of the operation `name` selects in `doc` (the only one when `name` is `None`).
pub fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    operation(doc, name).map(|op| op.node.ty)
}

/// Whether the operation selects `field` at its root (through fragments too).
pub(crate) fn selects_root_field(
    doc: &ExecutableDocument,
    name: Option<&str>,
    field: &str,
) -> bool {
    fn find(doc: &ExecutableDocument, set: &SelectionSet, field: &str, budget: usize) -> bool {
        budget > 0
            && set.items.iter().any(|item| match &item.node {
                Selection::Field(f) => f.node.name.node == field,
                Selection::InlineFragment(inline) => {
                    find(doc, &inline.node.selection_set.node, field, budget - 1)
                }
                Selection::FragmentSpread(spread) => doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|f| find(doc, &f.node.selection_set.node, field, budget - 1)),
            })
    }
    let operation = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => ops.values().next(),
    };
    operation.is_some_and(|op| {
        find(
            doc,
            &op.node.selection_set.node,
            field,
            doc.fragments.len() + 1,
        )
    })
}

/// Does the operation read nothing from the store? A query selecting only `__typename`,
/// introspection and the federation SDL at its root (directly, no fragments) answers the same
/// at every store version: it needs no version read and no kept answer.
pub(crate) fn reads_no_store(doc: &ExecutableDocument, name: Option<&str>) -> bool {
    operation(doc, name).is_some_and(|op| {
        op.node.ty == OperationType::Query
            && op
                .node
                .selection_set
                .node
                .items
                .iter()
                .all(|item| match &item.node {
                    Selection::Field(f) => matches!(
                        f.node.name.node.as_str(),
                        "__typename" | "__schema" | "__type" | "_service"
                    ),
                    _ => false,
                })
    })
}

/// The root fields a subscription operation selects, fragments included (a fragment nested
/// deeper than the document has fragments is a cycle, which validation refuses anyway).
pub(crate) fn subscription_root_fields(doc: &ExecutableDocument, name: Option<&str>) -> usize {
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
