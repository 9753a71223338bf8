//! The CLI's HTTP calls to intake and the auditor, with errors that say what to do.

use anyhow::{bail, Context};
use serde_json::Value;

/// Sends a request and returns the JSON body of a success, or an error carrying the service's
/// own error message.
pub async fn send_json(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    // The error keeps no URL: the CLI's own text says which service was not reachable.
    let response = request
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .with_context(|| {
            format!("{what}: service not reachable (is it running? `make demo` starts everything)")
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if !status.is_success() {
        let message = json
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or(body);
        let field = json
            .get("field")
            .and_then(Value::as_str)
            .map(|f| format!(" (field {f})"))
            .unwrap_or_default();
        bail!("{what}: HTTP {status}: {message}{field}");
    }
    Ok(json)
}
