//! Start-up from the recipients file (`fixtures/recipient.toml`) with the token in the
//! environment. Alone in its own test binary because it sets an environment variable, which must
//! not race other threads.

use hush_connector_segment::{SegmentConnector, FACTORY};

hush_connector_kit::credentials_from_env_test!(
    SegmentConnector,
    FACTORY,
    ["segment"],
    &[("HUSH_TEST_SEGMENT_TOKEN", "sgp_x")],
);

#[test]
fn a_batch_fits_one_regulation_of_at_most_5000_subject_ids() {
    assert_eq!(FACTORY.max_batch, 5_000);
}
