//! Scalars of the contract.

use async_graphql::{InputValueError, InputValueResult, Result, Scalar, ScalarType, Value};

use crate::error::ApiError;
use chrono::NaiveDate;

/// A calendar date, ISO 8601 (`2024-04-01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("'{s}' is not a date (YYYY-MM-DD)"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// A revision as GraphQL's 32-bit `Int`; a larger one is a corrupt store.
pub(crate) fn revision(value: i64) -> Result<i32> {
    i32::try_from(value).map_err(|_| ApiError::corrupt("revision", &value.to_string()).into())
}
