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

/// A free loopback port (bound then released).
pub(crate) fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` free loopback ports, all different: each stays bound until every one is picked (ports
/// picked one after another may repeat, and a broker refuses two listeners on one port).
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("bound address").port())
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
        let [port, controller, http, management] = free_ports();
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
            // Longer than the pause test freezes the broker (9 s; the default is 9 s): a broker
            // thawed past its session with its own controller is fenced for a moment, answers
            // metadata listing no broker, and librdkafka 2.12 then forgets every broker it
            // knew, for good (confluentinc/librdkafka#5301). README, "Containers for the tests".
            ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "30000".to_owned()),
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

// ---------------------------------------------------------------------------------------------
// Hush's own runtime image, run as containers.

/// The script that builds the test images.
fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/testcontainers/images")
}

/// A `docker` command line talking to the engine itself (never the version shim: the CLI
/// negotiates its API version).
fn docker_cli() -> anyhow::Result<std::process::Command> {
    let engine = engine().ok_or_else(|| anyhow::anyhow!("no Docker engine answers"))?;
    let mut command = std::process::Command::new("docker");
    if let Some(socket) = &engine.socket {
        command.env("DOCKER_HOST", format!("unix://{}", socket.display()));
    }
    Ok(command)
}

/// Runs `docker ARGS` and returns its standard output, or an error with its standard error.
async fn docker(args: Vec<String>) -> anyhow::Result<String> {
    let mut command = docker_cli()?;
    command.args(&args);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    anyhow::ensure!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Hush's runtime image holding this workspace's binaries: `deploy/testcontainers/images
/// runtime` builds them (a no-op `cargo build` when they are current; `HUSH_RUNTIME_BUILD=0`
/// skips it) and makes the image `hush-test/runtime:<digest of the binaries>`, or finds it
/// current. `HUSH_RUNTIME_IMAGE` names another image instead (it must hold the same binaries
/// in its `PATH`). Blocks: call it outside an async runtime or through `spawn_blocking`.
pub fn runtime_image() -> anyhow::Result<String> {
    if let Ok(image) = std::env::var("HUSH_RUNTIME_IMAGE") {
        announce(&format!("runtime image {image} (HUSH_RUNTIME_IMAGE)"));
        return Ok(image);
    }
    let started = Instant::now();
    let mut command = std::process::Command::new(images_script());
    command.arg("runtime");
    if let Some(socket) = engine().and_then(|e| e.socket) {
        command.env("DOCKER_HOST", format!("unix://{}", socket.display()));
    }
    let output = command
        .output()
        .map_err(|e| anyhow::anyhow!("{}: {e}", images_script().display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        anyhow::bail!(
            "deploy/testcontainers/images runtime failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let image = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    anyhow::ensure!(
        image.starts_with("hush-test/runtime:"),
        "deploy/testcontainers/images runtime named no image: {image:?}"
    );
    announce(&format!(
        "runtime image {image} ready in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if log.contains("is current (binaries unchanged)") {
            "binaries unchanged, image reused"
        } else {
            "built now"
        }
    ));
    Ok(image)
}

/// The configuration a platform team mounts at `/etc/hush/hush.toml`: `deploy/k8s/hush.toml`
/// with only what differs on this machine changed — the broker's and the registry's addresses,
/// topic names and consumer groups unique to one run (one partition count and replication
/// factor of 1 for a one-broker cluster), the recipients' base URLs (their simulators), and one
/// API key (the test operator's, to read the auditor). Everything else (recipients' limits,
/// `[auth]` anonymous scopes, deadlines, `[canary]`, `[gate]`) is the shipped file's.
pub struct PlatformConfig {
    /// Directory mounted read-only at `/etc/hush` (holds `hush.toml`); removed on drop.
    pub dir: PathBuf,
    /// The topics the file names.
    pub topics: hush_runtime::config::TopicsConfig,
}

impl PlatformConfig {
    /// Path of the shipped configuration.
    pub fn k8s_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/hush.toml")
    }

    /// The shipped configuration pointed at `stack`, with `recipients` mapping each recipient
    /// id of the file to its base URL here. A recipient of the file missing from `recipients`
    /// is an error (its real vendor must never be called from a test).
    pub fn from_k8s(
        stack: &crate::Stack,
        label: &str,
        recipients: &[(&str, String)],
    ) -> anyhow::Result<PlatformConfig> {
        let shipped = std::fs::read_to_string(Self::k8s_file())?;
        let mut file: toml::Table = toml::from_str(&shipped)?;
        let topics = stack.unique_topics(label);
        let run = format!("it-{label}-{}", uuid::Uuid::new_v4().simple());
        let section = |file: &mut toml::Table, name: &str| -> anyhow::Result<toml::Table> {
            match file.remove(name) {
                Some(toml::Value::Table(table)) => Ok(table),
                None => Ok(toml::Table::new()),
                Some(_) => anyhow::bail!("[{name}] of deploy/k8s/hush.toml is not a table"),
            }
        };
        let mut kafka = section(&mut file, "kafka")?;
        kafka.insert(
            "bootstrap_servers".into(),
            stack.kafka.bootstrap_servers.clone().into(),
        );
        file.insert("kafka".into(), kafka.into());
        let mut registry = section(&mut file, "schema_registry")?;
        registry.insert("url".into(), stack.registry_url.clone().into());
        file.insert("schema_registry".into(), registry.into());
        file.insert("topics".into(), toml::Value::try_from(&topics)?);
        for (name, key, value) in [
            ("state", "group_id", format!("{run}-state")),
            ("auditor", "group_id", format!("{run}-auditor")),
            ("suppressor", "group_prefix", format!("{run}-suppressor")),
        ] {
            let mut table = section(&mut file, name)?;
            table.insert(key.into(), value.into());
            file.insert(name.into(), table.into());
        }
        let mut auth = section(&mut file, "auth")?;
        let operator = crate::auth::test_auth()
            .config()
            .api_keys
            .into_iter()
            .find(|k| k.client == "integration-tests")
            .ok_or_else(|| anyhow::anyhow!("the test operator key"))?;
        auth.insert(
            "api_keys".into(),
            toml::Value::Array(vec![toml::Value::try_from(&operator)?]),
        );
        file.insert("auth".into(), auth.into());
        let Some(toml::Value::Array(listed)) = file.get_mut("recipients") else {
            anyhow::bail!("deploy/k8s/hush.toml lists no [[recipients]]");
        };
        for recipient in listed.iter_mut() {
            let table = recipient
                .as_table_mut()
                .ok_or_else(|| anyhow::anyhow!("a [[recipients]] entry is not a table"))?;
            let id = table
                .get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let url = recipients
                .iter()
                .find(|(known, _)| *known == id)
                .map(|(_, url)| url.clone())
                .ok_or_else(|| anyhow::anyhow!("no simulator given for recipient {id:?}"))?;
            table.insert("base_url".into(), url.into());
        }

        let dir = std::env::temp_dir().join(format!("hush-platform-{run}"));
        std::fs::create_dir_all(&dir)?;
        let text = format!(
            "# deploy/k8s/hush.toml with this machine's addresses (tests/src/containers.rs)\n{}",
            toml::to_string(&file)?
        );
        std::fs::write(dir.join("hush.toml"), text)?;
        // The services run as user 65532: the directory and the file must be readable by it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(
            dir.join("hush.toml"),
            std::fs::Permissions::from_mode(0o644),
        )?;
        Ok(PlatformConfig { dir, topics })
    }
}

impl Drop for PlatformConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How one Hush service runs: its Deployment's command and the secrets its manifest maps.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Container name part, e.g. `suppressor-hubspot` (the manifest's container name).
    pub name: String,
    /// The manifest's `command`, e.g. `["hush-suppressor", "--connector", "hubspot"]`.
    pub command: Vec<String>,
    /// The configuration section whose `listen` this container gets, on a free loopback port
    /// (`HUSH_<SECTION>__LISTEN`); `None` for a command without a server.
    pub listen_section: Option<String>,
    /// Environment variables besides `HUSH_CONFIG` and `RUST_LOG` (the secrets the manifest
    /// maps from Kubernetes Secrets).
    pub env: Vec<(String, String)>,
}

impl ServiceSpec {
    /// A service with a server: `command` (space-separated, as in the manifest), listening as
    /// configured in `[section]`.
    pub fn server(name: &str, command: &str, section: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.to_owned(),
            command: command.split_whitespace().map(str::to_owned).collect(),
            listen_section: Some(section.to_owned()),
            env: Vec::new(),
        }
    }

    /// Adds the environment variable `name`=`value`.
    pub fn with_env(mut self, name: &str, value: &str) -> ServiceSpec {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One Hush service in a container of the runtime image, run the way its Kubernetes
/// Deployment runs it: the manifest's command, the configuration mounted read-only at
/// `/etc/hush`, user 65532, a read-only root filesystem with a `/tmp` tmpfs, every capability
/// dropped, no privilege escalation; host networking, listening on loopback only.
pub struct RuntimeService {
    /// The spec it runs.
    pub spec: ServiceSpec,
    /// `http://127.0.0.1:<port>` of its server, when it has one.
    pub url: Option<String>,
    id: String,
    container: Option<ContainerAsync<GenericImage>>,
}

impl std::fmt::Debug for RuntimeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeService")
            .field("name", &self.spec.name)
            .field("url", &self.url)
            .field("id", &self.id)
            .finish()
    }
}

impl RuntimeService {
    fn request(
        image: &str,
        config: &PlatformConfig,
        label: &str,
        spec: &ServiceSpec,
        port: Option<u16>,
    ) -> testcontainers::ContainerRequest<GenericImage> {
        use testcontainers::core::{AccessMode, Mount};
        let (name, tag) = split_image(image);
        let pid = std::process::id().to_string();
        let container_name = format!("hush-rt-{label}-{}-{pid}-{}", spec.name, free_port());
        let mut request = GenericImage::new(name, tag)
            .with_cmd(spec.command.clone())
            .with_network("host")
            .with_container_name(&container_name)
            .with_label("hush.test.pid", pid)
            .with_user("65532:65532")
            .with_readonly_rootfs(true)
            .with_cap_drop("ALL")
            .with_security_opt("no-new-privileges")
            .with_mount(
                Mount::bind_mount(config.dir.display().to_string(), "/etc/hush")
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_mount(Mount::tmpfs_mount("/tmp").with_size_bytes(16 << 20))
            .with_env_var("HUSH_CONFIG", "/etc/hush/hush.toml")
            .with_env_var("RUST_LOG", "info")
            // As the manifests set it from the pod name: a container started again after a
            // kill rejoins its consumer groups as the same static member.
            .with_env_var("HUSH_INSTANCE_ID", container_name)
            .with_startup_timeout(Duration::from_secs(120));
        if let (Some(section), Some(port)) = (&spec.listen_section, port) {
            request = request.with_env_var(
                format!("HUSH_{}__LISTEN", section.to_uppercase()),
                format!("127.0.0.1:{port}"),
            );
        }
        for (key, value) in &spec.env {
            request = request.with_env_var(key, value);
        }
        request
    }

    /// Starts `spec` from `image` with `config` (does not wait for readiness: see
    /// [`RuntimeService::wait_ready`]).
    pub async fn start(
        image: &str,
        config: &PlatformConfig,
        label: &str,
        spec: ServiceSpec,
    ) -> anyhow::Result<RuntimeService> {
        let engine = engine().ok_or_else(|| anyhow::anyhow!("no Docker engine answers"))?;
        connect(&engine);
        let port = spec.listen_section.as_ref().map(|_| free_port());
        let request = Self::request(image, config, label, &spec, port);
        let container = on_runtime(async move { request.start().await })
            .await
            .map_err(|e| anyhow::anyhow!("container {}: {e}", spec.name))?;
        let id = container.id().to_owned();
        if let Some(socket) = &engine.socket {
            reap_after_exit(socket, &[&id]);
        }
        Ok(RuntimeService {
            url: port.map(|p| format!("http://127.0.0.1:{p}")),
            spec,
            id,
            container: Some(container),
        })
    }

    /// Runs a command without a server (the topics Job's `hush topics create`) to completion:
    /// its exit status must be 0.
    pub async fn run_to_completion(
        image: &str,
        config: &PlatformConfig,
        label: &str,
        spec: ServiceSpec,
    ) -> anyhow::Result<()> {
        use testcontainers::core::wait::ExitWaitStrategy;
        let engine = engine().ok_or_else(|| anyhow::anyhow!("no Docker engine answers"))?;
        connect(&engine);
        let request = Self::request(image, config, label, &spec, None).with_ready_conditions(vec![
            WaitFor::exit(ExitWaitStrategy::new().with_exit_code(0)),
        ]);
        let name = spec.name.clone();
        on_runtime(async move {
            let container = request.start().await?;
            container.rm().await?;
            anyhow::Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{name} did not exit with status 0: {e}"))
    }

    /// Docker id of the container.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until `/readyz` answers 200 (the manifest's readiness probe); the error carries
    /// the last answer and the end of the container's log.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = self
            .url
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{} has no server", self.spec.name))?;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            let last = match http
                .get(format!("{url}/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!(
                    "{}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                ),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                let state = docker(vec![
                    "inspect".into(),
                    "-f".into(),
                    "{{.State.Status}} (exit code {{.State.ExitCode}}) {{.State.Error}}".into(),
                    self.id.clone(),
                ])
                .await
                .unwrap_or_else(|e| e.to_string());
                anyhow::bail!(
                    "{} not ready within {timeout:?} (last: {last}); container {state}; its log \
                     ends:\n{}",
                    self.spec.name,
                    self.log_tail(30).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One `/readyz` call: `Ok` when it answers 200, else what it answered (the reasons it
    /// is not ready) or why it did not answer.
    pub async fn readiness(&self) -> Result<(), String> {
        let url = self
            .url
            .as_ref()
            .ok_or_else(|| format!("{} has no server", self.spec.name))?;
        let response = reqwest::Client::new()
            .get(format!("{url}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(format!(
            "{}: {}",
            response.status(),
            response.text().await.unwrap_or_default().trim()
        ))
    }

    /// The last `lines` lines of the container's log (its standard output and error).
    pub async fn log_tail(&self, lines: usize) -> String {
        let command = docker_cli().map(|mut command| {
            command.args(["logs", "--tail", &lines.to_string(), &self.id]);
            command
        });
        let output = match command {
            Ok(mut command) => tokio::task::spawn_blocking(move || command.output()).await,
            Err(error) => return format!("(no log: {error})"),
        };
        match output {
            Ok(Ok(output)) => format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Ok(Err(error)) => format!("(no log: {error})"),
            Err(error) => format!("(no log: {error})"),
        }
    }

    /// `docker kill` (SIGKILL: no shutdown of any kind) and waits until the container has
    /// stopped; returns its exit code (137 for a process killed by SIGKILL).
    pub async fn kill(&self) -> anyhow::Result<i64> {
        let code = kill_container(&self.id).await?;
        announce(&format!(
            "docker kill -s KILL {} ({}): exit code {code}",
            self.spec.name,
            &self.id[..12]
        ));
        Ok(code)
    }

    /// `docker start` of the stopped container: the same command, configuration and port.
    pub async fn restart(&self) -> anyhow::Result<()> {
        start_container(&self.id).await?;
        announce(&format!(
            "docker start {} ({})",
            self.spec.name,
            &self.id[..12]
        ));
        Ok(())
    }
}

/// `docker kill --signal KILL` of container `id`, then waits until it has stopped; returns its
/// exit code.
pub async fn kill_container(id: &str) -> anyhow::Result<i64> {
    docker(vec![
        "kill".into(),
        "--signal".into(),
        "KILL".into(),
        id.to_owned(),
    ])
    .await?;
    let code = docker(vec!["wait".into(), id.to_owned()]).await?;
    Ok(code.parse()?)
}

/// The exit code of container `id` when it is not running, `None` while it runs.
pub async fn exit_code_if_stopped(id: &str) -> anyhow::Result<Option<i64>> {
    let state = docker(vec![
        "inspect".into(),
        "-f".into(),
        "{{.State.Running}} {{.State.ExitCode}}".into(),
        id.to_owned(),
    ])
    .await?;
    match state.split_once(' ') {
        Some(("true", _)) => Ok(None),
        Some((_, code)) => Ok(Some(code.parse()?)),
        None => anyhow::bail!("docker inspect {id}: unexpected state {state:?}"),
    }
}

/// `docker start` of the stopped container `id`.
pub async fn start_container(id: &str) -> anyhow::Result<()> {
    docker(vec!["start".into(), id.to_owned()]).await?;
    Ok(())
}

/// What `docker inspect` says of container `id`: its status, exit code, start and end times,
/// and the engine's error if any (e.g. "running (exit code 0) since 2026-12-02T00:58:01Z").
pub async fn container_state(id: &str) -> String {
    docker(vec![
        "inspect".into(),
        "-f".into(),
        "{{.State.Status}} (exit code {{.State.ExitCode}}) since {{.State.StartedAt}}, \
         last stop {{.State.FinishedAt}} {{.State.Error}}"
            .into(),
        id.to_owned(),
    ])
    .await
    .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Writes the whole log of container `id` (standard output and error, every start of it since
/// it was created) to `path`.
pub async fn save_container_log(id: &str, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut command = docker_cli()?;
    command
        .args(["logs", "--timestamps", id])
        .stdout(file.try_clone()?)
        .stderr(file);
    let status = tokio::task::spawn_blocking(move || command.status()).await??;
    anyhow::ensure!(status.success(), "docker logs {id}: {status}");
    Ok(())
}

impl Drop for RuntimeService {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            block_on(async move {
                let _ = container.rm().await;
            });
        }
    }
}

/// Runs `test` on a runtime of its own, bounded by `budget`, and shuts the runtime down with a
/// bound too (a client blocked on a container that is gone must not hang the binary); a panic
/// in `test` is the test's failure.
pub fn run_bounded<F>(budget: Duration, test: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let task = runtime.spawn(test);
    let outcome = runtime.block_on(async { tokio::time::timeout(budget, task).await });
    runtime.shutdown_timeout(Duration::from_secs(10));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Ok(Err(error)) => panic!("test task: {error}"),
        Err(_) => panic!("did not finish within {budget:?}"),
    }
}

/// Intake, the state service, the auditor and the two suppressors of `deploy/k8s` (the
/// partner webhook and HubSpot), each a container of the runtime image, with the webhook and
/// HubSpot simulators (in this process) as the recipients. Topics are made by the topics Job's
/// command, `hush topics create`, from the same image.
pub struct RuntimePipeline {
    /// Broker and registry.
    pub stack: crate::Stack,
    /// The mounted configuration.
    pub config: PlatformConfig,
    /// The runtime image.
    pub image: String,
    /// The partner webhook's simulator.
    pub webhook: hush_connector_webhook::sim::WebhookSimulator,
    /// HubSpot's simulator.
    pub hubspot: hush_connector_hubspot::sim::HubSpotSimulator,
    /// The service containers, in start order (see [`RuntimePipeline::SERVICES`]).
    pub services: Vec<RuntimeService>,
    http: reqwest::Client,
    anonymous: reqwest::Client,
}

impl RuntimePipeline {
    /// The recipients of `deploy/k8s/hush.toml`, each served by its own suppressor.
    pub const RECIPIENTS: [&'static str; 2] = ["partner-webhook", "hubspot"];
    /// Container names of the services, as the manifests name their containers.
    pub const SERVICES: [&'static str; 5] = [
        "intake",
        "state",
        "auditor",
        "suppressor-partner-webhook",
        "suppressor-hubspot",
    ];

    /// Starts the topics Job, then every service, and waits until each is ready.
    pub async fn start(
        stack: crate::Stack,
        image: &str,
        label: &str,
    ) -> anyhow::Result<RuntimePipeline> {
        use crate::pipeline::{HUBSPOT_TOKEN, WEBHOOK_SECRET};
        use base64::Engine as _;
        use hush_connector_hubspot::sim::HubSpotSimulator;
        use hush_connector_webhook::sim::WebhookSimulator;

        let webhook = WebhookSimulator::start(WEBHOOK_SECRET, "/").await?;
        let hubspot = HubSpotSimulator::start(HUBSPOT_TOKEN).await?;
        let config = PlatformConfig::from_k8s(
            &stack,
            label,
            &[
                ("partner-webhook", webhook.base_url()),
                ("hubspot", hubspot.base_url()),
            ],
        )?;
        // The secrets the manifests map from Kubernetes Secrets, with the test pipelines' values.
        let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        RuntimeService::run_to_completion(
            image,
            &config,
            label,
            ServiceSpec {
                name: "topics".into(),
                command: vec!["hush".into(), "topics".into(), "create".into()],
                listen_section: None,
                env: Vec::new(),
            },
        )
        .await?;
        let specs = [
            ServiceSpec::server("intake", "hush-intake", "intake")
                .with_env("HUSH_ENCRYPTION_KEY", &key),
            ServiceSpec::server("state", "hush-state", "state"),
            ServiceSpec::server("auditor", "hush-auditor", "auditor")
                .with_env("WEBHOOK_SIGNING_SECRET", WEBHOOK_SECRET),
            ServiceSpec::server(
                "suppressor-partner-webhook",
                "hush-suppressor --connector partner-webhook",
                "suppressor",
            )
            .with_env("WEBHOOK_SIGNING_SECRET", WEBHOOK_SECRET),
            ServiceSpec::server(
                "suppressor-hubspot",
                "hush-suppressor --connector hubspot",
                "suppressor",
            )
            .with_env("HUBSPOT_TOKEN", HUBSPOT_TOKEN)
            .with_env("HUSH_ENCRYPTION_KEY", &key),
        ];
        let mut services = Vec::new();
        for spec in specs {
            services.push(RuntimeService::start(image, &config, label, spec).await?);
        }
        for service in &services {
            service.wait_ready(Duration::from_secs(90)).await?;
        }
        Ok(RuntimePipeline {
            stack,
            config,
            image: image.to_owned(),
            webhook,
            hubspot,
            services,
            http: crate::auth::operator_client(),
            anonymous: reqwest::Client::new(),
        })
    }

    /// The service container named `name` (one of [`RuntimePipeline::SERVICES`]).
    pub fn service(&self, name: &str) -> &RuntimeService {
        self.services
            .iter()
            .find(|s| s.spec.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    fn url(&self, name: &str) -> String {
        self.service(name).url.clone().unwrap_or_default()
    }

    /// Posts `body` to intake's `/v1/requests` without credentials, as a consumer's browser
    /// does (the shipped `[auth]` lets anyone opt out). An error when intake does not answer.
    pub async fn submit(
        &self,
        body: &serde_json::Value,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let response = self
            .anonymous
            .post(format!("{}/v1/requests", self.url("intake")))
            .json(body)
            .timeout(Duration::from_secs(15))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or_default()))
    }

    /// The auditor's view of request `id`, when it answers with one. Waits out a 429 (the
    /// auditor's per-client rate) as its `Retry-After` says, up to ten times.
    pub async fn record(&self, id: &str) -> Option<serde_json::Value> {
        for _ in 0..10 {
            let response = self
                .http
                .get(format!("{}/v1/requests/{id}", self.url("auditor")))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
                continue;
            }
            if !response.status().is_success() {
                return None;
            }
            return response.json().await.ok();
        }
        None
    }

    /// Whether every required recipient of `record` has answered.
    pub fn complete(record: &serde_json::Value) -> bool {
        record["missing_connectors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && record["connectors"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
    }

    /// Waits until every request of `ids` is complete at the auditor, or `timeout`; returns
    /// the ids still incomplete then.
    pub async fn wait_complete(
        &self,
        ids: &std::collections::BTreeSet<String>,
        timeout: Duration,
    ) -> std::collections::BTreeSet<String> {
        let deadline = Instant::now() + timeout;
        let mut waiting = ids.clone();
        loop {
            let mut still = std::collections::BTreeSet::new();
            for id in &waiting {
                if !self.record(id).await.as_ref().is_some_and(Self::complete) {
                    still.insert(id.clone());
                }
            }
            waiting = still;
            if waiting.is_empty() || Instant::now() >= deadline {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every confirmation on the confirmations topic, counted per (request id, recipient).
    pub async fn confirmation_counts(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<(String, String), usize>> {
        let mut counts = std::collections::BTreeMap::new();
        for confirmation in self.confirmations().await? {
            *counts
                .entry((confirmation.request_id, confirmation.connector_id))
                .or_default() += 1;
        }
        Ok(counts)
    }

    /// Every record of the confirmations topic, in the order of each partition.
    pub async fn confirmations(&self) -> anyhow::Result<Vec<hush_contracts::events::Confirmation>> {
        let bootstrap = self.stack.kafka.bootstrap_servers.clone();
        let topic = self.config.topics.confirmations.clone();
        let records =
            tokio::task::spawn_blocking(move || read_to_end(&bootstrap, &topic)).await??;
        let codec = self.stack.codec();
        let mut confirmations = Vec::with_capacity(records.len());
        for record in records {
            confirmations.push(codec.decode(&record).await?);
        }
        Ok(confirmations)
    }
}

/// Every record value of `topic`, from the beginning at least to the end it had when this was
/// called (its high watermarks), so that nothing written before the call is missed.
pub fn read_to_end(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("it-reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut remaining = std::collections::HashMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition, rdkafka::Offset::Offset(low))?;
            remaining.insert(partition, high);
        }
    }
    let mut values = Vec::new();
    if remaining.is_empty() {
        return Ok(values);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: not read to its end within 60 s"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message?;
            values.push(message.payload().unwrap_or_default().to_vec());
        }
        // Positions, not offsets of records: a transaction's commit marker takes an offset
        // that is never delivered.
        for element in consumer.position()?.elements() {
            if let (rdkafka::Offset::Offset(position), Some(&high)) =
                (element.offset(), remaining.get(&element.partition()))
            {
                if position >= high {
                    remaining.remove(&element.partition());
                }
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_picked_together_are_all_different() {
        for _ in 0..50 {
            let ports = free_ports::<4>();
            let distinct: std::collections::BTreeSet<u16> = ports.into_iter().collect();
            assert_eq!(distinct.len(), 4, "{ports:?}");
            assert!(ports.iter().all(|&p| p > 0), "{ports:?}");
        }
    }
}
