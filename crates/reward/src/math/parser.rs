//! Recursive-descent parser from tokens to an expression tree.
//!
//! Sums and products are flat vectors, so a long chain `1+1+...+1` builds a shallow tree; only
//! real nesting (groups, unary signs, powers, function arguments) recurses, and every such level
//! counts against `max_depth`. The tree therefore has bounded depth, which keeps evaluation and
//! even `Drop` of the tree safe from stack overflow.

use super::lexer::{Func, Rel, Tok, Token};
use super::{Budget, MathError};
use mixed_r1_stable_hash::Fnv64;

/// One node of a parsed answer. Scalar nodes evaluate to numbers; the others (brackets, sets,
/// lists, relations, matrices) only appear at the top of an answer and are turned into
/// [`super::MathValue`]s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Num(f64),
    /// A free symbol, identified by a hash of its normalised name.
    Var(u64),
    /// Terms with a `negated` flag.
    Sum(Vec<(bool, Node)>),
    /// Factors with a `divide` flag.
    Prod(Vec<(bool, Node)>),
    Neg(Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Call(Func, Box<Node>),
    /// `log` with an explicit base: (base, argument).
    Log(Box<Node>, Box<Node>),
    /// n-th root: (index, radicand).
    Root(Box<Node>, Box<Node>),
    Binom(Box<Node>, Box<Node>),
    /// `a \pm b`.
    PlusMinus(Box<Node>, Box<Node>),
    Bracket {
        open: u8,
        close: u8,
        items: Vec<Node>,
    },
    Set(Vec<Node>),
    List(Vec<Node>),
    Union(Vec<Node>),
    /// A chain `a op b op c ...`: operands and the operators between them.
    Rel(Vec<Node>, Vec<Rel>),
    In(Box<Node>, Box<Node>),
    Matrix(Vec<Vec<Node>>),
}

/// FNV-1a over the bytes of a name, white space ignored, so `x_{1}` and `x_{ 1 }` agree.
pub(crate) fn name_hash(seed: u64, s: &str) -> u64 {
    let mut h = if seed == 0 {
        Fnv64::new()
    } else {
        Fnv64::from_state(seed)
    };
    for &b in s.as_bytes() {
        if b.is_ascii_whitespace() || b == b'{' || b == b'}' {
            continue;
        }
        h.byte(b);
    }
    h.finish()
}

pub(crate) struct Parser<'a, 'b> {
    src: &'a str,
    toks: &'a [Token],
    pos: usize,
    /// The rest of a digit run split for a single-character argument (`\frac12`).
    pending: Option<Token>,
    depth: usize,
    max_depth: usize,
    abs_depth: usize,
    budget: &'b mut Budget,
}

type R = Result<Node, MathError>;

fn syntax(msg: &str) -> MathError {
    MathError::Syntax(msg.to_string())
}

impl<'a, 'b> Parser<'a, 'b> {
    pub(crate) fn new(
        src: &'a str,
        toks: &'a [Token],
        max_depth: usize,
        budget: &'b mut Budget,
    ) -> Self {
        Parser {
            src,
            toks,
            pos: 0,
            pending: None,
            depth: 0,
            max_depth,
            abs_depth: 0,
            budget,
        }
    }

    /// Parses the whole token slice as one answer.
    pub(crate) fn parse(mut self) -> R {
        if self.toks.is_empty() {
            return Err(MathError::Empty);
        }
        let n = self.list()?;
        if self.peek().is_some() {
            return Err(syntax("unexpected token"));
        }
        Ok(n)
    }

    fn peek(&self) -> Option<Tok> {
        match self.pending {
            Some(t) => Some(t.tok),
            None => self.toks.get(self.pos).map(|t| t.tok),
        }
    }

    fn peek_token(&self) -> Option<Token> {
        self.pending.or_else(|| self.toks.get(self.pos).copied())
    }

    fn peek_at(&self, k: usize) -> Option<Token> {
        if self.pending.is_some() {
            return None;
        }
        self.toks.get(self.pos + k).copied()
    }

    fn bump(&mut self) -> Option<Token> {
        if let Some(t) = self.pending.take() {
            return Some(t);
        }
        let t = self.toks.get(self.pos).copied();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: Tok) -> bool {
        if self.peek() == Some(tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), MathError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(syntax(what))
        }
    }

    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(MathError::TooDeep);
        }
        self.budget.tick()
    }

    fn nested<F: FnOnce(&mut Self) -> R>(&mut self, f: F) -> R {
        self.enter()?;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn list(&mut self) -> R {
        let first = self.union()?;
        if self.peek() != Some(Tok::Comma) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(Tok::Comma) {
            if self.peek().is_none_or(is_closer) {
                break;
            }
            items.push(self.union()?);
            self.budget.tick()?;
        }
        Ok(Node::List(items))
    }

    /// Comma-separated items up to (not including) a closing token; empty allowed.
    fn items(&mut self) -> Result<Vec<Node>, MathError> {
        let mut items = Vec::new();
        if self.peek().is_none_or(is_closer) {
            return Ok(items);
        }
        loop {
            items.push(self.union()?);
            self.budget.tick()?;
            if !self.eat(Tok::Comma) {
                break;
            }
            if self.peek().is_none_or(is_closer) {
                break;
            }
        }
        Ok(items)
    }

    fn union(&mut self) -> R {
        let first = self.relation()?;
        if self.peek() != Some(Tok::Cup) {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.eat(Tok::Cup) {
            parts.push(self.relation()?);
            self.budget.tick()?;
        }
        Ok(Node::Union(parts))
    }

    fn relation(&mut self) -> R {
        let first = self.sum()?;
        if self.eat(Tok::In) {
            let rhs = self.sum()?;
            return Ok(Node::In(Box::new(first), Box::new(rhs)));
        }
        let mut operands = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(op)) = self.peek() {
            self.bump();
            ops.push(op);
            operands.push(self.sum()?);
            self.budget.tick()?;
        }
        if ops.is_empty() {
            Ok(operands.pop().unwrap_or(Node::Num(f64::NAN)))
        } else {
            Ok(Node::Rel(operands, ops))
        }
    }

    fn sum(&mut self) -> R {
        let mut terms = vec![(false, self.term()?)];
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.bump();
                    terms.push((false, self.term()?));
                }
                Some(Tok::Minus) => {
                    self.bump();
                    terms.push((true, self.term()?));
                }
                Some(Tok::Pm) => {
                    self.bump();
                    let rest = self.nested(|p| p.sum())?;
                    return Ok(Node::PlusMinus(Box::new(flat_sum(terms)), Box::new(rest)));
                }
                _ => break,
            }
            self.budget.tick()?;
        }
        Ok(flat_sum(terms))
    }

    fn starts_implicit(&self, t: Tok) -> bool {
        match t {
            Tok::Num { .. }
            | Tok::Ident
            | Tok::Const(_)
            | Tok::Func(_)
            | Tok::Frac
            | Tok::Sqrt
            | Tok::Binom
            | Tok::LParen
            | Tok::LBrace
            | Tok::LFloor
            | Tok::LCeil => true,
            Tok::Pipe => self.abs_depth == 0,
            _ => false,
        }
    }

    fn term(&mut self) -> R {
        let mut factors = vec![(false, self.unary()?)];
        loop {
            match self.peek() {
                Some(Tok::Times) => {
                    self.bump();
                    factors.push((false, self.unary()?));
                }
                Some(Tok::Div) => {
                    self.bump();
                    factors.push((true, self.unary()?));
                }
                Some(t) if self.starts_implicit(t) => factors.push((false, self.power()?)),
                _ => break,
            }
            self.budget.tick()?;
        }
        Ok(flat_prod(factors))
    }

    fn unary(&mut self) -> R {
        self.nested(|p| match p.peek() {
            Some(Tok::Minus) => {
                p.bump();
                Ok(negate(p.unary()?))
            }
            Some(Tok::Plus) => {
                p.bump();
                p.unary()
            }
            Some(Tok::Pm) => {
                p.bump();
                let v = p.unary()?;
                Ok(Node::PlusMinus(Box::new(Node::Num(0.0)), Box::new(v)))
            }
            _ => p.power(),
        })
    }

    fn power(&mut self) -> R {
        let base = self.postfix()?;
        if self.eat(Tok::Caret) {
            let exp = self.unary()?;
            return Ok(Node::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> R {
        let mut node = self.primary()?;
        let mut bangs = 0;
        while self.eat(Tok::Bang) {
            bangs += 1;
            if bangs > 2 {
                return Err(syntax("too many factorials"));
            }
            node = Node::Call(Func::Fact, Box::new(node));
        }
        Ok(node)
    }

    fn primary(&mut self) -> R {
        self.nested(|p| p.primary_inner())
    }

    fn primary_inner(&mut self) -> R {
        let Some(t) = self.bump() else {
            return Err(syntax("unexpected end"));
        };
        match t.tok {
            Tok::Num { value, int } => {
                if int {
                    if let Some(v) = self.mixed_number(value)? {
                        return Ok(Node::Num(v));
                    }
                }
                Ok(Node::Num(value))
            }
            Tok::Ident => self.symbol(t),
            Tok::Const(v) => Ok(Node::Num(v)),
            Tok::Func(f) => self.function(f),
            Tok::Frac => {
                let a = self.arg()?;
                let b = self.arg()?;
                Ok(Node::Prod(vec![(false, a), (true, b)]))
            }
            Tok::Binom => {
                let a = self.arg()?;
                let b = self.arg()?;
                Ok(Node::Binom(Box::new(a), Box::new(b)))
            }
            Tok::Sqrt => {
                let index = if self.eat(Tok::LBrack) {
                    let i = self.sum()?;
                    self.expect(Tok::RBrack, "unclosed root index")?;
                    i
                } else {
                    Node::Num(2.0)
                };
                let a = self.arg()?;
                Ok(Node::Root(Box::new(index), Box::new(a)))
            }
            Tok::LParen | Tok::LBrack => {
                let open = if t.tok == Tok::LParen { b'(' } else { b'[' };
                let items = self.items()?;
                let trailing_comma = self.pos > 0
                    && self.pending.is_none()
                    && self.toks.get(self.pos - 1).map(|t| t.tok) == Some(Tok::Comma);
                let close = match self.bump().map(|t| t.tok) {
                    Some(Tok::RParen) => b')',
                    Some(Tok::RBrack) => b']',
                    _ => return Err(syntax("unclosed bracket")),
                };
                if items.len() == 1 && !trailing_comma {
                    let mut items = items;
                    return Ok(items.pop().unwrap_or(Node::Num(f64::NAN)));
                }
                Ok(Node::Bracket { open, close, items })
            }
            Tok::LBrace => {
                if self.eat(Tok::RBrace) {
                    return Err(syntax("empty group"));
                }
                let inner = self.list()?;
                self.expect(Tok::RBrace, "unclosed brace")?;
                Ok(inner)
            }
            Tok::SetOpen => {
                let items = self.items()?;
                self.expect(Tok::SetClose, "unclosed set")?;
                Ok(Node::Set(items))
            }
            Tok::EmptySet => Ok(Node::Set(Vec::new())),
            Tok::Pipe => {
                self.abs_depth += 1;
                let inner = self.sum();
                self.abs_depth -= 1;
                let inner = inner?;
                self.expect(Tok::Pipe, "unclosed absolute value")?;
                Ok(Node::Call(Func::Abs, Box::new(inner)))
            }
            Tok::LFloor => {
                let inner = self.sum()?;
                self.expect(Tok::RFloor, "unclosed floor")?;
                Ok(Node::Call(Func::Floor, Box::new(inner)))
            }
            Tok::LCeil => {
                let inner = self.sum()?;
                self.expect(Tok::RCeil, "unclosed ceiling")?;
                Ok(Node::Call(Func::Ceil, Box::new(inner)))
            }
            Tok::MatOpen => self.matrix(),
            _ => Err(syntax("unexpected token")),
        }
    }

    /// `1\frac{1}{2}` and `2 1/2` are mixed numbers, not products. Returns the combined value, or
    /// None (with the position untouched) when the pattern does not apply.
    fn mixed_number(&mut self, whole: f64) -> Result<Option<f64>, MathError> {
        if self.pending.is_some() {
            return Ok(None);
        }
        match self.peek() {
            Some(Tok::Frac) => {
                let save = (self.pos, self.pending);
                self.bump();
                let a = self.arg();
                if matches!(a, Err(MathError::Timeout)) {
                    return Err(MathError::Timeout);
                }
                let b = if a.is_ok() {
                    self.arg()
                } else {
                    Err(MathError::Empty)
                };
                if matches!(b, Err(MathError::Timeout)) {
                    return Err(MathError::Timeout);
                }
                if let (Ok(Node::Num(n)), Ok(Node::Num(d))) = (&a, &b) {
                    if is_nat(*n) && is_nat(*d) && *d > 0.0 && self.pending.is_none() {
                        return Ok(Some(whole + n / d));
                    }
                }
                (self.pos, self.pending) = save;
                Ok(None)
            }
            Some(Tok::Num {
                value: n,
                int: true,
            }) => {
                let (Some(t0), Some(t1), Some(t2)) =
                    (self.peek_at(0), self.peek_at(1), self.peek_at(2))
                else {
                    return Ok(None);
                };
                let Tok::Num {
                    value: d,
                    int: true,
                } = t2.tok
                else {
                    return Ok(None);
                };
                let after_ok = self.peek_at(3).is_none_or(|t| {
                    matches!(
                        t.tok,
                        Tok::Comma
                            | Tok::RParen
                            | Tok::RBrack
                            | Tok::RBrace
                            | Tok::SetClose
                            | Tok::Rel(_)
                    )
                });
                if t0.space_before && t1.tok == Tok::Div && after_ok && n < d && d > 0.0 {
                    self.pos += 3;
                    return Ok(Some(whole + n / d));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn symbol(&mut self, t: Token) -> R {
        let name = self.src.get(t.start..t.end).unwrap_or("");
        if self.peek() == Some(Tok::Underscore) {
            self.bump();
            let sub = self.subscript_text()?;
            let h = name_hash(name_hash(0, name), "_");
            return Ok(Node::Var(name_hash(h, sub)));
        }
        if name == "e" {
            return Ok(Node::Num(std::f64::consts::E));
        }
        Ok(Node::Var(name_hash(0, name)))
    }

    /// The source text of a subscript: one token, or a balanced `{...}` group.
    fn subscript_text(&mut self) -> Result<&'a str, MathError> {
        let Some(first) = self.bump() else {
            return Err(syntax("empty subscript"));
        };
        if first.tok != Tok::LBrace {
            return Ok(self.src.get(first.start..first.end).unwrap_or(""));
        }
        let mut depth = 1usize;
        let mut last = first;
        while depth > 0 {
            self.budget.tick()?;
            let Some(t) = self.bump() else {
                return Err(syntax("unclosed subscript"));
            };
            match t.tok {
                Tok::LBrace => depth += 1,
                Tok::RBrace => depth -= 1,
                _ => {}
            }
            last = t;
        }
        Ok(self.src.get(first.end..last.start).unwrap_or(""))
    }

    /// An argument of `\frac`, `\sqrt`, `\binom`, a subscript base: a `{...}` group, one digit of a
    /// digit run (`\frac12`), or one primary.
    fn arg(&mut self) -> R {
        match self.peek_token() {
            Some(Token {
                tok: Tok::LBrace, ..
            }) => {
                self.bump();
                let inner = self.nested(|p| p.list())?;
                self.expect(Tok::RBrace, "unclosed argument")?;
                Ok(inner)
            }
            Some(
                t @ Token {
                    tok: Tok::Num { int: true, .. },
                    ..
                },
            ) => {
                let text = self.src.get(t.start..t.end).unwrap_or("");
                if text.len() > 1 && text.bytes().all(|b| b.is_ascii_digit()) {
                    self.bump();
                    let first = (text.as_bytes()[0] - b'0') as f64;
                    let rest = text[1..].parse::<f64>().unwrap_or(f64::NAN);
                    self.pending = Some(Token {
                        tok: Tok::Num {
                            value: rest,
                            int: true,
                        },
                        start: t.start + 1,
                        end: t.end,
                        space_before: false,
                    });
                    return Ok(Node::Num(first));
                }
                self.bump();
                Ok(Node::Num(match t.tok {
                    Tok::Num { value, .. } => value,
                    _ => f64::NAN,
                }))
            }
            Some(_) => self.primary(),
            None => Err(syntax("missing argument")),
        }
    }

    fn function(&mut self, f: Func) -> R {
        let mut base = None;
        let mut exp = None;
        for _ in 0..2 {
            if self.eat(Tok::Underscore) {
                base = Some(self.arg()?);
            } else if self.eat(Tok::Caret) {
                exp = Some(self.arg_signed()?);
            }
        }
        let arg = self.func_arg()?;
        // `\sin^{-1} x` is the inverse function, not a reciprocal.
        if matches!(&exp, Some(Node::Num(v)) if *v == -1.0) {
            let inv = match f {
                Func::Sin => Some(Func::Asin),
                Func::Cos => Some(Func::Acos),
                Func::Tan => Some(Func::Atan),
                _ => None,
            };
            if let Some(inv) = inv {
                return Ok(Node::Call(inv, Box::new(arg)));
            }
        }
        let call = match base {
            Some(b) if f == Func::Log => Node::Log(Box::new(b), Box::new(arg)),
            _ => Node::Call(f, Box::new(arg)),
        };
        Ok(match exp {
            Some(e) => Node::Pow(Box::new(call), Box::new(e)),
            None => call,
        })
    }

    /// A function exponent such as `^2`, `^{-1}` or `^-1`.
    fn arg_signed(&mut self) -> R {
        if self.eat(Tok::Minus) {
            return Ok(negate(self.arg()?));
        }
        self.arg()
    }

    /// The argument of a named function: a parenthesised group (with an optional power), or the
    /// implicit product that follows (`\sin 2x`), stopping at the next function (`\sin x \cos x`).
    fn func_arg(&mut self) -> R {
        self.nested(|p| {
            if matches!(p.peek(), Some(Tok::LParen) | Some(Tok::LBrace)) {
                return p.power();
            }
            let mut factors = vec![(false, p.unary()?)];
            while let Some(t) = p.peek() {
                if matches!(t, Tok::Func(_) | Tok::LParen) || !p.starts_implicit(t) {
                    break;
                }
                factors.push((false, p.power()?));
                p.budget.tick()?;
            }
            Ok(flat_prod(factors))
        })
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}`, after the opening token.
    fn matrix(&mut self) -> R {
        let mut rows: Vec<Vec<Node>> = Vec::new();
        let mut row: Vec<Node> = Vec::new();
        loop {
            self.budget.tick()?;
            match self.peek() {
                Some(Tok::MatClose) => {
                    self.bump();
                    break;
                }
                Some(Tok::RowSep) => {
                    self.bump();
                    if !row.is_empty() {
                        rows.push(std::mem::take(&mut row));
                    }
                }
                Some(Tok::Amp) | Some(Tok::Comma) => {
                    self.bump();
                }
                Some(_) => row.push(self.sum()?),
                None => return Err(syntax("unclosed matrix")),
            }
        }
        if !row.is_empty() {
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(syntax("empty matrix"));
        }
        Ok(Node::Matrix(rows))
    }
}

fn is_closer(t: Tok) -> bool {
    matches!(
        t,
        Tok::RParen | Tok::RBrack | Tok::RBrace | Tok::SetClose | Tok::MatClose
    )
}

fn is_nat(v: f64) -> bool {
    v >= 0.0 && v.fract() == 0.0 && v.is_finite()
}

fn negate(n: Node) -> Node {
    match n {
        Node::Num(v) => Node::Num(-v),
        other => Node::Neg(Box::new(other)),
    }
}

fn flat_sum(mut terms: Vec<(bool, Node)>) -> Node {
    if terms.len() == 1 && !terms[0].0 {
        return terms.pop().map(|t| t.1).unwrap_or(Node::Num(f64::NAN));
    }
    Node::Sum(terms)
}

fn flat_prod(mut factors: Vec<(bool, Node)>) -> Node {
    if factors.len() == 1 && !factors[0].0 {
        return factors.pop().map(|t| t.1).unwrap_or(Node::Num(f64::NAN));
    }
    Node::Prod(factors)
}
