//! The console driver: each line typed on a terminal read as the reply of
//! the roster's first person, beside the console platform
//! ([`crate::chat::console`]) that prints what nudged sends, so `nudged
//! run` shows the whole loop with no chat account.
//!
//! A typed line is what a DM to the Slack bot would be: answers in the
//! thread-reply grammar (`3-5, 4+, once, …` or `decisions=3-5`), or a
//! `/pulse` subcommand. Both go through the same use cases as Slack's
//! handlers ([`answers::text_reply`], [`pulse::run`]); only the reply is
//! printed instead of posted.
//!
//! [`handle_line`] is the whole of it and needs no terminal; [`read_lines`]
//! drives it from any [`AsyncBufRead`]. `nudged run` starts the reader on
//! standard input only when that is a terminal it has the foreground of
//! ([`stdin_is_interactive`]).

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::PersonId;
use crate::render::text::{self, Markup};
use crate::reply;
use crate::service::answers::{self, Replied, TextReply};
use crate::service::readiness::Assessor;
use crate::service::{Ctx, pulse};
use crate::store::{AnswerSource, Store};

/// Longest line read, in bytes; the rest of a longer line is skipped. Far
/// above any reply the parser reads ([`reply::MAX_TEXT_CHARS`]), and it
/// bounds the memory one line can take.
pub const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Added to a reply that understood nothing, so the commands are one step
/// away.
const COMMANDS_HINT: &str = "`/pulse help` lists the commands.";

/// Who typed lines speak for, and what answering them needs.
#[derive(Clone)]
pub struct ConsoleInput {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Re-assesses the person after recorded answers, as for Slack replies.
    pub assessor: Assessor,
    /// The roster's first person.
    pub person: PersonId,
}

/// Reads one typed `line` as the input's person's reply and returns what
/// to print.
///
/// A line starting with `/` is a `/pulse` subcommand (`/pulse trend`); any
/// other line answers this week's check-in, exactly as a DM to the Slack bot
/// would. A line that says nothing readable gets the help for both. Only a
/// store failure is an error; the line is then not recorded.
pub async fn handle_line(input: &ConsoleInput, line: &str) -> anyhow::Result<String> {
    let ctx = Ctx {
        settings: &input.settings,
        store: input.store.as_ref(),
        assessor: &input.assessor,
        now: input.clock.now(),
    };
    let line = line.trim();
    if line.starts_with('/') {
        return match reply::parse_command(line) {
            // The reply is Slack mrkdwn, as the slash command posts it.
            Ok(command) => {
                let reply = pulse::run(ctx, &input.person, command).await?;
                Ok(text::convert(&reply, Markup::Plain))
            }
            Err(e) => Ok(format!("{e}\n{}", reply::command_help())),
        };
    }
    let reply = TextReply {
        person: &input.person,
        text: line,
        written: None,
        seen_key: None,
        source: AnswerSource::Text,
    };
    Ok(match answers::text_reply(ctx, reply).await? {
        Replied::Answered {
            reply,
            understood: true,
            ..
        } => reply,
        Replied::Answered { reply, .. } => format!("{reply}\n{COMMANDS_HINT}"),
        // Not reachable without a place or an id.
        Replied::NotEnrolled => answers::NOT_ENROLLED.to_owned(),
        Replied::Duplicate | Replied::NotForNudged(_) => String::new(),
    })
}

/// Answers each line of `input` with [`handle_line`], writing each reply to
/// `output`, until the input ends or `stop` is cancelled. A line being
/// handled is finished first, so an answer typed before shutdown is
/// recorded. Blank lines are ignored; bytes that are not UTF-8 are read
/// as `�`; a line longer than [`MAX_LINE_BYTES`] is refused, not read.
pub async fn read_lines<R, W>(
    input: &ConsoleInput,
    mut reader: R,
    mut output: W,
    stop: CancellationToken,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = (&mut reader).take(MAX_LINE_BYTES);
        let read = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            read = limited.read_until(b'\n', &mut buf) => read?,
        };
        if read == 0 {
            return Ok(());
        }
        let reply = if !buf.ends_with(b"\n") && read as u64 == MAX_LINE_BYTES {
            skip_rest_of_line(&mut reader).await?;
            format!("That line is too long to read (over {MAX_LINE_BYTES} bytes).")
        } else {
            let line = String::from_utf8_lossy(&buf);
            if line.trim().is_empty() {
                continue;
            }
            match handle_line(input, &line).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), person = %input.person, "a typed reply could not be handled");
                    "Sorry, that could not be recorded just now; please type it again.".to_owned()
                }
            }
        };
        output.write_all(reply.as_bytes()).await?;
        output.write_all(b"\n").await?;
        output.flush().await?;
    }
}

/// Reads and drops input up to the next line break (or the end).
async fn skip_rest_of_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                reader.consume(n);
            }
        }
    }
}

/// Whether typed lines can be read: standard input is a terminal, and this
/// process is in that terminal's foreground. A daemon started in the
/// background (`nudged run &`) would be stopped by the terminal (SIGTTIN)
/// at its first read, so it reads nothing instead.
pub fn stdin_is_interactive() -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return false;
    }
    #[cfg(unix)]
    {
        rustix::termios::tcgetpgrp(&stdin)
            .is_ok_and(|foreground| foreground == rustix::process::getpgrp())
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Standard input as an async reader. A plain thread does the blocking
/// reads and hands the bytes over a pipe: tokio's own stdin reads on the
/// runtime's blocking pool, and that would hold the daemon's shutdown until
/// someone pressed Enter. The thread ends at end of input, or when the
/// reader is dropped; at exit the process ends it with everything else.
pub fn stdin_reader() -> impl AsyncBufRead + Unpin {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut chunk = [0u8; 4096];
            loop {
                let n = match stdin.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if runtime.block_on(writer.write_all(&chunk[..n])).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        // The writer went with the closure: the reader sees end of input.
        tracing::error!(error = %e, "cannot read the console; typed replies are off");
    }
    tokio::io::BufReader::new(reader)
}
