//! Sample ids as JSON gives them (strings or numbers).

/// A JSON value as an id: strings as they are, numbers as written.
pub fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
