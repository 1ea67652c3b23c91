//! Answers coming in: a click on a prompt's button, and a text reply (a DM
//! to the bot, a reply in a prompt's thread, a line typed on the console).
//! What each brings is committed in one transaction with its redraw, its
//! reply and its id ([`Store::record_inbound`]), before the driver
//! acknowledges; a replay of the same id changes nothing.

use chrono::{DateTime, Utc};

use crate::chat::Outgoing;
use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, PersonId, QuestionId};
use crate::outbox::{self, Queued};
use crate::render::{self, ButtonValue};
use crate::reply;
use crate::store::{
    AnswerSource, CheckinRow, InboundOutcome, InboundWrite, NewOutbox, PersonRow, Store,
    StoreError, StoreResult, action_seen_key,
};

use super::{Ctx, Result, current_week};

/// What nudged replies to text from someone it does not know.
pub const NOT_ENROLLED: &str = "You're not enrolled in nudged yet: `/pulse join` to start.";

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

/// Whether `outcome` stored something new.
fn changed(outcome: InboundOutcome) -> bool {
    matches!(outcome, InboundOutcome::Recorded { changed, .. } if changed > 0)
}

// ---- clicks -----------------------------------------------------------------

/// A click on a prompt's answer button, as the platform reports it.
#[derive(Debug, Clone, Copy)]
pub struct Click<'a> {
    pub clicker: &'a PersonId,
    /// The clicked element's `action_id`.
    pub action_id: &'a str,
    /// Its value, as nudged rendered it ([`ButtonValue`]).
    pub value: &'a str,
    /// The click's own id (Slack's `action_ts`), so a replay counts once.
    pub action_ts: Option<&'a str>,
    /// Where the clicked prompt is posted (channel, message ts), to redraw
    /// it with the answer.
    pub posted: Option<(&'a str, &'a str)>,
}

/// Why a click was acknowledged but not recorded; the `reason` label of
/// `nudged_clicks_ignored_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredClick {
    /// A value nudged did not render (another app's button, or no value).
    UnknownAction,
    /// A prompt value that does not parse.
    MalformedValue,
    /// Someone clicked another person's prompt.
    NotOwnPrompt,
    /// The `action_id` is not the one rendered for the value.
    ActionMismatch,
    /// The question is not in the catalogue.
    UnknownQuestion,
    /// No schedule of that name.
    UnknownSchedule,
    /// The schedule does not ask that question.
    NotInSchedule,
    /// The question has no such option.
    UnknownOption,
    /// Not the current or previous week of the person.
    WrongWeek,
    /// Someone nudged does not know (never enrolled, or forgotten).
    UnknownPerson,
}

impl IgnoredClick {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownAction => "unknown_action",
            Self::MalformedValue => "malformed_value",
            Self::NotOwnPrompt => "not_own_prompt",
            Self::ActionMismatch => "action_mismatch",
            Self::UnknownQuestion => "unknown_question",
            Self::UnknownSchedule => "unknown_schedule",
            Self::NotInSchedule => "not_in_schedule",
            Self::UnknownOption => "unknown_option",
            Self::WrongWeek => "wrong_week",
            Self::UnknownPerson => "unknown_person",
        }
    }
}

/// What became of a click on a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicked {
    /// A new or changed answer, stored with the prompt's redraw.
    Recorded,
    /// The same answer was stored already.
    Unchanged,
    /// The same click, delivered again: nothing changed.
    Duplicate,
    /// Not recorded, for this reason.
    Ignored(IgnoredClick),
}

/// Checks a prompt click against what nudged renders
/// ([`render::prompt`]): the value parses, is the clicker's own, its
/// `action_id` is the one rendered with it, and it names a question of
/// the catalogue that the named schedule asks, and one of that question's
/// options. The week is checked once the person is read
/// ([`check_click_week`]).
fn check_click(settings: &Settings, click: &Click<'_>) -> Result<ButtonValue, IgnoredClick> {
    let value = ButtonValue::parse(click.value).ok_or(IgnoredClick::MalformedValue)?;
    if &value.person != click.clicker {
        return Err(IgnoredClick::NotOwnPrompt);
    }
    if click.action_id != value.action_id() {
        return Err(IgnoredClick::ActionMismatch);
    }
    let question = settings
        .catalogue
        .get(value.question.as_str())
        .ok_or(IgnoredClick::UnknownQuestion)?;
    let schedule = settings
        .schedules
        .list
        .iter()
        .find(|s| s.name == value.schedule)
        .ok_or(IgnoredClick::UnknownSchedule)?;
    if !schedule.questions.contains(&value.question) {
        return Err(IgnoredClick::NotInSchedule);
    }
    question
        .option(value.option.as_str())
        .ok_or(IgnoredClick::UnknownOption)?;
    Ok(value)
}

/// A prompt asks about the week it was posted in, and may be answered
/// through the next: the clicked week must be the person's current or
/// previous ISO week, in their zone.
fn check_click_week(
    week: IsoWeek,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> Result<(), IgnoredClick> {
    let current = current_week(Some(person), now);
    if week == current || week == current.plus(-1) {
        Ok(())
    } else {
        Err(IgnoredClick::WrongWeek)
    }
}

/// How far any zone's clock is from UTC, at most, with a margin: today's
/// offsets run from −12 h to +14 h. A wider bound only reads the clicker's
/// zone more often.
const MAX_ZONE_OFFSET_HOURS: i64 = 15;

/// Whether `week` is the current or previous ISO week at `now` in every
/// zone, so that [`check_click_week`] would accept it whoever clicked: it
/// is when the week is the same at both ends of the zones' offsets. Only
/// near the turn of a week (a day and a bit around Monday 00:00 UTC) do
/// zones differ, and the clicker's own zone must be read.
fn week_open_everywhere(week: IsoWeek, now: DateTime<Utc>) -> bool {
    let reach = chrono::TimeDelta::hours(MAX_ZONE_OFFSET_HOURS);
    let (Some(earliest), Some(latest)) =
        (now.checked_sub_signed(reach), now.checked_add_signed(reach))
    else {
        return false;
    };
    let current = IsoWeek::of(latest.date_naive());
    IsoWeek::of(earliest.date_naive()) == current && (week == current || week == current.plus(-1))
}

/// Records a click on a prompt's answer button: checked, then the answer,
/// the prompt's redraw and the click's id committed together; the person
/// is re-assessed after a change. The clicker's row is read only when
/// their zone decides whether the week may still be answered
/// ([`week_open_everywhere`]).
#[tracing::instrument(skip_all, fields(person = %click.clicker))]
pub async fn click(ctx: Ctx<'_>, click: Click<'_>) -> Result<Clicked> {
    let value = match check_click(ctx.settings, &click) {
        Ok(value) => value,
        Err(why) => return Ok(Clicked::Ignored(why)),
    };
    // Most of the week, the clicked week is open in every zone, and the
    // clicker's zone need not be read: someone nudged does not know is
    // then refused by the write itself (the answer names no stored person).
    if !week_open_everywhere(value.week, ctx.now) {
        let Some(person) = ctx.store.person(click.clicker).await? else {
            return Ok(Clicked::Ignored(IgnoredClick::UnknownPerson));
        };
        if let Err(why) = check_click_week(value.week, &person, ctx.now) {
            return Ok(Clicked::Ignored(why));
        }
    }
    let answer = Answer {
        person: value.person,
        week: value.week,
        question: value.question,
        option: value.option,
    };
    let on_change = click.posted.map(|(channel, ts)| {
        outbox::refresh_prompt(
            channel,
            ts,
            &answer.person,
            answer.week,
            &value.schedule,
            ctx.now,
        )
    });
    let write = InboundWrite {
        seen_key: click.action_ts.map(|ts| action_seen_key(click.clicker, ts)),
        on_change,
        ..InboundWrite::answers(vec![answer], AnswerSource::Button)
    };
    let outcome = match record_inbound(ctx.store, &write, "action", ctx.now).await {
        Ok(outcome) => outcome,
        // Forgotten between the read and the write.
        Err(StoreError::NotFound(_)) => return Ok(Clicked::Ignored(IgnoredClick::UnknownPerson)),
        Err(e) => return Err(e.into()),
    };
    Ok(match outcome {
        InboundOutcome::Duplicate => Clicked::Duplicate,
        outcome if changed(outcome) => {
            ctx.assessor.request(click.clicker);
            Clicked::Recorded
        }
        _ => {
            metrics::counter!("nudged_duplicates_dropped_total", "kind" => "click").increment(1);
            Clicked::Unchanged
        }
    })
}

// ---- text replies -------------------------------------------------------------

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
    match reply::parse_answers(text, &settings.catalogue, questions) {
        Ok(parsed) => {
            let understood = reply::understood(&parsed, &settings.catalogue);
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
            reply: format!("{e}\n{}", reply::help_text(&settings.catalogue, questions)),
            understood: false,
        },
    }
}

/// Where a text reply was written in chat, so the answer to it is posted
/// there (in its thread) and a thread reply finds its prompt.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub channel: &'a str,
    /// The message's own timestamp.
    pub ts: &'a str,
    /// The thread it is in, if any: a prompt's thread answers that prompt.
    pub thread_ts: Option<&'a str>,
    /// Written in a DM with the bot (else in a channel).
    pub in_dm: bool,
}

/// A text reply to nudged.
#[derive(Debug, Clone)]
pub struct TextReply<'a> {
    pub person: &'a PersonId,
    pub text: &'a str,
    /// Where it was written; `None` on the console, whose reply is
    /// printed by the driver rather than posted.
    pub written: Option<Written<'a>>,
    /// The message's own id (Slack's event id), so a retry counts once.
    pub seen_key: Option<String>,
    pub source: AnswerSource,
}

/// What became of a text reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replied {
    /// Read and answered: `reply` (plain text) is what the person is told,
    /// posted in the thread when the reply was written in chat.
    Answered {
        reply: String,
        /// Whether the text read as answers.
        understood: bool,
        /// Whether an answer was new or changed.
        recorded: bool,
    },
    /// From someone nudged does not know: told how to join (posted in the
    /// thread when written in chat), nothing recorded.
    NotEnrolled,
    /// The same message, delivered again: nothing changed.
    Duplicate,
    /// Not for nudged, for this reason (a thread that is no prompt of
    /// theirs, a message in a channel).
    NotForNudged(&'static str),
}

/// Reads a text reply as answers — to the prompt whose thread it is in,
/// else to this week's default check-in — and commits the answers, the
/// prompt's redraw, the reply to post and the message's id together. The
/// person is re-assessed after a change.
#[tracing::instrument(skip_all, fields(person = %reply.person))]
pub async fn text_reply(ctx: Ctx<'_>, reply: TextReply<'_>) -> Result<Replied> {
    let store = ctx.store;
    let written = reply.written;
    let checkin = match written.and_then(|w| w.thread_ts.map(|t| (w.channel, t))) {
        Some((channel, thread)) => store.checkin_by_message(channel, thread).await?,
        None => None,
    };
    if checkin.is_none() && written.is_some_and(|w| !w.in_dm) {
        // A thread that is not one of our prompts, in a channel.
        return Ok(Replied::NotForNudged("not_for_nudged"));
    }
    if checkin.as_ref().is_some_and(|c| &c.person != reply.person) {
        // Only the prompt's own person answers it.
        return Ok(Replied::NotForNudged("not_own_prompt"));
    }
    let Some(row) = store.person(reply.person).await? else {
        let write = InboundWrite {
            seen_key: reply.seen_key,
            always: written
                .map(|w| reply_row(w, None, NOT_ENROLLED, ctx.now))
                .into_iter()
                .collect(),
            ..InboundWrite::answers(Vec::new(), reply.source)
        };
        return Ok(
            match record_inbound(store, &write, "event", ctx.now).await? {
                InboundOutcome::Duplicate => Replied::Duplicate,
                InboundOutcome::Recorded { .. } => Replied::NotEnrolled,
            },
        );
    };
    let week = checkin
        .as_ref()
        .map(|c| c.week)
        .unwrap_or_else(|| current_week(Some(&row), ctx.now));
    let questions = ctx
        .settings
        .questions_for(checkin.as_ref().map(|c| c.schedule.as_str()));
    let read = read_reply(ctx.settings, reply.person, week, &questions, reply.text);
    let write = InboundWrite {
        seen_key: reply.seen_key,
        answers: read.answers,
        source: reply.source,
        on_change: checkin
            .as_ref()
            .and_then(|c| redraw_row(c, reply.person, ctx.now)),
        always: written
            .map(|w| reply_row(w, Some(reply.person), &read.reply, ctx.now))
            .into_iter()
            .collect(),
    };
    let outcome = record_inbound(store, &write, "event", ctx.now).await?;
    if outcome == InboundOutcome::Duplicate {
        return Ok(Replied::Duplicate);
    }
    let recorded = changed(outcome);
    if recorded {
        ctx.assessor.request(reply.person);
    }
    Ok(Replied::Answered {
        reply: read.reply,
        understood: read.understood,
        recorded,
    })
}

/// The reply to a message written at `written`, in its thread (or
/// starting one): once per message, whatever happens to the event's id.
fn reply_row(
    written: Written<'_>,
    person: Option<&PersonId>,
    text: &str,
    now: DateTime<Utc>,
) -> NewOutbox {
    let reply = Outgoing::Post {
        channel: written.channel.to_owned(),
        thread_ts: Some(written.thread_ts.unwrap_or(written.ts).to_owned()),
        text: render::escape(text),
        blocks: Vec::new(),
    };
    let key = format!("reply:{}:{}", written.channel, written.ts);
    outbox::row(&Queued::from(reply), person, Some(key), now)
}

/// The redraw of a posted prompt, to show what is answered now; `None`
/// while the prompt's place is not known yet.
fn redraw_row(checkin: &CheckinRow, person: &PersonId, now: DateTime<Utc>) -> Option<NewOutbox> {
    let (Some(channel), Some(ts)) = (&checkin.channel, &checkin.message_ts) else {
        return None;
    };
    Some(outbox::refresh_prompt(
        channel,
        ts,
        person,
        checkin.week,
        &checkin.schedule,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use chrono_tz::{TZ_VARIANTS, Tz};

    use super::*;
    use crate::domain::PersonId;

    fn person_in(tz: Tz) -> PersonRow {
        PersonRow {
            id: PersonId::parse("U1").unwrap(),
            name: None,
            tz: Some(tz),
            enrolled: true,
            paused_until: None,
            nudges_off_since: None,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    /// Whenever a week is taken as open without reading the clicker's
    /// zone, it is open in every zone there is: the shortcut never accepts
    /// what the zone's own check would refuse. Hour by hour over a fortnight
    /// around a new year (a week-53 year turning, where the ISO year moves).
    #[test]
    fn a_week_open_everywhere_is_open_in_every_zone() {
        let start = Utc.with_ymd_and_hms(2026, 12, 24, 0, 0, 0).unwrap();
        let zones: Vec<PersonRow> = TZ_VARIANTS.iter().map(|tz| person_in(*tz)).collect();
        let mut skipped_reads = 0;
        for hour in 0..24 * 14 {
            let now: DateTime<Utc> = start + TimeDelta::hours(hour);
            let utc_week = IsoWeek::of(now.date_naive());
            for week in [
                utc_week.plus(-2),
                utc_week.plus(-1),
                utc_week,
                utc_week.plus(1),
            ] {
                if !week_open_everywhere(week, now) {
                    continue;
                }
                skipped_reads += 1;
                for person in &zones {
                    assert_eq!(
                        check_click_week(week, person, now),
                        Ok(()),
                        "{week} at {now} in {:?}",
                        person.tz
                    );
                }
            }
        }
        // Most of the time the zone is not needed.
        assert!(skipped_reads > 2 * 24 * 14 * 3 / 4, "{skipped_reads}");
    }
}
