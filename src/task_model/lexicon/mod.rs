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
//! It is looked up through an index read as it is (`index`). Native builds (the CLI that trains,
//! the tests) have the text compiled in and build the index from it once (`build`); the Worker
//! reads the same index, built ahead of time (`taskrouter lexicon --out models/lexicon.trlx`; a
//! unit test checks the shipped copy is what the text builds), as a static asset its shell
//! installs (`install`), beside the model.

#[cfg(not(target_arch = "wasm32"))]
mod build;
mod index;

#[cfg(not(target_arch = "wasm32"))]
use super::text::fnv1a;
pub use index::Lexicon;
use std::sync::OnceLock;

/// The lexicon's files, in this order: compiled into native builds (the CLI that trains, the
/// tests), which fingerprint them and build their index.
#[cfg(not(target_arch = "wasm32"))]
const SOURCES: &[&str] = &[
    include_str!("../../../data/tasks/lexicon/g1-west.tsv"),
    include_str!("../../../data/tasks/lexicon/g2-east.tsv"),
    include_str!("../../../data/tasks/lexicon/g3-asia.tsv"),
    include_str!("../../../data/tasks/lexicon/g4-mideast.tsv"),
    include_str!("../../../data/tasks/lexicon/g5-southasia.tsv"),
    include_str!("../../../data/tasks/lexicon/g6-africa.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-1.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-2.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-3.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-4.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-5.tsv"),
    include_str!("../../../data/tasks/lexicon/p2-6.tsv"),
];

/// The lexicon's index among the Worker's static assets (scripts/build-wasm.sh copies it from
/// `models/`): read once per isolate with the task model, which keeps it out of the wasm.
pub const ASSET: &str = "/lexicon.trlx";

/// The fingerprint of the lexicon's text: FNV-1a of its files as if joined, never 0.
#[cfg(not(target_arch = "wasm32"))]
fn fingerprint_of(parts: &[&str]) -> u32 {
    let bytes: Vec<&[u8]> = parts.iter().map(|s| s.as_bytes()).collect();
    fnv1a(0x1e71_c0de, &bytes).max(1)
}

/// The index of the lexicon compiled in, as `taskrouter lexicon` writes it for the Worker.
#[cfg(not(target_arch = "wasm32"))]
pub fn shipped_index() -> Result<Vec<u8>, String> {
    build::index(SOURCES, fingerprint_of(SOURCES))
}

/// Natively: the index of the lexicon compiled in, built once per process.
#[cfg(not(target_arch = "wasm32"))]
fn builtin() -> Result<&'static Lexicon<'static>, String> {
    static BUILT: OnceLock<Result<Lexicon<'static>, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let bytes: &'static [u8] = Box::leak(shipped_index()?.into_boxed_slice());
            Lexicon::read(bytes)
        })
        .as_ref()
        .map_err(|why| format!("the lexicon compiled in: {why}"))
}

/// In the Worker: what the shell installed from the static asset, or why there is none.
#[cfg(target_arch = "wasm32")]
static INSTALLED: OnceLock<Result<Lexicon<'static>, String>> = OnceLock::new();

#[cfg(target_arch = "wasm32")]
fn builtin() -> Result<&'static Lexicon<'static>, String> {
    match INSTALLED.get() {
        Some(Ok(lexicon)) => Ok(lexicon),
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

/// The shell hands over the lexicon's index (or why there is none): its header checked, kept
/// for the isolate's life and read as it is.
#[cfg(target_arch = "wasm32")]
pub fn install(file: Result<Vec<u8>, String>) {
    let lexicon = file
        .and_then(|bytes| Lexicon::read(Box::leak(bytes.into_boxed_slice())))
        .map_err(|e| format!("the lexicon ({ASSET} in the Worker's static assets): {e}"));
    let _ = INSTALLED.set(lexicon);
}

/// The lexicon's fingerprint (FNV-1a of its files, never 0): a model records the one it was
/// trained with. 0 in the Worker when it has no lexicon (`loaded` says why).
pub fn fingerprint() -> u32 {
    builtin().map_or(0, |l| l.fingerprint())
}

/// The lexicon's fingerprint, or why the Worker has no lexicon (its asset is missing, or has
/// not been read yet): a model that reads concepts needs one.
pub fn loaded() -> Result<u32, String> {
    builtin().map(|l| l.fingerprint())
}

impl Lexicon<'static> {
    /// The router's lexicon (natively built on first use; in the Worker, empty until the shell
    /// has installed it).
    pub fn builtin() -> &'static Lexicon<'static> {
        static EMPTY: OnceLock<Lexicon<'static>> = OnceLock::new();
        builtin().unwrap_or_else(|_| EMPTY.get_or_init(Lexicon::default))
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

    /// The lexicon of `text`, through its index.
    fn lexicon_of(text: &str) -> Lexicon<'static> {
        let bytes = build::index(&[text], 7).unwrap();
        Lexicon::read(Box::leak(bytes.into_boxed_slice())).unwrap()
    }

    #[test]
    fn words_stems_and_unspaced_scripts_match_as_they_should() {
        let l = lexicon_of(TINY);
        assert_eq!(l.fingerprint(), 7);
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
    fn phrases_and_stems_after_the_first_word_match_whole_words_in_a_row() {
        let l = lexicon_of(
            "howto\ten\thow do i\n\
             explain\ten\twhat does*\n\
             explain\ten\twhat is\n\
             summarise\ten\tsum up\n\
             numbers\ten\tsum\n",
        );
        assert_eq!(l.concepts("what doesn't work"), [("explain", 1)]);
        assert_eq!(l.concepts("what is it, what is that"), [("explain", 2)]);
        assert!(l.concepts("what it is").is_empty());
        assert!(l.concepts("how do").is_empty(), "a phrase cut short");
        // One word that starts two forms: both read; concepts in the order the text names them.
        assert_eq!(
            l.concepts("sum up the sum"),
            [("summarise", 1), ("numbers", 2)]
        );
        assert!(Lexicon::default().concepts("how do i sum up").is_empty());
    }

    #[test]
    fn an_index_that_is_not_one_is_refused_with_its_reason() {
        let good = build::index(&[TINY], 7).unwrap();
        assert_eq!(
            build::index(&[TINY], 7).unwrap(),
            good,
            "the same text, the same bytes"
        );
        assert!(Lexicon::read(&good).is_ok());
        let refused = |bytes: &[u8]| Lexicon::read(bytes).err().unwrap();
        assert!(refused(b"").contains("no TRLX header"));
        assert!(refused(TINY.as_bytes()).contains("no TRLX header"));
        let mut v2 = good.clone();
        v2[4] = 2;
        assert!(refused(&v2).contains("format v2"), "{}", refused(&v2));
        assert!(refused(&good[..good.len() - 1]).contains("shorter than its header says"));
        assert!(refused(&good[..40]).contains("ends inside its concepts"));
        let mut longer = good.clone();
        longer.push(0);
        assert!(refused(&longer).contains("longer than its header says"));
        let mut odd = good.clone();
        odd[16] = 3;
        assert!(refused(&odd).contains("power of two"));
        // A header whose sizes cannot fit the file is refused, not trusted.
        let mut huge = good.clone();
        huge[16..20].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        assert!(refused(&huge).contains("shorter than its header says"));
        // Slots that point past every group find nothing, and nothing panics.
        let mut at = index::HEADER;
        for _ in 0..u16::from_le_bytes([good[6], good[7]]) {
            at += 1 + usize::from(good[at]);
        }
        let slots = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
        let mut wild = good.clone();
        for slot in wild[at..at + 4 * slots].chunks_exact_mut(4) {
            if slot != [0; 4] {
                slot.copy_from_slice(&u32::MAX.to_le_bytes());
            }
        }
        let wild = Lexicon::read(&wild).unwrap();
        assert!(wild
            .concepts("please summarise this, good morning")
            .is_empty());
    }

    #[test]
    fn the_shipped_index_is_what_the_lexicon_s_files_build() {
        // SOURCES lists every file of the folder, in name order.
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
        // The copy the Worker reads (scripts/build-wasm.sh copies it among its assets).
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/models/lexicon.trlx");
        let built = shipped_index().unwrap();
        assert!(
            std::fs::read(shipped).unwrap() == built,
            "{shipped} is not what data/tasks/lexicon/*.tsv build: write it anew with \
             `cargo run --release -p taskrouter-cli -- lexicon --out models/lexicon.trlx`"
        );
        let l = Lexicon::read(&built).unwrap();
        assert_eq!(l.fingerprint(), fingerprint());
        assert_eq!(loaded(), Ok(fingerprint()));
        assert_eq!(l.len(), Lexicon::builtin().len());
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
