//! Statement templates: the placeholder scheme every SQL connector shares, the scan that finds
//! the placeholders in a template (skipping what the vendor's [`Dialect`] says is a literal, a
//! comment or its own syntax), and the binding of a work item's identifiers to them as
//! parameter values — never spliced into the SQL text, so no identifier can change a statement.
//!
//! # The placeholder scheme
//!
//! | placeholder | binds |
//! |---|---|
//! | `:email_sha256`, `:phone_sha256`, `:customer_id_sha256`, `:device_id_sha256`, `:cookie_id_sha256`, `:maid_sha256` | lowercase hex SHA-256 of the normalised identifier, as intake hashed it |
//! | `:email`, `:phone`, `:customer_id`, `:device_id`, `:cookie_id`, `:maid` | the normalised raw value (lowercase email, E.164 phone); intake must keep it (`[intake] keep_raw`) |
//! | `:request_id` | the request id, e.g. to record which request flagged a row |
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

/// Why a configured template cannot be used; the configuration error puts the setting's name
/// in front of this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// A placeholder the scheme does not have.
    #[error("uses the unknown placeholder `:{0}` (known: {known})", known = Placeholder::known_names())]
    UnknownPlaceholder(String),
    /// The vendor's own parameter syntax (`$1`, `?`, `:1`, `@name`): one scheme only.
    #[error(
        "uses {syntax} `{written}`; write a named placeholder such as `:email_sha256` instead"
    )]
    VendorParameter {
        /// What the vendor calls it, e.g. `the positional parameter`.
        syntax: &'static str,
        /// How the template wrote it, e.g. `$1`.
        written: String,
    },
    /// A string literal, quoted identifier, dollar quote or comment that never ends.
    #[error("has an unterminated {0}")]
    Unterminated(&'static str),
    /// No identifier placeholder: the statement would act on no one or on everyone.
    #[error("names no identifier placeholder (such as `:email_sha256`), so it cannot select the subject's rows")]
    NoIdentifier,
}

/// What is particular to one vendor's SQL: what the scan must step over, and how a parameter
/// is written in the statement the vendor receives.
pub trait Dialect: Sync {
    /// The index after the token starting at `at` that is not a placeholder: a literal, a
    /// quoted name or a comment (stepped over whole), a cast, or any other single character.
    /// The vendor's own parameter syntax and a literal that never ends are refused.
    fn skip(&self, text: &[char], at: usize) -> Result<usize, TemplateError>;

    /// Whether the `:` at `at`, followed by a letter or `_`, opens a placeholder (rather than,
    /// say, a path into a semi-structured value, `payload:email`).
    fn opens_placeholder(&self, _text: &[char], _at: usize) -> bool {
        true
    }

    /// How the parameter for `placeholder`, the `index`-th distinct one (from 0), is written in
    /// the statement the vendor receives.
    fn parameter(&self, placeholder: Placeholder, index: usize) -> String;
}

/// The values of one run, one per distinct placeholder ([`Template::params`]); `None` binds
/// SQL `NULL`.
pub type Execution = Vec<Option<String>>;

/// Why a work item cannot be bound to a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbindable {
    /// The person has no identifier of any type the template matches on.
    NoIdentifier(Vec<IdentifierType>),
    /// The template binds the raw value of this type, but an identifier of it came hashed only.
    RawMissing(IdentifierType),
}

/// A configured template, converted for one vendor's dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The SQL text as the vendor receives it, each placeholder written as the dialect's
    /// parameter.
    pub sql: String,
    /// The distinct placeholders, in order of first use.
    pub params: Vec<Placeholder>,
    /// For each placeholder written in `sql`, in order, the index in `params` it binds.
    pub slots: Vec<usize>,
}

impl Template {
    /// Converts `text`'s named placeholders to `dialect`'s parameters, refusing a template
    /// that cannot be used (see [`TemplateError`]).
    pub fn parse(text: &str, dialect: &dyn Dialect) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut sql = String::with_capacity(text.len() + 8);
        let mut params: Vec<Placeholder> = Vec::new();
        let mut slots = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let opens = chars[i] == ':'
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
                && dialect.opens_placeholder(&chars, i);
            if !opens {
                let end = dialect.skip(&chars, i)?;
                sql.extend(&chars[i..end]);
                i = end;
                continue;
            }
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
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
            slots.push(index);
            sql.push_str(&dialect.parameter(placeholder, index));
            i += 1 + name.chars().count();
        }
        if !params.iter().any(|p| p.identifier_type().is_some()) {
            return Err(TemplateError::NoIdentifier);
        }
        Ok(Self { sql, params, slots })
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

    /// The runs `work` needs: one per identifier value (see the module documentation).
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

/// How a quoted token escapes its closing quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escapes {
    /// A doubled quote (`''`) stands for one.
    pub doubled: bool,
    /// A backslash escapes the character after it.
    pub backslash: bool,
}

/// The index after the quote closing the one at `start`, or `None` when it never closes.
pub fn quoted_end(text: &[char], start: usize, quote: char, escapes: Escapes) -> Option<usize> {
    let mut j = start + 1;
    while j < text.len() {
        if escapes.backslash && text[j] == '\\' {
            j += 2;
            continue;
        }
        if text[j] == quote {
            if escapes.doubled && text.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// The index after the end of the line a comment starts on at `start`.
pub fn line_end(text: &[char], start: usize) -> usize {
    text[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(text.len(), |n| start + n + 1)
}

/// The index after the first `needle` at or after `from`, skipping backslash-escaped
/// characters where `backslash`; `None` when there is none.
pub fn find_end(text: &[char], from: usize, needle: &[char], backslash: bool) -> Option<usize> {
    let mut j = from;
    while j + needle.len() <= text.len() {
        if backslash && text[j] == '\\' {
            j += 2;
            continue;
        }
        if text[j..].starts_with(needle) {
            return Some(j + needle.len());
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hashed, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;

    /// A dialect with `?` parameters that steps over `'…'` literals (doubled quotes) and
    /// `--` comments, refuses `?` written by hand, and leaves a colon after a name alone.
    struct Question;

    impl Dialect for Question {
        fn skip(&self, text: &[char], at: usize) -> Result<usize, TemplateError> {
            match text[at] {
                '\'' => quoted_end(
                    text,
                    at,
                    '\'',
                    Escapes {
                        doubled: true,
                        backslash: false,
                    },
                )
                .ok_or(TemplateError::Unterminated("string literal")),
                '-' if text.get(at + 1) == Some(&'-') => Ok(line_end(text, at)),
                '?' => Err(TemplateError::VendorParameter {
                    syntax: "a bind variable",
                    written: "?".into(),
                }),
                _ => Ok(at + 1),
            }
        }

        fn opens_placeholder(&self, text: &[char], at: usize) -> bool {
            !at.checked_sub(1).is_some_and(|p| text[p].is_alphanumeric())
        }

        fn parameter(&self, _placeholder: Placeholder, _index: usize) -> String {
            "?".into()
        }
    }

    /// A dialect writing `$n`, stepping over nothing.
    struct Numbered;

    impl Dialect for Numbered {
        fn skip(&self, _text: &[char], at: usize) -> Result<usize, TemplateError> {
            Ok(at + 1)
        }

        fn parameter(&self, _placeholder: Placeholder, index: usize) -> String {
            format!("${}", index + 1)
        }
    }

    fn parsed(text: &str) -> Template {
        Template::parse(text, &Question).unwrap()
    }

    #[test]
    fn each_use_is_a_slot_and_each_distinct_placeholder_a_parameter() {
        let text = "UPDATE c SET by = :request_id WHERE e = :email_sha256 OR r = :email \
                    OR b = :email_sha256";
        let template = parsed(text);
        assert_eq!(
            template.sql,
            "UPDATE c SET by = ? WHERE e = ? OR r = ? OR b = ?"
        );
        assert_eq!(
            template.params,
            vec![
                Placeholder::RequestId,
                Placeholder::Hashed(IdentifierType::Email),
                Placeholder::Raw(IdentifierType::Email),
            ]
        );
        assert_eq!(template.slots, vec![0, 1, 2, 1]);
        let numbered = Template::parse(text, &Numbered).unwrap();
        assert_eq!(
            numbered.sql,
            "UPDATE c SET by = $1 WHERE e = $2 OR r = $3 OR b = $2"
        );
    }

    #[test]
    fn what_the_dialect_steps_over_is_copied_unchanged() {
        let text = "DELETE FROM t WHERE e = :email AND n <> 'it''s :phone' AND p:maid = 1 \
                    -- :cookie_id ?\n AND x = 1";
        let template = parsed(text);
        assert_eq!(template.sql, text.replacen(":email", "?", 1));
        assert_eq!(
            template.params,
            vec![Placeholder::Raw(IdentifierType::Email)]
        );
    }

    #[test]
    fn every_name_of_the_scheme_round_trips() {
        let names = Placeholder::known_names();
        assert_eq!(names.split(", ").count(), 13);
        for name in names.split(", ") {
            let name = name.trim_start_matches(':');
            assert_eq!(
                Placeholder::from_name(name).map(|p| p.name()),
                Some(name.to_owned())
            );
        }
        assert_eq!(
            Placeholder::from_name("customer_id_sha256"),
            Some(Placeholder::Hashed(IdentifierType::CustomerId))
        );
        assert_eq!(Placeholder::from_name("email_md5"), None);
        assert_eq!(Placeholder::from_name("Email"), None);
    }

    #[test]
    fn unusable_templates_are_refused_saying_why() {
        let refused = |text: &str| Template::parse(text, &Question).unwrap_err();
        assert_eq!(refused(" \n\t"), TemplateError::Empty);
        let unknown = refused("DELETE FROM t WHERE e = :emial");
        assert_eq!(unknown, TemplateError::UnknownPlaceholder("emial".into()));
        assert!(
            unknown.to_string().starts_with(
                "uses the unknown placeholder `:emial` (known: :email_sha256, :email, "
            ),
            "{unknown}"
        );
        let vendor = refused("DELETE FROM t WHERE e = ?");
        assert_eq!(
            vendor.to_string(),
            "uses a bind variable `?`; write a named placeholder such as `:email_sha256` instead"
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = 'x"),
            TemplateError::Unterminated("string literal")
        );
        assert_eq!(
            refused("UPDATE t SET by = :request_id"),
            TemplateError::NoIdentifier
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = ':email'"),
            TemplateError::NoIdentifier
        );
    }

    #[test]
    fn one_run_per_identifier_value_with_null_where_a_type_has_fewer() {
        let template =
            parsed("DELETE FROM t WHERE e = :email OR p = :phone_sha256 AND r = :request_id");
        let item = work(RequestKind::Delete)
            .id("req-1")
            .with(with_raw(IdentifierType::Email, "a@example.com"))
            .with(with_raw(IdentifierType::Email, "b@example.com"))
            .with(hashed(IdentifierType::Phone, "+14155550100"))
            .with(hashed(IdentifierType::CookieId, "cookie-1"));
        assert_eq!(
            template.bind(&item).unwrap(),
            vec![
                vec![
                    Some("a@example.com".into()),
                    Some(item.identifiers[2].sha256.clone()),
                    Some("req-1".into()),
                ],
                vec![Some("b@example.com".into()), None, Some("req-1".into())],
            ]
        );
        assert_eq!(
            template.identifier_types(),
            vec![IdentifierType::Email, IdentifierType::Phone]
        );
    }

    #[test]
    fn a_person_the_template_cannot_select_is_not_bound() {
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

    #[test]
    fn quoted_tokens_close_where_their_escapes_say() {
        let chars = |s: &str| s.chars().collect::<Vec<char>>();
        let doubled = Escapes {
            doubled: true,
            backslash: false,
        };
        let backslash = Escapes {
            doubled: false,
            backslash: true,
        };
        assert_eq!(quoted_end(&chars("'a''b' x"), 0, '\'', doubled), Some(6));
        assert_eq!(quoted_end(&chars("'a''b' x"), 0, '\'', backslash), Some(3));
        assert_eq!(quoted_end(&chars("'a\\'b' x"), 0, '\'', backslash), Some(6));
        assert_eq!(quoted_end(&chars("'a\\'b"), 0, '\'', backslash), None);
        assert_eq!(
            find_end(&chars("x \\*/ */ y"), 0, &['*', '/'], true),
            Some(8)
        );
        assert_eq!(
            find_end(&chars("x \\*/ */ y"), 0, &['*', '/'], false),
            Some(5)
        );
        assert_eq!(find_end(&chars("x *"), 0, &['*', '/'], false), None);
        assert_eq!(line_end(&chars("-- a\nb"), 0), 5);
        assert_eq!(line_end(&chars("-- a"), 0), 4);
    }
}
