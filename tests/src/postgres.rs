//! The real PostgreSQL the SQL identity resolver is tested against: the throwaway cluster
//! `deploy/local/postgres up` starts on 127.0.0.1 (started here, once per test binary).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The cluster's connection URL (plaintext, the local test superuser), starting it if needed.
///
/// # Panics
/// When the cluster cannot be started (the server binaries missing, say), with the script's
/// own words.
pub fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/postgres");
        let output = Command::new(&script)
            .arg("up")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "`deploy/local/postgres up` failed (deploy/local/prerequisites installs Debian's \
             postgresql package):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("the URL is text")
            .trim()
            .to_owned()
    })
}

/// A connection to the cluster as its superuser, for a test to create its own tables.
pub async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(cluster_url(), tokio_postgres::NoTls)
        .await
        .expect("the test cluster accepts connections");
    tokio::spawn(connection);
    client
}
