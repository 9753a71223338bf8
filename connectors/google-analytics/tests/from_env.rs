//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_analytics::GoogleAnalyticsConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_three_credentials_from_the_environment() {
    let text = r#"
id = "ga-env"
kind = "google_analytics"
role = "SERVICE_PROVIDER"
base_url = "https://www.googleapis.com"
request_kinds = ["DELETE"]
[credentials]
client_id = "HUSH_TEST_GA_CLIENT_ID"
client_secret = "HUSH_TEST_GA_CLIENT_SECRET"
refresh_token = "HUSH_TEST_GA_REFRESH_TOKEN"
[settings]
property_id = "345678901"
"#;
    let r: RecipientConfig = toml::from_str(text).unwrap();
    let err = GoogleAnalyticsConnector::from_recipient(&r).err().unwrap();
    assert!(err.to_string().contains("HUSH_TEST_GA_CLIENT_ID"), "{err}");
    for name in ["CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"] {
        std::env::set_var(format!("HUSH_TEST_GA_{name}"), "value");
    }
    GoogleAnalyticsConnector::from_recipient(&r).expect("builds with the three credentials");
    assert_eq!(
        hush_connector_google_analytics::FACTORY.kinds,
        &["google_analytics"]
    );
    assert_eq!(hush_connector_google_analytics::FACTORY.max_batch, 1);

    let mut wrong_kind = r.clone();
    wrong_kind.kind = "amplitude".into();
    let err = GoogleAnalyticsConnector::from_recipient(&wrong_kind)
        .err()
        .unwrap();
    assert!(err.to_string().contains("recipients.ga-env.kind"), "{err}");
}
