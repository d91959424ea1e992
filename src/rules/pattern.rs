//! The rules' regular expressions (`$regex` conditions and tasks' `regex`), compiled with
//! regex-automata's meta engine as the `regex` crate compiles them (same syntax, Unicode, limits
//! and error messages), without the engines only capture groups need: the router asks whether a
//! pattern matches, never where its groups are, and the Worker's bundle does not carry them. Nor
//! does it carry the Unicode tables of `\p{Age=..}` and of the text segmentation properties
//! (`Word_Break`, `Sentence_Break`, `Grapheme_Cluster_Break`): a pattern naming one is refused,
//! saying so. Every other Unicode class, case folding and Unicode `\w`, `\d`, `\s`, `\b` remain.

use regex_automata::meta::{BuildError, Config, Regex};

/// The largest compiled pattern accepted, as the `regex` crate's default (10 MiB).
const SIZE_LIMIT: usize = 10 * (1 << 20);

/// The Unicode properties whose tables the router leaves out.
const OMITTED: &str = "Age, Word_Break, Sentence_Break and Grapheme_Cluster_Break";

/// The meta engine's settings for the rules' patterns; `all`: report every pattern of a set that
/// matches (a task scope's matcher), not only the first.
pub fn config(all: bool) -> Config {
    let kind = match all {
        true => regex_automata::MatchKind::All,
        false => regex_automata::MatchKind::LeftmostFirst,
    };
    Regex::config()
        .match_kind(kind)
        .utf8_empty(true)
        .nfa_size_limit(Some(SIZE_LIMIT))
}

/// One pattern, compiled; the error is the `regex` crate's message for it, on one line.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .configure(config(false))
        .build(pattern)
        .map_err(|e| message(&e))
}

/// What the `regex` crate says for a pattern that does not compile, on one line (its syntax errors
/// draw a caret under the pattern over several; an error in a rules report is one line).
pub fn message(e: &BuildError) -> String {
    let text = match (e.size_limit(), e.syntax_error()) {
        (Some(limit), _) => format!("Compiled regex exceeds size limit of {limit} bytes."),
        (None, Some(syntax)) => {
            let text = syntax.to_string();
            match text.contains("Unicode property not found")
                || text.contains("Unicode property value not found")
            {
                true => format!(
                    "{text} (the router's regexes know every Unicode property but {OMITTED})"
                ),
                false => text,
            }
        }
        (None, None) => e.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_the_regex_crate_does() {
        let re = compile(r"(?i)\brefund\b|\p{Han}{2}").unwrap();
        assert!(re.is_match("I want a REFUND now"));
        assert!(re.is_match("我要退款"));
        assert!(!re.is_match("refunds"));
        let word = compile(r"^\w+$").unwrap();
        assert!(word.is_match("café"), "Unicode word characters");
    }

    #[test]
    fn errors_read_as_the_regex_crate_writes_them() {
        let e = compile("(unclosed").unwrap_err();
        assert!(
            e.contains("regex parse error") && e.contains("unclosed group"),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
        let e = compile(r"\p{Klingon}").unwrap_err();
        assert!(e.contains("Unicode property not found"), "{e}");
        for omitted in [
            r"\p{Age:6.0}",
            r"\p{WB=ALetter}",
            r"\p{Sentence_Break=ATerm}",
            r"\p{GCB=Extend}",
        ] {
            let e = compile(omitted).unwrap_err();
            assert!(
                e.contains("every Unicode property but Age, Word_Break"),
                "{omitted}: {e}"
            );
        }
        for kept in [
            r"\p{Greek}",
            r"\p{Emoji}",
            r"\p{Lu}",
            r"\p{scx=Hira}",
            r"(?i)straße",
        ] {
            assert!(compile(kept).is_ok(), "{kept}");
        }
        let e = compile(r"\w{1000}{1000}").unwrap_err();
        assert!(e.contains("exceeds size limit"), "{e}");
    }
}
