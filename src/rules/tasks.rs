//! The tasks of the rules, compiled once per rules version (cached with the rules in the
//! isolate): one Aho-Corasick automaton over every task's keywords and one multi-pattern regex
//! matcher over every task's regexes, per text scope, so a request costs one pass of each over
//! the text it reads, however many tasks there are. Scoring a request is `decide::classify`.

use crate::rules::condition::Condition;
use crate::rules::pattern;
use crate::rules::raw::RawScope;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex_automata::meta::Regex as MultiRegex;

/// A task as the rules define it.
#[derive(Debug, Clone)]
pub struct TaskDef {
    pub name: String,
    pub keywords: Vec<String>,
    pub regex: Vec<String>,
    pub when: Option<Condition>,
    pub priority: i32,
    pub scope: RawScope,
    pub whole_words: bool,
    pub min_score: f64,
}

/// One scope's compiled matchers.
#[derive(Debug, Clone)]
pub(crate) struct ScopeIndex {
    pub(crate) scope: RawScope,
    pub(crate) keywords: Option<AhoCorasick>,
    /// For each keyword pattern: (task index, keyword index).
    pub(crate) keyword_owner: Vec<(usize, usize)>,
    /// Every regex of the scope as one multi-pattern matcher (what `regex::RegexSet` wraps).
    pub(crate) regexes: Option<MultiRegex>,
    pub(crate) regex_owner: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Default)]
pub struct Classifier {
    pub(crate) tasks: Vec<TaskDef>,
    pub(crate) scopes: Vec<ScopeIndex>,
}

impl Classifier {
    pub fn build(tasks: Vec<TaskDef>) -> Result<Classifier, String> {
        let scopes = Self::scopes(&tasks)?;
        Ok(Classifier { tasks, scopes })
    }

    /// The matchers of `tasks`, one per scope that has keywords or regexes.
    pub(crate) fn scopes(tasks: &[TaskDef]) -> Result<Vec<ScopeIndex>, String> {
        let mut scopes = Vec::new();
        for scope in [RawScope::LastUser, RawScope::System, RawScope::Conversation] {
            let mut patterns = Vec::new();
            let mut keyword_owner = Vec::new();
            let mut regexes = Vec::new();
            let mut regex_owner = Vec::new();
            for (ti, t) in tasks.iter().enumerate().filter(|(_, t)| t.scope == scope) {
                for (ki, k) in t.keywords.iter().enumerate() {
                    patterns.push(k.to_lowercase());
                    keyword_owner.push((ti, ki));
                }
                for (ri, r) in t.regex.iter().enumerate() {
                    regexes.push(r.clone());
                    regex_owner.push((ti, ri));
                }
            }
            if patterns.is_empty() && regexes.is_empty() {
                continue;
            }
            let keywords = if patterns.is_empty() {
                None
            } else {
                Some(
                    // Patterns and text are both lower-cased. Measured on 2,000 keywords and 8 KB:
                    // the default (contiguous NFA) beats a DFA, whose table no longer fits in
                    // cache, and lower-casing first beats `ascii_case_insensitive`.
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .build(&patterns)
                        .map_err(|e| format!("keyword automaton: {e}"))?,
                )
            };
            let regexes = if regexes.is_empty() {
                None
            } else {
                Some(regex_set(&regexes)?)
            };
            scopes.push(ScopeIndex {
                scope,
                keywords,
                keyword_owner,
                regexes,
                regex_owner,
            });
        }
        Ok(scopes)
    }

    pub fn has_task(&self, name: &str) -> bool {
        self.tasks.iter().any(|t| t.name == name)
    }

    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(|t| t.name.as_str())
    }
}

/// The scope's regexes as one matcher that reports every pattern that matches, configured as
/// `regex::RegexSet` is. On wasm32 without the literal prefilter: there it has no SIMD searcher, and
/// the lazy DFA's single pass alone is cheaper (20 case-insensitive regexes over 8 KB of prose, in
/// workerd: 23.5 µs without the prefilter, 26 µs with it; natively both take 16 µs).
fn regex_set(patterns: &[String]) -> Result<MultiRegex, String> {
    let config = pattern::config(true).auto_prefilter(!cfg!(target_arch = "wasm32"));
    MultiRegex::builder()
        .configure(config)
        .build_many(patterns)
        .map_err(|e| format!("regex set: {}", pattern::message(&e)))
}
