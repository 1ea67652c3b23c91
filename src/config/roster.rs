//! The roster's `[[people]]` tables, read one table at a time.
//!
//! Parsed as one document, a roster of 10,000 people becomes a tree of
//! about 2 KB per person (the `toml` crate's spanned tables, then the
//! `config` crate's values), about 20 MiB at once for a 0.5 MB file, and
//! the allocator keeps most of it after. So the file is cut first: the
//! lexer of `toml_parser` (the `toml` crate's own), read token by token,
//! says where each table header is; every
//! `[[people]]` table is deserialized on its own into one [`RawPerson`],
//! and the rest of the file, with those tables' lines left blank so its
//! line numbers are still the file's, goes to the `config` crate as before.
//! See ARCHITECTURE.md, "Configuration".

use std::path::Path;

use serde::Deserialize;
use toml_parser::decoder::Encoding;
use toml_parser::lexer::{Lexer, TokenKind};
use toml_parser::{Raw, Source};

use super::ConfigError;
use super::raw::{RawPerson, backticked, expected_suffix, unknown_field};

/// A file cut in two.
#[derive(Debug)]
pub(super) struct Split {
    /// Everything but the `[[people]]` tables, whose lines are left blank.
    pub rest: String,
    /// The `[[people]]` tables in file order, each already deserialized.
    pub people: Vec<RawPerson>,
}

/// Cuts `text` (the contents of `path`). A file whose headers or brackets
/// do not add up is not cut: all of it is `rest`, for the `config` crate to
/// report as before.
pub(super) fn split(path: &Path, text: &str) -> Result<Split, ConfigError> {
    let Some(headers) = headers(text) else {
        return Ok(Split {
            rest: text.to_owned(),
            people: Vec::new(),
        });
    };
    let mut rest = String::with_capacity(text.len());
    let mut people = Vec::new();
    // Byte offset copied up to, and the line it is on (1-based).
    let (mut copied, mut line) = (0, 1);
    let starts = headers.iter().map(|h| h.start).skip(1);
    for (header, end) in headers
        .iter()
        .zip(starts.chain(std::iter::once(text.len())))
    {
        if !header.people {
            continue;
        }
        let before = &text[copied..header.start];
        rest.push_str(before);
        line += newlines(before);
        let table = &text[header.start..end];
        people.push(person(path, table, people.len(), line)?);
        let blank = newlines(table);
        rest.extend(std::iter::repeat_n('\n', blank));
        line += blank;
        copied = end;
    }
    rest.push_str(&text[copied..]);
    Ok(Split { rest, people })
}

/// One `[[people]]` table (header included) as the `index`th person; `line`
/// is the file's line the table starts on, for errors.
fn person(path: &Path, table: &str, index: usize, line: usize) -> Result<RawPerson, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        people: Vec<RawPerson>,
    }
    let key = format!("people[{index}]");
    match toml::from_str::<Table>(table) {
        Ok(Table { people }) => people
            .into_iter()
            .next()
            .ok_or_else(|| ConfigError::new(path, key, format!("line {line}: an empty table"))),
        Err(e) => {
            let message = e.message().trim_end();
            let at = line + e.span().map_or(0, |s| newlines(&table[..s.start]));
            Err(if let Some(field) = unknown_field(message) {
                ConfigError::new(
                    path,
                    format!("{key}.{field}"),
                    format!("unknown key{} (line {at})", expected_suffix(message)),
                )
            } else if let Some(field) = backticked(message, "missing field `") {
                ConfigError::new(path, format!("{key}.{field}"), "is required")
            } else {
                ConfigError::new(path, key, format!("{message} (line {at})"))
            })
        }
    }
}

fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// A table header: where it starts, and whether it is exactly `[[people]]`.
struct Header {
    start: usize,
    people: bool,
}

/// The table headers of `text`, in order; `None` if its brackets do not
/// add up.
///
/// Read from the lexer's tokens as they come (strings and comments are one
/// token each, so a `[` inside them is never seen): a `[` that starts a
/// line outside any value's brackets opens a header. The parser proper
/// would need every token of the file in memory at once, about 14 bytes of
/// tokens per byte of roster.
fn headers(text: &str) -> Option<Vec<Header>> {
    let source = Source::new(text);
    let mut tokens = source.lex();
    let mut found = Vec::new();
    // Brackets of values open (arrays and inline tables may span lines).
    let mut depth = 0usize;
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => line_start = true,
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::Eof => break,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                found.push(header(&source, token.span().start(), &mut tokens)?);
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    (depth == 0).then_some(found)
}

/// The header whose first `[` starts at `start`, read up to its last `]`.
fn header(source: &Source<'_>, start: usize, tokens: &mut Lexer<'_>) -> Option<Header> {
    let mut array = false;
    let mut keys = 0;
    let mut people = false;
    loop {
        let token = tokens.next()?;
        let encoding = match token.kind() {
            TokenKind::LeftSquareBracket if keys == 0 && !array => {
                array = true;
                continue;
            }
            TokenKind::Whitespace | TokenKind::Dot => continue,
            TokenKind::RightSquareBracket => break,
            TokenKind::Atom => None,
            TokenKind::BasicString => Some(Encoding::BasicString),
            TokenKind::LiteralString => Some(Encoding::LiteralString),
            _ => return None,
        };
        keys += 1;
        if keys == 1 {
            // Quoted keys are decoded as written: `[["people"]]` is `[[people]]`.
            let raw =
                Raw::new_unchecked(source.get(token.span())?.as_str(), encoding, token.span());
            let mut name = String::new();
            raw.decode_key(&mut name, &mut ());
            people = name == "people";
        }
    }
    if array && tokens.next()?.kind() != TokenKind::RightSquareBracket {
        return None;
    }
    Some(Header {
        start,
        people: array && keys == 1 && people,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> Split {
        split(Path::new("nudged.toml"), text).unwrap()
    }

    #[test]
    fn people_tables_are_taken_out_and_their_lines_left_blank() {
        let text = "[server]\nbind = \"127.0.0.1:0\"\n\n[[people]]\nid = \"U1\"\n\
                    tz = \"Europe/Berlin\"\n\n[[people]] # the second\nid = \"U2\"\nname = \"Ana\"\n\
                    [storage]\nurl = \"sqlite://x.db\"\n";
        let split = cut(text);
        assert_eq!(
            split.rest,
            "[server]\nbind = \"127.0.0.1:0\"\n\n\n\n\n\n\n\n\n[storage]\nurl = \"sqlite://x.db\"\n"
        );
        assert_eq!(split.rest.lines().count(), text.lines().count());
        let ids: Vec<_> = split.people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["U1", "U2"]);
        assert_eq!(split.people[0].tz.as_deref(), Some("Europe/Berlin"));
        assert_eq!(split.people[1].name.as_deref(), Some("Ana"));
    }

    #[test]
    fn headers_inside_strings_and_arrays_are_not_tables() {
        let text = "[messages]\nnudge = \"\"\"\n[[people]]\nid = \"X\"\n\"\"\"\n\
                    [[questions]]\nid = \"q\"\noptions = [\n  [\"people\"],\n]\n\
                    [[\"people\"]]\nid = \"U1\"\n[[people.extra]]\nx = 1\n";
        let split = cut(text);
        let ids: Vec<_> = split.people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["U1"], "only the quoted but real [[people]] table");
        assert!(
            split
                .rest
                .contains("nudge = \"\"\"\n[[people]]\nid = \"X\"")
        );
        assert!(split.rest.contains("[[people.extra]]\nx = 1\n"));
    }

    #[test]
    fn a_byte_order_mark_and_windows_line_ends_are_read_through() {
        let text = "\u{feff}[[people]]\r\nid = \"U1\"\r\n[server]\r\nbind = \"127.0.0.1:0\"\r\n";
        let split = cut(text);
        let ids: Vec<_> = split.people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["U1"]);
        assert_eq!(
            split.rest,
            "\u{feff}\n\n[server]\r\nbind = \"127.0.0.1:0\"\r\n"
        );
    }

    #[test]
    fn a_malformed_file_is_left_whole_for_the_config_crate_to_report() {
        let text = "[[people]]\nid = \"U1\"\n[server\n";
        let split = cut(text);
        assert_eq!(split.rest, text);
        assert!(split.people.is_empty());
    }

    #[test]
    fn a_bad_person_is_named_with_the_file_line() {
        let path = Path::new("nudged.toml");
        let text =
            "[server]\n\n[[people]]\nid = \"U1\"\n\n[[people]]\nid = \"U2\"\nnmae = \"Bo\"\n";
        let e = split(path, text).unwrap_err();
        assert_eq!(e.key, "people[1].nmae");
        assert!(e.problem.starts_with("unknown key; expected"), "{e}");
        assert!(e.problem.ends_with("(line 8)"), "{e}");

        let e = split(path, "[[people]]\nname = \"Bo\"\n").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.problem.as_str()),
            ("people[0].id", "is required")
        );

        let e = split(path, "\n[[people]]\nid = 7\n").unwrap_err();
        assert_eq!(e.key, "people[0]");
        assert!(e.problem.contains("(line 3)"), "{e}");
    }
}
