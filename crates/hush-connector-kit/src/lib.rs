//! What every Hush connector shares, so that a connector crate holds only what is particular to
//! its vendor: the vendor HTTP layer ([`http`]: one client builder, URL-free errors), the
//! classification of a vendor's answers ([`response`]), secrets whose `Debug` and `Display`
//! never show the value ([`secret`]), settings checks that name the field at fault
//! ([`settings`]), dated tables of the API versions a vendor serves ([`versions`]), the polling
//! of a vendor's asynchronous job ([`poll`]), one outcome per item of a batch spread over
//! several calls ([`outcome`]), OAuth 2.0 access tokens from a refresh token
//! ([`oauth`]), the hashed emails and phones sent to contact-matching vendors ([`contacts`]),
//! Google's error envelope ([`google`]), RS256 tokens signed with a connector's own key
//! ([`jwt`]),
//! statement templates and the loop that runs them for SQL connectors ([`sql`]),
//! and, with the `testing` feature, the contract-test kit every connector's tests use (`testing`).

pub mod contacts;
pub mod google;
pub mod http;
pub mod jwt;
pub mod oauth;
pub mod outcome;
pub mod poll;
pub mod response;
pub mod secret;
pub mod settings;
pub mod sql;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod versions;
