//! Logging and tracing: structured JSON logs, OpenTelemetry spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace context carried in Kafka headers so one
//! trace follows a request across services.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the tracer provider alive; flushes spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {error}");
        }
    }
}

/// Installs the global subscriber for `service`: JSON logs filtered by `RUST_LOG`
/// (default `info`), and OpenTelemetry spans (OTLP/HTTP export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Call once, at start-up.
pub fn init(service: &'static str) -> anyhow::Result<TelemetryGuard> {
    let provider = tracer_provider(service)?;
    let tracer = provider.tracer(service);
    tracing_subscriber::registry()
        .with(log_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        ))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false),
        )
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// Dependencies whose debug logs print the values they carry (tokio-postgres logs every bound
/// query parameter, a raw identifier among them): never below `info`, whatever `RUST_LOG` says.
const VALUE_LOGGING_TARGETS: [&str; 1] = ["tokio_postgres"];

/// `filter` with [`VALUE_LOGGING_TARGETS`] held at `info`, so raising `RUST_LOG` to debug never
/// writes personal data to the logs.
pub fn log_filter(filter: EnvFilter) -> EnvFilter {
    VALUE_LOGGING_TARGETS.iter().fold(filter, |filter, target| {
        filter.add_directive(format!("{target}=info").parse().expect("a valid directive"))
    })
}

fn tracer_provider(service: &'static str) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder().with_service_name(service).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// W3C `traceparent`/`tracestate` headers for the current span (empty when no trace is active).
pub fn current_trace_headers() -> Vec<(String, String)> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.into_iter().collect()
}

/// Makes `span` a child of the trace context found in Kafka `headers`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &[(String, Vec<u8>)]) {
    let extractor = HeaderExtractor(headers);
    if extractor.get("traceparent").is_some() {
        let parent = TraceContextPropagator::new().extract(&extractor);
        let _ = span.set_parent(parent);
    }
}

struct HeaderExtractor<'a>(&'a [(String, Vec<u8>)]);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}
