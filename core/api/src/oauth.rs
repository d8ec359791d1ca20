//! The token endpoint's answer (`POST /oauth/token`, RFC 6749 §5.1): what the CLI and CI get
//! for client credentials, and people for the device-code and refresh-token grants.

use serde::{Deserialize, Serialize};

/// A successful token response.
#[derive(Clone, Deserialize, Serialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the token lives.
    pub expires_in: u64,
    /// The scope granted, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The authorization-code grant's ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// A person's refresh token (device-code and refresh-token grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Never prints the tokens.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
