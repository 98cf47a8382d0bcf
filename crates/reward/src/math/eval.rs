//! Floating-point evaluation of a scalar expression tree under a variable assignment.
//!
//! Everything is plain `f64`: domain errors become NaN, overflow becomes infinity, so nothing can
//! panic. Non-scalar nodes (sets, brackets, relations) evaluate to NaN. The recursion depth is that
//! of the tree, which the parser bounds.

use super::lexer::Func;
use super::parser::Node;
use super::{Budget, MathError};

/// Largest `n` for which `n!` is computed; beyond it the value is +infinity (171! overflows f64).
const FACT_CAP: f64 = 170.0;

pub(crate) fn eval(
    node: &Node,
    vars: &[(u64, f64)],
    budget: &mut Budget,
) -> Result<f64, MathError> {
    budget.tick()?;
    Ok(match node {
        Node::Num(v) => *v,
        Node::Var(h) => vars
            .iter()
            .find(|(k, _)| k == h)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN),
        Node::Sum(terms) => {
            let mut acc = 0.0;
            for (neg, t) in terms {
                let v = eval(t, vars, budget)?;
                acc += if *neg { -v } else { v };
            }
            acc
        }
        Node::Prod(factors) => {
            let mut acc = 1.0;
            for (div, f) in factors {
                let v = eval(f, vars, budget)?;
                if *div {
                    acc /= v;
                } else {
                    acc *= v;
                }
            }
            acc
        }
        Node::Neg(a) => -eval(a, vars, budget)?,
        Node::Pow(a, b) => pow(eval(a, vars, budget)?, eval(b, vars, budget)?),
        Node::Call(f, a) => call(*f, eval(a, vars, budget)?),
        Node::Log(b, a) => eval(a, vars, budget)?.ln() / eval(b, vars, budget)?.ln(),
        Node::Root(n, a) => root(eval(n, vars, budget)?, eval(a, vars, budget)?),
        Node::Binom(n, k) => binom(eval(n, vars, budget)?, eval(k, vars, budget)?),
        Node::PlusMinus(..)
        | Node::Bracket { .. }
        | Node::Set(_)
        | Node::List(_)
        | Node::Union(_)
        | Node::Rel(..)
        | Node::In(..)
        | Node::Matrix(_) => f64::NAN,
    })
}

fn pow(a: f64, b: f64) -> f64 {
    // An odd root written as a power, `(-8)^{1/3}`, has the real value -2.
    if a < 0.0 && b.fract() != 0.0 && b.is_finite() {
        let inv = 1.0 / b;
        if (inv - inv.round()).abs() < 1e-9 && (inv.round() as i64).rem_euclid(2) == 1 {
            return -(-a).powf(b);
        }
    }
    a.powf(b)
}

fn root(n: f64, a: f64) -> f64 {
    if n == 2.0 {
        return a.sqrt();
    }
    if a < 0.0 && n.fract() == 0.0 && n.is_finite() && (n as i64).rem_euclid(2) == 1 {
        return -(-a).powf(1.0 / n);
    }
    a.powf(1.0 / n)
}

fn call(f: Func, x: f64) -> f64 {
    match f {
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Cot => 1.0 / x.tan(),
        Func::Sec => 1.0 / x.cos(),
        Func::Csc => 1.0 / x.sin(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Sinh => x.sinh(),
        Func::Cosh => x.cosh(),
        Func::Tanh => x.tanh(),
        // `\log` without a base is the natural logarithm, as in SymPy and math-verify.
        Func::Ln | Func::Log => x.ln(),
        Func::Exp => x.exp(),
        Func::Abs => x.abs(),
        Func::Floor => x.floor(),
        Func::Ceil => x.ceil(),
        Func::Fact => factorial(x),
    }
}

fn factorial(x: f64) -> f64 {
    // NaN fails `x >= 0.0` too.
    if x.is_nan() || x < 0.0 || x.fract() != 0.0 {
        return f64::NAN;
    }
    if x > FACT_CAP {
        return f64::INFINITY;
    }
    let mut acc = 1.0;
    let mut k = 2.0;
    while k <= x {
        acc *= k;
        k += 1.0;
    }
    acc
}

fn binom(n: f64, k: f64) -> f64 {
    if k.is_nan() || k < 0.0 || k.fract() != 0.0 || n.fract() != 0.0 || !n.is_finite() {
        return f64::NAN;
    }
    if k > n && n >= 0.0 {
        return 0.0;
    }
    if k > 1000.0 {
        return f64::NAN;
    }
    let mut acc = 1.0;
    let mut i = 0.0;
    while i < k {
        acc = acc * (n - i) / (i + 1.0);
        i += 1.0;
    }
    acc.round()
}

/// Appends the free symbols of `node` to `out` (no duplicates). Bounded by the tree's size.
pub(crate) fn collect_vars(node: &Node, out: &mut Vec<u64>) {
    match node {
        Node::Num(_) => {}
        Node::Var(h) => {
            if !out.contains(h) {
                out.push(*h);
            }
        }
        Node::Sum(v) | Node::Prod(v) => v.iter().for_each(|(_, n)| collect_vars(n, out)),
        Node::Neg(a) | Node::Call(_, a) => collect_vars(a, out),
        Node::Pow(a, b)
        | Node::Log(a, b)
        | Node::Root(a, b)
        | Node::Binom(a, b)
        | Node::PlusMinus(a, b)
        | Node::In(a, b) => {
            collect_vars(a, out);
            collect_vars(b, out);
        }
        Node::Bracket { items, .. } | Node::Set(items) | Node::List(items) | Node::Union(items) => {
            items.iter().for_each(|n| collect_vars(n, out))
        }
        Node::Rel(items, _) => items.iter().for_each(|n| collect_vars(n, out)),
        Node::Matrix(rows) => rows
            .iter()
            .for_each(|r| r.iter().for_each(|n| collect_vars(n, out))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factorial_is_capped() {
        assert_eq!(factorial(5.0), 120.0);
        assert_eq!(factorial(0.0), 1.0);
        assert!(factorial(1e9).is_infinite());
        assert!(factorial(-1.0).is_nan());
        assert!(factorial(2.5).is_nan());
    }

    #[test]
    fn odd_roots_of_negatives_are_real() {
        assert!((root(3.0, -8.0) + 2.0).abs() < 1e-12);
        assert!((pow(-8.0, 1.0 / 3.0) + 2.0).abs() < 1e-12);
        assert!(root(2.0, -4.0).is_nan());
    }

    #[test]
    fn binomials() {
        assert_eq!(binom(5.0, 2.0), 10.0);
        assert_eq!(binom(3.0, 5.0), 0.0);
    }
}
