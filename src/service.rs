//! Use cases shared by the HTTP handlers, the console and the CLI: recording
//! answers, asking now, and the person-facing side of `/pulse`. Drivers call
//! these; these call the store, the pure modules and the outbox.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use crate::model::{NudgeAnswer, SentNudge};
use crate::outbox::{self, Outgoing};
use crate::readiness::{self, Assessor};
use crate::render;
use crate::reply::{self, PulseCommand};
use crate::store::{
    AnswerSource, CheckinRow, InboundOutcome, InboundWrite, NewPerson, PersonRow, Store,
    StoreResult,
};

/// The ISO week `now` falls in, in the person's zone (UTC if unknown).
pub fn current_week(person: Option<&PersonRow>, now: DateTime<Utc>) -> IsoWeek {
    let tz = person.and_then(|p| p.tz).unwrap_or(Tz::UTC);
    IsoWeek::of(now.with_timezone(&tz).date_naive())
}

/// Stores `write` ([`Store::record_inbound`]): the answers, the rows to
/// queue and the seen key of one inbound event or action, committed
/// together. Counts recorded answers by source and dropped duplicates by
/// `kind` (`event`, `action`, …).
pub async fn record_inbound(
    store: &dyn Store,
    write: &InboundWrite,
    kind: &'static str,
    now: DateTime<Utc>,
) -> StoreResult<InboundOutcome> {
    let outcome = store.record_inbound(write, now).await?;
    match outcome {
        InboundOutcome::Duplicate => {
            metrics::counter!("nudged_duplicates_dropped_total", "kind" => kind).increment(1);
        }
        InboundOutcome::Recorded { changed, .. } => {
            metrics::counter!("nudged_answers_recorded_total", "source" => write.source.as_str())
                .increment(changed as u64);
        }
    }
    Ok(outcome)
}

/// A posted prompt: where it is (channel and message timestamp) and the
/// schedule whose questions it asks.
#[derive(Debug, Clone, Copy)]
pub struct PostedPrompt<'a> {
    pub channel: &'a str,
    pub ts: &'a str,
    pub schedule: &'a str,
}

/// Stores one clicked answer and, if it changed anything and the prompt it
/// was clicked on is known, queues that prompt's redraw in the same
/// transaction, so the answer is never committed without its redraw. With
/// `seen_key` (the click's own id), a replay of the same click is a
/// [`InboundOutcome::Duplicate`] and changes nothing.
pub async fn record_click(
    store: &dyn Store,
    answer: &Answer,
    prompt: Option<PostedPrompt<'_>>,
    seen_key: Option<String>,
    now: DateTime<Utc>,
) -> StoreResult<InboundOutcome> {
    let on_change = prompt.map(|p| {
        outbox::refresh_prompt(
            p.channel,
            p.ts,
            &answer.person,
            answer.week,
            p.schedule,
            now,
        )
    });
    let write = InboundWrite {
        seen_key,
        on_change,
        ..InboundWrite::answers(vec![answer.clone()], AnswerSource::Button)
    };
    let outcome = record_inbound(store, &write, "action", now).await?;
    if outcome
        == (InboundOutcome::Recorded {
            changed: 0,
            unchanged: 1,
        })
    {
        metrics::counter!("nudged_duplicates_dropped_total", "kind" => "click").increment(1);
    }
    Ok(outcome)
}

/// A text reply read against a prompt's questions: the answers it gives
/// (none if it could not be read) and what to tell the person.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadReply {
    pub answers: Vec<Answer>,
    /// Plain text, unescaped: it may echo the person's own words.
    pub reply: String,
    /// Whether the text could be read as answers (even if it skipped all).
    pub understood: bool,
}

/// Reads `text` as answers to `questions` for `person`'s `week`. Text it
/// cannot read gives no answers; the reply then says why and how to write
/// it. Pure: nothing is stored.
pub fn read_reply(
    settings: &Settings,
    person: &PersonId,
    week: IsoWeek,
    questions: &[QuestionId],
    text: &str,
) -> ReadReply {
    match crate::reply::parse_answers(text, &settings.catalogue, questions) {
        Ok(parsed) => {
            let understood = crate::reply::understood(&parsed, &settings.catalogue);
            ReadReply {
                answers: parsed
                    .answers
                    .into_iter()
                    .map(|(question, option)| Answer {
                        person: person.clone(),
                        week,
                        question,
                        option,
                    })
                    .collect(),
                reply: format!("{understood} ({week})"),
                understood: true,
            }
        }
        Err(e) => ReadReply {
            answers: Vec::new(),
            reply: format!(
                "{e}\n{}",
                crate::reply::help_text(&settings.catalogue, questions)
            ),
            understood: false,
        },
    }
}

/// Reads `text` as answers to `questions` for `person`'s `week`, stores
/// what it understood in one transaction, and returns the reply to show
/// them and whether anything was recorded. Text it cannot read records
/// nothing; the reply then says why and how to write it.
#[allow(clippy::too_many_arguments)]
pub async fn answer_text(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
    questions: &[QuestionId],
    text: &str,
    source: AnswerSource,
    now: DateTime<Utc>,
) -> StoreResult<(String, bool)> {
    let read = read_reply(settings, person, week, questions, text);
    if read.understood {
        record_inbound(
            store,
            &InboundWrite::answers(read.answers, source),
            "text",
            now,
        )
        .await?;
    }
    Ok((read.reply, read.understood))
}

/// A person's whole history, oldest week first.
pub async fn person_answers(store: &dyn Store, person: &PersonId) -> StoreResult<Vec<Answer>> {
    Ok(store
        .answers(Some(person))
        .await?
        .into_iter()
        .map(|row| row.answer)
        .collect())
}

/// What the readiness model reads about a person: their answers, oldest
/// week first, and their nudges with the answers to them.
pub async fn person_history(
    store: &dyn Store,
    person: &PersonId,
) -> StoreResult<(Vec<Answer>, Vec<SentNudge>)> {
    let answers = person_answers(store, person).await?;
    let nudges = store
        .nudges(person)
        .await?
        .into_iter()
        .map(|n| SentNudge {
            sent_on: n.sent_at.date_naive(),
            answer: n
                .response
                .zip(n.answered_at)
                .map(|(response, at)| NudgeAnswer {
                    response,
                    on: at.date_naive(),
                }),
        })
        .collect();
    Ok((answers, nudges))
}

/// The person's answers for one week, by question.
pub async fn week_answers(
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
) -> StoreResult<BTreeMap<QuestionId, OptionKey>> {
    Ok(store
        .week_answers(person, week)
        .await?
        .into_iter()
        .collect())
}

/// `/pulse now` or `run --ask-now` with no `checkin` schedule to ask.
#[derive(Debug, thiserror::Error)]
#[error("no checkin schedule is configured")]
pub struct NoCheckinSchedule;

/// Asks `person` the default check-in now (`/pulse now`, `run --ask-now`):
/// records the check-in and puts the prompt in the outbox, addressed to the
/// person's DM. Returns the week asked about; [`NoCheckinSchedule`] if
/// there is no check-in to ask.
pub async fn ask_now(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> anyhow::Result<IsoWeek> {
    let schedule = settings
        .default_checkin()
        .map(|s| s.name.clone())
        .ok_or(NoCheckinSchedule)?;
    let week = current_week(Some(person), now);
    let checkin = store
        .record_checkin(&CheckinRow {
            id: 0,
            person: person.id.clone(),
            schedule: schedule.clone(),
            period: now,
            week,
            channel: None,
            message_ts: None,
            created_at: now,
        })
        .await?;
    let message = outbox::redraw::prompt(settings, store, &person.id, week, &schedule).await?;
    let mut post = Outgoing::post(person.id.as_str(), None, message);
    if let Outgoing::Post { checkin: link, .. } = &mut post {
        *link = checkin;
    }
    outbox::enqueue(store, &post, Some(&person.id), None, now).await?;
    Ok(week)
}

/// Carries out a `/pulse` subcommand for `person` and returns the reply to
/// show them, in Slack mrkdwn (escaped: it may echo their own words).
/// Shared by the slash command and the console (which converts it to plain
/// text), so both behave the same. Recorded answers are handed to
/// `assessor`, as every other way of answering does.
pub async fn pulse(
    settings: &Settings,
    store: &dyn Store,
    assessor: &Assessor,
    person: &PersonId,
    command: PulseCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    if let PulseCommand::Trend = command
        && let Some(row) = store.person(person).await?
    {
        // Already mrkdwn, with its own escaping.
        return Ok(readiness::trend_message(settings, store, &row, now)
            .await?
            .to_mrkdwn());
    }
    let text = pulse_text(settings, store, assessor, person, command, now).await?;
    Ok(render::escape(&text))
}

/// [`pulse`] as plain, unescaped text.
async fn pulse_text(
    settings: &Settings,
    store: &dyn Store,
    assessor: &Assessor,
    person: &PersonId,
    command: PulseCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    Ok(match command {
        PulseCommand::Help => reply::command_help().to_owned(),
        PulseCommand::Join => {
            // Someone who asked to be forgotten comes back by asking.
            if store.clear_opt_out(person).await? {
                tracing::info!(%person, "opt-out lifted by /pulse join");
            }
            store
                .upsert_person(
                    &NewPerson {
                        id: person.clone(),
                        name: None,
                        tz: None,
                        enrolled: true,
                    },
                    now,
                )
                .await?;
            store.set_enrolled(person, true).await?;
            "You're in: nudged will ask a few one-click questions each week.".to_owned()
        }
        command => match store.person(person).await? {
            Some(row) => pulse_enrolled(settings, store, assessor, &row, command, now).await?,
            None => "You're not enrolled in nudged yet: `/pulse join` to start.".to_owned(),
        },
    })
}

/// The `/pulse` subcommands for someone nudged knows.
async fn pulse_enrolled(
    settings: &Settings,
    store: &dyn Store,
    assessor: &Assessor,
    row: &PersonRow,
    command: PulseCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let person = &row.id;
    Ok(match command {
        PulseCommand::Help | PulseCommand::Join => reply::command_help().to_owned(),
        PulseCommand::Leave => {
            store.set_enrolled(person, false).await?;
            "You've left: no more check-ins. Your history stays until `/pulse forget`.".to_owned()
        }
        PulseCommand::Pause { days } => {
            let until = now + chrono::Duration::days(i64::from(days));
            store.set_paused_until(person, Some(until)).await?;
            format!(
                "Paused: no check-ins until {}. `/pulse resume` to come back sooner.",
                until.format("%Y-%m-%d")
            )
        }
        PulseCommand::Resume => {
            store.set_paused_until(person, None).await?;
            "Resumed: check-ins are back on.".to_owned()
        }
        PulseCommand::Now => match ask_now(settings, store, row, now).await {
            Ok(week) => format!("On its way: your check-in for {week} arrives in your DM."),
            Err(e) if e.is::<NoCheckinSchedule>() => {
                metrics::counter!("nudged_commands_declined_total", "reason" => "no_checkin_schedule")
                    .increment(1);
                tracing::warn!(%person, "/pulse now: no checkin schedule is configured");
                "There is no check-in to send: nudged has no `checkin` schedule. \
                 Ask whoever runs nudged to add one."
                    .to_owned()
            }
            Err(e) => return Err(e),
        },
        // Answered by [`pulse`] itself, in mrkdwn.
        PulseCommand::Trend => {
            readiness::trend_message(settings, store, row, now)
                .await?
                .text
        }
        PulseCommand::Export => {
            let mut answers = person_answers(store, person).await?;
            crate::history::sort_for_export(&mut answers, &settings.catalogue);
            let mut csv = Vec::new();
            crate::history::write_csv(&mut csv, &answers)?;
            format!(
                "Your answers ({}):\n```{}```",
                answers.len(),
                String::from_utf8_lossy(&csv)
            )
        }
        PulseCommand::Nudges { on } => {
            store.set_nudges_off(person, (!on).then_some(now)).await?;
            // A nudge due and only held back by the setting goes out now.
            assessor.request(person);
            if on {
                "Nudges are on: once your answers show sustained ownership, the readiness \
                 nudge comes, again if you had one. `/pulse nudge off` turns it off."
                    .to_owned()
            } else {
                "Nudges are off: no readiness nudge until `/pulse nudge on`. Check-ins and \
                 trend posts go on as before."
                    .to_owned()
            }
        }
        PulseCommand::Forget { confirmed: false } => {
            "This deletes everything nudged stores about you: answers, trend and history. \
             Only your id is kept, so nudged does not enrol you again. \
             Type `/pulse forget confirm` to go ahead."
                .to_owned()
        }
        PulseCommand::Forget { confirmed: true } => {
            let report = store.forget(person).await?;
            format!(
                "Done: {} rows about you were deleted. nudged keeps only your id, so it does \
                 not enrol you again; `/pulse join` if you ever want to come back.",
                report.total()
            )
        }
        PulseCommand::Answer(text) => {
            let week = current_week(Some(row), now);
            let questions = settings.questions_for(None);
            let (reply, recorded) = answer_text(
                settings,
                store,
                person,
                week,
                &questions,
                &text,
                AnswerSource::Command,
                now,
            )
            .await?;
            if recorded {
                assessor.request(person);
            }
            reply
        }
    })
}
