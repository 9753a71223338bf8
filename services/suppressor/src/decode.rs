//! First stage: from a consumed message to a request and its retry bookkeeping, or to the
//! reason it can never be one.

use hush_contracts::events::PrivacyRequest;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{HandlerError, IncomingMessage};

use crate::retry::RetryState;

/// What a consumed message turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// A request, with the retry bookkeeping its headers carry.
    Request(Box<PrivacyRequest>, RetryState),
    /// Bytes that can never be a request; the reason goes to the dead-letter topic.
    Malformed(String),
}

/// Decodes `message` with `codec`. An unreachable schema registry is an `Err` (the batch is
/// handled again); undecodable bytes are [`Decoded::Malformed`].
pub async fn decode(codec: &AvroCodec, message: &IncomingMessage) -> Result<Decoded, HandlerError> {
    match codec
        .decode::<PrivacyRequest>(message.payload.as_deref().unwrap_or_default())
        .await
    {
        Ok(request) => Ok(Decoded::Request(Box::new(request), RetryState::of(message))),
        Err(error) if error.is_retryable() => Err(HandlerError::Retryable(error.to_string())),
        Err(error) => Ok(Decoded::Malformed(error.to_string())),
    }
}
