//! Start-up from the recipients file (`fixtures/recipient.toml`) with the OAuth client and the
//! developer token in the environment. Alone in its own test binary because it sets environment
//! variables, which must not race other threads.

use hush_connector_google_ads::{GoogleAdsConnector, FACTORY};

hush_connector_kit::credentials_from_env_test!(
    GoogleAdsConnector,
    FACTORY,
    ["google_ads"],
    &[
        ("HUSH_TEST_GADS_CLIENT_ID", "value"),
        ("HUSH_TEST_GADS_CLIENT_SECRET", "value"),
        ("HUSH_TEST_GADS_REFRESH_TOKEN", "value"),
        ("HUSH_TEST_GADS_DEVELOPER_TOKEN", "value"),
    ],
);

#[test]
fn a_batch_fills_one_request_at_twenty_identifiers_a_person() {
    assert_eq!(FACTORY.max_batch, 5_000);
}
