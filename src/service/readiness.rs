//! Re-assessing a person and acting on the verdict (ARCHITECTURE.md, "The readiness model", "The nudge"): the
//! weekly trend post, and the readiness nudge when the state becomes
//! `sustained`.
//!
//! [`reassess`] is the use case; it runs on each `trend-post` run and, via
//! the [`Assessor`] worker, after answers are recorded. The worker runs
//! after the HTTP acknowledgement, so a click never waits for the model,
//! and it coalesces bursts: it lets requests gather for [`SETTLE`], then
//! re-assesses each person asked for once, so ten clicks by one person in
//! a second are one re-assessment. A re-assessment the worker could not take (its queue
//! full, the process stopping) is not lost for long: the next `trend-post`
//! run re-assesses everyone.
//!
//! Both messages go through the outbox with a dedupe key, enqueued before
//! the nudge is recorded: a crash in between re-enqueues the same key
//! (nothing is sent twice), never a recorded nudge that was not sent.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chat::Outgoing;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, PersonId};
use crate::health::Heartbeat;
use crate::model::{self, Assessment, History, SentNudge, State};
use crate::outbox::{self, Queued};
use crate::render;
use crate::store::{AssessmentRow, InboundWrite, NudgeRow, PersonRow, Store, StoreResult};
use crate::supervisor::Supervisor;

use super::{Error, Result, answers, history};

/// What a re-assessment found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassessed {
    pub person: PersonId,
    pub state: State,
    /// Whether this call put the trend post in the outbox (false when it
    /// was not asked for, an earlier call already had, or the person
    /// answered nothing in the window).
    pub trend_posted: bool,
    /// Whether a readiness nudge was put in the outbox by this call.
    pub nudged: bool,
}

/// The day it is where the person lives (their zone, else UTC): the model
/// counts weeks in the person's calendar.
pub fn today(person: &PersonRow, now: DateTime<Utc>) -> NaiveDate {
    let tz = person.tz.unwrap_or(Tz::UTC);
    now.with_timezone(&tz).date_naive()
}

/// `person`'s assessment on `today`, from their stored history and their
/// nudges setting. Reads only.
pub async fn assess_on<'s>(
    settings: &'s Settings,
    store: &dyn Store,
    person: &PersonRow,
    today: NaiveDate,
) -> StoreResult<Assessment<'s>> {
    let (answers, nudges) = history::person_history(store, &person.id).await?;
    Ok(assess(settings, person, &answers, &nudges, today))
}

/// `person`'s assessment on `today` from the history given.
fn assess<'s>(
    settings: &'s Settings,
    person: &PersonRow,
    answers: &[Answer],
    nudges: &[SentNudge],
    today: NaiveDate,
) -> Assessment<'s> {
    model::assess(
        &History {
            answers,
            nudges,
            nudges_off: person.nudges_off_since.is_some(),
        },
        &settings.catalogue,
        &settings.model,
        today,
    )
}

/// Assesses `person` as of `now`, saves the assessment, posts the trend
/// when `trend_post` carries the post's dedupe key, and enqueues the nudge
/// when the state is `sustained`.
#[tracing::instrument(skip_all, fields(person = %person.id))]
pub async fn reassess(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
    trend_post: Option<&str>,
) -> Result<Reassessed> {
    let today = today(person, now);
    let week = IsoWeek::of(today);
    // Read once: the model and the trend post's chart both draw on it.
    let (answers, nudges) = history::person_history(store, &person.id).await?;
    let assessment = assess(settings, person, &answers, &nudges, today);
    store
        .save_assessment(&AssessmentRow {
            person: person.id.clone(),
            week,
            state: assessment.state.as_str().to_owned(),
            ewma: assessment.ewma,
            detail: serde_json::to_string(&assessment).map_err(Error::encode("an assessment"))?,
            assessed_at: now,
        })
        .await?;

    let mut trend_posted = false;
    // Nothing answered in the whole window: a post would only say so, every
    // week, to someone who is not taking part. Skipped rather than spam.
    let anything_to_show = assessment.weeks.iter().any(|w| !w.answers.is_empty());
    if let Some(key) = trend_post.filter(|_| anything_to_show) {
        let message = render::trend_post(&assessment, &settings.catalogue, week);
        // The chart's data rides in the outbox row; it is drawn when sent.
        let post = Queued::from(Outgoing::TrendPost {
            channel: person.id.as_str().to_owned(),
            text: message.text,
            blocks: message.blocks,
            chart: model::chart(&answers, &settings.catalogue, &settings.model, today),
        });
        trend_posted = outbox::enqueue(store, &post, Some(&person.id), Some(key.to_owned()), now)
            .await?
            .is_some();
    }

    let nudged = assessment.state == State::Sustained
        && send_nudge(settings, store, person, &assessment, week, now).await?;
    if nudged {
        tracing::info!(person = %person.id, %week, "readiness nudge queued");
        metrics::counter!("nudged_nudges_total").increment(1);
    }
    Ok(Reassessed {
        person: person.id.clone(),
        state: assessment.state,
        trend_posted,
        nudged,
    })
}

/// `person`'s trend as of `now`, rendered as the weekly post shows it
/// (`/pulse trend`, the App Home). Reads only; saves nothing.
pub async fn trend_message(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> StoreResult<render::Message> {
    let today = today(person, now);
    let assessment = assess_on(settings, store, person, today).await?;
    Ok(render::trend_post(
        &assessment,
        &settings.catalogue,
        IsoWeek::of(today),
    ))
}

/// What App Home `person` sees: their trend, or how to join. Queued with
/// the event's id `seen_key`, together, so a repeat publishes once.
#[tracing::instrument(skip_all, fields(%person))]
pub async fn publish_home(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    seen_key: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let blocks = match store.person(person).await? {
        Some(row) => trend_message(settings, store, &row, now).await?.blocks,
        None => vec![serde_json::json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*nudged*\nYou're not enrolled yet: `/pulse join` to start.",
            },
        })],
    };
    let publish = Queued::from(Outgoing::PublishHome {
        user: person.to_string(),
        view: serde_json::json!({ "type": "home", "blocks": blocks }),
    });
    let write = InboundWrite {
        seen_key,
        always: vec![outbox::row(&publish, Some(person), None, now)],
        ..InboundWrite::answers(Vec::new(), crate::store::AnswerSource::Text)
    };
    answers::record_inbound(store, &write, "event", now).await?;
    Ok(())
}

/// Enqueues the nudge (once per person and week, by its dedupe key), then
/// records it, with what it says, so the model sees it from now on and an
/// answer can redraw it. Returns whether this call recorded it.
async fn send_nudge(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    assessment: &Assessment<'_>,
    week: IsoWeek,
    now: DateTime<Utc>,
) -> Result<bool> {
    let content = render::nudge(
        person.name.as_deref(),
        &settings.messages,
        assessment,
        &settings.catalogue,
    );
    let message = render::nudge_with_answer(
        &content,
        &person.id,
        week,
        None,
        settings.model.not_now_weeks,
    );
    let key = format!("nudge:{}:{week}", person.id);
    let post = Queued::from(Outgoing::post(person.id.as_str(), None, message));
    outbox::enqueue(store, &post, Some(&person.id), Some(key), now).await?;
    let recorded = store
        .record_nudge(&NudgeRow {
            person: person.id.clone(),
            week,
            sent_at: now,
            reasons: serde_json::to_string(&assessment.reasons)
                .map_err(Error::encode("a nudge's reasons"))?,
            message: Some(serde_json::to_string(&content).map_err(Error::encode("a nudge"))?),
            response: None,
            answered_at: None,
        })
        .await?;
    Ok(recorded)
}

/// How many people may wait for re-assessment before new requests are
/// dropped (and left to the next trend post).
const QUEUE: usize = 4096;

/// How long requests gather before the worker re-assesses. Answers come in
/// bursts (a click per question, a few seconds apart at most); one
/// re-assessment after the burst decides what one per click would, and
/// leaves the CPU and the store's writes to the requests being answered.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The background re-assessment worker's handle: cheap to clone, never
/// blocks the caller.
#[derive(Clone)]
pub struct Assessor {
    queue: mpsc::Sender<PersonId>,
    done: broadcast::Sender<Reassessed>,
}

impl Assessor {
    /// Starts the worker under `supervisor`, which restarts it after a
    /// fault and stops it at shutdown. Requests queued while it restarts
    /// wait for it; only the people it was re-assessing when it failed are
    /// left to the next trend post.
    pub fn start(
        supervisor: &Supervisor,
        settings: Arc<Settings>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (done, _) = broadcast::channel(256);
        // Outlives each run of the worker: a restart reads on where the
        // last one stopped.
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let finished = done.clone();
        supervisor.spawn("reassessment", None, move |heartbeat, stop| {
            run(
                settings.clone(),
                store.clone(),
                clock.clone(),
                rx.clone(),
                finished.clone(),
                stop,
                heartbeat,
            )
        });
        Self { queue, done }
    }

    /// Asks for `person` to be re-assessed soon.
    pub fn request(&self, person: &PersonId) {
        if self.queue.try_send(person.clone()).is_err() {
            metrics::counter!("nudged_reassessments_deferred_total").increment(1);
            tracing::warn!(%person, "re-assessment queue full; the next trend post catches up");
        }
    }

    /// Every re-assessment the worker completes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Reassessed> {
        self.done.subscribe()
    }
}

async fn run(
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<PersonId>>>,
    done: broadcast::Sender<Reassessed>,
    stop: CancellationToken,
    heartbeat: Heartbeat,
) -> anyhow::Result<()> {
    // Held for this run's life, released when it ends or panics.
    let mut rx = rx.lock().await;
    loop {
        heartbeat.beat();
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = rx.recv() => match next {
                Some(person) => person,
                None => return Ok(()),
            },
        };
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(SETTLE) => {}
        }
        // Everyone queued meanwhile, each once.
        let mut people = BTreeSet::from([first]);
        while let Ok(person) = rx.try_recv() {
            people.insert(person);
        }
        for id in people {
            let outcome = async {
                let Some(person) = store.person(&id).await? else {
                    return Ok(None);
                };
                reassess(&settings, store.as_ref(), &person, clock.now(), None)
                    .await
                    .map(Some)
            }
            .await;
            match outcome {
                Ok(Some(reassessed)) => {
                    let _ = done.send(reassessed);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(person = %id, error = %e, "re-assessment failed"),
            }
        }
    }
}
