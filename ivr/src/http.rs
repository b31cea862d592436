//! The HTTP node's requests to business systems. The interpreter only describes a
//! request ([`HttpRequest`]) and reads the answer ([`HttpAnswer`]); [`http_worker`]
//! performs them on its own thread (ureq, plain HTTP, the request's timeout), so the
//! engine thread never waits on the network. The CRM lookup reuses both types.

use std::collections::BTreeMap;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// A request to perform; `id` comes back in the [`HttpAnswer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub id: u64,
    /// GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub body: Option<String>,
    /// For the whole exchange: connect, send, receive.
    pub timeout: Duration,
}

/// What came back: the status and body, or why nothing did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    pub id: u64,
    pub result: Result<HttpResponse, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Perform one request (blocking, at most `req.timeout`).
pub fn perform(req: &HttpRequest) -> HttpAnswer {
    HttpAnswer { id: req.id, result: run(req) }
}

fn run(req: &HttpRequest) -> Result<HttpResponse, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(req.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut b = ureq::http::Request::builder().method(req.method.as_str()).uri(&req.url);
    for (k, v) in &req.headers {
        b = b.header(k, v);
    }
    if req.body.is_some() {
        b = b.header("Content-Type", "application/json");
    }
    let request = b
        .body(req.body.clone().unwrap_or_default().into_bytes())
        .map_err(|e| format!("bad request {} {}: {e}", req.method, req.url))?;
    let mut resp = agent.run(request).map_err(|e| match e {
        ureq::Error::Timeout(_) => format!("timed out after {:.1} s", req.timeout.as_secs_f64()),
        e => e.to_string(),
    })?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| format!("reading the answer: {e}"))?;
    Ok(HttpResponse { status, body })
}

/// A worker thread's loop: perform each request and send back its answer, until the
/// request channel closes (or nobody listens to the answers). Requests run one at a
/// time; for more at once, run several workers on clones of the same receiver.
pub fn http_worker(rx: Receiver<HttpRequest>, tx: Sender<HttpAnswer>) {
    for req in rx {
        if tx.send(perform(&req)).is_err() {
            return;
        }
    }
}

/// Read a field from a JSON answer: a JSON pointer (`/ticket/status`) or a dotted path
/// (`ticket.status`, `items.0.name`). Strings come out as they are, other values as
/// JSON text; `None` when the field is absent or null.
pub fn field(json: &serde_json::Value, path: &str) -> Option<String> {
    let v = if path.starts_with('/') {
        json.pointer(path)?
    } else {
        let mut v = json;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            v = match v {
                serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                other => other.get(part)?,
            };
        }
        v
    };
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A JSON object body from fields already expanded.
pub fn json_body(fields: &BTreeMap<String, String>) -> String {
    let obj: serde_json::Map<String, serde_json::Value> =
        fields.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_by_pointer_and_by_dotted_path() {
        let j: serde_json::Value =
            serde_json::from_str(r#"{"ticket":{"status":"open","n":3,"items":[{"name":"fan"}],"x":null}}"#)
                .unwrap();
        assert_eq!(field(&j, "/ticket/status").as_deref(), Some("open"));
        assert_eq!(field(&j, "ticket.n").as_deref(), Some("3"));
        assert_eq!(field(&j, "ticket.items.0.name").as_deref(), Some("fan"));
        assert_eq!(field(&j, "ticket.x"), None);
        assert_eq!(field(&j, "ticket.missing"), None);
    }
}
