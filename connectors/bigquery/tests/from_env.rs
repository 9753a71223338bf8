//! Start-up from the recipients file with the service-account key in the environment. Alone in
//! its own test binary because it sets environment variables, which must not race other threads.

use hush_connector_bigquery::{BigQueryConnector, FACTORY};
use hush_connector_kit::testing::{assert_names_field, builds_with_credentials_from_env};
use hush_contracts::connector::FromRecipient;
use hush_sim_kit::jwt::RsaTestKey;

#[test]
fn from_recipient_reads_the_service_account_key_from_the_environment() {
    let file = serde_json::json!({
        "type": "service_account", "client_email": "hush@acme-prod.iam.gserviceaccount.com",
        "private_key": RsaTestKey::generate().pem,
    })
    .to_string();
    let r = builds_with_credentials_from_env::<BigQueryConnector>(
        &FACTORY,
        include_str!("fixtures/recipient.toml"),
        &[("HUSH_TEST_BIGQUERY_SA_KEY", &file)],
    );
    assert_eq!(FACTORY.kinds, &["bigquery"]);
    assert_eq!(FACTORY.max_batch, 100);

    std::env::set_var(
        "HUSH_TEST_BIGQUERY_SA_KEY",
        r#"{"type": "authorized_user"}"#,
    );
    assert_names_field(
        BigQueryConnector::from_recipient(&r).map(drop),
        "recipients.bq-env.credentials.service_account_key does not hold a service-account key file",
    );
}
