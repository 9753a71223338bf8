//! First stage: from a consumed message to a request and its retry bookkeeping, or to the
//! reason it can never be one.

use hush_contracts::events::{EpochMillis, PrivacyRequest};
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{HandlerError, IncomingMessage};

use crate::retry::{RetryState, Reverify};

/// What a consumed message turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// A request, with the retry bookkeeping its headers carry.
    Request(Box<PrivacyRequest>, RetryState),
    /// A request whose outcome's read-back is still `PENDING`, to be read back again.
    Reverify(Box<PrivacyRequest>, RetryState, Box<Reverify>),
    /// Bytes that can never be a request; the reason goes to the dead-letter topic.
    Malformed(String),
}

/// Decodes `message` with `codec` (`now` starts a re-verification's count when a re-drive
/// dropped it). An unreachable schema registry is an `Err` (the batch is handled again);
/// undecodable bytes, or a re-verification header that is no pending confirmation, are
/// [`Decoded::Malformed`].
pub async fn decode(
    codec: &AvroCodec,
    message: &IncomingMessage,
    now: EpochMillis,
) -> Result<Decoded, HandlerError> {
    match codec
        .decode::<PrivacyRequest>(message.payload.as_deref().unwrap_or_default())
        .await
    {
        Ok(request) => Ok(match Reverify::of(message, now) {
            None => Decoded::Request(Box::new(request), RetryState::of(message)),
            Some(Ok(reverify)) if reverify.pending.request_id != request.request_id => {
                Decoded::Malformed(format!(
                    "header {} names request {}, the message carries request {}",
                    crate::retry::REVERIFY_HEADER,
                    reverify.pending.request_id,
                    request.request_id
                ))
            }
            Some(Ok(reverify)) => Decoded::Reverify(
                Box::new(request),
                RetryState::of(message),
                Box::new(reverify),
            ),
            Some(Err(reason)) => Decoded::Malformed(reason),
        }),
        Err(error) if error.is_retryable() => Err(HandlerError::Retryable(error.to_string())),
        Err(error) => Ok(Decoded::Malformed(error.to_string())),
    }
}
