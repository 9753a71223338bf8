//! Start-up from the recipients file with the access token in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_tiktok::{TikTokAudiences, FACTORY};

#[test]
fn from_recipient_reads_the_access_token_from_the_environment() {
    builds_with_credentials_from_env::<TikTokAudiences>(
        &FACTORY,
        r#"
id = "tiktok-env"
kind = "tiktok"
role = "THIRD_PARTY"
base_url = "https://business-api.tiktok.com"
credentials = { access_token = "HUSH_TEST_TIKTOK_ACCESS_TOKEN" }
[settings]
advertiser_id = "7000000000000000001"
audience_ids = ["1800000000000001"]
"#,
        &[("HUSH_TEST_TIKTOK_ACCESS_TOKEN", "tiktok-token")],
    );
    assert_eq!(FACTORY.kinds, ["tiktok"]);
}
