//! Response fields in the order the query asked for them.
//!
//! async-graphql 7.2 resolves an object's fields concurrently and writes each as it finishes,
//! so `{ a b }` may come back as `{ "b", "a" }`. The GraphQL spec (§7.2.2) asks for selection
//! order, and dashboards lay out columns from it, so the response is re-ordered against the
//! executed operation's selection sets (fragments flattened, repeated keys merged).

use async_graphql::Value;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};

/// Fragments nest at most this deep; validation rejects cycles, this only bounds the walk.
const MAX_FRAGMENT_DEPTH: usize = 32;

/// Re-orders `data` to follow `query`'s operation (`operation_name`, or the only one).
/// Leaves `data` alone when the query does not parse or names no operation it holds.
pub fn in_selection_order(data: &mut Value, query: &str, operation_name: Option<&str>) {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return;
    };
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(op) = operation {
        reorder(&doc, &[&op.node.selection_set.node], data);
    }
}

/// The response keys a selection set produces, in order, each with the sub-selections merged
/// under it.
fn response_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    depth: usize,
    keys: &mut Vec<(&'a str, Vec<&'a SelectionSet>)>,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                let sub = &field.node.selection_set.node;
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subs)) => subs.push(sub),
                    None => keys.push((key, vec![sub])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    response_keys(doc, &fragment.node.selection_set.node, depth + 1, keys);
                }
            }
            Selection::InlineFragment(inline) => {
                response_keys(doc, &inline.node.selection_set.node, depth + 1, keys);
            }
        }
    }
}

fn reorder(doc: &ExecutableDocument, sets: &[&SelectionSet], value: &mut Value) {
    match value {
        Value::List(items) => {
            for item in items {
                reorder(doc, sets, item);
            }
        }
        Value::Object(map) => {
            let mut keys = Vec::new();
            for set in sets {
                response_keys(doc, set, 0, &mut keys);
            }
            let mut unordered = std::mem::take(map);
            for (key, subs) in keys {
                if let Some((name, mut child)) = unordered.shift_remove_entry(key) {
                    reorder(doc, &subs, &mut child);
                    map.insert(name, child);
                }
            }
            // Nothing should be left; if something is, keep it rather than drop data.
            map.extend(unordered);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Value};

    use super::in_selection_order;

    fn object(pairs: Vec<(&str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (Name::new(k), v)).collect())
    }

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map.keys().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn fields_follow_the_selection_through_aliases_fragments_and_lists() {
        let mut data = object(vec![
            (
                "list",
                Value::List(vec![object(vec![
                    ("z", Value::Null),
                    ("b", Value::Null),
                    ("a", Value::Null),
                ])]),
            ),
            ("first", Value::Null),
        ]);
        in_selection_order(
            &mut data,
            "query { first list { a ...F ... on T { z } } } fragment F on T { b }",
            None,
        );
        assert_eq!(keys(&data), vec!["first", "list"]);
        let Value::Object(map) = &data else { return };
        let Some(Value::List(items)) = map.get("list") else {
            panic!("list kept");
        };
        assert_eq!(keys(&items[0]), vec!["a", "b", "z"]);
    }

    #[test]
    fn the_named_operation_is_the_one_followed() {
        let mut data = object(vec![("b", Value::Null), ("a", Value::Null)]);
        in_selection_order(&mut data, "query X { b a } query Y { a b }", Some("Y"));
        assert_eq!(keys(&data), vec!["a", "b"]);
    }
}
