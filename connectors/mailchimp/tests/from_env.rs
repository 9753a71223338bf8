//! Start-up from the recipients file with the API key in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_mailchimp::{MailchimpConnector, FACTORY};

#[test]
fn from_recipient_reads_the_key_from_the_environment() {
    builds_with_credentials_from_env::<MailchimpConnector>(
        &FACTORY,
        r#"
id = "mailchimp-env"
kind = "mailchimp"
role = "SERVICE_PROVIDER"
base_url = "https://{dc}.api.mailchimp.com"
credentials = { api_key = "HUSH_TEST_MAILCHIMP_API_KEY" }
[settings]
list_id = "9e67587f52"
"#,
        &[(
            "HUSH_TEST_MAILCHIMP_API_KEY",
            "0123456789abcdef0123456789abcdef-us21",
        )],
    );
    assert_eq!(FACTORY.kinds, ["mailchimp"]);
}
