//! Chat templates as a Hugging Face model folder (or a GGUF file) carries them, rendered the way
//! transformers' `apply_chat_template` renders them.
//!
//! A template is Jinja source. transformers compiles it with Jinja2 in a sandbox with
//! `trim_blocks` and `lstrip_blocks` on, the `loopcontrols` extension, its own `tojson` filter
//! (Python's `json.dumps`, no HTML escaping) and the globals `raise_exception` and
//! `strftime_now`; it renders it with `messages`, `tools`, `documents`, `add_generation_prompt`,
//! the tokenizer's named special tokens (`bos_token`, `eos_token`, ...) and any extra keyword
//! arguments. [`ChatTemplate`] does the same with minijinja, plus minijinja-contrib's Python
//! methods on strings, lists and dicts (`.strip()`, `.startswith()`, `.items()`, ...), so a
//! template renders to the same bytes as transformers gives.
//!
//! Where a folder keeps its template ([`ChatTemplate::from_folder`]), first found wins, the order
//! transformers' processor and tokenizer loading give:
//!
//! 1. `processor_config.json`, key `chat_template` (processors that inline it);
//! 2. `chat_template.json`, key `chat_template` (the processor file of Qwen2.5-VL and others);
//! 3. `chat_template.jinja` (what transformers writes today, for tokenizers and processors);
//! 4. `tokenizer_config.json`, key `chat_template` (a string, or a list of named templates of
//!    which `default` is taken).
//!
//! The special tokens come from `tokenizer_config.json` (`special_tokens_map.json` fills what it
//! lacks); a token a tokenizer class would default in Python but the files do not name is not
//! known here, which matters only to a template that prints it.
//!
//! Messages go in as transformers' message dicts: `{"role", "content"}`, the content a string
//! when every part of the message is text, else a list of `{"type": "image"}` and
//! `{"type": "text", "text": ...}` parts. Each model's template writes its own image marker
//! (Qwen2.5-VL `<|vision_start|><|image_pad|><|vision_end|>`, InternVL `<IMG_CONTEXT>\n`),
//! which the processors then expand.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, ErrorKind, Value};
use serde_json::Value as Json;

use crate::chat::{Message, Part};
use crate::error::{ModelError, Result};

/// The named special tokens transformers passes to a template (`SPECIAL_TOKENS_ATTRIBUTES`).
pub const SPECIAL_TOKEN_NAMES: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// A compiled chat template with the special tokens it renders with.
#[derive(Clone)]
pub struct ChatTemplate {
    source: String,
    origin: PathBuf,
    special_tokens: Vec<(String, String)>,
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("chars", &self.source.len())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

/// The name the template is registered under: what minijinja's messages cite.
const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source`. `origin` names where it came from (a file, or `file.gguf:key`) in
    /// every error. A template that does not parse is an error naming `origin`, the line and
    /// Jinja's message.
    pub fn new(source: &str, origin: impl Into<PathBuf>) -> Result<ChatTemplate> {
        let origin = origin.into();
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ModelError::format(&origin, format!("chat template syntax: {e}")))?;
        env.set_syntax(syntax);
        // Chat templates write text, not HTML: nothing is escaped.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(NAME, without_generation_tags(source))
            .map_err(|e| jinja_error(&origin, "does not parse", &e))?;
        Ok(ChatTemplate {
            source: source.to_string(),
            origin,
            special_tokens: Vec::new(),
            env,
        })
    }

    /// Sets the special tokens (`bos_token` -> `<s>`, ...) the template sees.
    pub fn with_special_tokens(
        mut self,
        tokens: impl IntoIterator<Item = (String, String)>,
    ) -> ChatTemplate {
        self.special_tokens = tokens.into_iter().collect();
        self
    }

    /// The template of a model folder (see the module docs for where it is looked for), with
    /// the special tokens of its tokenizer config; `None` when the folder has none.
    pub fn from_folder(dir: &Path) -> Result<Option<ChatTemplate>> {
        let Some((source, origin)) = find_template(dir)? else {
            return Ok(None);
        };
        let tokens = special_tokens_of_folder(dir)?;
        Ok(Some(
            ChatTemplate::new(&source, origin)?.with_special_tokens(tokens),
        ))
    }

    /// The template source as found.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where the template came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    pub fn special_tokens(&self) -> &[(String, String)] {
        &self.special_tokens
    }

    /// Renders a conversation (see the module docs for how messages become template data).
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let msgs: Vec<Value> = messages.iter().map(message_value).collect();
        self.render_with(Value::from(msgs), add_generation_prompt, &Value::UNDEFINED)
    }

    /// Renders template data as transformers does: `messages` a list of message maps (keys
    /// whose value is none are dropped, and `reasoning_content` / `thinking` / `reasoning` are
    /// aliased to each other, as `apply_chat_template` does), `kwargs` a map of extra template
    /// variables (`tools`, `documents`, `enable_thinking`, `date_string`, ...) that override
    /// the special tokens, or undefined.
    pub fn render_with(
        &self,
        messages: Value,
        add_generation_prompt: bool,
        kwargs: &Value,
    ) -> Result<String> {
        let messages = normalise_messages(&messages)
            .map_err(|e| ModelError::format(&self.origin, format!("chat messages: {e}")))?;
        let mut ctx: Vec<(Value, Value)> = Vec::new();
        let mut set = |k: Value, v: Value| {
            if let Some(slot) = ctx.iter_mut().find(|(key, _)| *key == k) {
                slot.1 = v;
            } else {
                ctx.push((k, v));
            }
        };
        set(Value::from("tools"), Value::from(()));
        set(Value::from("documents"), Value::from(()));
        for (k, v) in &self.special_tokens {
            set(Value::from(k.as_str()), Value::from(v.as_str()));
        }
        if kwargs.kind() == ValueKind::Map {
            for k in kwargs
                .try_iter()
                .map_err(|e| ModelError::format(&self.origin, format!("chat kwargs: {e}")))?
            {
                let v = kwargs.get_item(&k).unwrap_or_default();
                set(k, v);
            }
        } else if !kwargs.is_undefined() && !kwargs.is_none() {
            return Err(ModelError::invalid("chat template kwargs must be a map"));
        }
        set(Value::from("messages"), messages);
        set(
            Value::from("add_generation_prompt"),
            Value::from(add_generation_prompt),
        );
        let ctx = map(ctx);
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| jinja_error(&self.origin, "does not parse", &e))?;
        tmpl.render(ctx)
            .map_err(|e| jinja_error(&self.origin, "failed to render", &e))
    }
}

/// `{role, content}` for one of our messages: the content a string when all parts are text.
fn message_value(m: &Message) -> Value {
    let all_text = m.parts.iter().all(|p| matches!(p, Part::Text(_)));
    let content = if all_text {
        let mut s = String::new();
        for p in &m.parts {
            if let Part::Text(t) = p {
                s.push_str(t);
            }
        }
        Value::from(s)
    } else {
        let parts: Vec<Value> = m
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => map([
                    ("type", Value::from("text")),
                    ("text", Value::from(t.as_str())),
                ]),
                Part::Image => map([("type", Value::from("image"))]),
            })
            .collect();
        Value::from(parts)
    };
    map([("role", Value::from(m.role.as_str())), ("content", content)])
}

/// A Jinja map (a Python dict) in the given key order; minijinja turns an iterator of pairs
/// into a list of pairs, not a map.
fn map<K: Into<Value>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<indexmap::IndexMap<Value, Value>>(),
    )
}

/// The reasoning fields `apply_chat_template` aliases to each other.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// `apply_chat_template`'s clean-up of each message: keys whose value is none are dropped,
/// and a reasoning field fills `thinking` (first) and `reasoning_content`.
fn normalise_messages(messages: &Value) -> std::result::Result<Value, minijinja::Error> {
    if messages.kind() != ValueKind::Seq {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "messages must be a list",
        ));
    }
    let mut out = Vec::new();
    for m in messages.try_iter()? {
        if m.kind() != ValueKind::Map {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("a message must be a map, not {}", m.kind()),
            ));
        }
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        for k in m.try_iter()? {
            let v = m.get_item(&k)?;
            if !v.is_none() && !v.is_undefined() {
                pairs.push((k, v));
            }
        }
        let reasoning = REASONING_FIELDS.iter().find_map(|f| {
            pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(f))
                .map(|(_, v)| v.clone())
        });
        if let Some(r) = reasoning {
            let mut aliased = vec![(Value::from("thinking"), r.clone())];
            for (k, v) in pairs {
                upsert(&mut aliased, k, v);
            }
            upsert(&mut aliased, Value::from("reasoning_content"), r);
            pairs = aliased;
        }
        out.push(map(pairs));
    }
    Ok(Value::from(out))
}

/// Python's dict assignment: an existing key keeps its place.
fn upsert(pairs: &mut Vec<(Value, Value)>, k: Value, v: Value) {
    match pairs.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => pairs.push((k, v)),
    }
}

/// `ModelError` naming the template's origin, the line and Jinja's message.
fn jinja_error(origin: &Path, what: &str, e: &minijinja::Error) -> ModelError {
    let mut msg = format!("chat template {what}: {}", e.kind());
    if let Some(d) = e.detail() {
        msg.push_str(": ");
        msg.push_str(d);
    }
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (template line {line})"));
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    ModelError::format(origin, msg)
}

/// transformers' `{% generation %}...{% endgeneration %}` marks assistant text for its
/// assistant-token mask and renders its body unchanged: the tags become a block that always
/// renders, keeping their whitespace control.
fn without_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(i) = rest.find("{%") {
        out.push_str(&rest[..i]);
        let tag = &rest[i..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (open, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, close) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[b.len()..]),
            None => (body, ""),
        };
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&format!("{{%{open} {r} {close}%}}")),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

/// transformers' `strftime_now(format)`: the current time (UTC here; Python uses local time,
/// which is UTC on our machines) with the common `strftime` directives.
fn strftime_now(format: String) -> std::result::Result<Value, minijinja::Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(secs, &format).map(Value::from)
}

/// Formats the UTC time `secs` after the epoch with `strftime` directives.
pub fn strftime(secs: i64, format: &str) -> std::result::Result<String, minijinja::Error> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let (hh, mm, ss) = (tod / 3600, tod / 60 % 60, tod % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d2) = chars.next() else {
            out.push('%');
            break;
        };
        let month = MONTHS[(m - 1) as usize];
        match d2 {
            'd' => out.push_str(&format!("{d:02}")),
            'm' => out.push_str(&format!("{m:02}")),
            'Y' => out.push_str(&y.to_string()),
            'y' => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            'b' | 'h' => out.push_str(&month[..3]),
            'B' => out.push_str(month),
            'a' => out.push_str(&DAYS[weekday][..3]),
            'A' => out.push_str(DAYS[weekday]),
            'H' => out.push_str(&format!("{hh:02}")),
            'I' => out.push_str(&format!("{:02}", (hh + 11) % 12 + 1)),
            'p' => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            'M' => out.push_str(&format!("{mm:02}")),
            'S' => out.push_str(&format!("{ss:02}")),
            'j' => out.push_str(&format!("{yday:03}")),
            'F' => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            '%' => out.push('%'),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: directive %{other} is not supported"),
                ))
            }
        }
    }
    Ok(out)
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`: Python's `json.dumps` with those arguments (positional or by name).
fn tojson(
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> std::result::Result<Value, minijinja::Error> {
    let names = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > names.len() {
        return Err(minijinja::Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let mut opts: [Option<Value>; 4] = Default::default();
    for (i, a) in args.iter().enumerate() {
        opts[i] = Some(a.clone());
    }
    for (i, n) in names.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<Value>>(n)? {
            opts[i] = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    let ensure_ascii = opts[0].as_ref().is_some_and(Value::is_true);
    let indent: Option<String> = match &opts[1] {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        Some(v) => {
            let n = v.as_i64().ok_or_else(|| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                )
            })?;
            Some(" ".repeat(n.max(0) as usize))
        }
    };
    let (item_sep, key_sep) = match &opts[2] {
        Some(v) if !v.is_none() => {
            let a = v.get_item_by_index(0)?;
            let b = v.get_item_by_index(1)?;
            match (a.as_str(), b.as_str()) {
                (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                _ => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        // json.dumps: ', ' between items unless indenting, then ','.
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let sort_keys = opts[3].as_ref().is_some_and(Value::is_true);
    let w = JsonWriter {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    w.write(value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct JsonWriter {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonWriter {
    fn newline(&self, level: usize, out: &mut String) {
        if let Some(ind) = &self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    }

    fn write(
        &self,
        v: &Value,
        level: usize,
        out: &mut String,
    ) -> std::result::Result<(), minijinja::Error> {
        match v.kind() {
            ValueKind::Undefined => Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "tojson: an undefined value is not JSON serializable",
            )),
            ValueKind::None => {
                out.push_str("null");
                Ok(())
            }
            ValueKind::Bool => {
                out.push_str(if v.is_true() { "true" } else { "false" });
                Ok(())
            }
            ValueKind::Number => {
                out.push_str(&py_number(v));
                Ok(())
            }
            ValueKind::String => {
                self.string(v.as_str().unwrap_or(""), out);
                Ok(())
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if self.sort_keys {
                    keys.sort();
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    let key = match k.kind() {
                        ValueKind::String => k.as_str().unwrap_or("").to_string(),
                        ValueKind::None => "null".to_string(),
                        ValueKind::Bool => (if k.is_true() { "true" } else { "false" }).to_string(),
                        ValueKind::Number => py_number(k),
                        other => {
                            return Err(minijinja::Error::new(
                                ErrorKind::InvalidOperation,
                                format!(
                                "tojson: keys must be str, int, float, bool or None, not {other}"
                            ),
                            ))
                        }
                    };
                    self.string(&key, out);
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(k)?, level + 1, out)?;
                }
                self.newline(level, out);
                out.push('}');
                Ok(())
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    self.write(item, level + 1, out)?;
                }
                self.newline(level, out);
                out.push(']');
                Ok(())
            }
            other => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a {other} is not JSON serializable"),
            )),
        }
    }

    /// A JSON string as `json.dumps` writes it.
    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if self.ensure_ascii && !(' '..='~').contains(&c) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A number as Python's `json.dumps` writes it: integers as they are, floats as `repr`
/// (shortest round trip, `1.0`, `1e-05`, `1e+16`), non-finite as `NaN` / `Infinity`.
fn py_number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    let Ok(f) = f64::try_from(v.clone()) else {
        return v.to_string();
    };
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Shortest round-trip digits and exponent, then Python's layout rules for repr.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= n {
            format!("{}{}.0", digits, "0".repeat((point - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// The first template source found in a folder, with the file it came from.
fn find_template(dir: &Path) -> Result<Option<(String, PathBuf)>> {
    let pc = dir.join("processor_config.json");
    if let Some(v) = read_json(&pc)? {
        if let Some(t) = template_in(&v, &pc)? {
            return Ok(Some((t, pc)));
        }
    }
    let ctj = dir.join("chat_template.json");
    if let Some(v) = read_json(&ctj)? {
        return match template_in(&v, &ctj)? {
            Some(t) => Ok(Some((t, ctj))),
            None => Err(ModelError::format(&ctj, "no `chat_template` string in it")),
        };
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let t = std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?;
        return Ok(Some((t, jinja)));
    }
    let tc = dir.join("tokenizer_config.json");
    if let Some(v) = read_json(&tc)? {
        if let Some(t) = template_in(&v, &tc)? {
            return Ok(Some((t, tc)));
        }
    }
    Ok(None)
}

fn read_json(path: &Path) -> Result<Option<Json>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))
}

/// The `chat_template` of a config: a string, or the `default` of a list of
/// `{"name", "template"}` (transformers' named templates).
fn template_in(v: &Json, path: &Path) -> Result<Option<String>> {
    match v.get("chat_template") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Array(list)) => {
            let default = list
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"));
            match default
                .and_then(|t| t.get("template"))
                .and_then(Json::as_str)
            {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(ModelError::format(
                    path,
                    "`chat_template` is a list of named templates without a `default` one",
                )),
            }
        }
        Some(other) => Err(ModelError::format(
            path,
            format!("`chat_template` is neither a string nor a list of named templates: {other}"),
        )),
    }
}

/// A special token as a tokenizer config writes it: a string or `{"content": ...}`.
fn token_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// The named special tokens of a folder's tokenizer (`tokenizer_config.json`, then
/// `special_tokens_map.json` for names it lacks), including a dict of named
/// `extra_special_tokens` (InternVL's `context_image_token`, ...).
pub fn special_tokens_of_folder(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for file in ["tokenizer_config.json", "special_tokens_map.json"] {
        let Some(v) = read_json(&dir.join(file))? else {
            continue;
        };
        let mut add = |name: &str, val: &Json| {
            if out.iter().any(|(n, _)| n == name) {
                return;
            }
            if let Some(t) = token_text(val) {
                out.push((name.to_string(), t));
            }
        };
        for name in SPECIAL_TOKEN_NAMES {
            if let Some(val) = v.get(name) {
                add(name, val);
            }
        }
        if let Some(Json::Object(extra)) = v.get("extra_special_tokens") {
            for (name, val) in extra {
                add(name, val);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_plain_blocks() {
        assert_eq!(
            without_generation_tags("a{%- generation -%}b{% endgeneration %}c{{ x }}"),
            "a{%- if true -%}b{% endif %}c{{ x }}"
        );
        assert_eq!(
            without_generation_tags("{% if x %}y{% endif %}"),
            "{% if x %}y{% endif %}"
        );
    }

    #[test]
    fn strftime_directives() {
        // 2024-07-26 13:05:09 UTC, a Friday, day 208 of the year.
        let t = 1_721_999_109;
        assert_eq!(strftime(t, "%d %b %Y").unwrap(), "26 Jul 2024");
        assert_eq!(
            strftime(t, "%A %B %j %H:%M:%S %I%p %y %F %%").unwrap(),
            "Friday July 208 13:05:09 01PM 24 2024-07-26 %"
        );
        assert!(strftime(t, "%Q").is_err());
        assert_eq!(strftime(0, "%a %d %m %Y").unwrap(), "Thu 01 01 1970");
    }

    #[test]
    fn python_float_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5e-7, "-2.5e-07"),
            (2.75, "2.75"),
        ];
        for (f, want) in cases {
            assert_eq!(py_number(&Value::from(f)), want, "{f}");
        }
        assert_eq!(py_number(&Value::from(42)), "42");
    }
}
