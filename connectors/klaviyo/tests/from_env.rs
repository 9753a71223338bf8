//! Start-up from the recipients file (`fixtures/recipient.toml`) with the private key in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_klaviyo::KlaviyoConnector,
    hush_connector_klaviyo::FACTORY,
    ["klaviyo"],
    &[("HUSH_TEST_KLAVIYO_API_KEY", "pk_x")],
);
