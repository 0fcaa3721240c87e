//! Response fields in the order the query asked for them.
//!
//! async-graphql 7.2 resolves an object's fields concurrently and writes each as it finishes,
//! so `{ a b }` may come back as `{ "b", "a" }`. The GraphQL spec (§7.2.2) asks for selection
//! order, and dashboards lay out columns from it, so the response is re-ordered against the
//! executed operation's selection sets (fragments flattened, repeated keys merged).
//!
//! Where a list holds objects of several types (the federation `_entities` list), each object
//! is ordered by the selections that apply to its own type: `... on Country { a b }` and
//! `... on Report { b a }` give `a b` for a country and `b a` for a report. An object's type is
//! its `__typename` when selected, else, in `_entities`, the `__typename` of the
//! representation at its place.

use std::collections::HashMap;
use std::rc::Rc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Value, Variables};

/// Fragments nest at most this deep; validation rejects cycles, this only bounds the walk.
const MAX_FRAGMENT_DEPTH: usize = 32;

/// What the ordering needs besides the response: the document, the variables, and which type
/// names are object types (a condition on anything else, an interface or a union, applies to
/// every object).
pub struct Ordering<'a> {
    pub doc: &'a ExecutableDocument,
    pub variables: &'a Variables,
    pub is_object_type: &'a dyn Fn(&str) -> bool,
}

/// Re-orders `data` to follow the operation (`operation_name`, or the only one). Leaves `data`
/// alone when the document names no operation it holds.
pub fn in_selection_order(data: &mut Value, ordering: &Ordering<'_>, operation_name: Option<&str>) {
    let doc = ordering.doc;
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(op) = operation {
        let root = [&op.node.selection_set.node];
        reorder(ordering, &mut Memo::new(), &root, data, None, true);
    }
}

/// One response key: the selection sets merged under it, and, for `_entities`, the type of the
/// object at each place of the list (from the representations).
struct Key<'a> {
    name: &'a str,
    subs: Vec<&'a SelectionSet>,
    entity_types: Option<Vec<Option<String>>>,
}

/// The types of the representations `_entities` was given, in order.
fn representation_types(
    field: &async_graphql::parser::types::Field,
    variables: &Variables,
) -> Option<Vec<Option<String>>> {
    let (_, value) = field
        .arguments
        .iter()
        .find(|(name, _)| name.node == "representations")?;
    let value = value
        .node
        .clone()
        .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
        .ok()?;
    let Value::List(items) = value else {
        return None;
    };
    Some(
        items
            .iter()
            .map(|item| match item {
                Value::Object(map) => match map.get("__typename") {
                    Some(Value::String(name)) => Some(name.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
    )
}

/// The response keys a selection set produces for an object of type `concrete` (any type when
/// unknown), in order, each with the sub-selections merged under it.
fn response_keys<'a>(
    ordering: &Ordering<'a>,
    set: &'a SelectionSet,
    concrete: Option<&str>,
    root: bool,
    depth: usize,
    keys: &mut Vec<Key<'a>>,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    // A condition on another object type does not apply to this object.
    let applies = |condition: &str| {
        concrete.is_none_or(|c| c == condition || !(ordering.is_object_type)(condition))
    };
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let key = field.response_key().node.as_str();
                let sub = &field.selection_set.node;
                match keys.iter_mut().find(|k| k.name == key) {
                    Some(existing) => existing.subs.push(sub),
                    None => keys.push(Key {
                        name: key,
                        subs: vec![sub],
                        entity_types: (root && field.name.node == "_entities")
                            .then(|| representation_types(field, ordering.variables))
                            .flatten(),
                    }),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = ordering.doc.fragments.get(&spread.node.fragment_name.node)
                    && applies(fragment.node.type_condition.node.on.node.as_str())
                {
                    response_keys(
                        ordering,
                        &fragment.node.selection_set.node,
                        concrete,
                        root,
                        depth + 1,
                        keys,
                    );
                }
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                let condition = inline
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str());
                if condition.is_none_or(applies) {
                    response_keys(
                        ordering,
                        &inline.selection_set.node,
                        concrete,
                        root,
                        depth + 1,
                        keys,
                    );
                }
            }
        }
    }
}

fn typename(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) => match map.get("__typename") {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// The keys worked out so far, by the selection sets they come from (their address: every
/// list of sets the walk passes is either the operation's root or a [`Key`]'s `subs`, and all
/// of those stay here until the walk ends, so an address never names two lists), whether they
/// are the root's, and the object type (`""` when unknown). A list of a thousand rows, or a
/// thousand rows each with an object under them, cost one computation of the keys, not one per
/// row.
type Memo<'a> = HashMap<(usize, usize, bool), HashMap<String, Rc<Vec<Key<'a>>>>>;

/// The keys at one place for objects of type `concrete`.
fn keys_for<'a>(
    ordering: &Ordering<'a>,
    memo: &mut Memo<'a>,
    sets: &[&'a SelectionSet],
    concrete: Option<&str>,
    root: bool,
) -> Rc<Vec<Key<'a>>> {
    let by_type = memo
        .entry((sets.as_ptr() as usize, sets.len(), root))
        .or_default();
    if let Some(keys) = by_type.get(concrete.unwrap_or("")) {
        return keys.clone();
    }
    let mut keys = Vec::new();
    for set in sets {
        response_keys(ordering, set, concrete, root, 0, &mut keys);
    }
    let keys = Rc::new(keys);
    by_type.insert(concrete.unwrap_or("").to_owned(), keys.clone());
    keys
}

/// Orders the object(s) at one place of the response.
fn reorder<'a>(
    ordering: &Ordering<'a>,
    memo: &mut Memo<'a>,
    sets: &[&'a SelectionSet],
    value: &mut Value,
    types: Option<&[Option<String>]>,
    root: bool,
) {
    match value {
        Value::List(items) => {
            // The keys of the item before, reused while the type stays the same: a list of a
            // thousand rows of one type looks its keys up once, not once a row.
            let mut last: Option<(Option<String>, Rc<Vec<Key<'a>>>)> = None;
            for (n, item) in items.iter_mut().enumerate() {
                let concrete = typename(item)
                    .or_else(|| types.and_then(|t| t.get(n)).and_then(Option::as_deref));
                let keys = match &last {
                    Some((seen, keys)) if seen.as_deref() == concrete => keys.clone(),
                    _ => {
                        let keys = keys_for(ordering, memo, sets, concrete, root);
                        last = Some((concrete.map(str::to_owned), keys.clone()));
                        keys
                    }
                };
                apply(ordering, memo, &keys, item);
            }
        }
        Value::Object(_) => {
            let concrete = typename(value).map(str::to_owned);
            let keys = keys_for(ordering, memo, sets, concrete.as_deref(), root);
            apply(ordering, memo, &keys, value);
        }
        _ => {}
    }
}

fn apply<'a>(ordering: &Ordering<'a>, memo: &mut Memo<'a>, keys: &[Key<'a>], value: &mut Value) {
    match value {
        Value::List(items) => {
            for item in items {
                apply(ordering, memo, keys, item);
            }
        }
        Value::Object(map) => {
            // Most objects come back in order already (a field that waited for a batch is the
            // exception): then they are only walked, not rebuilt.
            let in_order = map.len() == keys.len()
                && map
                    .keys()
                    .zip(keys.iter())
                    .all(|(name, key)| name.as_str() == key.name);
            if !in_order {
                let mut unordered = std::mem::take(map);
                map.reserve(unordered.len());
                for key in keys {
                    if let Some((name, child)) = unordered.swap_remove_entry(key.name) {
                        map.insert(name, child);
                    }
                }
                // Nothing should be left; if something is, keep it rather than drop data.
                map.extend(unordered);
            }
            // The map follows the keys now, with gaps where a key was not resolved (`@skip`).
            let mut rest = keys.iter();
            for (name, child) in map.iter_mut() {
                if let Some(key) = rest.find(|key| key.name == name.as_str()) {
                    reorder(
                        ordering,
                        memo,
                        &key.subs,
                        child,
                        key.entity_types.as_deref(),
                        false,
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Value, Variables};

    use super::{Ordering, in_selection_order};

    fn order(data: &mut Value, query: &str, operation: Option<&str>, variables: Variables) {
        let is_object = |name: &str| name != "_Entity";
        match async_graphql::parser::parse_query(query) {
            Ok(doc) => in_selection_order(
                data,
                &Ordering {
                    doc: &doc,
                    variables: &variables,
                    is_object_type: &is_object,
                },
                operation,
            ),
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
            Variables::default(),
        );
        assert_eq!(keys(&data), vec!["first", "list"]);
        let Value::Object(map) = &data else { return };
        let Some(Value::List(items)) = map.get("list") else {
            panic!("list kept");
        };
        assert_eq!(keys(&items[0]), vec!["a", "b", "z"]);
    }

    #[test]
    fn rows_already_in_order_and_skipped_fields_keep_their_children_ordered() {
        // `b` was skipped: the map has a gap, and the children of `c` still follow `{ y x }`.
        let row = || {
            object(vec![
                ("a", Value::Null),
                ("c", object(vec![("x", Value::Null), ("y", Value::Null)])),
            ])
        };
        let mut data = object(vec![("list", Value::List(vec![row(), row(), row()]))]);
        order(
            &mut data,
            "{ list { a b @skip(if: true) c { y x } } }",
            None,
            Variables::default(),
        );
        let Value::Object(map) = &data else { return };
        let Some(Value::List(items)) = map.get("list") else {
            panic!("list kept");
        };
        for item in items {
            assert_eq!(keys(item), vec!["a", "c"]);
            let Value::Object(row) = item else { return };
            assert_eq!(keys(&row["c"]), vec!["y", "x"]);
        }
    }

    #[test]
    fn the_named_operation_is_the_one_followed() {
        let mut data = object(vec![("b", Value::Null), ("a", Value::Null)]);
        order(
            &mut data,
            "query X { b a } query Y { a b }",
            Some("Y"),
            Variables::default(),
        );
        assert_eq!(keys(&data), vec!["a", "b"]);
    }

    #[test]
    fn each_entity_follows_the_selection_of_its_own_type() {
        let report = object(vec![("a", Value::Null), ("b", Value::Null)]);
        let country = object(vec![("b", Value::Null), ("a", Value::Null)]);
        let mut data = object(vec![(
            "_entities",
            Value::List(vec![report.clone(), country.clone(), Value::Null]),
        )]);
        let variables = Variables::from_json(serde_json::json!({ "r": [
            { "__typename": "Report", "id": "1" },
            { "__typename": "Country", "iso3": "PER" },
            { "__typename": "Report", "id": "9" }
        ] }));
        order(
            &mut data,
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Country { a b } ...R } } fragment R on Report { b a }",
            None,
            variables,
        );
        let Value::Object(map) = &data else { return };
        let Some(Value::List(items)) = map.get("_entities") else {
            panic!("entities kept");
        };
        assert_eq!(keys(&items[0]), vec!["b", "a"], "a report");
        assert_eq!(keys(&items[1]), vec!["a", "b"], "a country");
        // With __typename selected, the object says its own type.
        let mut typed = object(vec![(
            "node",
            object(vec![
                ("a", Value::Null),
                ("b", Value::Null),
                ("__typename", Value::String("Report".into())),
            ]),
        )]);
        order(
            &mut typed,
            "{ node { __typename ... on Country { a b } ... on Report { b a } } }",
            None,
            Variables::default(),
        );
        let Value::Object(map) = &typed else { return };
        assert_eq!(keys(&map["node"]), vec!["__typename", "b", "a"]);
    }
}
