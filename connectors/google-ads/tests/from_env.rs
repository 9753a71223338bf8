//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_ads::GoogleAdsConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_credentials_from_the_environment() {
    let text = r#"
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
"#;
    let r: RecipientConfig = toml::from_str(text).unwrap();
    let err = GoogleAdsConnector::from_recipient(&r).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_GADS_CLIENT_ID"),
        "{err}"
    );
    for name in [
        "CLIENT_ID",
        "CLIENT_SECRET",
        "REFRESH_TOKEN",
        "DEVELOPER_TOKEN",
    ] {
        std::env::set_var(format!("HUSH_TEST_GADS_{name}"), "value");
    }
    GoogleAdsConnector::from_recipient(&r).expect("builds once every credential is set");
    assert_eq!(hush_connector_google_ads::FACTORY.max_batch, 5_000);
}
