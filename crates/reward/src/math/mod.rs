//! Math-answer equivalence for the `math` task: our own LaTeX / plain-text evaluator.
//!
//! [`math_accuracy`] decides whether a model's extracted answer means the same as the ground truth.
//! Both strings go through the same pipeline:
//!
//! 1. **Wrapper stripping.** The content of the last `\boxed{...}` (or `\fbox{...}`) is used when
//!    there is one. `$...$`, `\(...\)`, `\[...\]`, `\left`/`\right`, spacing commands, `\%`, `%`,
//!    `\$`, degree signs and `\text{...}` units are dropped by the lexer.
//! 2. **Sentence stripping.** Words split the answer into segments and the *last* segment holding
//!    math is the answer: "The answer is 5 dollars." reads as `5`. "and" / "or" separate list items
//!    ("x = 1 or x = 2" is the list `1, 2`). An answer made only of words is a text answer,
//!    compared case-insensitively.
//! 3. **Parsing** into an expression tree (fractions, roots, powers, implicit multiplication,
//!    mixed numbers `1\frac{1}{2}` and `2 1/2`, thousands separators `1,000` and `1{,}000` outside
//!    brackets, scientific notation, functions, `|x|`, floor/ceiling, `!`, `\binom`, `\pm`,
//!    intervals, sets, tuples, lists, unions, relations, matrices).
//! 4. **Shaping** the tree into a [`MathValue`]: `x = 5` (a lone symbol, or a side without
//!    symbols, on the left) is its right-hand side; `x \in S` is `S`; `x > 5` is the interval
//!    `(5, \infty)`, `1 < x \le 2` is `(1, 2]`; `a \pm b` is the set `{a+b, a-b}`.
//! 5. **Comparison** ([`equivalent`]):
//!    * numbers are equal within `rel_tol` relative (default 1e-6) or `abs_tol` absolute (default
//!      1e-9, which only matters next to zero); so `\frac{1}{3}` and `0.333` differ while
//!      `0.3333333` matches; two different whole numbers below 2^50 always differ (`123456788` is
//!      not `123456789`); infinities match only themselves; NaN matches nothing;
//!    * expressions with symbols are compared by **polynomial identity testing**: both sides are
//!      evaluated at seven fixed pseudo-random points (each symbol's value is a hash of its name
//!      and the point index — deterministic, no RNG state), four with positive values only (so
//!      `\sqrt{x}` and `\ln x` are defined) and three with mixed signs (so `|x|` differs from `x`).
//!      They are equivalent when every point where both are finite agrees and at least two points
//!      do. Equations match when `lhs - rhs` of one is a non-zero constant multiple of the other's
//!      (`x^2+y^2=1` ~ `2x^2+2y^2=2`), inequalities when the multiple is positive;
//!    * `\{...\}` sets and bare comma lists are order-insensitive (math-verify reads `1,2,3` as a
//!      set too); a single-element set equals its element;
//!    * bracketed tuples and intervals compare bracket kinds and then items in order, so `(1,2]`
//!      differs from `(1,2)` and `(1,2)` from `(2,1)`; a bare list also matches a `(...)` tuple
//!      item by item (`1, 2` ~ `(1, 2)`), since models often drop the parentheses of a point;
//!    * unions `\cup` are order-insensitive; matrices compare shape and entries.
//!
//! Constants: `\pi`, `π`, `e` (Euler's number; never a symbol), `\infty`. `\log` without a base is
//! the natural logarithm (as in SymPy). Percent signs are stripped, so `50\%` equals `50`, not `0.5`.
//!
//! Safety: no global state, no signals, no threads. A [`Budget`] built from `deadline_ms` is ticked
//! by the lexer, parser, evaluator and comparison, and checks the clock every 256 ticks. Parsing
//! depth is capped by `max_depth`, input length by `max_chars`; every scan is linear, every number
//! is an `f64`, and every index stays on `char` boundaries, so no input can panic, overflow the
//! stack or hang. A ground truth that cannot be parsed (or times out) is a [`Skip`]; a prediction
//! that cannot is scored 0.

mod compare;
mod eval;
mod lexer;
mod parser;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Accuracy, Skip};
use lexer::{Rel, Tok, Token};
use parser::{Node, Parser};

pub use compare::equivalent;

/// Settings of the math equivalence check. Every field has a default, so `{}` in a config file is
/// the default configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MathConfig {
    /// Relative tolerance for numeric equality.
    pub rel_tol: f64,
    /// Absolute tolerance, which decides only next to zero.
    pub abs_tol: f64,
    /// Wall-clock budget for one `math_accuracy` call (parsing both sides and comparing), in
    /// milliseconds; 0 disables the deadline (depth and length limits still apply).
    pub deadline_ms: u64,
    /// Longer answers are not parsed: a gold is skipped, a prediction scores 0.
    pub max_chars: usize,
    /// Deepest nesting of groups, signs, powers and arguments the parser follows.
    pub max_depth: usize,
}

impl Default for MathConfig {
    fn default() -> Self {
        MathConfig {
            rel_tol: 1e-6,
            abs_tol: 1e-9,
            deadline_ms: 50,
            max_chars: 100_000,
            max_depth: 64,
        }
    }
}

/// Why a string could not be turned into a [`MathValue`] or compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MathError {
    /// Nothing left after stripping wrappers and words.
    Empty,
    /// Longer than `max_chars`.
    TooLong,
    /// Nested deeper than `max_depth`.
    TooDeep,
    /// The deadline passed.
    Timeout,
    /// Not a well-formed expression.
    Syntax(String),
}

impl std::fmt::Display for MathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MathError::Empty => f.write_str("no math content"),
            MathError::TooLong => f.write_str("answer too long"),
            MathError::TooDeep => f.write_str("nested too deeply"),
            MathError::Timeout => f.write_str("deadline exceeded"),
            MathError::Syntax(m) => write!(f, "cannot parse: {m}"),
        }
    }
}

impl std::error::Error for MathError {}

/// A step counter with an optional deadline. The clock is read every 256 ticks, so ticking is
/// cheap enough to do per token and per evaluated node.
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Option<Instant>,
    ticks: u32,
}

impl Budget {
    /// A budget that expires `ms` milliseconds from now; `0` never expires.
    pub fn new(ms: u64) -> Self {
        Budget {
            deadline: (ms > 0).then(|| Instant::now() + Duration::from_millis(ms)),
            ticks: 0,
        }
    }

    pub(crate) fn tick(&mut self) -> Result<(), MathError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 255 == 0 {
            if let Some(d) = self.deadline {
                if Instant::now() >= d {
                    return Err(MathError::Timeout);
                }
            }
        }
        Ok(())
    }
}

/// A scalar expression, possibly with free symbols. Opaque; evaluate it with
/// [`Expr::eval`] or [`Expr::value`].
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(pub(crate) Node);

impl Expr {
    /// The value when the expression has no free symbols (`None` otherwise).
    pub fn value(&self) -> Option<f64> {
        let mut vars = Vec::new();
        eval::collect_vars(&self.0, &mut vars);
        if !vars.is_empty() {
            return None;
        }
        eval::eval(&self.0, &[], &mut Budget::new(0)).ok()
    }

    /// Whether the expression has free symbols (`e` and `\pi` are constants, not symbols).
    pub fn has_symbols(&self) -> bool {
        let mut vars = Vec::new();
        eval::collect_vars(&self.0, &mut vars);
        !vars.is_empty()
    }
}

/// A parsed answer: the shape that comparison works on.
#[derive(Debug, Clone, PartialEq)]
pub enum MathValue {
    Scalar(Expr),
    /// `lhs = rhs` where the left side is not a lone symbol.
    Equation(Expr, Expr),
    /// `lo < hi` (`strict`) or `lo <= hi`, when it is not an interval of one symbol.
    Inequality {
        lo: Expr,
        hi: Expr,
        strict: bool,
    },
    NotEqual(Expr, Expr),
    /// `(a, b)`, `[a, b)`, `(1, 2, 3)`: bracket kinds and ordered items. Intervals are tuples.
    Tuple {
        open: char,
        close: char,
        items: Vec<MathValue>,
    },
    /// `\{a, b\}`: order-insensitive.
    Set(Vec<MathValue>),
    /// A bare comma list `a, b, c`: order-insensitive, and matches a `(...)` tuple in order.
    List(Vec<MathValue>),
    /// `A \cup B \cup ...`: order-insensitive.
    Union(Vec<MathValue>),
    /// Rows of entries.
    Matrix(Vec<Vec<MathValue>>),
    /// An answer made only of words, lower-cased, single-spaced.
    Text(String),
}

impl MathValue {
    /// The number, when this is a scalar without free symbols.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            MathValue::Scalar(e) => e.value(),
            _ => None,
        }
    }
}

/// Parses one answer string (gold or prediction) into a [`MathValue`], with a deadline of
/// `cfg.deadline_ms` of its own.
///
/// ```
/// use mixed_r1_reward::math::{parse_math, MathConfig};
/// let v = parse_math(r"The answer is $\boxed{\frac{3}{4}}$.", &MathConfig::default()).unwrap();
/// assert_eq!(v.as_number(), Some(0.75));
/// ```
pub fn parse_math(text: &str, cfg: &MathConfig) -> Result<MathValue, MathError> {
    parse_with(text, cfg, &mut Budget::new(cfg.deadline_ms))
}

/// Parses and evaluates an answer that should be a single number (`"1,000"`, `"\frac{1}{2}"`,
/// `"2\sqrt{2}"`, `"x = 5"`). Returns `None` for anything else (symbols, sets, unparseable).
pub fn eval_number(text: &str, cfg: &MathConfig) -> Option<f64> {
    parse_math(text, cfg).ok()?.as_number()
}

/// The accuracy reward for the `math` task: 1.0 when `pred` is equivalent to `gold`, 0.0 when it is
/// not, cannot be parsed, or the deadline passes; a [`Skip`] when `gold` cannot be parsed.
///
/// ```
/// use mixed_r1_reward::math::{math_accuracy, MathConfig};
/// let cfg = MathConfig::default();
/// assert_eq!(math_accuracy(r"\boxed{0.5}", r"\frac{1}{2}", &cfg), Ok(1.0));
/// assert_eq!(math_accuracy("x = 3", "3", &cfg), Ok(1.0));
/// assert_eq!(math_accuracy("(1, 2)", "(1, 2]", &cfg), Ok(0.0));
/// assert!(math_accuracy("5", "}{", &cfg).is_err());
/// ```
pub fn math_accuracy(pred: &str, gold: &str, cfg: &MathConfig) -> Accuracy {
    let mut budget = Budget::new(cfg.deadline_ms);
    let gold_v = match parse_with(gold, cfg, &mut budget) {
        Ok(v) => v,
        Err(e) => return Err(Skip(format!("math gold: {e}"))),
    };
    if let MathValue::Scalar(e) = &gold_v {
        if !e.has_symbols() {
            match eval::eval(&e.0, &[], &mut budget) {
                Ok(v) if v.is_nan() => {
                    return Err(Skip("math gold: not a number".to_string()));
                }
                Err(e) => return Err(Skip(format!("math gold: {e}"))),
                Ok(_) => {}
            }
        }
    }
    let Ok(pred_v) = parse_with(pred, cfg, &mut budget) else {
        return Ok(0.0);
    };
    match compare::equiv(&gold_v, &pred_v, cfg, &mut budget) {
        Ok(true) => Ok(1.0),
        _ => Ok(0.0),
    }
}

fn parse_with(text: &str, cfg: &MathConfig, budget: &mut Budget) -> Result<MathValue, MathError> {
    if text.len() > cfg.max_chars {
        return Err(MathError::TooLong);
    }
    let inner = strip_boxed(text);
    let toks = lexer::lex(inner, budget)?;
    let (seg, text_answer) = select_segment(inner, &toks, budget)?;
    if seg.is_empty() {
        return match text_answer {
            Some(t) if !t.is_empty() => Ok(MathValue::Text(t)),
            _ => Err(MathError::Empty),
        };
    }
    let node = Parser::new(inner, &seg, cfg.max_depth, budget).parse()?;
    shape(node, budget)
}

/// The content of the last `\boxed{...}` / `\fbox{...}`, or the whole text. One backward search
/// and one forward brace scan: linear. An unclosed box yields everything after it.
fn strip_boxed(text: &str) -> &str {
    let pos = match (text.rfind("\\boxed"), text.rfind("\\fbox")) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return text,
    };
    let kw = if text[pos..].starts_with("\\boxed") {
        6
    } else {
        5
    };
    let after = &text[pos + kw..];
    let trimmed = after.trim_start();
    if let Some(body) = trimmed.strip_prefix('{') {
        let mut depth = 1usize;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return &body[..i];
                    }
                }
                _ => {}
            }
        }
        body
    } else {
        // `\boxed 5`: the rest up to the next `$`.
        trimmed.split('$').next().unwrap_or(trimmed)
    }
}

/// Splits the tokens into sentence segments at words and punctuation, and returns the last one
/// that holds math. When none does, also returns the words as a text answer.
fn select_segment(
    src: &str,
    toks: &[Token],
    budget: &mut Budget,
) -> Result<(Vec<Token>, Option<String>), MathError> {
    // Words inside parentheses, `5 (dollars)`, go together with their parentheses.
    let mut keep = vec![true; toks.len()];
    let mut i = 0;
    while i < toks.len() {
        budget.tick()?;
        if toks[i].tok == Tok::LParen {
            let mut j = i + 1;
            while j < toks.len() && matches!(toks[j].tok, Tok::Word { sep: false }) {
                j += 1;
            }
            if j > i + 1 && j < toks.len() && toks[j].tok == Tok::RParen {
                keep[i..=j].iter_mut().for_each(|k| *k = false);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    let is_break = |t: &Token| matches!(t.tok, Tok::Break | Tok::Word { sep: false });
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    let mut words = Vec::new();
    for idx in 0..=toks.len() {
        let at_end = idx == toks.len();
        if !at_end {
            if !keep[idx] {
                continue;
            }
            if let Tok::Word { .. } = toks[idx].tok {
                words.push(idx);
            }
        }
        if at_end || is_break(&toks[idx]) {
            let seg = (start, idx);
            if segment_has_math(src, toks, &keep, seg) {
                best = Some(seg);
            }
            start = idx + 1;
        }
    }
    let Some((a, b)) = best else {
        let mut text = String::new();
        for &w in &words {
            if let Some(s) = src.get(toks[w].start..toks[w].end) {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&s.to_lowercase());
            }
        }
        return Ok((Vec::new(), Some(text)));
    };
    let mut seg: Vec<Token> = (a..b)
        .filter(|&k| keep[k])
        .map(|k| {
            let mut t = toks[k];
            if let Tok::Word { sep: true } = t.tok {
                t.tok = Tok::Comma;
            }
            t
        })
        .collect();
    // A function head `f(x) =` (symbols only in the parentheses) is the name of the answer, like
    // the `y` of `y = 2x + 1`.
    if seg.len() >= 5
        && seg[0].tok == Tok::Ident
        && seg[1].tok == Tok::LParen
        && !seg[1].space_before
    {
        let close = seg[2..]
            .iter()
            .position(|t| !matches!(t.tok, Tok::Ident | Tok::Comma))
            .map(|k| k + 2);
        if let Some(c) = close {
            if c > 2
                && seg[c].tok == Tok::RParen
                && seg.get(c + 1).map(|t| t.tok) == Some(Tok::Rel(Rel::Eq))
            {
                seg.drain(..=c + 1);
            }
        }
    }
    // Trim separators at the ends, and a leading `=` ("= 5").
    while seg
        .first()
        .is_some_and(|t| matches!(t.tok, Tok::Comma | Tok::Rel(Rel::Eq)))
    {
        seg.remove(0);
    }
    while seg.last().is_some_and(|t| t.tok == Tok::Comma) {
        seg.pop();
    }
    Ok((seg, None))
}

fn segment_has_math(src: &str, toks: &[Token], keep: &[bool], (a, b): (usize, usize)) -> bool {
    let mut live =
        (a..b).filter(|&k| keep[k] && !matches!(toks[k].tok, Tok::Comma | Tok::Word { .. }));
    let Some(first) = live.next() else {
        return false;
    };
    if live.next().is_none() && toks[first].tok == Tok::Ident {
        // A lone "I" or "a" before a word is English ("I hope", "a total of"), not an answer.
        let name = src.get(toks[first].start..toks[first].end).unwrap_or("");
        let word_before =
            a == 0 || matches!(toks[a - 1].tok, Tok::Word { sep: false } | Tok::Break);
        let word_after = toks
            .get(b)
            .is_some_and(|t| matches!(t.tok, Tok::Word { sep: false }));
        if matches!(name, "I" | "a" | "A") && word_before && word_after {
            return false;
        }
    }
    true
}

fn lone_symbol(n: &Node) -> bool {
    matches!(n, Node::Var(_))
}

fn has_vars(n: &Node) -> bool {
    let mut v = Vec::new();
    eval::collect_vars(n, &mut v);
    !v.is_empty()
}

/// Turns a parsed tree into the value comparison works on. Recursion follows the tree's
/// container nesting, which the parser bounds.
fn shape(node: Node, budget: &mut Budget) -> Result<MathValue, MathError> {
    budget.tick()?;
    let many = |items: Vec<Node>, budget: &mut Budget| -> Result<Vec<MathValue>, MathError> {
        items.into_iter().map(|n| shape(n, budget)).collect()
    };
    Ok(match node {
        Node::List(mut items) => {
            if items.len() == 1 {
                return shape(items.pop().unwrap_or(Node::Num(f64::NAN)), budget);
            }
            MathValue::List(many(items, budget)?)
        }
        Node::Set(items) => MathValue::Set(many(items, budget)?),
        Node::Union(items) => MathValue::Union(many(items, budget)?),
        Node::Bracket { open, close, items } => MathValue::Tuple {
            open: open as char,
            close: close as char,
            items: many(items, budget)?,
        },
        Node::Matrix(rows) => MathValue::Matrix(
            rows.into_iter()
                .map(|r| many(r, budget))
                .collect::<Result<_, _>>()?,
        ),
        Node::PlusMinus(a, b) => MathValue::Set(vec![
            MathValue::Scalar(Expr(Node::Sum(vec![
                (false, (*a).clone()),
                (false, (*b).clone()),
            ]))),
            MathValue::Scalar(Expr(Node::Sum(vec![(false, *a), (true, *b)]))),
        ]),
        Node::In(lhs, rhs) => {
            if !lone_symbol(&lhs) {
                return Err(MathError::Syntax("membership of a non-symbol".into()));
            }
            shape(*rhs, budget)?
        }
        Node::Rel(operands, ops) => shape_relation(operands, ops, budget)?,
        scalar => MathValue::Scalar(Expr(scalar)),
    })
}

fn shape_relation(
    mut operands: Vec<Node>,
    ops: Vec<Rel>,
    budget: &mut Budget,
) -> Result<MathValue, MathError> {
    let bad = || MathError::Syntax("unsupported relation".into());
    if ops.iter().all(|&o| o == Rel::Eq) {
        // `x = 5`, `2 + 3 = 5`, `x = y = 5`: the last right-hand side is the answer.
        let first = &operands[0];
        if lone_symbol(first) || !has_vars(first) || operands.len() > 2 {
            return shape(operands.pop().ok_or_else(bad)?, budget);
        }
        let rhs = operands.pop().ok_or_else(bad)?;
        let lhs = operands.pop().ok_or_else(bad)?;
        return Ok(MathValue::Equation(Expr(lhs), Expr(rhs)));
    }
    if ops.len() == 1 && ops[0] == Rel::Ne {
        let rhs = operands.pop().ok_or_else(bad)?;
        let lhs = operands.pop().ok_or_else(bad)?;
        return Ok(MathValue::NotEqual(Expr(lhs), Expr(rhs)));
    }
    if ops.iter().any(|&o| matches!(o, Rel::Eq | Rel::Ne)) {
        return Err(bad());
    }
    let less = |o: Rel| matches!(o, Rel::Lt | Rel::Le);
    let strict = |o: Rel| matches!(o, Rel::Lt | Rel::Gt);
    let inf = || Node::Num(f64::INFINITY);
    let ninf = || Node::Num(f64::NEG_INFINITY);
    let interval = |lo: Node, lo_open: bool, hi: Node, hi_open: bool| MathValue::Tuple {
        open: if lo_open { '(' } else { '[' },
        close: if hi_open { ')' } else { ']' },
        items: vec![MathValue::Scalar(Expr(lo)), MathValue::Scalar(Expr(hi))],
    };
    match (operands.len(), ops.as_slice()) {
        (2, &[op]) => {
            let rhs = operands.pop().ok_or_else(bad)?;
            let lhs = operands.pop().ok_or_else(bad)?;
            // Normalise to `small op big`.
            let (small, big) = if less(op) { (lhs, rhs) } else { (rhs, lhs) };
            if lone_symbol(&small) && !has_vars(&big) {
                return Ok(interval(ninf(), true, big, strict(op)));
            }
            if lone_symbol(&big) && !has_vars(&small) {
                return Ok(interval(small, strict(op), inf(), true));
            }
            Ok(MathValue::Inequality {
                lo: Expr(small),
                hi: Expr(big),
                strict: strict(op),
            })
        }
        (3, &[o1, o2]) if less(o1) == less(o2) && lone_symbol(&operands[1]) => {
            let c = operands.pop().ok_or_else(bad)?;
            let _x = operands.pop();
            let a = operands.pop().ok_or_else(bad)?;
            if less(o1) {
                Ok(interval(a, strict(o1), c, strict(o2)))
            } else {
                Ok(interval(c, strict(o2), a, strict(o1)))
            }
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(p: &str, g: &str) -> Accuracy {
        math_accuracy(p, g, &MathConfig::default())
    }

    #[test]
    fn boxed_is_stripped() {
        assert_eq!(strip_boxed(r"so \boxed{\frac{1}{2}} done"), r"\frac{1}{2}");
        assert_eq!(strip_boxed(r"\boxed{1} then \boxed{2}"), "2");
        assert_eq!(strip_boxed(r"\boxed{{1}"), "{1}");
        assert_eq!(strip_boxed("plain"), "plain");
        assert_eq!(strip_boxed(r"$\boxed 7$"), "7");
    }

    #[test]
    fn numbers_and_fractions() {
        assert_eq!(eval_number(r"\frac12", &MathConfig::default()), Some(0.5));
        assert_eq!(eval_number(r"\frac{1}2", &MathConfig::default()), Some(0.5));
        assert_eq!(eval_number("1,000", &MathConfig::default()), Some(1000.0));
        assert_eq!(eval_number("1{,}000", &MathConfig::default()), Some(1000.0));
        assert_eq!(
            eval_number(r"1\frac{1}{2}", &MathConfig::default()),
            Some(1.5)
        );
        assert_eq!(eval_number("2 1/2", &MathConfig::default()), Some(2.5));
        assert_eq!(eval_number("2.5e3", &MathConfig::default()), Some(2500.0));
        assert_eq!(eval_number(r"\log_2 8", &MathConfig::default()), Some(3.0));
    }

    #[test]
    fn text_answers() {
        assert_eq!(acc(r"\text{Evelyn}", "evelyn"), Ok(1.0));
        assert_eq!(acc("Bob", r"\text{Evelyn}"), Ok(0.0));
    }

    #[test]
    fn deadline_zero_never_expires() {
        let mut b = Budget::new(0);
        for _ in 0..10_000 {
            assert!(b.tick().is_ok());
        }
    }

    #[test]
    fn expired_budget_times_out() {
        let mut b = Budget {
            deadline: Some(Instant::now()),
            ticks: 0,
        };
        let r: Result<(), MathError> = (0..1000).try_for_each(|_| b.tick());
        assert_eq!(r, Err(MathError::Timeout));
    }

    #[test]
    fn segment_selection() {
        assert_eq!(
            acc("The final answer is $5$. I hope it is correct.", "5"),
            Ok(1.0)
        );
        assert_eq!(acc("5 (dollars)", "5"), Ok(1.0));
        assert_eq!(acc("x = 2 or x = 3", r"\{2, 3\}"), Ok(1.0));
    }
}
