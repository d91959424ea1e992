//! A hand-written lexicon of task words in the corpus's languages (`data/tasks/lexicon/*.tsv`):
//! each entry maps a word, a stem or a phrase of one language to a concept that means the same in
//! every language ("zusammenfass*", "要約" and "summar*" to `summarise`), so that an ask in a
//! language the training writers used little is read by words the model learned in others.
//! `features` gives the concepts found in the instruction a hash space of their own.
//!
//! An entry is `concept<TAB>lang<TAB>form`, the form lowercase: a whole word or phrase, a stem
//! ending in `*` (matches words that start with it), or, in the scripts written without spaces
//! (Han, kana, Thai, Lao, Khmer, Myanmar), text that matches anywhere. Written by separate
//! sessions from a brief (a list of concepts and what they cover), without the corpus.
//!
//! Native builds (the CLI that trains, the tests) have the files compiled in; the Worker reads
//! them joined, as a static asset its shell installs (`install`), beside the model.

use super::text::{bigram_script, fnv1a, is_han, tokens_of_lowered, Token};
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

/// The lexicon's files, in this order: compiled into native builds (the CLI that trains, the
/// tests); the Worker reads them joined, as the static asset `ASSET`.
#[cfg(not(target_arch = "wasm32"))]
const SOURCES: &[&str] = &[
    include_str!("../../data/tasks/lexicon/g1-west.tsv"),
    include_str!("../../data/tasks/lexicon/g2-east.tsv"),
    include_str!("../../data/tasks/lexicon/g3-asia.tsv"),
    include_str!("../../data/tasks/lexicon/g4-mideast.tsv"),
    include_str!("../../data/tasks/lexicon/g5-southasia.tsv"),
    include_str!("../../data/tasks/lexicon/g6-africa.tsv"),
    include_str!("../../data/tasks/lexicon/p2-1.tsv"),
    include_str!("../../data/tasks/lexicon/p2-2.tsv"),
    include_str!("../../data/tasks/lexicon/p2-3.tsv"),
    include_str!("../../data/tasks/lexicon/p2-4.tsv"),
    include_str!("../../data/tasks/lexicon/p2-5.tsv"),
    include_str!("../../data/tasks/lexicon/p2-6.tsv"),
];

/// The lexicon's files joined, among the Worker's static assets (scripts/build-wasm.sh writes
/// it): read once per isolate with the task model, which keeps 114 KB (gzipped) out of the wasm.
/// Joined, they read the same entries and have the same fingerprint (a unit test checks it).
pub const ASSET: &str = "/lexicon.tsv";

/// The lexicon's text and fingerprint, once known.
struct Source {
    parts: &'static [&'static str],
    fingerprint: u32,
}

impl Source {
    fn of(parts: &'static [&'static str]) -> Source {
        let bytes: Vec<&[u8]> = parts.iter().map(|s| s.as_bytes()).collect();
        Source {
            parts,
            fingerprint: fnv1a(0x1e71_c0de, &bytes).max(1),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn source() -> Result<&'static Source, String> {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    Ok(SOURCE.get_or_init(|| Source::of(SOURCES)))
}

/// In the Worker: what the shell installed from the static asset, or why there is none.
#[cfg(target_arch = "wasm32")]
static INSTALLED: OnceLock<Result<Source, String>> = OnceLock::new();

#[cfg(target_arch = "wasm32")]
fn source() -> Result<&'static Source, String> {
    match INSTALLED.get() {
        Some(Ok(source)) => Ok(source),
        Some(Err(why)) => Err(why.clone()),
        None => Err(format!(
            "the lexicon ({ASSET} in the Worker's static assets) has not been read yet"
        )),
    }
}

/// Whether the shell has yet to hand over the lexicon (in the Worker, until its first read that
/// succeeds or says the asset is missing).
#[cfg(target_arch = "wasm32")]
pub fn wanted() -> bool {
    INSTALLED.get().is_none()
}

/// The shell hands over the lexicon's asset (or why there is none): kept for the isolate's life.
#[cfg(target_arch = "wasm32")]
pub fn install(file: Result<Vec<u8>, String>) {
    let source = file
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| "the lexicon is not UTF-8 text".to_string())
        })
        .map(|text| {
            // Read once per isolate and kept for its life, as the compiled-in text is natively:
            // the index borrows it.
            let text: &'static str = Box::leak(text.into_boxed_str());
            Source::of(Box::leak(Box::new([text])))
        })
        .map_err(|e| format!("the lexicon ({ASSET} in the Worker's static assets): {e}"));
    let _ = INSTALLED.set(source);
}

/// The lexicon's fingerprint (FNV-1a of its files, never 0): a model records the one it was
/// trained with. 0 in the Worker when it has no lexicon (`loaded` says why).
pub fn fingerprint() -> u32 {
    source().map_or(0, |s| s.fingerprint)
}

/// The lexicon's fingerprint, or why the Worker has no lexicon (its asset is missing, or has
/// not been read yet): a model that reads concepts needs one.
pub fn loaded() -> Result<u32, String> {
    source().map(|s| s.fingerprint)
}

/// A form that starts with a word: the words after the first (as `features` reads a prompt's
/// words), and whether the last may go on (`stem*`).
struct Phrase<'a> {
    rest: Vec<&'a str>,
    stem: bool,
    concept: u16,
}

/// The lexicon, indexed for lookups by word. Its forms are slices of its sources: building it
/// is a hash insert per entry, no copy.
#[derive(Default)]
pub struct Lexicon<'a> {
    concepts: Vec<&'a str>,
    entries: usize,
    /// Whole words and phrases, by their first word.
    by_word: FxHashMap<&'a str, Vec<Phrase<'a>>>,
    /// Stems of one word, by their first three characters (two for two-character stems).
    stems: FxHashMap<&'a str, Vec<(&'a str, u16)>>,
    /// Forms in the scripts written without spaces, by their first two characters.
    unspaced: FxHashMap<[char; 2], Vec<(&'a str, u16)>>,
}

/// Han and kana, Thai, Lao, Khmer and Myanmar: written without spaces, so a form matches anywhere.
fn unspaced(c: char) -> bool {
    is_han(c) || (bigram_script(c) && !matches!(c as u32, 0xac00..=0xd7a3))
}

/// The words of lowercased text as `features` reads them; a Han or kana run between words is an
/// empty word, so no phrase spans it.
fn words(lowered: &str) -> Vec<&str> {
    let mut out = Vec::new();
    tokens_of_lowered(lowered, |t| match t {
        Token::Word(w) => out.push(w),
        Token::Han(_) => out.push(""),
    });
    out
}

/// The first two and the first three characters of `w` (each when it has that many).
fn heads(w: &str) -> [Option<&str>; 2] {
    // Where each character ends: after the second, after the third.
    let mut ends = w.char_indices().map(|(i, _)| i).chain([w.len()]).skip(2);
    [ends.next(), ends.next()].map(|end| end.map(|e| &w[..e]))
}

impl<'a> Lexicon<'a> {
    /// The lexicon from TSV sources (`concept<TAB>lang<TAB>form`, the form lowercase, as a unit
    /// test checks the shipped files' are); malformed lines are skipped.
    pub fn parse(sources: &[&'a str]) -> Lexicon<'a> {
        let mut l = Lexicon::default();
        let mut ids: FxHashMap<&'a str, u16> = FxHashMap::default();
        for line in sources.iter().flat_map(|s| s.lines()) {
            let mut fields = line.split('\t');
            let (Some(concept), Some(_lang), Some(form), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if concept.starts_with('#') || concept.is_empty() {
                continue;
            }
            let (form, stem) = match form.strip_suffix('*') {
                Some(f) => (f.trim(), true),
                None => (form.trim(), false),
            };
            let Some(first) = form.chars().next() else {
                continue;
            };
            let id = *ids.entry(concept).or_insert_with(|| {
                l.concepts.push(concept);
                (l.concepts.len() - 1) as u16
            });
            if unspaced(first) {
                let mut chars = form.chars();
                if let (Some(a), Some(b)) = (chars.next(), chars.next()) {
                    l.unspaced.entry([a, b]).or_default().push((form, id));
                    l.entries += 1;
                }
                continue;
            }
            match &words(form)[..] {
                [] => continue,
                [one] if stem => {
                    let [two, three] = heads(one);
                    let Some(key) = three.or(two) else {
                        continue;
                    };
                    l.stems.entry(key).or_default().push((one, id));
                }
                [first, rest @ ..] => {
                    if first.is_empty() {
                        continue;
                    }
                    l.by_word.entry(first).or_default().push(Phrase {
                        rest: rest.to_vec(),
                        stem,
                        concept: id,
                    });
                }
            }
            l.entries += 1;
        }
        l
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Each concept found in `lowered` (lowercase text), with how many places it was found at
    /// (a word, or a character of an unspaced script).
    pub fn concepts(&self, lowered: &str) -> Vec<(&'a str, u32)> {
        let mut found: Vec<(u16, usize)> = Vec::new();
        let words = words(lowered);
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            for p in self.by_word.get(w).into_iter().flatten() {
                let next = words.get(i + 1..i + 1 + p.rest.len()).unwrap_or_default();
                let fits = next.len() == p.rest.len()
                    && next.iter().zip(&p.rest).enumerate().all(|(k, (w, r))| {
                        if p.stem && k + 1 == p.rest.len() {
                            w.starts_with(r)
                        } else {
                            w == r
                        }
                    });
                if fits {
                    found.push((p.concept, i));
                }
            }
            for key in heads(w).into_iter().flatten() {
                for (stem, concept) in self.stems.get(key).into_iter().flatten() {
                    if w.starts_with(stem) {
                        found.push((*concept, i));
                    }
                }
            }
        }
        if !self.unspaced.is_empty() && lowered.chars().any(unspaced) {
            let mut at = lowered.char_indices().peekable();
            let mut j = 0;
            while let Some((i, a)) = at.next() {
                j += 1;
                let Some(&(_, b)) = at.peek() else {
                    break;
                };
                if !unspaced(a) {
                    continue;
                }
                for (form, concept) in self.unspaced.get(&[a, b]).into_iter().flatten() {
                    if lowered[i..].starts_with(form) {
                        found.push((*concept, words.len() + j));
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        let mut out: Vec<(&'a str, u32)> = Vec::new();
        let mut last = None;
        for (concept, _) in found {
            match out.last_mut() {
                Some((_, n)) if last == Some(concept) => *n += 1,
                _ => out.push((self.concepts[usize::from(concept)], 1)),
            }
            last = Some(concept);
        }
        out
    }
}

impl Lexicon<'static> {
    /// The router's lexicon, built on first use (what that costs: `cargo bench --bench route --
    /// lexicon`); in the Worker, empty until the shell has installed it.
    pub fn builtin() -> &'static Lexicon<'static> {
        static BUILT: OnceLock<Lexicon<'static>> = OnceLock::new();
        static EMPTY: OnceLock<Lexicon<'static>> = OnceLock::new();
        match source() {
            Ok(source) => BUILT.get_or_init(|| Lexicon::parse(source.parts)),
            Err(_) => EMPTY.get_or_init(Lexicon::default),
        }
    }

    /// The router's lexicon, built anew (empty in the Worker before it is installed).
    pub fn build() -> Lexicon<'static> {
        source()
            .map(|source| Lexicon::parse(source.parts))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "# a comment\n\
        summarise\ten\tsummar*\n\
        summarise\tde\tzusammenfass*\n\
        summarise\tzh\t总结\n\
        summarise\ten\ttl;dr\n\
        greeting\ten\thi\n\
        greeting\ten\tgood morning\n\
        howto\ten\thow do i\n\
        summarise\tko\t요약*\n\
        summarise\tth\tสรุป\n\
        bad line without tabs\n";

    #[test]
    fn words_stems_and_unspaced_scripts_match_as_they_should() {
        let l = Lexicon::parse(&[TINY]);
        assert_eq!(l.len(), 9);
        assert_eq!(l.concepts("bitte zusammenfassen"), [("summarise", 1)]);
        assert_eq!(l.concepts("请总结一下"), [("summarise", 1)]);
        assert_eq!(l.concepts("tl;dr pls, summary too"), [("summarise", 2)]);
        // A stem matches only at a word's start; a whole word only as a whole word.
        assert!(l.concepts("an unsummarised host").is_empty());
        assert!(l.concepts("this is high").is_empty());
        assert_eq!(l.concepts("hi! good morning"), [("greeting", 2)]);
        assert!(l.concepts("").is_empty());
        // Phrases are whole words in a row; Hangul words are spaced, Thai is not.
        assert_eq!(l.concepts("so how do i reset it?"), [("howto", 1)]);
        assert!(l.concepts("how do it").is_empty());
        assert_eq!(l.concepts("이 글 요약해줘"), [("summarise", 1)]);
        assert_eq!(l.concepts("ช่วยสรุปให้หน่อย"), [("summarise", 1)]);
    }

    /// The concepts the writers were briefed with.
    const BRIEFED: &[&str] = &[
        "translate",
        "language_name",
        "summarise",
        "grammar",
        "rewrite",
        "code",
        "prog_name",
        "format",
        "error",
        "fix",
        "extract",
        "classify",
        "marketing",
        "long_form",
        "write",
        "reasoning",
        "numbers",
        "billing",
        "account",
        "orders",
        "howto",
        "policy",
        "upset",
        "complaint",
        "greeting",
        "thanks",
        "smalltalk",
        "roleplay",
        "opinion",
        "joke",
        "explain",
        "list",
        "deixis",
        "email",
        "test",
    ];

    #[test]
    fn every_line_of_the_lexicon_is_well_formed() {
        for line in SOURCES.iter().flat_map(|s| s.lines()) {
            if line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "three fields: {line:?}");
            let (concept, lang, form) = (fields[0], fields[1], fields[2]);
            assert!(BRIEFED.contains(&concept), "concept: {line:?}");
            assert!(
                (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase()),
                "lang: {line:?}"
            );
            let bare = form.strip_suffix('*').unwrap_or(form);
            assert_eq!(bare, bare.trim(), "no spaces around: {line:?}");
            assert_eq!(bare, bare.to_lowercase(), "lowercase: {line:?}");
            assert!(
                bare.chars().count() >= 2,
                "two characters at least: {line:?}"
            );
        }
    }

    #[test]
    fn the_files_joined_as_the_worker_reads_them_are_the_same_lexicon() {
        // scripts/build-wasm.sh joins every .tsv of the folder, in name order.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tasks/lexicon");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tsv"))
            .collect();
        names.sort();
        let files: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(format!("{dir}/{n}")).unwrap())
            .collect();
        assert_eq!(
            files, SOURCES,
            "SOURCES lists every file of {dir}, in name order"
        );
        // Each file ends its last line, so joined they read the same lines.
        assert!(SOURCES.iter().all(|s| s.ends_with('\n')));
        let joined: &'static str = Box::leak(SOURCES.concat().into_boxed_str());
        let one: &'static [&'static str] = Box::leak(Box::new([joined]));
        assert_eq!(Source::of(one).fingerprint, fingerprint());
        assert_eq!(loaded(), Ok(fingerprint()));
        assert_eq!(Lexicon::parse(one).len(), Lexicon::builtin().len());
    }

    #[test]
    fn the_builtin_lexicon_reads_every_line() {
        let l = Lexicon::builtin();
        let lines = SOURCES
            .iter()
            .flat_map(|s| s.lines())
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(l.len(), lines, "every entry line is an entry");
        assert_eq!(l.concepts("please summarise this"), [("summarise", 1)]);
    }
}
