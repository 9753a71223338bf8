//! Start-up from the recipients file (`fixtures/recipient.toml`) with both keys in the
//! environment. Alone in its own test binary because it sets environment variables, which must
//! not race other threads.

hush_connector_kit::credentials_from_env_test!(
    hush_connector_amplitude::AmplitudeConnector,
    hush_connector_amplitude::FACTORY,
    ["amplitude"],
    &[
        ("HUSH_TEST_AMPLITUDE_API_KEY", "key"),
        ("HUSH_TEST_AMPLITUDE_SECRET_KEY", "secret"),
    ],
);

#[test]
fn the_factory_hands_the_connector_100_people_a_call() {
    assert_eq!(hush_connector_amplitude::FACTORY.max_batch, 100);
}
