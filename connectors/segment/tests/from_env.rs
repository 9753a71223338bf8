//! Start-up from the recipients file with the token in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_segment::SegmentConnector;
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_token_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
        r#"
id = "segment-env"
kind = "segment"
role = "SERVICE_PROVIDER"
base_url = "https://api.segmentapis.com"
credentials = { token = "HUSH_TEST_SEGMENT_TOKEN" }
"#,
    )
    .unwrap();
    let err = SegmentConnector::from_recipient(&recipient).err().unwrap();
    assert!(err.to_string().contains("HUSH_TEST_SEGMENT_TOKEN"), "{err}");
    std::env::set_var("HUSH_TEST_SEGMENT_TOKEN", "sgp_x");
    SegmentConnector::from_recipient(&recipient).expect("builds once the token is set");
    assert_eq!(hush_connector_segment::FACTORY.max_batch, 5_000);
}
