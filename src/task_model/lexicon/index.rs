//! The lexicon's index as a file that is read as it is: a hash table over its keys, built once
//! from the lexicon's text (`build`, natively: `taskrouter lexicon` writes the Worker's copy,
//! `models/lexicon.trlx`), so that an isolate's first labelled prompt checks a header instead of
//! building hash maps of 25,000 entries (about 45 ms of a cold Worker at stop 28).
//!
//! The layout, little-endian:
//! - header, 32 bytes: `TRLX`, version (u16), concepts (u16), the lexicon's fingerprint (u32,
//!   FNV-1a of its text, as models record it), entries (u32), then how many slots (a power of two),
//!   groups, records (u32 each) and how many bytes of strings (u32);
//! - the concepts' names, each a u8 length and UTF-8, in the order the text first names them;
//! - slots, u32 each: a group's index + 1, or 0 for none (open addressing by FNV-1a of the key,
//!   probed linearly);
//! - groups, 12 bytes each: its key's offset and its first record's index (u32 each), its key's
//!   length and how many records it has (u16 each). A key is a kind byte and text: `w` a word
//!   that is, or starts, a form; `s` a stem's first three characters (two for a two-character
//!   stem); `u` the first two characters of a form in a script written without spaces;
//! - records, 8 bytes each: its form's offset (u32) and length (u16), its concept (u16, the top
//!   bit set when a phrase's last word is a stem). The form is, by kind: `w` each word after the
//!   first with a space before it (empty for a single word); `s` the stem; `u` the whole form;
//! - strings: the keys and forms, each stored once.

use crate::task_model::text::{bigram_script, fnv1a, is_han, tokens_of_lowered, Token};

pub const MAGIC: &[u8; 4] = b"TRLX";
pub const VERSION: u16 = 1;
pub(super) const HEADER: usize = 32;
pub(super) const GROUP: usize = 12;
pub(super) const RECORD: usize = 8;
/// In a record's concept: the phrase's last word is a stem.
pub(super) const STEM: u16 = 0x8000;
const SALT: u32 = 0x1e71_ca5e;

/// What a key indexes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Kind {
    /// Whole words and phrases, by their first word.
    Word,
    /// Stems of one word, by their first three characters (two for two-character stems).
    Stem,
    /// Forms in the scripts written without spaces, by their first two characters.
    Unspaced,
}

impl Kind {
    pub(super) fn byte(self) -> u8 {
        match self {
            Kind::Word => b'w',
            Kind::Stem => b's',
            Kind::Unspaced => b'u',
        }
    }
}

/// Where a key's probe starts, before the mask.
pub(super) fn hash(kind: Kind, key: &[u8]) -> u32 {
    fnv1a(SALT, &[&[kind.byte()], key])
}

/// Han and kana, Thai, Lao, Khmer and Myanmar: written without spaces, so a form matches anywhere.
pub(super) fn unspaced(c: char) -> bool {
    is_han(c) || (bigram_script(c) && !matches!(c as u32, 0xac00..=0xd7a3))
}

/// The words of lowercased text as `features` reads them; a Han or kana run between words is an
/// empty word, so no phrase spans it.
pub(super) fn words(lowered: &str) -> Vec<&str> {
    let mut out = Vec::new();
    tokens_of_lowered(lowered, |t| match t {
        Token::Word(w) => out.push(w),
        Token::Han(_) => out.push(""),
    });
    out
}

/// The first two and the first three characters of `w` (each when it has that many).
pub(super) fn heads(w: &str) -> [Option<&str>; 2] {
    // Where each character ends: after the second, after the third.
    let mut ends = w.char_indices().map(|(i, _)| i).chain([w.len()]).skip(2);
    [ends.next(), ends.next()].map(|end| end.map(|e| &w[..e]))
}

fn bytes_at(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    bytes_at(b, at, 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    bytes_at(b, at, 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The lexicon, read from its index: slices of the file, no copy.
#[derive(Default)]
pub struct Lexicon<'a> {
    fingerprint: u32,
    concepts: Vec<&'a str>,
    entries: usize,
    slots: &'a [u8],
    groups: &'a [u8],
    records: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Lexicon<'a> {
    /// The lexicon an index file holds, after checking its header and that its parts fill it
    /// exactly (a lookup that would still fall outside them finds nothing).
    pub fn read(file: &'a [u8]) -> Result<Lexicon<'a>, String> {
        if file.len() < HEADER || &file[..4] != MAGIC {
            return Err("not a lexicon index (no TRLX header)".into());
        }
        let version = u16_at(file, 4);
        if version != VERSION {
            return Err(format!(
                "index format v{version}, where this router reads v{VERSION}"
            ));
        }
        let count = |at| u32_at(file, at) as usize;
        let (slots, groups, records, strings) = (count(16), count(20), count(24), count(28));
        if !slots.is_power_of_two() {
            return Err("its hash table's size is not a power of two".into());
        }
        let mut at = HEADER;
        let mut concepts = Vec::new();
        for _ in 0..u16_at(file, 6) {
            let len = usize::from(*file.get(at).ok_or("it ends inside its concepts")?);
            let name = bytes_at(file, at + 1, len).ok_or("it ends inside its concepts")?;
            concepts.push(std::str::from_utf8(name).map_err(|_| "a concept is not UTF-8")?);
            at += 1 + len;
        }
        // Sizes that overflow (a 32-bit usize in the Worker) cannot fit the file either.
        let sizes = [
            slots.checked_mul(4),
            groups.checked_mul(GROUP),
            records.checked_mul(RECORD),
        ];
        let mut parts = [&file[..0]; 4];
        for (part, size) in parts
            .iter_mut()
            .zip(sizes.into_iter().chain([Some(strings)]))
        {
            let shorter = "it is shorter than its header says";
            let size = size.ok_or(shorter)?;
            *part = bytes_at(file, at, size).ok_or(shorter)?;
            at += size;
        }
        if at != file.len() {
            return Err("it is longer than its header says".into());
        }
        let [slots, groups, records, strings] = parts;
        Ok(Lexicon {
            fingerprint: u32_at(file, 8),
            concepts,
            entries: count(12),
            slots,
            groups,
            records,
            strings,
        })
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The fingerprint of the text it was built from (what a model trained with it records).
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// Each record of a key: its concept (with the `STEM` bit) and its form.
    fn lookup(&self, kind: Kind, key: &[u8]) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        let records = self.records_of(kind, key);
        let strings = self.strings;
        records.chunks_exact(RECORD).map(move |r| {
            let form = bytes_at(strings, u32_at(r, 0) as usize, usize::from(u16_at(r, 4)));
            (u16_at(r, 6), form.unwrap_or_default())
        })
    }

    fn records_of(&self, kind: Kind, key: &[u8]) -> &'a [u8] {
        let n = self.slots.len() / 4;
        let mask = n.wrapping_sub(1);
        let mut i = hash(kind, key) as usize & mask;
        for _ in 0..n {
            let group = u32_at(self.slots, i * 4) as usize;
            // Offsets from the file saturate rather than wrap: one past the end reads nothing.
            let Some(at) = group.checked_sub(1).map(|g| g.saturating_mul(GROUP)) else {
                return &[];
            };
            let g = |k: usize| u32_at(self.groups, at.saturating_add(k)) as usize;
            let key_len = usize::from(u16_at(self.groups, at.saturating_add(8)));
            let stored = bytes_at(self.strings, g(0), key_len);
            if stored.and_then(|s| s.split_first()) == Some((&kind.byte(), key)) {
                let count = usize::from(u16_at(self.groups, at.saturating_add(10)));
                let first = g(4).saturating_mul(RECORD);
                return bytes_at(self.records, first, count * RECORD).unwrap_or_default();
            }
            i = (i + 1) & mask;
        }
        &[]
    }

    /// Each concept found in `lowered` (lowercase text), with how many places it was found at
    /// (a word, or a character of an unspaced script), in the order the lexicon first names them.
    pub fn concepts(&self, lowered: &str) -> Vec<(&'a str, u32)> {
        let mut found: Vec<(u16, usize)> = Vec::new();
        let words = words(lowered);
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            let next = words.get(i + 1..).unwrap_or_default();
            for (concept, rest) in self.lookup(Kind::Word, w.as_bytes()) {
                if follows(next, rest, concept & STEM != 0) {
                    found.push((concept & !STEM, i));
                }
            }
            for key in heads(w).into_iter().flatten() {
                for (concept, stem) in self.lookup(Kind::Stem, key.as_bytes()) {
                    if w.as_bytes().starts_with(stem) {
                        found.push((concept, i));
                    }
                }
            }
        }
        if lowered.chars().any(unspaced) {
            let mut at = lowered.char_indices().peekable();
            let mut j = 0;
            while let Some((i, a)) = at.next() {
                j += 1;
                let Some(&(k, b)) = at.peek() else {
                    break;
                };
                if !unspaced(a) {
                    continue;
                }
                let key = &lowered.as_bytes()[i..k + b.len_utf8()];
                for (concept, form) in self.lookup(Kind::Unspaced, key) {
                    if lowered.as_bytes()[i..].starts_with(form) {
                        found.push((concept, words.len() + j));
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
                _ => match self.concepts.get(usize::from(concept)) {
                    Some(name) => out.push((name, 1)),
                    None => continue,
                },
            }
            last = Some(concept);
        }
        out
    }
}

/// Whether the words after a phrase's first are `next`'s first words: `rest` is each of them
/// with a space before it (empty for a single word), the last matched as a stem when `stem`.
fn follows(next: &[&str], rest: &[u8], stem: bool) -> bool {
    let Some(rest) = rest.strip_prefix(b" ") else {
        return rest.is_empty();
    };
    let n = rest.iter().filter(|b| **b == b' ').count() + 1;
    next.len() >= n
        && rest
            .split(|b| *b == b' ')
            .zip(next)
            .enumerate()
            .all(|(k, (r, w))| match stem && k + 1 == n {
                true => w.as_bytes().starts_with(r),
                false => w.as_bytes() == r,
            })
}
