//! Binding a row's values to a statement, the same on every engine: the
//! order here is the order of the columns in each engine's SQL
//! (`upsert_answers!`, `insert_outbox!`), for a fixed statement or for one
//! built at run time with a list of rows.

use chrono::{DateTime, Utc};
use sqlx::query::QueryScalar;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{AnswerSource, NewOutbox};
use crate::domain::{Answer, PersonId};

/// A scalar query on engine `DB`.
pub(super) type Scalar<'q, DB, O> = QueryScalar<'q, DB, O, <DB as Database>::Arguments>;

/// Binds `answer`: person, week, question, option, source, recorded at.
pub(super) fn answer<'q, DB, O>(
    query: Scalar<'q, DB, O>,
    answer: &'q Answer,
    source: AnswerSource,
    now: DateTime<Utc>,
) -> Scalar<'q, DB, O>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(answer.person.as_str())
        .bind(answer.week.to_string())
        .bind(answer.question.as_str())
        .bind(answer.option.as_str())
        .bind(source.as_str())
        .bind(now.timestamp_millis())
}

/// Binds `message`: dedupe key, coalesce key, person, kind, channel,
/// payload, not before, created at.
pub(super) fn outbox<'q, DB, O>(
    query: Scalar<'q, DB, O>,
    message: &'q NewOutbox,
) -> Scalar<'q, DB, O>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(message.dedupe_key.as_deref())
        .bind(message.coalesce_key.as_deref())
        .bind(message.person.as_ref().map(PersonId::as_str))
        .bind(message.kind.as_str())
        .bind(message.channel.as_str())
        .bind(message.payload.as_str())
        .bind(message.not_before.timestamp_millis())
        .bind(message.created_at.timestamp_millis())
}

/// Pushes `answers` as `VALUES (person, week, question, option, source,
/// recorded at), …`, in that column order, for a statement of several
/// answers built at run time.
pub(super) fn answer_values<DB>(
    query: &mut QueryBuilder<DB>,
    answers: &[&Answer],
    source: AnswerSource,
    now: DateTime<Utc>,
) where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query.push_values(answers, |mut row, answer| {
        row.push_bind(answer.person.to_string())
            .push_bind(answer.week.to_string())
            .push_bind(answer.question.to_string())
            .push_bind(answer.option.to_string())
            .push_bind(source.as_str().to_owned())
            .push_bind(now.timestamp_millis());
    });
}

/// Pushes `messages` as `VALUES (dedupe key, coalesce key, person, kind,
/// channel, payload, not before, created at), …`, the order of
/// [`outbox`].
pub(super) fn outbox_values<DB>(query: &mut QueryBuilder<DB>, messages: &[&NewOutbox])
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query.push_values(messages, |mut row, message| {
        row.push_bind(message.dedupe_key.clone())
            .push_bind(message.coalesce_key.clone())
            .push_bind(message.person.as_ref().map(PersonId::to_string))
            .push_bind(message.kind.clone())
            .push_bind(message.channel.clone())
            .push_bind(message.payload.clone())
            .push_bind(message.not_before.timestamp_millis())
            .push_bind(message.created_at.timestamp_millis());
    });
}
