//! Reading a vendor's answer: every connector's `response.rs` holds one classification function,
//! which is a [`ClassifyResponse`], so a call either yields what the vendor returned or says
//! whether to retry after a delay, retry with backoff, or give up.

use hush_contracts::connector::ConnectorError;

use crate::http::{send, VendorAnswer};

/// One vendor's way of reading its answers.
pub trait ClassifyResponse {
    /// What a successful answer yields.
    type Success;

    /// Success with its content, or why the call did not complete: `RetryAfter` (the vendor
    /// said when), `Transient` (retry with backoff) or `Permanent` (with the vendor's reason).
    fn classify(&self, answer: &VendorAnswer) -> Result<Self::Success, ConnectorError>;
}

/// Any function from an answer to its meaning classifies answers, so a connector's classification
/// function (or a closure giving it the connector's settings) can be passed to [`call`].
impl<T, F> ClassifyResponse for F
where
    F: Fn(&VendorAnswer) -> Result<T, ConnectorError>,
{
    type Success = T;

    fn classify(&self, answer: &VendorAnswer) -> Result<T, ConnectorError> {
        self(answer)
    }
}

/// Sends `request` and reads the answer with `classifier`.
pub async fn call<C: ClassifyResponse>(
    request: reqwest::RequestBuilder,
    classifier: &C,
) -> Result<C::Success, ConnectorError> {
    classifier.classify(&send(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> VendorAnswer {
        VendorAnswer {
            status,
            retry_after: Some("3".into()),
            rate_limit_reset: None,
            body: "busy".into(),
        }
    }

    #[test]
    fn a_function_classifies_answers() {
        let created = |answer: &VendorAnswer| match answer.status {
            201 => Ok(answer.body.len()),
            status => Err(ConnectorError::Permanent(format!("HTTP {status}"))),
        };
        assert_eq!(created.classify(&answer(201)), Ok(4));
        assert_eq!(
            created.classify(&answer(200)),
            Err(ConnectorError::Permanent("HTTP 200".into()))
        );
    }
}
