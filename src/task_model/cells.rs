//! How the task model stores its weights, `buckets` rows of one weight per column (a hidden unit,
//! or a class in a model without a hidden layer), and how a row adds into the sums. Three
//! encodings: a byte per slice of a row, an index into that slice's centroids (file formats v6 and
//! v5, what training makes: `codebook`); four bits a weight, each an index into a table of 16
//! values per column fitted to that column's weights (v4 and v3); and one signed byte a weight with
//! a step per class (v2). The older ones are still read, so that a model trained by an earlier
//! version and kept in KV goes on working.

use super::codebook::CENTROIDS;

/// Levels in a class's table; level 0 is always 0.0.
pub const LEVELS: usize = 16;
/// Rounds of Lloyd's algorithm fitting a class's table.
const ROUNDS: usize = 25;

/// How a row adds into the sums: one weight per column.
pub trait Rows {
    /// Adds `value` times bucket `bucket`'s row to `sums` (one per column); a bucket past the
    /// table adds nothing.
    fn add_row(&self, bucket: usize, value: f32, sums: &mut [f32]);
}

/// v3 and v4: per column a table of 16 values; rows of `(columns + 1) / 2` bytes, column `k` in
/// byte `k / 2`, its low four bits when `k` is even.
#[derive(Debug, Clone, PartialEq)]
pub struct Coded {
    levels: Vec<[f32; LEVELS]>,
    codes: Vec<u8>,
    /// Derived from `levels`, for adding rows: per byte of a row, the two columns' values for
    /// each of its 256 values (one lookup per two weights instead of two, and no shifts).
    pairs: Vec<[[f32; 2]; 256]>,
}

/// v2: per class the step that decodes its bytes; rows of one i8 per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Stepped {
    pub scale: Vec<f32>,
    pub weights: Vec<i8>,
}

/// v6 and v5: rows cut into slices of `width` weights, each slice one byte, an index into that
/// slice's 256 centroids (`codebook`); `books` holds them slice after slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub width: usize,
    pub books: Vec<f32>,
    pub codes: Vec<u8>,
}

/// Bytes of one row of four-bit codes.
pub fn coded_row(columns: usize) -> usize {
    columns.div_ceil(2)
}

impl Coded {
    /// Four-bit codes for real-valued weights (`w`: rows of one weight per column; a trailing
    /// partial row is left out).
    pub fn code(columns: usize, w: &[f32]) -> Coded {
        let c = columns.max(1);
        let whole = &w[..w.len() - w.len() % c];
        let levels: Vec<[f32; LEVELS]> = (0..c)
            .map(|k| table(whole.iter().skip(k).step_by(c).copied().collect()))
            .collect();
        let row = coded_row(c);
        let mut codes = vec![0u8; whole.len() / c * row];
        for (weights, bytes) in whole.chunks_exact(c).zip(codes.chunks_exact_mut(row)) {
            for (k, (v, table)) in weights.iter().zip(&levels).enumerate() {
                let code = nearest(table, *v);
                bytes[k / 2] |= if k % 2 == 0 { code } else { code << 4 };
            }
        }
        Coded::new(levels, codes)
    }

    /// Four-bit rows from their tables and codes.
    pub fn new(levels: Vec<[f32; LEVELS]>, codes: Vec<u8>) -> Coded {
        let pairs = (0..coded_row(levels.len()))
            .map(|j| {
                let (low, high) = (&levels[2 * j], levels.get(2 * j + 1));
                std::array::from_fn(|byte| {
                    [low[byte & 15], high.map_or(0.0, |t| t[(byte >> 4) & 15])]
                })
            })
            .collect();
        Coded {
            levels,
            codes,
            pairs,
        }
    }

    /// Per column, its 16 values.
    pub fn levels(&self) -> &[[f32; LEVELS]] {
        &self.levels
    }

    /// The rows' bytes.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }
}

impl Rows for Coded {
    fn add_row(&self, bucket: usize, value: f32, sums: &mut [f32]) {
        let row = coded_row(sums.len());
        if let Some(bytes) = self.codes.get(bucket * row..(bucket + 1) * row) {
            for ((two, byte), table) in sums.chunks_mut(2).zip(bytes).zip(&self.pairs) {
                let [low, high] = table[usize::from(*byte)];
                two[0] += value * low;
                if let Some(s) = two.get_mut(1) {
                    *s += value * high;
                }
            }
        }
    }
}

impl Rows for Product {
    fn add_row(&self, bucket: usize, value: f32, sums: &mut [f32]) {
        let width = self.width.max(1);
        let slices = sums.len() / width;
        if let Some(bytes) = self.codes.get(bucket * slices..(bucket + 1) * slices) {
            for (s, (part, code)) in sums.chunks_exact_mut(width).zip(bytes).enumerate() {
                let at = (s * CENTROIDS + usize::from(*code)) * width;
                if let Some(centroid) = self.books.get(at..at + width) {
                    for (x, w) in part.iter_mut().zip(centroid) {
                        *x += value * w;
                    }
                }
            }
        }
    }
}

impl Rows for Stepped {
    fn add_row(&self, bucket: usize, value: f32, sums: &mut [f32]) {
        let c = sums.len();
        if let Some(row) = self.weights.get(bucket * c..(bucket + 1) * c) {
            for ((s, w), step) in sums.iter_mut().zip(row).zip(&self.scale) {
                *s += value * f32::from(*w) * step;
            }
        }
    }
}

/// The nearest level's index.
fn nearest(levels: &[f32; LEVELS], v: f32) -> u8 {
    let mut best = (f32::INFINITY, 0u8);
    for (j, l) in levels.iter().enumerate() {
        let d = (v - l).abs();
        if d < best.0 {
            best = (d, j as u8);
        }
    }
    best.1
}

/// A class's 16 values: 0.0 and 15 fitted by Lloyd's algorithm (one-dimensional k-means, from
/// evenly spaced quantiles), so that most of the precision goes where most weights are.
fn table(mut values: Vec<f32>) -> [f32; LEVELS] {
    let mut levels = [0f32; LEVELS];
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return levels;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    for (j, l) in levels.iter_mut().enumerate().skip(1) {
        let q = (j as f64 - 0.5) / (LEVELS - 1) as f64;
        *l = values[((q * n as f64) as usize).min(n - 1)];
    }
    for _ in 0..ROUNDS {
        let mut sum = [0f64; LEVELS];
        let mut count = [0u32; LEVELS];
        for v in &values {
            let j = usize::from(nearest(&levels, *v));
            sum[j] += f64::from(*v);
            count[j] += 1;
        }
        let mut moved = false;
        for j in 1..LEVELS {
            if count[j] > 0 {
                let mean = (sum[j] / f64::from(count[j])) as f32;
                moved |= mean != levels[j];
                levels[j] = mean;
            }
        }
        if !moved {
            break;
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_zero_and_the_extremes_and_pack_two_to_a_byte() {
        // Three classes over four rows: 0 stays 0, the largest weights come back close.
        let w = [
            0.0, 1.0, -2.0, //
            0.5, 0.0, 3.0, //
            -1.5, 0.25, 0.0, //
            0.0, 0.0, 0.0,
        ];
        let cells = Coded::code(3, &w);
        assert_eq!(cells.levels().len(), 3);
        assert_eq!(cells.codes().len(), 4 * 2);
        for r in 0..4 {
            let mut sums = [0f32; 3];
            cells.add_row(r, 1.0, &mut sums);
            for k in 0..3 {
                assert!((sums[k] - w[r * 3 + k]).abs() < 1e-6, "{r} {k} {sums:?}");
            }
        }
        let mut sums = [1f32; 3];
        cells.add_row(4, 1.0, &mut sums);
        assert_eq!(sums, [1.0; 3], "a bucket past the table adds nothing");
        // A trailing partial row is left out, not a panic.
        assert_eq!(Coded::code(3, &w[..11]).codes().len(), 3 * 2);
    }

    #[test]
    fn adding_a_row_is_each_code_looked_up_in_its_table() {
        // 15 classes (a half-used last byte) and 16 units: the pair tables add exactly what
        // looking up each four-bit code in its class's table does, and nothing past the classes.
        for classes in [15, 16] {
            let w: Vec<f32> = (0..classes * 50)
                .map(|i| ((i as f32) * 0.71).cos() * (i % 5) as f32)
                .collect();
            let cells = Coded::code(classes, &w);
            let (levels, codes) = (cells.levels(), cells.codes());
            let row = coded_row(classes);
            for r in 0..50 {
                let mut sums = vec![0.5f32; classes + 1];
                cells.add_row(r, 0.3, &mut sums[..classes]);
                for (k, sum) in sums.iter().enumerate().take(classes) {
                    let byte = codes[r * row + k / 2];
                    let code = if k % 2 == 0 { byte & 15 } else { byte >> 4 };
                    assert_eq!(*sum, 0.5 + 0.3 * levels[k][usize::from(code)], "{r} {k}");
                }
                assert_eq!(sums[classes], 0.5);
            }
        }
    }

    #[test]
    fn fitted_levels_lose_less_than_an_even_grid() {
        // Weights bunched near zero, as trained ones are: fitted levels err less than 16 evenly
        // spaced ones over the same range would.
        let w: Vec<f32> = (0..30_000)
            .map(|i| (i as f32 * 0.37).sin().powi(3) * (i % 7) as f32 / 7.0)
            .collect();
        let cells = Coded::code(15, &w);
        let (mut fitted, mut even) = (0f64, 0f64);
        for r in 0..2_000 {
            let mut sums = [0f32; 15];
            cells.add_row(r, 1.0, &mut sums);
            for k in 0..15 {
                let v = w[r * 15 + k];
                fitted += f64::from(sums[k] - v).powi(2);
                let step = 2.0 / 15.0;
                even += f64::from(((v + 1.0) / step).round() * step - 1.0 - v).powi(2);
            }
        }
        assert!(fitted < even * 0.7, "fitted {fitted}, even {even}");
    }
}
