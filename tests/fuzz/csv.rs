//! Target: the history CSV of `nudged import` ([`read_csv`]) and the ISO
//! week column's parser ([`IsoWeek`]), fed files whose rows have near-valid
//! ids, weeks, questions and options, odd quoting, line endings and column
//! counts, and raw bytes.
//!
//! Besides "never panics": an accepted file holds only real answers, one per
//! person, week and question, and writes back ([`write_csv`]) to a file that
//! reads the same; a refused file names a line that exists; a week reads
//! back as written.

use std::collections::BTreeMap;

use nudged::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId, default_catalogue};
use nudged::history::{HEADER, read_csv, sort_for_export, write_csv, write_json};
use proptest::prelude::*;

use crate::inputs::slack_text;
use crate::support::Target;

/// A week as it may be written in the file: right, nearly right, or not.
fn week_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => (1990i32..2100, 1u32..=53).prop_map(|(y, w)| format!("{y}-W{w:02}")),
        2 => (0i32..=9999, 0u32..=60, prop::sample::select(&["-W", "-w", "W", "-", "--W", "-W0"][..]))
            .prop_map(|(y, w, sep)| format!("{y:04}{sep}{w}")),
        1 => prop::sample::select(&[
            "+999-W01", "-999-W01", "0000-W01", "9999-W52", "9999-W53", "2026-W", "2026-W001",
            "2026-W+1", "2026-W-1", "2026-W٣", "２０２６-W47", " 2026-W47 ", "2026-W47\u{A0}",
            "", "W47", "2026", "1e3-W01",
        ][..]).prop_map(str::to_owned),
        1 => "[0-9+W -]{0,10}",
    ]
}

fn person_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => "U[0-9A-Z]{1,3}",
        1 => "[a-z0-9_.@-]{60,66}",
        1 => "U[0-9]{0,2}[ é,|\"\u{0}][0-9]{0,2}",
        1 => Just(String::new()),
    ]
}

fn question_text() -> impl Strategy<Value = String> + Clone {
    let ids: Vec<String> = default_catalogue()
        .questions()
        .iter()
        .map(|q| q.id.to_string())
        .collect();
    prop_oneof![
        6 => prop::sample::select(ids.clone()),
        1 => prop::sample::select(ids).prop_map(|id| id.to_uppercase()),
        1 => "[a-z]{0,12}",
    ]
}

fn option_text() -> impl Strategy<Value = String> + Clone {
    let keys: Vec<String> = default_catalogue()
        .questions()
        .iter()
        .flat_map(|q| q.options.iter().map(|o| o.key.to_string()))
        .collect();
    prop_oneof![
        6 => prop::sample::select(keys),
        1 => prop::sample::select(&["3–5", "A little", "Yes", "YES", "7", "", "6 +"][..]).prop_map(str::to_owned),
        1 => slack_text(2),
    ]
}

/// One field as written: bare, quoted (with the quotes doubled inside), or
/// padded.
fn written(field: String, style: u8) -> String {
    match style % 6 {
        0 => format!("\"{}\"", field.replace('"', "\"\"")),
        1 => format!(" {field}\t"),
        _ => field,
    }
}

fn row() -> impl Strategy<Value = String> {
    let fields = (person_text(), week_text(), question_text(), option_text());
    prop_oneof![
        8 => (fields, prop::collection::vec(any::<u8>(), 4)).prop_map(|((p, w, q, o), styles)| {
            [p, w, q, o]
                .into_iter()
                .zip(styles)
                .map(|(f, s)| written(f, s))
                .collect::<Vec<_>>()
                .join(",")
        }),
        // Too few or too many columns, or an unbalanced quote.
        1 => prop::collection::vec(question_text(), 0..7).prop_map(|f| f.join(",")),
        1 => slack_text(6).prop_map(|t| format!("U1,2026-W47,\"{t}")),
    ]
}

fn file() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        8 => Just(HEADER.join(",")),
        1 => prop::sample::select(&[
            "person,week,question", "Person,Week,Question,Option", "\u{FEFF}person,week,question,option",
            "person, week, question, option", "\"person\",week,question,option", "",
            "person,week,question,option,extra",
        ][..]).prop_map(str::to_owned),
    ];
    let ending = prop::sample::select(&["\n", "\r\n", "\r", "\n\n"][..]);
    (
        header,
        prop::collection::vec(row(), 0..12),
        ending,
        any::<bool>(),
    )
        .prop_map(|(header, rows, ending, trailing)| {
            let mut text = std::iter::once(header)
                .chain(rows)
                .collect::<Vec<_>>()
                .join(ending);
            if trailing {
                text.push_str(ending);
            }
            text
        })
}

#[test]
fn history_files_import_whole_or_name_a_line() {
    let target = Target {
        name: "csv/files",
        regressions: "tests/fuzz/regressions/csv-files.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    target.run(file(), |text| {
        match read_csv(text.as_bytes(), &catalogue) {
            Ok(answers) => {
                let mut seen = BTreeMap::new();
                for a in &answers {
                    let question = catalogue.get(a.question.as_str());
                    prop_assert!(
                        question.is_some_and(|q| q.option(a.option.as_str()).is_some()),
                        "{:?}",
                        a
                    );
                    let key = (a.person.clone(), a.week, a.question.clone());
                    prop_assert!(seen.insert(key, ()).is_none(), "answered twice: {:?}", a);
                }
                let mut sorted = answers.clone();
                sort_for_export(&mut sorted, &catalogue);
                let mut out = Vec::new();
                write_csv(&mut out, &sorted).unwrap();
                prop_assert_eq!(read_csv(out.as_slice(), &catalogue).unwrap(), sorted);
            }
            Err(e) => {
                // Line breaks inside quotes make records span lines, so the
                // bound is the file's line count (plus one for an empty file).
                let lines = text.split(['\n', '\r']).count() as u64;
                prop_assert!(
                    e.line >= 1 && e.line <= lines.max(1),
                    "line {} of {}: {}",
                    e.line,
                    lines,
                    e
                );
                prop_assert!(!e.problem.is_empty());
            }
        }
        Ok(())
    });
}

fn answer() -> impl Strategy<Value = Answer> {
    let catalogue = default_catalogue();
    let pairs: Vec<(QuestionId, OptionKey)> = catalogue
        .questions()
        .iter()
        .flat_map(|q| q.options.iter().map(|o| (q.id.clone(), o.key.clone())))
        .collect();
    (
        "[A-Za-z0-9_.@-]{1,64}",
        (0i32..=9999, 1u32..=52),
        prop::sample::select(pairs),
    )
        .prop_map(|(person, (year, week), (question, option))| Answer {
            person: PersonId::parse(&person).unwrap(),
            week: IsoWeek::new(year, week).unwrap(),
            question,
            option,
        })
}

#[test]
fn exported_history_imports_as_exported() {
    let target = Target {
        name: "csv/round-trip",
        regressions: "tests/fuzz/regressions/csv-round-trip.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    target.run(prop::collection::vec(answer(), 0..20), |answers| {
        // One answer per person, week and question, as the store keeps them.
        let mut unique: BTreeMap<(PersonId, IsoWeek, QuestionId), Answer> = BTreeMap::new();
        for a in answers {
            unique.insert((a.person.clone(), a.week, a.question.clone()), a);
        }
        let mut answers: Vec<Answer> = unique.into_values().collect();
        sort_for_export(&mut answers, &catalogue);
        let mut out = Vec::new();
        write_csv(&mut out, &answers).unwrap();
        prop_assert_eq!(
            read_csv(out.as_slice(), &catalogue).unwrap(),
            answers.clone()
        );
        let mut json = Vec::new();
        write_json(&mut json, &answers).unwrap();
        let mut people: Vec<&PersonId> = answers.iter().map(|a| &a.person).collect();
        people.dedup();
        let lines: Vec<serde_json::Value> = String::from_utf8(json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        prop_assert_eq!(lines.len(), people.len());
        Ok(())
    });
}

#[test]
fn weeks_read_back_as_written() {
    let target = Target {
        name: "csv/weeks",
        regressions: "tests/fuzz/regressions/csv-weeks.txt",
        per_mille: 1000,
    };
    let text = prop_oneof![4 => week_text(), 1 => any::<String>()];
    target.run((text, -100_000i64..100_000), |(text, weeks)| {
        if let Ok(week) = text.parse::<IsoWeek>() {
            prop_assert_eq!(week.to_string().parse::<IsoWeek>(), Ok(week));
            prop_assert_eq!(IsoWeek::of(week.monday()), week);
            // Any distance within two millennia is walkable both ways.
            let later = week.plus(weeks);
            prop_assert_eq!(later.weeks_since(week), weeks);
        }
        Ok(())
    });
}

#[test]
fn raw_bytes_are_refused_without_panic() {
    let target = Target {
        name: "csv/raw",
        regressions: "tests/fuzz/regressions/csv-raw.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "person,week,question,option\n[UW0-9a-z,\"\r\n -]{0,200}".prop_map(String::into_bytes),
    ];
    target.run(bytes, |bytes| {
        if let Err(e) = read_csv(bytes.as_slice(), &catalogue) {
            prop_assert!(!e.problem.is_empty());
        }
        Ok(())
    });
}
