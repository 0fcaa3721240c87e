//! The index: every country with its platform and its reports, synthetic ones marked, from
//! the answer to [`queries::INDEX`].
//!
//! [`queries::INDEX`]: crate::queries::INDEX

use maud::html;
use serde_json::Value;

use crate::figures::{list, shown};

/// The index page for the answer to [`queries::INDEX`] (the whole response).
///
/// [`queries::INDEX`]: crate::queries::INDEX
pub fn index_page(answer: &Value) -> String {
    let countries: Vec<&Value> = list(&answer["data"]["countries"])
        .iter()
        .filter(|c| !list(&c["reports"]).is_empty())
        .collect();
    let body = html! {
        h1 { "Reports" }
        p {
            "Every report this server holds, by country. Reports marked "
            span.badge { "synthetic" }
            " were generated for load tests; the others are published figures."
        }
        @if countries.is_empty() {
            p { "No reports are loaded." }
        } @else {
            table.index {
                caption { "Countries, platforms and their reports" }
                thead {
                    tr {
                        th scope="col" { "Country" }
                        th scope="col" { "Platform" }
                        th scope="col" { "Reports" }
                    }
                }
                tbody {
                    @for country in countries {
                        tr {
                            th scope="row" { (shown(&country["name"])) " (" (shown(&country["iso3"])) ")" }
                            td { (shown(&country["platform"]["name"])) }
                            td {
                                ul.reports {
                                    @for report in list(&country["reports"]) {
                                        li {
                                            a href=(format!("/reports/{}/{}", shown(&country["iso3"]), shown(&report["year"]))) {
                                                (shown(&report["year"])) ": " bdi { (shown(&report["title"])) }
                                            }
                                            @if report["synthetic"] == true {
                                                " " span.badge { "synthetic" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    crate::shell("Reports · plangraph", false, body).into_string()
}
