//! Start-up from the recipients file with credentials in the environment. Alone in its own test
//! binary because it sets environment variables, which must not race other threads.

use hush_connector_amplitude::{AmplitudeConnector, FACTORY};
use hush_connector_kit::testing::builds_with_credentials_from_env;

#[test]
fn from_recipient_reads_both_keys_from_the_environment() {
    builds_with_credentials_from_env::<AmplitudeConnector>(
        &FACTORY,
        include_str!("fixtures/recipient.toml"),
        &[
            ("HUSH_TEST_AMPLITUDE_API_KEY", "key"),
            ("HUSH_TEST_AMPLITUDE_SECRET_KEY", "secret"),
        ],
    );
    assert_eq!(FACTORY.kinds, &["amplitude"]);
    assert_eq!(FACTORY.max_batch, 100);
}
