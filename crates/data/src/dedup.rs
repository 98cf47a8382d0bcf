//! Deduplication: exact duplicates, near-duplicate text by MinHash LSH, near-duplicate images by
//! a perceptual hash (dHash) — combined by one rule that does not destroy templated data.
//!
//! **The rule.** Two samples are duplicates when they ask the same question about the same picture
//! and expect the same answer:
//! * *exact*: the same [`exact_dedup_key`] (problem, answer, choices, image paths);
//! * *near*: the same task, the same normalised answer, problem texts whose estimated Jaccard
//!   similarity (character 5-gram shingles) is >= `threshold`, and, image by image, near-duplicate
//!   images ([`images_match`]: dHash Hamming distance <= `phash_distance` and 32x32 grey
//!   thumbnails within `pixel_tolerance` levels), or no images on either side.
//!
//! Text similarity alone is never enough: templated sources (our synthetic set, easy-vqa) ask
//! "How many circles are there in the image?" of thousands of different pictures, and those are
//! distinct training samples. Image similarity alone is not enough either: several questions about
//! one picture are distinct samples too. A row is compared *directly* with the rows already kept in
//! its candidate group (same task and answer, same LSH text cluster), so a chain of small
//! differences never merges two distant samples. The first row in input order (sources in recipe
//! order, then by line) is kept; every dropped row names the kept row's file:line.
//!
//! **MinHash LSH.** Problems are normalised (lower case, `<image>` removed, punctuation to spaces,
//! white space collapsed) and shingled into character 5-grams; each shingle's 64-bit hash goes
//! through `num_perm` multiply-shift hash functions and the signature keeps the minimum of each.
//! Signatures are cut into `b` bands of `r` rows, with `(b, r)` chosen to minimise the expected
//! false positives plus false negatives around `threshold` (the datasketch rule); texts sharing a
//! band are candidates, and a candidate pair is merged only when its estimated Jaccard (share of
//! equal signature slots) reaches `threshold`. Identical normalised texts are grouped before any of
//! this, so a template repeated 10,000 times costs one signature.

use std::collections::HashMap;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::normalise::exact_dedup_key;
use crate::schema::{Answer, Reject, Row, Sample, Stage};

/// `[dedup]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Drop exact duplicates.
    pub exact: bool,
    /// Drop near duplicates (text by MinHash, images by dHash; see the module documentation).
    pub near: bool,
    /// Estimated Jaccard similarity at or above which two problem texts are near duplicates.
    pub threshold: f64,
    /// MinHash permutations (signature length).
    pub num_perm: usize,
    /// Character n-gram length of the shingles.
    pub shingle: usize,
    /// Compare images by perceptual hash (else by path only).
    pub images: bool,
    /// dHash Hamming distance at or below which two images are near-duplicate candidates (0-63).
    pub phash_distance: u32,
    /// Largest per-pixel grey difference of the 32x32 thumbnails that still confirms a
    /// candidate image pair (0-255).
    pub pixel_tolerance: u8,
    /// In an LSH bucket larger than this, each member is compared with the previous
    /// `bucket_window` members only, which bounds the work on degenerate buckets.
    pub bucket_window: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            exact: true,
            near: true,
            threshold: 0.8,
            num_perm: 128,
            shingle: 5,
            images: true,
            phash_distance: 4,
            pixel_tolerance: 32,
            bucket_window: 256,
        }
    }
}

impl DedupConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(format!(
                "dedup.threshold must be in (0, 1], got {}",
                self.threshold
            ));
        }
        if self.num_perm == 0 || self.num_perm > 1024 {
            return Err(format!(
                "dedup.num_perm must be in 1..=1024, got {}",
                self.num_perm
            ));
        }
        if self.shingle == 0 {
            return Err("dedup.shingle must be at least 1".into());
        }
        if self.phash_distance > 63 {
            return Err(format!(
                "dedup.phash_distance must be at most 63, got {}",
                self.phash_distance
            ));
        }
        Ok(())
    }
}

/// Lower case, `<image>` removed, everything but letters and digits turned into single spaces.
pub fn normalise_text(text: &str) -> String {
    let text = text.replace("<image>", " ");
    let mut out = String::with_capacity(text.len());
    for ch in text.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

#[inline]
fn mix64(mut z: u64) -> u64 {
    // splitmix64's finaliser: a full-avalanche 64-bit mix.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// MinHash signatures over character n-gram shingles.
#[derive(Debug, Clone)]
pub struct MinHasher {
    a: Vec<u64>,
    b: Vec<u64>,
    shingle: usize,
}

impl MinHasher {
    /// `num_perm` hash functions `h(x) = (a x + b) >> 32` with odd `a`, drawn from a fixed seed so
    /// signatures are comparable across runs.
    pub fn new(num_perm: usize, shingle: usize) -> MinHasher {
        let mut rng = ChaCha8Rng::seed_from_u64(0x6d69_6e68_6173_6821);
        let a = (0..num_perm).map(|_| rng.random::<u64>() | 1).collect();
        let b = (0..num_perm).map(|_| rng.random::<u64>()).collect();
        MinHasher {
            a,
            b,
            shingle: shingle.max(1),
        }
    }

    pub fn num_perm(&self) -> usize {
        self.a.len()
    }

    /// The signature of an already normalised text. A text shorter than one shingle is one
    /// shingle; the empty text has the all-`u32::MAX` signature.
    pub fn signature(&self, normalised: &str) -> Vec<u32> {
        let mut sig = vec![u32::MAX; self.a.len()];
        let bytes = normalised.as_bytes();
        let mut feed = |x: u64| {
            for ((s, &a), &b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                let h = (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32;
                if h < *s {
                    *s = h;
                }
            }
        };
        if bytes.is_empty() {
        } else if bytes.len() <= self.shingle {
            feed(hash_bytes(bytes));
        } else {
            // Shingles repeat in templated text; hashing each distinct one once saves most of the
            // permutation work.
            let mut seen: Vec<u64> = bytes.windows(self.shingle).map(hash_bytes).collect();
            seen.sort_unstable();
            seen.dedup();
            for x in seen {
                feed(x);
            }
        }
        sig
    }
}

/// The share of equal slots: an unbiased estimate of the Jaccard similarity of the shingle sets.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

/// `(bands, rows)` with `bands * rows <= num_perm` minimising the false-positive plus
/// false-negative probability mass around `threshold` (equal weights), as datasketch does.
pub fn lsh_params(threshold: f64, num_perm: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, a: f64, b: f64| {
        let n = 200;
        let h = (b - a) / n as f64;
        (0..n).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
    };
    let mut best = (1, num_perm.max(1));
    let mut best_err = f64::INFINITY;
    for b in 1..=num_perm {
        for r in 1..=num_perm / b {
            let p = |s: f64| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
            let fp = integrate(&p, 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - p(s), threshold, 1.0);
            if fp + fneg < best_err {
                best_err = fp + fneg;
                best = (b, r);
            }
        }
    }
    best
}

/// Union-find over `0..n`, smallest index as the root so a cluster's root is its first member.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let p = self.parent[x] as usize;
            self.parent[x] = self.parent[p];
            x = p;
        }
        x
    }

    pub fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        self.parent[hi] = lo as u32;
        true
    }
}

/// Near-duplicate clusters of `signatures` by LSH with verification: returns the union-find and
/// the number of candidate pairs verified.
pub fn lsh_clusters(signatures: &[Vec<u32>], threshold: f64, window: usize) -> (UnionFind, usize) {
    let n = signatures.len();
    let mut uf = UnionFind::new(n);
    let Some(num_perm) = signatures.first().map(Vec::len) else {
        return (uf, 0);
    };
    let (bands, rows) = lsh_params(threshold, num_perm);
    // Band keys for every text, computed in parallel, then each band sorted so that texts sharing
    // a bucket sit next to each other.
    let per_band: Vec<Vec<(u64, u32)>> = (0..bands)
        .into_par_iter()
        .map(|band| {
            let mut keys: Vec<(u64, u32)> = signatures
                .iter()
                .enumerate()
                .map(|(i, sig)| {
                    let mut h = mix64(band as u64 + 1);
                    for &v in &sig[band * rows..(band + 1) * rows] {
                        h = mix64(h ^ v as u64);
                    }
                    (h, i as u32)
                })
                .collect();
            keys.sort_unstable();
            keys
        })
        .collect();
    let mut verified = 0usize;
    for keys in &per_band {
        let mut start = 0;
        while start < keys.len() {
            let mut end = start + 1;
            while end < keys.len() && keys[end].0 == keys[start].0 {
                end += 1;
            }
            let bucket = &keys[start..end];
            for j in 1..bucket.len() {
                let bj = bucket[j].1 as usize;
                for item in &bucket[j.saturating_sub(window)..j] {
                    let bi = item.1 as usize;
                    if uf.find(bi) == uf.find(bj) {
                        continue;
                    }
                    verified += 1;
                    if estimated_jaccard(&signatures[bi], &signatures[bj]) >= threshold {
                        uf.union(bi, bj);
                    }
                }
            }
            start = end;
        }
    }
    (uf, verified)
}

/// Near-duplicate clusters of raw texts: the cluster id (the index of its first member) of each.
pub fn text_clusters(texts: &[&str], cfg: &DedupConfig) -> Vec<usize> {
    let hasher = MinHasher::new(cfg.num_perm, cfg.shingle);
    let sigs: Vec<Vec<u32>> = texts
        .par_iter()
        .map(|t| hasher.signature(&normalise_text(t)))
        .collect();
    let (mut uf, _) = lsh_clusters(&sigs, cfg.threshold, cfg.bucket_window);
    (0..texts.len()).map(|i| uf.find(i)).collect()
}

/// What near-dedup compares of an image: a 64-bit difference hash (dHash: the image shrunk to
/// 9x8 grey levels, one bit per horizontal neighbour pair, left brighter than right) to find
/// candidates cheaply, and a 32x32 grey thumbnail to confirm them.
#[derive(Debug, Clone)]
pub struct ImageSig {
    pub dhash: u64,
    pub thumb: Box<[u8]>,
}

/// Side of the confirmation thumbnail.
pub const THUMB: u32 = 32;

pub fn dhash(img: &image::DynamicImage) -> u64 {
    let small = img.thumbnail_exact(9, 8).to_luma8();
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            h = (h << 1) | (small.get_pixel(x, y).0[0] > small.get_pixel(x + 1, y).0[0]) as u64;
        }
    }
    h
}

pub fn image_sig(img: &image::DynamicImage) -> ImageSig {
    ImageSig {
        dhash: dhash(img),
        thumb: img
            .thumbnail_exact(THUMB, THUMB)
            .to_luma8()
            .into_raw()
            .into_boxed_slice(),
    }
}

/// The signature of an image file.
pub fn image_file_sig(path: &Path) -> Result<ImageSig, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(image_sig(&img))
}

pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Largest per-pixel difference of two thumbnails (0-255).
pub fn max_pixel_diff(a: &ImageSig, b: &ImageSig) -> u8 {
    a.thumb
        .iter()
        .zip(b.thumb.iter())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(255)
}

/// Two images are near duplicates when their dHashes are within `distance` bits **and** no
/// pixel of their 32x32 grey thumbnails differs by more than `tolerance`. The hash alone is not
/// enough for flat synthetic pictures: two bar charts or two single-shape scenes share most of
/// their coarse gradients while showing different things; re-encoding, resizing or light noise
/// moves a thumbnail pixel by a few levels only.
pub fn images_match(a: &ImageSig, b: &ImageSig, distance: u32, tolerance: u8) -> bool {
    hamming(a.dhash, b.dhash) <= distance && max_pixel_diff(a, b) <= tolerance
}

/// The answer as compared by near-dedup: text lower-cased, white space collapsed, a final `.`
/// dropped; boxes as their JSON.
fn answer_key(a: &Answer) -> String {
    let t = a.text();
    let mut s = t
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// The result of [`dedup`].
#[derive(Debug, Default)]
pub struct DedupOutcome {
    pub kept: Vec<Row<Sample>>,
    /// Every dropped row at [`Stage::Dedup`], its reason naming the kept row.
    pub dropped: Vec<Reject>,
    pub exact: usize,
    pub near: usize,
    /// Images that could not be read (each matches only itself).
    pub unhashed_images: usize,
}

/// Deduplicates `rows` (in input order). `image_sig` gives the signature of an image path as it
/// appears in a sample (`None`: that image matches only itself); it is called once per distinct
/// path, in parallel. [`image_file_sig`] is the usual choice.
pub fn dedup<F>(rows: Vec<Row<Sample>>, cfg: &DedupConfig, image_sig: F) -> DedupOutcome
where
    F: Fn(&str) -> Option<ImageSig> + Sync,
{
    let mut out = DedupOutcome::default();
    let n = rows.len();
    let mut drop_reason: Vec<Option<String>> = vec![None; n];

    if cfg.exact {
        let keys: Vec<u64> = rows.par_iter().map(|r| exact_dedup_key(&r.item)).collect();
        let mut first: HashMap<u64, usize> = HashMap::with_capacity(n);
        for (i, k) in keys.into_iter().enumerate() {
            match first.get(&k) {
                // The key is a 64-bit hash: confirm on the fields before dropping.
                Some(&j) if same_exact(&rows[j].item, &rows[i].item) => {
                    drop_reason[i] = Some(format!(
                        "exact duplicate of {} (id {})",
                        rows[j].origin, rows[j].item.id
                    ));
                    out.exact += 1;
                }
                Some(_) => {}
                None => {
                    first.insert(k, i);
                }
            }
        }
    }

    if cfg.near {
        let live: Vec<usize> = (0..n).filter(|&i| drop_reason[i].is_none()).collect();
        // Distinct normalised texts, in order of first appearance.
        let normalised: Vec<String> = live
            .par_iter()
            .map(|&i| normalise_text(&rows[i].item.problem))
            .collect();
        let mut text_id: HashMap<&str, usize> = HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        let row_text: Vec<usize> = normalised
            .iter()
            .map(|t| {
                *text_id.entry(t.as_str()).or_insert_with(|| {
                    texts.push(t.as_str());
                    texts.len() - 1
                })
            })
            .collect();
        let hasher = MinHasher::new(cfg.num_perm, cfg.shingle);
        let sigs: Vec<Vec<u32>> = texts.par_iter().map(|t| hasher.signature(t)).collect();
        let (mut text_uf, _) = lsh_clusters(&sigs, cfg.threshold, cfg.bucket_window);

        // Distinct image paths and their signatures.
        let mut path_id: HashMap<&str, usize> = HashMap::new();
        let mut paths: Vec<&str> = Vec::new();
        for &i in &live {
            for p in &rows[i].item.images {
                path_id.entry(p.as_str()).or_insert_with(|| {
                    paths.push(p.as_str());
                    paths.len() - 1
                });
            }
        }
        let sigs_img: Vec<Option<ImageSig>> = if cfg.images {
            paths.par_iter().map(|p| image_sig(p)).collect()
        } else {
            vec![None; paths.len()]
        };
        out.unhashed_images = if cfg.images {
            sigs_img.iter().filter(|h| h.is_none()).count()
        } else {
            0
        };
        // Same image, or both hashed and matching; an unhashed image matches its own path only.
        let same_image = |a: usize, b: usize| -> Option<u32> {
            if a == b {
                return Some(0);
            }
            match (&sigs_img[a], &sigs_img[b]) {
                (Some(x), Some(y))
                    if images_match(x, y, cfg.phash_distance, cfg.pixel_tolerance) =>
                {
                    Some(hamming(x.dhash, y.dhash))
                }
                _ => None,
            }
        };

        // Candidates share task, answer and text cluster; a row is a duplicate of the first kept
        // row of its group it matches *directly* (text Jaccard >= threshold, every image a near
        // duplicate), so a chain of small differences never merges two distant samples.
        // Within a group, rows with images are only compared with kept rows whose first image
        // shares a dHash block (pigeonhole: within `phash_distance` bits means equal on one of
        // `phash_distance + 1` blocks), or the same path when it could not be hashed; this keeps
        // large template groups near linear.
        let blocks = cfg.phash_distance as usize + 1;
        let width = 64usize.div_ceil(blocks);
        let block_keys = |img: usize| -> Vec<(u16, u64)> {
            match &sigs_img[img] {
                Some(sig) => (0..blocks)
                    .filter(|b| b * width < 64)
                    .map(|b| {
                        let shift = b * width;
                        let mask = if width >= 64 {
                            u64::MAX
                        } else {
                            (1u64 << width.min(64 - shift)) - 1
                        };
                        (b as u16, (sig.dhash >> shift) & mask)
                    })
                    .collect(),
                None => vec![(u16::MAX, img as u64)],
            }
        };
        #[derive(Default)]
        struct Group {
            reps: Vec<usize>,
            index: HashMap<(u16, u64), Vec<usize>>,
        }
        let mut groups: HashMap<(usize, u8, String, usize), Group> = HashMap::new();
        for (pos, &i) in live.iter().enumerate() {
            let s = &rows[i].item;
            let key = (
                text_uf.find(row_text[pos]),
                s.task as u8,
                answer_key(&s.answer),
                s.images.len(),
            );
            let group = groups.entry(key).or_default();
            let imgs: Vec<usize> = s.images.iter().map(|p| path_id[p.as_str()]).collect();
            let keys = imgs.first().map(|&f| block_keys(f)).unwrap_or_default();
            let candidates: Vec<usize> = if imgs.is_empty() {
                group.reps.clone()
            } else {
                let mut c: Vec<usize> = keys
                    .iter()
                    .filter_map(|k| group.index.get(k))
                    .flatten()
                    .copied()
                    .collect();
                c.sort_unstable();
                c.dedup();
                c
            };
            let mut hit = None;
            for kept_pos in candidates {
                let k = live[kept_pos];
                let j = if row_text[kept_pos] == row_text[pos] {
                    1.0
                } else {
                    estimated_jaccard(&sigs[row_text[kept_pos]], &sigs[row_text[pos]])
                };
                if j < cfg.threshold {
                    continue;
                }
                let mut worst = Some(0u32);
                for (a, b) in rows[k].item.images.iter().zip(&imgs) {
                    worst = match (worst, same_image(path_id[a.as_str()], *b)) {
                        (Some(w), Some(d)) => Some(w.max(d)),
                        _ => None,
                    };
                }
                if let Some(d) = worst {
                    hit = Some((k, j, d));
                    break;
                }
            }
            if hit.is_none() {
                group.reps.push(pos);
                for k in keys {
                    group.index.entry(k).or_default().push(pos);
                }
            }
            if let Some((k, j, d)) = hit {
                let image_note = if imgs.is_empty() {
                    String::new()
                } else {
                    format!(", image dHash distance {d}")
                };
                drop_reason[i] = Some(format!(
                        "near duplicate of {} (id {}): text Jaccard ~{j:.2}{image_note}, same task and answer",
                        rows[k].origin, rows[k].item.id
                    ));
                out.near += 1;
            }
        }
    }

    for (row, reason) in rows.into_iter().zip(drop_reason) {
        match reason {
            None => out.kept.push(row),
            Some(reason) => {
                let mut r = Reject::new(&row.origin, Stage::Dedup, reason);
                r.id = Some(row.item.id);
                out.dropped.push(r);
            }
        }
    }
    out
}

fn same_exact(a: &Sample, b: &Sample) -> bool {
    a.problem == b.problem && a.answer == b.answer && a.choices == b.choices && a.images == b.images
}
