//! Who is writing: the bearer token a request carries, resolved against the store.
//!
//! Transports put what the client presented in the request data (HTTP: the `Authorization`
//! header) or the session data (WebSocket: the `connection_init` payload) as [`Credentials`];
//! only writes look at it, so reads stay open to everyone.

use async_graphql::Context;
use plangraph_domain::access::Actor;
use plangraph_persistence::Store;
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

/// What a client presented to authenticate, as it presented it. The secret never prints
/// (`Debug` shows `[REDACTED]`), so a logged request cannot leak a partner's token.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Nothing.
    #[default]
    None,
    /// `Bearer SECRET`.
    Bearer(SecretString),
    /// Something that is not a bearer token (kept only to say so).
    Malformed,
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::None, Self::None) | (Self::Malformed, Self::Malformed) => true,
            (Self::Bearer(a), Self::Bearer(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl Eq for Credentials {}

impl Credentials {
    /// A bearer secret.
    pub fn bearer(secret: &str) -> Self {
        Self::Bearer(SecretString::from(secret.to_owned()))
    }

    /// The bearer secret, if one was presented (for the one place that checks it).
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Bearer(secret) => Some(secret.expose_secret()),
            _ => None,
        }
    }
}

impl Credentials {
    /// Reads an `Authorization` value: `Bearer SECRET`, the scheme in any letter case.
    pub fn from_authorization(value: Option<&str>) -> Self {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Self::None;
        };
        match value.split_once(char::is_whitespace) {
            Some((scheme, secret))
                if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() =>
            {
                Self::bearer(secret.trim())
            }
            _ => Self::Malformed,
        }
    }

    /// Reads a WebSocket `connection_init` payload: `{"Authorization": "Bearer SECRET"}` (any
    /// letter case of the key), or `{"token": "SECRET"}`.
    pub fn from_connection_params(params: &serde_json::Value) -> Self {
        let Some(map) = params.as_object() else {
            return Self::None;
        };
        for (key, value) in map {
            if key.eq_ignore_ascii_case("authorization") {
                return Self::from_authorization(value.as_str());
            }
            if key.eq_ignore_ascii_case("token") {
                return match value.as_str().map(str::trim) {
                    Some(secret) if !secret.is_empty() => Self::bearer(secret),
                    _ => Self::Malformed,
                };
            }
        }
        Self::None
    }
}

/// The actor behind the request's token, or `UNAUTHENTICATED`.
pub(crate) async fn actor(ctx: &Context<'_>) -> Result<Actor, ApiError> {
    let credentials = ctx.data_opt::<Credentials>().cloned().unwrap_or_default();
    let secret = match credentials {
        Credentials::Bearer(secret) => secret,
        Credentials::None => {
            return Err(ApiError::Unauthenticated(
                "writes need a token: send `Authorization: Bearer TOKEN` (create one with `plangraph token create`)".to_owned(),
            ));
        }
        Credentials::Malformed => {
            return Err(ApiError::Unauthenticated(
                "the Authorization header is not `Bearer TOKEN`".to_owned(),
            ));
        }
    };
    let store = ctx.data::<Store>().map_err(|_| ApiError::Internal {
        store_code: "STORE_MISSING",
    })?;
    store
        .actor_for_secret(secret.expose_secret())
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked token".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_headers_and_connection_params() {
        assert_eq!(
            Credentials::from_authorization(Some("bearer pgt_abc")),
            Credentials::bearer("pgt_abc")
        );
        assert_eq!(Credentials::from_authorization(None), Credentials::None);
        assert_eq!(
            Credentials::from_authorization(Some("Basic dXNlcg==")),
            Credentials::Malformed
        );
        assert_eq!(
            Credentials::from_authorization(Some("Bearer ")),
            Credentials::Malformed
        );
        let params = serde_json::json!({ "Authorization": "Bearer pgt_x" });
        assert_eq!(
            Credentials::from_connection_params(&params),
            Credentials::bearer("pgt_x")
        );
        let params = serde_json::json!({ "token": "pgt_y" });
        assert_eq!(
            Credentials::from_connection_params(&params),
            Credentials::bearer("pgt_y")
        );
        assert_eq!(
            Credentials::from_connection_params(&serde_json::json!(null)),
            Credentials::None
        );
        let debug = format!("{:?}", Credentials::bearer("pgt_secret"));
        assert!(!debug.contains("pgt_secret"), "{debug}");
    }
}
