//! The built-in task classifier: a small neural network over hashed features of the prompt
//! (`features`: the instruction and the pasted material in their own spaces): each feature's row
//! summed into 16 rectified hidden units, the units into one score per label; probabilities
//! calibrated by a temperature fitted on out-of-fold predictions. Models without the hidden layer
//! (multinomial logistic regression: rows straight into the labels' scores) are still read. One
//! of its labels may be `out_of_scope` (prompts that are none of the tasks): it takes probability
//! from the others, and is never a task itself. Trained by `taskrouter train` (`train`), stored as
//! a compact, versioned, checksummed file; the default model ships with the Worker as a static
//! asset (`builtin`). Runs in the wasm, no network.
//!
//! File format v7 (what training writes): `TRCLS` magic, version (u16 LE), classes, buckets, hidden
//! units, slice width and the fingerprint of the lexicon whose concepts, and pairs of them, the
//! model reads (u32 LE; `lexicon::fingerprint`), temperature (f32), labels (u16 length + UTF-8
//! each), per class its bias (f32), per unit its bias and one output weight per class (f32), per
//! slice of a row 256 centroids of `width` weights (f32), then `buckets` rows of `units / width`
//! bytes, each the index of its slice's centroid (`codebook`); then the SHA-256 of all of it. Still
//! read: v6 (the same; it reads the concepts without their pairs), v5 (the same with no lexicon: it
//! reads no concepts), v4 (the same hidden layer, no width; per unit 16 weight values, then rows of
//! four-bit indices, `(units + 1) / 2` bytes), v3 (no hidden layer: per class the bias and 16
//! weight values, then rows of four-bit indices per class) and v2 (per class the bias and a step,
//! then rows of one i8 weight per class).

pub mod cells;
pub mod codebook;
pub mod features;
pub mod lexicon;
mod rng;
pub mod text;
pub mod train;

use cells::{Coded, Product, Rows, Stepped};

use sha2::{Digest, Sha256};
use std::sync::Arc;

pub use features::{features, Concepts};
pub use rng::mix;

const MAGIC: &[u8; 5] = b"TRCLS";
/// What training writes: a hidden layer, its rows product-quantised (`UnitRows::Product`), and
/// the fingerprint of the lexicon whose concepts, and pairs of them, it reads (`lexicon`).
const VERSION: u16 = 7;
/// Still read: the same, reading the concepts without their pairs.
const CONCEPTS: u16 = 6;
/// Still read: the same without the lexicon's concepts.
const PRODUCT: u16 = 5;
/// Still read: a hidden layer, four-bit weights (`UnitRows::Coded`).
const HIDDEN_CODED: u16 = 4;
/// Still read: no hidden layer, four-bit weights (`Layers::Coded`).
const CODED: u16 = 3;
/// Still read: one byte a weight (`Layers::Stepped`), no hidden layer.
const STEPPED: u16 = 2;

/// The label of prompts that are none of the tasks: it is never a request's task.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

#[derive(Debug, Clone, PartialEq)]
pub struct TaskModel {
    pub labels: Vec<String>,
    buckets: u32,
    temperature: f32,
    /// One per class: the logits' bias.
    bias: Vec<f32>,
    layers: Layers,
}

/// What a model is made of, one shape per file version, so that each shape is written as the
/// version that reads it back.
#[derive(Debug, Clone, PartialEq)]
enum Layers {
    /// v6, v5 and v4: rows of one weight per hidden unit, and the layer above them.
    Hidden { rows: UnitRows, hidden: Hidden },
    /// v3: rows of four-bit weights, one per class, straight into the classes' scores.
    Coded(Coded),
    /// v2: rows of one signed byte per class, straight into the classes' scores.
    Stepped(Stepped),
}

/// What a product-quantised model reads beyond the text, one file version each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// v5: the text alone.
    Text,
    /// v6: the concepts of the lexicon `lexicon` fingerprints (`lexicon::fingerprint`).
    Concepts { lexicon: u32 },
    /// v7, what training writes: those concepts, and each pair of them found together.
    Pairs { lexicon: u32 },
}

impl Reads {
    fn lexicon(self) -> u32 {
        match self {
            Reads::Text => 0,
            Reads::Concepts { lexicon } | Reads::Pairs { lexicon } => lexicon,
        }
    }

    fn concepts(self) -> Concepts {
        match self {
            Reads::Text => Concepts::No,
            Reads::Concepts { .. } => Concepts::Found,
            Reads::Pairs { .. } => Concepts::Paired,
        }
    }

    fn version(self) -> u16 {
        match self {
            Reads::Text => PRODUCT,
            Reads::Concepts { .. } => CONCEPTS,
            Reads::Pairs { .. } => VERSION,
        }
    }
}

/// The rows a hidden layer's units sum.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitRows {
    /// v7, what training makes, v6 and v5: product-quantised (`codebook`); what the model
    /// reads beyond the text says which.
    Product { rows: Product, reads: Reads },
    /// v4: four bits a weight.
    Coded(Coded),
}

impl Rows for UnitRows {
    fn add_row(&self, bucket: usize, value: f32, sums: &mut [f32]) {
        match self {
            UnitRows::Product { rows, .. } => rows.add_row(bucket, value, sums),
            UnitRows::Coded(c) => c.add_row(bucket, value, sums),
        }
    }
}

/// The hidden layer: its units' biases, and from each unit one weight per class.
#[derive(Debug, Clone, PartialEq)]
struct Hidden {
    bias: Vec<f32>,
    out: Vec<f32>,
}

/// `init` plus each feature's row.
fn summed(rows: &impl Rows, init: &[f32], features: &[(u32, f32)]) -> Vec<f32> {
    let mut sums = init.to_vec();
    for (b, v) in features {
        rows.add_row(*b as usize, *v, &mut sums);
    }
    sums
}

impl TaskModel {
    /// A model from real-valued weights (`buckets` rows of one weight per class), stored as four
    /// bits a weight (`Coded::code`).
    pub fn from_weights(labels: Vec<String>, buckets: u32, bias: Vec<f32>, w: &[f32]) -> TaskModel {
        let layers = Layers::Coded(Coded::code(labels.len(), w));
        TaskModel {
            labels,
            buckets,
            temperature: 1.0,
            bias,
            layers,
        }
    }

    /// A model with a hidden layer: `rows` (`buckets` of one weight per unit); the units'
    /// biases, from each unit one weight per class (`out`), and the classes' biases.
    pub fn from_hidden(
        labels: Vec<String>,
        buckets: u32,
        rows: UnitRows,
        unit_bias: Vec<f32>,
        out: Vec<f32>,
        bias: Vec<f32>,
    ) -> TaskModel {
        let hidden = Hidden {
            bias: unit_bias,
            out,
        };
        TaskModel {
            labels,
            buckets,
            temperature: 1.0,
            bias,
            layers: Layers::Hidden { rows, hidden },
        }
    }

    /// How much of the lexicon's concepts it reads (file format v6 and v7), as it was trained to.
    pub fn concepts(&self) -> Concepts {
        self.reads().concepts()
    }

    /// Whether it reads the lexicon's concepts at all.
    pub fn reads_concepts(&self) -> bool {
        self.concepts() != Concepts::No
    }

    /// The fingerprint of the lexicon it was trained with (`lexicon::fingerprint`); 0 when it
    /// reads no concepts. A model trained with another version of the lexicon still reads this
    /// one's, which may cost it some accuracy: retrain it.
    pub fn lexicon(&self) -> u32 {
        self.reads().lexicon()
    }

    /// Whether it reads concepts, but was trained with another lexicon than the one this router
    /// reads (in the Worker, its static asset).
    pub fn trained_with_another_lexicon(&self) -> bool {
        self.reads_concepts() && self.lexicon() != lexicon::fingerprint()
    }

    fn reads(&self) -> Reads {
        match &self.layers {
            Layers::Hidden {
                rows: UnitRows::Product { reads, .. },
                ..
            } => *reads,
            _ => Reads::Text,
        }
    }

    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    pub fn set_temperature(&mut self, t: f32) {
        self.temperature = t;
    }

    /// Uncalibrated scores (logits) for hashed features.
    pub fn logits(&self, features: &[(u32, f32)]) -> Vec<f32> {
        match &self.layers {
            Layers::Hidden { rows, hidden } => rectified_scores(
                &summed(rows, &hidden.bias, features),
                &hidden.out,
                &self.bias,
            ),
            Layers::Coded(rows) => summed(rows, &self.bias, features),
            Layers::Stepped(rows) => summed(rows, &self.bias, features),
        }
    }

    /// Probabilities from logits at a temperature.
    pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits
            .iter()
            .map(|s| ((s - max) / temperature).exp())
            .collect();
        let sum: f32 = exps.iter().sum();
        exps.iter().map(|e| e / sum).collect()
    }

    /// Calibrated probability per label, in `labels` order.
    pub fn probabilities(&self, user: &str, system: &str) -> Vec<f32> {
        Self::softmax(
            &self.logits(&features::features_read(
                user,
                system,
                self.buckets,
                self.concepts(),
            )),
            self.temperature,
        )
    }

    /// The most likely task (never `out_of_scope`) and its probability: low when the prompt
    /// looks like none of the tasks.
    pub fn predict(&self, user: &str, system: &str) -> (&str, f32) {
        self.best_task(&self.probabilities(user, system))
    }

    /// The most likely task among `probabilities` (in `labels` order), skipping `out_of_scope`.
    pub fn best_task(&self, probabilities: &[f32]) -> (&str, f32) {
        let mut best = ("", 0.0f32);
        for (label, p) in self.labels.iter().zip(probabilities) {
            if label != OUT_OF_SCOPE && (*p > best.1 || best.0.is_empty()) {
                best = (label, *p);
            }
        }
        best
    }

    /// The labels that are tasks (all but `out_of_scope`).
    pub fn tasks(&self) -> impl Iterator<Item = &String> {
        self.labels.iter().filter(|l| *l != OUT_OF_SCOPE)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let version = match &self.layers {
            Layers::Hidden {
                rows: UnitRows::Product { reads, .. },
                ..
            } => reads.version(),
            Layers::Hidden {
                rows: UnitRows::Coded(_),
                ..
            } => HIDDEN_CODED,
            Layers::Coded(_) => CODED,
            Layers::Stepped(_) => STEPPED,
        };
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.buckets.to_le_bytes());
        if let Layers::Hidden { rows, hidden } = &self.layers {
            out.extend_from_slice(&(hidden.bias.len() as u32).to_le_bytes());
            if let UnitRows::Product { rows, reads } = rows {
                out.extend_from_slice(&(rows.width as u32).to_le_bytes());
                if *reads != Reads::Text {
                    out.extend_from_slice(&reads.lexicon().to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&self.temperature.to_le_bytes());
        for l in &self.labels {
            out.extend_from_slice(&(l.len() as u16).to_le_bytes());
            out.extend_from_slice(l.as_bytes());
        }
        let floats = |out: &mut Vec<u8>, v: &[f32]| {
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()))
        };
        match &self.layers {
            Layers::Hidden { rows, hidden } => {
                floats(&mut out, &self.bias);
                for (bias, row) in hidden
                    .bias
                    .iter()
                    .zip(hidden.out.chunks_exact(self.bias.len()))
                {
                    out.extend_from_slice(&bias.to_le_bytes());
                    floats(&mut out, row);
                }
                match rows {
                    UnitRows::Product { rows, .. } => {
                        floats(&mut out, &rows.books);
                        out.extend_from_slice(&rows.codes);
                    }
                    UnitRows::Coded(c) => {
                        c.levels().iter().for_each(|t| floats(&mut out, t));
                        out.extend_from_slice(c.codes());
                    }
                }
            }
            Layers::Coded(c) => {
                for (bias, table) in self.bias.iter().zip(c.levels()) {
                    out.extend_from_slice(&bias.to_le_bytes());
                    floats(&mut out, table);
                }
                out.extend_from_slice(c.codes());
            }
            Layers::Stepped(st) => {
                for (bias, step) in self.bias.iter().zip(&st.scale) {
                    out.extend_from_slice(&bias.to_le_bytes());
                    out.extend_from_slice(&step.to_le_bytes());
                }
                out.extend(st.weights.iter().map(|w| w.to_le_bytes()[0]));
            }
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// A model file, its checksum verified (a model from KV, or any file given to the CLI).
    pub fn from_bytes(bytes: &[u8]) -> Result<TaskModel, String> {
        Self::parse(bytes, true)
    }

    /// The shipped model's file as the Worker's static assets serve it: everything but the
    /// checksum is checked. The platform stores and serves assets by the hash of their content,
    /// and hashing 246 KB in the wasm on an isolate's first request took 4-6 ms of its cold start.
    pub fn from_shipped_asset(bytes: &[u8]) -> Result<TaskModel, String> {
        Self::parse(bytes, false)
    }

    fn parse(bytes: &[u8], verify: bool) -> Result<TaskModel, String> {
        if bytes.len() < 32 + 19 {
            return Err("not a task model (too short)".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if verify && Sha256::digest(body).as_slice() != sum {
            return Err("the task model's checksum does not match: the file is damaged".into());
        }
        let mut r = Reader { b: body, i: 0 };
        if r.take(5)? != MAGIC {
            return Err("not a task model (bad magic)".into());
        }
        let version = u16::from_le_bytes(r.array()?);
        if ![VERSION, CONCEPTS, PRODUCT, HIDDEN_CODED, CODED, STEPPED].contains(&version) {
            return Err(format!(
                "task model version {version} is not supported (this router reads {STEPPED} to {VERSION}): retrain it with this version's `taskrouter train`"
            ));
        }
        let classes = u32::from_le_bytes(r.array()?) as usize;
        let buckets = u32::from_le_bytes(r.array()?);
        let units = if version >= HIDDEN_CODED {
            u32::from_le_bytes(r.array()?) as usize
        } else {
            0
        };
        let width = if version >= PRODUCT {
            u32::from_le_bytes(r.array()?) as usize
        } else {
            1
        };
        let lexicon = if version >= CONCEPTS {
            u32::from_le_bytes(r.array()?)
        } else {
            0
        };
        let temperature = f32::from_le_bytes(r.array()?);
        if classes == 0
            || buckets == 0
            || classes > 1000
            || buckets > 1 << 24
            || units > 1000
            || (version >= HIDDEN_CODED && units == 0)
            || width == 0
            || (version >= PRODUCT && (width > units || units % width != 0))
            || (version >= CONCEPTS && lexicon == 0)
        {
            return Err("the task model's sizes are out of range".into());
        }
        if lexicon != 0 {
            // In the Worker, the lexicon is a static asset: a model that reads it is no use
            // without it (natively it is compiled in).
            lexicon::loaded().map_err(|why| {
                format!(
                    "the model reads the lexicon of task words (file format v{version}), but {why}"
                )
            })?;
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err("the task model's temperature is not a positive number".into());
        }
        let mut labels = Vec::with_capacity(classes);
        for _ in 0..classes {
            let len = u16::from_le_bytes(r.array()?) as usize;
            labels.push(
                String::from_utf8(r.take(len)?.to_vec()).map_err(|_| "a label is not UTF-8")?,
            );
        }
        let out_of_range = || "the task model's sizes are out of range".to_string();
        let mut bias = Vec::with_capacity(classes);
        let layers = match version {
            VERSION | CONCEPTS | PRODUCT | HIDDEN_CODED => {
                bias = r.floats(classes)?;
                let mut h = Hidden {
                    bias: Vec::with_capacity(units),
                    out: Vec::with_capacity(units * classes),
                };
                for _ in 0..units {
                    h.bias.push(f32::from_le_bytes(r.array()?));
                    h.out.extend(r.floats(classes)?);
                }
                let rows = if version >= PRODUCT {
                    let slices = units / width;
                    let books = r.floats(slices * codebook::CENTROIDS * width)?;
                    let rows = (buckets as usize).checked_mul(slices);
                    let codes = r.take(rows.ok_or_else(out_of_range)?)?.to_vec();
                    UnitRows::Product {
                        rows: Product {
                            width,
                            books,
                            codes,
                        },
                        reads: match version {
                            VERSION => Reads::Pairs { lexicon },
                            CONCEPTS => Reads::Concepts { lexicon },
                            _ => Reads::Text,
                        },
                    }
                } else {
                    let levels = (0..units).map(|_| r.table()).collect::<Result<_, _>>()?;
                    let rows = (buckets as usize).checked_mul(cells::coded_row(units));
                    let codes = r.take(rows.ok_or_else(out_of_range)?)?.to_vec();
                    UnitRows::Coded(Coded::new(levels, codes))
                };
                Layers::Hidden { rows, hidden: h }
            }
            CODED => {
                let mut levels = Vec::with_capacity(classes);
                for _ in 0..classes {
                    bias.push(f32::from_le_bytes(r.array()?));
                    levels.push(r.table()?);
                }
                let rows = (buckets as usize).checked_mul(cells::coded_row(classes));
                let codes = r.take(rows.ok_or_else(out_of_range)?)?.to_vec();
                Layers::Coded(Coded::new(levels, codes))
            }
            _ => {
                let mut scale = Vec::with_capacity(classes);
                for _ in 0..classes {
                    bias.push(f32::from_le_bytes(r.array()?));
                    scale.push(f32::from_le_bytes(r.array()?));
                }
                let count = (buckets as usize).checked_mul(classes);
                let weights = r
                    .take(count.ok_or_else(out_of_range)?)?
                    .iter()
                    .map(|b| i8::from_le_bytes([*b]))
                    .collect();
                Layers::Stepped(Stepped { scale, weights })
            }
        };
        if r.i != body.len() {
            return Err("the task model has trailing bytes".into());
        }
        Ok(TaskModel {
            labels,
            buckets,
            temperature,
            bias,
            layers,
        })
    }
}

/// The classes' scores from the hidden units' inputs: `bias` plus each unit above zero times its
/// row of `out` (one weight per class). Training (`train::fit_hidden`) and labelling share it.
fn rectified_scores(units: &[f32], out: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut sums = bias.to_vec();
    for (x, row) in units.iter().zip(out.chunks_exact(bias.len().max(1))) {
        if *x > 0.0 {
            for (s, w) in sums.iter_mut().zip(row) {
                *s += x * w;
            }
        }
    }
    sums
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.i..self.i + n)
            .ok_or("the task model is truncated")?;
        self.i += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn floats(&mut self, n: usize) -> Result<Vec<f32>, String> {
        (0..n)
            .map(|_| Ok(f32::from_le_bytes(self.array()?)))
            .collect()
    }
    /// A unit's or a class's 16 weight values.
    fn table(&mut self) -> Result<[f32; cells::LEVELS], String> {
        let mut table = [0f32; cells::LEVELS];
        for l in &mut table {
            *l = f32::from_le_bytes(self.array()?);
        }
        Ok(table)
    }
}

/// The built-in model's file among the Worker's static assets (wrangler.toml `[assets]`: the
/// `models/` directory). The Worker reads it once per isolate instead of carrying it in its wasm.
pub const BUILTIN_ASSET: &str = "/tasks-v2.trcls";

/// The default model, trained from data/tasks/tasks.jsonl: compiled into native builds (the CLI,
/// tests); the Worker is handed it by its shell (`install_builtin`).
#[cfg(not(target_arch = "wasm32"))]
pub const BUILTIN: &[u8] = include_bytes!("../../models/tasks-v2.trcls");

#[cfg(not(target_arch = "wasm32"))]
static NATIVE_BUILTIN: std::sync::OnceLock<Result<Arc<TaskModel>, String>> =
    std::sync::OnceLock::new();

#[cfg(target_arch = "wasm32")]
thread_local! {
    static INSTALLED: std::cell::RefCell<Option<Result<Arc<TaskModel>, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The built-in model, parsed once: on the host from the compiled-in file; in the Worker what the
/// shell installed from the static asset, or why it could not.
pub fn builtin() -> Result<Arc<TaskModel>, String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        NATIVE_BUILTIN
            .get_or_init(|| TaskModel::from_bytes(BUILTIN).map(Arc::new))
            .clone()
    }
    #[cfg(target_arch = "wasm32")]
    {
        INSTALLED.with(|m| m.borrow().clone()).unwrap_or_else(|| {
            Err(
                "the built-in task model has not been loaded from the Worker's static assets yet"
                    .to_string(),
            )
        })
    }
}

/// Whether the shell has yet to hand over the built-in model (in the Worker, until its first
/// successful read, or a read that says the asset is missing or broken).
pub fn builtin_wanted() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
    #[cfg(target_arch = "wasm32")]
    {
        INSTALLED.with(|m| m.borrow().is_none())
    }
}

/// The shell hands over the built-in model's file (or why there is none to read); rules that
/// turn the model on are checked against what this holds.
#[cfg(target_arch = "wasm32")]
pub fn install_builtin(file: Result<Vec<u8>, String>) {
    let model = file
        .and_then(|bytes| TaskModel::from_shipped_asset(&bytes))
        .and_then(|model| {
            // Both assets come from one build (scripts/build-wasm.sh): a lexicon other than the
            // one the model was trained with means they were assembled wrong, or the index was
            // not written anew after the lexicon changed (a unit test says so).
            if model.trained_with_another_lexicon() {
                return Err(format!(
                    "it was trained with another lexicon (fingerprint {:08x}) than {} holds ({:08x}): write it anew (taskrouter lexicon --out models/lexicon.trlx), retrain if the lexicon changed, and rebuild with scripts/build-wasm.sh",
                    model.lexicon(),
                    lexicon::ASSET,
                    lexicon::fingerprint()
                ));
            }
            Ok(model)
        })
        .map(Arc::new)
        .map_err(|e| {
            format!("the built-in task model ({BUILTIN_ASSET} in the Worker's static assets): {e}")
        });
    INSTALLED.with(|m| *m.borrow_mut() = Some(model));
}

#[cfg(test)]
mod tests {
    use super::train::{fit, Example, Settings};
    use super::*;

    fn model(rows: &[(&str, &str)]) -> TaskModel {
        model_with(
            rows,
            Settings {
                buckets: 4096,
                ..Settings::default()
            },
        )
    }

    fn model_with(rows: &[(&str, &str)], settings: Settings) -> TaskModel {
        let mut labels: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
        labels.sort();
        labels.dedup();
        let examples: Vec<Example> = rows
            .iter()
            .map(|(t, l)| Example {
                features: features::features_read(t, "", 4096, settings.concepts()),
                label: labels.binary_search(&l.to_string()).unwrap(),
            })
            .collect();
        fit(&examples, labels, &settings)
    }

    const ROWS: &[(&str, &str)] = &[
        ("translate this into French please", "translation"),
        ("how do you say hello in Spanish", "translation"),
        ("translate the email to German", "translation"),
        ("what is 12 times 7", "reasoning"),
        ("solve for x: 3x + 2 = 11", "reasoning"),
        ("calculate the interest on 100 at 5%", "reasoning"),
        ("hi there, how are you today", "out_of_scope"),
        ("good morning!", "out_of_scope"),
    ];

    #[test]
    fn trains_predicts_and_round_trips_with_and_without_a_hidden_layer() {
        let linear = model_with(
            ROWS,
            Settings {
                buckets: 4096,
                ..Settings::linear()
            },
        );
        assert!(matches!(linear.layers, Layers::Coded(_)));
        let bytes = linear.to_bytes();
        assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), 3);
        assert_eq!(TaskModel::from_bytes(&bytes).unwrap(), linear);
        // Four bits a weight (format v4; the product-quantised v5 is tested below).
        let four_bit = || {
            model_with(
                ROWS,
                Settings {
                    buckets: 4096,
                    width: 0,
                    ..Settings::default()
                },
            )
        };
        let m = four_bit();
        let Layers::Hidden {
            rows: UnitRows::Coded(_),
            hidden,
        } = &m.layers
        else {
            panic!("four-bit rows under a hidden layer");
        };
        assert_eq!(hidden.bias.len(), 16);
        for m in [&m, &linear] {
            assert_eq!(
                m.predict("please translate to Italian", "").0,
                "translation"
            );
            assert_eq!(m.predict("what is 3 times 9", "").0, "reasoning");
            let p = m.probabilities("anything", "");
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
        let bytes = m.to_bytes();
        assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), 4);
        assert_eq!(TaskModel::from_bytes(&bytes).unwrap(), m);
        assert_eq!(four_bit().to_bytes(), bytes, "deterministic");
        for cut in [bytes.len() - 33, 40, 60] {
            let mut short = bytes[..cut].to_vec();
            let sum = Sha256::digest(&short);
            short.extend_from_slice(&sum);
            assert!(TaskModel::from_bytes(&short).is_err(), "cut at {cut}");
        }
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert!(TaskModel::from_bytes(&damaged)
            .unwrap_err()
            .contains("checksum"));
        assert!(TaskModel::from_bytes(b"nope").is_err());
        let mut v1 = bytes[..bytes.len() - 32].to_vec();
        v1[5] = 1;
        let sum = Sha256::digest(&v1);
        v1.extend_from_slice(&sum);
        assert!(TaskModel::from_bytes(&v1)
            .unwrap_err()
            .contains("version 1 is not supported"));
    }

    #[test]
    fn adagrad_trains_a_model_of_its_own() {
        let settings = |adagrad| Settings {
            buckets: 4096,
            adagrad,
            ..Settings::default()
        };
        let m = model_with(ROWS, settings(true));
        let plain = model_with(ROWS, settings(false));
        for m in [&m, &plain] {
            assert_eq!(
                m.predict("please translate to Italian", "").0,
                "translation"
            );
            assert_eq!(m.predict("what is 3 times 9", "").0, "reasoning");
        }
        assert_ne!(m.to_bytes(), plain.to_bytes(), "not the plain rate's model");
        assert_eq!(
            m.to_bytes(),
            model_with(ROWS, settings(true)).to_bytes(),
            "deterministic"
        );
    }

    #[test]
    fn product_quantised_rows_train_predict_and_round_trip() {
        let m = model_with(
            ROWS,
            Settings {
                buckets: 4096,
                width: 8,
                ..Settings::default()
            },
        );
        let Layers::Hidden {
            rows: UnitRows::Product { rows, .. },
            ..
        } = &m.layers
        else {
            panic!("product-quantised");
        };
        let Product {
            width,
            books,
            codes,
        } = rows;
        assert_eq!(
            (*width, books.len(), codes.len()),
            (8, 2 * 256 * 8, 4096 * 2)
        );
        assert_eq!(
            m.predict("please translate to Italian", "").0,
            "translation"
        );
        assert_eq!(m.predict("what is 3 times 9", "").0, "reasoning");
        let bytes = m.to_bytes();
        assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), 7);
        assert_eq!(TaskModel::from_bytes(&bytes).unwrap(), m);
        // It records the lexicon it was trained with, and reads its concepts and their pairs.
        assert_eq!(m.concepts(), Concepts::Paired);
        assert_eq!(m.lexicon(), lexicon::fingerprint());
        assert_eq!(bytes[23..27], lexicon::fingerprint().to_le_bytes());
        assert!(!m.trained_with_another_lexicon());
        let mut other = m.clone();
        if let Layers::Hidden {
            rows: UnitRows::Product { reads, .. },
            ..
        } = &mut other.layers
        {
            *reads = Reads::Pairs {
                lexicon: lexicon::fingerprint() ^ 1,
            };
        }
        assert!(other.trained_with_another_lexicon());
        // The same weights read as each older version: v6 reads the concepts without their
        // pairs, v5 (no lexicon, 4 bytes shorter) none.
        let lexicon = lexicon::fingerprint();
        let pair = "translate this into German, please";
        for (reads, version, concepts, len) in [
            (Reads::Concepts { lexicon }, 6, Concepts::Found, bytes.len()),
            (Reads::Text, 5, Concepts::No, bytes.len() - 4),
        ] {
            let mut old = m.clone();
            if let Layers::Hidden {
                rows: UnitRows::Product { reads: r, .. },
                ..
            } = &mut old.layers
            {
                *r = reads;
            }
            let old_bytes = old.to_bytes();
            assert_eq!(u16::from_le_bytes([old_bytes[5], old_bytes[6]]), version);
            assert_eq!(old_bytes.len(), len);
            let read = TaskModel::from_bytes(&old_bytes).unwrap();
            assert_eq!(read, old);
            assert_eq!(read.concepts(), concepts);
            assert_eq!(
                read.probabilities(pair, ""),
                TaskModel::softmax(
                    &read.logits(&features::features_read(pair, "", 4096, concepts)),
                    read.temperature
                )
            );
            assert_ne!(read.probabilities(pair, ""), m.probabilities(pair, ""));
        }
        // A v6 or v7 file that names no lexicon is refused.
        for version in [6u16, 7] {
            let mut nameless = bytes[..bytes.len() - 32].to_vec();
            nameless[5..7].copy_from_slice(&version.to_le_bytes());
            nameless[23..27].copy_from_slice(&0u32.to_le_bytes());
            let sum = Sha256::digest(&nameless);
            nameless.extend_from_slice(&sum);
            assert!(TaskModel::from_bytes(&nameless)
                .unwrap_err()
                .contains("out of range"));
        }
        // The slice width is read after the units: one that does not divide them is refused.
        for width in [0u32, 3, 32] {
            let mut bad = bytes[..bytes.len() - 32].to_vec();
            bad[19..23].copy_from_slice(&width.to_le_bytes());
            let sum = Sha256::digest(&bad);
            bad.extend_from_slice(&sum);
            assert!(
                TaskModel::from_bytes(&bad)
                    .unwrap_err()
                    .contains("out of range"),
                "width {width}"
            );
        }
        // Rows no training prompt reached add nothing.
        let reached: std::collections::HashSet<u32> = ROWS
            .iter()
            .flat_map(|(t, _)| features(t, "", 4096))
            .map(|(b, _)| b)
            .collect();
        let unreached = (0..4096u32).find(|b| !reached.contains(b)).unwrap();
        let mut units = vec![0.0; 16];
        rows.add_row(unreached as usize, 1.0, &mut units);
        assert_eq!(units, vec![0.0; 16]);
    }

    #[test]
    fn a_version_2_model_still_reads_and_scores() {
        // One byte a weight with a step per class, as models trained before version 3 are.
        let m = TaskModel {
            labels: vec!["a".into(), "b".into()],
            buckets: 2,
            temperature: 0.5,
            bias: vec![0.5, -0.5],
            layers: Layers::Stepped(Stepped {
                scale: vec![0.1, 0.2],
                weights: vec![10, -10, 0, 5],
            }),
        };
        let bytes = m.to_bytes();
        assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), 2);
        let read = TaskModel::from_bytes(&bytes).unwrap();
        assert_eq!(read, m);
        let l = read.logits(&[(0, 1.0), (1, 2.0)]);
        assert!((l[0] - (0.5 + 1.0)).abs() < 1e-6, "{l:?}");
        assert!((l[1] - (-0.5 - 2.0 + 2.0)).abs() < 1e-6, "{l:?}");
        assert!(TaskModel::from_bytes(&bytes[..bytes.len() - 33]).is_err());
    }

    #[test]
    fn the_hidden_layer_rectifies_its_units() {
        // Two buckets into two units into two classes; unit 1 is pushed below zero and adds
        // nothing.
        let m = TaskModel::from_hidden(
            vec!["a".into(), "b".into()],
            2,
            UnitRows::Coded(Coded::code(2, &[1.0, -2.0, 0.5, 0.0])),
            vec![0.25, 0.5],
            vec![2.0, -1.0, 10.0, 10.0],
            vec![0.0, 1.0],
        );
        // Units: 0.25 + 1.0 * 1 + 2.0 * 0.5 = 2.25; 0.5 - 2.0 + 0 = -1.5 -> 0.
        let l = m.logits(&[(0, 1.0), (1, 2.0)]);
        assert!(
            (l[0] - 4.5).abs() < 1e-5 && (l[1] - (1.0 - 2.25)).abs() < 1e-5,
            "{l:?}"
        );
        // A bucket past the table adds nothing: only the biases.
        let l = m.logits(&[(7, 1.0)]);
        assert!((l[0] - 0.5 - 5.0).abs() < 1e-5, "{l:?}");
        let read = TaskModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(read, m);
    }

    #[test]
    fn out_of_scope_is_never_the_task_and_takes_probability_away() {
        let m = model(ROWS);
        assert_eq!(m.tasks().count(), 2);
        let (task, p) = m.predict("hi there, good morning", "");
        assert_ne!(task, OUT_OF_SCOPE);
        let (_, sure) = m.predict("translate this into German please", "");
        assert!(p < sure, "{p} {sure}");
    }

    #[test]
    fn the_shipped_asset_reads_as_the_file_does_its_structure_checked() {
        let m = TaskModel::from_bytes(BUILTIN).unwrap();
        assert_eq!(TaskModel::from_shipped_asset(BUILTIN).unwrap(), m);
        assert!(Arc::ptr_eq(&builtin().unwrap(), &builtin().unwrap()));
        assert_eq!(*builtin().unwrap(), m);
        let short = &BUILTIN[..BUILTIN.len() - 100];
        assert!(TaskModel::from_shipped_asset(short).is_err());
        assert!(
            TaskModel::from_shipped_asset(b"not a model at all, just some text here....").is_err()
        );
        // The checksum is the file's own check, not the asset's.
        let mut flipped = BUILTIN.to_vec();
        flipped[BUILTIN.len() / 2] ^= 1;
        assert!(TaskModel::from_bytes(&flipped).is_err());
        assert!(TaskModel::from_shipped_asset(&flipped).is_ok());
    }

    #[test]
    fn the_builtin_model_loads_and_knows_the_tasks() {
        let m = TaskModel::from_bytes(BUILTIN).unwrap();
        assert_eq!(
            m.to_bytes(),
            BUILTIN,
            "read and written back, the file is the same bytes"
        );
        assert_eq!(m.tasks().count(), 14);
        assert!(m.labels.iter().any(|l| l == OUT_OF_SCOPE));
        assert!(
            BUILTIN.len() <= 400 * 1024,
            "model budget: {} bytes",
            BUILTIN.len()
        );
        assert!(m.temperature > 0.0 && m.temperature.is_finite());
        for (text, want) in [
            ("Translate this into Japanese: 'Your order has shipped.'", "translation"),
            ("Write a Python function that parses a CSV file and returns the rows.", "code_generation"),
            ("I was charged twice for my subscription this month, please refund me.", "billing"),
            ("What is 17 times 23?", "reasoning"),
            ("Summarise the following meeting notes in three bullet points: we agreed to ship in May.", "summarisation"),
        ] {
            assert_eq!(m.predict(text, "").0, want, "{text}");
        }
        for text in [
            "Hello!",
            "thanks, that's all for today!",
            "Pretend you are a pirate.",
        ] {
            let (_, p) = m.predict(text, "");
            assert!(p < 0.5, "out of scope, yet {text:?} has a task at {p}");
        }
        let p = m.probabilities("", "");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}
