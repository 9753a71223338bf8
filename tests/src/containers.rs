//! The broker and the registry as containers started by the `testcontainers` crate.
//!
//! Images: `hush-test/kafka:<version>` and `hush-test/apicurio:<version>`, built locally by
//! `deploy/testcontainers/images` (no registry pull). `HUSH_KAFKA_IMAGE` / `HUSH_APICURIO_IMAGE`
//! name others, e.g. the official `apache/kafka:4.1.1` on a machine that can pull it: the
//! home-built Kafka image reads the official image's `KAFKA_*` variables, so one configuration
//! serves both.
//!
//! Every container uses the host's network (`--network host`) and its own free loopback ports;
//! nothing listens on, or is sent to, any other address.
//!
//! Two things a plain `GenericImage::start()` does not handle here:
//! - testcontainers-rs 0.28 speaks Docker API 1.53 and never negotiates, while Debian's engine
//!   (`docker.io` 20.10) answers at most 1.41 and refuses newer. When the engine is older, the
//!   fixture serves a socket in front of it that rewrites the version in each request path
//!   (`/v1.53/` → `/v1.41/`, same length, nothing else touched) and points `DOCKER_HOST` at it.
//! - A set shared by a whole test binary lives in a `static`, which Rust never drops; a reaper
//!   process removes its containers once the test process has exited (however it exited).

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The Docker API version testcontainers (through bollard) puts in every request path.
const CLIENT_API: &str = "1.53";
/// Default images, built by `deploy/testcontainers/images`.
pub const DEFAULT_KAFKA_IMAGE: &str = "hush-test/kafka:4.1.1";
/// See [`DEFAULT_KAFKA_IMAGE`].
pub const DEFAULT_APICURIO_IMAGE: &str = "hush-test/apicurio:3.3.3";

/// Writes a line to the test process's standard error, past the test harness's capture, so
/// that `make test`'s log shows which broker every test binary used.
pub fn announce(line: &str) {
    let _ = writeln!(std::io::stderr(), "[hush-tests] {line}");
}

/// A Docker engine that answered.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Its unix socket (`None`: `DOCKER_HOST` names a TCP engine, used as it is).
    pub socket: Option<PathBuf>,
    /// The newest API version it speaks.
    pub api_version: String,
}

/// The Docker engine named by `DOCKER_HOST` (default `/var/run/docker.sock`), if it answers.
pub fn engine() -> Option<Engine> {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
            let Some(path) = host.strip_prefix("unix://") else {
                // A TCP engine: assumed current; testcontainers reports it if not.
                return Some(Engine {
                    socket: None,
                    api_version: CLIENT_API.to_owned(),
                });
            };
            let api_version = engine_api_version(Path::new(path))?;
            Some(Engine {
                socket: Some(PathBuf::from(path)),
                api_version,
            })
        })
        .clone()
}

fn engine_api_version(socket: &Path) -> Option<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    let version: serde_json::Value = serde_json::from_str(body).ok()?;
    version["ApiVersion"].as_str().map(str::to_owned)
}

fn api_tuple(version: &str) -> (u32, u32) {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
}

/// The runtime every container operation runs on: testcontainers' Docker client is bound to
/// the runtime that made it, while each `#[tokio::test]` has a runtime of its own.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testcontainers")
            .enable_all()
            .build()
            .expect("testcontainers runtime")
    })
}

/// Runs `future` on the containers' runtime and waits for it (from sync or async code).
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("container operation finished")
}

/// Runs `future` on the containers' runtime, awaiting it from any other runtime.
pub async fn on_runtime<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future).await.expect("container operation")
}

/// Points testcontainers at the engine, through the API-version shim when the engine is older
/// than the client. Once per process.
pub(crate) fn connect(engine: &Engine) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Some(socket) = engine.socket.clone() else {
            return;
        };
        let real = format!("unix://{}", socket.display());
        if api_tuple(&engine.api_version) >= api_tuple(CLIENT_API)
            || engine.api_version.len() != CLIENT_API.len()
        {
            std::env::set_var("DOCKER_HOST", real);
            return;
        }
        let shim = shim_path();
        let _ = std::fs::remove_file(&shim);
        let from = format!(" /v{CLIENT_API}/").into_bytes();
        let to = format!(" /v{}/", engine.api_version).into_bytes();
        let listener = {
            let _guard = runtime().enter();
            tokio::net::UnixListener::bind(&shim).expect("docker API shim socket")
        };
        runtime().spawn(serve_shim(listener, socket, from, to));
        announce(&format!(
            "Docker engine speaks API {} (testcontainers asks for {CLIENT_API}): \
             through the version shim {}",
            engine.api_version,
            shim.display()
        ));
        std::env::set_var("DOCKER_HOST", format!("unix://{}", shim.display()));
    });
}

fn shim_path() -> PathBuf {
    std::env::temp_dir().join(format!("hush-docker-{}.sock", std::process::id()))
}

async fn serve_shim(
    listener: tokio::net::UnixListener,
    upstream: PathBuf,
    from: Vec<u8>,
    to: Vec<u8>,
) {
    let (from, to) = (Arc::new(from), Arc::new(to));
    while let Ok((client, _)) = listener.accept().await {
        let (upstream, from, to) = (upstream.clone(), from.clone(), to.clone());
        tokio::spawn(async move {
            let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            let mut server_read = server_read;
            let responses = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            let _ = rewrite_copy(&mut client_read, &mut server_write, &from, &to).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut server_write).await;
            let _ = responses.await;
        });
    }
}

/// Copies `reader` to `writer`, replacing `from` by `to` (same length). A chunk that ends in
/// a proper prefix of `from` keeps that tail back for the next chunk; a request line is
/// written whole by the client, so this never holds back the end of a request.
async fn rewrite_copy(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    from: &[u8],
    to: &[u8],
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            writer.write_all(&pending).await?;
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        let mut i = 0;
        while i + from.len() <= pending.len() {
            if &pending[i..i + from.len()] == from {
                pending[i..i + from.len()].copy_from_slice(to);
                i += from.len();
            } else {
                i += 1;
            }
        }
        let keep = (1..from.len())
            .rev()
            .find(|&k| k <= pending.len() && pending[pending.len() - k..] == from[..k])
            .unwrap_or(0);
        let send = pending.len() - keep;
        writer.write_all(&pending[..send]).await?;
        pending.drain(..send);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

pub(crate) fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

/// A broker and a registry in containers.
pub struct Containers {
    /// `127.0.0.1:<port>` of the broker.
    pub bootstrap: String,
    /// Confluent-compatible base URL of the registry.
    pub registry_url: String,
    /// Image of the broker.
    pub kafka_image: String,
    /// Image of the registry.
    pub registry_image: String,
    kafka: Option<ContainerAsync<GenericImage>>,
    registry: Option<ContainerAsync<GenericImage>>,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("bootstrap", &self.bootstrap)
            .field("registry_url", &self.registry_url)
            .finish()
    }
}

impl Containers {
    /// Starts a broker and a registry, each on free ports, and waits until both answer.
    pub fn start(label: &str) -> anyhow::Result<Containers> {
        let engine = engine().ok_or_else(|| anyhow::anyhow!("no Docker engine answers"))?;
        connect(&engine);
        let label = label.to_owned();
        let containers = block_on(async move { Self::start_async(&label).await })?;
        if let Some(socket) = &engine.socket {
            reap_after_exit(socket, &[containers.kafka_id(), containers.registry_id()]);
        }
        Ok(containers)
    }

    async fn start_async(label: &str) -> anyhow::Result<Containers> {
        let started = Instant::now();
        let kafka_image =
            std::env::var("HUSH_KAFKA_IMAGE").unwrap_or_else(|_| DEFAULT_KAFKA_IMAGE.to_owned());
        let registry_image = std::env::var("HUSH_APICURIO_IMAGE")
            .unwrap_or_else(|_| DEFAULT_APICURIO_IMAGE.to_owned());
        let (port, controller) = (free_port(), free_port());
        let (http, management) = (free_port(), free_port());
        let pid = std::process::id().to_string();

        let (name, tag) = split_image(&kafka_image);
        let broker = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_either_std("Kafka Server started"))
            .with_network("host")
            .with_container_name(format!("hush-it-{label}-kafka-{pid}-{port}"))
            .with_label("hush.test.pid", pid.clone())
            .with_startup_timeout(Duration::from_secs(180));
        let mut broker = broker;
        // The official apache/kafka image's variables; hush-test/kafka reads the same ones.
        for (key, value) in [
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw".to_owned()),
            ("KAFKA_NODE_ID", "1".to_owned()),
            ("KAFKA_PROCESS_ROLES", "broker,controller".to_owned()),
            (
                "KAFKA_LISTENERS",
                format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                format!("PLAINTEXT://127.0.0.1:{port}"),
            ),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".to_owned()),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".to_owned(),
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".to_owned()),
            (
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                format!("1@127.0.0.1:{controller}"),
            ),
            ("KAFKA_NUM_PARTITIONS", "3".to_owned()),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".to_owned()),
            ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "10".to_owned()),
            (
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "1".to_owned(),
            ),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".to_owned()),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                "1".to_owned(),
            ),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
                "1".to_owned(),
            ),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".to_owned()),
            ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false".to_owned()),
            ("KAFKA_HEAP_OPTS", "-Xms256m -Xmx768m".to_owned()),
        ] {
            broker = broker.with_env_var(key, value);
        }

        let (name, tag) = split_image(&registry_image);
        let registry = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_either_std("Listening on:"))
            .with_network("host")
            .with_container_name(format!("hush-it-{label}-apicurio-{pid}-{http}"))
            .with_label("hush.test.pid", pid.clone())
            .with_startup_timeout(Duration::from_secs(180))
            // Quarkus reads its settings from the environment, in either image.
            .with_env_var("QUARKUS_HTTP_HOST", "127.0.0.1")
            .with_env_var("QUARKUS_HTTP_PORT", http.to_string())
            .with_env_var("QUARKUS_MANAGEMENT_HOST", "127.0.0.1")
            .with_env_var("QUARKUS_MANAGEMENT_PORT", management.to_string())
            // Kept across a stop/start of the container, so schema ids survive a restart.
            .with_env_var("APICURIO_STORAGE_KIND", "sql")
            .with_env_var("APICURIO_STORAGE_SQL_KIND", "h2")
            .with_env_var(
                "APICURIO_DATASOURCE_URL",
                "jdbc:h2:file:/tmp/apicurio/registry",
            );

        let (kafka, registry) = tokio::join!(broker.start(), registry.start());
        let (kafka, registry) = match (kafka, registry) {
            (Ok(k), Ok(r)) => (k, r),
            (k, r) => {
                let error = format!(
                    "kafka: {:?}; registry: {:?}",
                    k.as_ref().err(),
                    r.as_ref().err()
                );
                for container in [k.ok(), r.ok()].into_iter().flatten() {
                    let _ = container.rm().await;
                }
                anyhow::bail!("containers did not start: {error}");
            }
        };
        let containers = Containers {
            bootstrap: format!("127.0.0.1:{port}"),
            registry_url: format!("http://127.0.0.1:{http}/apis/ccompat/v7"),
            kafka_image,
            registry_image,
            kafka: Some(kafka),
            registry: Some(registry),
        };
        containers.registry_ready(Duration::from_secs(60)).await?;
        // Registration enforces compatibility only once a global level is set.
        let response = reqwest::Client::new()
            .put(format!("{}/config", containers.registry_url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(r#"{"compatibility":"BACKWARD"}"#)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "registry config: {}",
            response.status()
        );
        announce(&format!(
            "testcontainers started {} (container {}) on {} and {} (container {}) on {} in {:.1} s",
            containers.kafka_image,
            &containers.kafka_id()[..12],
            containers.bootstrap,
            containers.registry_image,
            &containers.registry_id()[..12],
            containers.registry_url,
            started.elapsed().as_secs_f64()
        ));
        Ok(containers)
    }

    /// Waits until the registry lists its subjects.
    pub async fn registry_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::new();
        loop {
            let answered = http
                .get(format!("{}/subjects", self.registry_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "registry not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Docker id of the broker container.
    pub fn kafka_id(&self) -> &str {
        self.kafka.as_ref().map(|c| c.id()).unwrap_or_default()
    }

    /// Docker id of the registry container.
    pub fn registry_id(&self) -> &str {
        self.registry.as_ref().map(|c| c.id()).unwrap_or_default()
    }
}

/// Removes the containers `ids` once this process has exited: a set shared through a `static`
/// is never dropped. `socket` is the engine's own socket (the version shim goes with the
/// process).
pub(crate) fn reap_after_exit(socket: &Path, ids: &[&str]) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         docker rm -f -v {ids} >/dev/null 2>&1; rm -f {shim}",
        pid = std::process::id(),
        shim = shim_path().display(),
        ids = ids.join(" "),
    );
    let spawned = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = spawned {
        announce(&format!("could not start the container reaper: {error}"));
    }
}

/// Which container of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The broker.
    Kafka,
    /// The registry.
    Registry,
}

/// What to do to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `docker stop` (SIGTERM, then SIGKILL after `timeout` seconds).
    Stop,
    /// `docker kill` (stop with no grace).
    Kill,
    /// `docker start` of the stopped container: same ports, same data.
    Start,
    /// `docker pause` (the processes are frozen; sockets stay open).
    Pause,
    /// `docker unpause`.
    Unpause,
}

impl Containers {
    /// Applies `action` to one container of the set, through testcontainers.
    pub async fn act(self: &Arc<Self>, which: Which, action: Action) -> anyhow::Result<()> {
        let this = Arc::clone(self);
        on_runtime(async move {
            let container = match which {
                Which::Kafka => this.kafka.as_ref(),
                Which::Registry => this.registry.as_ref(),
            }
            .ok_or_else(|| anyhow::anyhow!("container gone"))?;
            match action {
                Action::Stop => container.stop_with_timeout(Some(10)).await?,
                Action::Kill => container.stop_with_timeout(Some(0)).await?,
                Action::Start => container.start().await?,
                Action::Pause => container.pause().await?,
                Action::Unpause => container.unpause().await?,
            }
            announce(&format!(
                "testcontainers: {action:?} {which:?} ({})",
                &container.id()[..12]
            ));
            anyhow::Ok(())
        })
        .await
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let (kafka, registry) = (self.kafka.take(), self.registry.take());
        block_on(async move {
            for container in [kafka, registry].into_iter().flatten() {
                let _ = container.rm().await;
            }
        });
    }
}
