//! Start-up from the recipients file with the token in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_kit::testing::builds_with_credentials_from_env;
use hush_connector_the_trade_desk::{TradeDesk, FACTORY};

#[test]
fn from_recipient_reads_the_token_from_the_environment() {
    builds_with_credentials_from_env::<TradeDesk>(
        &FACTORY,
        r#"
id = "ttd-env"
kind = "the_trade_desk"
role = "THIRD_PARTY"
base_url = "https://api.thetradedesk.com/v3"
credentials = { auth_token = "HUSH_TEST_TTD_AUTH_TOKEN" }
[settings]
advertiser_id = "qxwcdxw"
"#,
        &[("HUSH_TEST_TTD_AUTH_TOKEN", "ttd-token")],
    );
    assert_eq!(FACTORY.kinds, ["the_trade_desk"]);
}
