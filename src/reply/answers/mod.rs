//! The answer grammar: a text reply to a prompt → [`ParsedReply`], in the
//! order asked (`3-5, 4+, once`) or by name (`decisions=3-5 capacity=none`);
//! the one-line confirmation of what was understood; the help line
//! (ARCHITECTURE.md, "Replying inline").

use crate::domain::{Catalogue, OptionKey, Question, QuestionId, QuestionOption};

#[cfg(doc)]
use super::MAX_ECHO_CHARS;
use super::MAX_TEXT_CHARS;
use super::text::{
    canonical, canonical_char, clip, is_too_long, parse_count, strip_leading_mentions,
    strip_list_marker,
};

/// What a text reply said, checked against the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReply {
    /// The answered questions and the chosen option keys, in catalogue order,
    /// at most one per question.
    pub answers: Vec<(QuestionId, OptionKey)>,
    /// Questions the person skipped on purpose (`-`, `?`, `skip`, `n/a`, or an
    /// empty slot between two commas), in catalogue order. Questions left out
    /// at the end of a positional reply are neither answered nor skipped.
    pub skipped: Vec<QuestionId>,
}

/// Why a text reply could not be read. The `Display` text is what the person
/// sees in chat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The value matches no option of the question (or several, by label).
    #[error("\"{given}\" is not an answer to {question}; try one of {}", .options.join(", "))]
    UnknownOption {
        question: QuestionId,
        /// The person's value, trimmed and clipped to [`MAX_ECHO_CHARS`].
        given: String,
        /// The question's option keys, in display order.
        options: Vec<String>,
    },
    /// A named answer used a name that is no question id.
    #[error("\"{given}\" is not a question; use one of {}", .known.join(", "))]
    UnknownQuestion {
        /// The name as typed, clipped to [`MAX_ECHO_CHARS`].
        given: String,
        /// Every question id of the catalogue, in catalogue order.
        known: Vec<String>,
    },
    /// A positional reply has more values than questions were asked.
    #[error("{}", too_many_values(*.given, *.expected))]
    TooManyValues { given: usize, expected: usize },
    /// Nothing but whitespace, punctuation, emoji or a leading mention.
    #[error("that reply is empty")]
    Empty,
    /// A named reply answers (or skips) the same question twice.
    #[error("{question} is answered twice; give it once")]
    Duplicate { question: QuestionId },
    /// A piece of a named reply is not `name=value`, e.g. a bare value mixed
    /// in with named ones, or `decisions=` with nothing after it.
    #[error(
        "couldn't read \"{fragment}\"; write name=value, or the answers in order separated by commas"
    )]
    Unreadable {
        /// The piece that could not be read, clipped to [`MAX_ECHO_CHARS`].
        fragment: String,
    },
    /// Longer than [`MAX_TEXT_CHARS`]; not read at all.
    #[error("that reply is too long to read (over {max} characters)")]
    TooLong { max: usize },
}

fn too_many_values(given: usize, expected: usize) -> String {
    match expected {
        0 => format!("{given} answers, but no questions were asked"),
        1 => format!("{given} answers for 1 question; give one value"),
        n => format!("{given} answers for {n} questions; give at most one per question, in order"),
    }
}

/// Reads a text reply to a prompt that asked `questions`, in that order.
///
/// Two forms, told apart by whether the text has a `=` or `:`:
///
/// - **positional**: `3-5, 4+, once, …`: one value per asked question, in
///   order, separated by commas, semicolons or newlines (or by spaces alone
///   when the text has no other separator and is not one value). Fewer values
///   than questions answer the first ones; more is an error.
/// - **named**: `decisions=3-5 capacity=none` (or `decisions: 3-5`),
///   separated by spaces, commas, semicolons or newlines. Names are exact
///   question ids, case-insensitive; any question of the catalogue may be
///   named, asked or not.
///
/// A value is an option key, or its label where that is unambiguous within
/// the question (`a little`, `Deciding what & why`), or a whole number that
/// falls in exactly one range key (`4` → `3-5`). `-`, `?`, `skip` and `n/a`
/// skip a question. Ids in `questions` that the catalogue does not know are
/// ignored, as are repeated ones.
///
/// ```
/// use nudged::domain::default_catalogue;
/// use nudged::reply::parse_answers;
///
/// let catalogue = default_catalogue();
/// let asked: Vec<_> = catalogue.questions().iter().map(|q| q.id.clone()).collect();
/// let reply = parse_answers("3–5, 4+, once", &catalogue, &asked).unwrap();
/// assert_eq!(reply.answers[0].1.as_str(), "3-5");
/// assert_eq!(reply.answers.len(), 3);
///
/// let named = parse_answers("decisions=6+ capacity=none", &catalogue, &asked).unwrap();
/// assert_eq!(named.answers.len(), 2);
/// ```
pub fn parse_answers(
    text: &str,
    catalogue: &Catalogue,
    questions: &[QuestionId],
) -> Result<ParsedReply, ReplyError> {
    if is_too_long(text) {
        return Err(ReplyError::TooLong {
            max: MAX_TEXT_CHARS,
        });
    }
    let text = canonical(text);
    let text = strip_leading_mentions(&text);
    if text
        .chars()
        .all(|c| c.is_whitespace() || matches!(c, ',' | ';' | '.' | '!' | '…'))
    {
        return Err(ReplyError::Empty);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(strip_list_marker)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let mut reply = Collector::new(catalogue);
    if lines.iter().any(|line| line.contains(['=', ':'])) {
        parse_named(&lines, catalogue, &mut reply)?;
    } else {
        let asked = asked_questions(catalogue, questions);
        reply = parse_positional(&lines, &asked, catalogue)?;
    }
    Ok(reply.finish())
}

/// A one-line confirmation of what a reply recorded, using the option labels:
/// `Got it: decisions 3–5, stakeholders 4+, capacity yes.`
pub fn understood(reply: &ParsedReply, catalogue: &Catalogue) -> String {
    let answered: Vec<String> = reply
        .answers
        .iter()
        .map(|(question, option)| {
            let label = catalogue
                .get(question.as_str())
                .and_then(|q| q.option(option.as_str()))
                .filter(|o| !o.label.trim().is_empty())
                .map_or_else(|| option.to_string(), |o| soften(o.label.trim()));
            format!("{question} {label}")
        })
        .collect();
    let skipped: Vec<&str> = reply.skipped.iter().map(QuestionId::as_str).collect();
    match (answered.is_empty(), skipped.is_empty()) {
        (true, true) => "Got it, but there was nothing to record.".to_owned(),
        (false, true) => format!("Got it: {}.", answered.join(", ")),
        (true, false) => format!("Got it: skipped {}.", skipped.join(", ")),
        (false, false) => format!(
            "Got it: {}; skipped {}.",
            answered.join(", "),
            skipped.join(", ")
        ),
    }
}

/// A short help text for answering `questions` by text, with both forms and
/// the real option keys. With no (known) questions it describes the whole
/// catalogue, since a named reply may answer any of it.
pub fn help_text(catalogue: &Catalogue, questions: &[QuestionId]) -> String {
    let mut asked = asked_questions(catalogue, questions);
    if asked.is_empty() {
        asked = catalogue.questions().iter().collect();
    }
    let (Some(first), Some(last)) = (asked.first(), asked.last()) else {
        return "There are no questions to answer right now.".to_owned();
    };
    // The middle option of each question: a neutral example, not a hint.
    fn example_key(q: &Question) -> &str {
        q.options
            .get(q.options.len() / 2)
            .map_or("-", |o| o.key.as_str())
    }
    let positional: Vec<&str> = asked.iter().map(|q| example_key(q)).collect();
    let mut named = format!("{}={}", first.id, example_key(first));
    if asked.len() > 1 {
        named.push_str(&format!(" {}={}", last.id, example_key(last)));
    }
    let options: Vec<String> = asked
        .iter()
        .map(|q| {
            let keys: Vec<&str> = q.options.iter().map(|o| o.key.as_str()).collect();
            format!("{}: {}", q.id, keys.join(", "))
        })
        .collect();
    format!(
        "Reply with answers in order, like `{}` (`-` skips one), or by name, like `{named}`.\n\
         Options · {}",
        positional.join(", "),
        options.join(" · ")
    )
}

/// Answers and skips gathered so far; refuses a second mention of a question.
struct Collector<'c> {
    catalogue: &'c Catalogue,
    answers: Vec<(QuestionId, OptionKey)>,
    skipped: Vec<QuestionId>,
}

impl<'c> Collector<'c> {
    fn new(catalogue: &'c Catalogue) -> Self {
        Self {
            catalogue,
            answers: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn check_new(&self, question: &Question) -> Result<(), ReplyError> {
        let seen = self.answers.iter().any(|(q, _)| *q == question.id)
            || self.skipped.contains(&question.id);
        if seen {
            return Err(ReplyError::Duplicate {
                question: question.id.clone(),
            });
        }
        Ok(())
    }

    fn skip(&mut self, question: &Question) -> Result<(), ReplyError> {
        self.check_new(question)?;
        self.skipped.push(question.id.clone());
        Ok(())
    }

    fn answer(&mut self, question: &Question, value: &str) -> Result<(), ReplyError> {
        self.check_new(question)?;
        let option = resolve(question, value).ok_or_else(|| ReplyError::UnknownOption {
            question: question.id.clone(),
            given: clip(value),
            options: question
                .options
                .iter()
                .map(|o| o.key.as_str().to_owned())
                .collect(),
        })?;
        self.answers.push((question.id.clone(), option.key.clone()));
        Ok(())
    }

    fn finish(mut self) -> ParsedReply {
        let catalogue = self.catalogue;
        let position = |id: &QuestionId| catalogue.position(id.as_str()).unwrap_or(usize::MAX);
        self.answers.sort_by_key(|(q, _)| position(q));
        self.skipped.sort_by_key(position);
        ParsedReply {
            answers: self.answers,
            skipped: self.skipped,
        }
    }
}

/// The asked questions the catalogue knows, first mention of each, in order.
fn asked_questions<'c>(catalogue: &'c Catalogue, questions: &[QuestionId]) -> Vec<&'c Question> {
    let mut asked: Vec<&Question> = Vec::new();
    for id in questions {
        if let Some(q) = catalogue.get(id.as_str())
            && !asked.iter().any(|a| a.id == q.id)
        {
            asked.push(q);
        }
    }
    asked
}

fn parse_positional<'c>(
    lines: &[&str],
    asked: &[&Question],
    catalogue: &'c Catalogue,
) -> Result<Collector<'c>, ReplyError> {
    let mut cells: Vec<&str> = Vec::new();
    for line in lines {
        let mut parts: Vec<&str> = line.split([',', ';']).collect();
        // `3-5, 4+,` ends with a separator, not with a skipped question.
        while parts.len() > 1 && parts.last().is_some_and(|p| p.trim().is_empty()) {
            parts.pop();
        }
        cells.extend(parts);
    }
    let assign = |cells: &[&str]| -> Result<Collector<'c>, ReplyError> {
        let mut reply = Collector::new(catalogue);
        if cells.len() > asked.len() {
            return Err(ReplyError::TooManyValues {
                given: cells.len(),
                expected: asked.len(),
            });
        }
        for (question, cell) in asked.iter().zip(cells) {
            match clean_value(cell) {
                Cell::Blank | Cell::Skip => reply.skip(question)?,
                Cell::Value(value) => reply.answer(question, value)?,
            }
        }
        Ok(reply)
    };
    // `3-5 4+ once` with no separator at all: read it word by word, unless
    // the whole of it is one answer (a label such as `a little`).
    if let [cell] = cells[..]
        && let Cell::Value(value) = clean_value(cell)
        && value.contains(' ')
    {
        let whole = assign(&cells);
        if whole.is_ok() {
            return whole;
        }
        let words: Vec<&str> = value.split_whitespace().collect();
        return match assign(&words) {
            Err(ReplyError::TooManyValues { .. }) => whole,
            by_word => by_word,
        };
    }
    assign(&cells)
}

fn parse_named(
    lines: &[&str],
    catalogue: &Catalogue,
    reply: &mut Collector<'_>,
) -> Result<(), ReplyError> {
    for segment in lines.iter().flat_map(|line| line.split([',', ';'])) {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        for (name, value) in assignments(segment)? {
            let name = name.trim_matches(QUOTES);
            let question = catalogue
                .questions()
                .iter()
                .find(|q| q.id.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| ReplyError::UnknownQuestion {
                    given: clip(name),
                    known: catalogue
                        .questions()
                        .iter()
                        .map(|q| q.id.as_str().to_owned())
                        .collect(),
                })?;
            match clean_value(value) {
                Cell::Blank => {
                    return Err(ReplyError::Unreadable {
                        fragment: clip(&format!("{name}=")),
                    });
                }
                Cell::Skip => reply.skip(question)?,
                Cell::Value(value) => reply.answer(question, value)?,
            }
        }
    }
    Ok(())
}

/// Splits `decisions=3-5 focus: deciding what & why` into its `(name,
/// value)` pairs. A name is the word right before each `=` or `:`; its value
/// runs to the next name, so values may hold spaces.
fn assignments(segment: &str) -> Result<Vec<(&str, &str)>, ReplyError> {
    let unreadable = |fragment: &str| ReplyError::Unreadable {
        fragment: clip(fragment.trim()),
    };
    // (start of the name, index of its `=` or `:`), in order.
    let mut names: Vec<(usize, usize)> = Vec::new();
    for (op, _) in segment.match_indices(['=', ':']) {
        let before = segment[..op].trim_end();
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_whitespace() || c == '=' || c == ':')
            .map_or(0, |(i, c)| i + c.len_utf8());
        if start >= before.len() {
            return Err(unreadable(segment));
        }
        names.push((start, op));
    }
    let Some(&(first_start, _)) = names.first() else {
        return Err(unreadable(segment));
    };
    if !segment[..first_start].trim().is_empty() {
        return Err(unreadable(&segment[..first_start]));
    }
    let mut pairs = Vec::with_capacity(names.len());
    for (i, &(start, op)) in names.iter().enumerate() {
        let end = names.get(i + 1).map_or(segment.len(), |&(next, _)| next);
        let name = segment[start..op].trim();
        // `op` is an ASCII `=` or `:`, so `op + 1` is a char boundary.
        pairs.push((name, &segment[op + 1..end]));
    }
    Ok(pairs)
}

/// Surrounding characters a value or name may be wrapped in: quotes, code
/// and bold markers. None of them can occur in an option key or question id.
const QUOTES: &[char] = &['"', '\'', '“', '”', '‘', '’', '«', '»', '`', '*'];

/// Punctuation that may end a value (`yes.`); none can end an option key.
const TRAILING: &[char] = &['.', '!', '?', '…'];

/// One value slot of a reply.
enum Cell<'a> {
    /// Nothing in it (`3-5,,once`).
    Blank,
    /// An explicit skip: `-`, `?`, `skip`, `n/a`.
    Skip,
    /// Anything else, trimmed of quotes and trailing punctuation.
    Value(&'a str),
}

fn clean_value(raw: &str) -> Cell<'_> {
    let value = raw.trim().trim_matches(QUOTES).trim();
    if value.is_empty() {
        return Cell::Blank;
    }
    if is_skip(value) {
        return Cell::Skip;
    }
    let value = value
        .trim_end_matches(|c: char| TRAILING.contains(&c) || c.is_whitespace())
        .trim_matches(QUOTES)
        .trim();
    if value.is_empty() {
        Cell::Blank
    } else if is_skip(value) {
        Cell::Skip
    } else {
        Cell::Value(value)
    }
}

fn is_skip(value: &str) -> bool {
    value.chars().all(|c| c == '-')
        || value == "?"
        || value.eq_ignore_ascii_case("skip")
        || value.eq_ignore_ascii_case("n/a")
}

/// The option `value` names within `question`, trying in turn: the exact
/// key; the key in any case; the key with spaces removed (`3 - 5`); the
/// label; the label with spaces removed; a whole number inside one range key.
/// Each later step is used only when it finds exactly one option.
fn resolve<'q>(question: &'q Question, value: &str) -> Option<&'q QuestionOption> {
    let options = &question.options;
    if let Some(option) = options.iter().find(|o| o.key.as_str() == value) {
        return Some(option);
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let folded = fold_label(value);
    let folded_compact: String = folded.chars().filter(|c| *c != ' ').collect();
    only(
        options
            .iter()
            .filter(|o| o.key.as_str().eq_ignore_ascii_case(value)),
    )
    .or_else(|| {
        only(
            options
                .iter()
                .filter(|o| o.key.as_str().eq_ignore_ascii_case(&compact)),
        )
    })
    .or_else(|| only(options.iter().filter(|o| fold_label(&o.label) == folded)))
    .or_else(|| {
        only(options.iter().filter(|o| {
            fold_label(&o.label)
                .chars()
                .filter(|c| *c != ' ')
                .eq(folded_compact.chars())
        }))
    })
    .or_else(|| {
        let n = parse_count(&compact)?;
        only(options.iter().filter(|o| {
            key_range(o.key.as_str()).is_some_and(|(lo, hi)| lo <= n && hi.is_none_or(|hi| n <= hi))
        }))
    })
}

/// The single item of `items`, if there is exactly one.
fn only<'a>(mut items: impl Iterator<Item = &'a QuestionOption>) -> Option<&'a QuestionOption> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// A label as a person might type it: lower case, dashes and spaces
/// normalised, `&` read as "and", no trailing punctuation.
fn fold_label(label: &str) -> String {
    let lowered: String = label
        .chars()
        .filter_map(canonical_char)
        .flat_map(char::to_lowercase)
        .collect();
    let spaced = lowered.replace('&', " and ");
    let joined = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches(TRAILING).trim_end().to_owned()
}

/// The numbers a key stands for: `0` → 0..=0, `3-5` → 3..=5, `6+` → 6.. .
fn key_range(key: &str) -> Option<(u32, Option<u32>)> {
    if let Some(low) = key.strip_suffix('+') {
        return Some((parse_count(low)?, None));
    }
    if let Some((low, high)) = key.split_once('-') {
        return Some((parse_count(low)?, Some(parse_count(high)?)));
    }
    let n = parse_count(key)?;
    Some((n, Some(n)))
}

/// First-character lower case for a label inside a sentence (`Yes` → `yes`,
/// `A little` → `a little`), unless its first word looks like an acronym.
fn soften(label: &str) -> String {
    let first_word = label.split_whitespace().next().unwrap_or_default();
    if first_word.chars().skip(1).any(char::is_uppercase) {
        return label.to_owned();
    }
    let mut chars = label.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
