//! The similarity kernel: gathers the normalised rows of the unique tokens of both texts,
//! computes their cosines with `matrixmultiply::sgemm` in tiles, and reduces them to the
//! count-weighted mean of row and column maxima (precision and recall).

use std::cell::RefCell;

use super::EmbeddingTable;

/// Rows per tile of the similarity matrix: large enough that a typical pair is one sgemm call,
/// small enough that a 1 MB answer never builds a vocabulary-squared matrix.
const TILE: usize = 256;

/// Per-thread buffers, reused across pairs.
#[derive(Default)]
struct Scratch {
    ids_a: Vec<u32>,
    ids_b: Vec<u32>,
    uniq_a: Vec<(u32, u32)>,
    uniq_b: Vec<(u32, u32)>,
    rows_a: Vec<f32>,
    rows_b: Vec<f32>,
    sims: Vec<f32>,
    max_a: Vec<f32>,
    max_b: Vec<f32>,
}

impl Scratch {
    /// Gives back what one huge input grew, so a thread does not keep megabytes for ever.
    fn trim(&mut self) {
        const KEEP: usize = 1 << 16;
        fn cap<T>(v: &mut Vec<T>) {
            if v.capacity() > KEEP {
                v.clear();
                v.shrink_to(KEEP);
            }
        }
        cap(&mut self.ids_a);
        cap(&mut self.ids_b);
        cap(&mut self.uniq_a);
        cap(&mut self.uniq_b);
        cap(&mut self.max_a);
        cap(&mut self.max_b);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Sorted unique ids with their counts.
fn unique_counts(ids: &[u32], sorted: &mut Vec<u32>, out: &mut Vec<(u32, u32)>) {
    sorted.clear();
    sorted.extend_from_slice(ids);
    sorted.sort_unstable();
    out.clear();
    for &id in sorted.iter() {
        match out.last_mut() {
            Some((last, count)) if *last == id => *count += 1,
            _ => out.push((id, 1)),
        }
    }
}

fn gather(table: &EmbeddingTable, ids: &[(u32, u32)], out: &mut Vec<f32>) {
    let dim = table.dim();
    out.clear();
    out.reserve(ids.len() * dim);
    for &(id, _) in ids {
        match table.normalized_row(id as usize) {
            Some(row) => out.extend_from_slice(row),
            None => out.resize(out.len() + dim, 0.0),
        }
    }
}

/// `(P, R)` of two non-empty id lists, with this thread's scratch buffers.
pub(super) fn precision_recall(
    table: &EmbeddingTable,
    answer: &[u32],
    reference: &[u32],
) -> (f64, f64) {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let pr = precision_recall_in(table, answer, reference, &mut s);
        s.trim();
        pr
    })
}

fn precision_recall_in(
    table: &EmbeddingTable,
    answer: &[u32],
    reference: &[u32],
    s: &mut Scratch,
) -> (f64, f64) {
    let Scratch {
        ids_a,
        ids_b,
        uniq_a,
        uniq_b,
        rows_a,
        rows_b,
        sims,
        max_a,
        max_b,
    } = s;
    unique_counts(answer, ids_a, uniq_a);
    unique_counts(reference, ids_b, uniq_b);
    let dim = table.dim();
    max_a.clear();
    max_a.resize(uniq_a.len(), f32::NEG_INFINITY);
    max_b.clear();
    max_b.resize(uniq_b.len(), f32::NEG_INFINITY);

    let single_b_tile = uniq_b.len() <= TILE;
    if single_b_tile {
        gather(table, uniq_b, rows_b);
    }
    for a0 in (0..uniq_a.len()).step_by(TILE) {
        let a_ids = &uniq_a[a0..(a0 + TILE).min(uniq_a.len())];
        gather(table, a_ids, rows_a);
        for b0 in (0..uniq_b.len()).step_by(TILE) {
            let b_ids = &uniq_b[b0..(b0 + TILE).min(uniq_b.len())];
            if !single_b_tile {
                gather(table, b_ids, rows_b);
            }
            let (m, n) = (a_ids.len(), b_ids.len());
            sims.clear();
            sims.resize(m * n, 0.0);
            if dim > 0 {
                // SAFETY: rows_a is m x dim and rows_b is n x dim, both row-major and
                // contiguous; sims is m x n row-major. Strides below describe exactly these
                // buffers (rows_b read as its transpose, dim x n), so every access is in bounds.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        dim,
                        n,
                        1.0,
                        rows_a.as_ptr(),
                        dim as isize,
                        1,
                        rows_b.as_ptr(),
                        1,
                        dim as isize,
                        0.0,
                        sims.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }
            // Equal ids are a perfect match by definition (see the module docs). Both id lists
            // are sorted, so one merge pass finds every equal pair.
            let (mut i, mut j) = (0, 0);
            while i < m && j < n {
                match a_ids[i].0.cmp(&b_ids[j].0) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        sims[i * n + j] = 1.0;
                        i += 1;
                        j += 1;
                    }
                }
            }
            let max_a = &mut max_a[a0..a0 + m];
            let max_b = &mut max_b[b0..b0 + n];
            for (row, best_a) in sims.chunks_exact(n).zip(max_a.iter_mut()) {
                for (&v, best_b) in row.iter().zip(max_b.iter_mut()) {
                    if v > *best_a {
                        *best_a = v;
                    }
                    if v > *best_b {
                        *best_b = v;
                    }
                }
            }
        }
    }
    let weighted_mean = |uniq: &[(u32, u32)], best: &[f32], total: usize| -> f64 {
        let sum: f64 = uniq
            .iter()
            .zip(best)
            .map(|(&(_, count), &b)| count as f64 * b as f64)
            .sum();
        sum / total as f64
    };
    (
        weighted_mean(uniq_a, max_a, answer.len()),
        weighted_mean(uniq_b, max_b, reference.len()),
    )
}
