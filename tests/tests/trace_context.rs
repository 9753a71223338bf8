//! One trace follows a request across services: the producer writes the current span's W3C
//! trace context into Kafka headers and the consumer continues that trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_runtime::kafka::{ConsumerSettings, EventConsumer, IncomingMessage};
use hush_tests::Stack;
use opentelemetry::trace::TraceContextExt;
use rdkafka::message::OwnedHeaders;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

fn trace_id_of(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

#[tokio::test]
async fn the_consumer_continues_the_producers_trace() {
    let _telemetry = hush_runtime::telemetry::init("hush-tests").expect("telemetry");
    let stack = Stack::from_env();
    let topics = stack.unique_topics("trace");
    stack.create_topics(&topics).await;
    let producer = stack.producer();

    let span = tracing::info_span!("intake request");
    let produced_trace = trace_id_of(&span);
    assert_ne!(
        produced_trace, "00000000000000000000000000000000",
        "a real trace"
    );
    producer
        .send_bytes(
            &topics.requests,
            Some(b"k"),
            b"payload",
            OwnedHeaders::new(),
        )
        .instrument(span)
        .await
        .unwrap();

    let records = stack.read_all(&topics.requests, 1, Duration::from_secs(10));
    let traceparent = records[0]
        .header("traceparent")
        .expect("traceparent header")
        .to_owned();
    assert!(traceparent.contains(&produced_trace), "{traceparent}");

    let seen = Arc::new(Mutex::new(None::<String>));
    let consumer = EventConsumer::new(
        &stack.kafka,
        ConsumerSettings {
            group_id: format!("it-trace-{}", uuid::Uuid::new_v4()),
            topics: vec![topics.requests.clone()],
            client_id: "it".into(),
        },
        stack.dlq(&topics),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let record = seen.clone();
    let task = tokio::spawn(consumer.run(shutdown.clone(), move |_: IncomingMessage| {
        let record = record.clone();
        async move {
            *record.lock().unwrap() = Some(trace_id_of(&tracing::Span::current()));
            Ok(())
        }
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "message not consumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some(produced_trace),
        "same trace on both sides"
    );
}
