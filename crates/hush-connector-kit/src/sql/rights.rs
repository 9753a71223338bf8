//! The SQL a recipient runs for each right: the `[recipients.settings.<right>]` tables, checked
//! at start-up (a right in `request_kinds` needs its statement; each template must parse, and
//! the error names the setting and the placeholder at fault), and the outcomes every SQL
//! connector gives a work item it cannot run.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::{Completion, ConnectorError, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind};
use hush_contracts::identifiers::sha256_hex;
use serde::Deserialize;

use super::template::{Dialect, Template, Unbindable};
use crate::settings::Fields;

/// Evidence key: the setting whose statement ran, e.g. `settings.opt_out.statement`. Every SQL
/// connector sets it on the outcome of a statement that ran, and only there.
pub const EVIDENCE_STATEMENT: &str = "statement";

/// One right's SQL in `[recipients.settings.<right>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSettings {
    /// The statement that applies the right to the subject's rows, e.g.
    /// `UPDATE customers SET do_not_sell = TRUE WHERE email_sha256 = :email_sha256`.
    pub statement: String,
    /// Optional read-back query returning one row with one integer column: how many of the
    /// subject's rows still do not comply (`0` is verified).
    #[serde(default)]
    pub check: Option<String>,
}

/// A parsed SQL template with the setting it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredSql {
    /// The setting, e.g. `settings.opt_out.statement`.
    pub field: String,
    /// SHA-256 of the configured text, so evidence names the exact statement that ran.
    pub sha256: String,
    /// The template, converted for the vendor's dialect.
    pub template: Template,
}

/// What the connector runs for one right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightSql {
    /// The statement applying the right.
    pub statement: ConfiguredSql,
    /// The read-back query, if configured.
    pub check: Option<ConfiguredSql>,
}

impl RightSql {
    /// Every template of this right.
    pub fn templates(&self) -> impl Iterator<Item = &ConfiguredSql> {
        std::iter::once(&self.statement).chain(&self.check)
    }
}

/// The four rights' tables of a SQL recipient's settings block, each optional: a connector's
/// settings read them with `#[serde(flatten)]`, so they stand directly in `[recipients.settings]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RightSettings {
    /// `[settings.opt_out]`: `OPT_OUT_SALE_SHARE`; required when the recipient's
    /// `request_kinds` include it.
    #[serde(default)]
    pub opt_out: Option<StatementSettings>,
    /// `[settings.limit]`: `LIMIT_SENSITIVE`; required when `request_kinds` include it.
    #[serde(default)]
    pub limit: Option<StatementSettings>,
    /// `[settings.delete]`: `DELETE`; required when `request_kinds` include it.
    #[serde(default)]
    pub delete: Option<StatementSettings>,
    /// `[settings.opt_in]`: `OPT_IN_SALE_SHARE` (e.g. clearing the opt-out flag); required when
    /// `request_kinds` include it, otherwise an opt-in is `NOT_APPLICABLE`.
    #[serde(default)]
    pub opt_in: Option<StatementSettings>,
}

/// The SQL of every configured right, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    /// SQL for `OPT_OUT_SALE_SHARE`.
    pub opt_out: Option<RightSql>,
    /// SQL for `LIMIT_SENSITIVE`.
    pub limit: Option<RightSql>,
    /// SQL for `DELETE`.
    pub delete: Option<RightSql>,
    /// SQL for `OPT_IN_SALE_SHARE`.
    pub opt_in: Option<RightSql>,
}

impl Rights {
    /// Parses every table of `settings` with `dialect`. A right the recipient's `request_kinds`
    /// include must have its table; a template that cannot be used is refused with the
    /// setting's full name (`recipients.<id>.settings.<right>.statement`) and the reason.
    pub fn configure(
        fields: &Fields<'_>,
        request_kinds: &[RequestKind],
        dialect: &dyn Dialect,
        settings: &RightSettings,
    ) -> Result<Self, ConfigError> {
        let right = |kind: RequestKind, block: Option<&StatementSettings>| {
            right_sql(fields, kind, request_kinds.contains(&kind), dialect, block)
        };
        Ok(Self {
            opt_out: right(RequestKind::OptOutSaleShare, settings.opt_out.as_ref())?,
            limit: right(RequestKind::LimitSensitive, settings.limit.as_ref())?,
            delete: right(RequestKind::Delete, settings.delete.as_ref())?,
            opt_in: right(RequestKind::OptInSaleShare, settings.opt_in.as_ref())?,
        })
    }

    /// The SQL for a request of `kind`, if configured.
    pub fn right(&self, kind: RequestKind) -> Option<&RightSql> {
        match kind {
            RequestKind::OptOutSaleShare => self.opt_out.as_ref(),
            RequestKind::LimitSensitive => self.limit.as_ref(),
            RequestKind::Delete => self.delete.as_ref(),
            RequestKind::OptInSaleShare => self.opt_in.as_ref(),
        }
    }

    /// Every configured template.
    pub fn templates(&self) -> impl Iterator<Item = &ConfiguredSql> {
        [&self.opt_out, &self.limit, &self.delete, &self.opt_in]
            .into_iter()
            .flatten()
            .flat_map(RightSql::templates)
    }
}

/// The settings table holding the SQL for a request kind.
pub fn setting_of(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::OptOutSaleShare => "opt_out",
        RequestKind::LimitSensitive => "limit",
        RequestKind::Delete => "delete",
        RequestKind::OptInSaleShare => "opt_in",
    }
}

fn right_sql(
    fields: &Fields<'_>,
    kind: RequestKind,
    wanted: bool,
    dialect: &dyn Dialect,
    block: Option<&StatementSettings>,
) -> Result<Option<RightSql>, ConfigError> {
    let name = setting_of(kind);
    let Some(block) = block else {
        if wanted {
            return Err(fields.invalid(
                &format!("settings.{name}.statement"),
                format_args!("is required: request_kinds include {}", kind.as_str()),
            ));
        }
        return Ok(None);
    };
    let parse = |field: String, text: &str| {
        Template::parse(text, dialect)
            .map(|template| ConfiguredSql {
                sha256: sha256_hex(text),
                template,
                field: field.clone(),
            })
            .map_err(|e| fields.invalid(&field, e))
    };
    Ok(Some(RightSql {
        statement: parse(format!("settings.{name}.statement"), &block.statement)?,
        check: block
            .check
            .as_deref()
            .map(|text| parse(format!("settings.{name}.check"), text))
            .transpose()?,
    }))
}

/// The outcome of a request whose kind has no statement configured: `NOT_APPLICABLE`, naming
/// the settings table that would hold it.
pub fn not_configured(kind: RequestKind) -> Completion {
    Completion::not_applicable(format!(
        "no statement is configured for {} (settings.{})",
        kind.as_str(),
        setting_of(kind)
    ))
}

/// The outcome of a work item `statement` cannot be bound to: `NOT_FOUND` with the reason when
/// the person has no identifier the statement matches on (the subject cannot be in those rows);
/// a permanent error when it binds a raw value intake did not keep (the error names the
/// identifier type and the setting, never a value). Neither ran the statement.
pub fn unbindable(
    work: &SuppressionWork,
    statement: &ConfiguredSql,
    why: Unbindable,
) -> Result<Completion, ConnectorError> {
    match why {
        Unbindable::NoIdentifier(types) => {
            let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            Ok(Completion::not_found(format!(
                "no {} identifier: {} matches on {}",
                types.join(" or "),
                statement.field,
                types.join(", ")
            )))
        }
        Unbindable::RawMissing(kind) => Err(ConnectorError::Permanent(format!(
            "request {} carries its {} hashed only, but {} binds the raw value \
             (:{}): intake must keep raw {} values ([intake] keep_raw)",
            work.request_id,
            kind.as_str(),
            statement.field,
            kind.as_str().to_ascii_lowercase(),
            kind.as_str()
        ))),
    }
}

/// Whether `completion` says a right's statement ran (so its check query can read it back):
/// `FLAGGED`, `DELETED`, or `NOT_FOUND` naming its statement ([`EVIDENCE_STATEMENT`]). A
/// `NOT_FOUND` for a person with no identifier to bind ran nothing and is not read back.
pub fn statement_ran(completion: &Completion) -> bool {
    match completion.action {
        ConfirmationAction::Flagged | ConfirmationAction::Deleted => true,
        ConfirmationAction::NotFound => completion.evidence.contains_key(EVIDENCE_STATEMENT),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Plain;
    use crate::testing::{assert_names_field, hashed, work, WorkExt};
    use hush_contracts::events::IdentifierType;
    use hush_contracts::recipients::RecipientConfig;

    fn recipient(request_kinds: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"wh\"\nkind = \"warehouse\"\nrole = \"SERVICE_PROVIDER\"\n\
             base_url = \"http://unused\"\nrequest_kinds = {request_kinds}\n"
        ))
        .unwrap()
    }

    fn block(statement: &str, check: Option<&str>) -> StatementSettings {
        StatementSettings {
            statement: statement.into(),
            check: check.map(str::to_owned),
        }
    }

    /// The rights of a recipient of `request_kinds` whose only table is `[settings.delete]`.
    fn with_delete(request_kinds: &str, delete: &StatementSettings) -> Result<Rights, ConfigError> {
        let r = recipient(request_kinds);
        let settings = RightSettings {
            delete: Some(delete.clone()),
            ..RightSettings::default()
        };
        Rights::configure(&Fields::of(&r), &r.request_kinds, &Plain, &settings)
    }

    /// A connector's settings block as the SQL connectors declare theirs.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ConnectorSettings {
        #[serde(default)]
        warehouse: Option<String>,
        #[serde(flatten)]
        rights: RightSettings,
    }

    #[test]
    fn the_rights_tables_flatten_into_a_settings_block_that_refuses_unknown_keys() {
        let read: ConnectorSettings =
            toml::from_str("warehouse = \"WH\"\n[delete]\nstatement = \"DELETE FROM c\"\n")
                .unwrap();
        assert_eq!(read.warehouse.as_deref(), Some("WH"));
        assert_eq!(read.rights.delete, Some(block("DELETE FROM c", None)));
        assert_eq!(read.rights.opt_out, None);
        let unknown = toml::from_str::<ConnectorSettings>("warehose = \"WH\"").unwrap_err();
        assert!(unknown.to_string().contains("warehose"), "{unknown}");
    }

    #[test]
    fn each_table_is_parsed_under_its_setting_name() {
        let delete = block(
            "DELETE FROM c WHERE e = :email_sha256",
            Some("SELECT COUNT(*) FROM c WHERE e = :email_sha256"),
        );
        let rights = with_delete("[\"DELETE\"]", &delete).unwrap();
        let right = rights.right(RequestKind::Delete).unwrap();
        assert_eq!(right.statement.field, "settings.delete.statement");
        assert_eq!(right.statement.template.sql, "DELETE FROM c WHERE e = ?");
        assert_eq!(right.statement.sha256, sha256_hex(&delete.statement));
        assert_eq!(
            right.check.as_ref().map(|c| c.field.as_str()),
            Some("settings.delete.check")
        );
        assert!(rights.right(RequestKind::OptOutSaleShare).is_none());
        assert_eq!(rights.templates().count(), 2);
    }

    #[test]
    fn a_right_in_request_kinds_needs_its_table() {
        let delete = block("DELETE FROM c WHERE e = :email_sha256", None);
        let error = with_delete("[\"OPT_OUT_SALE_SHARE\", \"DELETE\"]", &delete)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "recipients.wh.settings.opt_out.statement is required: request_kinds include \
                 OPT_OUT_SALE_SHARE"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_bad_template_is_refused_naming_the_setting_and_the_placeholder() {
        let delete = block(
            "DELETE FROM c WHERE e = :email_sha256",
            Some("SELECT COUNT(*) FROM c WHERE e = :emial"),
        );
        assert_names_field(
            with_delete("[\"DELETE\"]", &delete),
            "recipients.wh.settings.delete.check uses the unknown placeholder `:emial`",
        );
        let no_one = block("DELETE FROM c", None);
        assert_names_field(
            with_delete("[\"DELETE\"]", &no_one),
            "recipients.wh.settings.delete.statement names no identifier placeholder",
        );
    }

    #[test]
    fn unbindable_items_are_not_found_or_refused_without_values() {
        let statement = ConfiguredSql {
            field: "settings.delete.statement".into(),
            sha256: String::new(),
            template: Template::parse("DELETE FROM c WHERE p = :phone", &Plain).unwrap(),
        };
        let item = work(RequestKind::Delete)
            .id("req-1")
            .with(hashed(IdentifierType::Phone, "+14155550100"));
        let absent = unbindable(
            &item,
            &statement,
            Unbindable::NoIdentifier(vec![IdentifierType::Phone, IdentifierType::Email]),
        )
        .unwrap();
        assert_eq!(absent.action, ConfirmationAction::NotFound);
        assert!(
            !statement_ran(&absent),
            "nothing ran for a person with no identifier"
        );
        assert_eq!(
            absent.evidence["reason"],
            "no PHONE or EMAIL identifier: settings.delete.statement matches on PHONE, EMAIL"
        );
        let refused = unbindable(
            &item,
            &statement,
            Unbindable::RawMissing(IdentifierType::Phone),
        );
        assert_eq!(
            refused,
            Err(ConnectorError::Permanent(
                "request req-1 carries its PHONE hashed only, but settings.delete.statement binds \
                 the raw value (:phone): intake must keep raw PHONE values ([intake] keep_raw)"
                    .into()
            ))
        );
    }

    #[test]
    fn a_kind_without_a_statement_is_not_applicable_naming_its_table() {
        let completion = not_configured(RequestKind::OptInSaleShare);
        assert_eq!(completion.action, ConfirmationAction::NotApplicable);
        assert_eq!(
            completion.evidence["reason"],
            "no statement is configured for OPT_IN_SALE_SHARE (settings.opt_in)"
        );
    }

    #[test]
    fn only_a_statement_that_ran_can_be_read_back() {
        let ran = |action| {
            let evidence = [(
                EVIDENCE_STATEMENT.to_owned(),
                "settings.x.statement".to_owned(),
            )];
            statement_ran(&Completion::new(action, evidence.into()))
        };
        assert!(ran(ConfirmationAction::Flagged));
        assert!(ran(ConfirmationAction::Deleted));
        assert!(ran(ConfirmationAction::NotFound));
        assert!(!ran(ConfirmationAction::NotApplicable));
        assert!(!statement_ran(&Completion::not_found(
            "no EMAIL identifier"
        )));
        assert!(!statement_ran(&not_configured(RequestKind::OptInSaleShare)));
    }
}
