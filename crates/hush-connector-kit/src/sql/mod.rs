//! What every SQL connector (PostgreSQL, Snowflake, BigQuery) shares about statement
//! templates: the placeholder scheme and the scan that finds placeholders ([`template`]; each
//! connector supplies only its [`template::Dialect`]: what to step over, how a parameter is
//! written), the per-right settings checked at start-up ([`rights`]), and the apply and
//! read-back loop of a vendor's asynchronous SQL API ([`jobs`]).

pub mod jobs;
pub mod rights;
pub mod template;
