//! Numbers in free text, and the `numeric` matching reward.
//!
//! A number is an optional sign (`+`, `-`, `−`), digits with optional thousands separators
//! (`1,234,567`: a comma counts only before exactly three digits), an optional decimal part and
//! exponent (`6.02e23`), and an optional percent sign (`%`, `\%`, ` percent`). Currency symbols,
//! units and words around it are ignored, because that is how people write answers: `$1,200`,
//! `12 cm`, `about 3.5 million`. Digits glued to letters (`x2`, `H2O`, `COVID19`) are not numbers.
//!
//! `numeric` compares the **last** number of the predicted answer with the gold's single number,
//! equal within `rel_tol` (1e-6) relative, or `abs_tol` absolute for a gold of 0; an answer that
//! ends in a range or alternatives ("3 or 4", "3-4", "between 3 and 4") commits to no number and
//! scores 0 (see [`answer_number`]). Percent is
//! stripped (`50%` equals `50`); chart questions, where `35%` and `0.35` are the same answer, use
//! [`crate::chart`] instead.

use serde::{Deserialize, Serialize};

use crate::text::strip_wrappers;
use crate::{Accuracy, Skip};

/// A number found in text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub value: f64,
    /// Followed by `%`, `\%` or the word `percent`.
    pub percent: bool,
    /// Written as bare digits: no sign, separator, decimal point or exponent (how years look).
    pub plain_integer: bool,
    /// Count of digits before the decimal point.
    pub int_digits: usize,
    /// Byte span in the scanned text (percent sign excluded).
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumericConfig {
    /// Relative tolerance for equality.
    pub rel_tol: f64,
    /// Absolute tolerance used when the gold is 0.
    pub abs_tol: f64,
}

impl Default for NumericConfig {
    fn default() -> Self {
        NumericConfig {
            rel_tol: 1e-6,
            abs_tol: 1e-9,
        }
    }
}

/// `numeric` accuracy: 1.0 when the answer's number ([`answer_number`]: the last one, unless the
/// answer ends in a range or alternatives) equals the gold number.
pub fn numeric_accuracy(pred: &str, gold: &str, cfg: &NumericConfig) -> Accuracy {
    let g = gold_number(gold)?;
    let score = match answer_number(strip_wrappers(pred)) {
        Some(p) if approx_eq(p.value, g.value, cfg.rel_tol, cfg.abs_tol) => 1.0,
        _ => 0.0,
    };
    Ok(score)
}

/// The one number of a gold answer; a gold with none or several (`3 or 4`) cannot be judged.
pub fn gold_number(gold: &str) -> Result<Number, Skip> {
    let mut first = None;
    let mut count = 0usize;
    for_each_number(strip_wrappers(gold), |n| {
        count += 1;
        if first.is_none() {
            first = Some(n);
        }
        count < 2
    });
    match (first, count) {
        (Some(n), 1) => Ok(n),
        (None, _) => Err(Skip::new(format!(
            "gold answer {:?} holds no number",
            clip(gold)
        ))),
        _ => Err(Skip::new(format!(
            "gold answer {:?} holds several numbers",
            clip(gold)
        ))),
    }
}

/// The last number in `s`.
pub fn last_number(s: &str) -> Option<Number> {
    let mut last = None;
    for_each_number(s, |n| {
        last = Some(n);
        true
    });
    last
}

/// The number an answer commits to: its last number, or `None` when the answer has none or ends
/// in a **range or alternatives**, i.e. when its last two numbers are joined by nothing but
/// * `or`, whatever follows it ("3 or 4", "3, or maybe 4", "either 3 or 4", "x = 3 or x = 4");
/// * `to` ("3 to 4", "from 3 to 4");
/// * `and` after `between` ("between 3 and 4");
/// * a dash, tilde or plus-minus: `-`, `–`, `—`, `−`, `~`, `〜`, `±`, `+/-`, `\pm` ("3-4", "3 ± 1"),
///
/// with a unit, currency or percent sign of the first number allowed in between ("3 cm or 4 cm",
/// "$3-$4", "30%-40%"). A sequence that commits ("first 3, then 4", "3 + 4 = 7", "3, 4") keeps
/// its last number, as before: a hedge is scored 0 only where it is one.
pub fn answer_number(s: &str) -> Option<Number> {
    let mut prev: Option<Number> = None;
    let mut last: Option<Number> = None;
    for_each_number(s, |n| {
        prev = last.replace(n);
        true
    });
    let last = last?;
    match prev {
        Some(p) if is_range_or_alternative(s, &p, &last) => None,
        _ => Some(last),
    }
}

/// See [`answer_number`].
fn is_range_or_alternative(s: &str, first: &Number, second: &Number) -> bool {
    let Some(between) = s.get(first.end..second.start) else {
        return false;
    };
    let mut words: Vec<String> = Vec::new();
    let mut dash = 0usize;
    let mut other = false;
    let b = between.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = between[start..i].to_ascii_lowercase();
            if start > 0 && b[start - 1] == b'\\' && w == "pm" {
                dash += 1;
            } else {
                words.push(w);
            }
            continue;
        }
        if between[i..].starts_with("+/-") {
            dash += 1;
            i += 3;
            continue;
        }
        let ch = between[i..].chars().next().unwrap_or(' ');
        match ch {
            '-' | '–' | '—' | '−' | '~' | '〜' | '±' => dash += 1,
            c if c.is_whitespace() => {}
            // Currency, percent, parentheses, markdown bold and a comma are noise here.
            '$' | '€' | '£' | '¥' | '%' | '\\' | '(' | ')' | '*' | ',' => {}
            _ => other = true,
        }
        i += ch.len_utf8();
    }
    // A unit of the first number ("3 cm or 4"), and "percent", are not connectives.
    if words.first().is_some_and(|w| w == "percent") {
        words.remove(0);
    }
    if words.len() >= 2 && !["or", "to", "and"].contains(&words[0].as_str()) {
        words.remove(0);
    }
    // "x = 3 or x = 4": an alternative whatever follows the `or`.
    if words.first().is_some_and(|w| w == "or") {
        return true;
    }
    if other {
        return false;
    }
    match (words.first().map(String::as_str), dash) {
        (None, 1) => true,
        (Some("to"), 0) => words.len() == 1,
        (Some("and"), 0) => words.len() == 1 && word_before(s, first.start) == Some("between"),
        _ => false,
    }
}

/// The ASCII word that ends just before byte `at` (white space, `$`, `(` skipped), lower case.
fn word_before(s: &str, at: usize) -> Option<&'static str> {
    let head = s
        .get(..at)?
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '$' | '€' | '£' | '¥' | '('));
    let start = head
        .rfind(|c: char| !c.is_ascii_alphabetic())
        .map_or(0, |k| k + 1);
    head[start..]
        .eq_ignore_ascii_case("between")
        .then_some("between")
}

/// `a == b` within `rel_tol` of `b`, or within `abs_tol` when `b` is 0.
pub fn approx_eq(a: f64, b: f64, rel_tol: f64, abs_tol: f64) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return a == b;
    }
    let diff = (a - b).abs();
    if b == 0.0 {
        diff <= abs_tol
    } else {
        diff <= rel_tol * b.abs() || diff <= abs_tol
    }
}

/// Calls `f` for each number in `s`, left to right, until `f` returns false.
pub fn for_each_number(s: &str, mut f: impl FnMut(Number) -> bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts_digit =
            c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts_digit {
            i += 1;
            continue;
        }
        // Digits glued to a word (`x2`, `v1.5`, `abc123`) are part of that word.
        if i > 0 && (b[i - 1].is_ascii_alphabetic() || b[i - 1] == b'_') {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            continue;
        }
        let (sign, sign_start) = sign_before(b, i);
        let n = parse_unsigned(s, i);
        let end = n.end;
        let number = Number {
            value: if sign < 0.0 { -n.value } else { n.value },
            plain_integer: n.plain_integer && sign_start == i,
            start: sign_start,
            ..n
        };
        if !f(number) {
            return;
        }
        i = end.max(i + 1);
    }
}

/// A sign directly before the digits at `i` that is not a binary minus (`10-20`, `a - 5`).
fn sign_before(b: &[u8], i: usize) -> (f64, usize) {
    let (sign, start) = if i >= 1 && (b[i - 1] == b'-' || b[i - 1] == b'+') {
        (if b[i - 1] == b'-' { -1.0 } else { 1.0 }, i - 1)
    } else if i >= 3 && &b[i - 3..i] == "−".as_bytes() {
        (-1.0, i - 3)
    } else {
        return (1.0, i);
    };
    // After an operand the dash is a subtraction or a range, not a sign (`30%-40%` too).
    if start > 0 {
        let p = b[start - 1];
        if p.is_ascii_alphanumeric() || matches!(p, b')' | b']' | b'.' | b'_' | b'%') {
            return (1.0, i);
        }
    }
    (sign, start)
}

fn parse_unsigned(s: &str, start: usize) -> Number {
    let b = s.as_bytes();
    let mut i = start;
    let mut plain = true;
    let mut separators = false;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut int_digits = i - start;
    // Thousands separators: only after a first group of 1-3 digits, each `,ddd` not followed by
    // another digit (so `1,5` and `3,14159` are lists, not numbers).
    if (1..=3).contains(&int_digits) {
        while i + 3 < b.len()
            && b[i] == b','
            && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)
            && !b.get(i + 4).is_some_and(u8::is_ascii_digit)
        {
            i += 4;
            int_digits += 3;
            separators = true;
            plain = false;
        }
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        plain = false;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let digits_from = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        // `5e3` is a number, `5 eggs` and `5e` are not exponents; a letter right after the
        // exponent digits (`1e5x`) keeps it a number anyway.
        if j > digits_from {
            plain = false;
            i = j;
        }
    }
    let end = i;
    let text = &s[start..end];
    let value = if separators {
        text.replace(',', "").parse::<f64>()
    } else {
        text.parse::<f64>()
    }
    .unwrap_or(f64::NAN);
    Number {
        value,
        percent: percent_after(b, end),
        plain_integer: plain,
        int_digits,
        start,
        end,
    }
}

fn percent_after(b: &[u8], mut i: usize) -> bool {
    // One optional space: `35 %`, `35\%`, `35 percent`.
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    match b.get(i) {
        Some(b'%') => true,
        Some(b'\\') => b.get(i + 1) == Some(&b'%'),
        Some(b'p' | b'P') => {
            let rest = &b[i..];
            crate::text::starts_with_ci(rest, b"percent")
                && !rest.get(7).is_some_and(u8::is_ascii_alphabetic)
        }
        _ => false,
    }
}

/// A short form of a possibly huge user string for error messages.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(s: &str) -> Vec<f64> {
        let mut v = Vec::new();
        for_each_number(s, |n| {
            v.push(n.value);
            true
        });
        v
    }

    #[test]
    fn scanning() {
        assert_eq!(
            nums("1,234,567.5 and -3 and 6.02e23"),
            vec![1234567.5, -3.0, 6.02e23]
        );
        assert_eq!(nums("10-20"), vec![10.0, 20.0]);
        assert_eq!(nums("a - 5"), vec![5.0]);
        assert_eq!(nums("x2 H2O COVID19 v1.5"), Vec::<f64>::new());
        assert_eq!(nums("1,5 and 3,14159"), vec![1.0, 5.0, 3.0, 14159.0]);
        assert_eq!(nums("$1,200.50 USD"), vec![1200.5]);
        assert_eq!(nums("−7 °C"), vec![-7.0]);
        assert_eq!(nums(".5 5. 5 eggs"), vec![0.5, 5.0, 5.0]);
        assert_eq!(nums("12,345,67"), vec![12345.0, 67.0]);
        let n = last_number("35 %").unwrap();
        assert!(n.percent && n.value == 35.0);
        assert!(last_number(r"35\%").unwrap().percent);
        assert!(last_number("35 percent").unwrap().percent);
        assert!(!last_number("35 percentile").unwrap().percent);
        assert!(last_number("2019").unwrap().plain_integer);
        assert!(!last_number("2,019").unwrap().plain_integer);
    }

    #[test]
    fn numeric_reward() {
        let c = NumericConfig::default();
        let acc = |p, g| numeric_accuracy(p, g, &c);
        assert_eq!(acc("42", "42"), Ok(1.0));
        assert_eq!(acc("The answer is 1,000.", "1000"), Ok(1.0));
        assert_eq!(acc("$1,000", "1000 dollars"), Ok(1.0));
        assert_eq!(acc("50%", "50"), Ok(1.0));
        assert_eq!(acc("0.5", "50%"), Ok(0.0));
        assert_eq!(acc("first 3 then 4", "4"), Ok(1.0));
        assert_eq!(acc("4 not 3", "4"), Ok(0.0));
        assert_eq!(acc("-0", "0"), Ok(1.0));
        assert_eq!(acc("0.000001", "0"), Ok(0.0));
        assert_eq!(acc("1.0000001", "1"), Ok(1.0));
        assert_eq!(acc("1.00001", "1"), Ok(0.0));
        assert_eq!(acc("1e3", "1000"), Ok(1.0));
        assert_eq!(acc(r"\boxed{12}", "12 cm"), Ok(1.0));
        assert_eq!(acc("none", "12"), Ok(0.0));
        assert!(acc("1", "N/A").is_err());
        assert!(acc("1", "3 or 4").is_err());
    }

    #[test]
    fn ranges_and_alternatives_commit_to_nothing() {
        let c = NumericConfig::default();
        let acc = |p, g| numeric_accuracy(p, g, &c);
        for p in [
            "3 or 4",
            "4 or 3",
            "either 3 or 4",
            "3, or maybe 4",
            "3-4",
            "3 - 4",
            "3–4",
            "3 — 4",
            "3~4",
            "3 to 4",
            "from 3 to 4",
            "between 3 and 4",
            "Between 3 and 4 cm",
            "3 cm or 4 cm",
            "$3-$4",
            "30%-40%",
            "30 percent to 40 percent",
            "4 ± 1",
            r"4 \pm 1",
            "4 +/- 1",
            "x = 3 or x = 4",
            "(3) or (4)",
            "**3** or **4**",
            "1, 2, 3 or 4",
            "-5 to -4",
        ] {
            assert_eq!(acc(p, "4"), Ok(0.0), "{p}");
            assert!(answer_number(p).is_none(), "{p}");
        }
        // Sequences that commit keep their last number.
        for p in [
            "first 3, then 4",
            "3, 4",
            "3 and 4",
            "3 + 1 = 4",
            "10 - 6 = 4",
            "3 apples, then 4",
            "In 2019 it was 4",
            "3/4 of 5 is 4",
            "4",
            "-4 + 8 = 4",
        ] {
            assert_eq!(acc(p, "4"), Ok(1.0), "{p}");
        }
        assert_eq!(acc("x = -4", "-4"), Ok(1.0));
        assert_eq!(acc("3 or more, so 4", "4"), Ok(0.0));
    }
}
