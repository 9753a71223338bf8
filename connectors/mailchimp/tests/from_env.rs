//! Start-up from the recipients file (`fixtures/recipient.toml`) with the API key in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_mailchimp::MailchimpConnector,
    hush_connector_mailchimp::FACTORY,
    ["mailchimp"],
    &[(
        "HUSH_TEST_MAILCHIMP_API_KEY",
        "0123456789abcdef0123456789abcdef-us21",
    )],
);
