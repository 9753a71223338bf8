//! Start-up from the recipients file (`fixtures/recipient.toml`) with the API key in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_braze::BrazeConnector,
    hush_connector_braze::FACTORY,
    ["braze"],
    &[("HUSH_TEST_BRAZE_API_KEY", "braze-key")],
);
