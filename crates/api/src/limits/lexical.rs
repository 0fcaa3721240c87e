//! The first look at a document, before anything parses it: one pass over its bytes that counts
//! tokens, measures how deep its brackets nest and how long its strings and numbers are.
//!
//! It runs first because the parser itself is the thing to protect: async-graphql's value
//! parser recurses once per nested list or input object without a bound, and a 4 KB document
//! nesting 2,000 of them (`country(iso3: [[[[…]]]])`) overflowed a worker's stack, which aborts
//! the whole process. No count of tokens sees nesting; this pass does, with a counter, not
//! recursion, so a document of any shape is measured in time linear in its length and refused
//! before a single frame of the parser is spent on it.
//!
//! Brackets are told apart by where they stand: `[` and `{` opened inside parentheses
//! (arguments, variable definitions and their default values, directive arguments) are values
//! or list types, counted against [`QueryLimits::max_value_depth`]; braces outside parentheses
//! are selection sets and inline fragments, counted against [`selection_nesting`] (a depth the
//! field-level `QUERY_TOO_DEEP` check, which runs after parsing, can never legitimately need).

use super::{LimitError, QueryLimits};

/// Longest number literal: an `Int` has at most 11 characters and a `Float` written in full
/// a few dozen; anything longer is an attempt to make the parser work.
pub const MAX_NUMBER_CHARS: usize = 64;

/// How deep selection sets (and inline fragments) may nest in the text: twice the field depth
/// limit and a margin, since inline fragments add a level of braces without a level of fields.
pub fn selection_nesting(limits: &QueryLimits) -> u64 {
    limits.max_depth.saturating_mul(2).saturating_add(8)
}

fn too_long(what: &str, limit: usize) -> LimitError {
    LimitError::new(
        "VALUE_TOO_LONG",
        format!("the document has a {what} longer than {limit} characters"),
    )
}

/// Checks the document's tokens, nesting and literal lengths in one pass (see the module's
/// documentation); linear in its length, whatever its shape.
pub fn check(query: &str, limits: &QueryLimits) -> Result<(), LimitError> {
    let bytes = query.as_bytes();
    let max_sets = selection_nesting(limits);
    let mut count = 0usize;
    // Parentheses open now (GraphQL never nests them; a malformed document is the parser's).
    let mut parens = 0usize;
    // Brackets open inside parentheses (values and list types), and braces outside them.
    let mut values = 0u64;
    let mut sets = 0u64;
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
                let start = i;
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
                // The quotes are not the string's; escapes count as written (an upper bound).
                let length = i.min(bytes.len()).saturating_sub(start).saturating_sub(2);
                if length > limits.max_string_bytes {
                    return Err(too_long("string", limits.max_string_bytes));
                }
            }
            b'.' if bytes.get(i..i + 3) == Some(b"...") => {
                count += 1;
                i += 3;
            }
            b'0'..=b'9' | b'-' => {
                count += 1;
                let start = i;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                if i - start > MAX_NUMBER_CHARS {
                    return Err(too_long("number", MAX_NUMBER_CHARS));
                }
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                count += 1;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            b'(' => {
                count += 1;
                parens += 1;
                i += 1;
            }
            b')' => {
                count += 1;
                parens = parens.saturating_sub(1);
                i += 1;
            }
            b'[' | b'{' => {
                count += 1;
                if parens > 0 || values > 0 {
                    values += 1;
                    if values > limits.max_value_depth {
                        return Err(LimitError::new(
                            "VALUE_TOO_DEEP",
                            format!(
                                "a value (list or input object) or a type nests deeper than {} levels",
                                limits.max_value_depth
                            ),
                        ));
                    }
                } else {
                    sets += 1;
                    if sets > max_sets {
                        return Err(LimitError::new(
                            "QUERY_TOO_DEEP",
                            format!("selection sets nest deeper than {max_sets} levels"),
                        ));
                    }
                }
                i += 1;
            }
            b']' | b'}' => {
                count += 1;
                if values > 0 {
                    values -= 1;
                } else {
                    sets = sets.saturating_sub(1);
                }
                i += 1;
            }
            _ => {
                count += 1;
                i += 1;
            }
        }
        if count > limits.max_tokens {
            return Err(LimitError::new(
                "TOO_MANY_TOKENS",
                format!("the document has more than {} tokens", limits.max_tokens),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(query: &str, limits: &QueryLimits) -> Option<&'static str> {
        check(query, limits).err().map(|e| e.code)
    }

    #[test]
    fn tokens_are_counted_past_strings_comments_and_spreads() {
        // { a b ( c : "x y z" ) ... F }: 11 tokens; the comment is none.
        let query = "{ a b(c: \"x y z\") ...F } # a comment with words";
        let at = |max_tokens| QueryLimits {
            max_tokens,
            ..QueryLimits::default()
        };
        assert_eq!(code(query, &at(11)), None);
        assert_eq!(code(query, &at(10)), Some("TOO_MANY_TOKENS"));
        assert_eq!(code("{ a b c d }", &at(5)), Some("TOO_MANY_TOKENS"));
        let block = format!("{{ a(s: \"\"\"{}\"\"\") }}", "w ".repeat(1000));
        assert_eq!(code(&block, &at(10)), None);
    }

    #[test]
    fn values_nested_past_the_limit_are_refused_before_parsing() {
        let limits = QueryLimits::default();
        let nested = |n: usize, open: &str, close: &str| {
            format!(
                "{{ country(iso3: {}\"PER\"{}) {{ name }} }}",
                open.repeat(n),
                close.repeat(n)
            )
        };
        let max = usize::try_from(limits.max_value_depth).unwrap_or(usize::MAX);
        assert_eq!(code(&nested(max, "[", "]"), &limits), None);
        for n in [max + 1, 2_000, 100_000] {
            assert_eq!(
                code(&nested(n, "[", "]"), &limits),
                Some("VALUE_TOO_DEEP"),
                "{n}"
            );
            assert_eq!(
                code(&nested(n, "{a: ", "}"), &limits),
                Some("VALUE_TOO_DEEP"),
                "{n}"
            );
        }
        // List types in variable definitions and default values are values' nesting too.
        let types = format!(
            "query Q($a: {}Int{}) {{ a }}",
            "[".repeat(max + 1),
            "]".repeat(max + 1)
        );
        assert_eq!(code(&types, &limits), Some("VALUE_TOO_DEEP"));
    }

    #[test]
    fn selection_sets_nested_past_the_text_bound_are_refused() {
        let limits = QueryLimits::default();
        let max = usize::try_from(selection_nesting(&limits)).unwrap_or(usize::MAX);
        let nested = |n: usize| format!("{}a{}", "{ ... on Query ".repeat(n), " }".repeat(n));
        assert_eq!(code(&nested(max), &limits), None);
        assert_eq!(code(&nested(max + 1), &limits), Some("QUERY_TOO_DEEP"));
        assert_eq!(code(&nested(100_000), &limits), Some("QUERY_TOO_DEEP"));
    }

    #[test]
    fn long_strings_and_numbers_are_refused() {
        let limits = QueryLimits {
            max_string_bytes: 10,
            ..QueryLimits::default()
        };
        assert_eq!(code("{ a(s: \"0123456789\") }", &limits), None);
        assert_eq!(
            code("{ a(s: \"0123456789x\") }", &limits),
            Some("VALUE_TOO_LONG")
        );
        assert_eq!(
            code("{ a(s: \"\"\"0123456789x\"\"\") }", &limits),
            Some("VALUE_TOO_LONG")
        );
        let digits = "9".repeat(MAX_NUMBER_CHARS + 1);
        assert_eq!(
            code(&format!("{{ a(n: {digits}) }}"), &limits),
            Some("VALUE_TOO_LONG")
        );
        assert_eq!(code("{ a(n: -12.5e10) }", &limits), None);
    }
}
