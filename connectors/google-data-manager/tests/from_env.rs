//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_data_manager::GoogleDataManagerConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_three_credentials_and_needs_no_developer_token() {
    let text = r#"
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
"#;
    let r: RecipientConfig = toml::from_str(text).unwrap();
    let err = GoogleDataManagerConnector::from_recipient(&r)
        .err()
        .unwrap();
    assert!(err.to_string().contains("HUSH_TEST_GDM_CLIENT_ID"), "{err}");
    for name in ["CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"] {
        std::env::set_var(format!("HUSH_TEST_GDM_{name}"), "value");
    }
    GoogleDataManagerConnector::from_recipient(&r).expect("builds with the three credentials");
    assert_eq!(
        hush_connector_google_data_manager::FACTORY.kinds,
        &["google_data_manager"]
    );
    assert_eq!(
        hush_connector_google_data_manager::FACTORY.max_batch,
        10_000
    );
}
