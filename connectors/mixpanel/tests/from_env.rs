//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_mixpanel::MixpanelConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_both_tokens_from_the_environment() {
    let text = r#"
id = "mixpanel-env"
kind = "mixpanel"
role = "SERVICE_PROVIDER"
base_url = "https://mixpanel.com"
[credentials]
project_token = "HUSH_TEST_MIXPANEL_PROJECT_TOKEN"
oauth_token = "HUSH_TEST_MIXPANEL_OAUTH_TOKEN"
"#;
    let r: RecipientConfig = toml::from_str(text).unwrap();
    let err = MixpanelConnector::from_recipient(&r).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_MIXPANEL_PROJECT_TOKEN"),
        "{err}"
    );
    std::env::set_var("HUSH_TEST_MIXPANEL_PROJECT_TOKEN", "token");
    std::env::set_var("HUSH_TEST_MIXPANEL_OAUTH_TOKEN", "oauth");
    MixpanelConnector::from_recipient(&r).expect("builds with both tokens");
    assert_eq!(hush_connector_mixpanel::FACTORY.kinds, &["mixpanel"]);
    assert_eq!(hush_connector_mixpanel::FACTORY.max_batch, 2_000);
}
