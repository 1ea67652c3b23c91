//! Text replies and `/pulse` arguments → typed answers and commands
//! (DESIGN §3, "Replying inline").
//!
//! This module owns the grammar people type in chat: a thread or DM reply to a
//! prompt, either in the order asked (`3-5, 4+, once, deciding, hardly, same,
//! yes`) or by name (`decisions=3-5 capacity=none`); the one-line confirmation
//! of what was understood; the help line; and the `/pulse` subcommands. It is
//! pure: no IO, no clock, no chat types.
//!
//! Parsing is forgiving where the intent is clear (case, spaces, en/em dashes,
//! trailing punctuation, emoji, Slack list bullets and HTML entities, an option's
//! label as well as its key, a plain number that falls in one range option)
//! and strict where it is not: a value that matches no option, or more than
//! one, is an error that names the options. Every error is worded for the
//! person who typed the text and is short enough for a Slack reply; it echoes
//! at most [`MAX_ECHO_CHARS`] of their text.
//!
//! Whoever posts these strings to Slack must escape `&`, `<` and `>` as for
//! any message text: errors echo the person's own words, and labels may hold
//! an `&`.

use crate::domain::{Catalogue, OptionKey, Question, QuestionId, QuestionOption};

/// Longest text either parser reads, in characters. A full named reply to
/// every default question is about 110 characters; anything far longer is not
/// an answer, and the cap bounds the work done per message.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Longest piece of the person's own text echoed back in an error, in
/// characters, so that an error stays one short line.
pub const MAX_ECHO_CHARS: usize = 40;

/// Longest pause `/pulse pause <n>w` accepts, in weeks (a year).
pub const MAX_PAUSE_WEEKS: u32 = 52;

/// Longest pause `/pulse pause <n>d` accepts, in days (a year).
pub const MAX_PAUSE_DAYS: u32 = 365;

// ---------------------------------------------------------------------------
// Text replies
// ---------------------------------------------------------------------------

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

/// `42` → 42; anything but a short run of ASCII digits → `None`.
fn parse_count(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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

/// Removes one list marker Slack's composer puts before a line (`• `, `- `,
/// `1. `), if the line has something after it.
fn strip_list_marker(line: &str) -> &str {
    let trimmed = line.trim_start();
    let rest = match trimmed.strip_prefix(['•', '◦', '▪', '‣', '·', '*', '-']) {
        Some(rest) => rest,
        None => {
            let digits = trimmed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(trimmed.len());
            if digits == 0 || digits > 3 {
                return line;
            }
            match trimmed[digits..].strip_prefix(['.', ')']) {
                Some(rest) => rest,
                None => return line,
            }
        }
    };
    if rest.starts_with(' ') && !rest.trim().is_empty() {
        rest
    } else {
        line
    }
}

/// Drops `<@U024BE7LH>` mentions at the start (a thread reply that mentions
/// the bot).
fn strip_leading_mentions(text: &str) -> &str {
    let mut rest = text.trim_start();
    while rest.starts_with("<@") {
        match rest.find('>') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    rest
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

// ---------------------------------------------------------------------------
// /pulse
// ---------------------------------------------------------------------------

/// A `/pulse` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PulseCommand {
    /// `/pulse`, `/pulse help`: list the subcommands.
    Help,
    /// `/pulse now`: ask me this week's questions now.
    Now,
    /// `/pulse trend`: show my trend.
    Trend,
    /// `/pulse pause 2w` (or `10d`, `2 weeks`, `a week`): no check-ins for
    /// this many days, 1 to [`MAX_PAUSE_DAYS`]; weeks count as 7 days.
    Pause { days: u32 },
    /// `/pulse resume`: end a pause.
    Resume,
    /// `/pulse join`: start receiving check-ins.
    Join,
    /// `/pulse leave`: stop receiving check-ins.
    Leave,
    /// `/pulse export`: send me my answers.
    Export,
    /// `/pulse forget` asks to confirm (`confirmed: false`); `/pulse forget
    /// confirm` deletes.
    Forget { confirmed: bool },
    /// `/pulse nudge on` / `off`: turn the readiness nudge back on (after
    /// answering "Not for me") or off.
    Nudges { on: bool },
    /// Answers given inline (`/pulse decisions=3-5 capacity=none`, or
    /// positional with commas): the text as typed, trimmed, for
    /// [`parse_answers`].
    Answer(String),
}

/// Why `/pulse` arguments could not be read. The `Display` text is what the
/// person sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a subcommand, and does not look like an answer.
    #[error("\"{given}\" is not a /pulse command; try /pulse help")]
    Unknown {
        /// The first word, clipped to [`MAX_ECHO_CHARS`].
        given: String,
    },
    /// `pause` without a readable length, or one out of bounds.
    #[error("{}", bad_pause(.given))]
    BadPause {
        /// What followed `pause`, clipped to [`MAX_ECHO_CHARS`].
        given: String,
    },
    /// Words after a subcommand that takes none (`/pulse now please`), or
    /// after `forget` other than `confirm`.
    #[error("/pulse {command} doesn't take \"{given}\"; try /pulse help")]
    UnexpectedArgument {
        command: &'static str,
        /// The extra words, clipped to [`MAX_ECHO_CHARS`].
        given: String,
    },
    /// `nudge` without `on` or `off`.
    #[error("/pulse nudge takes on or off, like /pulse nudge on")]
    BadNudge,
    /// Longer than [`MAX_TEXT_CHARS`]; not read at all.
    #[error("that command is too long to read (over {max} characters)")]
    TooLong { max: usize },
}

fn bad_pause(given: &str) -> String {
    let bounds = format!(
        "1–{MAX_PAUSE_WEEKS} weeks or 1–{MAX_PAUSE_DAYS} days, like /pulse pause 2w or /pulse pause 10d"
    );
    if given.is_empty() {
        format!("/pulse pause needs a length: {bounds}")
    } else {
        format!("can't pause for \"{given}\"; use {bounds}")
    }
}

/// Reads the text after `/pulse` (a leading `/pulse` itself is tolerated).
/// Case-insensitive; empty text is `help`. A first word that is no
/// subcommand makes the text an [`PulseCommand::Answer`] when it holds a `=`,
/// `:`, `,`, `;` or line break, and an unknown command otherwise.
pub fn parse_command(text: &str) -> Result<PulseCommand, CommandError> {
    if is_too_long(text) {
        return Err(CommandError::TooLong {
            max: MAX_TEXT_CHARS,
        });
    }
    let raw = strip_command_name(text.trim());
    let canon = canonical(raw);
    let mut words = canon.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(PulseCommand::Help);
    };
    // Words with no letter or digit (a stray `.` or `!`) say nothing.
    let rest: Vec<&str> = words
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    let no_args = |command: &'static str, parsed: PulseCommand| {
        if rest.is_empty() {
            Ok(parsed)
        } else {
            Err(CommandError::UnexpectedArgument {
                command,
                given: clip(&rest.join(" ")),
            })
        }
    };
    let word = first.trim_end_matches(['.', ',', '!']).to_lowercase();
    match word.as_str() {
        "" | "?" | "help" | "-h" | "--help" => Ok(PulseCommand::Help),
        "now" => no_args("now", PulseCommand::Now),
        "trend" => no_args("trend", PulseCommand::Trend),
        "pause" => parse_pause(&rest),
        "resume" => no_args("resume", PulseCommand::Resume),
        "join" => no_args("join", PulseCommand::Join),
        "leave" => no_args("leave", PulseCommand::Leave),
        "export" => no_args("export", PulseCommand::Export),
        "forget" => match rest[..] {
            [] => Ok(PulseCommand::Forget { confirmed: false }),
            [confirm]
                if confirm
                    .trim_end_matches(['.', '!'])
                    .eq_ignore_ascii_case("confirm") =>
            {
                Ok(PulseCommand::Forget { confirmed: true })
            }
            _ => no_args("forget", PulseCommand::Forget { confirmed: false }),
        },
        "nudge" | "nudges" => match rest[..] {
            [switch] => match switch.trim_end_matches(['.', '!']).to_lowercase().as_str() {
                "on" => Ok(PulseCommand::Nudges { on: true }),
                "off" => Ok(PulseCommand::Nudges { on: false }),
                _ => Err(CommandError::BadNudge),
            },
            _ => Err(CommandError::BadNudge),
        },
        _ if canon.contains(['=', ':', ',', ';', '\n']) => Ok(PulseCommand::Answer(raw.to_owned())),
        _ => Err(CommandError::Unknown { given: clip(first) }),
    }
}

/// `2w`, `2 w`, `2 weeks`, `for 10 days`, `a week` → days.
fn parse_pause(words: &[&str]) -> Result<PulseCommand, CommandError> {
    let given = words.join(" ");
    let bad = || CommandError::BadPause {
        given: clip(&given),
    };
    let words = match words {
        [first, rest @ ..] if first.eq_ignore_ascii_case("for") => rest,
        _ => words,
    };
    let (count, unit) = match words {
        [first, rest @ ..]
            if ["a", "an", "one"]
                .iter()
                .any(|w| first.eq_ignore_ascii_case(w)) =>
        {
            (1, rest.concat())
        }
        _ => {
            let compact = words.concat();
            let digits = compact
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(compact.len());
            let count = parse_count(&compact[..digits]).ok_or_else(bad)?;
            (count, compact[digits..].to_owned())
        }
    };
    let unit = unit.trim_end_matches(['.', '!']).to_lowercase();
    let days = match unit.as_str() {
        "w" | "wk" | "wks" | "week" | "weeks" if (1..=MAX_PAUSE_WEEKS).contains(&count) => {
            count * 7
        }
        "d" | "day" | "days" if (1..=MAX_PAUSE_DAYS).contains(&count) => count,
        _ => return Err(bad()),
    };
    Ok(PulseCommand::Pause { days })
}

/// Every `/pulse` subcommand, one per line.
pub fn command_help() -> &'static str {
    "/pulse now: ask me this week's questions now\n\
     /pulse trend: show my trend\n\
     /pulse pause 2w: no check-ins for 2 weeks (1–52 weeks, or days: 10d)\n\
     /pulse resume: end a pause\n\
     /pulse join / leave: start or stop getting check-ins\n\
     /pulse export: send me my answers\n\
     /pulse forget: delete my answers (asks to confirm first)\n\
     /pulse nudge on / off: hear about the readiness nudge again, or not\n\
     /pulse decisions=3-5 capacity=none: answer inline, by name or in order"
}

/// `/pulse now` → `now`: tolerates the command name typed into the console.
fn strip_command_name(text: &str) -> &str {
    match text.get(..6) {
        Some(name) if name.eq_ignore_ascii_case("/pulse") => {
            let rest = &text[6..];
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                rest.trim_start()
            } else {
                text
            }
        }
        _ => text,
    }
}

// ---------------------------------------------------------------------------
// Shared text handling
// ---------------------------------------------------------------------------

fn is_too_long(text: &str) -> bool {
    text.chars().nth(MAX_TEXT_CHARS).is_some()
}

/// Slack's HTML entities undone, emoji (`:tada:` and 🎉) dropped, dash-like
/// and full-width punctuation made ASCII, every other whitespace a space
/// (line breaks kept), invisible and control characters dropped.
fn canonical(text: &str) -> String {
    let unescaped = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    strip_emoji_codes(&unescaped)
        .chars()
        .filter_map(canonical_char)
        .collect()
}

/// Replaces Slack emoji codes (`:tada:`, `:+1::skin-tone-2:`) with a space.
/// A code stands alone: `decisions:3-5:` is not one, since a letter touches
/// its first colon.
fn strip_emoji_codes(text: &str) -> String {
    /// Longest emoji code looked for, in bytes; real ones are far shorter.
    const MAX_CODE_BYTES: usize = 64;
    let is_code = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-');
    // Non-ASCII bytes count as word characters: `é:x:` is left alone.
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b':' && (i == 0 || !is_word(bytes[i - 1])) {
            let mut j = i + 1;
            while j < bytes.len() && j - i <= MAX_CODE_BYTES && is_code(bytes[j]) {
                j += 1;
            }
            let closes = j > i + 1 && bytes.get(j) == Some(&b':');
            if closes && bytes.get(j + 1).is_none_or(|&b| !is_word(b)) {
                // `i` and `j` index ASCII colons, so both are char boundaries.
                out.push_str(&text[copied..i]);
                out.push(' ');
                i = j + 1;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn canonical_char(c: char) -> Option<char> {
    Some(match c {
        // Hyphens, en and em dashes, minus signs.
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
        '\u{FF1D}' => '=',
        '\u{FF1A}' => ':',
        '\u{FF0C}' | '\u{3001}' => ',',
        '\u{FF1B}' => ';',
        '\u{FF0B}' => '+',
        // Invisible joiners and marks; emoji and pictographs (`yes 👍`), which
        // carry no answer.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FE0F}' => {
            return None;
        }
        '\u{2600}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}' | '\u{1F000}'..='\u{1FAFF}' => {
            return None;
        }
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => '\n',
        c if c.is_whitespace() => ' ',
        c if c.is_control() => return None,
        c => c,
    })
}

/// The person's text as echoed in an error: at most [`MAX_ECHO_CHARS`]
/// characters, no control characters.
fn clip(text: &str) -> String {
    let clean = text.chars().filter(|c| !c.is_control());
    if text
        .chars()
        .filter(|c| !c.is_control())
        .nth(MAX_ECHO_CHARS)
        .is_none()
    {
        return clean.collect();
    }
    let mut clipped: String = clean.take(MAX_ECHO_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::default_catalogue;

    fn all_ids() -> Vec<QuestionId> {
        default_catalogue()
            .questions()
            .iter()
            .map(|q| q.id.clone())
            .collect()
    }

    fn ids(names: &[&str]) -> Vec<QuestionId> {
        names
            .iter()
            .map(|n| QuestionId::parse(n).unwrap())
            .collect()
    }

    fn reply(answers: &[(&str, &str)], skipped: &[&str]) -> ParsedReply {
        ParsedReply {
            answers: answers
                .iter()
                .map(|(q, o)| (QuestionId::parse(q).unwrap(), OptionKey::parse(o).unwrap()))
                .collect(),
            skipped: ids(skipped),
        }
    }

    fn parse(text: &str) -> Result<ParsedReply, ReplyError> {
        parse_answers(text, &default_catalogue(), &all_ids())
    }

    /// A table row: the text, the answers and the skipped questions.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );

    const FULL: [(&str, &str); 7] = [
        ("decisions", "3-5"),
        ("stakeholders", "4+"),
        ("tradeoffs", "once"),
        ("focus", "deciding"),
        ("reversibility", "hardly"),
        ("continuity", "same"),
        ("capacity", "yes"),
    ];

    #[test]
    fn the_design_examples_parse() {
        assert_eq!(
            parse("3-5, 4+, once, deciding, hardly, same, yes"),
            Ok(reply(&FULL, &[]))
        );
        assert_eq!(
            parse("decisions=3-5 capacity=none"),
            Ok(reply(&[("decisions", "3-5"), ("capacity", "none")], &[]))
        );
    }

    #[test]
    fn positional_replies() {
        let table: &[Case] = &[
            ("3–5, 4+, once, deciding, hardly, same, yes.", &FULL, &[]),
            ("3—5; 4+; Once; DECIDING; hardly; same; yes!", &FULL, &[]),
            ("3-5\n4+\nonce\ndeciding\nhardly\nsame\nyes", &FULL, &[]),
            (
                "• 3-5\n• 4+\n• once\n• deciding\n• hardly\n• same\n• yes",
                &FULL,
                &[],
            ),
            (
                "1. 3-5\n2. 4+\n3. once\n4. deciding\n5. hardly\n6. same\n7. yes",
                &FULL,
                &[],
            ),
            ("3-5 4+ once deciding hardly same yes", &FULL, &[]),
            ("3-5, 4+, once, deciding, hardly, same, yes,", &FULL, &[]),
            (
                "  3 - 5 ,4 +,  \"once\"  ",
                &[
                    ("decisions", "3-5"),
                    ("stakeholders", "4+"),
                    ("tradeoffs", "once"),
                ],
                &[],
            ),
            (
                "3-5, 4+",
                &[("decisions", "3-5"), ("stakeholders", "4+")],
                &[],
            ),
            ("6+", &[("decisions", "6+")], &[]),
            (
                "4, 7, ?",
                &[("decisions", "3-5"), ("stakeholders", "4+")],
                &["tradeoffs"],
            ),
            (
                "-, ?, skip, n/a, —, , yes",
                &[("capacity", "yes")],
                &[
                    "decisions",
                    "stakeholders",
                    "tradeoffs",
                    "focus",
                    "reversibility",
                    "continuity",
                ],
            ),
            (
                "3-5,, once",
                &[("decisions", "3-5"), ("tradeoffs", "once")],
                &["stakeholders"],
            ),
            (
                "3-5 - once",
                &[("decisions", "3-5"), ("tradeoffs", "once")],
                &["stakeholders"],
            ),
            (
                "1–2, 2–3, Several, Deciding what & why, Partly, Rotated, A little",
                &[
                    ("decisions", "1-2"),
                    ("stakeholders", "2-3"),
                    ("tradeoffs", "several"),
                    ("focus", "deciding"),
                    ("reversibility", "partly"),
                    ("continuity", "rotated"),
                    ("capacity", "little"),
                ],
                &[],
            ),
            (
                "0, 0-1, none, tracking delivery, easily, same, a little",
                &[
                    ("decisions", "0"),
                    ("stakeholders", "0-1"),
                    ("tradeoffs", "none"),
                    ("focus", "tracking"),
                    ("reversibility", "easily"),
                    ("continuity", "same"),
                    ("capacity", "little"),
                ],
                &[],
            ),
            (
                "<@U024BE7LH> 6+, 0-1",
                &[("decisions", "6+"), ("stakeholders", "0-1")],
                &[],
            ),
        ];
        for (text, answers, skipped) in table {
            assert_eq!(parse(text), Ok(reply(answers, skipped)), "{text:?}");
        }
    }

    #[test]
    fn positional_replies_follow_the_questions_asked() {
        let asked = ids(&["capacity", "focus"]);
        assert_eq!(
            parse_answers(
                "a little, deciding what and why",
                &default_catalogue(),
                &asked
            ),
            Ok(reply(&[("focus", "deciding"), ("capacity", "little")], &[]))
        );
        // Slack escapes `&` in message text.
        assert_eq!(
            parse_answers(
                "Deciding what &amp; why",
                &default_catalogue(),
                &ids(&["focus"])
            ),
            Ok(reply(&[("focus", "deciding")], &[]))
        );
        // Unknown and repeated ids in `questions` are ignored.
        let asked = ids(&["mood", "capacity", "capacity", "decisions"]);
        assert_eq!(
            parse_answers("yes, 0", &default_catalogue(), &asked),
            Ok(reply(&[("decisions", "0"), ("capacity", "yes")], &[]))
        );
    }

    #[test]
    fn named_replies() {
        let table: &[Case] = &[
            (
                "decisions=3–5 capacity=none",
                &[("decisions", "3-5"), ("capacity", "none")],
                &[],
            ),
            (
                "Decisions: 3-5, Capacity: None.",
                &[("decisions", "3-5"), ("capacity", "none")],
                &[],
            ),
            (
                "decisions = 3-5\ncapacity = a little",
                &[("decisions", "3-5"), ("capacity", "little")],
                &[],
            ),
            (
                "capacity=a little focus=Deciding what & why decisions=6 +",
                &[
                    ("decisions", "6+"),
                    ("focus", "deciding"),
                    ("capacity", "little"),
                ],
                &[],
            ),
            (
                "stakeholders=5; tradeoffs=-",
                &[("stakeholders", "4+")],
                &["tradeoffs"],
            ),
            ("focus: skip", &[], &["focus"]),
            (
                "• continuity=same\n• reversibility=hardly",
                &[("reversibility", "hardly"), ("continuity", "same")],
                &[],
            ),
            ("decisions＝3-5", &[("decisions", "3-5")], &[]),
        ];
        for (text, answers, skipped) in table {
            assert_eq!(parse(text), Ok(reply(answers, skipped)), "{text:?}");
        }
    }

    #[test]
    fn emoji_carry_no_answer() {
        assert_eq!(
            parse("3-5, 4+ :tada::skin-tone-2:"),
            Ok(reply(&[("decisions", "3-5"), ("stakeholders", "4+")], &[]))
        );
        assert_eq!(
            parse("decisions=6+ 🎉 capacity: yes 👍🏽"),
            Ok(reply(&[("decisions", "6+"), ("capacity", "yes")], &[]))
        );
        assert_eq!(parse("👍"), Err(ReplyError::Empty));
        assert_eq!(parse(":+1:"), Err(ReplyError::Empty));
        assert_eq!(parse_command(":wave:"), Ok(PulseCommand::Help));
        assert_eq!(parse_command("now :pray:"), Ok(PulseCommand::Now));
    }

    #[test]
    fn huge_input_is_refused_without_reading_it() {
        let huge = "3-5, ".repeat(1_000_000);
        assert_eq!(
            parse(&huge),
            Err(ReplyError::TooLong {
                max: MAX_TEXT_CHARS
            })
        );
        assert_eq!(
            parse_command(&huge),
            Err(CommandError::TooLong {
                max: MAX_TEXT_CHARS
            })
        );
        // Just under the cap is read, and refused for what it says.
        let long = "decisions=3-5 ".repeat(MAX_TEXT_CHARS / 14);
        assert!(matches!(parse(&long), Err(ReplyError::Duplicate { .. })));
    }

    #[test]
    fn named_replies_may_answer_questions_not_asked() {
        assert_eq!(
            parse_answers("capacity=yes", &default_catalogue(), &ids(&["decisions"])),
            Ok(reply(&[("capacity", "yes")], &[]))
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let table: &[(&str, ReplyError, &str)] = &[
            (
                "lots",
                ReplyError::UnknownOption {
                    question: QuestionId::parse("decisions").unwrap(),
                    given: "lots".into(),
                    options: vec!["0".into(), "1-2".into(), "3-5".into(), "6+".into()],
                },
                "\"lots\" is not an answer to decisions; try one of 0, 1-2, 3-5, 6+",
            ),
            (
                "3-5 lots",
                ReplyError::UnknownOption {
                    question: QuestionId::parse("stakeholders").unwrap(),
                    given: "lots".into(),
                    options: vec!["0-1".into(), "2-3".into(), "4+".into()],
                },
                "\"lots\" is not an answer to stakeholders; try one of 0-1, 2-3, 4+",
            ),
            (
                "capacity=maybe",
                ReplyError::UnknownOption {
                    question: QuestionId::parse("capacity").unwrap(),
                    given: "maybe".into(),
                    options: vec!["none".into(), "little".into(), "yes".into()],
                },
                "\"maybe\" is not an answer to capacity; try one of none, little, yes",
            ),
            (
                "mood=great",
                ReplyError::UnknownQuestion {
                    given: "mood".into(),
                    known: all_ids().iter().map(|q| q.to_string()).collect(),
                },
                "\"mood\" is not a question; use one of decisions, stakeholders, tradeoffs, \
                 focus, reversibility, continuity, capacity",
            ),
            (
                "3-5, 4+, once, deciding, hardly, same, yes, 7",
                ReplyError::TooManyValues {
                    given: 8,
                    expected: 7,
                },
                "8 answers for 7 questions; give at most one per question, in order",
            ),
            (" ,. \n ! ", ReplyError::Empty, "that reply is empty"),
            (
                "decisions=3-5 Decisions=6+",
                ReplyError::Duplicate {
                    question: QuestionId::parse("decisions").unwrap(),
                },
                "decisions is answered twice; give it once",
            ),
            (
                "3-5, capacity=none",
                ReplyError::Unreadable {
                    fragment: "3-5".into(),
                },
                "couldn't read \"3-5\"; write name=value, or the answers in order separated by commas",
            ),
            (
                "decisions=",
                ReplyError::Unreadable {
                    fragment: "decisions=".into(),
                },
                "couldn't read \"decisions=\"; write name=value, or the answers in order separated by commas",
            ),
            (
                "= 3-5",
                ReplyError::Unreadable {
                    fragment: "= 3-5".into(),
                },
                "couldn't read \"= 3-5\"; write name=value, or the answers in order separated by commas",
            ),
        ];
        for (text, error, message) in table {
            let got = parse(text);
            assert_eq!(got.as_ref(), Err(error), "{text:?}");
            assert_eq!(error.to_string(), *message);
        }
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            parse(&long),
            Err(ReplyError::TooLong {
                max: MAX_TEXT_CHARS
            })
        );
        assert_eq!(
            ReplyError::TooLong {
                max: MAX_TEXT_CHARS
            }
            .to_string(),
            "that reply is too long to read (over 4000 characters)"
        );
        assert_eq!(
            parse_answers("3-5", &default_catalogue(), &[]),
            Err(ReplyError::TooManyValues {
                given: 1,
                expected: 0
            })
        );
        assert_eq!(
            parse_answers("3-5, 4+", &default_catalogue(), &ids(&["decisions"]))
                .unwrap_err()
                .to_string(),
            "2 answers for 1 question; give one value"
        );
    }

    #[test]
    fn an_echoed_value_is_clipped() {
        let text = format!("capacity={}", "ä".repeat(500));
        let Err(ReplyError::UnknownOption { given, .. }) = parse(&text) else {
            panic!("expected UnknownOption");
        };
        assert_eq!(given.chars().count(), MAX_ECHO_CHARS);
        assert!(given.ends_with('…'));
    }

    #[test]
    fn ambiguous_labels_are_not_accepted() {
        use crate::domain::{Catalogue, Question, QuestionOption};
        let option = |key: &str, label: &str| QuestionOption {
            key: OptionKey::parse(key).unwrap(),
            label: label.into(),
            score: 0.0,
        };
        let catalogue = Catalogue::new(vec![Question {
            id: QuestionId::parse("mood").unwrap(),
            text: "Mood?".into(),
            options: vec![
                option("up", "Fine"),
                option("flat", "fine"),
                option("down", "Low"),
            ],
        }]);
        let asked = ids(&["mood"]);
        assert!(matches!(
            parse_answers("fine", &catalogue, &asked),
            Err(ReplyError::UnknownOption { .. })
        ));
        assert_eq!(
            parse_answers("low", &catalogue, &asked),
            Ok(reply(&[("mood", "down")], &[]))
        );
    }

    #[test]
    fn understood_uses_labels() {
        let catalogue = default_catalogue();
        let parsed = parse("decisions=3-5 stakeholders=4+ capacity=yes").unwrap();
        assert_eq!(
            understood(&parsed, &catalogue),
            "Got it: decisions 3–5, stakeholders 4+, capacity yes."
        );
        let parsed = parse("-, -, -, deciding, , , a little").unwrap();
        assert_eq!(
            understood(&parsed, &catalogue),
            "Got it: focus deciding what & why, capacity a little; \
             skipped decisions, stakeholders, tradeoffs, reversibility, continuity."
        );
        assert_eq!(
            understood(&parse("capacity=-").unwrap(), &catalogue),
            "Got it: skipped capacity."
        );
        assert_eq!(
            understood(&ParsedReply::default(), &catalogue),
            "Got it, but there was nothing to record."
        );
    }

    #[test]
    fn help_text_shows_both_forms_with_real_keys() {
        let catalogue = default_catalogue();
        assert_eq!(
            help_text(&catalogue, &all_ids()),
            "Reply with answers in order, like `3-5, 2-3, once, mixed, partly, partly, little` \
             (`-` skips one), or by name, like `decisions=3-5 capacity=little`.\n\
             Options · decisions: 0, 1-2, 3-5, 6+ · stakeholders: 0-1, 2-3, 4+ · \
             tradeoffs: none, once, several · focus: tracking, mixed, deciding · \
             reversibility: easily, partly, hardly · continuity: rotated, partly, same · \
             capacity: none, little, yes"
        );
        let one = help_text(&catalogue, &ids(&["capacity"]));
        assert!(
            one.contains("`little`") && one.contains("`capacity=little`"),
            "{one}"
        );
        assert_eq!(
            help_text(&catalogue, &[]),
            help_text(&catalogue, &all_ids())
        );
        // Every example in the help text parses.
        for example in help_text(&catalogue, &all_ids())
            .split('`')
            .skip(1)
            .step_by(2)
        {
            assert!(parse(example).is_ok(), "{example}");
        }
    }

    #[test]
    fn pulse_subcommands() {
        use PulseCommand::*;
        let table: &[(&str, PulseCommand)] = &[
            ("", Help),
            ("   ", Help),
            ("help", Help),
            ("HELP", Help),
            ("?", Help),
            ("/pulse", Help),
            ("now", Now),
            (" Now. ", Now),
            ("/pulse now", Now),
            ("trend", Trend),
            ("pause 2w", Pause { days: 14 }),
            ("pause 2 weeks", Pause { days: 14 }),
            ("PAUSE 2W", Pause { days: 14 }),
            ("pause for 3 days", Pause { days: 3 }),
            ("pause 10d", Pause { days: 10 }),
            ("pause a week", Pause { days: 7 }),
            ("pause 1 day", Pause { days: 1 }),
            ("pause 52w", Pause { days: 364 }),
            ("pause 365d", Pause { days: 365 }),
            ("resume", Resume),
            ("join", Join),
            ("leave", Leave),
            ("export", Export),
            ("forget", Forget { confirmed: false }),
            ("forget confirm", Forget { confirmed: true }),
            ("nudge on", Nudges { on: true }),
            ("Nudge OFF.", Nudges { on: false }),
            ("/pulse nudges on", Nudges { on: true }),
            ("Forget CONFIRM", Forget { confirmed: true }),
            (
                "decisions=3-5 capacity=none",
                Answer("decisions=3-5 capacity=none".into()),
            ),
            (" decisions = 3-5 ", Answer("decisions = 3-5".into())),
            ("decisions: 3-5", Answer("decisions: 3-5".into())),
            (
                "3-5, 4+, once, deciding, hardly, same, yes",
                Answer("3-5, 4+, once, deciding, hardly, same, yes".into()),
            ),
            ("/pulse 3-5, 4+", Answer("3-5, 4+".into())),
        ];
        for (text, command) in table {
            assert_eq!(parse_command(text).as_ref(), Ok(command), "{text:?}");
        }
    }

    #[test]
    fn pulse_errors() {
        let table: &[(&str, CommandError, &str)] = &[
            (
                "dance",
                CommandError::Unknown {
                    given: "dance".into(),
                },
                "\"dance\" is not a /pulse command; try /pulse help",
            ),
            (
                "pause",
                CommandError::BadPause {
                    given: String::new(),
                },
                "/pulse pause needs a length: 1–52 weeks or 1–365 days, \
                 like /pulse pause 2w or /pulse pause 10d",
            ),
            (
                "pause 0w",
                CommandError::BadPause { given: "0w".into() },
                "can't pause for \"0w\"; use 1–52 weeks or 1–365 days, \
                 like /pulse pause 2w or /pulse pause 10d",
            ),
            (
                "pause 53w",
                CommandError::BadPause {
                    given: "53w".into(),
                },
                "",
            ),
            (
                "pause 366d",
                CommandError::BadPause {
                    given: "366d".into(),
                },
                "",
            ),
            (
                "pause 0d",
                CommandError::BadPause { given: "0d".into() },
                "",
            ),
            ("pause 2", CommandError::BadPause { given: "2".into() }, ""),
            (
                "pause 2 months",
                CommandError::BadPause {
                    given: "2 months".into(),
                },
                "",
            ),
            (
                "pause -2w",
                CommandError::BadPause {
                    given: "-2w".into(),
                },
                "",
            ),
            (
                "pause 99999999999999999999w",
                CommandError::BadPause {
                    given: "99999999999999999999w".into(),
                },
                "",
            ),
            (
                "now please",
                CommandError::UnexpectedArgument {
                    command: "now",
                    given: "please".into(),
                },
                "/pulse now doesn't take \"please\"; try /pulse help",
            ),
            (
                "nudge",
                CommandError::BadNudge,
                "/pulse nudge takes on or off, like /pulse nudge on",
            ),
            ("nudge maybe", CommandError::BadNudge, ""),
            ("nudge on off", CommandError::BadNudge, ""),
            (
                "forget everything",
                CommandError::UnexpectedArgument {
                    command: "forget",
                    given: "everything".into(),
                },
                "/pulse forget doesn't take \"everything\"; try /pulse help",
            ),
            (
                "forget confirm now",
                CommandError::UnexpectedArgument {
                    command: "forget",
                    given: "confirm now".into(),
                },
                "",
            ),
        ];
        for (text, error, message) in table {
            assert_eq!(parse_command(text).as_ref(), Err(error), "{text:?}");
            if !message.is_empty() {
                assert_eq!(error.to_string(), *message);
            }
        }
        assert_eq!(
            parse_command(&"now ".repeat(2_000)),
            Err(CommandError::TooLong {
                max: MAX_TEXT_CHARS
            })
        );
    }

    #[test]
    fn command_help_lists_every_subcommand() {
        for word in [
            "now", "trend", "pause", "resume", "join", "leave", "export", "forget", "nudge on", "=",
        ] {
            assert!(command_help().contains(word), "{word}");
        }
    }

    /// How one question appears in a generated reply.
    #[derive(Debug, Clone)]
    enum Slot {
        Omitted,
        Skipped(&'static str),
        Answered {
            option: usize,
            as_label: bool,
            shout: bool,
        },
    }

    fn slot() -> impl Strategy<Value = Slot> {
        prop_oneof![
            1 => Just(Slot::Omitted),
            1 => prop::sample::select(vec!["-", "?", "skip", "Skip", "–", "n/a"]).prop_map(Slot::Skipped),
            4 => (0usize..8, any::<bool>(), any::<bool>())
                .prop_map(|(option, as_label, shout)| Slot::Answered { option, as_label, shout }),
        ]
    }

    /// The text for an answered slot, and the key it stands for.
    fn render(question: &Question, option: usize, as_label: bool, shout: bool) -> (String, String) {
        let option = &question.options[option % question.options.len()];
        let text = if as_label {
            option.label.clone()
        } else {
            option.key.to_string()
        };
        let text = if shout { text.to_uppercase() } else { text };
        (text, option.key.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_answers_never_panics(text in any::<String>()) {
            let _ = parse_answers(&text, &default_catalogue(), &all_ids());
        }

        #[test]
        fn parse_answers_never_panics_on_near_misses(
            text in "[a-z0-9 =:,;.?!*+&<>@•\\-–—\n\"'`]{0,120}"
        ) {
            let _ = parse_answers(&text, &default_catalogue(), &all_ids());
        }

        #[test]
        fn parse_command_never_panics(text in any::<String>()) {
            let _ = parse_command(&text);
        }

        #[test]
        fn parse_command_never_panics_on_near_misses(
            text in "(/pulse )?(pause|forget|now|help)? ?[a-z0-9 =:,;.!\\-–]{0,40}"
        ) {
            let _ = parse_command(&text);
        }

        #[test]
        fn named_replies_round_trip(
            slots in prop::collection::vec(slot(), 7),
            order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
            separator in prop::sample::select(vec![" ", ", ", "\n", "; ", " ,  "]),
            assign in prop::sample::select(vec!["=", ": ", " = ", ":"]),
        ) {
            let catalogue = default_catalogue();
            let questions = catalogue.questions();
            let mut parts = Vec::new();
            let mut expected = ParsedReply::default();
            for &i in &order {
                let question = &questions[i];
                match &slots[i] {
                    Slot::Omitted => {}
                    Slot::Skipped(word) => {
                        parts.push(format!("{}{assign}{word}", question.id));
                    }
                    &Slot::Answered { option, as_label, shout } => {
                        let (text, key) = render(question, option, as_label, shout);
                        parts.push(format!("{}{assign}{text}", question.id));
                        expected.answers.push((question.id.clone(), OptionKey::parse(&key).unwrap()));
                    }
                }
            }
            for (i, s) in slots.iter().enumerate() {
                if matches!(s, Slot::Skipped(_)) {
                    expected.skipped.push(questions[i].id.clone());
                }
            }
            expected.answers.sort_by_key(|(q, _)| catalogue.position(q.as_str()));
            prop_assume!(!parts.is_empty());
            let text = parts.join(separator);
            prop_assert_eq!(parse_answers(&text, &catalogue, &all_ids()), Ok(expected), "{:?}", text);
        }

        #[test]
        fn positional_replies_round_trip(
            slots in prop::collection::vec(slot(), 7),
            order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
            asked_count in 1usize..=7,
            separator in prop::sample::select(vec![", ", ",", "; ", "\n", " ,  "]),
        ) {
            let catalogue = default_catalogue();
            let questions = catalogue.questions();
            let asked: Vec<QuestionId> =
                order[..asked_count].iter().map(|&i| questions[i].id.clone()).collect();
            // Omitted slots become blanks in the middle; values stop at the
            // last slot that says something.
            let said = slots[..asked_count]
                .iter()
                .rposition(|s| !matches!(s, Slot::Omitted))
                .map_or(0, |last| last + 1);
            prop_assume!(said > 0);
            let mut values = Vec::new();
            let mut expected = ParsedReply::default();
            for (slot, id) in slots[..said].iter().zip(&asked) {
                let question = catalogue.get(id.as_str()).unwrap();
                match slot {
                    Slot::Omitted => {
                        values.push(String::new());
                        expected.skipped.push(id.clone());
                    }
                    Slot::Skipped(word) => {
                        values.push((*word).to_owned());
                        expected.skipped.push(id.clone());
                    }
                    &Slot::Answered { option, as_label, shout } => {
                        let (text, key) = render(question, option, as_label, shout);
                        values.push(text);
                        expected.answers.push((id.clone(), OptionKey::parse(&key).unwrap()));
                    }
                }
            }
            // A blank line is no value, so newline-separated replies say
            // `-` where the other forms leave a slot empty.
            if separator == "\n" {
                for value in &mut values {
                    if value.is_empty() {
                        *value = "-".into();
                    }
                }
            }
            expected.answers.sort_by_key(|(q, _)| catalogue.position(q.as_str()));
            expected.skipped.sort_by_key(|q| catalogue.position(q.as_str()));
            let text = values.join(separator);
            prop_assert_eq!(parse_answers(&text, &catalogue, &asked), Ok(expected), "{:?}", text);
        }
    }
}
