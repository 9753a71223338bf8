//! What the demo's two warehouses (BigQuery and Snowflake) have in common: a customers table
//! with one row per demo consumer, and the six statement templates a generated recipient sends
//! to it (flag, limit and delete by hashed email, each with its check). Each warehouse module
//! registers the templates with its own simulator in the form that vendor's API receives them.

use std::collections::BTreeMap;

use crate::DEMO_CONSUMERS;

/// The six statement templates of a demo warehouse, for one table.
pub(crate) struct DemoTemplates {
    opt_out: String,
    opt_out_check: String,
    limit: String,
    limit_check: String,
    delete: String,
    delete_check: String,
}

impl DemoTemplates {
    /// The templates for `table` (e.g. `crm.customers`), keyed by `:email_sha256`.
    pub(crate) fn for_table(table: &str) -> Self {
        let by_email = "WHERE email_sha256 = :email_sha256";
        Self {
            opt_out: format!("UPDATE {table} SET do_not_sell = TRUE {by_email}"),
            opt_out_check: format!("SELECT COUNT(*) FROM {table} {by_email} AND NOT do_not_sell"),
            limit: format!("UPDATE {table} SET limit_sensitive = TRUE {by_email}"),
            limit_check: format!("SELECT COUNT(*) FROM {table} {by_email} AND NOT limit_sensitive"),
            delete: format!("DELETE FROM {table} {by_email}"),
            delete_check: format!("SELECT COUNT(*) FROM {table} {by_email}"),
        }
    }

    /// The simulator's statements for the six templates, each rewritten by `sent` into the
    /// form the vendor's API receives and built with that simulator's `update`, `count` and
    /// `delete` constructors.
    pub(crate) fn statements<S>(
        &self,
        sent: fn(&str) -> String,
        update: fn(&str, &str, &str, &str) -> S,
        count: fn(&str, &str, Option<(&str, &str)>) -> S,
        delete: fn(&str, &str) -> S,
    ) -> Vec<S> {
        let key = "email_sha256";
        let flag = |template: &str, column| update(&sent(template), key, column, "true");
        let unflagged =
            |template: &str, column| count(&sent(template), key, Some((column, "true")));
        vec![
            flag(&self.opt_out, "do_not_sell"),
            unflagged(&self.opt_out_check, "do_not_sell"),
            flag(&self.limit, "limit_sensitive"),
            unflagged(&self.limit_check, "limit_sensitive"),
            delete(&sent(&self.delete), key),
            count(&sent(&self.delete_check), key, None),
        ]
    }

    /// The recipient's per-right `[settings]` tables: `opt_out`, `limit` and `delete`, each
    /// with its `statement` and `check`.
    pub(crate) fn settings(&self) -> Vec<(&'static str, toml::Value)> {
        let right = |statement: &str, check: &str| {
            toml::Value::Table(toml::Table::from_iter([
                ("statement".to_owned(), statement.into()),
                ("check".to_owned(), check.into()),
            ]))
        };
        vec![
            ("opt_out", right(&self.opt_out, &self.opt_out_check)),
            ("limit", right(&self.limit, &self.limit_check)),
            ("delete", right(&self.delete, &self.delete_check)),
        ]
    }
}

/// One row per demo consumer: `customer_id`, `email_sha256`, and both flags `false`.
pub(crate) fn demo_rows() -> Vec<BTreeMap<String, String>> {
    DEMO_CONSUMERS
        .iter()
        .map(|consumer| {
            BTreeMap::from([
                ("customer_id".to_owned(), consumer.customer_id.to_owned()),
                ("email_sha256".to_owned(), consumer.email_sha256()),
                ("do_not_sell".to_owned(), "false".to_owned()),
                ("limit_sensitive".to_owned(), "false".to_owned()),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_flag_limit_and_delete_by_hashed_email_each_with_its_check() {
        let templates = DemoTemplates::for_table("crm.customers");
        let settings: BTreeMap<_, _> = templates.settings().into_iter().collect();
        assert_eq!(
            settings["opt_out"]["statement"].as_str(),
            Some("UPDATE crm.customers SET do_not_sell = TRUE WHERE email_sha256 = :email_sha256")
        );
        assert_eq!(
            settings["limit"]["check"].as_str(),
            Some("SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = :email_sha256 AND NOT limit_sensitive")
        );
        assert_eq!(
            settings["delete"]["check"].as_str(),
            Some("SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = :email_sha256")
        );
        let sent: Vec<String> = templates.statements(
            |t| t.replace(":email_sha256", "?"),
            |text, _, column, _| format!("{text} [sets {column}]"),
            |text, _, unless| format!("{text} [unless {unless:?}]"),
            |text, _| text.to_owned(),
        );
        assert_eq!(sent.len(), 6);
        assert_eq!(
            sent[0],
            "UPDATE crm.customers SET do_not_sell = TRUE WHERE email_sha256 = ? [sets do_not_sell]"
        );
        assert_eq!(
            sent[5],
            "SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = ? [unless None]"
        );
        assert_eq!(demo_rows().len(), DEMO_CONSUMERS.len());
    }
}
