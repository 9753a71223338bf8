//! Test doubles for the suppressor's stages: a clock that advances only when slept on, a
//! connector that answers from a script, and outputs kept in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::{
    Category, Channel, Confirmation, EpochMillis, PrivacyRequest, RequestKind, VerificationStatus,
};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::kafka::{HandlerError, IncomingMessage};

use crate::clock::Clock;
use crate::record::Record;
use crate::retry::{RetryState, Reverify};

/// A request of `kind` with id `id`.
pub fn request(id: &str, kind: RequestKind) -> PrivacyRequest {
    PrivacyRequest {
        request_id: id.into(),
        subject_key: format!("subject-{id}"),
        kind,
        channel: Channel::Api,
        jurisdiction: "US-CA".into(),
        received_at: 0,
        identifiers: vec![],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "test".into(),
        consumer_initiated: false,
        idempotency_key: None,
        resolution: Vec::new(),
    }
}

/// A consumed message (its bytes do not matter past decoding).
pub fn message() -> IncomingMessage {
    IncomingMessage {
        topic: "hush.requests.v1".into(),
        partition: 0,
        offset: 0,
        key: Some(b"subject".to_vec()),
        payload: Some(b"request".to_vec()),
        headers: vec![],
        timestamp_ms: None,
    }
}

/// A recipient with every request kind in scope and a rate limit that never waits in tests.
pub fn recipient() -> RecipientConfig {
    let mut recipient: RecipientConfig = toml::from_str(
        "id = \"crm\"\nkind = \"webhook\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://127.0.0.1:1\"\n",
    )
    .expect("recipient");
    recipient.rate_limit_per_second = 10_000;
    recipient.max_attempts = 5;
    recipient
}

/// A clock that stands still until slept on; every sleep advances it and is recorded.
#[derive(Clone, Default)]
pub struct FakeClock {
    state: Arc<Mutex<(EpochMillis, Vec<Duration>)>>,
}

impl FakeClock {
    /// A clock reading `now`.
    pub fn at(now: EpochMillis) -> Self {
        let clock = Self::default();
        clock.state.lock().unwrap().0 = now;
        clock
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.lock().unwrap().1.clone()
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now_millis(&self) -> EpochMillis {
        self.state.lock().unwrap().0
    }

    async fn sleep(&self, duration: Duration) {
        let mut state = self.state.lock().unwrap();
        state.0 += duration.as_millis() as EpochMillis;
        state.1.push(duration);
    }
}

/// A connector answering each call with the next scripted answer (a per-item answer is
/// repeated for every item of the call).
#[derive(Default)]
pub struct ScriptedConnector {
    answers: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<(Operation, usize)>>,
    verify_batch_limit: usize,
    read_backs: Mutex<Vec<usize>>,
    read_back_answers: Mutex<VecDeque<VerificationStatus>>,
    settled_elsewhere: std::sync::atomic::AtomicBool,
    reads_nothing_back: std::sync::atomic::AtomicBool,
}

/// One scripted answer to a call.
#[derive(Clone)]
pub enum Answer {
    /// The whole call fails.
    Call(ConnectorError),
    /// Every item gets this result.
    Each(Result<Completion, ConnectorError>),
    /// Exactly these item results.
    Items(ItemResults),
}

impl ScriptedConnector {
    /// A connector that answers its calls with `answers`, in order.
    pub fn answering(answers: impl IntoIterator<Item = Answer>) -> Arc<Self> {
        Self::reading_back(1, answers)
    }

    /// A connector that answers its calls with `answers` and reads back up to
    /// `verify_batch_limit` items per read-back call.
    pub fn reading_back(
        verify_batch_limit: usize,
        answers: impl IntoIterator<Item = Answer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into_iter().collect()),
            calls: Mutex::default(),
            verify_batch_limit,
            read_backs: Mutex::default(),
            read_back_answers: Mutex::default(),
            settled_elsewhere: Default::default(),
            reads_nothing_back: Default::default(),
        })
    }

    /// Makes the next read-backs answer `statuses`, one per item read, in order (then each
    /// item keeps its completion's status again).
    pub fn read_back_as(
        self: Arc<Self>,
        statuses: impl IntoIterator<Item = VerificationStatus>,
    ) -> Arc<Self> {
        self.read_back_answers.lock().unwrap().extend(statuses);
        self
    }

    /// Makes this connector's `PENDING` outcomes settled elsewhere (like a webhook's callback):
    /// never re-verified.
    pub fn settled_elsewhere(self: Arc<Self>) -> Arc<Self> {
        self.settled_elsewhere
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// Makes this connector one that keeps the default `verify` (like a webhook's): its
    /// read-backs call no vendor and take no slot of the rate limit.
    pub fn reading_nothing_back(self: Arc<Self>) -> Arc<Self> {
        self.reads_nothing_back
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// The number of items of each read-back call, in order.
    pub fn read_backs(&self) -> Vec<usize> {
        self.read_backs.lock().unwrap().clone()
    }

    /// The size of each call's batch, in order.
    pub fn calls(&self) -> Vec<usize> {
        self.operations().into_iter().map(|(_, len)| len).collect()
    }

    /// The operation and batch size of each call, in order.
    pub fn operations(&self) -> Vec<(Operation, usize)> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, len: usize) -> Result<ItemResults, ConnectorError> {
        match self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("a call the script did not expect")
        {
            Answer::Call(error) => Err(error),
            Answer::Each(result) => Ok(vec![result; len]),
            Answer::Items(results) => Ok(results),
        }
    }
}

#[async_trait]
impl Connector for ScriptedConnector {
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.calls.lock().unwrap().push((operation, batch.len()));
        self.answer(batch.len())
    }

    fn reverifies_pending(&self) -> bool {
        !self
            .settled_elsewhere
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn reads_back(&self) -> bool {
        !self
            .reads_nothing_back
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn verify_batch_limit(&self) -> usize {
        self.verify_batch_limit
    }

    /// Records the read-back's size; each item gets the next scripted read-back status, else
    /// keeps its completion's status.
    async fn verify_batch(
        &self,
        items: &[(&SuppressionWork, &Completion)],
    ) -> Vec<VerificationStatus> {
        self.read_backs.lock().unwrap().push(items.len());
        let mut answers = self.read_back_answers.lock().unwrap();
        items
            .iter()
            .map(|(_, c)| answers.pop_front().unwrap_or(c.verification))
            .collect()
    }
}

/// One output of the suppressor.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A confirmation.
    Confirmed(Confirmation),
    /// A message moved to the retry topic.
    Retry {
        /// Retry bookkeeping written to the headers.
        state: RetryState,
        /// Last error header.
        last_error: String,
    },
    /// A message moved to the retry topic to be read back again.
    Reverify {
        /// The re-verification written to the headers.
        reverify: Box<Reverify>,
        /// Not to be read back before.
        not_before: EpochMillis,
    },
    /// A dead letter.
    DeadLetter(String),
}

/// Outputs kept in memory, in order.
#[derive(Clone, Default)]
pub struct MemoryRecord {
    outputs: Arc<Mutex<Vec<Output>>>,
}

impl MemoryRecord {
    /// Everything recorded so far.
    pub fn outputs(&self) -> Vec<Output> {
        self.outputs.lock().unwrap().clone()
    }
}

#[async_trait]
impl Record for MemoryRecord {
    async fn confirm(&self, confirmation: Confirmation) -> Result<(), HandlerError> {
        self.outputs
            .lock()
            .unwrap()
            .push(Output::Confirmed(confirmation));
        Ok(())
    }

    async fn retry_later(
        &self,
        _message: &IncomingMessage,
        state: &RetryState,
        last_error: &str,
    ) -> Result<(), HandlerError> {
        self.outputs.lock().unwrap().push(Output::Retry {
            state: *state,
            last_error: last_error.to_owned(),
        });
        Ok(())
    }

    async fn reverify_later(
        &self,
        _message: &IncomingMessage,
        reverify: &Reverify,
        not_before: EpochMillis,
    ) -> Result<(), HandlerError> {
        self.outputs.lock().unwrap().push(Output::Reverify {
            reverify: Box::new(reverify.clone()),
            not_before,
        });
        Ok(())
    }

    async fn dead_letter(
        &self,
        _message: &IncomingMessage,
        reason: &str,
    ) -> Result<(), HandlerError> {
        self.outputs
            .lock()
            .unwrap()
            .push(Output::DeadLetter(reason.to_owned()));
        Ok(())
    }
}
