//! Provenance of an imported file.

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of the source file, stored with the report so an analyst can tell
/// which copy of a document the figures came from.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_empty_input_is_the_well_known_digest() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
