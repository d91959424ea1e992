//! Product quantisation of the hidden layer's rows, for file formats v6 and v5 (`cells::Product`):
//! each row of 16 weights is cut into sub-vectors of `width` weights, and each sub-vector is stored
//! as one byte, the index of the nearest of 256 centroids fitted to that slice of every row. Two
//! bytes a row at width 8, against eight for four bits a weight: four times the buckets in the same
//! file, so fewer features share a row. Centroid 0 of every slice is zero and is what rows no
//! training prompt reached are given, so a feature never seen in training adds nothing.
//! Deterministic: the same rows and weights give the same bytes.

use super::rng::SplitMix;

/// Centroids per slice: one byte of index.
pub const CENTROIDS: usize = 256;
/// Rounds of Lloyd's algorithm per slice.
const ROUNDS: usize = 12;
/// The seed of every slice's k-means++ draws.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Centroids and codes for `rows` (`units` weights each): `books` holds, per slice, 256
/// centroids of `width` weights; `codes`, per row, one index per slice. Each row counts in the
/// fit by its `weight` (how many training prompts reached it: what a row's error costs scales
/// with how often it is read); rows of weight 0 get centroid 0, the zero vector.
pub fn fit(rows: &[f32], units: usize, width: usize, weight: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let width = width.clamp(1, units.max(1));
    let slices = units / width;
    let n = rows.len() / units.max(1);
    let mut books = vec![0f32; slices * CENTROIDS * width];
    let mut codes = vec![0u8; n * slices];
    let used: Vec<usize> = (0..n)
        .filter(|i| weight.get(*i).is_some_and(|w| *w > 0.0))
        .collect();
    for s in 0..slices {
        let sub = |i: usize| &rows[i * units + s * width..i * units + (s + 1) * width];
        let book = &mut books[s * CENTROIDS * width..(s + 1) * CENTROIDS * width];
        seed_centroids(book, width, &used, &sub, weight);
        let mut assigned = vec![0u8; used.len()];
        for _ in 0..ROUNDS {
            let columns = Columns::of(book, width);
            for (a, i) in assigned.iter_mut().zip(&used) {
                *a = columns.nearest(sub(*i));
            }
            let mut sum = vec![0f64; CENTROIDS * width];
            let mut mass = vec![0f64; CENTROIDS];
            for (a, i) in assigned.iter().zip(&used) {
                let (k, w) = (usize::from(*a), f64::from(weight[*i]));
                mass[k] += w;
                for (t, x) in sum[k * width..(k + 1) * width].iter_mut().zip(sub(*i)) {
                    *t += w * f64::from(*x);
                }
            }
            // Centroid 0 stays zero; one no row chose keeps its place.
            for k in 1..CENTROIDS {
                if mass[k] > 0.0 {
                    for (c, t) in book[k * width..(k + 1) * width]
                        .iter_mut()
                        .zip(&sum[k * width..(k + 1) * width])
                    {
                        *c = (t / mass[k]) as f32;
                    }
                }
            }
        }
        let columns = Columns::of(book, width);
        for (a, i) in assigned.iter_mut().zip(&used) {
            *a = columns.nearest(sub(*i));
            codes[i * slices + s] = *a;
        }
    }
    (books, codes)
}

/// Squared distance between two sub-vectors.
#[inline]
fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `count` points of `width` weights stored by coordinate (every point's first weight, then every
/// point's second, ...), for `distances`.
fn by_coordinate<'a>(
    points: impl Iterator<Item = &'a [f32]>,
    count: usize,
    width: usize,
) -> Vec<f32> {
    let mut columns = vec![0f32; width * count];
    for (k, point) in points.enumerate().take(count) {
        for (j, x) in point.iter().enumerate().take(width) {
            columns[j * count + k] = *x;
        }
    }
    columns
}

/// Into `out[k]`, `distance` from point `k` of `columns` (as `by_coordinate` stores `out.len()`
/// of them) to `v`. Summed coordinate by coordinate in `distance`'s order, so each is the same to
/// the bit, but for every point side by side, which the compiler vectorises: this only makes
/// training (and the tests that train) faster.
fn distances(columns: &[f32], v: &[f32], out: &mut [f32]) {
    if out.is_empty() {
        return;
    }
    for (j, (x, column)) in v.iter().zip(columns.chunks_exact(out.len())).enumerate() {
        let out = out.iter_mut().zip(column);
        if j == 0 {
            out.for_each(|(d, c)| *d = (c - x) * (c - x));
        } else {
            out.for_each(|(d, c)| *d += (c - x) * (c - x));
        }
    }
}

/// A slice's 256 centroids by coordinate, to find the nearest.
struct Columns(Vec<f32>);

impl Columns {
    fn of(book: &[f32], width: usize) -> Columns {
        Columns(by_coordinate(book.chunks_exact(width), CENTROIDS, width))
    }

    /// The index of the centroid nearest `v` (the first of equals), as `distance` measures.
    fn nearest(&self, v: &[f32]) -> u8 {
        let mut d = [0f32; CENTROIDS];
        distances(&self.0, v, &mut d);
        // The smallest distance, eight lanes at a time; then the first centroid at it. Like a
        // scan that keeps the first strictly smaller, NaN is never chosen, and when none is
        // below infinity the answer is centroid 0.
        let mut lanes = [f32::INFINITY; 8];
        for chunk in d.chunks_exact(8) {
            for (m, d) in lanes.iter_mut().zip(chunk) {
                *m = if *d < *m { *d } else { *m };
            }
        }
        let least = lanes
            .iter()
            .fold(f32::INFINITY, |m, d| if *d < m { *d } else { m });
        if least < f32::INFINITY {
            d.iter().position(|d| *d == least).map_or(0, |k| k as u8)
        } else {
            0
        }
    }
}

/// Centroids 1..256 seeded as k-means++ does (each next one drawn with probability growing with
/// its weight times its squared distance from the nearest chosen so far), from a fixed generator.
fn seed_centroids<'a>(
    book: &mut [f32],
    width: usize,
    used: &[usize],
    sub: &impl Fn(usize) -> &'a [f32],
    weight: &[f32],
) {
    if used.is_empty() {
        return;
    }
    let mut rng = SplitMix(SEED);
    let rows = by_coordinate(used.iter().map(|i| sub(*i)), used.len(), width);
    let mut d = vec![0f32; used.len()];
    // Distance to the nearest chosen centroid; centroid 0 (zero) is chosen already.
    let zero = vec![0f32; width];
    let mut near: Vec<f64> = used
        .iter()
        .map(|i| f64::from(distance(sub(*i), &zero)))
        .collect();
    for k in 1..CENTROIDS {
        let total: f64 = near
            .iter()
            .zip(used)
            .map(|(d, i)| d * f64::from(weight[*i]))
            .sum();
        let mut pick = used.len() - 1;
        if total > 0.0 {
            let mut target = rng.unit() * total;
            for (j, (d, i)) in near.iter().zip(used).enumerate() {
                target -= d * f64::from(weight[*i]);
                if target <= 0.0 {
                    pick = j;
                    break;
                }
            }
        } else {
            pick = (k * 7919) % used.len();
        }
        let chosen = sub(used[pick]).to_vec();
        book[k * width..(k + 1) * width].copy_from_slice(&chosen);
        // `distance(sub(i), &chosen)` for every row at once.
        distances(&rows, &chosen, &mut d);
        for (near, d) in near.iter_mut().zip(&d) {
            *near = near.min(f64::from(*d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_close_and_unreached_rows_are_zero() {
        // 600 rows of 16 weights drawn from 40 patterns (plus a little noise): 256 centroids per
        // slice recover each row closely; rows of weight 0 get the zero centroid.
        let units = 16;
        let rows: Vec<f32> = (0..600 * units)
            .map(|i| {
                let (r, j) = (i / units, i % units);
                ((r % 40) as f32 * 0.37 + j as f32 * 1.3).sin() + (i as f32 * 0.1).cos() * 0.01
            })
            .collect();
        let weight: Vec<f32> = (0..600)
            .map(|r| if r % 50 == 7 { 0.0 } else { 1.0 })
            .collect();
        let (books, codes) = fit(&rows, units, 8, &weight);
        assert_eq!(books.len(), 2 * CENTROIDS * 8);
        assert_eq!(codes.len(), 600 * 2);
        assert_eq!(&books[..8], &[0.0; 8], "centroid 0 is zero");
        for r in 0..600 {
            for s in 0..2 {
                let code = usize::from(codes[r * 2 + s]);
                let centroid = &books[(s * CENTROIDS + code) * 8..(s * CENTROIDS + code + 1) * 8];
                if weight[r] == 0.0 {
                    assert_eq!(code, 0, "row {r}");
                    continue;
                }
                let err = distance(centroid, &rows[r * units + s * 8..r * units + s * 8 + 8]);
                assert!(err < 0.01, "row {r} slice {s}: {err}");
            }
        }
        assert_eq!(
            fit(&rows, units, 8, &weight),
            (books, codes),
            "deterministic"
        );
    }

    /// The scan the columns replace: the first centroid strictly nearer than every earlier one.
    fn scan(book: &[f32], width: usize, v: &[f32]) -> u8 {
        let mut best = (f32::INFINITY, 0u8);
        for (k, c) in book.chunks_exact(width).enumerate().take(CENTROIDS) {
            let d = distance(c, v);
            if d < best.0 {
                best = (d, k as u8);
            }
        }
        best.1
    }

    #[test]
    fn columns_choose_the_centroid_the_scan_chooses() {
        let mut rng = SplitMix(3);
        for width in [1, 4, 8] {
            // Coarse values, so that equal distances (ties) are common: the first must win.
            let mut book: Vec<f32> = (0..CENTROIDS * width)
                .map(|_| (rng.signed_unit() * 4.0).round() / 4.0)
                .collect();
            book[5 * width..6 * width].copy_from_slice(&vec![0.25; width]);
            book[9 * width..10 * width].copy_from_slice(&vec![0.25; width]);
            let columns = Columns::of(&book, width);
            for _ in 0..3000 {
                let v: Vec<f32> = (0..width).map(|_| rng.signed_unit()).collect();
                assert_eq!(columns.nearest(&v), scan(&book, width, &v), "{v:?}");
            }
            let v = vec![0.25; width];
            assert_eq!(columns.nearest(&v), scan(&book, width, &v));
            // NaN is never nearest, and nothing below infinity means centroid 0.
            let mut odd = book.clone();
            odd[..2 * width].fill(f32::NAN);
            let v = vec![0.1; width];
            assert_eq!(Columns::of(&odd, width).nearest(&v), scan(&odd, width, &v));
            let nan = vec![f32::NAN; width];
            assert_eq!((columns.nearest(&nan), scan(&book, width, &nan)), (0, 0));
        }
    }

    #[test]
    fn no_rows_or_no_weight_is_not_a_panic() {
        let (books, codes) = fit(&[], 16, 8, &[]);
        assert_eq!((books.len(), codes.len()), (2 * CENTROIDS * 8, 0));
        let (_, codes) = fit(&[1.0; 32], 16, 8, &[0.0, 0.0]);
        assert_eq!(codes, vec![0; 4]);
    }
}
