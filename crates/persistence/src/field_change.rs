//! One value a write changed, as the history records it.

use serde::{Deserialize, Serialize};

/// One value that a write changed: `before` is `None` for an addition, `after` for a removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}
