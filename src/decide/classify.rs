//! Task classification: which task a request asks for, with a score and the evidence for it,
//! over the tasks the rules compiled (`rules::tasks`), and the built-in model's verdict.
//!
//! Scoring (docs/rules.md): a task scores 1 per distinct keyword found, 1 per distinct regex that
//! matches, and 1 if its `when` holds. The highest score at or above the task's `min_score` wins;
//! ties go to the higher `priority`, then to the name that sorts first. A caller's explicit task
//! (metadata `task`, or a task named as `model`) wins outright with score 1.

use crate::rules::raw::RawScope;
use crate::rules::tasks::Classifier;
use crate::task_model::TaskModel;
use regex_automata::{Input, PatternSet};
use serde::Serialize;
use serde_json::Value;

/// The texts classification reads, extracted once per request.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    pub last_user: String,
    pub system: String,
    pub conversation: String,
}

impl Texts {
    fn get(&self, scope: RawScope) -> &str {
        match scope {
            RawScope::LastUser => &self.last_user,
            RawScope::System => &self.system,
            RawScope::Conversation => &self.conversation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskScore {
    pub task: String,
    pub score: f64,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The chosen task, if any.
    pub task: Option<String>,
    pub score: f64,
    pub source: TaskSource,
    /// Every task with a non-zero score, best first.
    pub scores: Vec<TaskScore>,
    /// What the built-in task model said, when the rules turn it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelVerdict>,
}

/// Where a request's task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSource {
    /// The caller named it (metadata `task`, or a task named as `model`).
    Explicit,
    /// The keyword and regex rules.
    Rules,
    /// The built-in task model.
    Model,
    /// The cascade model, asked because the built-in one was unsure.
    Cascade,
    /// No task.
    None,
}

impl TaskSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSource::Explicit => "explicit",
            TaskSource::Rules => "rules",
            TaskSource::Model => "model",
            TaskSource::Cascade => "cascade",
            TaskSource::None => "none",
        }
    }
}

/// The built-in model's answer: its top labels with calibrated probabilities, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVerdict {
    pub task: String,
    pub score: f64,
    /// The three most likely labels.
    pub top: Vec<(String, f64)>,
}

impl ModelVerdict {
    /// `task` is the most likely task (never `out_of_scope`, which only takes probability away
    /// from the tasks); `top` may show `out_of_scope` among the three most likely labels.
    pub fn of(model: &TaskModel, texts: &Texts) -> ModelVerdict {
        let p = model.probabilities(&texts.last_user, &texts.system);
        let (task, score) = model.best_task(&p);
        let (task, score) = (task.to_string(), round3(score));
        let mut ranked: Vec<(usize, f32)> = p.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<(String, f64)> = ranked
            .iter()
            .take(3)
            .filter_map(|(k, v)| Some((model.labels.get(*k)?.clone(), round3(*v))))
            .collect();
        ModelVerdict { task, score, top }
    }
}

fn round3(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

impl Classifier {
    /// Classify a request. `explicit` is the caller's task, if it named one; `facts` feed `when`.
    pub fn classify(&self, texts: &Texts, facts: &Value, explicit: Option<&str>) -> Classification {
        if let Some(task) = explicit {
            return Classification {
                task: Some(task.to_string()),
                score: 1.0,
                source: TaskSource::Explicit,
                scores: vec![TaskScore {
                    task: task.to_string(),
                    score: 1.0,
                    evidence: vec!["named by the caller".into()],
                }],
                model: None,
            };
        }
        // (task, keyword) and (task, regex) pairs found; few per request, so lists, not tables.
        let mut keyword_hits: Vec<(usize, usize)> = Vec::new();
        let mut regex_hits: Vec<(usize, usize)> = Vec::new();
        for idx in &self.scopes {
            let text = texts.get(idx.scope);
            if text.is_empty() {
                continue;
            }
            if let Some(ac) = &idx.keywords {
                let lowered = lowercase(text);
                for m in ac.find_overlapping_iter(&lowered) {
                    let Some(&(ti, ki)) = idx.keyword_owner.get(m.pattern().as_usize()) else {
                        continue;
                    };
                    if self.tasks[ti].whole_words
                        && !at_word_boundaries(&lowered, m.start(), m.end())
                    {
                        continue;
                    }
                    keyword_hits.push((ti, ki));
                }
            }
            if let Some(set) = &idx.regexes {
                let mut matched = PatternSet::new(set.pattern_len());
                set.which_overlapping_matches(&Input::new(text), &mut matched);
                for pid in matched.iter() {
                    if let Some(&(ti, ri)) = idx.regex_owner.get(pid.as_usize()) {
                        regex_hits.push((ti, ri));
                    }
                }
            }
        }
        // Each distinct hit once, in task then pattern order.
        keyword_hits.sort_unstable();
        keyword_hits.dedup();
        regex_hits.sort_unstable();
        regex_hits.dedup();
        let mut scores: Vec<(TaskScore, i32, f64)> = Vec::new();
        for (ti, t) in self.tasks.iter().enumerate() {
            let mut evidence = Vec::new();
            for &(_, ki) in keyword_hits.iter().filter(|(owner, _)| *owner == ti) {
                evidence.push(format!("keyword \"{}\"", t.keywords[ki]));
            }
            for &(_, ri) in regex_hits.iter().filter(|(owner, _)| *owner == ti) {
                evidence.push(format!("regex {}", t.regex[ri]));
            }
            if t.when.as_ref().is_some_and(|w| w.matches(facts)) {
                evidence.push("when holds".into());
            }
            if !evidence.is_empty() {
                let score = evidence.len() as f64;
                scores.push((
                    TaskScore {
                        task: t.name.clone(),
                        score,
                        evidence,
                    },
                    t.priority,
                    t.min_score,
                ));
            }
        }
        // Best first: score, then priority, then name (tasks are kept sorted by name).
        scores.sort_by(|a, b| {
            b.0.score
                .total_cmp(&a.0.score)
                .then(b.1.cmp(&a.1))
                .then_with(|| a.0.task.cmp(&b.0.task))
        });
        let winner = scores
            .iter()
            .find(|(s, _, min)| s.score >= *min)
            .map(|(s, _, _)| s.clone());
        Classification {
            task: winner.as_ref().map(|w| w.task.clone()),
            score: winner.as_ref().map_or(0.0, |w| w.score),
            source: if winner.is_some() {
                TaskSource::Rules
            } else {
                TaskSource::None
            },
            scores: scores.into_iter().map(|(s, _, _)| s).collect(),
            model: None,
        }
    }
}

/// Lower-case for keyword matching: ASCII in place (fast), anything else with Unicode rules.
fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        let mut s = text.to_owned();
        s.make_ascii_lowercase();
        s
    } else {
        text.to_lowercase()
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Is `text[start..end]` a whole word (or phrase): no word character just before or after it?
fn at_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let first = text[start..end].chars().next();
    let last = text[start..end].chars().next_back();
    // A keyword that starts or ends with a non-word character ("c++", ".net") needs no boundary there.
    let left_ok = !first.is_some_and(is_word_char) || !before.is_some_and(is_word_char);
    let right_ok = !last.is_some_and(is_word_char) || !after.is_some_and(is_word_char);
    left_ok && right_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::Condition;
    use crate::rules::tasks::TaskDef;
    use serde_json::json;

    fn task(name: &str, keywords: &[&str], regex: &[&str]) -> TaskDef {
        TaskDef {
            name: name.into(),
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            regex: regex.iter().map(|s| s.to_string()).collect(),
            when: None,
            priority: 0,
            scope: RawScope::LastUser,
            whole_words: true,
            min_score: 1.0,
        }
    }

    fn texts(last_user: &str) -> Texts {
        Texts {
            last_user: last_user.into(),
            system: String::new(),
            conversation: last_user.into(),
        }
    }

    fn classifier() -> Classifier {
        let mut faq = task("faq", &[], &[]);
        faq.when = Some(Condition::parse(&json!({"metadata.channel": "support"}), "w").unwrap());
        let mut system_task = task("persona", &["pirate"], &[]);
        system_task.scope = RawScope::System;
        Classifier::build(vec![
            task(
                "code_generation",
                &["write a function", "refactor", "stack trace", "c++"],
                &["```[a-z]*\\n"],
            ),
            task(
                "translation",
                &["translate"],
                &["(?i)\\btranslate\\b.*\\b(into|to)\\b"],
            ),
            faq,
            system_task,
        ])
        .unwrap()
    }

    #[test]
    fn scores_and_evidence() {
        let c = classifier();
        let r = c.classify(
            &texts("Please REFACTOR this and write a function:\n```rust\nfn x() {}```"),
            &json!({}),
            None,
        );
        assert_eq!(r.task.as_deref(), Some("code_generation"));
        assert_eq!(r.score, 3.0);
        assert_eq!(r.source, TaskSource::Rules);
        assert_eq!(
            r.scores[0].evidence,
            [
                "keyword \"write a function\"",
                "keyword \"refactor\"",
                "regex ```[a-z]*\\n"
            ]
        );
        let r = c.classify(&texts("translate this into French"), &json!({}), None);
        assert_eq!((r.task.as_deref(), r.score), (Some("translation"), 2.0));
    }

    #[test]
    fn whole_words_and_symbols() {
        let c = classifier();
        assert_eq!(
            c.classify(&texts("refactoring"), &json!({}), None).task,
            None
        );
        assert_eq!(c.classify(&texts("prefactor"), &json!({}), None).task, None);
        assert_eq!(
            c.classify(&texts("in C++ please"), &json!({}), None)
                .task
                .as_deref(),
            Some("code_generation")
        );
        let mut loose = task("loose", &["refactor"], &[]);
        loose.whole_words = false;
        let c2 = Classifier::build(vec![loose]).unwrap();
        assert_eq!(
            c2.classify(&texts("refactoring"), &json!({}), None)
                .task
                .as_deref(),
            Some("loose")
        );
    }

    #[test]
    fn unicode_keywords_are_case_insensitive() {
        let c = Classifier::build(vec![task("übersetzung", &["übersetze"], &[])]).unwrap();
        assert_eq!(
            c.classify(&texts("ÜBERSETZE bitte"), &json!({}), None)
                .task
                .as_deref(),
            Some("übersetzung")
        );
    }

    #[test]
    fn when_scopes_explicit_and_ties() {
        let c = classifier();
        let r = c.classify(
            &texts("hello"),
            &json!({"metadata": {"channel": "support"}}),
            None,
        );
        assert_eq!((r.task.as_deref(), r.score), (Some("faq"), 1.0));
        let mut t = texts("hello");
        t.system = "You are a PIRATE.".into();
        assert_eq!(
            c.classify(&t, &json!({}), None).task.as_deref(),
            Some("persona")
        );
        let r = c.classify(&texts("refactor"), &json!({}), Some("translation"));
        assert_eq!(
            (r.task.as_deref(), r.source.as_str()),
            (Some("translation"), "explicit")
        );
        // Ties: same score, so priority decides, then the name.
        let mut a = task("b_task", &["x"], &[]);
        let b = task("a_task", &["x"], &[]);
        let tie = Classifier::build(vec![b.clone(), a.clone()]).unwrap();
        assert_eq!(
            tie.classify(&texts("x"), &json!({}), None).task.as_deref(),
            Some("a_task")
        );
        a.priority = 1;
        let prio = Classifier::build(vec![b, a]).unwrap();
        assert_eq!(
            prio.classify(&texts("x"), &json!({}), None).task.as_deref(),
            Some("b_task")
        );
    }

    #[test]
    fn min_score_and_nothing() {
        let mut t = task("strict", &["alpha", "beta"], &[]);
        t.min_score = 2.0;
        let c = Classifier::build(vec![t]).unwrap();
        let r = c.classify(&texts("alpha only"), &json!({}), None);
        assert_eq!(
            (r.task, r.source, r.scores.len()),
            (None, TaskSource::None, 1)
        );
        assert_eq!(
            c.classify(&texts("alpha and beta"), &json!({}), None).score,
            2.0
        );
        assert_eq!(c.classify(&texts(""), &json!({}), None).task, None);
    }
}
