//! The pages' own files, compiled into the binary: nothing is fetched from anywhere else.
//! Their URLs carry a hash of their content (`/assets/page.css?v=…`), so a browser may keep
//! them for a year and still never runs an old script against a new page.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One file: its name under `/assets/`, its media type and its bytes.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every file served under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "page.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/page.css"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/live.js"),
    },
];

/// The file named `name`, if there is one.
pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// A short hash of every asset's content: part of each URL, and of the pages' ETags (a new
/// binary with new assets changes both).
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.name.as_bytes());
            hash.update(asset.bytes);
        }
        hash.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The URL of asset `name`, with the content hash.
pub fn url(name: &str) -> String {
    format!("/assets/{name}?v={}", version())
}
