//! Text replies and `/pulse` arguments → typed answers and commands
//! (ARCHITECTURE.md, "Replying inline").
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
//!
//! # Layout
//!
//! - `answers.rs`: the answer grammar: [`parse_answers`], [`understood`],
//!   [`help_text`].
//! - `pulse.rs`: the `/pulse` grammar: [`parse_command`], [`command_help`].
//! - `text.rs`: what both read the same way: Slack markup, emoji, the length
//!   cap and the clipped echo in errors.

mod answers;
mod pulse;
mod text;

pub use answers::{ParsedReply, ReplyError, help_text, parse_answers, understood};
pub use pulse::{
    CommandError, MAX_PAUSE_DAYS, MAX_PAUSE_WEEKS, PulseCommand, command_help, parse_command,
};

/// Longest text either parser reads, in characters. A full named reply to
/// every default question is about 110 characters; anything far longer is not
/// an answer, and the cap bounds the work done per message.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Longest piece of the person's own text echoed back in an error, in
/// characters, so that an error stays one short line.
pub const MAX_ECHO_CHARS: usize = 40;
