//! `:shortcode:` emoji, unicode emoji and ASCII emoticons.
//!
//! Unicode emoji are recognised by the grammar's code ranges (emoticons, pictographs, transport,
//! dingbats, keycaps, flags, tag sequences, ZWJ sequences with skin tones), on UTF-16 units.

use std::ops::RangeInclusive;

use super::ast::{Inline, Text, utf16};
use super::chars::{is_ascii, is_digit, is_shortcode_char, is_space};
use super::parser::{Memo, Parser, Res};

/// Whether an emoticon starts with `c`: the parser asks at nearly every position, and most
/// characters start none of them, so the table is not searched for those.
fn starts_an_emoticon(c: u16) -> bool {
    const FIRST: [bool; 128] = {
        let mut first = [false; 128];
        let mut i = 0;
        while i < EMOTICONS.len() {
            // Every emoticon starts with an ASCII character (checked here, at compile time).
            first[EMOTICONS[i].0.as_bytes()[0] as usize] = true;
            i += 1;
        }
        first
    };
    FIRST.get(usize::from(c)).copied().unwrap_or(false)
}

/// Emoticons in the grammar's order of preference, with their emoji names.
const EMOTICONS: &[(&str, &str)] = &[
    (":-D", "smiley"),
    (":D", "smiley"),
    (":')", "joy"),
    (":'-)", "joy"),
    (":-)", "slight_smile"),
    (":)", "slight_smile"),
    (":]", "slight_smile"),
    (":-*", "kissing_heart"),
    (":*", "kissing_heart"),
    (":^*", "kissing_heart"),
    (":-P", "stuck_out_tongue"),
    (":P", "stuck_out_tongue"),
    (":-\u{de}", "stuck_out_tongue"),
    (":\u{de}", "stuck_out_tongue"),
    (":-b", "stuck_out_tongue"),
    (":b", "stuck_out_tongue"),
    (":-(", "disappointed"),
    (":(", "disappointed"),
    (":-[", "disappointed"),
    (":[", "disappointed"),
    (":-/", "confused"),
    (":-.", "confused"),
    (":/", "confused"),
    (":\\", "confused"),
    (":L", "confused"),
    (":'(", "cry"),
    ("':-(", "cry"),
    (":@", "angry"),
    (":$", "flushed"),
    (":-X", "no_mouth"),
    (":X", "no_mouth"),
    (":-#", "no_mouth"),
    (":#", "no_mouth"),
    (":-O", "open_mouth"),
    (":O", "open_mouth"),
    (";)", "wink"),
    (";-)", "wink"),
    (";-]", "wink"),
    (";]", "wink"),
    (";D", "wink"),
    (";^)", "wink"),
    (";(", "cry"),
    (";-(", "cry"),
    ("</3", "broken_heart"),
    ("<3", "heart"),
    (">:)", "laughing"),
    (">;)", "laughing"),
    (">:-)", "laughing"),
    (">=)", "laughing"),
    (">.<", "persevere"),
    (">:P", "stuck_out_tongue_winking_eye"),
    (">:\\", "confused"),
    (">;/", "confused"),
    (">:(", "angry"),
    (">:-(", "angry"),
    (">:[", "disappointed"),
    (">:O", "open_mouth"),
    ("=D", "smiley"),
    ("=]", "slight_smile"),
    ("=)", "slight_smile"),
    ("=*", "kissing_heart"),
    ("=P", "stuck_out_tongue"),
    ("=(", "disappointed"),
    ("=/", "confused"),
    ("=\\", "confused"),
    ("=L", "confused"),
    ("=$", "flushed"),
    ("=X", "no_mouth"),
    ("=#", "no_mouth"),
    ("D:", "fearful"),
    ("B-)", "sunglasses"),
    ("B)", "sunglasses"),
    ("B-D", "sunglasses"),
    ("8)", "sunglasses"),
    ("8-)", "sunglasses"),
    ("8-D", "sunglasses"),
    ("':)", "sweat_smile"),
    ("':-)", "sweat_smile"),
    ("'=)", "sweat_smile"),
    ("':D", "sweat_smile"),
    ("':-D", "sweat_smile"),
    ("'=D", "sweat_smile"),
    ("':(", "sweat"),
    ("':-(", "sweat"),
    ("'=(", "sweat"),
    ("O:-)", "innocent"),
    ("O:)", "innocent"),
    ("O;-)", "innocent"),
    ("O=)", "innocent"),
    ("O:-3", "innocent"),
    ("O:3", "innocent"),
    ("O_O", "open_mouth"),
    ("0:-3", "innocent"),
    ("0:3", "innocent"),
    ("0:-)", "innocent"),
    ("0:)", "innocent"),
    ("0;^)", "innocent"),
    ("0;-)", "innocent"),
    ("*-)", "wink"),
    ("*)", "wink"),
    ("*\\0/*", "person_gesturing_ok"),
    ("*\\O/*", "person_gesturing_ok"),
    ("X-P", "stuck_out_tongue_winking_eye"),
    ("X)", "dizzy_face"),
    ("X-)", "dizzy_face"),
    ("#-)", "dizzy_face"),
    ("#)", "dizzy_face"),
    ("%-)", "dizzy_face"),
    ("%)", "dizzy_face"),
    ("(y)", "thumbsup"),
    ("-___-", "expressionless"),
    ("-__-", "expressionless"),
    ("-_-", "expressionless"),
    ("\\0\\/", "person_gesturing_ok"),
    ("\\O\\/", "person_gesturing_ok"),
];

/// Variation selectors that may follow an emoji.
const VARIATION: RangeInclusive<u16> = 0xFE00..=0xFE0F;

impl Parser<'_> {
    /// `Emoji = ":" name ":" / UnicodeEmoji`
    pub(super) fn emoji(&self, p: usize) -> Res<Inline> {
        if let Some(q) = self.lit(p, ":")
            && let Some(r) = self.run1(q, is_shortcode_char)
            && let Some(s) = self.lit(r, ":")
        {
            let name = self.slice(q, r).to_vec();
            return Some((
                Inline::Emoji {
                    value: name.clone(),
                    short_code: name,
                },
                s,
            ));
        }
        let q = self.unicode_emoji(p)?;
        Some((Inline::UnicodeEmoji(self.slice(p, q).to_vec()), q))
    }

    /// An emoticon, when enabled.
    pub(super) fn emoticon(&self, p: usize) -> Res<Inline> {
        if !self.opts.emoticons || !self.test(p, starts_an_emoticon) {
            return None;
        }
        EMOTICONS.iter().find_map(|&(text, name)| {
            let q = self.lit(p, text)?;
            let short_code: Text = utf16(name);
            Some((
                Inline::Emoji {
                    value: utf16(text),
                    short_code,
                },
                q,
            ))
        })
    }

    /// An emoticon followed by a blank, a `*`, the end, or more markup (`a:)b` is no emoticon).
    pub(super) fn inline_emoticon(&mut self, p: usize) -> Res<Inline> {
        let (emoticon, q) = self.emoticon(p)?;
        self.prewarm_emoticon_run(q, Memo::InlineItem);
        let next_ok = self.emoticon_neighbour(q) || self.inline_item(q).is_some();
        next_ok.then_some((emoticon, q))
    }

    /// Before an emoticon looks ahead at `q`, parses the run of emoticons glued after it from
    /// its far end backwards: each look-ahead then finds the next item remembered, instead of
    /// recursing once per emoticon of the run (which is how the original overflows its stack).
    pub(super) fn prewarm_emoticon_run(&mut self, q: usize, kind: Memo) {
        let mut run = Vec::new();
        let mut x = q;
        while !self.is_memoized(kind, x)
            && let Some((_, r)) = self.emoticon(x)
        {
            run.push(x);
            if self.emoticon_neighbour(r) {
                break;
            }
            x = r;
        }
        if run.len() < 2 {
            return;
        }
        for &pos in run.iter().rev() {
            let _ = match kind {
                Memo::InlineItem => self.inline_item(pos),
                Memo::BoldItem => self.bold_item(pos),
                Memo::ItalicItem => self.italic_item(pos),
                _ => None,
            };
        }
    }

    /// `EmoticonNeighbor = EndOfLine / Whitespace / "*" / !.`
    pub(super) fn emoticon_neighbour(&self, p: usize) -> bool {
        self.at_end(p)
            || self.eol(p).is_some()
            || self.test(p, |c| is_space(c) || c == u16::from(b'*'))
    }

    /// The `-` of `-_-x`, so that `_-x…` can still become italic.
    pub(super) fn plain_dash_before_emoticon(&self, p: usize) -> Res<Inline> {
        let dash = self.lit(p, "-")?;
        let ahead = self.lit(dash, "_-")?;
        self.at(ahead)?;
        Some((Inline::plain_str("-"), dash))
    }

    /// The end of a unicode emoji starting at `p`.
    fn unicode_emoji(&self, p: usize) -> Option<usize> {
        self.tag_sequence(p)
            .or_else(|| self.keycap(p))
            .or_else(|| self.zwj_sequence(p))
            .or_else(|| self.smileys(p))
            .or_else(|| self.transport(p))
            .or_else(|| self.bmp(p, 0x2300..=0x23FF).map(|q| self.variation(q)))
            .or_else(|| self.misc_symbols(p))
            .or_else(|| self.dingbats(p))
            .or_else(|| self.geometric(p))
            .or_else(|| {
                let lows = |c: u16| {
                    matches!(c, 0xDCCF | 0xDD8E | 0xDD91..=0xDD9A | 0xDE01 | 0xDE32..=0xDE3A | 0xDE50..=0xDE51)
                };
                self.pair(p, 0xD83C, lows).map(|q| self.variation(q))
            })
            .or_else(|| self.text_style_symbol(p))
            .or_else(|| self.flag(p))
    }

    /// A black flag followed by tag characters and a cancel tag (subdivision flags).
    fn tag_sequence(&self, p: usize) -> Option<usize> {
        let mut q = self.pair(p, 0xD83C, |c| c == 0xDFF4)?;
        let start = q;
        while let Some(r) = self.pair(q, 0xDB40, |c| (0xDC20..=0xDC7E).contains(&c)) {
            q = r;
        }
        if q == start {
            return None;
        }
        self.pair(q, 0xDB40, |c| c == 0xDC7F)
    }

    /// `1️⃣`, `#⃣`…
    fn keycap(&self, p: usize) -> Option<usize> {
        let q = self.one(p, |c| is_digit(c) || is_ascii(c, b"#*"))?;
        let q = self.one(q, |c| c == 0xFE0F).unwrap_or(q);
        self.one(q, |c| c == 0x20E3)
    }

    /// `(Component ZWJ)* Component`
    fn zwj_sequence(&self, p: usize) -> Option<usize> {
        let mut q = p;
        while let Some(r) = self.component(q).and_then(|r| self.one(r, |c| c == 0x200D)) {
            q = r;
        }
        self.component(q)
    }

    /// One emoji of a ZWJ sequence, with an optional skin tone.
    fn component(&self, p: usize) -> Option<usize> {
        let q = self
            .pair(p, 0xD83E, |c| (0xDD00..=0xDFFF).contains(&c))
            .or_else(|| {
                self.pair(p, 0xD83C, |c| (0xDF00..=0xDFFF).contains(&c))
                    .map(|q| self.variation(q))
            })
            .or_else(|| {
                self.pair(p, 0xD83D, |c| (0xDC00..=0xDDFF).contains(&c))
                    .map(|q| self.variation(q))
            })
            .or_else(|| self.smileys(p))
            .or_else(|| self.transport(p))
            .or_else(|| self.dingbats(p))
            .or_else(|| self.misc_symbols(p))
            .or_else(|| self.bmp(p, 0x2194..=0x2195).map(|q| self.variation(q)))
            .or_else(|| self.geometric(p))?;
        Some(
            self.pair(q, 0xD83C, |c| (0xDFFB..=0xDFFF).contains(&c))
                .unwrap_or(q),
        )
    }

    fn smileys(&self, p: usize) -> Option<usize> {
        self.pair(p, 0xD83D, |c| (0xDE00..=0xDE4F).contains(&c))
            .map(|q| self.variation(q))
    }

    fn transport(&self, p: usize) -> Option<usize> {
        self.pair(p, 0xD83D, |c| (0xDE80..=0xDEFF).contains(&c))
            .map(|q| self.variation(q))
    }

    fn misc_symbols(&self, p: usize) -> Option<usize> {
        self.bmp(p, 0x2600..=0x26FF).map(|q| self.variation(q))
    }

    fn dingbats(&self, p: usize) -> Option<usize> {
        self.bmp(p, 0x2700..=0x27BF).map(|q| self.variation(q))
    }

    /// Large squares and coloured circles/squares.
    fn geometric(&self, p: usize) -> Option<usize> {
        self.bmp(p, 0x2B1B..=0x2B1C)
            .or_else(|| self.pair(p, 0xD83D, |c| (0xDFE0..=0xDFEB).contains(&c) || c == 0xDFF0))
            .map(|q| self.variation(q))
    }

    /// Symbols that are text unless followed by the emoji presentation selector.
    fn text_style_symbol(&self, p: usize) -> Option<usize> {
        let bmp = |c: u16| {
            matches!(
                c,
                0xA9 | 0xAE
                    | 0x203C
                    | 0x2049
                    | 0x2122
                    | 0x2139
                    | 0x2196..=0x2199
                    | 0x21A9..=0x21AA
                    | 0x24C2
                    | 0x25AA..=0x25AB
                    | 0x25B6
                    | 0x25C0
                    | 0x25FB..=0x25FE
                    | 0x2934..=0x2935
                    | 0x2B05..=0x2B07
                    | 0x2B50
                    | 0x2B55
                    | 0x3030
                    | 0x303D
                    | 0x3297
                    | 0x3299
            )
        };
        let astral = |c: u16| matches!(c, 0xDC04 | 0xDD70..=0xDD71 | 0xDD7E..=0xDD7F | 0xDE02 | 0xDE1A | 0xDE2F);
        let q = self.one(p, bmp).or_else(|| self.pair(p, 0xD83C, astral))?;
        self.one(q, |c| c == 0xFE0F)
    }

    /// Two regional indicators.
    fn flag(&self, p: usize) -> Option<usize> {
        let indicator = |c: u16| (0xDDE6..=0xDDFF).contains(&c);
        let q = self.pair(p, 0xD83C, indicator)?;
        self.pair(q, 0xD83C, indicator)
    }

    /// A surrogate pair with the given high half and a low half satisfying `low`.
    fn pair(&self, p: usize, high: u16, low: impl Fn(u16) -> bool) -> Option<usize> {
        (self.at(p) == Some(high)).then_some(())?;
        self.one(p + 1, low)
    }

    fn bmp(&self, p: usize, range: RangeInclusive<u16>) -> Option<usize> {
        self.one(p, |c| range.contains(&c))
    }

    /// An optional variation selector.
    fn variation(&self, p: usize) -> usize {
        self.one(p, |c| VARIATION.contains(&c)).unwrap_or(p)
    }
}
