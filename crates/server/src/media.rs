//! The media type a GraphQL answer is written in, from the request's `Accept`: the two JSON
//! types of the GraphQL-over-HTTP specification, an event stream, or a multipart stream
//! ([`crate::stream`]). A `multipart/mixed` without `subscriptionSpec="1.0"` (the incremental
//! delivery of `@defer`, which the schema does not use) is not taken.

/// The media type answers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: statuses say what happened.
    GraphqlResponse,
    /// `application/json`: the default, for clients that name nothing or anything.
    Json,
    /// `text/event-stream`: the answer as Server-Sent Events ([`crate::stream`]); a request
    /// refused before it reaches the schema is still answered in JSON.
    EventStream,
    /// `multipart/mixed;subscriptionSpec="1.0"`: Apollo's multipart subscription protocol
    /// ([`crate::stream`]); refusals before the schema are JSON, as for the event stream.
    Multipart,
}

impl Media {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json | Self::EventStream | Self::Multipart => "application/json; charset=utf-8",
        }
    }
}

/// The media type to answer in, from `Accept`: the first supported one in the client's order
/// of preference; `None` when the client accepts neither.
pub fn negotiate(accept: Option<&str>) -> Option<Media> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(Media::Json);
    };
    let mut best: Option<(f32, usize, Media)> = None;
    for (position, item) in accept.split(',').enumerate() {
        let range = item
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let parameter = |name: &str| {
            item.split(';').skip(1).find_map(|p| {
                let (key, value) = p.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().trim_matches('"').to_owned())
            })
        };
        // A quality outside 0–1, or not a number, makes the whole item unreadable: skipped.
        let quality = match parameter("q") {
            None => 1.0,
            Some(q) => match q.parse::<f32>() {
                Ok(q) if (0.0..=1.0).contains(&q) => q,
                _ => continue,
            },
        };
        let media = match range.as_str() {
            "application/graphql-response+json" => Media::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => Media::Json,
            "text/event-stream" => Media::EventStream,
            "multipart/mixed" if parameter("subscriptionSpec").as_deref() == Some("1.0") => {
                Media::Multipart
            }
            _ => continue,
        };
        if quality <= 0.0 {
            continue;
        }
        let better = best.is_none_or(|(q, p, _)| quality > q || (quality == q && position < p));
        if better {
            best = Some((quality, position, media));
        }
    }
    best.map(|(_, _, media)| media)
}
