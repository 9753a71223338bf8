//! Start-up from the recipients file with the private key in the environment. Alone in its own
//! test binary because it sets environment variables, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_snowflake::SnowflakeConnector;
use hush_contracts::connector::FromRecipient;
use hush_sim_kit::jwt::RsaTestKey;

#[test]
fn from_recipient_reads_the_private_key_from_the_environment() {
    let text = r#"
id = "snowflake-env"
kind = "snowflake"
role = "SERVICE_PROVIDER"
base_url = "https://myorg-myaccount.snowflakecomputing.com"
request_kinds = ["DELETE"]
credentials = { private_key = "HUSH_TEST_SNOWFLAKE_PRIVATE_KEY" }
[settings]
user = "hush_svc"
[settings.delete]
statement = "DELETE FROM customers WHERE email_sha256 = :email_sha256"
"#;
    // One line with \n escapes, as many secret stores hand a PEM over.
    let pem = RsaTestKey::generate().pem.replace('\n', "\\n");
    let r = builds_with_credentials_from_env::<SnowflakeConnector>(
        &hush_connector_snowflake::FACTORY,
        text,
        &[("HUSH_TEST_SNOWFLAKE_PRIVATE_KEY", &pem)],
    );
    assert_eq!(hush_connector_snowflake::FACTORY.kinds, &["snowflake"]);
    assert_eq!(hush_connector_snowflake::FACTORY.max_batch, 100);

    std::env::set_var("HUSH_TEST_SNOWFLAKE_PRIVATE_KEY", "not a key");
    let err = SnowflakeConnector::from_recipient(&r).err().unwrap();
    assert!(
        err.to_string()
            .contains("recipients.snowflake-env.credentials.private_key does not hold a PEM"),
        "{err}"
    );
}
