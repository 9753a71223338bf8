//! Start-up from the recipients file (`fixtures/recipient.toml`) with the access token in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_tiktok::TikTokAudiences,
    hush_connector_tiktok::FACTORY,
    ["tiktok"],
    &[("HUSH_TEST_TIKTOK_ACCESS_TOKEN", "tiktok-token")],
);
