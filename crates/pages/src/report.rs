//! The report page: what the published PDF shows, from the answer to [`queries::REPORT`].
//!
//! Every figure is the printed one (`$488.5 K`, `32.6 K`, `84%`); the bars are `<meter>`
//! elements set from the printed percentages, never from a recomputed ratio. Elements that
//! `live.js` updates carry `data-field` (text) or `data-meter` (a bar) with a key such as
//! `totals.peopleReached` or `sector.EDU.fundedPercent`.
//!
//! [`queries::REPORT`]: crate::queries::REPORT

use maud::{Markup, html};
use serde_json::{Value, json};

use crate::figures::{bar, list, shown, text, words};
use crate::queries;

/// The page for the answer to [`queries::REPORT`] (the whole response, `data` included), or
/// `None` when the answer names no such report.
pub fn report_page(answer: &Value) -> Option<String> {
    let country = &answer["data"]["country"];
    let report = &country["report"];
    if !report.is_object() {
        return None;
    }
    let report_id = text(&report["id"])?;
    let revision = report["revision"].as_i64()?;
    let country_name = shown(&country["name"]);
    let title = format!("{country_name}: {}", shown(&report["title"]));
    let live = json!({
        "reportId": report_id,
        "revision": revision,
        "query": queries::LIVE,
    });
    let body = html! {
        article.report data-report=(report_id) data-revision=(revision) {
            (heading(country, report))
            (headline(report))
            (sectors(report))
            (shares_and_partners(report))
            (narrative(report))
            p #live-status .live-status role="status" aria-live="polite" {
                "Figures as at revision " span data-field="revision" { (revision) } "."
            }
        }
        // Data for live.js (not executed, so the policy's `script-src 'self'` allows it).
        script #plangraph-live type="application/json" { (maud::PreEscaped(escape_json(&live))) }
    };
    Some(crate::shell(&title, true, body).into_string())
}

/// JSON inside a `<script>` element: `<` written as `\u003c`, so no `</script>` can end it.
fn escape_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

fn heading(country: &Value, report: &Value) -> Markup {
    html! {
        header.report-head {
            p.platform {
                (shown(&report["platform"]["name"]))
                " · "
                (shown(&report["plan"]["name"]))
            }
            h1 { (shown(&country["name"])) ": " bdi { (shown(&report["title"])) } }
            @if report["synthetic"] == true {
                p.synthetic role="note" {
                    strong { "Synthetic data." }
                    " Generated for load tests by plangraph; not a published report."
                }
            }
        }
    }
}

/// The headline figures, as the report's first page prints them.
fn headline(report: &Value) -> Markup {
    let printed = &report["totals"]["printed"];
    let figures = [
        ("People in need", "peopleInNeed"),
        ("People targeted", "peopleTargeted"),
        ("People reached", "peopleReached"),
        ("Financial requirements (USD)", "requirementsUsd"),
        ("Funding received (USD)", "fundingUsd"),
        ("Funded", "fundedPercent"),
    ];
    let marker = text(&report["fundingFootnoteMarker"]);
    html! {
        section.headline aria-labelledby="headline-title" {
            h2 #headline-title { "Key figures" }
            dl.figures {
                @for (label, key) in figures {
                    div.figure {
                        dt { (label) }
                        dd data-field=(format!("totals.{key}")) { (shown(&printed[key])) }
                    }
                }
                div.figure {
                    dt { "Funding as of" }
                    dd.date {
                        (shown(&report["fundingAsOf"]))
                        @if let Some(marker) = &marker { sup { (marker) } }
                    }
                }
            }
            @if let Some(source) = text(&report["fundingSource"]) {
                p.source { "Funding figures: " (source) "." }
            }
        }
    }
}

/// One row per sector and sub-sector, with bars of reached ÷ targeted and funded ÷ required.
fn sectors(report: &Value) -> Markup {
    html! {
        section.sectors aria-labelledby="sectors-title" {
            h2 #sectors-title { "People and funding by sector" }
            div.table-scroll {
                table {
                    caption { "People targeted and reached, financial requirements and funding, as printed" }
                    thead {
                        tr {
                            th scope="col" { "Sector" }
                            th scope="col" { "Targeted" }
                            th scope="col" { "Reached" }
                            th scope="col" { "Reached of targeted" }
                            th scope="col" { "Requirements (USD)" }
                            th scope="col" { "Funding (USD)" }
                            th scope="col" { "Funded" }
                        }
                    }
                    tbody {
                        @for row in list(&report["sectors"]) {
                            (sector_row(row))
                        }
                    }
                }
            }
        }
    }
}

fn sector_row(row: &Value) -> Markup {
    let code = row["sector"]["code"].as_str().unwrap_or_default();
    let sub = row["sector"]["parent"].is_object();
    let printed = &row["printed"];
    let name = text(&printed["heading"]).unwrap_or_else(|| shown(&row["sector"]["name"]));
    let key = |field: &str| format!("sector.{code}.{field}");
    html! {
        tr.sub[sub] data-sector=(code) {
            th scope="row" { (name) }
            td data-field=(key("peopleTargeted")) { (shown(&printed["peopleTargeted"])) }
            td data-field=(key("peopleReached")) { (shown(&printed["peopleReached"])) }
            td.bar {
                (meter("reached", &key("reachedPercent"), &row["reachedPercent"], &format!("{name}: reached of targeted")))
                span data-field=(key("reachedPercent")) { (shown(&printed["reachedPercent"])) }
            }
            td data-field=(key("requirementsUsd")) { (shown(&printed["requirementsUsd"])) }
            td data-field=(key("fundingUsd")) { (shown(&printed["fundingUsd"])) }
            td.bar {
                (meter("funded", &key("fundedPercent"), &row["fundedPercent"], &format!("{name}: funded of required")))
                span data-field=(key("fundedPercent")) { (shown(&printed["fundedPercent"])) }
            }
        }
    }
}

/// A bar for a printed percentage (none when the report prints none).
fn meter(kind: &str, key: &str, percent: &Value, label: &str) -> Markup {
    html! {
        @if let Some(value) = bar(percent) {
            meter class=(kind) min="0" max="100" value=(value) data-meter=(key) aria-label=(label) {}
        }
    }
}

fn shares_and_partners(report: &Value) -> Markup {
    html! {
        section.shares aria-labelledby="shares-title" {
            h2 #shares-title { "Who was reached, and by whom" }
            div.columns {
                (shares("Population types", "Share of people targeted, by population type", &report["populationTypes"]))
                (shares("Age and gender", "Age and gender shares (their labels were icons in the PDF, not in its text)", &report["ageGender"]))
                div {
                    h3 { "Partners" }
                    dl.counts {
                        @for count in list(&report["partnerCounts"]) {
                            div {
                                dt { (words(&count["role"])) }
                                dd {
                                    (shown(&count["printed"]))
                                    @if let Some(marker) = text(&count["footnoteMarker"]) { sup { (marker) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn shares(title: &str, caption: &str, shares: &Value) -> Markup {
    html! {
        div {
            h3 { (title) }
            table.shares {
                caption { (caption) }
                thead { tr { th scope="col" { "Group" } th scope="col" { "Share" } } }
                tbody {
                    @for share in list(shares) {
                        tr {
                            th scope="row" {
                                @match text(&share["label"]) {
                                    Some(label) => { (label) }
                                    None => { "Group " (shown(&share["position"])) }
                                }
                            }
                            td { (shown(&share["printed"])) }
                        }
                    }
                }
            }
        }
    }
}

fn narrative(report: &Value) -> Markup {
    let sources = list(&report["sources"]);
    html! {
        @for section in list(&report["sections"]) {
            section.narrative {
                h2 { (shown(&section["title"])) }
                @for paragraph in list(&section["paragraphs"]) {
                    p { (shown(paragraph)) }
                }
            }
        }
        @if !list(&report["footnotes"]).is_empty() {
            aside.footnotes aria-labelledby="footnotes-title" {
                h2 #footnotes-title { "Footnotes" }
                dl {
                    @for note in list(&report["footnotes"]) {
                        div { dt { (shown(&note["marker"])) } dd { (shown(&note["text"])) } }
                    }
                }
            }
        }
        @if !sources.is_empty() {
            section.sources aria-labelledby="sources-title" {
                h2 #sources-title { "Sources" }
                ul {
                    @for source in sources {
                        @if let Some(url) = text(&source["url"]).filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                            li { a href=(url) rel="noopener" { bdi { (text(&source["label"]).unwrap_or_else(|| url.clone())) } } }
                        }
                    }
                }
            }
        }
    }
}
