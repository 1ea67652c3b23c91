//! `[[questions]]`: a catalogue of the operator's own, checked into a
//! [`Catalogue`].

use std::collections::HashSet;

use super::raw;
use crate::domain::{Catalogue, Question, QuestionId, QuestionOption};

/// Builds the catalogue from `[[questions]]`; on error returns (key,
/// problem).
pub(super) fn catalogue_from(
    questions: Vec<raw::RawQuestion>,
) -> Result<Catalogue, (String, String)> {
    if questions.is_empty() {
        return Err(("questions".into(), "needs at least one question".into()));
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(questions.len());
    for (i, q) in questions.into_iter().enumerate() {
        let key = |field: &str| format!("questions[{i}].{field}");
        let id =
            QuestionId::parse(q.id.trim()).map_err(|e| (key("id"), format!("{:?} {e}", q.id)))?;
        if !ids.insert(id.clone()) {
            return Err((key("id"), format!("{id} is defined twice")));
        }
        if q.text.trim().is_empty() {
            return Err((key("text"), "is empty".into()));
        }
        if q.options.len() < 2 {
            return Err((key("options"), "needs at least two options".into()));
        }
        let mut keys = HashSet::new();
        let mut options = Vec::with_capacity(q.options.len());
        for (j, o) in q.options.into_iter().enumerate() {
            let key = |field: &str| format!("questions[{i}].options[{j}].{field}");
            let option_key = crate::domain::OptionKey::parse(o.key.trim())
                .map_err(|e| (key("key"), format!("{:?} {e}", o.key)))?;
            if !keys.insert(option_key.clone()) {
                return Err((key("key"), format!("{option_key} is used twice in {id}")));
            }
            if !(0.0..=1.0).contains(&o.score) {
                return Err((
                    key("score"),
                    format!("must be between 0 and 1, got {}", o.score),
                ));
            }
            let label = o.label.unwrap_or_else(|| option_key.to_string());
            options.push(QuestionOption {
                key: option_key,
                label,
                score: o.score,
            });
        }
        out.push(Question {
            id,
            text: q.text,
            options,
        });
    }
    Ok(Catalogue::new(out))
}
