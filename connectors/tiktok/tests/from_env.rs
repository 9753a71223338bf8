//! Start-up from the recipients file with the access token in the environment. Alone in its own
//! test binary because it sets an environment variable, which must not race other threads.

use hush_connector_tiktok::{TikTokAudiences, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_access_token_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
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
    )
    .unwrap();
    let err = TikTokAudiences::from_recipient(&recipient).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_TIKTOK_ACCESS_TOKEN"),
        "{err}"
    );
    std::env::set_var("HUSH_TEST_TIKTOK_ACCESS_TOKEN", "tiktok-token");
    TikTokAudiences::from_recipient(&recipient).expect("builds once the token is set");
    assert!((FACTORY.validate)(&recipient).is_ok());
    assert_eq!(FACTORY.kinds, ["tiktok"]);
}
