//! Start-up from the recipients file (`fixtures/recipient.toml`) with the token in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_the_trade_desk::TradeDesk,
    hush_connector_the_trade_desk::FACTORY,
    ["the_trade_desk"],
    &[("HUSH_TEST_TTD_AUTH_TOKEN", "ttd-token")],
);
