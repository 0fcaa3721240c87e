//! The browser side of plangraph: the report as its PDF shows it (headline figures, a row per
//! sector with its bars, shares, partner counts, the narrative, footnotes and sources) and an
//! index of every report, rendered on the server from the API's own answers ([`queries`]), so
//! a page reads fully with JavaScript off and shows exactly what the API shows anonymously.
//! With JavaScript on, `live.js` subscribes to the report's changes and updates the figures in
//! place.
//!
//! No transport here: the server runs the queries through its pipeline and hands the answers
//! to [`report_page`] and [`index_page`]; it serves [`assets`] as they are. Nothing loads from
//! outside the binary, and no inline script or style is written, so the pages work under
//! [`CONTENT_SECURITY_POLICY`].

pub mod assets;
mod figures;
mod index;
pub mod queries;
mod report;

pub use index::index_page;
pub use report::report_page;

/// The policy the pages are served with: only this origin's scripts, styles and sockets,
/// nothing inline, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

use maud::{DOCTYPE, Markup, html};

/// The document every page shares: language, viewport, the stylesheet, and (for live pages)
/// the script.
fn shell(title: &str, live: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href=(assets::url("page.css"));
                @if live {
                    script type="module" src=(assets::url("live.js")) {}
                }
            }
            body {
                a.skip href="#main" { "Skip to the report" }
                header.site {
                    a href="/reports" { "plangraph" }
                    " · "
                    span { "response-plan reports" }
                }
                main id="main" { (body) }
                footer.site {
                    p {
                        "Figures as published, served live from the GraphQL API at "
                        code { "/graphql" }
                        "."
                    }
                }
            }
        }
    }
}

/// A page that only says something: a report that does not exist, the pages turned off, a
/// store that does not answer.
pub fn message_page(title: &str, message: &str) -> String {
    let body = html! {
        h1 { (title) }
        p { (message) }
        p { a href="/reports" { "Every report" } }
    };
    shell(title, false, body).into_string()
}
