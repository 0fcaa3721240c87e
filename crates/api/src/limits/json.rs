//! The width of a JSON text, measured before anything builds it: a request's body, a socket's
//! message, a GET request's `variables`.
//!
//! serde_json bounds nesting (128 levels) but not width, and a tree costs far more than its
//! text: a 2 MB body holding 690,000 `{}` in a variable the document never used took 368 ms and
//! 328 MiB to build, convert and check before anything looked at it (759 MiB with four at
//! once). Counting its values first, in one pass over the bytes that allocates nothing, turns
//! that into a refusal answered in 3.9 ms at 69 MiB (`bench/abuse.py`, attack 14).
//!
//! A value is counted where it starts: every `{` and `[`, every member after a `,`, the first
//! member of a list or object that has one, and the text's own root. For valid JSON that is
//! exactly its number of values (each object member's value counted, its key not), the count
//! [`super::values`] makes of parsed variables, so the two limits agree. The count only grows
//! while the scan moves on, so no suffix of an invalid text can take back what a prefix the
//! parser would build has cost.

use super::{LimitError, QueryLimits};

/// Values a request's envelope may hold besides its variables (`query`, `operationName`,
/// `extensions` with a persisted query's hash, a socket message's `id`, `type` and `payload`).
pub const ENVELOPE_VALUES: usize = 16;

/// Counts the values of a JSON text, stopping at `stop_after` (the count is then `stop_after`
/// plus one): linear in its length, never allocating.
pub fn count_values(text: &[u8], stop_after: usize) -> usize {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    // A `{` or `[` seen with nothing but whitespace after it yet: its first member, if any,
    // is a value the comma count will not see.
    let mut just_opened = false;
    for &b in text {
        if count > stop_after {
            return count;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'{' | b'[' => {
                // The container is a value only as its parent's member, counted already (the
                // root, a first member or a member after a comma); what it opens is counted
                // when its first member shows.
                if just_opened {
                    count += 1;
                }
                just_opened = true;
                continue;
            }
            b'}' | b']' => {}
            b',' => count += 1,
            b'"' => {
                in_string = true;
                if just_opened {
                    count += 1;
                }
            }
            _ => {
                if just_opened {
                    count += 1;
                }
            }
        }
        just_opened = false;
    }
    count
}

/// Refuses a JSON text that holds more values than the variables may, with room for its
/// envelope ([`ENVELOPE_VALUES`]).
pub fn check(text: &[u8], limits: &QueryLimits) -> Result<(), LimitError> {
    let limit = limits.max_input_values.saturating_add(ENVELOPE_VALUES);
    if count_values(text, limit) > limit {
        return Err(too_many(limits.max_input_values, "the request"));
    }
    Ok(())
}

pub(super) fn too_many(limit: usize, what: &str) -> LimitError {
    LimitError::new(
        "TOO_MANY_VALUES",
        format!("{what} holds more than {limit} input values (lists, objects and their members)"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Values of a parsed JSON text, counted the way the scan promises to.
    fn parsed(text: &str) -> usize {
        fn walk(value: &serde_json::Value) -> usize {
            1 + match value {
                serde_json::Value::Array(items) => items.iter().map(walk).sum(),
                serde_json::Value::Object(fields) => fields.values().map(walk).sum(),
                _ => 0,
            }
        }
        walk(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn valid_json_is_counted_exactly() {
        for text in [
            "1",
            "\"a\"",
            "[]",
            "{}",
            "[1]",
            "[1, 2, 3]",
            "[[], [], {}]",
            "[[[[]]]]",
            r#"{"a": 1, "b": [true, null, {"c": "}],[{,"}]}"#,
            r#"{ "query": "{ a }", "variables": { "r": [ {"__typename": "Report", "id": "1"} ] } }"#,
            r#"["\"", "\\", "\\\"", ",,,", "{[", ""]"#,
            " [ { } , [ ] , { \"k\" : [ ] } ] ",
            "[-1.5e3, 0, true, false, null]",
        ] {
            assert_eq!(
                count_values(text.as_bytes(), usize::MAX),
                parsed(text),
                "{text}"
            );
        }
    }

    #[test]
    fn wide_texts_are_refused_early_and_by_name() {
        let limits = QueryLimits::default();
        let wide = format!(
            r#"{{"query": "{{ a }}", "variables": {{"unused": [{}]}}}}"#,
            vec!["{}"; 690_000].join(",")
        );
        let error = check(wide.as_bytes(), &limits).unwrap_err();
        assert_eq!(error.code, "TOO_MANY_VALUES");
        assert_eq!(count_values(wide.as_bytes(), 100), 101);
        let fits = format!(
            r#"{{"query": "{{ a }}", "variables": {{"r": [{}]}}}}"#,
            vec!["1"; limits.max_input_values - 1].join(",")
        );
        check(fits.as_bytes(), &limits).unwrap();
    }

    #[test]
    fn an_invalid_tail_takes_nothing_back() {
        // Every prefix's count is at most the whole text's.
        let text = br#"[{},{},{}]]]]]}}}}::::"""""#;
        let whole = count_values(text, usize::MAX);
        for end in 0..=text.len() {
            assert!(count_values(&text[..end], usize::MAX) <= whole.max(1));
        }
        assert_eq!(whole, 4);
    }
}
