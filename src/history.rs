//! Answer history in and out: the CSV format of `nudged import` and
//! `nudged export` (`person,week,question,option`), and export as JSON.
//!
//! Parsing is all or nothing: the first bad row stops the import with its
//! line number, before anything reaches the store.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use serde::Serialize;

use crate::domain::{Answer, Catalogue, IsoWeek, OptionKey, PersonId, QuestionId};

/// The CSV header, in this order.
pub const HEADER: [&str; 4] = ["person", "week", "question", "option"];

/// A CSV row nudged cannot import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct CsvError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub problem: String,
}

/// Reads a whole history CSV, checking every row against `catalogue`.
pub fn read_csv(input: impl Read, catalogue: &Catalogue) -> Result<Vec<Answer>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut answers = Vec::new();
    // (person, week, question) → line of first occurrence, to catch a file
    // that answers the same question twice with different options.
    let mut first_seen: HashMap<(PersonId, IsoWeek, QuestionId), (u64, OptionKey)> = HashMap::new();
    let mut header_seen = false;
    for record in reader.records() {
        let record = record.map_err(|e| CsvError {
            line: e.position().map_or(0, |p| p.line()),
            problem: format!("unreadable row: {e}"),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if record.iter().collect::<Vec<_>>() != HEADER {
                return Err(CsvError {
                    line,
                    problem: format!("the header must be {}", HEADER.join(",")),
                });
            }
            continue;
        }
        let answer = parse_row(&record, catalogue).map_err(|problem| CsvError { line, problem })?;
        let key = (answer.person.clone(), answer.week, answer.question.clone());
        match first_seen.get(&key) {
            Some((_, option)) if *option == answer.option => continue,
            Some((earlier, option)) => {
                return Err(CsvError {
                    line,
                    problem: format!(
                        "{} answered {} for {} already on line {earlier} ({option}), now {}",
                        answer.person, answer.question, answer.week, answer.option
                    ),
                });
            }
            None => {
                first_seen.insert(key, (line, answer.option.clone()));
            }
        }
        answers.push(answer);
    }
    if !header_seen {
        return Err(CsvError {
            line: 1,
            problem: format!(
                "the file is empty; expected the header {}",
                HEADER.join(",")
            ),
        });
    }
    Ok(answers)
}

fn parse_row(record: &csv::StringRecord, catalogue: &Catalogue) -> Result<Answer, String> {
    if record.len() != HEADER.len() {
        return Err(format!(
            "expected {} columns ({}), found {}",
            HEADER.len(),
            HEADER.join(","),
            record.len()
        ));
    }
    let person = PersonId::parse(&record[0]).map_err(|e| format!("person {:?} {e}", &record[0]))?;
    let week: IsoWeek = record[1].parse().map_err(|e| format!("week: {e}"))?;
    let question = catalogue.get(&record[2]).ok_or_else(|| {
        format!(
            "unknown question {:?}; known: {}",
            &record[2],
            catalogue
                .questions()
                .iter()
                .map(|q| q.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let option = question.option(&record[3]).ok_or_else(|| {
        format!(
            "{:?} is not an option of {}; options: {}",
            &record[3],
            question.id,
            question
                .options
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(Answer {
        person,
        week,
        question: question.id.clone(),
        option: option.key.clone(),
    })
}

/// Sorts answers by person, week and the catalogue's question order, the
/// order every export uses.
pub fn sort_for_export(answers: &mut [Answer], catalogue: &Catalogue) {
    answers.sort_by_cached_key(|a| {
        (
            a.person.clone(),
            a.week,
            catalogue
                .position(a.question.as_str())
                .unwrap_or(usize::MAX),
            a.question.clone(),
        )
    });
}

/// Writes answers as import-compatible CSV.
pub fn write_csv(out: impl Write, answers: &[Answer]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;
    for a in answers {
        writer.write_record([
            a.person.as_str(),
            &a.week.to_string(),
            a.question.as_str(),
            a.option.as_str(),
        ])?;
    }
    writer.flush()
}

/// One person's history in the JSON export.
#[derive(Debug, Serialize)]
pub struct PersonHistory<'a> {
    pub person: &'a PersonId,
    pub weeks: Vec<WeekAnswers<'a>>,
}

/// One week of answers in the JSON export.
#[derive(Debug, Serialize)]
pub struct WeekAnswers<'a> {
    pub week: IsoWeek,
    pub answers: BTreeMap<&'a str, &'a str>,
}

/// Writes answers (sorted by person) as JSON Lines: one object per person,
/// `{"person": …, "weeks": [{"week": "2026-W47", "answers": {question: option}}]}`.
pub fn write_json(mut out: impl Write, answers: &[Answer]) -> std::io::Result<()> {
    for person in answers.chunk_by(|a, b| a.person == b.person) {
        let weeks = person
            .chunk_by(|a, b| a.week == b.week)
            .map(|week| WeekAnswers {
                week: week[0].week,
                answers: week
                    .iter()
                    .map(|a| (a.question.as_str(), a.option.as_str()))
                    .collect(),
            })
            .collect();
        let object = PersonHistory {
            person: &person[0].person,
            weeks,
        };
        serde_json::to_writer(&mut out, &object)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::default_catalogue;

    fn read(text: &str) -> Result<Vec<Answer>, CsvError> {
        read_csv(text.as_bytes(), &default_catalogue())
    }

    #[test]
    fn reads_rows_and_skips_blank_lines_and_exact_repeats() {
        let answers = read(
            "person,week,question,option\n\
             U1,2026-W47,decisions,3-5\n\
             \n\
             U1, 2026-W47 ,capacity,none\n\
             U1,2026-W47,decisions,3-5\n",
        )
        .unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[1].option.as_str(), "none");
    }

    #[test]
    fn every_bad_row_names_its_line_and_problem() {
        let cases = [
            ("U1,2026-W47,decisions\n", "expected 4 columns"),
            ("U1,2026-W47,mood,good\n", "unknown question \"mood\""),
            (
                "U1,2026-W47,decisions,7\n",
                "\"7\" is not an option of decisions",
            ),
            ("U1,2026-47,decisions,3-5\n", "week:"),
            ("U1,2027-W53,decisions,3-5\n", "no ISO week 53"),
            ("U 1,2026-W47,decisions,3-5\n", "person"),
        ];
        for (row, expected) in cases {
            let text = format!("person,week,question,option\nU2,2026-W46,focus,mixed\n{row}");
            let e = read(&text).unwrap_err();
            assert_eq!(e.line, 3, "{row}: {e}");
            assert!(e.problem.contains(expected), "{row}: {e}");
        }
    }

    #[test]
    fn a_wrong_header_or_empty_file_is_rejected() {
        assert_eq!(read("").unwrap_err().line, 1);
        let e = read("who,when,what,which\n").unwrap_err();
        assert!(e.problem.contains("header"), "{e}");
    }

    #[test]
    fn conflicting_answers_in_one_file_are_rejected() {
        let e = read(
            "person,week,question,option\nU1,2026-W47,focus,mixed\nU1,2026-W47,focus,deciding\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.problem.contains("line 2"), "{e}");
    }

    #[test]
    fn csv_written_reads_back_the_same() {
        let mut answers = read(
            "person,week,question,option\n\
             U2,2026-W47,capacity,yes\n\
             U1,2026-W48,decisions,6+\n\
             U1,2026-W47,capacity,little\n\
             U1,2026-W47,decisions,1-2\n",
        )
        .unwrap();
        sort_for_export(&mut answers, &default_catalogue());
        let mut out = Vec::new();
        write_csv(&mut out, &answers).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "person,week,question,option\n\
             U1,2026-W47,decisions,1-2\n\
             U1,2026-W47,capacity,little\n\
             U1,2026-W48,decisions,6+\n\
             U2,2026-W47,capacity,yes\n"
        );
        assert_eq!(read(&text).unwrap(), answers);
    }

    #[test]
    fn json_groups_by_person_and_week() {
        let mut answers = read(
            "person,week,question,option\nU1,2026-W47,decisions,1-2\nU1,2026-W47,focus,mixed\nU2,2026-W48,capacity,yes\n",
        )
        .unwrap();
        sort_for_export(&mut answers, &default_catalogue());
        let mut out = Vec::new();
        write_json(&mut out, &answers).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["person"], "U1");
        assert_eq!(lines[0]["weeks"][0]["answers"]["focus"], "mixed");
        assert_eq!(lines[1]["weeks"][0]["week"], "2026-W48");
    }
}
