//! Gives a client that has lost every broker its bootstrap servers back.
//!
//! librdkafka 2.12 forgets the brokers a client knows that a metadata answer does not list, the
//! bootstrap ones included. A KRaft broker fenced for a moment (thawed, or restarted, past its
//! session with the controller) answers metadata listing no broker at all; a client whose
//! brokers were all forgotten that way sends no more metadata requests, so its time-based
//! re-bootstrap (`metadata.recovery.rebootstrap.trigger.ms`) never starts and it stays
//! disconnected for good (confluentinc/librdkafka#5301, open in 2.15). Its statistics show it:
//! no broker learned from metadata or configured. This module watches them and adds
//! `bootstrap.servers` again; the client then reads metadata and learns the brokers anew.

use std::ffi::CString;
use std::sync::OnceLock;

use rdkafka::client::Client;
use rdkafka::{ClientContext, Statistics};

/// librdkafka's `statistics.interval.ms` for a watched client: how often its statistics (and
/// with them a client that forgot every broker) are looked at; the consumers' lag gauge too.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "15000";

/// Watches one client's statistics and adds its bootstrap servers back when it knows no
/// broker. Lives in the client's context; [`BootstrapRestorer::attach`] it to the client once
/// created, and pass every statistics report to [`BootstrapRestorer::check`].
#[derive(Debug, Default)]
pub(crate) struct BootstrapRestorer {
    /// The client's native handle (as an address, so the context stays `Send + Sync`) and its
    /// bootstrap servers.
    client: OnceLock<(usize, CString)>,
}

impl BootstrapRestorer {
    /// Remembers `client` and its bootstrap servers; call once, right after creating it. A
    /// server list with a NUL byte (which librdkafka would have refused) leaves it unattached.
    pub(crate) fn attach<C: ClientContext>(&self, client: &Client<C>, bootstrap_servers: &str) {
        if let Ok(servers) = CString::new(bootstrap_servers) {
            let _ = self.client.set((client.native_ptr() as usize, servers));
        }
    }

    /// Adds the bootstrap servers back when `statistics` show the client knows no broker, at
    /// each such report (librdkafka adds a server it does not have, and only that). Returns
    /// whether it did.
    pub(crate) fn check(&self, statistics: &Statistics) -> bool {
        if !knows_no_broker(statistics) {
            return false;
        }
        let Some((client, servers)) = self.client.get() else {
            return false;
        };
        // SAFETY: statistics reach a context only while its client is polled, so the handle
        // taken from that client when it was created is live; `rd_kafka_brokers_add` is
        // thread-safe and copies the list it is given.
        let added = unsafe {
            rdkafka::bindings::rd_kafka_brokers_add(
                *client as *mut rdkafka::bindings::rd_kafka_t,
                servers.as_ptr(),
            )
        };
        tracing::warn!(
            client = %statistics.name,
            added,
            "the Kafka client had forgotten every broker (a metadata answer listing none); \
             its bootstrap servers were added back"
        );
        crate::metrics::KAFKA_BOOTSTRAP_RESTORED.inc();
        true
    }
}

/// Whether the client knows no broker it could ask for metadata: none learned from a metadata
/// answer and none configured (the coordinator's logical broker and the internal one cannot).
fn knows_no_broker(statistics: &Statistics) -> bool {
    !statistics
        .brokers
        .values()
        .any(|broker| matches!(broker.source.as_str(), "learned" | "configured"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statistics(sources: &[&str]) -> Statistics {
        Statistics {
            name: "hush#consumer-1".into(),
            brokers: sources
                .iter()
                .enumerate()
                .map(|(i, source)| {
                    let broker = rdkafka::statistics::Broker {
                        source: (*source).to_owned(),
                        ..Default::default()
                    };
                    (format!("broker-{i}"), broker)
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_client_left_with_only_logical_brokers_knows_none() {
        assert!(knows_no_broker(&statistics(&[])));
        assert!(knows_no_broker(&statistics(&["logical", "internal"])));
        assert!(!knows_no_broker(&statistics(&["logical", "learned"])));
        assert!(!knows_no_broker(&statistics(&["configured"])));
    }

    #[test]
    fn an_unattached_restorer_adds_nothing() {
        let restorer = BootstrapRestorer::default();
        assert!(!restorer.check(&statistics(&[])), "no client to add to");
        assert!(!restorer.check(&statistics(&["learned"])));
    }

    #[test]
    fn an_attached_restorer_adds_the_servers_only_to_a_client_that_knows_no_broker() {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        // Creating a client connects to nothing yet: no broker is needed.
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .expect("client");
        let restorer = BootstrapRestorer::default();
        restorer.attach(consumer.client(), "127.0.0.1:1");
        assert!(restorer.check(&statistics(&["logical"])), "added back");
        assert!(
            restorer.check(&statistics(&[])),
            "and again while none is known"
        );
        assert!(!restorer.check(&statistics(&["configured"])));
    }
}
