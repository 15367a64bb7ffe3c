//! Topic and pattern syntax: validation of published topics, parsing of
//! subscription patterns, and matching a pattern against a topic.

use std::fmt::{self, Write as _};
use std::sync::Arc;

/// Most tokens a topic or pattern may have.
pub const MAX_TOKENS: usize = 256;
/// Most bytes (UTF-8) a topic or pattern may have.
pub const MAX_BYTES: usize = 4096;

/// Longest prefix of the offending string kept in a [`TopicError`], in chars.
const MAX_ERROR_INPUT_CHARS: usize = 64;

/// Whether the string was meant as a topic (publish) or a pattern (subscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A concrete topic, as given to publish.
    Topic,
    /// A subscription pattern, which may hold wildcards.
    Pattern,
}

/// Why a topic or pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicReason {
    /// The string is empty.
    Empty,
    /// The token at `index` (0-based) is empty, e.g. `a..b` or a trailing dot.
    EmptyToken {
        /// 0-based token index.
        index: usize,
    },
    /// The token at `index` holds a whitespace character.
    Whitespace {
        /// 0-based token index.
        index: usize,
    },
    /// The token at `index` holds a control character (Unicode `Cc`: U+0000..U+001F and
    /// U+007F..U+009F).
    ControlCharacter {
        /// 0-based token index.
        index: usize,
    },
    /// The token at `index` of a topic is the wildcard `*` or `>`.
    WildcardInTopic {
        /// 0-based token index.
        index: usize,
    },
    /// The token at `index` mixes `*` or `>` with other characters.
    MixedWildcard {
        /// 0-based token index.
        index: usize,
    },
    /// The `>` at token `index` of a pattern is not the last token.
    FullWildcardNotLast {
        /// 0-based token index.
        index: usize,
    },
    /// The string has `count` tokens, more than [`MAX_TOKENS`].
    TooManyTokens {
        /// Number of tokens in the string.
        count: usize,
    },
    /// The string is `bytes` long, more than [`MAX_BYTES`].
    TooLong {
        /// Length of the string in bytes.
        bytes: usize,
    },
}

/// A rejected topic or pattern, with a short copy of the input for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    /// Whether a topic or a pattern was rejected.
    pub subject: Subject,
    /// The first 64 chars of the rejected string, with "…" appended when cut.
    pub input: String,
    /// What is wrong with it.
    pub reason: TopicReason,
}

impl TopicError {
    fn new(subject: Subject, input: &str, reason: TopicReason) -> Self {
        TopicError {
            subject,
            input: shorten(input),
            reason,
        }
    }
}

/// Keeps error values small when JavaScript hands over a huge string.
fn shorten(input: &str) -> String {
    match input.char_indices().nth(MAX_ERROR_INPUT_CHARS) {
        Some((cut, _)) => {
            let mut short = String::with_capacity(cut + '…'.len_utf8());
            short.push_str(&input[..cut]);
            short.push('…');
            short
        }
        None => input.to_owned(),
    }
}

/// Displays a topic (or any input) quoted as error messages quote it.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, self.0)
    }
}

/// Writes `input` in double quotes with the escapes of Rust's `{:?}` for quotes, backslashes
/// and control characters, and `\u{…}` for the invisible characters that could disguise a topic
/// (zero-width, bidirectional and line-separating ones), so a message never carries raw control
/// bytes into logs nor reads as another topic. (Written out rather than through `Debug`, whose
/// tables of printable characters cost the WebAssembly module about 3 KB.)
fn write_quoted(f: &mut fmt::Formatter<'_>, input: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in input.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '\n' => f.write_str("\\n")?,
            '\0' => f.write_str("\\0")?,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}' => write!(f, "\\u{{{:x}}}", c as u32)?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.subject {
            Subject::Topic => "topic",
            Subject::Pattern => "pattern",
        };
        match &self.reason {
            TopicReason::Empty => return write!(f, "invalid {kind}: empty string"),
            TopicReason::TooLong { bytes } => {
                return write!(
                    f,
                    "invalid {kind}: {bytes} bytes is over the {MAX_BYTES}-byte limit"
                )
            }
            _ => {}
        }
        write!(f, "invalid {kind} ")?;
        write_quoted(f, &self.input)?;
        f.write_str(": ")?;
        match &self.reason {
            TopicReason::EmptyToken { index } => write!(f, "token {} is empty", index + 1),
            TopicReason::Whitespace { index } => {
                write!(f, "token {} contains whitespace", index + 1)
            }
            TopicReason::ControlCharacter { index } => {
                write!(f, "token {} contains a control character", index + 1)
            }
            TopicReason::WildcardInTopic { index } => match self.input.split('.').nth(*index) {
                Some(wildcard @ ("*" | ">")) => write!(
                    f,
                    "wildcard '{wildcard}' is not allowed in a {kind} (token {})",
                    index + 1
                ),
                _ => write!(
                    f,
                    "wildcards are not allowed in a {kind} (token {})",
                    index + 1
                ),
            },
            TopicReason::MixedWildcard { index } => {
                write!(f, "'*' and '>' must be whole tokens (token {})", index + 1)
            }
            TopicReason::FullWildcardNotLast { index } => {
                write!(f, "'>' must be the last token (token {})", index + 1)
            }
            TopicReason::TooManyTokens { count } => {
                write!(f, "{count} tokens is over the {MAX_TOKENS}-token limit")
            }
            TopicReason::Empty | TopicReason::TooLong { .. } => Ok(()),
        }
    }
}

impl std::error::Error for TopicError {}

/// Checks a topic given to publish.
///
/// One pass over the bytes with no allocation unless the topic is invalid.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    scan(topic, Subject::Topic)
}

/// Whether the topic is reserved for the system: its first token starts with '$'.
pub fn is_reserved(topic: &str) -> bool {
    topic.starts_with('$')
}

/// Shared validator for topics and patterns; the only difference between
/// the two is what a whole-token wildcard means.
fn scan(input: &str, subject: Subject) -> Result<(), TopicError> {
    if plain_literal(input.as_bytes()) {
        return Ok(());
    }
    scan_fully(input, subject)
}

/// [`scan`] byte by byte, naming the first problem.
fn scan_fully(input: &str, subject: Subject) -> Result<(), TopicError> {
    let fail = |reason| Err(TopicError::new(subject, input, reason));
    let bytes = input.as_bytes();
    if bytes.is_empty() {
        return fail(TopicReason::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return fail(TopicReason::TooLong { bytes: bytes.len() });
    }

    let mut token = TokenScan::default();
    let mut pos = 0;
    while let Some(&byte) = bytes.get(pos) {
        let width = match byte {
            b'.' => {
                if let Err(reason) = token.finish(false, subject) {
                    return fail(reason);
                }
                token = TokenScan {
                    index: token.index + 1,
                    ..TokenScan::default()
                };
                pos += 1;
                continue;
            }
            b'*' | b'>' => {
                token.wildcard.get_or_insert(byte);
                1
            }
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' => {
                return fail(TopicReason::Whitespace { index: token.index })
            }
            0x00..=0x1F | 0x7F => {
                return fail(TopicReason::ControlCharacter { index: token.index })
            }
            0x20..=0x7E => 1,
            _ => match input.get(pos..).and_then(|rest| rest.chars().next()) {
                Some(c) if c.is_whitespace() => {
                    return fail(TopicReason::Whitespace { index: token.index })
                }
                // C1 controls (U+0080..U+009F), as DEL and C0 above: Unicode's `Cc`.
                Some(c) if c.is_control() => {
                    return fail(TopicReason::ControlCharacter { index: token.index })
                }
                Some(c) => c.len_utf8(),
                // Unreachable for a &str; ending the scan beats looping forever.
                None => bytes.len() - pos,
            },
        };
        token.len += width;
        pos += width;
    }
    if let Err(reason) = token.finish(true, subject) {
        return fail(reason);
    }

    let count = token.index + 1;
    if count > MAX_TOKENS {
        return fail(TopicReason::TooManyTokens { count });
    }
    Ok(())
}

/// The usual string, checked in one tight pass: 1 to [`MAX_BYTES`] bytes of printable ASCII
/// other than space, `*` and `>`, in at most [`MAX_TOKENS`] non-empty dot-separated tokens. Valid
/// as a topic and as a pattern; `false` sends anything else through [`scan`]'s full checks (which
/// name the problem), so this only answers sooner, never differently.
fn plain_literal(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > MAX_BYTES {
        return false;
    }
    // No branch per byte: a leading dot, two dots in a row and any byte outside the class set
    // a bit of `bad`; `prev` ends as the last byte's class (a trailing dot is an empty token).
    let mut prev = DOT;
    let mut bad = 0;
    for &byte in bytes {
        let class = PLAIN_CLASS[usize::from(byte)];
        bad |= (class & OTHER) | (class & prev);
        prev = class;
    }
    // Non-empty tokens take two bytes each but the last: up to 2 * MAX_TOKENS bytes hold at
    // most MAX_TOKENS tokens; only a longer string needs its dots counted.
    bad == 0
        && prev == 0
        && (bytes.len() <= 2 * MAX_TOKENS
            || bytes.iter().filter(|&&b| b == b'.').count() < MAX_TOKENS)
}

/// [`plain_literal`]'s byte classes: 0 for a token's byte, [`DOT`], or [`OTHER`] for a byte the
/// full scan must look at (space, controls, non-ASCII, `*`, `>`).
const DOT: u8 = 1;
const OTHER: u8 = 2;
static PLAIN_CLASS: [u8; 256] = {
    let mut classes = [OTHER; 256];
    let mut byte = 0x21;
    while byte <= 0x7E {
        classes[byte] = 0;
        byte += 1;
    }
    classes[b'.' as usize] = DOT;
    classes[b'*' as usize] = OTHER;
    classes[b'>' as usize] = OTHER;
    classes
};

/// State of the token being scanned.
#[derive(Default)]
struct TokenScan {
    index: usize,
    len: usize,
    /// First '*' or '>' byte seen in the token.
    wildcard: Option<u8>,
}

impl TokenScan {
    fn finish(&self, is_last: bool, subject: Subject) -> Result<(), TopicReason> {
        let index = self.index;
        if self.len == 0 {
            return Err(TopicReason::EmptyToken { index });
        }
        let Some(wildcard) = self.wildcard else {
            return Ok(());
        };
        // '*' and '>' are wildcards only as a whole one-byte token.
        if self.len > 1 {
            return Err(TopicReason::MixedWildcard { index });
        }
        match subject {
            Subject::Topic => Err(TopicReason::WildcardInTopic { index }),
            Subject::Pattern if wildcard == b'>' && !is_last => {
                Err(TopicReason::FullWildcardNotLast { index })
            }
            Subject::Pattern => Ok(()),
        }
    }
}

/// One token of a parsed [`Pattern`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternToken<'a> {
    /// Matches exactly this token.
    Literal(&'a str),
    /// `*`: matches any single token.
    Star,
    /// `>`: matches one or more trailing tokens.
    Rest,
}

/// A validated subscription pattern.
///
/// One shared string: cloning it (a subscription's router entry, a group's key) copies no
/// text, and its tokens are read from the text when walked instead of being stored apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    raw: Arc<str>,
}

/// The tokens of a [`Pattern`], in order (see [`Pattern::tokens`]).
#[derive(Debug, Clone)]
pub struct PatternTokens<'a> {
    /// What is left to split; `None` once the last token was handed out.
    rest: Option<&'a str>,
}

impl<'a> Iterator for PatternTokens<'a> {
    type Item = PatternToken<'a>;

    #[inline]
    fn next(&mut self) -> Option<PatternToken<'a>> {
        let rest = self.rest?;
        // Tokens are short: a plain scan beats a general substring search here.
        let token = match rest.as_bytes().iter().position(|&b| b == b'.') {
            Some(dot) => {
                let (token, after) = rest.split_at(dot);
                self.rest = after.get(1..);
                token
            }
            None => {
                self.rest = None;
                rest
            }
        };
        Some(match token.as_bytes() {
            b"*" => PatternToken::Star,
            b">" => PatternToken::Rest,
            _ => PatternToken::Literal(token),
        })
    }
}

impl Pattern {
    /// Validates and splits a pattern given to subscribe.
    pub fn parse(pattern: &str) -> Result<Pattern, TopicError> {
        scan(pattern, Subject::Pattern)?;
        Ok(Pattern {
            raw: pattern.into(),
        })
    }

    /// The pattern as it was written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `other` is this very pattern value or a clone of it (not merely equal text): a
    /// pointer comparison.
    pub fn is_same(&self, other: &Pattern) -> bool {
        Arc::ptr_eq(&self.raw, &other.raw)
    }

    /// The pattern's tokens, in order.
    pub fn tokens(&self) -> PatternTokens<'_> {
        PatternTokens {
            rest: Some(&self.raw),
        }
    }

    /// Whether the pattern holds no wildcard, so it matches exactly one topic.
    pub fn is_literal(&self) -> bool {
        // A valid pattern has `*` and `>` only as whole tokens. No early exit: the loop is a few
        // instructions a byte (with SIMD where there is some) instead of two branches.
        !self
            .raw
            .bytes()
            .fold(false, |wild, b| wild | (b == b'*') | (b == b'>'))
    }

    /// Matches a topic that has already been validated. Level by level, never by string prefix.
    pub fn matches(&self, topic: &str) -> bool {
        let starts_with_wildcard = !matches!(self.tokens().next(), Some(PatternToken::Literal(_)));
        if starts_with_wildcard && is_reserved(topic) {
            return false;
        }
        let mut levels = topic.split('.');
        for token in self.tokens() {
            match token {
                PatternToken::Rest => return levels.next().is_some(),
                PatternToken::Star => {
                    if levels.next().is_none() {
                        return false;
                    }
                }
                PatternToken::Literal(literal) => {
                    if levels.next() != Some(literal) {
                        return false;
                    }
                }
            }
        }
        levels.next().is_none()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn topic_reason(topic: &str) -> TopicReason {
        validate_topic(topic).unwrap_err().reason
    }

    fn pattern_reason(pattern: &str) -> TopicReason {
        Pattern::parse(pattern).unwrap_err().reason
    }

    /// The quoted input of an error message, as `write_quoted` writes it.
    fn quoted(input: &str) -> String {
        struct Q<'a>(&'a str);
        impl fmt::Display for Q<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_quoted(f, self.0)
            }
        }
        Q(input).to_string()
    }

    #[test]
    fn inputs_are_quoted_as_debug_quotes_them_and_invisible_characters_are_escaped() {
        // The same text as `{:?}` for quotes, backslashes, control characters (C0, DEL, C1)
        // and visible characters.
        for input in [
            "orders.created",
            "a\"b\\c",
            "tab\there\r\n\0",
            "\u{1}\u{1f}\u{7f}\u{80}\u{9f}",
            "caf\u{e9}.\u{65e5}\u{672c}.\u{1f600}",
        ] {
            assert_eq!(quoted(input), format!("{input:?}"), "{input:?}");
        }
        // Characters that would make a topic look like another in a log are escaped.
        assert_eq!(
            quoted("a\u{200b}.b\u{202e}\u{2028}\u{2066}\u{feff}"),
            "\"a\\u{200b}.b\\u{202e}\\u{2028}\\u{2066}\\u{feff}\""
        );
        let e = validate_topic("a.b\u{7}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid topic \"a.b\\u{7}\": token 2 contains a control character"
        );
    }

    fn topic_message(topic: &str) -> String {
        validate_topic(topic).unwrap_err().to_string()
    }

    fn pattern_message(pattern: &str) -> String {
        Pattern::parse(pattern).unwrap_err().to_string()
    }

    fn dotted(count: usize) -> String {
        vec!["a"; count].join(".")
    }

    #[test]
    fn the_quick_check_answers_as_the_full_scan_does() {
        // `scan` takes the one-pass check first: it must never accept what the full scan
        // refuses, and it must take the usual topics and literal patterns.
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/topics.json")).unwrap();
        let mut inputs: Vec<String> = Vec::new();
        for key in ["invalid_patterns", "invalid_topics"] {
            for v in vectors[key].as_array().unwrap() {
                inputs.push(v.as_str().unwrap().to_string());
            }
        }
        for row in vectors["match"].as_array().unwrap() {
            inputs.push(row[0].as_str().unwrap().to_string());
            inputs.push(row[1].as_str().unwrap().to_string());
        }
        let long = "a".repeat(MAX_BYTES);
        for extra in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "a b",
            "a\tb",
            "a\u{7f}",
            "a\u{80}",
            "caf\u{e9}.x",
            "*",
            ">",
            "a.*",
            "a.>",
            "a*",
            "x>",
            "$sys.x",
            "~!\"#%&'()+,-/:;<=?@[\\]^_`{|}",
            "orders.42.created",
            "..",
            "a..",
            "a.b.",
            "!.~",
            "a.\u{7f}",
            " .a",
        ] {
            inputs.push(extra.to_string());
        }
        // Past 2 * MAX_TOKENS bytes the quick check counts dots.
        let wide = |count: usize| vec!["ab"; count].join(".");
        inputs.push(wide(MAX_TOKENS));
        inputs.push(wide(MAX_TOKENS + 1));
        inputs.push(long.clone());
        inputs.push(format!("{long}a"));
        inputs.push(dotted(MAX_TOKENS));
        inputs.push(dotted(MAX_TOKENS + 1));
        for input in &inputs {
            for subject in [Subject::Topic, Subject::Pattern] {
                assert_eq!(
                    scan(input, subject),
                    scan_fully(input, subject),
                    "{input:?} as {subject:?}"
                );
            }
            if plain_literal(input.as_bytes()) {
                assert!(scan_fully(input, Subject::Topic).is_ok(), "{input:?}");
                assert!(scan_fully(input, Subject::Pattern).is_ok(), "{input:?}");
            }
        }
        for usual in [
            "orders.42.created",
            "a",
            "$sys.x",
            "!.~",
            &dotted(MAX_TOKENS),
            &wide(MAX_TOKENS),
            &long,
        ] {
            assert!(plain_literal(usual.as_bytes()), "{usual:?}");
        }
        for unusual in [
            "",
            "a..b",
            "a.*",
            "a.>",
            "a b",
            "caf\u{e9}",
            ".a",
            "a.",
            "..",
            "a.\u{7f}",
            &dotted(MAX_TOKENS + 1),
            &wide(MAX_TOKENS + 1),
        ] {
            assert!(!plain_literal(unusual.as_bytes()), "{unusual:?}");
        }
    }

    #[test]
    fn conformance_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/topics.json")).unwrap();

        let rows = vectors["match"].as_array().unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            let pattern = row[0].as_str().unwrap();
            let topic = row[1].as_str().unwrap();
            let expected = row[2].as_bool().unwrap();
            validate_topic(topic).unwrap_or_else(|e| panic!("{topic:?} rejected: {e}"));
            let parsed =
                Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?} rejected: {e}"));
            assert_eq!(parsed.matches(topic), expected, "{pattern} vs {topic}");
        }

        let invalid_patterns = vectors["invalid_patterns"].as_array().unwrap();
        assert!(!invalid_patterns.is_empty());
        for pattern in invalid_patterns {
            let pattern = pattern.as_str().unwrap();
            assert!(Pattern::parse(pattern).is_err(), "{pattern:?} accepted");
        }

        let invalid_topics = vectors["invalid_topics"].as_array().unwrap();
        assert!(!invalid_topics.is_empty());
        for topic in invalid_topics {
            let topic = topic.as_str().unwrap();
            assert!(validate_topic(topic).is_err(), "{topic:?} accepted");
        }
    }

    #[test]
    fn accepts_plain_and_unicode_topics() {
        for topic in [
            "a",
            "a.b.c",
            "$errors",
            "ü.straße",
            "日本.東京",
            "a-b_c.1",
            "a$b",
        ] {
            assert_eq!(validate_topic(topic), Ok(()), "{topic:?}");
        }
    }

    #[test]
    fn empty_string() {
        assert_eq!(topic_reason(""), TopicReason::Empty);
        assert_eq!(pattern_reason(""), TopicReason::Empty);
        assert_eq!(topic_message(""), "invalid topic: empty string");
        assert_eq!(pattern_message(""), "invalid pattern: empty string");
    }

    #[test]
    fn empty_tokens() {
        assert_eq!(topic_reason("a..b"), TopicReason::EmptyToken { index: 1 });
        assert_eq!(topic_reason(".a"), TopicReason::EmptyToken { index: 0 });
        assert_eq!(topic_reason("a."), TopicReason::EmptyToken { index: 1 });
        assert_eq!(pattern_reason("."), TopicReason::EmptyToken { index: 0 });
        assert_eq!(
            topic_message("a..b"),
            r#"invalid topic "a..b": token 2 is empty"#
        );
    }

    #[test]
    fn whitespace_ascii_and_unicode() {
        assert_eq!(topic_reason("a b"), TopicReason::Whitespace { index: 0 });
        assert_eq!(topic_reason("a.\tb"), TopicReason::Whitespace { index: 1 });
        assert_eq!(pattern_reason(" a"), TopicReason::Whitespace { index: 0 });
        for space in ['\u{00A0}', '\u{3000}', '\u{2028}', '\u{0085}', '\u{1680}'] {
            let topic = format!("a.b{space}c");
            assert_eq!(topic_reason(&topic), TopicReason::Whitespace { index: 1 });
            assert_eq!(pattern_reason(&topic), TopicReason::Whitespace { index: 1 });
        }
        assert_eq!(
            topic_message("a b"),
            r#"invalid topic "a b": token 1 contains whitespace"#
        );
    }

    #[test]
    fn control_characters_are_rejected_and_escaped() {
        for control in [
            '\u{0}', '\u{1}', '\u{1B}', '\u{1F}', '\u{7F}', '\u{80}', '\u{9B}', '\u{9F}',
        ] {
            let topic = format!("x.a{control}b");
            assert_eq!(
                topic_reason(&topic),
                TopicReason::ControlCharacter { index: 1 }
            );
            assert_eq!(
                pattern_reason(&topic),
                TopicReason::ControlCharacter { index: 1 }
            );
            let message = topic_message(&topic);
            assert!(!message.chars().any(char::is_control), "{message:?}");
        }
        assert_eq!(
            topic_message("a\u{0}b"),
            r#"invalid topic "a\0b": token 1 contains a control character"#
        );
        assert!(!topic_message("a\nb").contains('\n'));
    }

    #[test]
    fn wildcards_in_topics() {
        assert_eq!(topic_reason("*"), TopicReason::WildcardInTopic { index: 0 });
        assert_eq!(
            topic_reason("a.>"),
            TopicReason::WildcardInTopic { index: 1 }
        );
        assert_eq!(
            topic_message("a.*"),
            r#"invalid topic "a.*": wildcard '*' is not allowed in a topic (token 2)"#
        );
        assert_eq!(
            topic_message("a.>.c"),
            r#"invalid topic "a.>.c": wildcard '>' is not allowed in a topic (token 2)"#
        );
    }

    #[test]
    fn mixed_wildcards() {
        for (input, index) in [
            ("a*", 0),
            ("*a", 0),
            ("a.>b", 1),
            ("a.b>", 1),
            ("**", 0),
            ("*>", 0),
        ] {
            assert_eq!(
                topic_reason(input),
                TopicReason::MixedWildcard { index },
                "{input}"
            );
            assert_eq!(
                pattern_reason(input),
                TopicReason::MixedWildcard { index },
                "{input}"
            );
        }
        assert_eq!(
            pattern_message("a.b*"),
            r#"invalid pattern "a.b*": '*' and '>' must be whole tokens (token 2)"#
        );
    }

    #[test]
    fn full_wildcard_must_be_last() {
        assert_eq!(
            pattern_reason("a.>.b"),
            TopicReason::FullWildcardNotLast { index: 1 }
        );
        assert_eq!(
            pattern_reason(">.a"),
            TopicReason::FullWildcardNotLast { index: 0 }
        );
        assert_eq!(
            pattern_message("a.>.b"),
            r#"invalid pattern "a.>.b": '>' must be the last token (token 2)"#
        );
        assert!(Pattern::parse("a.*.>").is_ok());
    }

    #[test]
    fn token_limit() {
        assert_eq!(validate_topic(&dotted(MAX_TOKENS)), Ok(()));
        assert!(Pattern::parse(&dotted(MAX_TOKENS)).is_ok());
        assert_eq!(
            topic_reason(&dotted(MAX_TOKENS + 1)),
            TopicReason::TooManyTokens { count: 257 }
        );
        assert_eq!(
            pattern_reason(&dotted(MAX_TOKENS + 1)),
            TopicReason::TooManyTokens { count: 257 }
        );
        assert!(topic_message(&dotted(300)).ends_with(": 300 tokens is over the 256-token limit"));
    }

    #[test]
    fn byte_limit() {
        let exact = "a".repeat(MAX_BYTES);
        assert_eq!(validate_topic(&exact), Ok(()));
        assert!(Pattern::parse(&exact).is_ok());
        let over = "a".repeat(MAX_BYTES + 1);
        assert_eq!(topic_reason(&over), TopicReason::TooLong { bytes: 4097 });
        assert_eq!(pattern_reason(&over), TopicReason::TooLong { bytes: 4097 });
        assert_eq!(
            topic_message(&"a".repeat(5000)),
            "invalid topic: 5000 bytes is over the 4096-byte limit"
        );
        // Multi-byte characters count by bytes: 1366 × 3 bytes = 4098.
        assert_eq!(
            topic_reason(&"日".repeat(1366)),
            TopicReason::TooLong { bytes: 4098 }
        );
    }

    #[test]
    fn error_input_is_cut_at_64_chars_on_a_char_boundary() {
        let long = format!("{}..b", "ü".repeat(100));
        let error = validate_topic(&long).unwrap_err();
        assert_eq!(error.input, format!("{}…", "ü".repeat(64)));
        assert_eq!(error.reason, TopicReason::EmptyToken { index: 1 });

        let exactly_64 = format!("{}..", "日".repeat(62));
        assert_eq!(exactly_64.chars().count(), 64);
        assert_eq!(validate_topic(&exactly_64).unwrap_err().input, exactly_64);
    }

    #[test]
    fn reserved_topics() {
        assert!(is_reserved("$errors"));
        assert!(is_reserved("$dead.jobs"));
        assert!(!is_reserved("a.$b"));
        assert!(!is_reserved("errors"));
    }

    #[test]
    fn pattern_accessors() {
        let pattern = Pattern::parse("a.*.>").unwrap();
        assert_eq!(pattern.as_str(), "a.*.>");
        assert_eq!(
            pattern.tokens().collect::<Vec<_>>(),
            [
                PatternToken::Literal("a"),
                PatternToken::Star,
                PatternToken::Rest
            ]
        );
        assert!(!pattern.is_literal());
        assert!(Pattern::parse("a.b").unwrap().is_literal());
        assert!(!Pattern::parse(">").unwrap().is_literal());
        assert!(!Pattern::parse("a.b.*").unwrap().is_literal());
        assert!(Pattern::parse("$errors").unwrap().is_literal());
        let tokens = |p: &str| -> Vec<String> {
            Pattern::parse(p)
                .unwrap()
                .tokens()
                .map(|t| match t {
                    PatternToken::Literal(l) => format!("'{l}'"),
                    PatternToken::Star => "*".into(),
                    PatternToken::Rest => ">".into(),
                })
                .collect()
        };
        assert_eq!(tokens("abc"), ["'abc'"]);
        assert_eq!(tokens("x.é.*.>"), ["'x'", "'é'", "*", ">"]);
    }

    #[test]
    fn matching_is_level_by_level() {
        let pattern = Pattern::parse("a.b").unwrap();
        assert!(!pattern.matches("a.bc"));
        assert!(!pattern.matches("a.b.c"));
        assert!(!Pattern::parse("a.>").unwrap().matches("ab.c"));
        assert!(Pattern::parse("$x.*").unwrap().matches("$x.y"));
        assert!(!Pattern::parse("*.y").unwrap().matches("$x.y"));
    }
}
