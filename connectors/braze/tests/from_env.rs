//! Start-up from the recipients file with the API key in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_braze::{BrazeConnector, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_api_key_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
        r#"
id = "braze-env"
kind = "braze"
role = "SERVICE_PROVIDER"
base_url = "https://rest.iad-01.braze.com"
credentials = { api_key = "HUSH_TEST_BRAZE_API_KEY" }
"#,
    )
    .unwrap();
    let err = BrazeConnector::from_recipient(&recipient).err().unwrap();
    assert!(err.to_string().contains("HUSH_TEST_BRAZE_API_KEY"), "{err}");
    std::env::set_var("HUSH_TEST_BRAZE_API_KEY", "braze-key");
    BrazeConnector::from_recipient(&recipient).expect("builds once the key is set");
    assert!((FACTORY.validate)(&recipient).is_ok());
    assert_eq!(FACTORY.kinds, ["braze"]);
}
