//! Start-up from the recipients file (`fixtures/recipient.toml`) with the OAuth client in the
//! environment. Alone in its own test binary because it sets environment variables, which must
//! not race other threads.

use hush_connector_google_analytics::{GoogleAnalyticsConnector, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

hush_connector_kit::credentials_from_env_test!(
    GoogleAnalyticsConnector,
    FACTORY,
    ["google_analytics"],
    &[
        ("HUSH_TEST_GA_CLIENT_ID", "value"),
        ("HUSH_TEST_GA_CLIENT_SECRET", "value"),
        ("HUSH_TEST_GA_REFRESH_TOKEN", "value"),
    ],
);

#[test]
fn each_user_deletion_is_a_batch_of_its_own() {
    assert_eq!(FACTORY.max_batch, 1);
}

#[test]
fn a_block_of_another_kind_is_refused_naming_the_kind() {
    let mut wrong_kind: RecipientConfig =
        toml::from_str(include_str!("fixtures/recipient.toml")).unwrap();
    wrong_kind.kind = "amplitude".into();
    let err = GoogleAnalyticsConnector::from_recipient(&wrong_kind)
        .err()
        .unwrap();
    assert!(err.to_string().contains("recipients.ga-env.kind"), "{err}");
}
