//! Read-back: the right's configured check query counts the subject's rows that do not comply
//! yet. `0` is `VERIFIED` (the flag is held, the rows are gone); more is `FAILED`. A check that
//! cannot run (the database unreachable, say) leaves the item `PENDING`.

use hush_connector_kit::sql::rights::ConfiguredSql;
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::VerificationStatus;

use crate::client::PostgresClient;

/// The verification a count of non-complying rows stands for.
pub fn verification_of(remaining: i64) -> VerificationStatus {
    if remaining == 0 {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Failed
    }
}

/// Runs `check` for `work` and says what it proves.
pub async fn read_back(
    client: &PostgresClient,
    check: &ConfiguredSql,
    work: &SuppressionWork,
) -> VerificationStatus {
    let recipient = &client.config().recipient_id;
    let executions = match check.template.bind(work) {
        Ok(executions) => executions,
        Err(unbindable) => {
            tracing::warn!(
                %recipient,
                request_id = %work.request_id,
                field = %check.field,
                "PostgreSQL read-back cannot bind the request's identifiers: {unbindable:?}"
            );
            return VerificationStatus::Pending;
        }
    };
    match client.count(check, &executions).await {
        Ok(remaining) => {
            if remaining != 0 {
                tracing::warn!(
                    %recipient,
                    request_id = %work.request_id,
                    field = %check.field,
                    remaining,
                    "PostgreSQL read-back found rows that do not comply"
                );
            }
            verification_of(remaining)
        }
        Err(error) => {
            tracing::warn!(
                %recipient,
                request_id = %work.request_id,
                field = %check.field,
                "PostgreSQL read-back failed: {error}"
            );
            VerificationStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_remaining_row_is_verified_and_any_is_failed() {
        assert_eq!(verification_of(0), VerificationStatus::Verified);
        assert_eq!(verification_of(1), VerificationStatus::Failed);
        assert_eq!(verification_of(-1), VerificationStatus::Failed);
    }
}
