//! The one table a simulated SQL warehouse holds (BigQuery's and Snowflake's simulators): rows
//! of text columns, and the three things a Hush statement template does to them, matched on a
//! key column whose value the statement binds. The simulators do not parse SQL; each registers
//! its statements' exact text and which of these it does ([`Statement`]), and answers in its
//! vendor's own outcome type.

use std::collections::BTreeMap;
use std::sync::Arc;

use hush_connector_kit::testing::email_sha256;
use hush_connector_kit::testing::warehouse::Templates;

/// One row of a simulated table: column name → value as text.
pub type SimRow = BTreeMap<String, String>;

/// Where a statement's bound value for a key column is found.
pub trait Bindings {
    /// The value bound for `key`, when there is one.
    fn value_for(&self, key: &str) -> Option<&str>;
}

/// Named parameters (`@name`, BigQuery): the value of the parameter named like the key.
impl Bindings for BTreeMap<String, Option<String>> {
    fn value_for(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|value| value.as_deref())
    }
}

/// Positional bind variables (`?`, Snowflake): the first one, whatever the key.
impl Bindings for [Option<String>] {
    fn value_for(&self, _key: &str) -> Option<&str> {
        self.first().and_then(|value| value.as_deref())
    }
}

/// Whether `row`'s `key` column holds the value bound for it.
fn matches(row: &SimRow, key: &str, bound: &(impl Bindings + ?Sized)) -> bool {
    bound
        .value_for(key)
        .is_some_and(|value| row.get(key).map(String::as_str) == Some(value))
}

/// The row the warehouse suite's table holds for the person with email `address`: the email's
/// digest, neither `do_not_sell` nor `limit_sensitive` set.
pub fn suite_row(address: &str) -> SimRow {
    SimRow::from([
        ("email_sha256".to_owned(), email_sha256(address)),
        ("do_not_sell".to_owned(), "false".to_owned()),
        ("limit_sensitive".to_owned(), "false".to_owned()),
    ])
}

/// Sets `column` to `value` on the rows whose `key` holds the bound value; how many changed.
pub fn update(
    rows: &mut [SimRow],
    key: &str,
    bound: &(impl Bindings + ?Sized),
    column: &str,
    value: &str,
) -> u64 {
    let mut changed = 0;
    for row in rows.iter_mut().filter(|r| matches(r, key, bound)) {
        row.insert(column.to_owned(), value.to_owned());
        changed += 1;
    }
    changed
}

/// Removes the rows whose `key` holds the bound value; how many went.
pub fn delete(rows: &mut Vec<SimRow>, key: &str, bound: &(impl Bindings + ?Sized)) -> u64 {
    let before = rows.len();
    rows.retain(|r| !matches(r, key, bound));
    (before - rows.len()) as u64
}

/// Counts the rows whose `key` holds the bound value and, when `unless` is given, whose
/// column does not hold that value.
pub fn count(
    rows: &[SimRow],
    key: &str,
    bound: &(impl Bindings + ?Sized),
    unless: Option<(&str, &str)>,
) -> u64 {
    rows.iter()
        .filter(|r| matches(r, key, bound))
        .filter(|r| {
            unless.is_none_or(|(column, value)| r.get(column).map(String::as_str) != Some(value))
        })
        .count() as u64
}

/// What one of the three table statements did, for a simulator to answer in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// An `UPDATE` changed this many rows.
    Updated(u64),
    /// A `DELETE` removed this many rows.
    Deleted(u64),
    /// A `SELECT COUNT(*)` counted this many rows.
    Counted(u64),
}

/// What a statement does to the table, given its bound values `B`, answered as `O`.
type Action<B, O> = Arc<dyn Fn(&mut Vec<SimRow>, &B) -> O + Send + Sync>;

/// A statement a simulated warehouse can run: its exact text as the connector sends it and what
/// it does with its bound values `B` (named or positional, see [`Bindings`]) to the table,
/// answered in the simulator's outcome type `O`.
pub struct Statement<B: ?Sized, O> {
    /// The statement text as the connector sends it.
    pub text: String,
    action: Action<B, O>,
}

impl<B: ?Sized, O> Clone for Statement<B, O> {
    fn clone(&self) -> Self {
        Self {
            text: self.text.clone(),
            action: Arc::clone(&self.action),
        }
    }
}

impl<B, O> Statement<B, O>
where
    B: Bindings + ?Sized + 'static,
    O: From<Effect> + 'static,
{
    /// A statement doing `action` to the table with the bound values.
    pub fn new(
        text: &str,
        action: impl Fn(&mut Vec<SimRow>, &B) -> O + Send + Sync + 'static,
    ) -> Self {
        Self {
            text: text.to_owned(),
            action: Arc::new(action),
        }
    }

    /// `UPDATE … SET <column> = <value> WHERE <key> = <bound>`: sets `column` on the rows
    /// whose `key` holds the value bound for it.
    pub fn update(text: &str, key: &str, column: &str, value: &str) -> Self {
        let (key, column, value) = (key.to_owned(), column.to_owned(), value.to_owned());
        Self::new(text, move |rows, bound| {
            Effect::Updated(update(rows, &key, bound, &column, &value)).into()
        })
    }

    /// `DELETE … WHERE <key> = <bound>`: removes the rows whose `key` holds the value bound
    /// for it.
    pub fn delete(text: &str, key: &str) -> Self {
        let key = key.to_owned();
        Self::new(text, move |rows, bound| {
            Effect::Deleted(delete(rows, &key, bound)).into()
        })
    }

    /// `SELECT COUNT(*) … WHERE <key> = <bound> [AND <column> <> <value>]`: counts the rows
    /// whose `key` holds the value bound for it and, when given, whose `column` is not `value`.
    pub fn count(text: &str, key: &str, unless: Option<(&str, &str)>) -> Self {
        let key = key.to_owned();
        let unless = unless.map(|(c, v)| (c.to_owned(), v.to_owned()));
        Self::new(text, move |rows, bound| {
            let unless = unless.as_ref().map(|(c, v)| (c.as_str(), v.as_str()));
            Effect::Counted(count(rows, &key, bound, unless)).into()
        })
    }

    /// The warehouse suite's five statements as the vendor receives them (`sent`), each doing
    /// to the table what [`Templates`] says it does.
    pub fn for_templates(sent: &Templates) -> Vec<Self> {
        vec![
            Self::update(&sent.opt_out, "email_sha256", "do_not_sell", "true"),
            Self::count(
                &sent.opt_out_check,
                "email_sha256",
                Some(("do_not_sell", "true")),
            ),
            Self::update(&sent.limit, "email_sha256", "limit_sensitive", "true"),
            Self::delete(&sent.delete, "email_sha256"),
            Self::count(&sent.delete_check, "email_sha256", None),
        ]
    }

    /// Puts `statement` in place of the one in `statements` with the same text.
    pub fn replace(statements: &mut Vec<Self>, statement: Self) {
        statements.retain(|s| s.text != statement.text);
        statements.push(statement);
    }

    /// Runs the statement against `rows` with the `bound` values.
    pub fn run(&self, rows: &mut Vec<SimRow>, bound: &B) -> O {
        (self.action)(rows, bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<SimRow> {
        ["a", "b", "a"]
            .iter()
            .map(|key| {
                SimRow::from([
                    ("k".to_owned(), key.to_string()),
                    ("flag".to_owned(), "false".to_owned()),
                ])
            })
            .collect()
    }

    #[test]
    fn named_and_positional_bindings_match_the_same_rows() {
        let named = BTreeMap::from([("k".to_owned(), Some("a".to_owned()))]);
        let positional = [Some("a".to_owned())];
        let mut table = rows();
        assert_eq!(update(&mut table, "k", &named, "flag", "true"), 2);
        assert_eq!(
            count(&table, "k", &positional[..], Some(("flag", "true"))),
            0
        );
        assert_eq!(count(&table, "k", &positional[..], None), 2);
        assert_eq!(delete(&mut table, "k", &named), 2);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn statements_run_their_effect_on_the_table() {
        let named = BTreeMap::from([("k".to_owned(), Some("a".to_owned()))]);
        let mut table = rows();
        type Named = Statement<BTreeMap<String, Option<String>>, Effect>;
        let flag = Named::update("UPDATE", "k", "flag", "true");
        let check = Named::count("COUNT", "k", Some(("flag", "false")));
        let remove = Named::delete("DELETE", "k");
        assert_eq!(flag.clone().run(&mut table, &named), Effect::Updated(2));
        assert_eq!(check.run(&mut table, &named), Effect::Counted(2));
        assert_eq!(remove.run(&mut table, &named), Effect::Deleted(2));
        assert_eq!(check.run(&mut table, &named), Effect::Counted(0));
        assert_eq!(table.len(), 1);
        assert_eq!(flag.text, "UPDATE");
    }

    #[test]
    fn a_missing_or_null_binding_matches_nothing() {
        let mut table = rows();
        let null: [Option<String>; 1] = [None];
        assert_eq!(delete(&mut table, "k", &null[..]), 0);
        assert_eq!(count(&table, "k", &BTreeMap::new(), None), 0);
    }

    #[test]
    fn the_suite_statements_do_to_the_table_what_their_templates_say() {
        type Positional = Statement<[Option<String>], Effect>;
        let sent = Templates::over("t").sent_as("?");
        let mut statements = Positional::for_templates(&sent);
        assert_eq!(statements.len(), 5);
        let run = |statements: &[Positional], text: &str, table: &mut Vec<SimRow>| {
            let statement = statements.iter().find(|s| s.text == text).unwrap();
            statement.run(table, &[Some(email_sha256("a@example.com"))][..])
        };
        let mut table = vec![suite_row("a@example.com"), suite_row("b@example.com")];
        assert_eq!(
            run(&statements, &sent.opt_out_check, &mut table),
            Effect::Counted(1)
        );
        assert_eq!(
            run(&statements, &sent.opt_out, &mut table),
            Effect::Updated(1)
        );
        assert_eq!(
            run(&statements, &sent.opt_out_check, &mut table),
            Effect::Counted(0)
        );
        assert_eq!(
            run(&statements, &sent.limit, &mut table),
            Effect::Updated(1)
        );
        assert_eq!(table[0]["limit_sensitive"], "true");
        assert_eq!(table[1]["limit_sensitive"], "false");
        assert_eq!(
            run(&statements, &sent.delete, &mut table),
            Effect::Deleted(1)
        );
        assert_eq!(
            run(&statements, &sent.delete_check, &mut table),
            Effect::Counted(0)
        );
        assert_eq!(table.len(), 1);

        Positional::replace(
            &mut statements,
            Positional::new(&sent.delete_check, |_, _| Effect::Counted(7)),
        );
        assert_eq!(statements.len(), 5, "the statement was replaced, not added");
        assert_eq!(
            run(&statements, &sent.delete_check, &mut table),
            Effect::Counted(7)
        );
    }
}
