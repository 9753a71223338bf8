//! Static group membership (`kafka.instance_id`): a consumer killed with SIGKILL and started
//! again with the same instance id takes its partitions back at once, without waiting for the
//! broker to expire the killed member's session; the same kill without an instance id waits
//! for it. Each member is a process of its own (`group_member`), so the kill is real.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use hush_tests::Stack;

/// The static members' session timeout (`kafka.session_timeout_ms`) in these tests.
const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
/// librdkafka's default session timeout, which a dynamic member has.
const DYNAMIC_SESSION_TIMEOUT: Duration = Duration::from_secs(45);

/// A `group_member` process and the lines it prints.
struct Member {
    child: Child,
    lines: Receiver<String>,
}

impl Member {
    fn start(stack: &Stack, topic: &str, group: &str, instance: Option<&str>) -> Member {
        let mut command = Command::new(env!("CARGO_BIN_EXE_group_member"));
        command
            .args([topic, group])
            .env("KAFKA_BOOTSTRAP_SERVERS", &stack.kafka.bootstrap_servers)
            .env("SCHEMA_REGISTRY_URL", &stack.registry_url)
            .env(
                "HUSH_KAFKA__SESSION_TIMEOUT_MS",
                SESSION_TIMEOUT.as_millis().to_string(),
            )
            .env_remove("HUSH_INSTANCE_ID")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        if let Some(instance) = instance {
            command.env("HUSH_INSTANCE_ID", instance);
        }
        let mut child = command.spawn().expect("group_member starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Member { child, lines }
    }

    /// Waits until the member says it holds every one of `partitions` partitions.
    fn wait_assigned(&self, partitions: usize, timeout: Duration) {
        let want = format!("assigned {partitions} of {partitions}");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(_) => {}
                Err(_) => panic!("no '{want}' within {timeout:?}"),
            }
        }
    }

    /// SIGKILL, and waits for the process to end.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("killed member reaped");
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a member, kills it once it holds every partition, starts it again the same way and
/// returns how long the second one took to hold every partition.
async fn restart_after_sigkill(test: &str, instance: Option<&str>) -> Duration {
    let stack = Stack::from_env();
    let topics = stack.unique_topics(test);
    stack.create_topics(&topics).await;
    let group = format!("it-{test}-{}", uuid::Uuid::new_v4().simple());
    let partitions = topics.partitions as usize;
    let first = Member::start(&stack, &topics.requests, &group, instance);
    first.wait_assigned(partitions, Duration::from_secs(60));
    // Let the group settle into a steady state with a heartbeat or two behind it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.kill();
    let restarted = Instant::now();
    let second = Member::start(&stack, &topics.requests, &group, instance);
    second.wait_assigned(partitions, Duration::from_secs(90));
    restarted.elapsed()
}

#[tokio::test]
async fn a_static_member_restarted_after_sigkill_gets_its_partitions_back_at_once() {
    let instance = format!("it-member-{}", uuid::Uuid::new_v4().simple());
    let elapsed = restart_after_sigkill("static-restart", Some(&instance)).await;
    eprintln!("static member: partitions back {elapsed:?} after the restart");
    assert!(
        elapsed < SESSION_TIMEOUT / 3,
        "the restarted static member took {elapsed:?} (session timeout {SESSION_TIMEOUT:?})"
    );
}

#[tokio::test]
async fn a_dynamic_member_restarted_after_sigkill_waits_for_the_session_timeout() {
    let elapsed = restart_after_sigkill("dynamic-restart", None).await;
    eprintln!("dynamic member: partitions back {elapsed:?} after the restart");
    // The killed member's last heartbeat was at most a few seconds before the kill.
    assert!(
        elapsed > DYNAMIC_SESSION_TIMEOUT / 2,
        "the restarted dynamic member took only {elapsed:?}: the test cannot tell static \
         membership apart"
    );
}
