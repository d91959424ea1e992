//! What the task model reads in a prompt. A prompt is usually an instruction plus pasted text,
//! code or data, and the task is in the instruction: `split` finds it (the first and last
//! blocks when short, else their first and last lines when short, else sentences; after a short
//! first block, the last line when it names a task, as an ask after a pasted text's title does;
//! lines ending in a colon; in a short first block that reads "lead: text", the lead), and
//! `features` gives the instruction and the material their own hash spaces, each normalised on
//! its own, so long pasted context cannot drown the instruction.
//!
//! Instruction features: words, word bigrams, character 3- to 5-grams inside words (summarise,
//! summarize, summary and Zusammenfassung share some; 2- to 5-grams in Hangul, Thai, Lao, Khmer and
//! Myanmar words), and Han/kana characters and character bigrams (Chinese and Japanese are not
//! split into words); the instruction's first and last sentences again in a space of their own; and
//! the concepts a hand-written lexicon finds in the instruction (`lexicon`: "zusammenfass*", "要約"
//! and "summar*" are all `summarise`), in a space of their own, for models that record the lexicon
//! (file format v6). Material features: words and Han/kana characters only, plus its shape (how
//! long, fenced, code-like). System prompt: words. Values are sublinear term frequencies (1 + ln
//! tf), hashed into `buckets` (modulo); each piece of the instruction is normalised on its own, so
//! a short ask beside a paragraph read as instruction (two short blocks) weighs as much as the
//! paragraph.

use super::lexicon::Lexicon;
pub use super::text::fnv1a;
use super::text::{bigram_script, tokens, tokens_of_lowered, Token};

/// Text read per prompt: enough to know the task, and bounds the cost of a long prompt.
const MAX_TEXT: usize = 16 * 1024;
/// Of a longer prompt, the end read besides its start.
const TAIL: usize = 4096;
/// Material read for its words.
const MAX_MATERIAL: usize = 4096;
/// A first or last block up to this long is all instruction; longer, only its edge sentence is.
const SHORT_BLOCK: usize = 500;
/// The most of an edge sentence taken from a long block.
const EDGE_SENTENCE: usize = 250;
/// Characters of one word read for its n-grams (Thai and other scripts without spaces make long
/// "words").
const MAX_WORD_CHARS: usize = 200;
/// Instruction text read.
const MAX_INSTRUCTION: usize = 1500;

/// The weight of each space after its own normalisation.
const MATERIAL_WEIGHT: f32 = 0.5;
const SYSTEM_WEIGHT: f32 = 0.5;
const EDGE_WEIGHT: f32 = 1.0;
const CONCEPT_WEIGHT: f32 = 1.0;
const CONCEPT_PAIR_WEIGHT: f32 = 1.0;

/// Hash spaces.
const I_WORD: u32 = 1;
const I_BIGRAM: u32 = 2;
const I_CHARS: u32 = 3;
const I_HAN: u32 = 4;
const E_WORD: u32 = 5;
const E_BIGRAM: u32 = 6;
const E_CHARS: u32 = 7;
const E_HAN: u32 = 8;
const M_WORD: u32 = 11;
const M_HAN: u32 = 12;
const SHAPE: u32 = 21;
const S_WORD: u32 = 31;
const CONCEPT: u32 = 41;
const CONCEPT_PAIR: u32 = 43;

/// The instruction and the material of a prompt, as pieces of it.
#[derive(Debug, Default, PartialEq)]
pub struct Parts<'a> {
    pub instruction: Vec<&'a str>,
    /// The instruction's first sentence (or line) and its last one, when they differ.
    pub edges: Vec<&'a str>,
    pub material: Vec<&'a str>,
    /// Whether the material includes a fenced code block.
    pub fenced: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Prose,
    Fenced,
    Quote,
    /// Between an opening tag on its own line and its closing tag (`<document>` ... `</document>`).
    Wrapped,
}

/// Blocks of `text`, appended to `blocks`: runs of lines between blank lines; fenced code and
/// quoted lines are blocks of their own, always material. Prompts built by programs mark their
/// parts instead of leaving blank lines: a marker line (a short heading such as "### Input:",
/// a lone tag such as `<document>` or `[INST]`, a rule such as `---`) ends a block like a blank
/// line and is not read; a line that starts with a role ("SYSTEM:", "User:") starts a block, read
/// without the role. With `wrapping`, what a tag on its own line wraps up to its closing tag
/// (`<document>`, `<email>`, `<doc id="2">`) is material, unless the tag names the ask
/// (`<instructions>`, `<question>`, `<user_query>`).
fn blocks_of<'a>(text: &'a str, blocks: &mut Vec<(Kind, &'a str)>, wrapping: bool) {
    let mut start: Option<(usize, Kind)> = None;
    let mut in_fence = false;
    let mut wrapped: Option<String> = None;
    let mut searches = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut at = offset;
        offset += line.len();
        let trimmed = line.trim();
        let fence = wrapped.is_none() && (trimmed.starts_with("```") || trimmed.starts_with("~~~"));
        let mut edge_of_wrap = false;
        if !in_fence && !fence {
            match &wrapped {
                Some(close) if trimmed.eq_ignore_ascii_case(close) => {
                    wrapped = None;
                    edge_of_wrap = true;
                }
                None if wrapping && searches < MAX_TAG_SEARCHES => {
                    if let Some(close) = opening_tag(trimmed) {
                        // Bounded: a prompt of many lone tags (pasted markup) costs a few scans.
                        searches += 1;
                        if text[offset..]
                            .lines()
                            .any(|l| l.trim().eq_ignore_ascii_case(&close))
                        {
                            wrapped = Some(close);
                            edge_of_wrap = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let kind = if in_fence || fence {
            Kind::Fenced
        } else if wrapped.is_some() && !edge_of_wrap {
            Kind::Wrapped
        } else if trimmed.starts_with('>') {
            Kind::Quote
        } else {
            Kind::Prose
        };
        if fence {
            in_fence = !in_fence;
        }
        let role = if kind == Kind::Prose {
            role_prefix(line)
        } else {
            0
        };
        if role > 0 {
            // A new speaker: the block before ends here, the new one starts after the role.
            if let Some((s, k)) = start.take() {
                blocks.push((k, &text[s..at]));
            }
            at += role;
        }
        let blank = edge_of_wrap
            || !matches!(kind, Kind::Fenced | Kind::Wrapped)
                && (trimmed.is_empty() || (kind == Kind::Prose && is_marker(trimmed)))
            || (role > 0 && line[role..].trim().is_empty());
        match start {
            Some((s, k)) if blank || k != kind => {
                blocks.push((k, &text[s..at]));
                start = (!blank).then_some((at, kind));
            }
            None if !blank => start = Some((at, kind)),
            _ => {}
        }
    }
    if let Some((s, k)) = start {
        blocks.push((k, &text[s..]));
    }
}

/// Opening tags looked for a closing line per prompt.
const MAX_TAG_SEARCHES: usize = 4;

/// When `line` is an opening tag alone (`<document>`, `<doc id="2">`) that does not name the ask:
/// the closing line that would end what it wraps (`</document>`).
fn opening_tag(line: &str) -> Option<String> {
    let inner = line.strip_prefix('<')?.strip_suffix('>')?;
    if inner.ends_with('/') {
        return None;
    }
    let name = inner.split_whitespace().next()?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'));
    let lowered = name.to_ascii_lowercase();
    const ASKS: [&str; 7] = [
        "instruction",
        "task",
        "question",
        "query",
        "ask",
        "request",
        "prompt",
    ];
    (valid && !ASKS.iter().any(|a| lowered.contains(a))).then(|| format!("</{name}>"))
}

/// A line that only marks where a part of a built prompt begins: a heading of one or two words
/// ("## Task", "### Instruction:"), a lone tag (`<document>`, `</text>`, `[INST]`, `<<SYS>>`), or
/// a rule (`---`, `===`).
fn is_marker(line: &str) -> bool {
    let words = |s: &str| s.split_whitespace().count();
    // A markdown heading: hashes, then a space ("#hashtag" is a word, not a heading).
    let heading = line.trim_start_matches('#');
    if heading.len() < line.len() && (heading.is_empty() || heading.starts_with([' ', '\t'])) {
        return words(heading.trim().trim_end_matches([':', '：'])) <= 2;
    }
    let tag = (line.starts_with('<') && line.ends_with('>'))
        || (line.starts_with('[') && line.ends_with(']'));
    if tag {
        return words(line) <= 2 && line.len() <= 40;
    }
    line.len() >= 3
        && line
            .chars()
            .all(|c| matches!(c, '-' | '=' | '*' | '_' | '~' | ' '))
}

/// The length of a speaker's role at the start of `line` ("SYSTEM: ", "user: ", "Assistant:"),
/// or 0.
fn role_prefix(line: &str) -> usize {
    const ROLES: [&str; 5] = ["system", "user", "assistant", "human", "ai"];
    let Some(colon) = line.find(':') else {
        return 0;
    };
    let name = &line[..colon];
    if !ROLES.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return 0;
    }
    let rest = &line[colon + 1..];
    colon + 1 + (rest.len() - rest.trim_start_matches([' ', '\t']).len())
}

/// The blocks of a prompt; one longer than `MAX_TEXT` is read at its start and its end (`TAIL`
/// bytes, from a line's start), where an ask after a long paste is.
fn read_blocks<'a>(text: &'a str, blocks: &mut Vec<(Kind, &'a str)>, wrapping: bool) {
    if text.len() <= MAX_TEXT {
        blocks_of(text, blocks, wrapping);
        return;
    }
    blocks_of(cut(text, MAX_TEXT - TAIL), blocks, wrapping);
    let mut from = text.len() - TAIL;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let tail = &text[from..];
    blocks_of(
        tail.find('\n').map_or(tail, |i| &tail[i + 1..]),
        blocks,
        wrapping,
    );
}

/// Split a prompt into instruction and material.
pub fn split(text: &str) -> Parts<'_> {
    let text = text.trim();
    let mut parts = Parts::default();
    let mut blocks: Vec<(Kind, &str)> = Vec::new();
    read_blocks(text, &mut blocks, true);
    // All of it wrapped in tags: read as if the tags were not there.
    if !blocks.iter().any(|(kind, _)| *kind == Kind::Prose) {
        blocks.clear();
        read_blocks(text, &mut blocks, false);
    }
    let prose: Vec<usize> = (0..blocks.len())
        .filter(|i| blocks[*i].0 == Kind::Prose)
        .collect();
    let first = prose.first().copied();
    let last = prose.last().copied();
    // A short first block is the ask: a long last block is then material, all of it.
    let asked_first =
        first.is_some_and(|i| first != last && blocks[i].1.trim().len() <= SHORT_BLOCK);
    for (i, (kind, block)) in blocks.iter().enumerate() {
        let block = block.trim();
        if *kind != Kind::Prose {
            parts.fenced |= *kind == Kind::Fenced;
            parts.material.push(block);
            continue;
        }
        let edge = Some(i) == first || Some(i) == last;
        if edge && block.len() <= SHORT_BLOCK {
            // "Translate to French: <text>": what follows a short lead ending in a colon is
            // what the ask is about.
            match inline_colon(block) {
                Some(at) if Some(i) == first => {
                    parts.instruction.push(block[..at].trim_end());
                    parts.material.push(block[at..].trim_start());
                }
                _ => parts.instruction.push(block),
            }
            continue;
        }
        if !edge {
            // Lines that introduce what follows ("Here is the log:") are instructions.
            for line in block.lines() {
                let l = line.trim();
                if l.len() <= EDGE_SENTENCE && (l.ends_with(':') || l.ends_with('：')) {
                    parts.instruction.push(l);
                } else {
                    parts.material.push(l);
                }
            }
            continue;
        }
        // A long edge block: its first line (first block) and last line (last block) are
        // instruction when short (an ask of two sentences, "which rows? as a table"), else its
        // first and last sentences; the rest is material.
        let (mut from, mut to) = (0, block.len());
        if Some(i) == first {
            let head = match first_line(block) {
                "" => first_sentence(block),
                line => line,
            };
            parts.instruction.push(head);
            from = head.len();
        }
        if Some(i) == last {
            let rest = &block[from..];
            let tail = match last_line(rest) {
                // A short first block may be the pasted text's title, and the ask the line
                // after it: the last line is instruction when it names a task.
                line if asked_first => {
                    if asks(line) {
                        line
                    } else {
                        ""
                    }
                }
                "" => last_sentence(rest),
                line => line,
            };
            if !tail.is_empty() {
                parts.instruction.push(tail);
                to = block.len() - tail.len();
            }
        }
        if from < to {
            parts.material.push(&block[from..to]);
        }
    }
    // The edges: where the ask begins and ends.
    if let Some(head) = parts.instruction.first().map(|p| first_sentence(p)) {
        parts.edges.push(head);
        if let Some(tail) = parts.instruction.last().map(|p| last_sentence(p)) {
            if !tail.is_empty() && tail != head {
                parts.edges.push(tail);
            }
        }
    }
    parts
}

/// Where the material starts in "lead: material", when the lead is short and the material is
/// not: the byte after the first colon.
fn inline_colon(block: &str) -> Option<usize> {
    let (at, c) = block
        .char_indices()
        .take(120)
        .find(|(_, c)| matches!(c, ':' | '：'))?;
    let end = at + c.len_utf8();
    let rest = block[end..].trim();
    // Not "12:30", nor a URL's scheme.
    let glued = block[end..].starts_with(|c: char| c.is_ascii_digit() || c == '/');
    (at >= 3 && !glued && rest.chars().count() >= 40).then_some(end)
}

fn is_end(c: char) -> bool {
    matches!(
        c,
        '.' | '?' | '!' | '\n' | '。' | '？' | '！' | ':' | '：' | '؟'
    )
}

/// Whether the character `c` at byte `at` of `text` ends a sentence: the full-width and Arabic
/// marks and a line break always do; ASCII punctuation only before a space or the end, so an
/// address (203.0.113.14), a version (v1.2), a time (12:30) or a host (example.com) stays whole.
fn ends_sentence(text: &str, at: usize, c: char) -> bool {
    is_end(c)
        && (!c.is_ascii_punctuation()
            || text[at + c.len_utf8()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace))
}

fn first_sentence(block: &str) -> &str {
    let mut end = block.len();
    for (i, c) in block.char_indices() {
        if ends_sentence(block, i, c) {
            end = i + c.len_utf8();
            break;
        }
    }
    cut(&block[..end], EDGE_SENTENCE)
}

/// The concepts that name a task or point at what was pasted ("summarise", "translate",
/// "the above"): a line with one of them is an ask, not the end of a pasted text.
const ASKING: &[&str] = &[
    "summarise",
    "translate",
    "fix",
    "rewrite",
    "classify",
    "extract",
    "explain",
    "write",
    "list",
    "format",
    "grammar",
    "long_form",
    "marketing",
    "howto",
    "reasoning",
    "deixis",
];

/// Whether `line` names a task, by the lexicon's concepts.
fn asks(line: &str) -> bool {
    !line.is_empty()
        && Lexicon::builtin()
            .concepts(&line.to_lowercase())
            .iter()
            .any(|(c, _)| ASKING.contains(c))
}

/// The first line of `block` (its end untrimmed), when it is no longer than an edge sentence;
/// else nothing.
fn first_line(block: &str) -> &str {
    let line = block.split('\n').next().unwrap_or_default();
    if line.trim_end().len() <= EDGE_SENTENCE {
        line
    } else {
        ""
    }
}

/// The last line of `block`, when it is no longer than an edge sentence; else nothing.
fn last_line(block: &str) -> &str {
    let line = block.rsplit('\n').next().unwrap_or_default().trim();
    if line.len() <= EDGE_SENTENCE {
        line
    } else {
        ""
    }
}

fn last_sentence(block: &str) -> &str {
    let body = block.trim_end_matches(|c: char| is_end(c) || c.is_whitespace());
    let start = body
        .char_indices()
        .rev()
        .find(|(i, c)| ends_sentence(body, *i, *c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let mut tail = &block[start..];
    while tail.len() > EDGE_SENTENCE {
        let mut chars = tail.chars();
        chars.next();
        tail = chars.as_str();
    }
    tail.trim()
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The salts of one family of text features: words, word bigrams, character n-grams, Han/kana.
struct Salts(u32, u32, u32, u32);
const INSTRUCTION: Salts = Salts(I_WORD, I_BIGRAM, I_CHARS, I_HAN);
const EDGES: Salts = Salts(E_WORD, E_BIGRAM, E_CHARS, E_HAN);

/// Words, word bigrams, character 3- to 5-grams inside words, and Han/kana characters and
/// bigrams of `lowered` (a piece of text, lowercased), into `space`; returns about how many words
/// it read.
fn text_features(space: &mut Space, lowered: &str, salts: Salts, gram: &mut Vec<char>) -> usize {
    let mut words = 0;
    let mut previous = 0u32;
    tokens_of_lowered(lowered, |t| match t {
        Token::Word(w) => {
            words += 1;
            space.add(salts.0, &[w.as_bytes()]);
            let h = fnv1a(0, &[w.as_bytes()]);
            if previous != 0 {
                space.add(salts.1, &[&previous.to_le_bytes(), &h.to_le_bytes()]);
            }
            previous = h;
            gram.clear();
            gram.push('_');
            gram.extend(w.chars().take(MAX_WORD_CHARS));
            gram.push('_');
            // Scripts whose short character runs are the stems: Hangul syllables (about a
            // morpheme each) and the scripts written without spaces between words (Thai, Lao,
            // Khmer, Myanmar): their character bigrams count too.
            let shortest = if gram.iter().any(|c| bigram_script(*c)) {
                2
            } else {
                3
            };
            for n in shortest..=5 {
                for g in gram.windows(n) {
                    space.char_gram(salts.2, g);
                }
            }
        }
        Token::Han(run) => {
            words += run.len().div_ceil(2);
            previous = 0;
            for c in run {
                space.char_gram(salts.3, std::slice::from_ref(c));
            }
            for g in run.windows(2) {
                space.char_gram(salts.3, g);
            }
        }
    });
    words
}

/// Collects hashed features of one space, then adds them to the output normalised.
struct Space {
    buckets: Modulo,
    hashes: Vec<u32>,
}

impl Space {
    fn new(buckets: u32) -> Space {
        Space {
            buckets: Modulo::new(buckets),
            hashes: Vec::new(),
        }
    }
    fn add(&mut self, salt: u32, parts: &[&[u8]]) {
        self.hashes.push(self.buckets.of(fnv1a(salt, parts)));
    }
    fn char_gram(&mut self, salt: u32, chars: &[char]) {
        let mut buf = [0u8; 24];
        let mut n = 0;
        for c in chars {
            n += c.encode_utf8(&mut buf[n..]).len();
        }
        self.add(salt, &[&buf[..n]]);
    }
    /// Sublinear term frequencies, L2-normalised, scaled by `weight`, appended to `out`.
    fn flush(&mut self, weight: f32, out: &mut Vec<(u32, f32)>) {
        self.hashes.sort_unstable();
        let from = out.len();
        let mut i = 0;
        while i < self.hashes.len() {
            let h = self.hashes[i];
            let mut j = i;
            while j < self.hashes.len() && self.hashes[j] == h {
                j += 1;
            }
            out.push((h, 1.0 + ((j - i) as f32).ln()));
            i = j;
        }
        let norm = out[from..].iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for f in &mut out[from..] {
                f.1 *= weight / norm;
            }
        }
        self.hashes.clear();
    }
}

/// `x % d` for a fixed `d` without a division per feature (Lemire, Kaser and Kurz, "Faster
/// remainder by direct computation", 2019: exact for every 32-bit `x` and `d`).
struct Modulo {
    d: u32,
    m: u64,
}

impl Modulo {
    fn new(d: u32) -> Modulo {
        let d = d.max(1);
        Modulo {
            d,
            m: (u64::MAX / u64::from(d)).wrapping_add(1),
        }
    }
    fn of(&self, x: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(x));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

/// What a model reads beyond the text's own features, as its file version says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concepts {
    /// Nothing more: file format v5 and older, and the comparisons in `taskrouter train
    /// --compare`.
    No,
    /// The concepts the lexicon finds in the instruction (file format v6).
    Found,
    /// Those, and each pair of them found together (file format v7, what training writes).
    Paired,
}

/// The hashed features of a prompt (the last user message and the system prompt), merged and
/// sorted by bucket: `(bucket, value)`.
pub fn features(user: &str, system: &str, buckets: u32) -> Vec<(u32, f32)> {
    features_of(split(user), system, buckets, Concepts::Paired)
}

/// `features`, reading as much of the lexicon's concepts as `concepts` says (what models of
/// older file versions read).
pub fn features_read(
    user: &str,
    system: &str,
    buckets: u32,
    concepts: Concepts,
) -> Vec<(u32, f32)> {
    features_of(split(user), system, buckets, concepts)
}

/// `features` without telling the instruction from the material: the whole prompt (its first
/// 4,096 bytes) read as instruction, and no concepts. For comparisons in `taskrouter train
/// --compare`.
pub fn features_unsplit(user: &str, system: &str, buckets: u32) -> Vec<(u32, f32)> {
    let parts = Parts {
        instruction: vec![cut(user, MAX_MATERIAL)],
        ..Parts::default()
    };
    features_of(parts, system, buckets, Concepts::No)
}

/// The instruction's pieces as read: in order, cut so that no more than 4,096 bytes of a prompt
/// without material are read in all, else 1,500.
fn instruction_read<'p>(parts: &'p Parts<'_>) -> Vec<&'p str> {
    let max = if parts.material.is_empty() {
        MAX_MATERIAL
    } else {
        MAX_INSTRUCTION
    };
    let mut read = 0;
    let mut pieces = Vec::new();
    for piece in &parts.instruction {
        if read >= max {
            break;
        }
        let piece = cut(piece, max - read);
        read += piece.len();
        pieces.push(piece);
    }
    pieces
}

/// The concepts a model that reads them finds in `user`'s instruction, each with how many
/// places it was found at, piece by piece (for `taskrouter classify`).
pub fn concepts_read(user: &str) -> Vec<(&'static str, u32)> {
    let parts = split(user);
    let lexicon = Lexicon::builtin();
    instruction_read(&parts)
        .into_iter()
        .flat_map(|piece| lexicon.concepts(&piece.to_lowercase()))
        .collect()
}

fn features_of(
    parts: Parts<'_>,
    system: &str,
    buckets: u32,
    concepts: Concepts,
) -> Vec<(u32, f32)> {
    let mut out = Vec::new();
    let mut space = Space::new(buckets);

    // The instruction, each piece lowercased once for its features and the lexicon.
    let mut words = 0usize;
    let mut gram: Vec<char> = Vec::with_capacity(32);
    let mut found: Vec<(&str, u32)> = Vec::new();
    // Each piece normalised on its own, so that a long pasted block read as instruction cannot
    // drown a short ask beside it.
    let pieces = parts.instruction.len().max(1) as f32;
    for piece in instruction_read(&parts) {
        let lowered = piece.to_lowercase();
        words += text_features(&mut space, &lowered, INSTRUCTION, &mut gram);
        space.flush(1.0 / pieces.sqrt(), &mut out);
        if concepts != Concepts::No {
            found.extend(Lexicon::builtin().concepts(&lowered));
        }
    }
    // The concepts the lexicon found in what was read as instruction, in their own space: an ask
    // in a language few writers used, by words the model learned in others.
    for (concept, n) in &found {
        for _ in 0..(*n).min(8) {
            space.add(CONCEPT, &[concept.as_bytes()]);
        }
    }
    space.flush(CONCEPT_WEIGHT, &mut out);
    // Each pair of concepts found together ("translate" with a language's name, "explain" with
    // "code"), in a space of their own: what two words say together, in any language.
    if concepts == Concepts::Paired {
        let mut names: Vec<&str> = found.iter().map(|(c, _)| *c).collect();
        names.sort_unstable();
        names.dedup();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                space.add(CONCEPT_PAIR, &[a.as_bytes(), b"|", b.as_bytes()]);
            }
        }
        space.flush(CONCEPT_PAIR_WEIGHT, &mut out);
    }

    // The prompt's first and last sentences again, in their own space: where the ask usually is,
    // even when no blank line parts it from what was pasted.
    for edge in &parts.edges {
        text_features(&mut space, &edge.to_lowercase(), EDGES, &mut gram);
    }
    space.flush(EDGE_WEIGHT, &mut out);

    // The material: what it says weighs little; its shape says something (code, data).
    let mut read = 0;
    let mut material_chars = 0;
    for piece in &parts.material {
        material_chars += piece.len();
        if read >= MAX_MATERIAL {
            continue;
        }
        let piece = cut(piece, MAX_MATERIAL - read);
        read += piece.len();
        tokens(piece, |t| match t {
            Token::Word(w) => space.add(M_WORD, &[w.as_bytes()]),
            Token::Han(run) => {
                for c in run {
                    space.char_gram(M_HAN, std::slice::from_ref(c));
                }
            }
        });
    }
    space.flush(MATERIAL_WEIGHT, &mut out);

    // Shape: how long the instruction and the material are, and whether the material is code.
    // Nothing is said of material that is not there: its absence must not stand for a label.
    let length_bucket = |n: usize| (usize::BITS - n.leading_zeros()).min(14) as u8;
    space.add(SHAPE, &[b"instruction-words", &[length_bucket(words)]]);
    if material_chars > 0 {
        space.add(
            SHAPE,
            &[b"material-chars", &[length_bucket(material_chars / 64)]],
        );
        let code_lines = parts
            .material
            .iter()
            .flat_map(|p| p.lines())
            .take(200)
            .filter(|l| {
                let t = l.trim_end();
                t.ends_with(';') || t.ends_with('{') || t.ends_with('}') || t.starts_with("  ")
            })
            .count();
        space.add(SHAPE, &[b"code-lines", &[length_bucket(code_lines)]]);
    }
    if parts.fenced {
        space.add(SHAPE, &[b"fenced"]);
    }
    let last = parts.instruction.last().map_or("", |s| s.trim());
    if last.ends_with('?') || last.ends_with('？') || last.ends_with('؟') {
        space.add(SHAPE, &[b"question"]);
    }
    for h in space.hashes.drain(..) {
        out.push((h, 0.5));
    }

    // The system prompt: its words, in their own space.
    tokens(cut(system, MAX_MATERIAL), |t| match t {
        Token::Word(w) => space.add(S_WORD, &[w.as_bytes()]),
        Token::Han(run) => {
            for c in run {
                space.char_gram(S_WORD, std::slice::from_ref(c));
            }
        }
    });
    space.flush(SYSTEM_WEIGHT, &mut out);

    // Merge repeats across spaces (hash collisions) and sort by bucket.
    out.sort_unstable_by_key(|f| f.0);
    let mut merged: Vec<(u32, f32)> = Vec::with_capacity(out.len());
    for (h, v) in out {
        match merged.last_mut() {
            Some(last) if last.0 == h => last.1 += v,
            _ => merged.push((h, v)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many buckets the features of `a` and `b` have in common.
    fn shared(a: &str, b: &str) -> usize {
        let (x, y) = (features(a, "", 1 << 20), features(b, "", 1 << 20));
        x.iter().filter(|f| y.iter().any(|g| g.0 == f.0)).count()
    }

    #[test]
    fn a_short_prompt_is_all_instruction() {
        let p = split("Translate 'good morning' into Italian, please.");
        assert_eq!(
            p.instruction,
            ["Translate 'good morning' into Italian, please."]
        );
        assert!(p.material.is_empty());
    }

    #[test]
    fn pasted_material_after_a_blank_line_or_in_a_fence_is_material() {
        let article = "The harvest was late this year. ".repeat(40);
        let text = format!("tl;dr please\n\n{article}\n\nthanks");
        let p = split(&text);
        assert_eq!(p.instruction, ["tl;dr please", "thanks"]);
        assert_eq!(p.material, [article.trim()]);
        let p = split("fix the indentation\n```\nfn main() {\n\n  let x = 1;\n}\n```\n");
        assert_eq!(p.instruction, ["fix the indentation"]);
        assert!(p.fenced);
        assert_eq!(
            p.material.len(),
            1,
            "a blank line inside a fence stays in it"
        );
    }

    #[test]
    fn a_long_block_gives_its_edge_sentences() {
        let body = "Lorem ipsum dolor sit amet. ".repeat(40);
        let text = format!("Summarise this article for me: {body}What are the key points?");
        let p = split(&text);
        assert_eq!(p.instruction[0], "Summarise this article for me:");
        assert_eq!(p.instruction[1], "What are the key points?");
        assert_eq!(p.material.len(), 1);
        // Material first, the ask last: the ask is read as instruction, and is the last edge.
        let text = format!("{body}\n\ntl;dr");
        let p = split(&text);
        assert!(p.instruction.contains(&"tl;dr"), "{p:?}");
        assert_eq!(p.edges.last(), Some(&"tl;dr"));
        assert!(p.material[0].len() > 1000);
        // A short ask first: a long last block is all material, its last line included.
        let transcript =
            "Dana: the invoice run failed again.\nMarcus: refunds go out Monday.\n".repeat(20);
        let text = format!("key takeaways as bullets pls\n\n{transcript}");
        let p = split(&text);
        assert_eq!(p.instruction, ["key takeaways as bullets pls"]);
        assert_eq!(p.edges, ["key takeaways as bullets pls"]);
        // Lines introducing what follows, between blocks.
        let long = "x = 1\n".repeat(100);
        let text =
            format!("Two files.\n\n{long}\nHere is the second one:\n{long}\n\nWhich is faster?");
        let p = split(&text);
        assert!(p.instruction.contains(&"Here is the second one:"), "{p:?}");
    }

    #[test]
    fn a_pasted_text_s_title_does_not_hide_the_ask_on_its_last_line() {
        let body = "Revenue grew 12% on the quarter, driven by the enterprise tier. ".repeat(12);
        // A title, a blank line, the text, and the ask on the line after it.
        let text =
            format!("Quarterly Operations Review\n\n{body}\nCan you summarise this as 3 bullets?");
        let p = split(&text);
        assert_eq!(
            p.instruction,
            [
                "Quarterly Operations Review",
                "Can you summarise this as 3 bullets?"
            ],
            "{p:?}"
        );
        assert_eq!(
            p.edges.last(),
            Some(&"Can you summarise this as 3 bullets?")
        );
        // A last line that names no task is the text's own: the short first block stays the ask.
        let text = format!("tl;dr pls\n\n{body}\nKind regards, Dana");
        assert_eq!(split(&text).instruction, ["tl;dr pls"]);
        // The last line is read whole when it is short: an ask of two sentences.
        let text = format!("{body}\nwhich quarter grew most? answer as a table");
        let p = split(&text);
        assert_eq!(
            p.instruction.last(),
            Some(&"which quarter grew most? answer as a table")
        );
        // And the first line: "Here is our export. Convert it to YAML" before the paste.
        let json = "  {\"id\": 1, \"name\": \"a\"},\n".repeat(30);
        let text = format!("Here is our export. Convert it to YAML\n{json}");
        assert_eq!(
            split(&text).instruction[0],
            "Here is our export. Convert it to YAML"
        );
    }

    #[test]
    fn punctuation_inside_a_word_does_not_end_a_sentence() {
        // A long block whose first line has a host, a version and a time: its first sentence is
        // that line, not "See example.".
        let line = "See example.com and the v1.2 notes before the 12:30 call with the office";
        let body = format!("{line}\n").repeat(30);
        let text = format!("{body}\nwhich IPs got a 500? list them");
        let p = split(&text);
        assert_eq!(p.instruction[0].trim_end(), line, "{p:?}");
        assert_eq!(p.edges.last(), Some(&"list them"));
        // A log that starts with an address: its first sentence is its first line, not "203.".
        let line = "203.0.113.14 - - [11/Jun/2024:14:02:11 +0000] \"GET /api HTTP/1.1\" 500 12";
        let text = format!("{}\nwhich IPs got a 500?", format!("{line}\n").repeat(30));
        assert_eq!(split(&text).instruction[0].trim_end(), line);
        assert_eq!(
            first_sentence("see example.com for v1.2 at 12:30. Then go"),
            "see example.com for v1.2 at 12:30."
        );
        assert_eq!(
            last_sentence("Done. Ask at example.com"),
            "Ask at example.com"
        );
        // Full-width and Arabic marks end a sentence with no space after them.
        assert_eq!(first_sentence("要約して。議事録です"), "要約して。");
        assert_eq!(first_sentence("لخص هذا؟النص"), "لخص هذا؟");
    }

    #[test]
    fn each_piece_of_the_instruction_weighs_the_same() {
        let minutes = "Alice: the Q3 numbers are in, revenue is up 4% but churn went from 2.1 \
                       to 2.8. Bob: that is the enterprise tier mostly. Carol: I can draft a plan.";
        let text = format!("tl;dr pls\n\n{minutes}");
        assert_eq!(split(&text).instruction, ["tl;dr pls", minutes]);
        // The instruction space (`I_*` salts) of each piece alone, in buckets wide enough that
        // nothing collides: each piece's part of the whole prompt's vector has a squared norm of
        // about a half (a little more: n-grams the two share, "_pl" of "pls" and "plan", add
        // up). Normalised together, the ask's three words would have about a tenth.
        let buckets = 1 << 24;
        let of = |piece: &str| {
            let mut space = Space::new(buckets);
            let mut gram = Vec::new();
            text_features(&mut space, &piece.to_lowercase(), INSTRUCTION, &mut gram);
            let mut hashes = space.hashes.clone();
            hashes.sort_unstable();
            hashes.dedup();
            hashes
        };
        let whole = features(&text, "", buckets);
        let norm = |hashes: &[u32]| {
            whole
                .iter()
                .filter(|(b, _)| hashes.binary_search(b).is_ok())
                .map(|(_, v)| v * v)
                .sum::<f32>()
        };
        let (ask, paste) = (norm(&of("tl;dr pls")), norm(&of(minutes)));
        assert!((0.5..0.6).contains(&ask), "{ask}");
        assert!((0.5..0.6).contains(&paste), "{paste}");
    }

    #[test]
    fn an_inline_lead_ending_in_a_colon_is_the_instruction() {
        let p = split("Translate to French: we will be closed on Friday for the bank holiday.");
        assert_eq!(p.instruction, ["Translate to French:"]);
        assert_eq!(
            p.material,
            ["we will be closed on Friday for the bank holiday."]
        );
        // Too short to be pasted text, a time, a URL: all instruction.
        for text in [
            "Fix this: teh cat",
            "Meet at 12:30 tomorrow, and bring the quarterly numbers for the review",
            "see https://example.com/a-long-path-name-for-the-docs-page please",
        ] {
            assert_eq!(split(text).instruction, [text], "{text}");
        }
    }

    #[test]
    fn a_prompt_past_the_limit_is_read_at_both_ends() {
        let paste = "The committee met on Tuesday and discussed the harvest.\n".repeat(600);
        let text = format!("Hi team,\n\n{paste}\ntl;dr please, three bullets");
        assert!(text.len() > MAX_TEXT);
        let p = split(&text);
        assert_eq!(p.instruction.first(), Some(&"Hi team,"));
        assert_eq!(p.instruction.last(), Some(&"tl;dr please, three bullets"));
        assert_eq!(p.edges, ["Hi team,", "tl;dr please, three bullets"]);
    }

    #[test]
    fn features_are_bounded_sorted_and_normalised() {
        let f = features("Summarise this please", "", 4096);
        assert!(f.iter().all(|(b, _)| *b < 4096));
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            features("HELLO there", "", 4096),
            features("hello there", "", 4096)
        );
        assert_ne!(features("x y", "", 1 << 20), features("", "x y", 1 << 20));
        let long = format!(
            "Summarise this please\n\n{}",
            "word and more words. ".repeat(3000)
        );
        assert!(
            features(&long, "", 1 << 20).len() < 600,
            "the text read is bounded"
        );
        // The instruction's own features keep their weight whatever is pasted after it.
        let instruction = || Parts {
            instruction: vec!["Summarise this please"],
            ..Parts::default()
        };
        let alone = features_of(instruction(), "", 1 << 20, Concepts::Paired);
        let material = "lorem ipsum dolor sit amet ".repeat(200);
        let with_material = features_of(
            Parts {
                material: vec![&material],
                ..instruction()
            },
            "",
            1 << 20,
            Concepts::Paired,
        );
        let kept = alone.iter().filter(|f| with_material.contains(f)).count();
        assert!(kept * 10 >= alone.len() * 9, "{kept} of {}", alone.len());
    }

    #[test]
    fn the_lexicon_s_concepts_are_features_of_their_own_only_when_asked() {
        // "Zusammenfassung" and "summary" share a concept, whatever their n-grams share.
        let concept = |text: &str| {
            let with = features_read(text, "", 1 << 20, Concepts::Found);
            let without = features_read(text, "", 1 << 20, Concepts::No);
            let only: Vec<u32> = with
                .iter()
                .map(|f| f.0)
                .filter(|b| !without.iter().any(|g| g.0 == *b))
                .collect();
            only
        };
        let (de, en) = (
            concept("Zusammenfassung bitte"),
            concept("a summary please"),
        );
        assert!(
            !de.is_empty() && de.iter().any(|b| en.contains(b)),
            "{de:?} {en:?}"
        );
        assert!(concept("qwzx vbnm").is_empty(), "no concept, no feature");
        assert_eq!(
            features("a summary please", "", 4096),
            features_read("a summary please", "", 4096, Concepts::Paired)
        );
    }

    #[test]
    fn pairs_of_concepts_found_together_are_features_of_their_own_only_when_asked() {
        let extra = |text: &str| {
            let paired = features_read(text, "", 1 << 20, Concepts::Paired);
            let found = features_read(text, "", 1 << 20, Concepts::Found);
            paired.len() - found.len()
        };
        // "translate" and a language's name, the same pair in Swahili and in English.
        assert_eq!(extra("nitafsirie kwa Kiingereza"), 1);
        assert_eq!(extra("translate into English"), 1);
        let pair = |text: &str| {
            let paired = features_read(text, "", 1 << 20, Concepts::Paired);
            let found = features_read(text, "", 1 << 20, Concepts::Found);
            paired
                .into_iter()
                .map(|f| f.0)
                .filter(|b| !found.iter().any(|g| g.0 == *b))
                .collect::<Vec<u32>>()
        };
        assert_eq!(
            pair("nitafsirie kwa Kiingereza"),
            pair("translate into English")
        );
        // One concept alone makes no pair.
        assert_eq!(extra("a summary please"), 0);
    }

    #[test]
    fn chinese_and_japanese_are_read_as_characters() {
        let f = features("把这段翻译成英文", "", 1 << 20);
        // 8 characters and 7 bigrams, plus shape features.
        assert!(f.len() >= 15, "{}", f.len());
        assert!(shared("请翻译成英文", "把这段翻译成英文") >= 4);
        assert!(
            shared("summarise", "summarize") >= 8,
            "character n-grams inside words"
        );
    }

    #[test]
    fn prompts_built_by_programs_are_split_at_their_markers() {
        // Alpaca-style sections: the headings are not read, the instruction is its own block.
        let p = split("### Instruction:\nDiagnose the issue and list fix steps.\n### Input:\nThe fan runs at full speed.\n### Response:");
        assert_eq!(
            p.instruction,
            [
                "Diagnose the issue and list fix steps.",
                "The fan runs at full speed."
            ]
        );
        // Roles in one message: each starts a block, read without the role; a long user part
        // after a short system part is material.
        let article = "The harvest was late this year. ".repeat(40);
        let text =
            format!("SYSTEM: You are a copy editor. Return the corrected text.\nUSER: {article}");
        let p = split(&text);
        assert_eq!(
            p.instruction,
            ["You are a copy editor. Return the corrected text."]
        );
        assert_eq!(p.material, [article.trim()]);
        // Tags and rules around the material.
        let text = format!("<document>\n{article}\n</document>\n---\n<instruction>\ntl;dr in two lines\n</instruction>");
        let p = split(&text);
        assert_eq!(p.instruction.last(), Some(&"tl;dr in two lines"));
        assert!(!p
            .instruction
            .iter()
            .chain(&p.material)
            .any(|x| x.contains('<')));
        // What a tag wraps is material, however short its first paragraph; a tag that names the
        // ask is read.
        let text =
            format!("Summarise this please.\n<doc id=\"2\">\nHi Jordan,\n\n{article}\n</doc>");
        let p = split(&text);
        assert_eq!(p.instruction, ["Summarise this please."]);
        assert_eq!(p.material.len(), 1);
        assert!(p.material[0].starts_with("Hi Jordan,\n\n"), "{p:?}");
        let text = format!(
            "<user_query>\nis this angry?\n</user_query>\n<email>\nHi,\n\n{article}\n</email>"
        );
        assert_eq!(split(&text).instruction, ["is this angry?"]);
        // Everything wrapped: read as if the tags were not there. An unclosed tag wraps nothing.
        let p =
            split("<faq_request>\n  <q>Can I use my card at other branches?</q>\n</faq_request>");
        assert_eq!(
            p.instruction,
            ["<q>Can I use my card at other branches?</q>"]
        );
        let p = split("minify this\n\n<ul>\n  <li>tea</li>\n</ul>");
        assert_eq!(p.instruction, ["minify this"]);
        assert_eq!(p.material, ["<li>tea</li>"]);
        let p = split("fix the indent\n\n<div>\n<p>hello there, this is the page</p>");
        assert_eq!(
            p.instruction,
            ["fix the indent", "<p>hello there, this is the page</p>"]
        );
        // A heading that says more than a label is read; a line of emoji is not a rule.
        assert_eq!(
            split("## Summarise the notes below\nkeep it short").instruction,
            ["## Summarise the notes below\nkeep it short"]
        );
        assert_eq!(split("😡😡😡").instruction, ["😡😡😡"]);
        assert_eq!(split("#vegan #bakery").instruction, ["#vegan #bakery"]);
        assert_eq!(split("User:").instruction, Vec::<&str>::new());
    }

    #[test]
    fn the_remainder_without_division_is_the_remainder() {
        let mut x: u32 = 0x9e37_79b9;
        for d in [
            1,
            2,
            3,
            7,
            4096,
            32_768,
            49_152,
            65_535,
            1 << 20,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let m = Modulo::new(d);
            for probe in [0, 1, d - 1, d, d.wrapping_add(1), u32::MAX, u32::MAX - 1] {
                assert_eq!(m.of(probe), probe % d, "{probe} % {d}");
            }
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(m.of(x), x % d, "{x} % {d}");
            }
        }
    }

    #[test]
    fn hangul_and_thai_words_also_give_character_bigrams() {
        // "요약" (summary) inside two longer words, neither at its start: only a bigram shares it
        // (against a control pair of the same shape with no bigram in common).
        assert!(shared("회의요약본", "긴급요약해") > shared("회의요약본", "긴급보고해"));
        // Thai is written without spaces: "ดู" (look at) inside two runs.
        assert!(shared("ลองดูหน่อย", "ช่วยดูให้") > shared("ลองชิมหน่อย", "ช่วยดูให้"));
        // Latin words keep 3- to 5-grams only: a bigram in common adds nothing.
        assert_eq!(shared("xqab", "abzy"), shared("xqab", "cdzy"));
    }
}
