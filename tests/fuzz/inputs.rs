//! Generators shared by the targets: the kinds of text people and Slack
//! send, near-valid ids, and JSON values of any shape.

use proptest::prelude::*;
use serde_json::Value;

/// Characters that change how nudged reads text: separators of both reply
/// forms, quotes, Slack's escapes and markup, dashes, full-width forms,
/// invisible joiners, emoji, line breaks of every kind and controls.
#[rustfmt::skip]
const TRICKY: &[&str] = &[
    ",", ";", "=", ":", "\n", "\r\n", "\r", " ", "  ", "\t", "-", "+", "?", "!", ".", "…", "*",
    "\"", "'", "`", "“", "”", "«", "»", "&", "&amp;", "&lt;", "&gt;", "<", ">", "<@U024BE7LH>",
    "<@", "<!here>", ":tada:", ":+1::skin-tone-2:", "::", ":x", "👍", "🎉", "\u{FE0F}",
    "\u{200B}", "\u{200D}", "\u{FEFF}", "\u{2060}", "–", "—", "\u{2212}", "\u{FF0D}",
    "\u{FF1D}", "\u{FF1A}", "\u{FF0C}", "\u{3001}", "\u{FF1B}", "\u{FF0B}", "\u{85}",
    "\u{2028}", "\u{2029}", "\u{0B}", "\u{0C}", "\u{0}", "\u{1B}", "\u{7F}", "\u{A0}",
    "\u{3000}", "•", "◦", "1.", "2)", "1234.", "é", "ß", "İ", "ﬁ", "\u{301}", "٣", "²",
    "\u{10FFFF}", "𝟘",
];

/// One piece of text that is likely to matter to a parser.
pub fn tricky() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(TRICKY).prop_map(str::to_owned)
}

/// Text of any Unicode, weighted towards [`TRICKY`] pieces and plain
/// words, up to about `max` pieces long.
pub fn slack_text(max: usize) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(
        prop_oneof![
            3 => tricky(),
            2 => "[a-zA-Z0-9]{1,8}",
            1 => any::<char>().prop_map(String::from),
        ],
        0..=max,
    )
    .prop_map(|pieces| pieces.concat())
}

/// A chat user id: usually a valid one (`U…`), sometimes one a store
/// would refuse (empty, too long, a space, non-ASCII).
pub fn user_id() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => "U[0-9A-Z]{1,10}",
        1 => "[a-z0-9_.@-]{1,64}",
        1 => Just(String::new()),
        1 => "[A-Z0-9]{65,70}",
        1 => "U[0-9A-Z]{0,4}[ ,|é\u{0}\n][0-9A-Z]{0,4}",
    ]
}

/// A Slack timestamp (`1718000000.000100`), or something else in its place.
pub fn slack_ts() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => "[0-9]{10}\\.[0-9]{6}",
        1 => slack_text(4),
    ]
}

/// JSON of any shape, nested a few levels: what a mutated field may hold.
pub fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        slack_text(6).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field of a payload: absent (`None`), the expected string, or a value
/// of another type where Slack (or an attacker) put one.
pub fn field(
    expected: impl Strategy<Value = String> + Clone,
) -> impl Strategy<Value = Option<Value>> + Clone {
    prop_oneof![
        6 => expected.prop_map(|s| Some(Value::String(s))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ]
}

/// Byte-level damage to an encoded input: most inputs stay whole, the rest
/// are cut short, get a byte flipped or inserted, or are nested deeply.
#[derive(Debug, Clone)]
pub enum Damage {
    None,
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    /// Wrapped in this many `[`: deep nesting must be refused, not overflow
    /// the stack.
    Nest(usize),
}

pub fn damage() -> impl Strategy<Value = Damage> + Clone {
    prop_oneof![
        12 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, b)| Damage::Flip(i, b)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => (1usize..5000).prop_map(Damage::Nest),
    ]
}

impl Damage {
    /// Applies the damage to `bytes`.
    pub fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::None => {}
            Self::Truncate(at) if !bytes.is_empty() => bytes.truncate(at.index(bytes.len())),
            Self::Flip(at, bits) if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes[at] ^= bits;
            }
            Self::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
            Self::Nest(depth) => {
                let mut nested = vec![b'['; *depth];
                nested.extend(bytes);
                nested.extend(std::iter::repeat_n(b']', *depth));
                bytes = nested;
            }
            Self::Truncate(_) | Self::Flip(..) => {}
        }
        bytes
    }

    /// Whether the input is still the one encoded.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}
