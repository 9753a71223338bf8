//! Checks a simulator makes on every call before its vendor's own rules: that calls keep the
//! vendor's spacing, and that a JSON body is an object of the fields the vendor takes.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// Whether a call now comes sooner than `min_spacing` after the last call admitted, whose time
/// `last_admitted` holds; a call not too soon is admitted and becomes the last one.
pub fn too_soon(last_admitted: &mut Option<Instant>, min_spacing: Duration) -> bool {
    let now = Instant::now();
    if last_admitted.is_some_and(|last| now.duration_since(last) < min_spacing) {
        return true;
    }
    *last_admitted = Some(now);
    false
}

/// The JSON object a call's `body` holds, or the message of the 400 that refuses it: the body
/// must be sent as `application/json`, be an object, and hold no field outside `fields` (the
/// message for such a field is `unknown`'s, given its name).
pub fn json_object(
    headers: &HeaderMap,
    body: &[u8],
    fields: &[&str],
    unknown: impl Fn(&str) -> String,
) -> Result<Map<String, Value>, String> {
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_body {
        return Err("Content-Type must be application/json".into());
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err("The request body must be a JSON object".into());
    };
    match object.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(field) => Err(unknown(field)),
        None => Ok(object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_call_inside_the_spacing_is_too_soon_and_not_admitted() {
        let mut last = None;
        assert!(!too_soon(&mut last, Duration::from_secs(60)));
        let admitted = last;
        assert!(too_soon(&mut last, Duration::from_secs(60)));
        assert_eq!(last, admitted, "a refused call does not move the window");
        assert!(!too_soon(&mut last, Duration::ZERO));
    }

    #[test]
    fn a_body_must_be_a_json_object_of_known_fields() {
        let unknown = |name: &str| format!("Unknown parameter {name}");
        let mut json = HeaderMap::new();
        json.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let object = json_object(&json, br#"{"ids": [1]}"#, &["ids"], unknown).unwrap();
        assert_eq!(object["ids"], serde_json::json!([1]));
        assert_eq!(
            json_object(&HeaderMap::new(), b"{}", &["ids"], unknown),
            Err("Content-Type must be application/json".into())
        );
        assert_eq!(
            json_object(&json, b"[1]", &["ids"], unknown),
            Err("The request body must be a JSON object".into())
        );
        assert_eq!(
            json_object(&json, br#"{"idz": 1}"#, &["ids"], unknown),
            Err("Unknown parameter idz".into())
        );
    }
}
