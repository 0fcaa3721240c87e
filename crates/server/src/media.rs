//! The media type a GraphQL answer is written in, from the request's `Accept`: the two JSON
//! types of the GraphQL-over-HTTP specification, or an event stream ([`crate::sse`]).

/// The media type answers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: statuses say what happened.
    GraphqlResponse,
    /// `application/json`: the default, for clients that name nothing or anything.
    Json,
    /// `text/event-stream`: the answer as Server-Sent Events ([`crate::sse`]); a request
    /// refused before it reaches the schema is still answered in JSON.
    EventStream,
}

impl Media {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json | Self::EventStream => "application/json; charset=utf-8",
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
        let mut parts = item.split(';').map(str::trim);
        let range = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let media = match range.as_str() {
            "application/graphql-response+json" => Media::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => Media::Json,
            "text/event-stream" => Media::EventStream,
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
