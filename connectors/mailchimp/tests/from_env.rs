//! Start-up from the recipients file with the API key in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_mailchimp::{MailchimpConnector, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_key_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
        r#"
id = "mailchimp-env"
kind = "mailchimp"
role = "SERVICE_PROVIDER"
base_url = "https://{dc}.api.mailchimp.com"
credentials = { api_key = "HUSH_TEST_MAILCHIMP_API_KEY" }
[settings]
list_id = "9e67587f52"
"#,
    )
    .unwrap();
    let err = MailchimpConnector::from_recipient(&recipient)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_MAILCHIMP_API_KEY"),
        "{err}"
    );
    std::env::set_var(
        "HUSH_TEST_MAILCHIMP_API_KEY",
        "0123456789abcdef0123456789abcdef-us21",
    );
    MailchimpConnector::from_recipient(&recipient).expect("builds once the key is set");
    assert!((FACTORY.validate)(&recipient).is_ok());
    assert_eq!(FACTORY.kinds, ["mailchimp"]);
}
