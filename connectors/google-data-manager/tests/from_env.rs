//! Start-up from the recipients file (`fixtures/recipient.toml`) with the OAuth client in the
//! environment and no developer token. Alone in its own test binary because it sets environment
//! variables, which must not race other threads.

use hush_connector_google_data_manager::{GoogleDataManagerConnector, FACTORY};

hush_connector_kit::credentials_from_env_test!(
    GoogleDataManagerConnector,
    FACTORY,
    ["google_data_manager"],
    &[
        ("HUSH_TEST_GDM_CLIENT_ID", "value"),
        ("HUSH_TEST_GDM_CLIENT_SECRET", "value"),
        ("HUSH_TEST_GDM_REFRESH_TOKEN", "value"),
    ],
);

#[test]
fn a_batch_is_one_request_of_audience_members() {
    assert_eq!(FACTORY.max_batch, 10_000);
}
