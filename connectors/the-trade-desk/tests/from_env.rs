//! Start-up from the recipients file with the token in the environment. Alone in its own test
//! binary because it sets an environment variable, which must not race other threads.

use hush_connector_the_trade_desk::{TradeDesk, FACTORY};
use hush_contracts::connector::FromRecipient;
use hush_contracts::recipients::RecipientConfig;

#[test]
fn from_recipient_reads_the_token_from_the_environment() {
    let recipient: RecipientConfig = toml::from_str(
        r#"
id = "ttd-env"
kind = "the_trade_desk"
role = "THIRD_PARTY"
base_url = "https://api.thetradedesk.com/v3"
credentials = { auth_token = "HUSH_TEST_TTD_AUTH_TOKEN" }
[settings]
advertiser_id = "qxwcdxw"
"#,
    )
    .unwrap();
    let err = TradeDesk::from_recipient(&recipient).err().unwrap();
    assert!(
        err.to_string().contains("HUSH_TEST_TTD_AUTH_TOKEN"),
        "{err}"
    );
    std::env::set_var("HUSH_TEST_TTD_AUTH_TOKEN", "ttd-token");
    TradeDesk::from_recipient(&recipient).expect("builds once the token is set");
    assert!((FACTORY.validate)(&recipient).is_ok());
    assert_eq!(FACTORY.kinds, ["the_trade_desk"]);
}
