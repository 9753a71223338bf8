//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_mixpanel::{MixpanelConnector, FACTORY};

#[test]
fn from_recipient_reads_both_tokens_from_the_environment() {
    builds_with_credentials_from_env::<MixpanelConnector>(
        &FACTORY,
        include_str!("fixtures/recipient.toml"),
        &[
            ("HUSH_TEST_MIXPANEL_PROJECT_TOKEN", "token"),
            ("HUSH_TEST_MIXPANEL_OAUTH_TOKEN", "oauth"),
        ],
    );
    assert_eq!(FACTORY.kinds, &["mixpanel"]);
    assert_eq!(FACTORY.max_batch, 2_000);
}
