//! Request-level errors and how they reach the client: a status code and a JSON body
//! `{"error": "...", "kind": "...", "field": "..."|null}` whose message names the offending field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong with a whole request. Per-sample problems on `/score` are not request errors:
/// they come back in that sample's own result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The body is not JSON (syntax error, truncated, not UTF-8).
    BadJson,
    /// Valid JSON with a missing field, a wrong type or a value we cannot use.
    BadField,
    /// The body is longer than `max_body_bytes`.
    BodyTooLarge,
    /// More samples than `max_batch`.
    BatchTooLarge,
    /// The body could not be read: the client went away or broke the framing.
    BodyRead,
    /// The client did not send the whole body within `read_timeout`.
    ReadTimeout,
    /// No scoring slot became free before the request's deadline.
    Busy,
    /// Scoring did not finish before the request's deadline.
    Timeout,
    NotFound,
    MethodNotAllowed,
    /// A bug: something panicked.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadJson | ErrorKind::BadField | ErrorKind::BodyRead => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::BodyTooLarge | ErrorKind::BatchTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ReadTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Busy | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `kind` label of the error metrics and of the JSON body.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::BadJson => "bad_json",
            ErrorKind::BadField => "bad_field",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::BatchTooLarge => "batch_too_large",
            ErrorKind::BodyRead => "body_read",
            ErrorKind::ReadTimeout => "read_timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A request that fails as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The JSON path of the offending field (`labels[3].frame`), when one is to blame.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// A [`ErrorKind::BadField`] error for `field`; the message starts with the field's path.
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError {
            kind: ErrorKind::BadField,
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Turns a body-parsing error into a 400 whose message names the field.
    ///
    /// `prefix` is the path of the document inside the request (`labels[3]` when a label is
    /// parsed on its own, empty for the body); `what` names the document for syntax errors.
    pub fn from_json(
        e: serde_path_to_error::Error<serde_json::Error>,
        prefix: &str,
        what: &str,
    ) -> Self {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                ErrorKind::BadJson,
                format!("{what} is not valid JSON: {inner}"),
            ),
            Category::Data => {
                let msg = inner.to_string();
                let at = if path == "." { "" } else { path.as_str() };
                // serde reports a missing field at its parent; name the field itself.
                if let Some(name) = missing_field_name(&msg) {
                    return ApiError::field(join_path(&[prefix, at, name]), "missing (required)");
                }
                let field = join_path(&[prefix, at]);
                if field.is_empty() {
                    ApiError::new(ErrorKind::BadField, format!("{what}: {msg}"))
                } else {
                    ApiError::field(field, msg)
                }
            }
        }
    }
}

fn join_path(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(".")
}

/// `answer` from serde's "missing field `answer`" message.
fn missing_field_name(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(&rest[..rest.find('`')?])
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    kind: &'static str,
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: &self.message,
            kind: self.kind.label(),
            field: self.field.as_deref(),
        })
        .unwrap_or_default();
        let mut resp = (
            self.kind.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if matches!(self.kind, ErrorKind::Busy | ErrorKind::Timeout) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // The metrics middleware reads the kind back from here.
        resp.extensions_mut().insert(self.kind);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> ApiError {
        let mut de = serde_json::Deserializer::from_str(json);
        let e = serde_path_to_error::deserialize::<_, T>(&mut de)
            .err()
            .unwrap();
        ApiError::from_json(e, "", "the body")
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        query: Vec<String>,
    }

    #[test]
    fn names_fields() {
        let e = parse::<Req>(r#"{"query": ["a", 3]}"#);
        assert_eq!(e.kind, ErrorKind::BadField);
        assert_eq!(e.field.as_deref(), Some("query[1]"));
        assert!(
            e.message.starts_with("query[1]: invalid type: integer `3`"),
            "{}",
            e.message
        );
        let e = parse::<Req>(r#"{"prompts": []}"#);
        assert_eq!(e.field.as_deref(), Some("query"));
        assert_eq!(e.message, "query: missing (required)");
        let e = parse::<Req>(r#"{"query": ["a""#);
        assert_eq!(e.kind, ErrorKind::BadJson);
        assert!(
            e.message.starts_with("the body is not valid JSON"),
            "{}",
            e.message
        );
        let e = parse::<Req>("3");
        assert_eq!((e.kind, e.field.as_deref()), (ErrorKind::BadField, None));
        assert!(
            e.message.starts_with("the body: invalid type: integer"),
            "{}",
            e.message
        );
    }
}
