//! Start-up from the recipients file with the service-account key in the environment. Alone in
//! its own test binary because it sets environment variables, which must not race other threads.

use hush_connector_bigquery::BigQueryConnector;
use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_contracts::connector::FromRecipient;
use hush_sim_kit::jwt::RsaTestKey;

#[test]
fn from_recipient_reads_the_service_account_key_from_the_environment() {
    let text = r#"
id = "bq-env"
kind = "bigquery"
role = "SERVICE_PROVIDER"
base_url = "https://bigquery.googleapis.com"
request_kinds = ["DELETE"]
credentials = { service_account_key = "HUSH_TEST_BIGQUERY_SA_KEY" }
[settings]
project_id = "acme-prod"
[settings.delete]
statement = "DELETE FROM crm.customers WHERE email_sha256 = :email_sha256"
"#;
    let file = serde_json::json!({
        "type": "service_account", "client_email": "hush@acme-prod.iam.gserviceaccount.com",
        "private_key": RsaTestKey::generate().pem,
    })
    .to_string();
    let r = builds_with_credentials_from_env::<BigQueryConnector>(
        &hush_connector_bigquery::FACTORY,
        text,
        &[("HUSH_TEST_BIGQUERY_SA_KEY", &file)],
    );
    assert_eq!(hush_connector_bigquery::FACTORY.kinds, &["bigquery"]);
    assert_eq!(hush_connector_bigquery::FACTORY.max_batch, 100);

    std::env::set_var(
        "HUSH_TEST_BIGQUERY_SA_KEY",
        r#"{"type": "authorized_user"}"#,
    );
    let err = BigQueryConnector::from_recipient(&r).err().unwrap();
    assert!(
        err.to_string()
            .contains("recipients.bq-env.credentials.service_account_key does not hold a service-account key file"),
        "{err}"
    );
}
