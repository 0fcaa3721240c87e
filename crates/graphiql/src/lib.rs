//! A real GraphiQL for `/graphql` in a browser: PostGraphile's Ruru (GraphiQL 5: documentation
//! explorer, completion, history, variables and headers panes, `graphql-transport-ws`
//! subscriptions), from its pinned npm release, compiled into the binary by `build.rs`. The
//! page and the script that starts it are ours, so the page carries no inline script; nothing
//! loads from outside the server at run time.

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// The Ruru release compiled in (`build.rs` pins it by version and sha512).
pub const RURU_VERSION: &str = "2.0.2";

/// Where the files are served.
pub const PREFIX: &str = "/graphiql/";

/// The policy the page is served with. Scripts, workers, sockets and fonts come from this
/// origin only; styles may be inline because the Monaco editor inside GraphiQL writes its own
/// `<style>` elements and attributes (it has no nonce support).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Our own files beside Ruru's.
const OURS: &[(&str, &[u8])] = &[
    ("start.js", include_bytes!("../assets/start.js")),
    ("page.css", include_bytes!("../assets/page.css")),
];

/// The page at `/graphql`.
pub const PAGE: &str = concat!(
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>GraphiQL · plangraph</title>\n",
    "<link rel=\"stylesheet\" href=\"/graphiql/ruru.css\">\n",
    "<link rel=\"stylesheet\" href=\"/graphiql/page.css\">\n",
    "<link rel=\"modulepreload\" href=\"/graphiql/ruru.js\">\n",
    "<script type=\"module\" src=\"/graphiql/start.js\"></script>\n",
    "</head>\n<body>\n<div id=\"ruru-root\"><p class=\"loading\">GraphiQL is loading…</p></div>\n",
    "<noscript><p>GraphiQL needs JavaScript. Without it, POST queries to /graphql, or read a ",
    "report at <a href=\"/reports\">/reports</a>.</p></noscript>\n</body>\n</html>\n",
);

/// The file `name` under [`PREFIX`] and its media type.
pub fn file(name: &str) -> Option<(&'static [u8], &'static str)> {
    let bytes = OURS
        .iter()
        .chain(FILES.iter())
        .find(|(file, _)| *file == name)
        .map(|(_, bytes)| *bytes)?;
    let kind = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("ttf") => "font/ttf",
        Some("woff2") => "font/woff2",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    Some((bytes, kind))
}
