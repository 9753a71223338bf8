//! PostgreSQL's dialect of the statement templates: the template's named placeholders
//! (`:email_sha256`, `:customer_id`, …; the scheme and the binding of a work item's identifiers
//! are in [`hush_connector_kit::sql::template`]) become positional parameters (`$1`, `$2`, …)
//! once, at start-up, and each work item's identifiers are bound to them as values — never
//! spliced into the SQL text, so no identifier can change a statement.
//!
//! Every value is bound as `text`; cast in the template for other column types
//! (`WHERE id = :customer_id::bigint`). A `::` cast, a `:=` named argument, and anything inside
//! string literals, quoted identifiers, dollar quotes and comments is left alone. Positional
//! parameters (`$1`) are refused: one scheme only.

use hush_connector_kit::sql::template::{
    find_end, line_end, quoted_end, Dialect, Escapes, Placeholder, TemplateError,
};

/// PostgreSQL's SQL: `$n` parameters; string literals (`E'…'` with backslash escapes), quoted
/// identifiers, dollar quotes and (nested) comments stepped over; `::` casts and `:=` named
/// arguments left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    fn skip(&self, chars: &[char], i: usize) -> Result<usize, TemplateError> {
        let next = chars.get(i + 1).copied();
        let previous = i.checked_sub(1).map(|p| chars[p]);
        let doubled = Escapes {
            doubled: true,
            backslash: false,
        };
        Ok(match chars[i] {
            '\'' => {
                // E'…' strings take backslash escapes.
                let escaped = matches!(previous, Some('e' | 'E'))
                    && !i
                        .checked_sub(2)
                        .is_some_and(|p| is_identifier_char(chars[p]));
                let escapes = Escapes {
                    backslash: escaped,
                    ..doubled
                };
                quoted_end(chars, i, '\'', escapes)
                    .ok_or(TemplateError::Unterminated("string literal"))?
            }
            '"' => quoted_end(chars, i, '"', doubled)
                .ok_or(TemplateError::Unterminated("quoted identifier"))?,
            '-' if next == Some('-') => line_end(chars, i),
            '/' if next == Some('*') => {
                block_comment_end(chars, i).ok_or(TemplateError::Unterminated("comment"))?
            }
            '$' if previous.is_some_and(is_identifier_char) => i + 1,
            '$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                return Err(TemplateError::VendorParameter {
                    syntax: "the positional parameter",
                    written: format!("${digits}"),
                });
            }
            '$' => match dollar_quote_end(chars, i) {
                Some(Ok(end)) => end,
                Some(Err(())) => return Err(TemplateError::Unterminated("dollar quote")),
                None => i + 1,
            },
            ':' if next == Some(':') || next == Some('=') => i + 2,
            _ => i + 1,
        })
    }

    fn parameter(&self, _placeholder: Placeholder, index: usize) -> String {
        format!("${}", index + 1)
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
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
    Some(find_end(chars, close + 1, tag, false).ok_or(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::sql::template::Template;

    #[test]
    fn named_placeholders_become_positional_parameters_in_order_of_first_use() {
        hush_connector_kit::testing::assert_dialect_writes_each_use(
            &Postgres,
            ["$1", "$2", "$3", "$2"],
        );
    }

    #[test]
    fn casts_literals_quoted_names_dollar_quotes_and_comments_are_left_alone() {
        let text = "DELETE FROM \"t:x\" WHERE id = :customer_id::bigint \
                    AND note <> 'a :email b' AND tag <> E'it\\'s :phone' \
                    AND f(a := 1) AND body <> $q$ :maid $q$ AND x <> $$:maid$$ \
                    -- :cookie_id\n /* :device_id /* nested */ */ AND a[1:2] = 1 AND col$1 = 2";
        hush_connector_kit::testing::assert_dialect_binds_only_the_placeholder(
            &Postgres,
            text,
            ":customer_id::bigint",
            "$1::bigint",
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        hush_connector_kit::testing::assert_dialect_refuses_bad_templates(&Postgres);
        let refused = |text: &str| Template::parse(text, &Postgres).unwrap_err();
        assert_eq!(
            refused("DELETE FROM t WHERE e = $1").to_string(),
            "uses the positional parameter `$1`; write a named placeholder such as \
             `:email_sha256` instead"
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
    }
}
