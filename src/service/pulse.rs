//! `/pulse`: the subcommands a person uses on themselves, shared by the
//! slash command and the console, so both behave the same.

use crate::domain::PersonId;
use crate::render;
use crate::reply::{self, PulseCommand};
use crate::store::{AnswerSource, NewPerson, PersonRow};

use super::answers::{self, Replied, TextReply};
use super::checkin::{self, AskedNow};
use super::{Ctx, Result, history, readiness};

/// Carries out `command` for `person` and returns the reply to show them,
/// in Slack mrkdwn (escaped: it may echo their own words). Recorded
/// answers and changed settings have the person re-assessed, as every
/// other way of answering does.
#[tracing::instrument(skip_all, fields(%person))]
pub async fn run(ctx: Ctx<'_>, person: &PersonId, command: PulseCommand) -> Result<String> {
    if let PulseCommand::Trend = command
        && let Some(row) = ctx.store.person(person).await?
    {
        // Already mrkdwn, with its own escaping.
        return Ok(
            readiness::trend_message(ctx.settings, ctx.store, &row, ctx.now)
                .await?
                .to_mrkdwn(),
        );
    }
    let text = plain(ctx, person, command).await?;
    Ok(render::escape(&text))
}

/// [`run`] as plain, unescaped text.
async fn plain(ctx: Ctx<'_>, person: &PersonId, command: PulseCommand) -> Result<String> {
    let store = ctx.store;
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
                    ctx.now,
                )
                .await?;
            store.set_enrolled(person, true).await?;
            "You're in: nudged will ask a few one-click questions each week.".to_owned()
        }
        command => match store.person(person).await? {
            Some(row) => enrolled(ctx, &row, command).await?,
            None => answers::NOT_ENROLLED.to_owned(),
        },
    })
}

/// The `/pulse` subcommands for someone nudged knows.
async fn enrolled(ctx: Ctx<'_>, row: &PersonRow, command: PulseCommand) -> Result<String> {
    let (store, now, person) = (ctx.store, ctx.now, &row.id);
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
        PulseCommand::Now => match checkin::ask_now(ctx.settings, store, row, now).await? {
            AskedNow::Queued(week) => {
                format!("On its way: your check-in for {week} arrives in your DM.")
            }
            AskedNow::NoCheckinSchedule => {
                metrics::counter!("nudged_commands_declined_total", "reason" => "no_checkin_schedule")
                    .increment(1);
                tracing::warn!(%person, "/pulse now: no checkin schedule is configured");
                "There is no check-in to send: nudged has no `checkin` schedule. \
                 Ask whoever runs nudged to add one."
                    .to_owned()
            }
        },
        // Answered by [`run`] itself, in mrkdwn.
        PulseCommand::Trend => {
            readiness::trend_message(ctx.settings, store, row, now)
                .await?
                .text
        }
        PulseCommand::Export => {
            let (count, csv) = history::export_csv(ctx.settings, store, person).await?;
            format!("Your answers ({count}):\n```{csv}```")
        }
        PulseCommand::Nudges { on } => {
            store.set_nudges_off(person, (!on).then_some(now)).await?;
            // A nudge due and only held back by the setting goes out now.
            ctx.assessor.request(person);
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
            let reply = TextReply {
                person,
                text: &text,
                written: None,
                seen_key: None,
                source: AnswerSource::Command,
            };
            match answers::text_reply(ctx, reply).await? {
                Replied::Answered { reply, .. } => reply,
                // Not reachable without a place or an id; said plainly.
                Replied::NotEnrolled => answers::NOT_ENROLLED.to_owned(),
                Replied::Duplicate | Replied::NotForNudged(_) => {
                    "That reply was already recorded.".to_owned()
                }
            }
        }
    })
}
