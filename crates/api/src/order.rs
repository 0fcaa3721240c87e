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

/// Re-orders `data` to follow `doc`'s operation (`operation_name`, or the only one). Leaves
/// `data` alone when the document names no operation it holds.
pub fn in_selection_order(
    data: &mut Value,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(op) = operation {
        reorder(doc, &[&op.node.selection_set.node], data);
    }
}

/// The keys of every object at one place in the response, with the selections under each.
type Keys<'a> = Vec<(&'a str, Vec<&'a SelectionSet>)>;

/// The response keys a selection set produces, in order, each with the sub-selections merged
/// under it.
fn response_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    depth: usize,
    keys: &mut Keys<'a>,
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

/// Orders the object(s) at one place of the response. The keys are worked out once per place,
/// not once per row of a list.
fn reorder<'a>(doc: &'a ExecutableDocument, sets: &[&'a SelectionSet], value: &mut Value) {
    if !matches!(value, Value::Object(_) | Value::List(_)) {
        return;
    }
    let mut keys = Keys::new();
    for set in sets {
        response_keys(doc, set, 0, &mut keys);
    }
    apply(doc, &keys, value);
}

fn apply<'a>(doc: &'a ExecutableDocument, keys: &Keys<'a>, value: &mut Value) {
    match value {
        Value::List(items) => {
            for item in items {
                apply(doc, keys, item);
            }
        }
        Value::Object(map) => {
            let mut unordered = std::mem::take(map);
            for (key, subs) in keys {
                if let Some((name, mut child)) = unordered.shift_remove_entry(*key) {
                    reorder(doc, subs, &mut child);
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

    fn order(data: &mut Value, query: &str, operation: Option<&str>) {
        match async_graphql::parser::parse_query(query) {
            Ok(doc) => in_selection_order(data, &doc, operation),
            Err(e) => panic!("test query does not parse: {e}"),
        }
    }

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
        order(
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
        order(&mut data, "query X { b a } query Y { a b }", Some("Y"));
        assert_eq!(keys(&data), vec!["a", "b"]);
    }
}
