//! The report pages: `/reports/{ISO3}/{YEAR}` and the `/reports` index, served from the
//! binary under a strict CSP, with an ETag that makes an unchanged reload a 304, 404 for what
//! does not exist, the same rate limits as `/graphql`, on in production, off with `--pages
//! false`. Then, in Debian's Chromium (headless, driven by the pinned npm playwright-core through
//! `tests/interop/page.mjs`): the figures on the page equal the API's with JavaScript on and
//! off, a change appears within a second and after a dropped socket, nothing leaves the origin,
//! no console error or CSP violation, axe-core finds nothing serious; screenshots at desktop and
//! phone widths are written to `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::sse::store_url;
use crate::support::server::{
    Server, admin_token, generate, http_request, interop_clients, repo_root,
};

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    http_request(&server.addr, "GET", path, headers, None).expect("a GET")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn report_pages_over_http() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    generate(&url, 2, 2);
    let server = Server::start_with(
        &url,
        &["--rate-per-address", "0", "--profile", "production"],
    );

    let (status, head, page) = get(&server, "/reports/PER/2023", &[]);
    assert_eq!(status, 200, "{head}");
    assert!(
        header(&head, "content-security-policy")
            .is_some_and(|csp| csp.contains("script-src 'self'") && !csp.contains("unsafe-inline")),
        "{head}"
    );
    for printed in ["$488.5 K", "32.6 K", "2.06 M", "513.6 K", "101.5%"] {
        assert!(page.contains(printed), "{printed} is not on the page");
    }
    assert!(!page.contains(" style="), "no inline style");
    assert!(!page.contains("<script>"), "no inline script");
    // Lower-case codes find the report too; HEAD answers without the page.
    assert_eq!(get(&server, "/reports/per/2023", &[]).0, 200);
    let (status, _, body) =
        http_request(&server.addr, "HEAD", "/reports/PER/2023", &[], None).expect("a HEAD");
    assert_eq!((status, body.as_str()), (200, ""));

    // An unchanged report reloads as a 304; a write changes the tag.
    let etag = header(&head, "etag").expect("an ETag").to_owned();
    let (status, _, body) = get(&server, "/reports/PER/2023", &[("If-None-Match", &etag)]);
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let token = admin_token(&url);
    let revision = server.peru_revision();
    let (status, body) = crate::support::server::post_json(
        &server.addr,
        "/graphql",
        &serde_json::json!({ "query": format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "40.1 K" }}) {{ revision }} }}"#) }),
        Some(&token),
    )
    .expect("a write");
    assert_eq!(status, 200, "{body}");
    let (status, head, page) = get(&server, "/reports/PER/2023", &[("If-None-Match", &etag)]);
    assert_eq!(status, 200);
    assert_ne!(header(&head, "etag"), Some(etag.as_str()));
    assert!(page.contains("40.1 K"));

    // The index lists every report; generated ones are marked.
    let (status, _, index) = get(&server, "/reports", &[]);
    assert_eq!(status, 200);
    assert!(index.contains("/reports/PER/2023"), "{index}");
    assert!(index.contains("synthetic"), "{index}");

    // What does not exist.
    for path in [
        "/reports/PER/1999",
        "/reports/XXX/2023",
        "/reports/P3R/2023",
        "/reports/PER/abc",
        "/assets/nope.js",
    ] {
        let (status, head, _) = get(&server, path, &[]);
        assert_eq!(status, 404, "{path}: {head}");
    }
    // The assets: immutable under the URL the pages use.
    let css = page
        .split("href=\"")
        .find_map(|rest| {
            rest.split('"')
                .next()
                .filter(|u| u.starts_with("/assets/page.css"))
        })
        .expect("the stylesheet's URL")
        .to_owned();
    let (status, head, _) = get(&server, &css, &[]);
    assert_eq!(status, 200);
    assert!(
        header(&head, "cache-control").is_some_and(|c| c.contains("immutable")),
        "{head}"
    );
    assert_eq!(
        header(&head, "content-type"),
        Some("text/css; charset=utf-8")
    );
    // HEAD answers an asset's headers without the file.
    let (status, head, body) = http_request(&server.addr, "HEAD", &css, &[], None).expect("a HEAD");
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(
        header(&head, "content-type"),
        Some("text/css; charset=utf-8")
    );
}

#[test]
fn pages_follow_the_rate_limits_and_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let server = Server::start_with(&url, &["--rate-per-address", "1"]);
    let limited = (0..6)
        .map(|_| get(&server, "/reports/PER/2023", &[]))
        .find(|(status, _, _)| *status == 429)
        .expect("the address's rate applies to pages");
    assert!(limited.2.contains("RATE_LIMITED"), "{}", limited.2);
    drop(server);

    let server = Server::start_with(&url, &["--pages", "false"]);
    for path in ["/reports", "/reports/PER/2023", "/assets/page.css"] {
        assert_eq!(get(&server, path, &[]).0, 404, "{path}");
    }
}

/// Debian's Chromium, or `CHROMIUM`. Missing, the test fails (it does not skip): `.ci/run`
/// installs it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "no Chromium at {}: `apt-get install chromium` (.ci/run does), or set CHROMIUM",
        path.display()
    );
    path
}

/// Runs a browser script of tests/interop against a fresh server; every check must pass.
fn browser_checks(script: &str, at_least: usize) {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let server = Server::start_with(&url, &["--rate-per-address", "0"]);
    let token = admin_token(&url);
    let screenshots = repo_root().join("target").join("screenshots");
    let interop = interop_clients();
    let out = Command::new("node")
        .arg(interop.join(script))
        .args([
            "--url",
            &format!("http://{}", server.addr),
            "--token",
            &token,
        ])
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--chromium")
        .arg(chromium())
        .current_dir(&interop)
        .stdin(Stdio::null())
        .output()
        .expect("run a browser script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let failed: Vec<&Value> = checks.iter().filter(|c| c["ok"] == false).collect();
    assert!(
        checks.iter().any(|c| c["done"] == true) && failed.is_empty() && out.status.success(),
        "{script} failed: {failed:#?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in &checks {
        println!("{check}");
    }
    assert!(checks.len() > at_least, "{script}: {stdout}");
}

#[test]
fn the_report_page_in_a_real_browser() {
    browser_checks("page.mjs", 14);
    let screenshots = repo_root().join("target").join("screenshots");
    for shot in ["report-desktop.png", "report-phone.png"] {
        assert!(screenshots.join(shot).is_file(), "{shot}");
    }
}

/// GraphiQL with the network cut off but for the server: it loads, completes a field name,
/// shows `Report`'s documentation, runs a query, receives a subscription event, and a token
/// pasted into its headers pane writes.
#[test]
fn graphiql_in_a_real_browser_offline() {
    browser_checks("graphiql.mjs", 9);
}
