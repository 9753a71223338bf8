//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_amplitude::AmplitudeConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_both_keys_from_the_environment() {
    let text = r#"
id = "amplitude-env"
kind = "amplitude"
role = "SERVICE_PROVIDER"
base_url = "https://amplitude.com"
[credentials]
api_key = "HUSH_TEST_AMPLITUDE_API_KEY"
secret_key = "HUSH_TEST_AMPLITUDE_SECRET_KEY"
[settings]
requester = "privacy-team@example.com"
"#;
    let r: RecipientConfig = toml::from_str(text).unwrap();
    let err = AmplitudeConnector::from_recipient(&r).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_AMPLITUDE_API_KEY"),
        "{err}"
    );
    std::env::set_var("HUSH_TEST_AMPLITUDE_API_KEY", "key");
    std::env::set_var("HUSH_TEST_AMPLITUDE_SECRET_KEY", "secret");
    AmplitudeConnector::from_recipient(&r).expect("builds with both keys");
    assert_eq!(hush_connector_amplitude::FACTORY.kinds, &["amplitude"]);
    assert_eq!(hush_connector_amplitude::FACTORY.max_batch, 100);
}
