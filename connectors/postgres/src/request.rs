//! Pure functions from a configured SQL template and a work item to what PostgreSQL receives:
//! the template's named placeholders (`:email_sha256`, `:customer_id`, …) become positional
//! parameters (`$1`, `$2`, …) once, at start-up, and each work item's identifiers are bound to
//! them as values — never spliced into the SQL text, so no identifier can change a statement.
//!
//! # The placeholder scheme
//!
//! | placeholder | binds |
//! |---|---|
//! | `:email_sha256`, `:phone_sha256`, `:customer_id_sha256`, `:device_id_sha256`, `:cookie_id_sha256`, `:maid_sha256` | lowercase hex SHA-256 of the normalised identifier, as intake hashed it |
//! | `:email`, `:phone`, `:customer_id`, `:device_id`, `:cookie_id`, `:maid` | the normalised raw value (lowercase email, E.164 phone); intake must keep it (`[intake] keep_raw`) |
//! | `:request_id` | the request id, e.g. to record which request flagged a row |
//!
//! Every value is bound as `text`; cast in the template for other column types
//! (`WHERE id = :customer_id::bigint`). A `::` cast, a `:=` named argument, and anything inside
//! string literals, quoted identifiers, dollar quotes and comments is left alone. Positional
//! parameters (`$1`) are refused: one scheme only.
//!
//! A statement runs once per identifier value: a person with two emails runs
//! `… WHERE email_sha256 = :email_sha256` twice. A template naming several identifier types
//! runs `n` times, `n` being the most identifiers of one of those types the person has; run `i`
//! binds the `i`-th identifier of each type, SQL `NULL` where a type has fewer. Write such a
//! template as alternatives (`WHERE email_sha256 = :email_sha256 OR phone_sha256 =
//! :phone_sha256`): a `NULL` never matches.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;

/// The identifier types a placeholder can name, in the order error messages list them.
const IDENTIFIER_TYPES: [IdentifierType; 6] = [
    IdentifierType::Email,
    IdentifierType::Phone,
    IdentifierType::CustomerId,
    IdentifierType::DeviceId,
    IdentifierType::CookieId,
    IdentifierType::Maid,
];

/// What one named placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `:<type>_sha256`: the identifier's SHA-256 as intake computed it.
    Hashed(IdentifierType),
    /// `:<type>`: the identifier's normalised raw value.
    Raw(IdentifierType),
    /// `:request_id`: the request id.
    RequestId,
}

impl Placeholder {
    /// The placeholder called `name` (without the colon), if the scheme has one.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "request_id" {
            return Some(Placeholder::RequestId);
        }
        IDENTIFIER_TYPES.into_iter().find_map(|kind| {
            let base = kind.as_str().to_ascii_lowercase();
            if name == base {
                Some(Placeholder::Raw(kind))
            } else if name.strip_suffix("_sha256") == Some(base.as_str()) {
                Some(Placeholder::Hashed(kind))
            } else {
                None
            }
        })
    }

    /// The placeholder's name, without the colon.
    pub fn name(self) -> String {
        match self {
            Placeholder::RequestId => "request_id".to_owned(),
            Placeholder::Raw(kind) => kind.as_str().to_ascii_lowercase(),
            Placeholder::Hashed(kind) => format!("{}_sha256", kind.as_str().to_ascii_lowercase()),
        }
    }

    /// The identifier type it binds, unless it is the request id.
    pub fn identifier_type(self) -> Option<IdentifierType> {
        match self {
            Placeholder::Hashed(kind) | Placeholder::Raw(kind) => Some(kind),
            Placeholder::RequestId => None,
        }
    }

    /// Every placeholder name of the scheme, `:`-prefixed, comma-separated.
    pub fn known_names() -> String {
        IDENTIFIER_TYPES
            .into_iter()
            .flat_map(|kind| [Placeholder::Hashed(kind), Placeholder::Raw(kind)])
            .chain([Placeholder::RequestId])
            .map(|p| format!(":{}", p.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a configured template cannot be used; the configuration error names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// A placeholder the scheme does not have.
    #[error("uses the unknown placeholder `:{0}` (known: {known})", known = Placeholder::known_names())]
    UnknownPlaceholder(String),
    /// A positional parameter such as `$1`.
    #[error("uses the positional parameter `${0}`; write a named placeholder such as `:email_sha256` instead")]
    Positional(String),
    /// A string literal, quoted identifier, dollar quote or comment that never ends.
    #[error("has an unterminated {0}")]
    Unterminated(&'static str),
    /// No identifier placeholder: the statement would act on no one or on everyone.
    #[error("names no identifier placeholder (such as `:email_sha256`), so it cannot select the subject's rows")]
    NoIdentifier,
}

/// The values of one execution, one per parameter; `None` binds SQL `NULL`.
pub type Execution = Vec<Option<String>>;

/// Why a work item cannot be bound to a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbindable {
    /// The person has no identifier of any type the template matches on.
    NoIdentifier(Vec<IdentifierType>),
    /// The template binds the raw value of this type, but an identifier of it came hashed only.
    RawMissing(IdentifierType),
}

/// A configured template, converted for PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The SQL text as PostgreSQL prepares it, each placeholder replaced by `$n`.
    pub sql: String,
    /// What `$1`, `$2`, … stand for, in order; a placeholder used twice is one parameter.
    pub params: Vec<Placeholder>,
}

impl Template {
    /// Converts `text`'s named placeholders to positional parameters.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut sql = String::with_capacity(text.len() + 8);
        let mut params: Vec<Placeholder> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let end = match c {
                '\'' => {
                    // E'…' strings take backslash escapes.
                    let escaped = matches!(previous, Some('e' | 'E'))
                        && !i
                            .checked_sub(2)
                            .is_some_and(|p| is_identifier_char(chars[p]));
                    quoted_end(&chars, i, '\'', escaped)
                        .ok_or(TemplateError::Unterminated("string literal"))?
                }
                '"' => quoted_end(&chars, i, '"', false)
                    .ok_or(TemplateError::Unterminated("quoted identifier"))?,
                '-' if next == Some('-') => chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |n| i + n + 1),
                '/' if next == Some('*') => {
                    block_comment_end(&chars, i).ok_or(TemplateError::Unterminated("comment"))?
                }
                '$' if previous.is_some_and(is_identifier_char) => i + 1,
                '$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                    let digits: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    return Err(TemplateError::Positional(digits));
                }
                '$' => match dollar_quote_end(&chars, i) {
                    Some(Ok(end)) => end,
                    Some(Err(())) => return Err(TemplateError::Unterminated("dollar quote")),
                    None => i + 1,
                },
                ':' if next == Some(':') || next == Some('=') => i + 2,
                ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| is_identifier_char(**c) && **c != '$')
                        .collect();
                    let placeholder = Placeholder::from_name(&name)
                        .ok_or_else(|| TemplateError::UnknownPlaceholder(name.clone()))?;
                    let index = match params.iter().position(|p| *p == placeholder) {
                        Some(index) => index,
                        None => {
                            params.push(placeholder);
                            params.len() - 1
                        }
                    };
                    sql.push_str(&format!("${}", index + 1));
                    i += 1 + name.chars().count();
                    continue;
                }
                _ => i + 1,
            };
            sql.extend(&chars[i..end]);
            i = end;
        }
        if !params.iter().any(|p| p.identifier_type().is_some()) {
            return Err(TemplateError::NoIdentifier);
        }
        Ok(Self { sql, params })
    }

    /// The identifier types the template matches on, each once, in parameter order.
    pub fn identifier_types(&self) -> Vec<IdentifierType> {
        let mut types = Vec::new();
        for kind in self.params.iter().filter_map(|p| p.identifier_type()) {
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        types
    }

    /// The executions `work` needs: one per identifier value (see the module documentation).
    pub fn bind(&self, work: &SuppressionWork) -> Result<Vec<Execution>, Unbindable> {
        let mut values: Vec<Vec<String>> = Vec::with_capacity(self.params.len());
        for param in &self.params {
            values.push(match param {
                Placeholder::RequestId => vec![work.request_id.clone()],
                Placeholder::Hashed(kind) => work
                    .identifiers_of(*kind)
                    .map(|i| i.sha256.clone())
                    .collect(),
                Placeholder::Raw(kind) => work
                    .identifiers_of(*kind)
                    .map(|i| {
                        i.raw
                            .as_ref()
                            .map(|raw| raw.expose().to_owned())
                            .ok_or(Unbindable::RawMissing(*kind))
                    })
                    .collect::<Result<_, _>>()?,
            });
        }
        let runs = self
            .params
            .iter()
            .zip(&values)
            .filter(|(p, _)| p.identifier_type().is_some())
            .map(|(_, v)| v.len())
            .max()
            .unwrap_or(0);
        if runs == 0 {
            return Err(Unbindable::NoIdentifier(self.identifier_types()));
        }
        Ok((0..runs)
            .map(|run| {
                self.params
                    .iter()
                    .zip(&values)
                    .map(|(param, values)| match param {
                        Placeholder::RequestId => values.first().cloned(),
                        _ => values.get(run).cloned(),
                    })
                    .collect()
            })
            .collect())
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The index after the quote closing the one at `start`; a doubled quote is an escaped one.
fn quoted_end(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() {
        if backslash && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            if chars.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// The index after the `*/` closing the comment at `start` (PostgreSQL nests them).
fn block_comment_end(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut j = start;
    while j + 1 < chars.len() {
        match (chars[j], chars[j + 1]) {
            ('/', '*') => {
                depth += 1;
                j += 2;
            }
            ('*', '/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => j += 1,
        }
    }
    None
}

/// For a `$` at `start` opening a dollar quote (`$$` or `$tag$`), the index after the matching
/// close, or `Err` when it never closes; `None` when the `$` opens no dollar quote.
fn dollar_quote_end(chars: &[char], start: usize) -> Option<Result<usize, ()>> {
    let tag_len = chars[start + 1..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count();
    let close = start + 1 + tag_len;
    if chars.get(close) != Some(&'$') {
        return None;
    }
    let tag = &chars[start..=close];
    let body = close + 1;
    Some(
        (body..=chars.len().saturating_sub(tag.len()))
            .find(|&j| chars[j..].starts_with(tag))
            .map(|j| j + tag.len())
            .ok_or(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{hashed, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;

    fn parsed(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    #[test]
    fn named_placeholders_become_positional_parameters_in_order_of_first_use() {
        let template = parsed(
            "UPDATE customers SET do_not_sell = true, opted_out_by = :request_id \
             WHERE email_sha256 = :email_sha256 OR lower(email) = :email OR backup_sha256 = :email_sha256",
        );
        assert_eq!(
            template.sql,
            "UPDATE customers SET do_not_sell = true, opted_out_by = $1 \
             WHERE email_sha256 = $2 OR lower(email) = $3 OR backup_sha256 = $2"
        );
        assert_eq!(
            template.params,
            vec![
                Placeholder::RequestId,
                Placeholder::Hashed(IdentifierType::Email),
                Placeholder::Raw(IdentifierType::Email),
            ]
        );
        assert_eq!(template.identifier_types(), vec![IdentifierType::Email]);
    }

    #[test]
    fn casts_literals_quoted_names_dollar_quotes_and_comments_are_left_alone() {
        let text = "DELETE FROM \"t:x\" WHERE id = :customer_id::bigint \
                    AND note <> 'a :email b' AND tag <> E'it\\'s :phone' \
                    AND f(a := 1) AND body <> $q$ :maid $q$ AND x <> $$:maid$$ \
                    -- :cookie_id\n /* :device_id /* nested */ */ AND a[1:2] = 1 AND col$1 = 2";
        let template = parsed(text);
        assert_eq!(
            template.sql,
            text.replace(":customer_id::bigint", "$1::bigint")
        );
        assert_eq!(
            template.params,
            vec![Placeholder::Raw(IdentifierType::CustomerId)]
        );
    }

    #[test]
    fn every_name_of_the_scheme_round_trips() {
        for name in Placeholder::known_names().split(", ") {
            let name = name.trim_start_matches(':');
            assert_eq!(
                Placeholder::from_name(name).map(|p| p.name()),
                Some(name.to_owned())
            );
        }
        assert_eq!(
            Placeholder::from_name("phone_sha256"),
            Some(Placeholder::Hashed(IdentifierType::Phone))
        );
        assert_eq!(Placeholder::from_name("email_md5"), None);
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let refused = |text: &str| Template::parse(text).unwrap_err();
        assert_eq!(refused("  "), TemplateError::Empty);
        assert_eq!(
            refused("DELETE FROM t WHERE e = :emial"),
            TemplateError::UnknownPlaceholder("emial".into())
        );
        assert!(refused("DELETE FROM t WHERE e = :emial")
            .to_string()
            .contains(":email_sha256"));
        assert_eq!(
            refused("DELETE FROM t WHERE e = $1"),
            TemplateError::Positional("1".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = 'x"),
            TemplateError::Unterminated("string literal")
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = $$x"),
            TemplateError::Unterminated("dollar quote")
        );
        assert_eq!(
            refused("DELETE FROM t /* x"),
            TemplateError::Unterminated("comment")
        );
        assert_eq!(
            refused("DELETE FROM customers"),
            TemplateError::NoIdentifier
        );
        assert_eq!(
            refused("UPDATE t SET by = :request_id"),
            TemplateError::NoIdentifier
        );
    }

    #[test]
    fn one_execution_per_identifier_value() {
        let template = parsed("UPDATE t SET f = true WHERE e = :email_sha256 AND r = :request_id");
        let item = work(RequestKind::OptOutSaleShare)
            .with(hashed(IdentifierType::Email, "a@example.com"))
            .with(hashed(IdentifierType::Email, "b@example.com"))
            .with(hashed(IdentifierType::Phone, "+14155550100"));
        let runs = template.bind(&item).unwrap();
        assert_eq!(
            runs,
            vec![
                vec![
                    Some(item.identifiers[0].sha256.clone()),
                    Some(item.request_id.clone())
                ],
                vec![
                    Some(item.identifiers[1].sha256.clone()),
                    Some(item.request_id.clone())
                ],
            ]
        );
    }

    #[test]
    fn several_types_bind_null_where_a_type_has_fewer_values() {
        let template = parsed("DELETE FROM t WHERE e = :email OR p = :phone_sha256");
        let item = work(RequestKind::Delete)
            .with(with_raw(IdentifierType::Email, "a@example.com"))
            .with(with_raw(IdentifierType::Email, "b@example.com"))
            .with(hashed(IdentifierType::Phone, "+14155550100"));
        let runs = template.bind(&item).unwrap();
        assert_eq!(
            runs,
            vec![
                vec![
                    Some("a@example.com".into()),
                    Some(item.identifiers[2].sha256.clone())
                ],
                vec![Some("b@example.com".into()), None],
            ]
        );
    }

    #[test]
    fn a_person_without_the_templates_identifiers_cannot_be_bound() {
        let template = parsed("DELETE FROM t WHERE e = :email_sha256 OR c = :customer_id");
        let cookie_only =
            work(RequestKind::Delete).with(hashed(IdentifierType::CookieId, "cookie-1"));
        assert_eq!(
            template.bind(&cookie_only),
            Err(Unbindable::NoIdentifier(vec![
                IdentifierType::Email,
                IdentifierType::CustomerId
            ]))
        );
        let hashed_only = work(RequestKind::Delete).with(hashed(IdentifierType::CustomerId, "c-1"));
        assert_eq!(
            template.bind(&hashed_only),
            Err(Unbindable::RawMissing(IdentifierType::CustomerId))
        );
    }
}
