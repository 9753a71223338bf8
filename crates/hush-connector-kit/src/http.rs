//! The vendor HTTP layer: one way to build a client, send a call and classify the answer.
//!
//! Errors never carry a URL (a vendor URL may hold an identifier) and keep at most 500
//! characters of the vendor's text.

use std::time::Duration;

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

/// Longest wait to open a connection to a vendor; the whole call is bounded by the recipient's
/// `timeout_ms`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client builder of connector `connector` (e.g. `meta`), for a connector that needs
/// one more setting (a redirect policy, say): each call bounded by `timeout`, a connection by at
/// most 10 s, and a `hush-connector-<connector>/<version>` user agent so the vendor can tell
/// Hush's calls apart.
pub fn client_builder(connector: &str, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .user_agent(format!(
            "hush-connector-{connector}/{}",
            env!("CARGO_PKG_VERSION")
        ))
}

/// The HTTP client of connector `connector`, as [`client_builder`] sets it up.
pub fn client(connector: &str, timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    build_client(connector, client_builder(connector, timeout))
}

/// Builds a client from [`client_builder`]; the error names the connector.
pub fn build_client(
    connector: &str,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, ConfigError> {
    builder
        .build()
        .map_err(|e| ConfigError::Invalid(format!("cannot build the {connector} HTTP client: {e}")))
}

/// Classifies an HTTP answer from a vendor: 2xx is `None` (success), 429 honours `Retry-After`
/// (seconds or HTTP date), 408 and 5xx are transient, any other 4xx is permanent. `body` is the
/// vendor's error text, kept as evidence.
pub fn classify_http_status(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> Option<ConnectorError> {
    let detail = format!("HTTP {status}: {}", truncate(body, 500));
    match status {
        200..=299 => None,
        429 => Some(ConnectorError::RetryAfter {
            after: retry_after
                .and_then(parse_retry_after)
                .unwrap_or(Duration::from_secs(1)),
            detail,
        }),
        408 | 500..=599 => Some(ConnectorError::Transient(detail)),
        _ => Some(ConnectorError::Permanent(detail)),
    }
}

/// A vendor's id (a job id, a statement handle) as exactly one URL path segment: letters,
/// digits, `-` and `_` as they are, every other byte percent-encoded, so an id the vendor
/// answered can never reach another path.
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Classifies a transport failure (timeout, refused connection) as transient. The text leaves
/// out the URL, which may carry an identifier (a lookup by email, say): see
/// [`transport_error_text`].
pub fn classify_transport_error(error: reqwest::Error) -> ConnectorError {
    ConnectorError::Transient(if error.is_timeout() {
        "vendor did not answer before the timeout".to_owned()
    } else {
        format!("could not reach vendor: {}", transport_error_text(error))
    })
}

/// The text of a transport error and of each error beneath it, joined by `: `, without the
/// request URL (`reqwest`'s own text names it, and a vendor URL may carry an identifier). Any
/// URL a lower-level error still names (a redirect target, say) is replaced by `<url>`.
pub fn transport_error_text(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts
        .join(": ")
        .split(' ')
        .map(|word| if word.contains("://") { "<url>" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A vendor's HTTP answer, read whole and not yet classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorAnswer {
    /// HTTP status code.
    pub status: u16,
    /// The `Retry-After` header, when the vendor sent one that is valid text.
    pub retry_after: Option<String>,
    /// The `X-RateLimit-Reset` header, when sent: when the vendor's quota refills (Segment
    /// sends an RFC 5322 date).
    pub rate_limit_reset: Option<String>,
    /// The body as text.
    pub body: String,
}

impl VendorAnswer {
    /// The wait the vendor's `Retry-After` asks for (delay seconds or an HTTP date), when it
    /// sent one that parses.
    pub fn retry_after_wait(&self) -> Option<Duration> {
        self.retry_after.as_deref().and_then(parse_retry_after)
    }

    /// The wait the vendor's `Retry-After` asks for, or `default` when it names none.
    pub fn wait_or(&self, default: Duration) -> Duration {
        self.retry_after_wait().unwrap_or(default)
    }

    /// Why the call failed, by its status ([`classify_http_status`]), with the vendor's error
    /// `text`; `None` for a 2xx.
    pub fn failure(&self, text: &str) -> Option<ConnectorError> {
        classify_http_status(self.status, self.retry_after.as_deref(), text)
    }

    /// [`VendorAnswer::failure`], except that a 429 without a `Retry-After` waits `default`
    /// (the vendor's documented window) rather than a second.
    pub fn failure_waiting(&self, default: Duration, text: &str) -> Option<ConnectorError> {
        match self.failure(text)? {
            ConnectorError::RetryAfter { detail, .. } => Some(ConnectorError::RetryAfter {
                after: self.wait_or(default),
                detail,
            }),
            other => Some(other),
        }
    }
}

/// What a vendor's 401 and 403 point at, added to their permanent refusal so that whoever reads
/// it knows which credential to replace or which permission to grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHints {
    /// Said after a 401, e.g. `HubSpot refused the private app token named by
    /// credentials.token`.
    pub unauthorized: &'static str,
    /// Said after a 403: the scopes or permissions the credential needs.
    pub forbidden: &'static str,
}

impl AuthHints {
    /// `error` for an answer with `status`: a permanent refusal of a 401 or 403 followed by its
    /// hint in parentheses, any other error as it is.
    pub fn apply(&self, status: u16, error: ConnectorError) -> ConnectorError {
        let hint = match status {
            401 => self.unauthorized,
            403 => self.forbidden,
            _ => return error,
        };
        match error {
            ConnectorError::Permanent(detail) => {
                ConnectorError::Permanent(format!("{detail} ({hint})"))
            }
            other => other,
        }
    }
}

/// Sends `request` and reads the vendor's answer: status, `Retry-After`, `X-RateLimit-Reset`
/// and body. A failure to
/// reach the vendor or to read the body is classified with [`classify_transport_error`]; any
/// status is an `Ok`, left to the connector's own classification.
pub async fn send(request: reqwest::RequestBuilder) -> Result<VendorAnswer, ConnectorError> {
    let response = request.send().await.map_err(classify_transport_error)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let rate_limit_reset = response
        .headers()
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.map_err(classify_transport_error)?;
    Ok(VendorAnswer {
        status,
        retry_after,
        rate_limit_reset,
        body,
    })
}

/// Sends `request` as [`send`] does; when the vendor refuses it (a status outside 2xx), every
/// non-empty value of `hidden` in the answer's body is replaced with `placeholder`, so that a
/// refusal quoting an identifier back never carries it into an error.
pub async fn send_hiding(
    request: reqwest::RequestBuilder,
    hidden: &[String],
    placeholder: &str,
) -> Result<VendorAnswer, ConnectorError> {
    let mut answer = send(request).await?;
    if !(200..300).contains(&answer.status) {
        for value in hidden.iter().filter(|v| !v.is_empty()) {
            answer.body = answer.body.replace(value.as_str(), placeholder);
        }
    }
    Ok(answer)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> VendorAnswer {
        VendorAnswer {
            status,
            retry_after: retry_after.map(str::to_owned),
            rate_limit_reset: None,
            body: String::new(),
        }
    }

    #[test]
    fn a_429_without_retry_after_waits_the_vendors_default_and_with_one_what_it_says() {
        let default = Duration::from_secs(5);
        let waits = |answer: VendorAnswer| match answer.failure_waiting(default, "slow down") {
            Some(ConnectorError::RetryAfter { after, detail }) => {
                assert_eq!(detail, "HTTP 429: slow down");
                after
            }
            other => panic!("expected a wait, got {other:?}"),
        };
        assert_eq!(waits(answer(429, None)), default);
        assert_eq!(waits(answer(429, Some("9"))), Duration::from_secs(9));
        assert_eq!(answer(200, None).failure_waiting(default, "x"), None);
        assert_eq!(
            answer(503, None).failure_waiting(default, "down"),
            Some(ConnectorError::Transient("HTTP 503: down".into()))
        );
    }

    #[test]
    fn auth_hints_follow_only_a_refused_401_or_403() {
        let hints = AuthHints {
            unauthorized: "replace the key",
            forbidden: "grant the scope",
        };
        let refused = |status| hints.apply(status, answer(status, None).failure("no").unwrap());
        assert_eq!(
            refused(401),
            ConnectorError::Permanent("HTTP 401: no (replace the key)".into())
        );
        assert_eq!(
            refused(403),
            ConnectorError::Permanent("HTTP 403: no (grant the scope)".into())
        );
        assert_eq!(
            refused(404),
            ConnectorError::Permanent("HTTP 404: no".into())
        );
        assert_eq!(
            hints.apply(401, ConnectorError::Transient("HTTP 401: later".into())),
            ConnectorError::Transient("HTTP 401: later".into())
        );
    }

    #[test]
    fn an_id_stays_one_path_segment() {
        assert_eq!(path_segment("job_AbC-1"), "job_AbC-1");
        assert_eq!(
            path_segment("01b2c3d4-0000-1111-0000-0001"),
            "01b2c3d4-0000-1111-0000-0001"
        );
        assert_eq!(path_segment("../x?y"), "%2E%2E%2Fx%3Fy");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_http_status(204, None, ""), None);
        assert_eq!(
            classify_http_status(429, Some("7"), "slow down"),
            Some(ConnectorError::RetryAfter {
                after: Duration::from_secs(7),
                detail: "HTTP 429: slow down".into()
            })
        );
        assert!(matches!(
            classify_http_status(503, None, ""),
            Some(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify_http_status(400, None, "bad email"),
            Some(ConnectorError::Permanent(d)) if d.contains("bad email")
        ));
    }

    #[tokio::test]
    async fn the_client_names_the_connector_in_its_user_agent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = stream.read(&mut request).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&request[..read]).to_lowercase()
        });
        let http = client("meta", Duration::from_secs(5)).unwrap();
        send(http.get(url)).await.unwrap();
        let request = server.await.unwrap();
        assert!(
            request.contains(&format!(
                "user-agent: hush-connector-meta/{}",
                env!("CARGO_PKG_VERSION")
            )),
            "{request}"
        );
    }

    #[test]
    fn an_answers_wait_is_its_retry_after_or_the_default() {
        let answer = |retry_after: Option<&str>| VendorAnswer {
            status: 429,
            retry_after: retry_after.map(str::to_owned),
            rate_limit_reset: None,
            body: String::new(),
        };
        let default = Duration::from_secs(60);
        assert_eq!(answer(Some("7")).wait_or(default), Duration::from_secs(7));
        assert_eq!(answer(Some("soon")).wait_or(default), default);
        assert_eq!(answer(None).wait_or(default), default);
        assert_eq!(answer(Some("soon")).retry_after_wait(), None);
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    /// Serves one connection on loopback with `answer` written verbatim, then closes it.
    async fn answer_once(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn send_reads_status_retry_after_rate_limit_reset_and_body() {
        let url = answer_once(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\
             X-RateLimit-Reset: Fri, 04 Dec 2026 00:00:00 GMT\r\nContent-Length: 9\r\n\
             Connection: close\r\n\r\nslow down",
        )
        .await;
        let answer = send(reqwest::Client::new().get(url)).await.unwrap();
        assert_eq!(
            answer,
            VendorAnswer {
                status: 429,
                retry_after: Some("7".into()),
                rate_limit_reset: Some("Fri, 04 Dec 2026 00:00:00 GMT".into()),
                body: "slow down".into(),
            }
        );
    }

    #[tokio::test]
    async fn send_without_retry_after_leaves_it_out() {
        let url =
            answer_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await;
        let answer = send(reqwest::Client::new().get(url)).await.unwrap();
        assert_eq!(
            (answer.status, answer.retry_after, answer.rate_limit_reset),
            (200, None, None)
        );
        assert_eq!(answer.body, "{}");
    }

    #[tokio::test]
    async fn a_refusal_hides_each_value_but_an_acceptance_is_left_as_it_came() {
        let hidden = ["u-42".to_owned(), String::new()];
        let url = answer_once(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 19\r\nConnection: close\r\n\r\n\
             bad id u-42 (u-42).",
        )
        .await;
        let refused = send_hiding(reqwest::Client::new().get(url), &hidden, "<id>")
            .await
            .unwrap();
        assert_eq!(refused.body, "bad id <id> (<id>).");
        let url = answer_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nsaved u-42.",
        )
        .await;
        let accepted = send_hiding(reqwest::Client::new().get(url), &hidden, "<id>")
            .await
            .unwrap();
        assert_eq!(accepted.body, "saved u-42.");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_transient() {
        let url = answer_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\npartial",
        )
        .await;
        let error = send(reqwest::Client::new().get(url)).await.unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Transient(d) if d.starts_with("could not reach vendor")),
            "{error:?}"
        );
    }

    /// A lookup URL carrying an email the way Salesforce's SOQL query does.
    fn lookup_url(base: &str) -> String {
        format!("{base}services/data/v62.0/query?q=SELECT+Id+WHERE+Email%3D%27jane%2Bnews%40example.com%27")
    }

    fn assert_no_email(text: &str) {
        for form in ["jane", "example.com", "%40", "%2B", "/query", "127.0.0.1"] {
            assert!(!text.contains(form), "{form:?} in {text:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_vendor_error_does_not_carry_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = lookup_url(&format!("http://{}/", listener.local_addr().unwrap()));
        drop(listener);
        let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
        assert!(error.to_string().contains("%40"), "reqwest names the URL");
        let text = transport_error_text(error);
        assert!(text.contains("error sending request"), "{text}");
        assert_no_email(&text);
    }

    /// Serves every connection on loopback with a redirect back to the same lookup URL.
    async fn redirect_forever() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = lookup_url(&format!("http://{}/", listener.local_addr().unwrap()));
        let location = url.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_redirect_loop_error_does_not_carry_the_url() {
        let url = redirect_forever().await;
        let error = send(reqwest::Client::new().get(&url)).await.unwrap_err();
        let ConnectorError::Transient(text) = &error else {
            panic!("{error:?}")
        };
        assert!(text.contains("redirect"), "{text}");
        assert_no_email(text);
    }

    #[tokio::test]
    async fn a_url_named_by_a_lower_level_error_is_replaced() {
        let url = redirect_forever().await;
        let http = client_builder("test", Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let refused = format!("refused to follow {}", attempt.url());
                attempt.error(refused)
            }))
            .build()
            .unwrap();
        let error = http.get(&url).send().await.unwrap_err();
        let text = transport_error_text(error);
        assert!(text.contains("refused to follow <url>"), "{text}");
        assert_no_email(&text);
    }

    #[tokio::test]
    async fn an_unreachable_vendor_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = send(reqwest::Client::new().get(url)).await.unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Transient(d) if d.starts_with("could not reach vendor")),
            "{error:?}"
        );
    }
}
