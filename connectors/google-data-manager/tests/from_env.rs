//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_data_manager::{GoogleDataManagerConnector, FACTORY};
use hush_connector_kit::testing::builds_with_credentials_from_env;

#[test]
fn from_recipient_reads_three_credentials_and_needs_no_developer_token() {
    builds_with_credentials_from_env::<GoogleDataManagerConnector>(
        &FACTORY,
        r#"
id = "gdm-env"
kind = "google_data_manager"
role = "THIRD_PARTY"
base_url = "https://datamanager.googleapis.com"
[credentials]
client_id = "HUSH_TEST_GDM_CLIENT_ID"
client_secret = "HUSH_TEST_GDM_CLIENT_SECRET"
refresh_token = "HUSH_TEST_GDM_REFRESH_TOKEN"
[settings]
operating_account_id = "123-456-7890"
audience_id = "1"
"#,
        &[
            ("HUSH_TEST_GDM_CLIENT_ID", "value"),
            ("HUSH_TEST_GDM_CLIENT_SECRET", "value"),
            ("HUSH_TEST_GDM_REFRESH_TOKEN", "value"),
        ],
    );
    assert_eq!(FACTORY.kinds, &["google_data_manager"]);
    assert_eq!(FACTORY.max_batch, 10_000);
}
