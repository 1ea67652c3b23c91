//! The statements both engines run alike, each written once as a function
//! of [`Sql`], generic over the engine and over the executor it runs on (a
//! pool, a connection, a transaction), so each engine decides only where
//! a statement runs: SQLite on its writer's connection, PostgreSQL on its
//! pool or in a transaction.

use std::collections::{BTreeSet, HashSet};
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use sqlx::{Executor, QueryBuilder};

use super::{Fields, millis, outcome_of, unknown_person};
use crate::domain::{Answer, IsoWeek, NudgeResponse, OptionKey, PersonId, QuestionId};
use crate::store::{
    AnswerRow, AnswerSource, AssessmentRow, CheckinRow, ImportOutcome, NewOutbox, NewPerson,
    NudgeClick, NudgeClickOutcome, NudgeRow, PersonRow, RecordOutcome, ScheduleRun, StoreResult,
    bind,
};

/// The shared statements of engine `DB`; never built, only named
/// (`Sql::<Sqlite>::person(…)`). Its `impl` blocks (this file's,
/// `outbox.rs`'s and `due.rs`'s) are written with `shared_statements!`,
/// which carries the bounds each statement needs of the engine.
pub(in crate::store) struct Sql<DB>(PhantomData<DB>);

shared_statements! {
    // ---- people -------------------------------------------------------

    /// [`Store::upsert_person`](crate::store::Store::upsert_person): one
    /// statement, so a person forgotten meanwhile is never inserted again.
    /// (The `WHERE` also settles SQLite's parsing of an upsert from a
    /// `SELECT`.)
    pub async fn upsert_person<'c, E>(
        exec: E,
        person: &NewPerson,
        now: DateTime<Utc>,
    ) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
             SELECT $1, $2, $3, $4, NULL, $5 \
             WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE person = $1) \
             ON CONFLICT (id) DO UPDATE SET \
               name = COALESCE(excluded.name, people.name), \
               tz = COALESCE(excluded.tz, people.tz)",
        )
        .bind(person.id.as_str())
        .bind(person.name.as_deref())
        .bind(person.tz.map(|tz| tz.name()))
        .bind(person.enrolled)
        .bind(millis(now))
        .execute(exec)
        .await?;
        Ok(())
    }

    pub async fn person<'c, E>(exec: E, id: &PersonId) -> StoreResult<Option<PersonRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            " FROM people WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(exec)
        .await?
        .as_ref()
        .map(Fields::person_row)
        .transpose()
    }

    pub async fn people<'c, E>(exec: E) -> StoreResult<Vec<PersonRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            " FROM people ORDER BY id"
        ))
        .fetch_all(exec)
        .await?
        .iter()
        .map(Fields::person_row)
        .collect()
    }

    pub async fn set_enrolled<'c, E>(exec: E, id: &PersonId, enrolled: bool) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query("UPDATE people SET enrolled = $1 WHERE id = $2")
            .bind(enrolled)
            .bind(id.as_str())
            .execute(exec)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub async fn set_paused_until<'c, E>(
        exec: E,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query("UPDATE people SET paused_until = $1 WHERE id = $2")
            .bind(until.map(millis))
            .bind(id.as_str())
            .execute(exec)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// A person already off keeps their first instant.
    pub async fn set_nudges_off<'c, E>(
        exec: E,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        // The cast gives PostgreSQL the parameter's type where `IS NULL`
        // alone would not.
        let done = sqlx::query(
            "UPDATE people SET nudges_off_since = CASE WHEN CAST($1 AS BIGINT) IS NULL THEN NULL \
             ELSE COALESCE(nudges_off_since, CAST($1 AS BIGINT)) END WHERE id = $2",
        )
        .bind(since.map(millis))
        .bind(id.as_str())
        .execute(exec)
        .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    // ---- answers ------------------------------------------------------

    /// [`Store::record_answer`](crate::store::Store::record_answer). The
    /// foreign key refuses an unknown person: no read before the write.
    pub async fn upsert_answer<'c, E>(
        exec: E,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome>
    where
        E: Executor<'c, Database = DB>,
    {
        let query = sqlx::query_scalar(concat!(
            upsert_answers!(insert),
            "VALUES ($1, $2, $3, $4, $5, $6, 1)",
            upsert_answers!(on_conflict)
        ));
        let revision: Option<i32> = bind::answer(query, answer, source, now)
            .fetch_optional(exec)
            .await
            .map_err(unknown_person(&answer.person))?;
        Ok(outcome_of(revision))
    }

    /// The statements of [`Store::import_answers`](crate::store::Store::import_answers),
    /// in the caller's transaction: the people not yet known, then the
    /// answers, each in batches ([`import_batches`]).
    pub async fn import_rows(
        conn: &mut DB::Connection,
        answers: &[Answer],
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        let mut outcome = ImportOutcome::default();
        let now = millis(now);
        let people: Vec<&str> = answers
            .iter()
            .map(|a| a.person.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in people.chunks(DB::IMPORT_BATCH_ROWS) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) ",
            );
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(*id)
                    .push("NULL, NULL, FALSE, NULL")
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            let done = insert.build().persistent(false).execute(&mut *conn).await?;
            outcome.new_people += DB::rows_affected(&done);
        }
        for batch in import_batches(answers, DB::IMPORT_BATCH_ROWS) {
            let mut upsert = QueryBuilder::<DB>::new(upsert_answers!(insert));
            upsert.push_values(batch, |mut row, answer| {
                row.push_bind(answer.person.as_str())
                    .push_bind(answer.week.to_string())
                    .push_bind(answer.question.as_str())
                    .push_bind(answer.option.as_str())
                    .push_bind(source.as_str())
                    .push_bind(now)
                    .push("1");
            });
            upsert.push(upsert_answers!(on_conflict));
            let written: Vec<i32> = upsert.build_query_scalar().persistent(false).fetch_all(&mut *conn).await?;
            for revision in &written {
                match outcome_of(Some(*revision)) {
                    RecordOutcome::Inserted => outcome.inserted += 1,
                    _ => outcome.changed += 1,
                }
            }
            outcome.unchanged += (batch.len() - written.len()) as u64;
        }
        Ok(outcome)
    }

    pub async fn answers<'c, E>(exec: E, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        let query = match person {
            Some(p) => sqlx::query(concat!(
                "SELECT ",
                columns!(answers),
                " FROM answers WHERE person = $1 ORDER BY person, week, question"
            ))
            .bind(p.as_str()),
            None => sqlx::query(concat!(
                "SELECT ",
                columns!(answers),
                " FROM answers ORDER BY person, week, question"
            )),
        };
        query
            .fetch_all(exec)
            .await?
            .iter()
            .map(Fields::answer_row)
            .collect()
    }

    /// [`Store::answers_of_week`](crate::store::Store::answers_of_week):
    /// `people` in one statement.
    pub async fn answers_of_week<'c, E>(
        exec: E,
        people: &[PersonId],
        week: IsoWeek,
    ) -> StoreResult<Vec<(PersonId, QuestionId, OptionKey)>>
    where
        E: Executor<'c, Database = DB>,
    {
        if people.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<DB>::new("SELECT person, question, option FROM answers WHERE week = ");
        query.push_bind(week.to_string()).push(" AND person IN (");
        let mut list = query.separated(", ");
        for person in people {
            list.push_bind(person.to_string());
        }
        query.push(") ORDER BY person, question");
        query
            .build()
            .persistent(false)
            .fetch_all(exec)
            .await?
            .iter()
            .map(|row| {
                let f = Fields::<DB>::of("answers", row);
                Ok((
                    f.parsed("person", PersonId::parse)?,
                    f.parsed("question", QuestionId::parse)?,
                    f.parsed("option", OptionKey::parse)?,
                ))
            })
            .collect()
    }

    /// Records an inbound event or action id; true the first time only.
    pub async fn mark_seen<'c, E>(exec: E, key: &str, now: DateTime<Utc>) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(
            "INSERT INTO seen_events (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(millis(now))
        .execute(exec)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn unmark_seen<'c, E>(exec: E, key: &str) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query("DELETE FROM seen_events WHERE key = $1")
            .bind(key)
            .execute(exec)
            .await?;
        Ok(())
    }

    // ---- schedules and check-ins ---------------------------------------

    pub async fn claim_run<'c, E>(
        exec: E,
        run: &ScheduleRun,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(
            "INSERT INTO schedule_runs (person, schedule, period, claimed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person, schedule, period) DO NOTHING",
        )
        .bind(run.person.as_str())
        .bind(run.schedule.as_str())
        .bind(millis(run.period))
        .bind(millis(now))
        .execute(exec)
        .await
        .map_err(unknown_person(&run.person))?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn last_run<'c, E>(
        exec: E,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>>
    where
        E: Executor<'c, Database = DB>,
    {
        let row = sqlx::query(
            "SELECT MAX(period) AS period FROM schedule_runs WHERE person = $1 AND schedule = $2",
        )
        .bind(person.as_str())
        .bind(schedule)
        .fetch_one(exec)
        .await?;
        Fields::<DB>::of("schedule_runs", &row).opt_time("period")
    }

    pub async fn record_checkin<'c, E>(exec: E, checkin: &CheckinRow) -> StoreResult<Option<i64>>
    where
        E: Executor<'c, Database = DB>,
    {
        let id = sqlx::query_scalar(
            "INSERT INTO checkins (person, schedule, period, week, channel, message_ts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (person, schedule, period) DO NOTHING \
             RETURNING id",
        )
        .bind(checkin.person.as_str())
        .bind(checkin.schedule.as_str())
        .bind(millis(checkin.period))
        .bind(checkin.week.to_string())
        .bind(checkin.channel.as_deref())
        .bind(checkin.message_ts.as_deref())
        .bind(millis(checkin.created_at))
        .fetch_optional(exec)
        .await
        .map_err(unknown_person(&checkin.person))?;
        Ok(id)
    }

    pub async fn set_checkin_message<'c, E>(
        exec: E,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query("UPDATE checkins SET channel = $1, message_ts = $2 WHERE id = $3")
            .bind(channel)
            .bind(message_ts)
            .bind(id)
            .execute(exec)
            .await?;
        Ok(())
    }

    pub async fn checkin_by_message<'c, E>(
        exec: E,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(checkins),
            " FROM checkins WHERE channel = $1 AND message_ts = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(channel)
        .bind(message_ts)
        .fetch_optional(exec)
        .await?
        .as_ref()
        .map(Fields::checkin_row)
        .transpose()
    }

    // ---- assessments and nudges ----------------------------------------

    pub async fn save_assessment<'c, E>(exec: E, row: &AssessmentRow) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO assessments (person, week, state, ewma, detail, assessed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.person.as_str())
        .bind(row.week.to_string())
        .bind(row.state.as_str())
        .bind(row.ewma)
        .bind(row.detail.as_str())
        .bind(millis(row.assessed_at))
        .execute(exec)
        .await
        .map_err(unknown_person(&row.person))?;
        Ok(())
    }

    /// Ties on the instant go to the row saved last.
    pub async fn latest_assessment<'c, E>(
        exec: E,
        person: &PersonId,
    ) -> StoreResult<Option<AssessmentRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(assessments),
            " FROM assessments WHERE person = $1 ORDER BY assessed_at DESC, id DESC LIMIT 1"
        ))
        .bind(person.as_str())
        .fetch_optional(exec)
        .await?
        .as_ref()
        .map(Fields::assessment_row)
        .transpose()
    }

    pub async fn record_nudge<'c, E>(exec: E, nudge: &NudgeRow) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(
            "INSERT INTO nudges (person, week, sent_at, reasons, message, response, answered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (person, week) DO NOTHING",
        )
        .bind(nudge.person.as_str())
        .bind(nudge.week.to_string())
        .bind(millis(nudge.sent_at))
        .bind(nudge.reasons.as_str())
        .bind(nudge.message.as_deref())
        .bind(nudge.response.map(NudgeResponse::as_str))
        .bind(nudge.answered_at.map(millis))
        .execute(exec)
        .await
        .map_err(unknown_person(&nudge.person))?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn nudges<'c, E>(exec: E, person: &PersonId) -> StoreResult<Vec<NudgeRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(nudges),
            " FROM nudges WHERE person = $1 ORDER BY sent_at, week"
        ))
        .bind(person.as_str())
        .fetch_all(exec)
        .await?
        .iter()
        .map(Fields::nudge_row)
        .collect()
    }

    /// The statements of [`Store::answer_nudge`](crate::store::Store::answer_nudge),
    /// in the caller's transaction (or SQLite savepoint). The nudge is read
    /// first ([`Engine::NUDGE_RESPONSE`], which on PostgreSQL locks it, so
    /// a concurrent click on it waits for this one; SQLite's one writer
    /// has no other writer to wait for), so what is read is still true
    /// when it is written.
    pub async fn nudge_click(
        conn: &mut DB::Connection,
        click: &NudgeClick,
        on_change: Option<&NewOutbox>,
    ) -> StoreResult<NudgeClickOutcome> {
        let week = click.week.to_string();
        let stored: Option<Option<String>> = sqlx::query_scalar(DB::NUDGE_RESPONSE)
            .bind(click.person.as_str())
            .bind(week.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(stored) = stored else {
            return Ok(NudgeClickOutcome::UnknownNudge);
        };
        if let Some(key) = &click.seen_key
            && !Self::mark_seen(&mut *conn, key, click.at).await?
        {
            return Ok(NudgeClickOutcome::Duplicate);
        }
        let changed = stored.as_deref() != Some(click.response.as_str());
        if changed {
            sqlx::query(
                "UPDATE nudges SET response = $1, answered_at = $2 WHERE person = $3 AND week = $4",
            )
            .bind(click.response.as_str())
            .bind(millis(click.at))
            .bind(click.person.as_str())
            .bind(week.as_str())
            .execute(&mut *conn)
            .await?;
            if let Some(message) = on_change {
                Self::insert_outbox(&mut *conn, message).await?;
            }
        }
        let off = (click.response == NudgeResponse::NotForMe).then_some(click.at);
        Self::set_nudges_off(&mut *conn, &click.person, off).await?;
        Ok(if changed {
            NudgeClickOutcome::Recorded
        } else {
            NudgeClickOutcome::Unchanged
        })
    }
}

/// Splits an import into statements of at most `rows` answers in which no
/// (person, week, question) repeats: PostgreSQL refuses to let one `ON
/// CONFLICT DO UPDATE` touch a row twice, and cutting the batch where a
/// key repeats keeps the file's order, so a repeated key counts exactly as
/// it would one statement at a time, on both engines.
pub(in crate::store) fn import_batches(answers: &[Answer], rows: usize) -> Vec<&[Answer]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut keys = HashSet::new();
    for (i, a) in answers.iter().enumerate() {
        let key = (&a.person, a.week, &a.question);
        if i - start == rows || !keys.insert(key) {
            batches.push(&answers[start..i]);
            start = i;
            keys.clear();
            keys.insert(key);
        }
    }
    if start < answers.len() {
        batches.push(&answers[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(person: &str, week: &str, question: &str) -> Answer {
        Answer {
            person: PersonId::parse(person).unwrap(),
            week: week.parse().unwrap(),
            question: QuestionId::parse(question).unwrap(),
            option: OptionKey::parse("x").unwrap(),
        }
    }

    #[test]
    fn an_import_batch_is_cut_where_a_key_repeats_and_keeps_the_order() {
        let file = [
            answer("U1", "2026-W01", "focus"),
            answer("U1", "2026-W01", "capacity"),
            answer("U1", "2026-W01", "focus"),
            answer("U2", "2026-W01", "focus"),
            answer("U1", "2026-W01", "focus"),
        ];
        let lens: Vec<usize> = import_batches(&file, 1000)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, [2, 2, 1]);
        assert_eq!(import_batches(&file, 1000).concat(), file);
    }

    #[test]
    fn an_import_batch_holds_at_most_the_batch_size() {
        let rows = 1000;
        let file: Vec<Answer> = (0..2 * rows + 1)
            .map(|i| answer(&format!("U{i}"), "2026-W01", "focus"))
            .collect();
        let lens: Vec<usize> = import_batches(&file, rows)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, [rows, rows, 1]);
        assert!(import_batches(&[], rows).is_empty());
    }
}
