//! Puts Ruru, PostGraphile's GraphiQL (GraphiQL 5 with its explorer, history and
//! `graphql-transport-ws` subscriptions), into the binary: its pinned npm release is fetched from
//! the registry at build time (no Node needed), checked against the registry's published
//! sha512, and its `static/` files (source maps left out) are compiled in. Nothing of it is in
//! the repository.
//!
//! Offline: download the tarball once and point `PLANGRAPH_RURU_TGZ` at it. A build that can
//! get neither stops with a message saying so; there is no fall-back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use base64::Engine;
use sha2::{Digest, Sha512};

const PACKAGE: &str = "ruru";
const VERSION: &str = "2.0.2";
/// `npm view ruru@2.0.2 dist.integrity`.
const INTEGRITY: &str = "sha512-WYTeVEdEcz9vZQCjXsH4wVlbRyv6lik4IjFtktk6xrkQR4dVmzJYQ3NpFkM1/+349v/RjRcZ6nB6mwyc83lNKA==";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PLANGRAPH_RURU_TGZ");
    println!("cargo:rerun-if-env-changed=NPM_CONFIG_REGISTRY");
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        fail("cargo did not set OUT_DIR");
    };
    let tarball = match tarball(&out) {
        Ok(bytes) => bytes,
        Err(problem) => fail(&problem),
    };
    if let Err(problem) = unpack(&tarball, &out) {
        fail(&problem);
    }
}

fn fail(problem: &str) -> ! {
    panic!(
        "\n\nplangraph's GraphiQL ({PACKAGE} {VERSION} from the npm registry) is not available: \
         {problem}.\nBuild with access to the npm registry, or download \
         {PACKAGE}-{VERSION}.tgz (`npm pack {PACKAGE}@{VERSION}`) and set \
         PLANGRAPH_RURU_TGZ=/path/to/{PACKAGE}-{VERSION}.tgz.\n\n"
    );
}

/// The release tarball, checked: from `PLANGRAPH_RURU_TGZ`, from an earlier build, or fetched.
fn tarball(out: &Path) -> Result<Vec<u8>, String> {
    let kept = out.join(format!("{PACKAGE}-{VERSION}.tgz"));
    let bytes = if let Some(path) = env::var_os("PLANGRAPH_RURU_TGZ") {
        fs::read(&path).map_err(|e| format!("cannot read {}: {e}", Path::new(&path).display()))?
    } else if let Ok(bytes) = fs::read(&kept) {
        bytes
    } else {
        let registry = env::var("NPM_CONFIG_REGISTRY")
            .unwrap_or_else(|_| "https://registry.npmjs.org/".to_owned());
        let url = format!(
            "{}/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz",
            registry.trim_end_matches('/')
        );
        let fetched = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--location",
                "--retry",
                "3",
            ])
            .args(["--max-time", "300", &url])
            .output()
            .map_err(|e| format!("cannot run curl to fetch {url}: {e}"))?;
        if !fetched.status.success() {
            return Err(format!(
                "fetching {url} failed: {}",
                String::from_utf8_lossy(&fetched.stderr).trim()
            ));
        }
        fetched.stdout
    };
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes));
    if format!("sha512-{digest}") != INTEGRITY {
        return Err(format!(
            "the tarball's sha512 is {digest}, not the pinned {INTEGRITY}"
        ));
    }
    fs::write(&kept, &bytes).map_err(|e| format!("cannot keep the tarball: {e}"))?;
    Ok(bytes)
}

/// Writes `package/static/*` (no source maps) and the licence into `OUT_DIR/ruru`, and
/// `OUT_DIR/files.rs`: the list the crate compiles in.
fn unpack(tarball: &[u8], out: &Path) -> Result<(), String> {
    let dir = out.join("ruru");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let name = match (path.strip_prefix("package/static"), path.to_str()) {
            (Ok(rest), _) => rest.to_string_lossy().into_owned(),
            (_, Some("package/LICENSE.md")) => "LICENSE.md".to_owned(),
            _ => continue,
        };
        if name.is_empty() || name.contains('/') || name.ends_with(".map") {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        fs::write(dir.join(&name), &bytes).map_err(|e| e.to_string())?;
        files.push(name);
    }
    for needed in [
        "ruru.js",
        "ruru.css",
        "editorWorker.js",
        "graphqlWorker.js",
        "jsonWorker.js",
    ] {
        if !files.iter().any(|f| f == needed) {
            return Err(format!("the tarball has no static/{needed}"));
        }
    }
    files.sort();
    let mut list = String::from(
        "/// Every file of Ruru's `static/` folder, by name.\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for name in &files {
        list.push_str(&format!(
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/ruru/{name}\"))),\n"
        ));
    }
    list.push_str("];\n");
    fs::write(out.join("files.rs"), list).map_err(|e| e.to_string())
}
