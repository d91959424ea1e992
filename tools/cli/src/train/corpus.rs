//! `taskrouter corpus <dir> [--check]`: composes the task corpus (data/tasks/GUIDELINES.md) from
//! what was written by hand: `batches/*.jsonl` (instructions, some with a `{{paste:KIND}}`
//! placeholder) and `materials/{train,test}-*.jsonl` (the pasted documents). Each placeholder is
//! filled with the next material of its kind from a seeded shuffle of that split's pool, so every
//! material serves many labels. Batches named `test-*` make `test.jsonl` (with the test
//! materials), the rest `tasks.jsonl`. `--check` writes nothing and fails when the files are not
//! what composing makes, or the corpus breaks its rules: near-duplicates (word 3-gram Jaccard
//! above 0.5 between written parts), too few examples of a label, too little pasted material or
//! non-English text. The prompts under `outside/` (written whole, apart from the corpus, to judge
//! the model with `taskrouter evaluate`) are composed into nothing, but checked too: none may be
//! a near-duplicate of a written line, and each has one of the corpus's labels.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use taskrouter::task_model::train::shuffled;
use taskrouter::task_model::OUT_OF_SCOPE;

const KINDS: [&str; 7] = [
    "prose",
    "conversation",
    "email",
    "code",
    "data",
    "config",
    "log",
];
const SEED: u64 = 20_261_201;

/// One written line.
pub struct Written {
    pub at: String,
    pub text: String,
    pub label: String,
    pub batch: String,
    pub lang: String,
}

impl Written {
    pub fn is_test(&self) -> bool {
        self.batch.starts_with("test-")
    }
    /// The placeholder's kind and where it is.
    fn placeholder(&self) -> Option<(&str, std::ops::Range<usize>)> {
        let start = self.text.find("{{paste:")?;
        let end = start + self.text[start..].find("}}")? + 2;
        Some((&self.text[start + 8..end - 2], start..end))
    }
    /// The written part: the text without its placeholder.
    pub fn written(&self) -> String {
        match self.placeholder() {
            Some((_, range)) => {
                format!("{} {}", &self.text[..range.start], &self.text[range.end..])
            }
            None => self.text.clone(),
        }
    }
}

struct Material {
    id: String,
    kind: String,
    text: String,
}

fn read_jsonl(path: &Path) -> Result<Vec<(String, Value)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|v| (format!("{name}:{}", i + 1), v))
                .map_err(|e| format!("{name}:{}: {e}", i + 1))
        })
        .collect()
}

fn files(dir: &Path, prefix: &str) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "jsonl")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn field(v: &Value, name: &str, at: &str) -> Result<String, String> {
    v[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{at}: needs a string \"{name}\""))
}

pub fn read_written(dir: &Path) -> Result<Vec<Written>, String> {
    let mut out = Vec::new();
    for path in files(&dir.join("batches"), "")? {
        for (at, v) in read_jsonl(&path)? {
            let w = Written {
                text: field(&v, "text", &at)?,
                label: field(&v, "label", &at)?,
                batch: field(&v, "batch", &at)?,
                lang: field(&v, "lang", &at)?,
                at,
            };
            if let Some((kind, _)) = w.placeholder() {
                if !KINDS.contains(&kind) {
                    return Err(format!("{}: unknown material kind \"{kind}\"", w.at));
                }
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn read_materials(dir: &Path, split: &str) -> Result<Vec<Material>, String> {
    let mut out = Vec::new();
    for path in files(&dir.join("materials"), &format!("{split}-"))? {
        for (at, v) in read_jsonl(&path)? {
            out.push(Material {
                id: field(&v, "id", &at)?,
                kind: field(&v, "kind", &at)?,
                text: field(&v, "text", &at)?,
            });
        }
    }
    Ok(out)
}

/// The composed lines of one split, in the order written. In the training split, every third
/// line with a placeholder also comes without its material (the instruction alone, `material`
/// null, just before it): users ask before they paste, or attach instead, and the model must
/// not learn that a task needs pasted text to be that task. In both splits, another third of
/// the placeholders take only the start of their material (`excerpt`, about 150, 250 or 400
/// characters in turn; `material` is then the id with `#short`): what users paste is often a
/// paragraph or a few lines, and a short paste must not be read as the ask. In the training
/// split, an out-of-scope line with a placeholder also comes with a second material, whole.
fn compose(written: &[&Written], materials: &[Material], split: &str) -> Result<String, String> {
    let mut pools: HashMap<&str, (Vec<&Material>, usize)> = HashMap::new();
    for (n, kind) in KINDS.iter().enumerate() {
        let pool: Vec<&Material> = materials.iter().filter(|m| m.kind == *kind).collect();
        let order = shuffled(pool.len(), SEED + n as u64);
        pools.insert(kind, (order.iter().map(|i| pool[*i]).collect(), 0));
    }
    let mut out = String::new();
    // One composed line of `w`: its text with the placeholder filled, and the material's id.
    let mut push = |w: &Written, text: &str, material: Value| {
        let line = json!({"text": text, "label": w.label, "batch": w.batch, "lang": w.lang, "material": material});
        out.push_str(&line.to_string());
        out.push('\n');
    };
    let mut placeholders = 0usize;
    for w in written {
        let Some((kind, range)) = w.placeholder() else {
            push(w, &w.text, Value::Null);
            continue;
        };
        placeholders += 1;
        if split == "train" && placeholders % 3 == 0 {
            push(w, w.written().trim(), Value::Null);
        }
        let Some((pool, next)) = pools.get_mut(kind).filter(|(p, _)| !p.is_empty()) else {
            return Err(format!("{}: no {split} material of kind \"{kind}\"", w.at));
        };
        let filled = |with: &str| {
            let mut text = w.text.clone();
            text.replace_range(range.clone(), with);
            text
        };
        if split == "train" && w.label == OUT_OF_SCOPE {
            // An out-of-scope line with a placeholder comes twice, first with another material,
            // whole: what is pasted with nothing asked of it is the commonest out-of-scope
            // prompt let through.
            let other = pool[(*next + pool.len() / 2) % pool.len()];
            push(w, &filled(&other.text), Value::String(other.id.clone()));
        }
        let m = pool[*next % pool.len()];
        *next += 1;
        if placeholders % 3 == 1 {
            let short = excerpt(&m.text, EXCERPTS[(placeholders / 3) % 3]);
            push(w, &filled(short), Value::String(format!("{}#short", m.id)));
        } else {
            push(w, &filled(&m.text), Value::String(m.id.clone()));
        }
    }
    Ok(out)
}

/// The lengths the short pastes are cut to, in turn.
const EXCERPTS: [usize; 3] = [150, 250, 400];

/// The start of `text` up to about `max` bytes: whole lines, then the whole sentences of the
/// next line that fit; when less than half of `max` was taken (a title line alone is not a
/// paste), at least one more sentence, or the line cut at `max`.
fn excerpt(text: &str, max: usize) -> &str {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        if end + line.len() <= max {
            end += line.len();
            continue;
        }
        let mut cut = 0;
        for (i, c) in line.char_indices() {
            if matches!(c, '.' | '?' | '!' | '。' | '？' | '！') {
                let at = i + c.len_utf8();
                if end + at > max && (cut > 0 || end * 2 >= max) {
                    break;
                }
                cut = at;
                if end + at > max {
                    break;
                }
            }
        }
        if cut == 0 && end * 2 < max {
            // No sentence fits: the line up to `max`, ended at a space where there is one.
            let room = max - end;
            let mut at = room.min(line.len());
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            cut = line[..at]
                .rfind(' ')
                .filter(|s| *s * 2 > room)
                .unwrap_or(at);
        }
        end += cut;
        break;
    }
    text[..end].trim_end()
}

fn shingles(text: &str) -> HashSet<String> {
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < 3 {
        return HashSet::from([words.join(" ")]);
    }
    words.windows(3).map(|w| w.join(" ")).collect()
}

/// The prompts under `outside/` (none when the folder is absent), as written lines of batch
/// `outside`.
fn read_outside(dir: &Path) -> Result<Vec<Written>, String> {
    let folder = dir.join("outside");
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for path in files(&folder, "")? {
        for (at, v) in read_jsonl(&path)? {
            out.push(Written {
                text: field(&v, "text", &at)?,
                label: field(&v, "label", &at)?,
                batch: "outside".to_string(),
                lang: field(&v, "lang", &at)?,
                at,
            });
        }
    }
    Ok(out)
}

/// Pairs of lines whose written parts share more than half their word 3-grams.
pub fn near_duplicates(written: &[&Written]) -> Vec<(usize, usize, f64)> {
    let sets: Vec<HashSet<String>> = written.iter().map(|w| shingles(&w.written())).collect();
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in sets.iter().enumerate() {
        for g in s {
            index.entry(g).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let mut shared: BTreeMap<usize, usize> = BTreeMap::new();
        for g in s {
            for j in &index[g.as_str()] {
                if *j > i {
                    *shared.entry(*j).or_default() += 1;
                }
            }
        }
        for (j, inter) in shared {
            let union = s.len() + sets[j].len() - inter;
            let jaccard = inter as f64 / union.max(1) as f64;
            if jaccard > 0.5 {
                out.push((i, j, jaccard));
            }
        }
    }
    out
}

/// What the corpus must hold: per split, the least examples per label, and shares.
fn rules_broken(written: &[&Written], split: &str, least: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
    let mut langs: BTreeMap<&str, usize> = BTreeMap::new();
    for w in written {
        *labels.entry(&w.label).or_default() += 1;
        *langs.entry(&w.lang).or_default() += 1;
    }
    if labels.len() != 15 || !labels.contains_key(OUT_OF_SCOPE) {
        problems.push(format!(
            "{split}: needs the 14 tasks and {OUT_OF_SCOPE}, has {:?}",
            labels.keys().collect::<Vec<_>>()
        ));
    }
    for (label, n) in &labels {
        if *n < least {
            problems.push(format!(
                "{split}: {label} has {n} examples, fewer than {least}"
            ));
        }
    }
    let total = written.len().max(1) as f64;
    let pasted = written
        .iter()
        .filter(|w| w.placeholder().is_some() || w.text.contains("```") || w.text.contains("\n\n"))
        .count() as f64;
    if pasted / total < 1.0 / 3.0 {
        problems.push(format!(
            "{split}: {:.0}% have pasted material, fewer than a third",
            100.0 * pasted / total
        ));
    }
    let english = langs.get("en").copied().unwrap_or(0) as f64;
    if 1.0 - english / total < 0.2 {
        problems.push(format!(
            "{split}: {:.0}% are not English, less than 20%",
            100.0 * (1.0 - english / total)
        ));
    }
    let rtl = ["ar", "he", "fa", "ur"]
        .iter()
        .any(|l| langs.contains_key(l));
    if langs.len() < 9 || !langs.contains_key("zh") || !langs.contains_key("ja") || !rtl {
        problems.push(format!(
            "{split}: needs 8 languages besides English, with zh, ja and a right-to-left one; has {:?}",
            langs.keys().collect::<Vec<_>>()
        ));
    }
    problems
}

pub fn corpus(dir: &str, check: bool) -> i32 {
    let dir = Path::new(dir);
    let result = (|| -> Result<Vec<String>, String> {
        let written = read_written(dir)?;
        let outside = read_outside(dir)?;
        let mut problems = Vec::new();
        let labels: HashSet<&str> = written.iter().map(|w| w.label.as_str()).collect();
        for w in outside
            .iter()
            .filter(|w| !labels.contains(w.label.as_str()))
        {
            problems.push(format!("{}: unknown label \"{}\"", w.at, w.label));
        }
        let all: Vec<&Written> = written.iter().chain(&outside).collect();
        for (i, j, jaccard) in near_duplicates(&all) {
            problems.push(format!(
                "near-duplicates ({jaccard:.2}): {} and {}",
                all[i].at, all[j].at
            ));
        }
        for (split, file, least) in [("train", "tasks.jsonl", 400), ("test", "test.jsonl", 60)] {
            let lines: Vec<&Written> = written
                .iter()
                .filter(|w| w.is_test() == (split == "test"))
                .collect();
            problems.extend(rules_broken(&lines, split, least));
            let composed = compose(&lines, &read_materials(dir, split)?, split)?;
            let path = dir.join(file);
            if check {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(composed.as_str()) {
                    problems.push(format!(
                        "{} is not what the batches and materials make: run `taskrouter corpus {}`",
                        path.display(),
                        dir.display()
                    ));
                }
            } else {
                std::fs::write(&path, &composed)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                out!(
                    "{}: {} examples from {} written lines",
                    path.display(),
                    composed.lines().count(),
                    lines.len()
                );
            }
        }
        Ok(problems)
    })();
    match result {
        Ok(problems) if problems.is_empty() => 0,
        Ok(problems) => {
            for p in problems {
                eprintln!("taskrouter: {p}");
            }
            1
        }
        Err(e) => {
            eprintln!("taskrouter: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn an_excerpt_is_whole_lines_then_whole_sentences() {
        let text =
            "Title\n\nFirst sentence here. Second one is longer than that. Third.\nNext line.";
        assert_eq!(excerpt(text, 30), "Title\n\nFirst sentence here.");
        assert_eq!(
            excerpt(text, 60),
            "Title\n\nFirst sentence here. Second one is longer than that."
        );
        assert_eq!(excerpt(text, 500), text);
        // Lines that fit are taken whole; the next one is not cut when enough was taken.
        let log = "line one of the log\nline two of the log\nline three of the log\n";
        assert_eq!(excerpt(log, 45), "line one of the log\nline two of the log");
    }

    #[test]
    fn a_line_without_sentences_is_cut_at_a_space() {
        let data = "k1=v1 k2=v2 k3=v3 k4=v4 k5=v5 k6=v6 k7=v7 k8=v8";
        assert_eq!(excerpt(data, 20), "k1=v1 k2=v2 k3=v3");
        // A first sentence longer than the limit is still taken whole.
        assert_eq!(excerpt("One long sentence. Two.", 5), "One long sentence.");
        assert_eq!(excerpt("日本語の文です。次の文。", 10), "日本語の文です。");
    }
}
