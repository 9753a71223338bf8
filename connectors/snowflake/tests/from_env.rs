//! Start-up from the recipients file with the private key in the environment. Alone in its own
//! test binary because it sets environment variables, which must not race other threads.

use hush_connector_kit::testing::{assert_names_field, builds_with_credentials_from_env};
use hush_connector_snowflake::{SnowflakeConnector, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_sim_kit::jwt::RsaTestKey;

#[test]
fn from_recipient_reads_the_private_key_from_the_environment() {
    // One line with \n escapes, as many secret stores hand a PEM over.
    let pem = RsaTestKey::generate().pem.replace('\n', "\\n");
    let r = builds_with_credentials_from_env::<SnowflakeConnector>(
        &FACTORY,
        include_str!("fixtures/recipient.toml"),
        &[("HUSH_TEST_SNOWFLAKE_PRIVATE_KEY", &pem)],
    );
    assert_eq!(FACTORY.kinds, &["snowflake"]);
    assert_eq!(FACTORY.max_batch, 100);

    std::env::set_var("HUSH_TEST_SNOWFLAKE_PRIVATE_KEY", "not a key");
    assert_names_field(
        SnowflakeConnector::from_recipient(&r).map(drop),
        "recipients.snowflake-env.credentials.private_key does not hold a PEM",
    );
}
