//! Who may call Hush's HTTP APIs, and what a caller must prove.
//!
//! - [`Authenticator`]: API keys (configured only as SHA-256 hashes, several per client for
//!   rotation) and OIDC/JWT bearer tokens validated against a JWKS (issuer, audience, expiry,
//!   clock skew), each granting [`Scope`]s; anonymous callers get only the scopes configured for
//!   them, and never more than an opt-out.
//! - [`guard`]: axum layers that require a scope, refuse cross-site or non-JSON writes, bound
//!   each request's time and rate-limit per client and per IP, answering with Hush's JSON error.
//! - [`attestation`]: the signed statement of an identity system that it verified a consumer,
//!   which a deletion or a consumer-initiated opt-in must carry.

#![warn(missing_docs)]

pub mod attestation;
mod authenticator;
pub mod config;
pub mod guard;
mod jwks;
pub mod keys;
mod scope;

pub use authenticator::{AuthError, Authenticator, Caller, Credential};
pub use config::{AuthConfig, HttpConfig};
pub use scope::Scope;
