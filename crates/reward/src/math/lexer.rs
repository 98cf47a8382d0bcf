//! Tokenizer for LaTeX and plain-text math answers.
//!
//! The lexer does most of the normalisation in one linear pass: it drops what never changes the
//! value (`\left`, `\right`, spacing commands, `$` delimiters, `\%`, `^\circ`, `\$`), turns unicode
//! operators into their ASCII meaning, reads `\text{...}` contents as words, and marks words that
//! separate alternatives (`and`, `or`). It never looks ahead more than a few bytes, so its cost is
//! linear in the input, and it ticks the shared [`Budget`] once per token.

use super::{Budget, MathError};

/// Relational operators; `Eq` also covers `\approx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Named one-argument functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Log,
    Exp,
    Abs,
    Floor,
    Ceil,
    Fact,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    /// A number literal; `int` when it was written with digits only (no point, no exponent).
    Num {
        value: f64,
        int: bool,
    },
    /// A symbol: a single letter, a Greek letter, or an unknown command. The name is the token's
    /// source span.
    Ident,
    /// A word of text (units, "The answer is", ...). `sep` for "and"/"or", which separate the items
    /// of a list.
    Word {
        sep: bool,
    },
    Const(f64),
    Func(Func),
    Frac,
    Sqrt,
    Binom,
    Plus,
    Minus,
    Pm,
    Times,
    Div,
    Caret,
    Underscore,
    Bang,
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    SetOpen,
    SetClose,
    Pipe,
    LFloor,
    RFloor,
    LCeil,
    RCeil,
    Comma,
    Rel(Rel),
    Cup,
    In,
    MatOpen,
    MatClose,
    Amp,
    RowSep,
    EmptySet,
    /// Punctuation that ends a sentence-level segment (`:`, `.` not in a number, `?`, arrows).
    Break,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    /// White space (or a dropped command) separates this token from the previous one.
    pub space_before: bool,
}

/// What a `{` opened, so that its `}` knows what to emit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    /// A plain group: `{` and `}` tokens are emitted.
    Normal,
    /// A font or wrapper command whose braces carry no meaning of their own (`\mathbf{x}`).
    Transparent,
    /// `\text{...}`: letters become words, braces vanish.
    Text,
    /// `\hspace{...}`, `\label{...}`: everything inside vanishes.
    Drop,
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    out: Vec<Token>,
    groups: Vec<Group>,
    text_depth: usize,
    drop_depth: usize,
    /// Open `(`, `[`, `\{` minus closes: thousands separators are only read outside brackets,
    /// where `(1,234)` is a pair rather than a number.
    bracket_depth: usize,
    space: bool,
    num_buf: String,
}

pub(crate) fn lex(src: &str, budget: &mut Budget) -> Result<Vec<Token>, MathError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        i: 0,
        out: Vec::new(),
        groups: Vec::new(),
        text_depth: 0,
        drop_depth: 0,
        bracket_depth: 0,
        space: false,
        num_buf: String::new(),
    };
    while lx.i < lx.b.len() {
        budget.tick()?;
        lx.step();
    }
    Ok(lx.out)
}

fn is_word_like_pair(w: &str) -> bool {
    // Two-letter runs are read as a product of two variables ("xy") unless they are one of these
    // units or common English words.
    const PAIRS: &[&str] = &[
        "cm", "mm", "km", "kg", "mg", "ml", "ft", "in", "lb", "oz", "hr", "yd", "mi", "am", "pm",
        "sq", "is", "be", "so", "to", "of", "at", "by", "we", "it", "an", "as", "on", "if", "no",
        "up", "us", "he", "do", "go", "my", "or", "me", "ok", "mL", "kW", "Hz", "cc",
    ];
    PAIRS.contains(&w)
}

fn greek(name: &str) -> bool {
    const GREEK: &[&str] = &[
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "varepsilon",
        "zeta",
        "eta",
        "theta",
        "vartheta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "rho",
        "varrho",
        "sigma",
        "varsigma",
        "tau",
        "upsilon",
        "phi",
        "varphi",
        "chi",
        "psi",
        "omega",
        "Gamma",
        "Delta",
        "Theta",
        "Lambda",
        "Xi",
        "Sigma",
        "Upsilon",
        "Phi",
        "Psi",
        "Omega",
    ];
    GREEK.contains(&name)
}

fn func_named(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "cot" => Func::Cot,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "log" => Func::Log,
        "exp" => Func::Exp,
        "abs" => Func::Abs,
        _ => return None,
    })
}

impl<'a> Lexer<'a> {
    fn emit(&mut self, tok: Tok, start: usize, end: usize) {
        if self.drop_depth > 0 {
            return;
        }
        match tok {
            Tok::LParen | Tok::LBrack | Tok::SetOpen => self.bracket_depth += 1,
            Tok::RParen | Tok::RBrack | Tok::SetClose => {
                self.bracket_depth = self.bracket_depth.saturating_sub(1)
            }
            _ => {}
        }
        self.out.push(Token {
            tok,
            start,
            end,
            space_before: self.space,
        });
        self.space = false;
    }

    fn peek_at(&self, j: usize) -> u8 {
        self.b.get(j).copied().unwrap_or(0)
    }

    fn skip_spaces_from(&self, mut j: usize) -> usize {
        while j < self.b.len() && self.b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    }

    fn rest_starts_with(&self, j: usize, pat: &str) -> bool {
        self.b
            .get(j..)
            .is_some_and(|r| r.starts_with(pat.as_bytes()))
    }

    /// After `^`: a degree sign in any of its spellings. Returns the index just past it.
    fn degree_after(&self, j: usize) -> Option<usize> {
        let j = self.skip_spaces_from(j);
        for pat in [
            "\\circ",
            "{\\circ}",
            "{ \\circ }",
            "{\\circ }",
            "{ \\circ}",
            "°",
            "{°}",
        ] {
            if self.rest_starts_with(j, pat) {
                let end = j + pat.len();
                // `\circle` is not a degree sign.
                if pat == "\\circ" && self.peek_at(end).is_ascii_alphabetic() {
                    return None;
                }
                return Some(end);
            }
        }
        None
    }

    fn step(&mut self) {
        let start = self.i;
        let c = self.b[self.i];
        if c.is_ascii_whitespace() || c == b'~' {
            self.i += 1;
            self.space = true;
            return;
        }
        if c.is_ascii_digit() || (c == b'.' && self.peek_at(self.i + 1).is_ascii_digit()) {
            self.number();
            return;
        }
        if c.is_ascii_alphabetic() {
            self.letters();
            return;
        }
        if c == b'\\' {
            self.command();
            return;
        }
        if c >= 0x80 {
            self.unicode();
            return;
        }
        self.i += 1;
        let tok = match c {
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            b'*' => {
                if self.peek_at(self.i) == b'*' {
                    self.i += 1;
                    Tok::Caret
                } else {
                    Tok::Times
                }
            }
            b'/' => Tok::Div,
            b'^' => {
                if let Some(end) = self.degree_after(self.i) {
                    self.i = end;
                    self.space = true;
                    return;
                }
                Tok::Caret
            }
            b'_' => Tok::Underscore,
            b'!' => {
                if self.peek_at(self.i) == b'=' {
                    self.i += 1;
                    Tok::Rel(Rel::Ne)
                } else {
                    Tok::Bang
                }
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b'{' => {
                // `{,}` is the LaTeX way to write a thousands comma; numbers consume it, so here it
                // is a stray one: treat like a comma.
                if self.rest_starts_with(self.i, ",}") {
                    self.i += 2;
                    Tok::Comma
                } else {
                    self.open_group(Group::Normal);
                    return;
                }
            }
            b'}' => {
                self.close_group(start);
                return;
            }
            b'|' => Tok::Pipe,
            b',' | b';' => Tok::Comma,
            b'=' => {
                if self.peek_at(self.i) == b'>' {
                    self.i += 1;
                    Tok::Break
                } else {
                    if self.peek_at(self.i) == b'=' {
                        self.i += 1;
                    }
                    Tok::Rel(Rel::Eq)
                }
            }
            b'<' => {
                if self.peek_at(self.i) == b'=' {
                    self.i += 1;
                    Tok::Rel(Rel::Le)
                } else {
                    Tok::Rel(Rel::Lt)
                }
            }
            b'>' => {
                if self.peek_at(self.i) == b'=' {
                    self.i += 1;
                    Tok::Rel(Rel::Ge)
                } else {
                    Tok::Rel(Rel::Gt)
                }
            }
            b'&' => Tok::Amp,
            b'%' | b'$' | b'\'' | b'"' | b'`' => {
                self.space = true;
                return;
            }
            _ => Tok::Break,
        };
        self.emit(tok, start, self.i);
    }

    fn open_group(&mut self, g: Group) {
        // `{` was consumed by the caller.
        let start = self.i - 1;
        match g {
            Group::Normal => self.emit(Tok::LBrace, start, self.i),
            Group::Text => self.text_depth += 1,
            Group::Drop => self.drop_depth += 1,
            Group::Transparent => {}
        }
        self.groups.push(g);
    }

    fn close_group(&mut self, start: usize) {
        match self.groups.pop() {
            Some(Group::Normal) | None => self.emit(Tok::RBrace, start, self.i),
            Some(Group::Text) => {
                self.text_depth = self.text_depth.saturating_sub(1);
                self.space = true;
                if self.text_depth == 0 && self.drop_depth == 0 {
                    self.skip_unit_exponent();
                }
            }
            Some(Group::Drop) => {
                self.drop_depth = self.drop_depth.saturating_sub(1);
                self.space = true;
            }
            Some(Group::Transparent) => {}
        }
    }

    /// A `{` (after optional spaces) follows the command just read: open a group of kind `g`.
    /// Returns false when there is no brace (the command then applies to nothing).
    fn try_open(&mut self, g: Group) -> bool {
        let j = self.skip_spaces_from(self.i);
        if self.peek_at(j) == b'{' {
            self.i = j + 1;
            self.open_group(g);
            true
        } else {
            false
        }
    }

    fn number(&mut self) {
        let start = self.i;
        let b = self.b;
        let n = b.len();
        self.num_buf.clear();
        let mut int = true;
        let mut j = self.i;
        while j < n && b[j].is_ascii_digit() {
            j += 1;
        }
        let lead = j - start;
        self.num_buf.push_str(&self.src[start..j]);
        // Thousands separators: `1,000` or `1{,}000`, first group 1-3 digits not starting with 0,
        // each later group exactly three digits, and only outside brackets.
        if (1..=3).contains(&lead) && b[start] != b'0' && self.bracket_depth == 0 {
            loop {
                let sep_len = if self.peek_at(j) == b',' {
                    1
                } else if self.rest_starts_with(j, "{,}") {
                    3
                } else if self.rest_starts_with(j, "\\,") {
                    2
                } else {
                    0
                };
                if sep_len == 0 {
                    break;
                }
                let g = j + sep_len;
                let three = (0..3).all(|k| self.peek_at(g + k).is_ascii_digit());
                if !three || self.peek_at(g + 3).is_ascii_digit() {
                    break;
                }
                self.num_buf.push_str(&self.src[g..g + 3]);
                j = g + 3;
            }
        }
        if self.peek_at(j) == b'.' && self.peek_at(j + 1).is_ascii_digit() {
            int = false;
            let f = j;
            j += 1;
            while j < n && b[j].is_ascii_digit() {
                j += 1;
            }
            self.num_buf.push_str(&self.src[f..j]);
        }
        // Scientific notation: `1e5`, `2.5E-3`; a bare `2e` stays 2 times e.
        if matches!(self.peek_at(j), b'e' | b'E') {
            let mut k = j + 1;
            if matches!(self.peek_at(k), b'+' | b'-') {
                k += 1;
            }
            if self.peek_at(k).is_ascii_digit() && !self.peek_at(j + 1).is_ascii_alphabetic() {
                let e = j;
                while k < n && b[k].is_ascii_digit() {
                    k += 1;
                }
                // `2e3x` would be odd but harmless; `2ex` is not an exponent (checked above).
                self.num_buf.push_str(&self.src[e..k]);
                int = false;
                j = k;
            }
        }
        self.i = j;
        let value = if self.num_buf.starts_with('.') {
            format!("0{}", self.num_buf).parse::<f64>()
        } else {
            self.num_buf.parse::<f64>()
        }
        .unwrap_or(f64::NAN);
        self.emit(Tok::Num { value, int }, start, j);
    }

    fn letters(&mut self) {
        let start = self.i;
        let mut j = self.i;
        while j < self.b.len() && self.b[j].is_ascii_alphabetic() {
            j += 1;
        }
        self.i = j;
        let w = &self.src[start..j];
        let lower_sep = w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or");
        if self.text_depth > 0 {
            self.emit(Tok::Word { sep: lower_sep }, start, j);
            return;
        }
        if lower_sep {
            self.emit(Tok::Word { sep: true }, start, j);
            return;
        }
        if w.len() == 1 {
            self.emit(Tok::Ident, start, j);
            return;
        }
        if let Some(f) = func_named(w) {
            self.emit(Tok::Func(f), start, j);
            return;
        }
        match w {
            "sqrt" => return self.emit(Tok::Sqrt, start, j),
            "pi" => return self.emit(Tok::Const(std::f64::consts::PI), start, j),
            "inf" | "infty" | "infinity" | "Infinity" | "oo" => {
                return self.emit(Tok::Const(f64::INFINITY), start, j)
            }
            _ => {}
        }
        if w.len() == 2 && !is_word_like_pair(w) {
            self.emit(Tok::Ident, start, start + 1);
            self.emit(Tok::Ident, start + 1, j);
            return;
        }
        self.emit(Tok::Word { sep: false }, start, j);
        self.skip_unit_exponent();
    }

    /// A unit's exponent (`cm^2`, `\text{m}^{3}`) goes with the unit.
    fn skip_unit_exponent(&mut self) {
        let k = self.skip_spaces_from(self.i);
        if self.peek_at(k) == b'^' {
            let k = self.skip_spaces_from(k + 1);
            if self.peek_at(k).is_ascii_digit() {
                self.i = k + 1;
            } else if self.peek_at(k) == b'{'
                && self.peek_at(k + 1).is_ascii_digit()
                && self.peek_at(k + 2) == b'}'
            {
                self.i = k + 3;
            }
        }
    }

    fn command(&mut self) {
        let start = self.i;
        let b = self.b;
        let mut j = self.i + 1;
        if j >= b.len() {
            self.i = j;
            return;
        }
        if !b[j].is_ascii_alphabetic() {
            // One-character commands.
            let c = b[j];
            self.i = j + 1;
            if c >= 0x80 {
                // A backslash before a multi-byte character: step back to its boundary so the
                // character itself is read next.
                self.i = j;
                return;
            }
            let tok = match c {
                b'{' => Tok::SetOpen,
                b'}' => Tok::SetClose,
                b'\\' => Tok::RowSep,
                b'|' => Tok::Pipe,
                b',' | b'!' | b';' | b':' | b' ' | b'>' | b'%' | b'$' | b'(' | b')' | b'['
                | b']' | b'/' | b'&' | b'#' | b'_' => {
                    // Spacing, escaped currency/percent, and display-math delimiters.
                    self.space = true;
                    return;
                }
                _ => {
                    self.space = true;
                    return;
                }
            };
            self.emit(tok, start, self.i);
            return;
        }
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let name = &self.src[start + 1..j];
        self.i = j;
        let tok = match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => Tok::Frac,
            "sqrt" => Tok::Sqrt,
            "binom" | "dbinom" | "tbinom" => Tok::Binom,
            "times" | "cdot" | "ast" | "cross" => Tok::Times,
            "div" => Tok::Div,
            "pm" | "mp" => Tok::Pm,
            "cup" => Tok::Cup,
            "in" => Tok::In,
            "le" | "leq" | "leqslant" => Tok::Rel(Rel::Le),
            "ge" | "geq" | "geqslant" => Tok::Rel(Rel::Ge),
            "lt" => Tok::Rel(Rel::Lt),
            "gt" => Tok::Rel(Rel::Gt),
            "ne" | "neq" => Tok::Rel(Rel::Ne),
            "approx" | "equiv" | "simeq" => Tok::Rel(Rel::Eq),
            "pi" => Tok::Const(std::f64::consts::PI),
            "infty" | "infinity" => Tok::Const(f64::INFINITY),
            "lbrace" => Tok::SetOpen,
            "rbrace" => Tok::SetClose,
            "lvert" | "rvert" | "vert" | "Vert" | "lVert" | "rVert" => Tok::Pipe,
            "lfloor" => Tok::LFloor,
            "rfloor" => Tok::RFloor,
            "lceil" => Tok::LCeil,
            "rceil" => Tok::RCeil,
            "langle" => Tok::LParen,
            "rangle" => Tok::RParen,
            "emptyset" | "varnothing" => Tok::EmptySet,
            "to" | "rightarrow" | "Rightarrow" | "implies" | "longrightarrow" | "iff"
            | "therefore" => Tok::Break,
            "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "biggl" | "biggr" | "Biggl"
            | "Biggr" | "big" | "Big" | "bigg" | "Bigg" | "middle" => {
                // `\left.` and `\right.` are invisible delimiters.
                if self.peek_at(self.i) == b'.' {
                    self.i += 1;
                }
                self.space = true;
                return;
            }
            "displaystyle" | "textstyle" | "scriptstyle" | "limits" | "nolimits" | "quad"
            | "qquad" | "circ" | "degree" | "dots" | "ldots" | "cdots" | "dotsc" | "dotsb"
            | "not" => {
                self.space = true;
                return;
            }
            "text" | "textrm" | "textnormal" | "textbf" | "textit" | "textsf" | "texttt"
            | "mbox" | "mathrm" | "emph" | "textup" => {
                self.try_open(Group::Text);
                self.space = true;
                return;
            }
            "mathbf" | "mathit" | "boldsymbol" | "bm" | "mathbb" | "mathcal" | "mathsf"
            | "operatorname" | "boxed" | "fbox" | "overline" | "hat" | "vec" | "bar"
            | "widehat" | "tilde" | "mathfrak" | "underline" => {
                self.try_open(Group::Transparent);
                return;
            }
            "hspace" | "vspace" | "label" | "tag" | "phantom" | "hphantom" | "vphantom" => {
                self.try_open(Group::Drop);
                self.space = true;
                return;
            }
            "begin" | "end" => {
                let tok = self.environment(name == "begin");
                if let Some(t) = tok {
                    self.emit(t, start, self.i);
                }
                self.space = true;
                return;
            }
            _ => {
                if let Some(f) = func_named(name) {
                    Tok::Func(f)
                } else if self.text_depth > 0 {
                    Tok::Word { sep: false }
                } else if greek(name) {
                    Tok::Ident
                } else {
                    // An unknown command is kept as an opaque symbol: two answers with the same
                    // unknown symbol can still match, and it never equals a number.
                    Tok::Ident
                }
            }
        };
        self.emit(tok, start, self.i);
    }

    /// `\begin{name}` / `\end{name}`: matrices become bracket tokens, other environments vanish.
    /// The name is read with a bounded scan so that an unclosed `\begin{` costs O(1).
    fn environment(&mut self, begin: bool) -> Option<Tok> {
        let j = self.skip_spaces_from(self.i);
        if self.peek_at(j) != b'{' {
            return None;
        }
        let mut k = j + 1;
        while k < self.b.len() && k < j + 24 && self.b[k] != b'}' {
            k += 1;
        }
        if self.peek_at(k) != b'}' {
            return None;
        }
        let name = self.src.get(j + 1..k).unwrap_or("");
        self.i = k + 1;
        if name.ends_with("matrix") || name == "array" {
            if begin && name == "array" {
                // Skip the column spec `{cc}` with a bounded scan.
                let a = self.skip_spaces_from(self.i);
                if self.peek_at(a) == b'{' {
                    let mut m = a + 1;
                    while m < self.b.len() && m < a + 32 && self.b[m] != b'}' {
                        m += 1;
                    }
                    if self.peek_at(m) == b'}' {
                        self.i = m + 1;
                    }
                }
            }
            return Some(if begin { Tok::MatOpen } else { Tok::MatClose });
        }
        None
    }

    fn unicode(&mut self) {
        let start = self.i;
        let ch = self.src[start..].chars().next().unwrap_or('\u{FFFD}');
        self.i = start + ch.len_utf8();
        let tok = match ch {
            'π' => Tok::Const(std::f64::consts::PI),
            '∞' => Tok::Const(f64::INFINITY),
            '×' | '⋅' | '·' | '∙' | '∗' => Tok::Times,
            '÷' | '∕' => Tok::Div,
            '−' | '–' | '—' | '‐' | '‑' => Tok::Minus,
            '√' => Tok::Sqrt,
            '±' | '∓' => Tok::Pm,
            '≤' | '⩽' => Tok::Rel(Rel::Le),
            '≥' | '⩾' => Tok::Rel(Rel::Ge),
            '≠' => Tok::Rel(Rel::Ne),
            '≈' => Tok::Rel(Rel::Eq),
            '∪' => Tok::Cup,
            '∈' => Tok::In,
            '∅' => Tok::EmptySet,
            '，' | '、' | '；' => Tok::Comma,
            '（' => Tok::LParen,
            '）' => Tok::RParen,
            '°' | '\u{00A0}' | '\u{2009}' | '\u{202F}' | '\u{200B}' | '’' | '‘' | '“' | '”'
            | '€' | '£' | '¥' | '′' => {
                self.space = true;
                return;
            }
            '²' | '³' => {
                let v = if ch == '²' { 2.0 } else { 3.0 };
                self.emit(Tok::Caret, start, start);
                self.emit(
                    Tok::Num {
                        value: v,
                        int: true,
                    },
                    start,
                    self.i,
                );
                return;
            }
            c if c.is_alphabetic() => Tok::Word { sep: false },
            _ => Tok::Break,
        };
        self.emit(tok, start, self.i);
    }
}
