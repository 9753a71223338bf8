//! The one table a simulated SQL warehouse holds (BigQuery's and Snowflake's simulators): rows
//! of text columns, and the three things a Hush statement template does to them, matched on a
//! key column whose value the statement binds. The simulators do not parse SQL; each registers
//! its statements' exact text and which of these it does.

use std::collections::BTreeMap;

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
    fn a_missing_or_null_binding_matches_nothing() {
        let mut table = rows();
        let null: [Option<String>; 1] = [None];
        assert_eq!(delete(&mut table, "k", &null[..]), 0);
        assert_eq!(count(&table, "k", &BTreeMap::new(), None), 0);
    }
}
