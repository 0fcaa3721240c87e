//! The variables' share of the value limits: the document's literals are measured in its text
//! ([`super::lexical`]), the variables here, with the same limits and codes, and counted as
//! [`super::json`] counts them in the text they came in (`TOO_MANY_VALUES`).
//!
//! Variables arrive as JSON, and serde_json stops at 128 levels while it parses, so they cannot
//! overflow a stack on the way in; but async-graphql walks them again (coercion, validation),
//! and a list of lists 100 deep is no more a real input than one in the document. The walk here
//! keeps its own stack, so it never recurses whatever it is given.

use async_graphql::{Value, Variables};

use super::{LimitError, QueryLimits};

/// Checks the number of the variables' values, the nesting of each and the length of its
/// strings.
pub fn check_variables(variables: &Variables, limits: &QueryLimits) -> Result<(), LimitError> {
    let mut stack: Vec<(&Value, u64)> = variables.values().map(|value| (value, 0)).collect();
    let mut seen = 0usize;
    while let Some((value, depth)) = stack.pop() {
        seen += 1;
        if seen > limits.max_input_values {
            return Err(super::json::too_many(
                limits.max_input_values,
                "the variables",
            ));
        }
        match value {
            Value::List(items) => {
                let depth = depth + 1;
                deep_enough(depth, limits)?;
                stack.extend(items.iter().map(|item| (item, depth)));
            }
            Value::Object(fields) => {
                let depth = depth + 1;
                deep_enough(depth, limits)?;
                for (name, field) in fields {
                    long_enough(name.as_str(), limits)?;
                    stack.push((field, depth));
                }
            }
            Value::String(text) => long_enough(text, limits)?,
            Value::Enum(name) => long_enough(name.as_str(), limits)?,
            Value::Binary(bytes) if bytes.len() > limits.max_string_bytes => {
                return Err(too_long(limits));
            }
            _ => {}
        }
    }
    Ok(())
}

fn deep_enough(depth: u64, limits: &QueryLimits) -> Result<(), LimitError> {
    if depth > limits.max_value_depth {
        return Err(LimitError::new(
            "VALUE_TOO_DEEP",
            format!(
                "a variable's value nests deeper than {} levels",
                limits.max_value_depth
            ),
        ));
    }
    Ok(())
}

fn long_enough(text: &str, limits: &QueryLimits) -> Result<(), LimitError> {
    if text.len() > limits.max_string_bytes {
        return Err(too_long(limits));
    }
    Ok(())
}

fn too_long(limits: &QueryLimits) -> LimitError {
    LimitError::new(
        "VALUE_TOO_LONG",
        format!(
            "a variable holds a string longer than {} bytes",
            limits.max_string_bytes
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    fn nested(levels: usize) -> serde_json::Value {
        let mut value = serde_json::json!("PER");
        for _ in 0..levels {
            value = serde_json::json!([value]);
        }
        value
    }

    #[test]
    fn deep_and_long_variables_are_refused_with_their_codes() {
        let limits = QueryLimits {
            max_value_depth: 4,
            max_string_bytes: 8,
            ..QueryLimits::default()
        };
        let code = |json| {
            check_variables(&variables(json), &limits)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code(serde_json::json!({ "a": nested(4) })), None);
        assert_eq!(
            code(serde_json::json!({ "a": nested(5) })),
            Some("VALUE_TOO_DEEP")
        );
        assert_eq!(
            code(serde_json::json!({ "a": { "b": { "c": { "d": { "e": { "f": 1 } } } } } })),
            Some("VALUE_TOO_DEEP")
        );
        assert_eq!(code(serde_json::json!({ "a": "12345678" })), None);
        assert_eq!(
            code(serde_json::json!({ "a": ["123456789"] })),
            Some("VALUE_TOO_LONG")
        );
    }
}
