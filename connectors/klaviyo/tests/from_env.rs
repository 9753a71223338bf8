//! Start-up from the recipients file with the private key in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_klaviyo::{KlaviyoConnector, FACTORY};

#[test]
fn from_recipient_reads_the_key_from_the_environment() {
    builds_with_credentials_from_env::<KlaviyoConnector>(
        &FACTORY,
        r#"
id = "klaviyo-env"
kind = "klaviyo"
role = "SERVICE_PROVIDER"
base_url = "https://a.klaviyo.com"
credentials = { api_key = "HUSH_TEST_KLAVIYO_API_KEY" }
"#,
        &[("HUSH_TEST_KLAVIYO_API_KEY", "pk_x")],
    );
    assert_eq!(FACTORY.kinds, ["klaviyo"]);
}
