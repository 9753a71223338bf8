//! Start-up from the recipients file with the API key in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_braze::{BrazeConnector, FACTORY};
use hush_connector_kit::testing::builds_with_credentials_from_env;

#[test]
fn from_recipient_reads_the_api_key_from_the_environment() {
    builds_with_credentials_from_env::<BrazeConnector>(
        &FACTORY,
        r#"
id = "braze-env"
kind = "braze"
role = "SERVICE_PROVIDER"
base_url = "https://rest.iad-01.braze.com"
credentials = { api_key = "HUSH_TEST_BRAZE_API_KEY" }
"#,
        &[("HUSH_TEST_BRAZE_API_KEY", "braze-key")],
    );
    assert_eq!(FACTORY.kinds, ["braze"]);
}
