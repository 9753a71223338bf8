//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_google_analytics::{GoogleAnalyticsConnector, FACTORY};
use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_contracts::connector::FromRecipient;

#[test]
fn from_recipient_reads_three_credentials_from_the_environment() {
    let recipient = builds_with_credentials_from_env::<GoogleAnalyticsConnector>(
        &FACTORY,
        r#"
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
"#,
        &[
            ("HUSH_TEST_GA_CLIENT_ID", "value"),
            ("HUSH_TEST_GA_CLIENT_SECRET", "value"),
            ("HUSH_TEST_GA_REFRESH_TOKEN", "value"),
        ],
    );
    assert_eq!(FACTORY.kinds, &["google_analytics"]);
    assert_eq!(FACTORY.max_batch, 1);

    let mut wrong_kind = recipient.clone();
    wrong_kind.kind = "amplitude".into();
    let err = GoogleAnalyticsConnector::from_recipient(&wrong_kind)
        .err()
        .unwrap();
    assert!(err.to_string().contains("recipients.ga-env.kind"), "{err}");
}
