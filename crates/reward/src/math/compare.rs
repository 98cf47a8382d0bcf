//! Equivalence of two [`MathValue`]s: numeric tolerance, polynomial identity testing for
//! expressions with symbols, and the structural rules for sets, tuples, lists and unions.

use super::eval::{collect_vars, eval};
use super::parser::Node;
use super::{Budget, Expr, MathConfig, MathError, MathValue};

/// Evaluation points for expressions with symbols.
const POINTS: u64 = 7;
/// The first points give every symbol a positive value, so `\sqrt{x}` and `\ln x` are defined.
const POSITIVE_POINTS: u64 = 4;
/// Agreeing points needed before two symbolic expressions count as equal.
const MIN_AGREEING: usize = 2;
/// Floating error grows with evaluation; the identity test never asks for more than this.
const PIT_MIN_REL_TOL: f64 = 1e-9;
/// Integers below this magnitude compare exactly.
const EXACT_INT: f64 = (1u64 << 50) as f64;

type Res = Result<bool, MathError>;

/// Whether `pred` is equivalent to `gold` (see the module documentation for the rules). The
/// comparison runs under `cfg.deadline_ms` of its own.
pub fn equivalent(gold: &MathValue, pred: &MathValue, cfg: &MathConfig) -> Res {
    equiv(gold, pred, cfg, &mut Budget::new(cfg.deadline_ms))
}

pub(crate) fn equiv(g: &MathValue, p: &MathValue, cfg: &MathConfig, b: &mut Budget) -> Res {
    b.tick()?;
    use MathValue as V;
    match (g, p) {
        (V::Set(a), _) if a.len() == 1 && !matches!(p, V::Set(_)) => equiv(&a[0], p, cfg, b),
        (_, V::Set(a)) if a.len() == 1 && !matches!(g, V::Set(_)) => equiv(g, &a[0], cfg, b),
        (V::Scalar(x), V::Scalar(y)) => scalar_equiv(&x.0, &y.0, cfg, b),
        (V::Set(x) | V::List(x), V::Set(y) | V::List(y)) => set_equal(x, y, cfg, b),
        (V::Union(x), V::Union(y)) => set_equal(x, y, cfg, b),
        (
            V::Tuple {
                open: o1,
                close: c1,
                items: x,
            },
            V::Tuple {
                open: o2,
                close: c2,
                items: y,
            },
        ) => {
            if o1 != o2 || c1 != c2 {
                return Ok(false);
            }
            ordered(x, y, cfg, b)
        }
        (
            V::Tuple {
                open: '(',
                close: ')',
                items: x,
            },
            V::List(y),
        )
        | (
            V::List(x),
            V::Tuple {
                open: '(',
                close: ')',
                items: y,
            },
        ) => ordered(x, y, cfg, b),
        (V::Matrix(x), V::Matrix(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (rx, ry) in x.iter().zip(y) {
                if !ordered(rx, ry, cfg, b)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (V::Equation(l1, r1), V::Equation(l2, r2)) => {
            proportional(&diff(l1, r1), &diff(l2, r2), false, cfg, b)
        }
        (V::NotEqual(l1, r1), V::NotEqual(l2, r2)) => {
            proportional(&diff(l1, r1), &diff(l2, r2), false, cfg, b)
        }
        (
            V::Inequality {
                lo: l1,
                hi: h1,
                strict: s1,
            },
            V::Inequality {
                lo: l2,
                hi: h2,
                strict: s2,
            },
        ) => {
            if s1 != s2 {
                return Ok(false);
            }
            proportional(&diff(h1, l1), &diff(h2, l2), true, cfg, b)
        }
        (V::Text(x), V::Text(y)) => Ok(x == y),
        _ => Ok(false),
    }
}

fn diff(a: &Expr, b: &Expr) -> Node {
    Node::Sum(vec![(false, a.0.clone()), (true, b.0.clone())])
}

fn ordered(x: &[MathValue], y: &[MathValue], cfg: &MathConfig, b: &mut Budget) -> Res {
    if x.len() != y.len() {
        return Ok(false);
    }
    for (u, v) in x.iter().zip(y) {
        if !equiv(u, v, cfg, b)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Set equality: every element of each side has an equivalent on the other (duplicates collapse).
fn set_equal(x: &[MathValue], y: &[MathValue], cfg: &MathConfig, b: &mut Budget) -> Res {
    for (from, to, forward) in [(x, y, true), (y, x, false)] {
        'outer: for u in from {
            for v in to {
                let same = if forward {
                    equiv(u, v, cfg, b)?
                } else {
                    equiv(v, u, cfg, b)?
                };
                if same {
                    continue 'outer;
                }
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Numeric closeness: exact (also for equal infinities), within `abs_tol`, or within `rel_tol` of
/// the larger magnitude. NaN is close to nothing.
pub(crate) fn close(a: f64, b: f64, rel_tol: f64, abs_tol: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    // Two different exact integers are different answers, however close relatively
    // (123456788 vs 123456789). Below 2^50 floating error cannot land on a whole number that is
    // off by one.
    if a.fract() == 0.0 && b.fract() == 0.0 && a.abs() < EXACT_INT && b.abs() < EXACT_INT {
        return false;
    }
    let d = (a - b).abs();
    d <= abs_tol || d <= rel_tol * a.abs().max(b.abs())
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value of symbol `var` at evaluation point `k`: a magnitude in [0.3, 2.5), negative for
/// about half the symbols at the later points. Distinct from common special values (0, 1, 2).
fn point_value(var: u64, k: u64) -> f64 {
    let r = splitmix(var ^ splitmix(k.wrapping_add(1)));
    let u = (r >> 11) as f64 / (1u64 << 53) as f64;
    let mag = 0.3 + 2.2 * u;
    if k >= POSITIVE_POINTS && r & 1 == 1 {
        -mag
    } else {
        mag
    }
}

fn symbols(nodes: &[&Node]) -> Vec<u64> {
    let mut vars = Vec::new();
    for n in nodes {
        collect_vars(n, &mut vars);
    }
    vars
}

fn assignment(vars: &[u64], k: u64) -> Vec<(u64, f64)> {
    vars.iter().map(|&v| (v, point_value(v, k))).collect()
}

fn scalar_equiv(g: &Node, p: &Node, cfg: &MathConfig, b: &mut Budget) -> Res {
    let vars = symbols(&[g, p]);
    if vars.is_empty() {
        let x = eval(g, &[], b)?;
        let y = eval(p, &[], b)?;
        return Ok(close(x, y, cfg.rel_tol, cfg.abs_tol));
    }
    let rel = cfg.rel_tol.max(PIT_MIN_REL_TOL);
    let mut agree = 0;
    for k in 0..POINTS {
        let a = assignment(&vars, k);
        let x = eval(g, &a, b)?;
        let y = eval(p, &a, b)?;
        if x.is_nan() || y.is_nan() {
            // Outside one side's domain: this point says nothing.
            continue;
        }
        if !close(x, y, rel, cfg.abs_tol) {
            return Ok(false);
        }
        agree += 1;
    }
    Ok(agree >= MIN_AGREEING)
}

/// Whether `p = c * g` for one constant `c != 0` (`c > 0` when `positive`), tested at the
/// evaluation points. Without symbols both sides are plain numbers and the ratio is checked once.
fn proportional(g: &Node, p: &Node, positive: bool, cfg: &MathConfig, b: &mut Budget) -> Res {
    let vars = symbols(&[g, p]);
    let rel = cfg.rel_tol.max(PIT_MIN_REL_TOL);
    let mut ratio: Option<f64> = None;
    let mut agree = 0;
    let points = if vars.is_empty() { 1 } else { POINTS };
    for k in 0..points {
        let a = assignment(&vars, k);
        let x = eval(g, &a, b)?;
        let y = eval(p, &a, b)?;
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        let xz = x.abs() <= cfg.abs_tol;
        let yz = y.abs() <= cfg.abs_tol;
        if xz || yz {
            if xz != yz {
                return Ok(false);
            }
            continue;
        }
        let r = y / x;
        match ratio {
            None => {
                if positive && r <= 0.0 {
                    return Ok(false);
                }
                ratio = Some(r);
            }
            Some(r0) => {
                if !close(r, r0, rel, 0.0) {
                    return Ok(false);
                }
            }
        }
        agree += 1;
    }
    Ok(agree >= if vars.is_empty() { 1 } else { MIN_AGREEING })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closeness() {
        assert!(close(1.0, 1.0 + 1e-7, 1e-6, 0.0));
        assert!(!close(1.0, 1.0 + 1e-5, 1e-6, 0.0));
        assert!(close(f64::INFINITY, f64::INFINITY, 1e-6, 0.0));
        assert!(!close(f64::INFINITY, f64::NEG_INFINITY, 1e-6, 0.0));
        assert!(!close(f64::NAN, f64::NAN, 1e-6, 0.0));
        assert!(close(0.0, 1e-12, 1e-6, 1e-9));
    }

    #[test]
    fn points_are_deterministic_and_varied() {
        let v = 0x1234;
        assert_eq!(point_value(v, 3), point_value(v, 3));
        let vals: Vec<f64> = (0..POINTS).map(|k| point_value(v, k)).collect();
        for (i, a) in vals.iter().enumerate() {
            assert!(a.abs() >= 0.3 && a.abs() < 2.5);
            if (i as u64) < POSITIVE_POINTS {
                assert!(*a > 0.0);
            }
            for b2 in &vals[i + 1..] {
                assert_ne!(a, b2);
            }
        }
    }
}
