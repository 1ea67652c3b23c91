//! The `/pulse` grammar: the text after `/pulse` → [`PulseCommand`], and the
//! list of subcommands.

use super::MAX_TEXT_CHARS;
use super::text::{canonical, clip, is_too_long, parse_count};
#[cfg(doc)]
use super::{MAX_ECHO_CHARS, parse_answers};

/// Longest pause `/pulse pause <n>w` accepts, in weeks (a year).
pub const MAX_PAUSE_WEEKS: u32 = 52;

/// Longest pause `/pulse pause <n>d` accepts, in days (a year).
pub const MAX_PAUSE_DAYS: u32 = 365;

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

#[cfg(test)]
mod tests;
