//! Start-up reads of the broker (topic metadata, partition counts, watermarks) that wait for
//! it: a broker that is down, restarting or slow to answer is retried with backoff while the
//! service reports not ready, and a cluster that answers with something wrong (a missing
//! topic, partition counts that differ) is an error at once, with its message.

use std::future::Future;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use backoff::ExponentialBackoffBuilder;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

/// Why a start-up read of the broker failed.
#[derive(Debug)]
pub enum StartupError {
    /// The broker could not be reached or did not answer in time (down, restarting, a leader
    /// being elected): worth waiting for.
    Unreachable(String),
    /// The cluster answered and refuses what the service needs (a missing topic, partition
    /// counts that differ, credentials refused): waiting does not help.
    Refused(ConfigError),
}

impl StartupError {
    /// `error` met while doing `what` (e.g. "metadata of hush.requests.v1"), classified by
    /// [`transient`].
    pub fn from_kafka(what: &str, error: &KafkaError) -> Self {
        let message = format!("{what}: {error}");
        if transient(error) {
            Self::Unreachable(message)
        } else {
            Self::Refused(ConfigError::Invalid(message))
        }
    }

    /// A refusal with `message` (what is wrong and how to fix it).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused(ConfigError::Invalid(message.into()))
    }
}

impl From<StartupError> for ConfigError {
    /// The error of a read made once, without waiting: an unreachable broker is an error too.
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Unreachable(message) => ConfigError::Invalid(message),
            StartupError::Refused(error) => error,
        }
    }
}

impl From<ConfigError> for StartupError {
    fn from(error: ConfigError) -> Self {
        Self::Refused(error)
    }
}

/// Whether `code` says the broker is not there or not answering yet, rather than that it
/// refuses the request: transport failures and timeouts, a broker or leader not available,
/// a name that does not resolve yet (a broker's DNS record appears with its pod), and a
/// partition's leadership or group coordinator moving after a restart.
pub fn transient_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::TimedOutQueue
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::ReplicaNotAvailable
            | RDKafkaErrorCode::PreferredLeaderNotAvailable
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::KafkaStorageError
            | RDKafkaErrorCode::Retry
            // Leadership moving after a broker restart: the client's metadata is behind or
            // ahead of the partition's leader for a moment (Kafka marks all four retriable).
            | RDKafkaErrorCode::UnknownLeaderEpoch
            | RDKafkaErrorCode::FencedLeaderEpoch
            | RDKafkaErrorCode::OffsetNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorLoadInProgress
    )
}

/// Whether `error` is worth waiting out ([`transient_code`]); an admin operation's error
/// counts by its code too.
pub fn transient(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    code.is_some_and(transient_code)
}

/// Whether a topic's or a partition's error in a metadata answer is worth waiting out (a
/// leader being elected after a broker restart), as opposed to the topic not existing.
pub fn transient_metadata_error(error: RDKafkaRespErr) -> bool {
    transient_code(error.into())
}

/// The partitions of `topic`, from `client`'s metadata: unreachable while the broker does not
/// answer or the topic's leader is being elected, refused when the topic does not exist.
pub fn topic_partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
) -> Result<Vec<i32>, StartupError> {
    let what = format!("metadata of {topic}");
    let metadata = client
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| StartupError::from_kafka(&what, &e))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(StartupError::Unreachable(format!(
            "{what}: the broker's answer does not list it"
        )));
    };
    let partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    match found.error() {
        Some(error) if transient_metadata_error(error) => {
            Err(StartupError::Unreachable(format!("{what}: {error:?}")))
        }
        None if !partitions.is_empty() => Ok(partitions),
        _ => Err(StartupError::refused(format!(
            "topic {topic} does not exist (create it with `hush topics create`)"
        ))),
    }
}

/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Exponential backoff from 200 ms to [`MAX_WAIT`] with jitter; never gives up by itself.
fn backoff() -> backoff::ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(200))
        .with_max_interval(MAX_WAIT)
        .with_randomization_factor(0.3)
        .with_max_elapsed_time(None)
        .build()
}

/// The attempts of one wait for the broker: the backoff between them and their log lines.
struct Attempts<'a> {
    what: &'a str,
    backoff: backoff::ExponentialBackoff,
    failed: u32,
    /// The error of the last failed attempt.
    last_error: Option<String>,
}

impl<'a> Attempts<'a> {
    fn new(what: &'a str) -> Self {
        Self {
            what,
            backoff: backoff(),
            failed: 0,
            last_error: None,
        }
    }

    /// Logs an answer that came after failed attempts.
    fn answered(&self) {
        if self.failed > 0 {
            tracing::info!(
                what = self.what,
                attempts = self.failed + 1,
                "broker answered at start-up"
            );
        }
    }

    /// Logs an unreachable broker and returns how long to wait before the next attempt.
    fn retry_after(&mut self, error: &str) -> Duration {
        self.failed += 1;
        let wait = self.backoff.next_backoff().unwrap_or(MAX_WAIT);
        tracing::warn!(
            what = self.what,
            %error,
            attempt = self.failed,
            retry_in_ms = wait.as_millis() as u64,
            "broker not answering at start-up; not ready, retrying"
        );
        self.last_error = Some(error.to_owned());
        wait
    }

    /// The error of a wait ended by a shutdown, naming what was waited for and the error of
    /// the last failed attempt.
    fn stopped(&self) -> ConfigError {
        let error = self
            .last_error
            .as_deref()
            .unwrap_or("shutdown during the first attempt");
        ConfigError::Invalid(format!(
            "stopped while waiting for the broker ({}: {error})",
            self.what
        ))
    }
}

/// Runs the blocking start-up read `read` (named `what` in the log) until it succeeds or is
/// refused, waiting with backoff after each [`StartupError::Unreachable`] and logging each
/// retry once with its error; gives up with an error naming `what` once `stop` is cancelled
/// (a shutdown while the broker is away). Call it off the async runtime's workers
/// (`spawn_blocking`).
pub fn wait_for_broker<T>(
    what: &str,
    stop: &CancellationToken,
    mut read: impl FnMut() -> Result<T, StartupError>,
) -> Result<T, ConfigError> {
    let mut attempts = Attempts::new(what);
    loop {
        match read() {
            Ok(value) => {
                attempts.answered();
                return Ok(value);
            }
            Err(StartupError::Refused(error)) => return Err(error),
            Err(StartupError::Unreachable(error)) => {
                let until = Instant::now() + attempts.retry_after(&error);
                while Instant::now() < until && !stop.is_cancelled() {
                    std::thread::sleep(STOP_CHECK.min(until - Instant::now()));
                }
                if stop.is_cancelled() {
                    return Err(attempts.stopped());
                }
            }
        }
    }
}

/// [`wait_for_broker`] for an asynchronous read (an admin operation): each attempt `read()` is
/// awaited until it succeeds or is refused, with the same backoff and log lines; a
/// cancellation of `stop` ends the wait at once, an attempt in flight included.
pub async fn wait_for_broker_async<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut read: F,
) -> Result<T, ConfigError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StartupError>>,
{
    let mut attempts = Attempts::new(what);
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => return Err(attempts.stopped()),
            outcome = read() => outcome,
        };
        match outcome {
            Ok(value) => {
                attempts.answered();
                return Ok(value);
            }
            Err(StartupError::Refused(error)) => return Err(error),
            Err(StartupError::Unreachable(error)) => {
                let wait = attempts.retry_after(&error);
                tokio::select! {
                    _ = stop.cancelled() => return Err(attempts.stopped()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// How often a wait between two attempts looks at its stop token.
const STOP_CHECK: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_broker_down_or_slow_is_transient() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::OperationTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::NotController,
            RDKafkaErrorCode::UnknownLeaderEpoch,
            RDKafkaErrorCode::FencedLeaderEpoch,
            RDKafkaErrorCode::OffsetNotAvailable,
        ] {
            assert!(transient(&KafkaError::MetadataFetch(code)), "{code:?}");
        }
        assert!(transient(&KafkaError::AdminOp(
            RDKafkaErrorCode::OperationTimedOut
        )));
        assert!(transient_metadata_error(
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
        ));
    }

    #[test]
    fn a_refusal_is_fatal() {
        for code in [
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::Authentication,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::InvalidArgument,
        ] {
            assert!(!transient(&KafkaError::MetadataFetch(code)), "{code:?}");
        }
        assert!(!transient(&KafkaError::ClientCreation("bad".into())));
        assert!(!transient_metadata_error(
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        ));
    }

    #[test]
    fn from_kafka_names_what_was_read() {
        let error = KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure);
        match StartupError::from_kafka("metadata of hush.audit.v1", &error) {
            StartupError::Unreachable(message) => {
                assert!(
                    message.starts_with("metadata of hush.audit.v1: "),
                    "{message}"
                )
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        let error = KafkaError::MetadataFetch(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(matches!(
            StartupError::from_kafka("metadata of hush.audit.v1", &error),
            StartupError::Refused(_)
        ));
    }

    #[test]
    fn unreachable_is_retried_until_it_answers() {
        let calls = Cell::new(0);
        let value = wait_for_broker("test read", &CancellationToken::new(), || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(StartupError::Unreachable("broker down".into()))
            } else {
                Ok(7)
            }
        })
        .unwrap();
        assert_eq!((value, calls.get()), (7, 3));
    }

    #[test]
    fn a_refusal_ends_the_wait_at_once_with_its_message() {
        let calls = Cell::new(0);
        let error = wait_for_broker::<()>("test read", &CancellationToken::new(), || {
            calls.set(calls.get() + 1);
            Err(StartupError::refused("topic t does not exist"))
        })
        .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert!(
            error.to_string().contains("topic t does not exist"),
            "{error}"
        );
    }

    #[test]
    fn a_shutdown_ends_the_wait_with_what_it_waited_for() {
        let stop = CancellationToken::new();
        let calls = Cell::new(0);
        let error = wait_for_broker::<()>("test read", &stop, || {
            calls.set(calls.get() + 1);
            stop.cancel();
            Err(StartupError::Unreachable("broker down".into()))
        })
        .unwrap_err()
        .to_string();
        assert_eq!(calls.get(), 1);
        assert!(
            error.contains("stopped while waiting for the broker (test read: broker down)"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_async_read_is_retried_with_backoff_until_it_answers() {
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let value = wait_for_broker_async("test read", &CancellationToken::new(), || {
            calls.set(calls.get() + 1);
            let answer = if calls.get() < 4 {
                Err(StartupError::Unreachable("broker down".into()))
            } else {
                Ok(7)
            };
            async move { answer }
        })
        .await
        .unwrap();
        assert_eq!((value, calls.get()), (7, 4));
        // Three waits of the backoff: at least 200 ms, growing, jittered by 30 % at most.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(3 * 140) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_async_refusal_ends_the_wait_at_once_with_its_message() {
        let calls = Cell::new(0);
        let error =
            wait_for_broker_async::<(), _, _>("test read", &CancellationToken::new(), || {
                calls.set(calls.get() + 1);
                async { Err(StartupError::refused("topic t does not exist")) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert!(
            error.to_string().contains("topic t does not exist"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_ends_an_async_wait_between_attempts() {
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            canceller.cancel();
        });
        let calls = Cell::new(0);
        let error = wait_for_broker_async::<(), _, _>("test read", &stop, || {
            calls.set(calls.get() + 1);
            async { Err(StartupError::Unreachable("broker down".into())) }
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(calls.get() > 1, "retried before the shutdown");
        assert!(
            error.contains("stopped while waiting for the broker (test read: broker down)"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_ends_an_async_attempt_in_flight() {
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            canceller.cancel();
        });
        let error = wait_for_broker_async::<(), _, _>("test read", &stop, || {
            std::future::pending::<Result<(), StartupError>>()
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(
                "stopped while waiting for the broker (test read: shutdown during the first attempt)"
            ),
            "{error}"
        );
    }
}
