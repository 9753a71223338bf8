//! Start-up from the recipients file with the private key in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_klaviyo::{KlaviyoConnector, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_key_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
        r#"
id = "klaviyo-env"
kind = "klaviyo"
role = "SERVICE_PROVIDER"
base_url = "https://a.klaviyo.com"
credentials = { api_key = "HUSH_TEST_KLAVIYO_API_KEY" }
"#,
    )
    .unwrap();
    let err = KlaviyoConnector::from_recipient(&recipient).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_KLAVIYO_API_KEY"),
        "{err}"
    );
    std::env::set_var("HUSH_TEST_KLAVIYO_API_KEY", "pk_x");
    KlaviyoConnector::from_recipient(&recipient).expect("builds once the key is set");
    assert!((FACTORY.validate)(&recipient).is_ok());
    assert_eq!(FACTORY.kinds, ["klaviyo"]);
}
