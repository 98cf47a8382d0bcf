//! Normalise: a loose [`Draft`] becomes a [`Sample`] of the schema, or a [`Reject`] at
//! [`Stage::Normalise`] saying what is missing.
//!
//! What it does, in order:
//! * `problem` and `answer` are required; text is trimmed (a problem or text answer that is empty
//!   after trimming counts as missing); choices and image paths are trimmed and must not be empty.
//! * `source` defaults to the caller's `default_source`; `id` to `<source>-<line>`.
//! * `task`: a given task must be one of the schema's names (a reward name such as `iou` is read
//!   as its task). A missing task comes from the `reward` override when there is one, else it is
//!   **inferred** by these rules, first match wins ([`infer_task`]):
//!   1. the answer is JSON boxes (a box, a list of boxes, `{"bbox_2d": ...}`), or a `frame` is
//!      given -> `grounding`;
//!   2. `choices` are present -> `mcq`;
//!   3. the answer is one word `yes`/`no`/`true`/`false` (any case, final `.` ignored) -> `yes_no`;
//!   4. the answer is a single letter `A`-`Z` (or `(B)`) and the problem shows options such as
//!      `(A)` / `A.` -> `mcq`;
//!   5. the answer is one number with at most a unit or currency around it (`23.5`, `$12`, `35%`)
//!      and the source name or a `meta` key says `chart` -> `chart`;
//!   6. the same without `chart` -> `numeric`;
//!   7. the answer has LaTeX or math notation (`\`, `^`, `$`, `=`, `{`, `a/b`, `sqrt`, `pi`) and
//!      parses with the reward crate's math parser -> `math`;
//!   8. anything else -> `open_ended`.
//! * `<image>` placeholders: none in the problem while there are images -> one `<image>` per image
//!   is put before the text (LLaVA's and verl's convention); otherwise their count must equal the
//!   number of images.

use mixed_r1_reward::iou::gold_boxes;
use mixed_r1_reward::math::{parse_math, MathConfig, MathValue};
use mixed_r1_reward::number::for_each_number;
use mixed_r1_reward::RewardKind;
use mixed_r1_stable_hash::Fnv64;
use serde_json::Value;

use crate::schema::{Answer, Draft, Reject, Row, Sample, Stage, Task};

/// The placeholder a problem marks each image's place with.
pub const IMAGE_PLACEHOLDER: &str = "<image>";

/// Normalises one draft; see the module docs for the rules.
pub fn normalise(row: Row<Draft>, default_source: &str) -> Result<Row<Sample>, Reject> {
    let Row { item: d, origin } = row;
    let reject = |why: String, id: &Option<String>| {
        let mut r = Reject::new(&origin, Stage::Normalise, why);
        r.id = id.clone();
        r
    };
    let id_given =
        d.id.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
    let source = d
        .source
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default_source)
        .to_string();
    let id = id_given
        .clone()
        .unwrap_or_else(|| format!("{source}-{}", origin.line));
    let some_id = Some(id.clone());

    let problem = d.problem.as_deref().map(str::trim).unwrap_or("");
    if problem.is_empty() {
        return Err(reject("missing problem".into(), &some_id));
    }
    let answer = match d.answer {
        None => return Err(reject("missing answer".into(), &some_id)),
        Some(Answer::Text(t)) => {
            let t = t.trim();
            if t.is_empty() {
                return Err(reject("empty answer".into(), &some_id));
            }
            Answer::Text(t.to_string())
        }
        Some(Answer::Json(v)) => Answer::Json(v),
    };
    let mut choices = Vec::with_capacity(d.choices.len());
    for (i, c) in d.choices.into_iter().enumerate() {
        let c = c.trim();
        if c.is_empty() {
            return Err(reject(format!("choice {} is empty", i + 1), &some_id));
        }
        choices.push(c.to_string());
    }
    let mut images = Vec::with_capacity(d.images.len());
    for (i, p) in d.images.into_iter().enumerate() {
        let p = p.trim();
        if p.is_empty() {
            return Err(reject(format!("image path {} is empty", i + 1), &some_id));
        }
        images.push(p.to_string());
    }
    let reward = d
        .reward
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let task = match d.task.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(name) => match task_from_name(name) {
            Some(t) => t,
            None => {
                return Err(reject(
                    format!("unknown task {name:?} (expected one of {})", task_names()),
                    &some_id,
                ))
            }
        },
        None => match reward.as_deref() {
            Some(r) => match task_from_name(r) {
                Some(t) => t,
                None => return Err(reject(format!("unknown reward {r:?}"), &some_id)),
            },
            None => infer_task(
                &answer,
                &choices,
                problem,
                d.frame.is_some(),
                &source,
                &d.meta,
            ),
        },
    };

    let placeholders = problem.matches(IMAGE_PLACEHOLDER).count();
    let problem = if placeholders == 0 && !images.is_empty() {
        let mut p = IMAGE_PLACEHOLDER.repeat(images.len());
        p.push_str(problem);
        p
    } else if placeholders != images.len() {
        return Err(reject(
            format!(
                "problem has {placeholders} {IMAGE_PLACEHOLDER} placeholder{} but the sample has {} image{}",
                if placeholders == 1 { "" } else { "s" },
                images.len(),
                if images.len() == 1 { "" } else { "s" }
            ),
            &some_id,
        ));
    } else {
        problem.to_string()
    };

    Ok(Row {
        item: Sample {
            id,
            source,
            task,
            images,
            problem,
            answer,
            choices,
            frame: d.frame,
            pred_frame: d.pred_frame,
            image_size: d.image_size,
            reward,
            meta: d.meta,
        },
        origin,
    })
}

fn task_names() -> String {
    Task::ALL.map(Task::as_str).join(", ")
}

/// A task name, or a reward name read as the task it serves (`iou` -> grounding).
pub fn task_from_name(name: &str) -> Option<Task> {
    Task::from_name(name)
        .or_else(|| RewardKind::from_name(name).and_then(|k| Task::from_name(k.task())))
}

/// The task of a sample that names none; the rules are listed in the module docs.
pub fn infer_task(
    answer: &Answer,
    choices: &[String],
    problem: &str,
    has_frame: bool,
    source: &str,
    meta: &serde_json::Map<String, Value>,
) -> Task {
    if let Answer::Json(v) = answer {
        if matches!(v, Value::Array(_) | Value::Object(_)) && gold_boxes(v).is_ok() {
            return Task::Grounding;
        }
    }
    if has_frame {
        return Task::Grounding;
    }
    if !choices.is_empty() {
        return Task::Mcq;
    }
    let text = answer.text();
    let t = text.trim().trim_end_matches('.').trim();
    if ["yes", "no", "true", "false"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        return Task::YesNo;
    }
    if is_letter_answer(t) && shows_options(problem) {
        return Task::Mcq;
    }
    if is_single_number(t) {
        let chart = source.to_ascii_lowercase().contains("chart")
            || meta
                .keys()
                .any(|k| k.to_ascii_lowercase().contains("chart"));
        return if chart { Task::Chart } else { Task::Numeric };
    }
    if looks_like_math(t)
        && parse_math(t, &MathConfig::default()).is_ok_and(|v| !matches!(v, MathValue::Text(_)))
    {
        return Task::Math;
    }
    Task::OpenEnded
}

fn is_letter_answer(t: &str) -> bool {
    let t = t.trim_start_matches('(').trim_end_matches(')');
    t.len() == 1 && t.as_bytes()[0].is_ascii_uppercase()
}

/// `(A)`, `A.`, `A)` or `A:` at a word start somewhere in the problem.
fn shows_options(problem: &str) -> bool {
    let b = problem.as_bytes();
    b.windows(3).any(|w| w == b"(A)")
        || b.windows(2).enumerate().any(|(i, w)| {
            w[0] == b'A'
                && matches!(w[1], b'.' | b')' | b':')
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        })
}

/// One number, and at most 12 bytes of anything else (a unit, a currency sign, `%`).
fn is_single_number(t: &str) -> bool {
    let mut count = 0;
    let mut span = 0;
    for_each_number(t, |n| {
        count += 1;
        span = n.end - n.start;
        count < 2
    });
    count == 1 && t.len() - span <= 12 && !t.contains(['\\', '^', '/', '='])
}

fn looks_like_math(t: &str) -> bool {
    t.contains(['\\', '^', '$', '=', '{', '/']) || t.contains("sqrt") || t.contains("pi")
}

/// The exact-duplicate key of a sample: a 64-bit FNV-1a hash of its normalised problem, answer,
/// choices and image paths (lower case, runs of white space as one space, trimmed; fields
/// separated so `("ab", "c")` and `("a", "bc")` differ). Stable across runs and platforms, so a
/// key can be stored.
pub fn exact_dedup_key(s: &Sample) -> u64 {
    let mut h = KeyHash::new();
    h.text(&s.problem);
    h.sep();
    match &s.answer {
        Answer::Text(t) => h.text(t),
        Answer::Json(v) => h.text(&v.to_string()),
    }
    h.sep();
    for c in &s.choices {
        h.text(c);
        h.sep();
    }
    h.sep();
    for i in &s.images {
        h.bytes(i.as_bytes());
        h.sep();
    }
    h.0.finish()
}

/// The key's hash, fed normalised text without building the normalised string.
struct KeyHash(Fnv64);

impl KeyHash {
    fn new() -> KeyHash {
        KeyHash(Fnv64::new())
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.0.byte(b);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.write(b);
    }

    fn sep(&mut self) {
        self.byte(0xff); // never in UTF-8 text
    }

    /// Lower-cased, white space collapsed and trimmed, without building the string.
    fn text(&mut self, s: &str) {
        let mut pending_space = false;
        let mut started = false;
        for c in s.chars() {
            if c.is_whitespace() {
                pending_space = started;
                continue;
            }
            if pending_space {
                self.byte(b' ');
                pending_space = false;
            }
            started = true;
            if c.is_ascii() {
                self.byte(c.to_ascii_lowercase() as u8);
            } else {
                let mut buf = [0u8; 4];
                for l in c.to_lowercase() {
                    self.bytes(l.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
}
