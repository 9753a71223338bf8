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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use rdkafka::client::Client;
use rdkafka::{ClientContext, Statistics};

/// Watches one client's statistics and adds its bootstrap servers back when it knows no
/// broker. Lives in the client's context; [`BootstrapRestorer::attach`] it to the client once
/// created, and pass every statistics report to [`BootstrapRestorer::check`].
#[derive(Debug, Default)]
pub(crate) struct BootstrapRestorer {
    /// The client's native handle (as an address, so the context stays `Send + Sync`) and its
    /// bootstrap servers.
    client: OnceLock<(usize, CString)>,
    /// Whether the servers were added back since the client last knew a broker: added once per
    /// loss, not at every report while the connection is being made.
    restored: AtomicBool,
}

impl BootstrapRestorer {
    /// Remembers `client` and its bootstrap servers; call once, right after creating it. A
    /// server list with a NUL byte (which librdkafka would have refused) leaves it unattached.
    pub(crate) fn attach<C: ClientContext>(&self, client: &Client<C>, bootstrap_servers: &str) {
        if let Ok(servers) = CString::new(bootstrap_servers) {
            let _ = self.client.set((client.native_ptr() as usize, servers));
        }
    }

    /// Adds the bootstrap servers back when `statistics` show the client knows no broker.
    pub(crate) fn check(&self, statistics: &Statistics) {
        if !knows_no_broker(statistics) {
            self.restored.store(false, Ordering::SeqCst);
            return;
        }
        let Some((client, servers)) = self.client.get() else {
            return;
        };
        if self.restored.swap(true, Ordering::SeqCst) {
            return;
        }
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
    fn an_unattached_restorer_does_nothing_and_a_known_broker_rearms_it() {
        let restorer = BootstrapRestorer::default();
        restorer.check(&statistics(&[]));
        assert!(
            !restorer.restored.load(Ordering::SeqCst),
            "nothing to add the servers to"
        );
        restorer.restored.store(true, Ordering::SeqCst);
        restorer.check(&statistics(&["learned"]));
        assert!(
            !restorer.restored.load(Ordering::SeqCst),
            "a broker known again: the next loss is restored too"
        );
    }
}
