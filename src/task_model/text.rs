//! How the task model cuts text into tokens and hashes them, shared by what it reads of a prompt
//! (`features`) and by its lexicon (`lexicon`): words are runs of letters and digits other than
//! Chinese and Japanese characters, which are read as runs of characters.

/// Chinese and Japanese characters, read as characters rather than words.
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff | 0x20000..=0x2fa1f)
}

/// Hangul, and the scripts written without spaces between words (Thai, Lao, Myanmar, Khmer).
pub fn bigram_script(c: char) -> bool {
    matches!(c as u32, 0xac00..=0xd7a3 | 0x0e00..=0x0eff | 0x1000..=0x109f | 0x1780..=0x17ff)
}

/// FNV-1a over several byte slices, as if joined, seeded by the feature space.
pub fn fnv1a(salt: u32, parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ salt.wrapping_mul(0x0100_0193);
    for part in parts {
        for b in *part {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// One token of text: a word (a slice of the text read), or a run of Chinese or Japanese
/// characters.
pub enum Token<'w, 'r> {
    Word(&'w str),
    Han(&'r [char]),
}

/// Words (runs of letters and digits other than Han/kana) and Han/kana runs of `text`, lowercased.
pub fn tokens(text: &str, each: impl FnMut(Token<'_, '_>)) {
    tokens_of_lowered(&text.to_lowercase(), each)
}

/// `tokens` of text already lowercased: its words are slices of it.
pub fn tokens_of_lowered<'w>(lowered: &'w str, mut each: impl FnMut(Token<'w, '_>)) {
    let mut run: Vec<char> = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in lowered.char_indices() {
        let h = is_han(c);
        if h {
            run.push(c);
        } else if !run.is_empty() {
            each(Token::Han(&run));
            run.clear();
        }
        if c.is_alphanumeric() && !h {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            each(Token::Word(&lowered[s..i]));
        }
    }
    if let Some(s) = start {
        each(Token::Word(&lowered[s..]));
    }
    if !run.is_empty() {
        each(Token::Han(&run));
    }
}
