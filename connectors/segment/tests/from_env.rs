//! Start-up from the recipients file with the token in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_segment::{SegmentConnector, FACTORY};

#[test]
fn from_recipient_reads_the_token_from_the_environment() {
    builds_with_credentials_from_env::<SegmentConnector>(
        &FACTORY,
        r#"
id = "segment-env"
kind = "segment"
role = "SERVICE_PROVIDER"
base_url = "https://api.segmentapis.com"
credentials = { token = "HUSH_TEST_SEGMENT_TOKEN" }
"#,
        &[("HUSH_TEST_SEGMENT_TOKEN", "sgp_x")],
    );
    assert_eq!(FACTORY.max_batch, 5_000);
}
