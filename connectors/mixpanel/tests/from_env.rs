//! Start-up from the recipients file (`fixtures/recipient.toml`) with both tokens in the
//! environment. Alone in its own test binary because it sets environment variables, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_mixpanel::MixpanelConnector,
    hush_connector_mixpanel::FACTORY,
    ["mixpanel"],
    &[
        ("HUSH_TEST_MIXPANEL_PROJECT_TOKEN", "token"),
        ("HUSH_TEST_MIXPANEL_OAUTH_TOKEN", "oauth"),
    ],
);

#[test]
fn the_factory_hands_the_connector_2000_people_a_call() {
    assert_eq!(hush_connector_mixpanel::FACTORY.max_batch, 2_000);
}
