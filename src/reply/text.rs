//! Text handling both grammars share: Slack markup undone, a length cap, the
//! clipped echo of the person's words in an error, small counts.

use super::{MAX_ECHO_CHARS, MAX_TEXT_CHARS};

pub(super) fn is_too_long(text: &str) -> bool {
    text.chars().nth(MAX_TEXT_CHARS).is_some()
}

/// Slack's HTML entities undone, emoji (`:tada:` and 🎉) dropped, dash-like
/// and full-width punctuation made ASCII, every other whitespace a space
/// (line breaks kept), invisible and control characters dropped.
pub(super) fn canonical(text: &str) -> String {
    let unescaped = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    strip_emoji_codes(&unescaped)
        .chars()
        .filter_map(canonical_char)
        .collect()
}

/// Replaces Slack emoji codes (`:tada:`, `:+1::skin-tone-2:`) with a space.
/// A code stands alone: `decisions:3-5:` is not one, since a letter touches
/// its first colon.
fn strip_emoji_codes(text: &str) -> String {
    /// Longest emoji code looked for, in bytes; real ones are far shorter.
    const MAX_CODE_BYTES: usize = 64;
    let is_code = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-');
    // Non-ASCII bytes count as word characters: `é:x:` is left alone.
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b':' && (i == 0 || !is_word(bytes[i - 1])) {
            let mut j = i + 1;
            while j < bytes.len() && j - i <= MAX_CODE_BYTES && is_code(bytes[j]) {
                j += 1;
            }
            let closes = j > i + 1 && bytes.get(j) == Some(&b':');
            if closes && bytes.get(j + 1).is_none_or(|&b| !is_word(b)) {
                // `i` and `j` index ASCII colons, so both are char boundaries.
                out.push_str(&text[copied..i]);
                out.push(' ');
                i = j + 1;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

pub(super) fn canonical_char(c: char) -> Option<char> {
    Some(match c {
        // Hyphens, en and em dashes, minus signs.
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
        '\u{FF1D}' => '=',
        '\u{FF1A}' => ':',
        '\u{FF0C}' | '\u{3001}' => ',',
        '\u{FF1B}' => ';',
        '\u{FF0B}' => '+',
        // Invisible joiners and marks; emoji and pictographs (`yes 👍`), which
        // carry no answer.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FE0F}' => {
            return None;
        }
        '\u{2600}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}' | '\u{1F000}'..='\u{1FAFF}' => {
            return None;
        }
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => '\n',
        c if c.is_whitespace() => ' ',
        c if c.is_control() => return None,
        c => c,
    })
}

/// The person's text as echoed in an error: at most [`MAX_ECHO_CHARS`]
/// characters, no control characters.
pub(super) fn clip(text: &str) -> String {
    let clean = text.chars().filter(|c| !c.is_control());
    if text
        .chars()
        .filter(|c| !c.is_control())
        .nth(MAX_ECHO_CHARS)
        .is_none()
    {
        return clean.collect();
    }
    let mut clipped: String = clean.take(MAX_ECHO_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

/// `42` → 42; anything but a short run of ASCII digits → `None`.
pub(super) fn parse_count(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Removes one list marker Slack's composer puts before a line (`• `, `- `,
/// `1. `), if the line has something after it.
pub(super) fn strip_list_marker(line: &str) -> &str {
    let trimmed = line.trim_start();
    let rest = match trimmed.strip_prefix(['•', '◦', '▪', '‣', '·', '*', '-']) {
        Some(rest) => rest,
        None => {
            let digits = trimmed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(trimmed.len());
            if digits == 0 || digits > 3 {
                return line;
            }
            match trimmed[digits..].strip_prefix(['.', ')']) {
                Some(rest) => rest,
                None => return line,
            }
        }
    };
    if rest.starts_with(' ') && !rest.trim().is_empty() {
        rest
    } else {
        line
    }
}

/// Drops `<@U024BE7LH>` mentions at the start (a thread reply that mentions
/// the bot).
pub(super) fn strip_leading_mentions(text: &str) -> &str {
    let mut rest = text.trim_start();
    while rest.starts_with("<@") {
        match rest.find('>') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    rest
}
