//! Machine credentials (client id and secret for the token endpoint).
