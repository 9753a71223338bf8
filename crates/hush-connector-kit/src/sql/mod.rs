//! What every SQL connector (PostgreSQL, Snowflake, BigQuery) shares about statement
//! templates: the placeholder scheme and the scan that finds placeholders ([`template`]; each
//! connector supplies only its [`template::Dialect`]: what to step over, how a parameter is
//! written), the per-right settings checked at start-up ([`rights`]), and the apply and
//! read-back loop of a vendor's asynchronous SQL API ([`jobs`]).

pub mod jobs;
pub mod rights;
pub mod template;

/// A dialect for the kit's own tests: writes `?`, steps over nothing.
#[cfg(test)]
pub(crate) struct Plain;

#[cfg(test)]
impl template::Dialect for Plain {
    fn skip(&self, _text: &[char], at: usize) -> Result<usize, template::TemplateError> {
        Ok(at + 1)
    }

    fn parameter(&self, _placeholder: template::Placeholder, _index: usize) -> String {
        "?".into()
    }
}
