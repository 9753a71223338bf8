//! Hush's own runtime image, run: intake, the state service, the auditor and two suppressors
//! (the partner webhook and HubSpot) as containers of `hush-test/runtime`, each started with
//! its Kubernetes Deployment's command, the shipped `deploy/k8s/hush.toml` (only this
//! machine's addresses changed) mounted at `/etc/hush`, the secrets its manifest maps as
//! environment variables, user 65532 and a read-only root filesystem. Topics come from the
//! topics Job's `hush topics create`, run from the same image.
//!
//! Requests go in through intake as a browser sends them; the HubSpot suppressor is killed
//! with SIGKILL (`docker kill`) while they are being worked on, more requests arrive while it
//! is down, and it is started again: every request completes with exactly one confirmation per
//! recipient.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hush_tests::containers::{announce, run_bounded, runtime_image, RuntimePipeline};
use hush_tests::Stack;
use serde_json::{json, Value};

/// The longest the test may take, image build included.
const TEST_BUDGET: Duration = Duration::from_secs(420);

fn opt_out(name: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": format!("{name}@example.com")}],
        "categories": ["ALL"], "idempotency_key": name
    })
}

async fn submit_all(pipeline: &RuntimePipeline, prefix: &str, count: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..count {
        let (status, answer) = pipeline
            .submit(&opt_out(&format!("{prefix}{n}")))
            .await
            .expect("intake answers");
        assert_eq!(status, 202, "{answer}");
        ids.insert(
            answer["request_id"]
                .as_str()
                .expect("request_id")
                .to_owned(),
        );
    }
    ids
}

#[test]
fn runtime_image_runs_the_pipeline_and_a_sigkilled_suppressor_loses_nothing() {
    run_bounded(TEST_BUDGET, async {
        let started = Instant::now();
        let image = tokio::task::spawn_blocking(runtime_image)
            .await
            .expect("image task")
            .expect("runtime image");
        let image_time = started.elapsed();
        let stack = tokio::task::spawn_blocking(Stack::from_env)
            .await
            .expect("stack");
        let pipeline = RuntimePipeline::start(stack, &image, "runtime")
            .await
            .expect("the services start from the runtime image and become ready");
        let ready_time = started.elapsed();

        let mut acknowledged = submit_all(&pipeline, "first", 12).await;
        let hubspot = pipeline.service("suppressor-hubspot");
        let exit_code = hubspot.kill().await.expect("docker kill");
        assert_eq!(exit_code, 137, "the suppressor died of SIGKILL");

        // While it is down intake keeps acknowledging; only HubSpot's work waits.
        let while_down = submit_all(&pipeline, "down", 8).await;
        acknowledged.extend(while_down.iter().cloned());
        let waiting = pipeline
            .wait_complete(&while_down, Duration::from_secs(3))
            .await;
        assert_eq!(
            waiting, while_down,
            "nothing submitted while HubSpot's suppressor is down completes"
        );

        hubspot.restart().await.expect("docker start");
        hubspot
            .wait_ready(Duration::from_secs(90))
            .await
            .expect("the suppressor is ready again");
        acknowledged.extend(submit_all(&pipeline, "after", 4).await);
        assert_eq!(acknowledged.len(), 24);

        let incomplete = pipeline
            .wait_complete(&acknowledged, Duration::from_secs(150))
            .await;
        assert!(
            incomplete.is_empty(),
            "every acknowledged request completes; incomplete: {incomplete:?}"
        );
        let counts = pipeline.confirmation_counts().await.expect("confirmations");
        for id in &acknowledged {
            for recipient in RuntimePipeline::RECIPIENTS {
                assert_eq!(
                    counts.get(&(id.clone(), recipient.to_owned())),
                    Some(&1),
                    "exactly one confirmation of {id} from {recipient}"
                );
            }
        }
        let unknown: Vec<_> = counts
            .keys()
            .filter(|(id, _)| !acknowledged.contains(id))
            .collect();
        assert!(
            unknown.is_empty(),
            "confirmations of unknown requests: {unknown:?}"
        );
        announce(&format!(
            "runtime containers: image {:.1} s, services ready at {:.1} s, done in {:.1} s",
            image_time.as_secs_f64(),
            ready_time.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
    });
}
