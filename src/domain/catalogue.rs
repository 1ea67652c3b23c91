//! The question catalogue: what is asked, the options offered, and the score
//! each option contributes to the readiness model (ARCHITECTURE.md, "The questions").

use serde::{Deserialize, Serialize};

use super::ids::{OptionKey, QuestionId};

/// One offered answer to a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionOption {
    /// Stable key, used in storage, CSV and text replies.
    pub key: OptionKey,
    /// Button label; free wording.
    pub label: String,
    /// Contribution to the model, in `[0, 1]`.
    pub score: f64,
}

/// One micro-question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: QuestionId,
    /// What the prompt asks, about the past week.
    pub text: String,
    /// The options in the order they are shown (and in which a positional
    /// text reply is read).
    pub options: Vec<QuestionOption>,
}

impl Question {
    pub fn option(&self, key: &str) -> Option<&QuestionOption> {
        self.options.iter().find(|o| o.key.as_str() == key)
    }
}

/// The ordered list of questions nudged knows.
///
/// Order matters: prompts show questions in this order, and a positional
/// text reply (`3-5, 4+, once, …`) is matched against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    questions: Vec<Question>,
}

impl Catalogue {
    /// Wraps `questions`; the caller (config validation) guarantees unique
    /// question ids and unique option keys within each question.
    pub fn new(questions: Vec<Question>) -> Self {
        Self { questions }
    }

    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id.as_str() == id)
    }

    /// The score of `option` for `question`, if both exist.
    pub fn score(&self, question: &str, option: &str) -> Option<f64> {
        self.get(question)?.option(option).map(|o| o.score)
    }

    /// The position of `id` in the catalogue, used to sort answers.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.questions.iter().position(|q| q.id.as_str() == id)
    }
}

/// The default catalogue (ARCHITECTURE.md, "The questions").
pub fn default_catalogue() -> Catalogue {
    fn q(id: &str, text: &str, options: &[(&str, &str, f64)]) -> Question {
        Question {
            id: QuestionId::parse(id).expect("built-in question id is valid"),
            text: text.to_owned(),
            options: options
                .iter()
                .map(|&(key, label, score)| QuestionOption {
                    key: OptionKey::parse(key).expect("built-in option key is valid"),
                    label: label.to_owned(),
                    score,
                })
                .collect(),
        }
    }
    Catalogue::new(vec![
        q(
            "decisions",
            "Backlog priority calls you made this week that others acted on",
            &[
                ("0", "0", 0.0),
                ("1-2", "1–2", 0.35),
                ("3-5", "3–5", 0.7),
                ("6+", "6+", 1.0),
            ],
        ),
        q(
            "stakeholders",
            "Stakeholders pulling your product in different directions",
            &[("0-1", "0–1", 0.0), ("2-3", "2–3", 0.5), ("4+", "4+", 1.0)],
        ),
        q(
            "tradeoffs",
            "Trade-offs you had to justify to others",
            &[
                ("none", "None", 0.0),
                ("once", "Once", 0.5),
                ("several", "Several", 1.0),
            ],
        ),
        q(
            "focus",
            "Where your time went",
            &[
                ("tracking", "Tracking delivery", 0.0),
                ("mixed", "Mixed", 0.5),
                ("deciding", "Deciding what & why", 1.0),
            ],
        ),
        q(
            "reversibility",
            "Could this week's decisions be undone next sprint?",
            &[
                ("easily", "Easily", 0.0),
                ("partly", "Partly", 0.5),
                ("hardly", "Hardly", 1.0),
            ],
        ),
        q(
            "continuity",
            "Same product as last week?",
            &[
                ("rotated", "Rotated", 0.0),
                ("partly", "Partly", 0.5),
                ("same", "Same", 1.0),
            ],
        ),
        q(
            "capacity",
            "Room to learn something new this month?",
            &[
                ("none", "None", 0.0),
                ("little", "A little", 0.5),
                ("yes", "Yes", 1.0),
            ],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue_matches_the_design_table() {
        let c = default_catalogue();
        let ids: Vec<_> = c.questions().iter().map(|q| q.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "decisions",
                "stakeholders",
                "tradeoffs",
                "focus",
                "reversibility",
                "continuity",
                "capacity"
            ]
        );
        assert_eq!(c.score("decisions", "1-2"), Some(0.35));
        assert_eq!(c.score("focus", "deciding"), Some(1.0));
        assert_eq!(c.score("capacity", "none"), Some(0.0));
        assert_eq!(c.score("capacity", "maybe"), None);
        assert_eq!(c.score("mood", "yes"), None);
    }

    #[test]
    fn every_score_is_within_unit_interval_and_keys_unique() {
        for q in default_catalogue().questions() {
            let mut keys: Vec<_> = q.options.iter().map(|o| o.key.as_str()).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), q.options.len(), "{}", q.id);
            assert!(q.options.iter().all(|o| (0.0..=1.0).contains(&o.score)));
        }
    }
}
