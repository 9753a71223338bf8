//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_ads::{GoogleAdsConnector, FACTORY};
use hush_connector_kit::testing::builds_with_credentials_from_env;

#[test]
fn from_recipient_reads_credentials_from_the_environment() {
    builds_with_credentials_from_env::<GoogleAdsConnector>(
        &FACTORY,
        r#"
id = "gads-env"
kind = "google_ads"
role = "THIRD_PARTY"
base_url = "https://googleads.googleapis.com"
[credentials]
client_id = "HUSH_TEST_GADS_CLIENT_ID"
client_secret = "HUSH_TEST_GADS_CLIENT_SECRET"
refresh_token = "HUSH_TEST_GADS_REFRESH_TOKEN"
developer_token = "HUSH_TEST_GADS_DEVELOPER_TOKEN"
[settings]
customer_id = "1234567890"
user_list_id = "1"
"#,
        &[
            ("HUSH_TEST_GADS_CLIENT_ID", "value"),
            ("HUSH_TEST_GADS_CLIENT_SECRET", "value"),
            ("HUSH_TEST_GADS_REFRESH_TOKEN", "value"),
            ("HUSH_TEST_GADS_DEVELOPER_TOKEN", "value"),
        ],
    );
    assert_eq!(FACTORY.max_batch, 5_000);
}
