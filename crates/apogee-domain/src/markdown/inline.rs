//! Inline rules: emphasis, code, mentions, spoilers, colours and the plain runs in between.
//!
//! `InlineItemPattern` dispatches on the first character like the compiled grammar does; when
//! the dispatched rules fail it still tries the general alternatives (e-mail, URL, emphasis,
//! mentions, emoji, plain text), in the grammar's order.

use serde_json::json;

use super::ast::{Inline, container, inlines_json, reduce, string};
use super::blocks::Katex;
use super::chars::{
    is_alpha, is_alpha_digit, is_alpha_numeric, is_any_text, is_ascii, is_hex, is_name_char,
    is_space,
};
use super::parser::{Memo, Parser, Res};

/// Which emphasis a rule is about; they share their delimiter logic.
#[derive(Clone, Copy)]
enum Emphasis {
    Bold,
    Italic,
    Strike,
}

impl Parser<'_> {
    /// `Inline = (InlineItemPattern / Any)+ EndOfLine?`, reduced.
    pub(super) fn inline(&mut self, p: usize) -> Res<Vec<Inline>> {
        let mut items = Vec::new();
        let mut q = p;
        loop {
            if let Some((item, r)) = self.inline_item(q) {
                items.push(item);
                q = r;
            } else if let Some(r) = self.any(q) {
                items.push(Inline::plain(self.slice(q, r)));
                q = r;
            } else {
                break;
            }
        }
        if items.is_empty() {
            return None;
        }
        Some((reduce(items), self.eol(q).unwrap_or(q)))
    }

    /// `InlineItemPattern`.
    pub(super) fn inline_item(&mut self, p: usize) -> Res<Inline> {
        self.memoized(Memo::InlineItem, p, |s| s.inline_item_unguarded(p))
    }

    fn inline_item_unguarded(&mut self, p: usize) -> Res<Inline> {
        let c = self.at(p)?;
        let dispatched = match c {
            0x20 | 0x09 => self.whitespace(p),
            0x5C => self
                .escaped_timestamp(p)
                .or_else(|| self.katex_inline(p))
                .or_else(|| self.escaped(p)),
            0x5B => self.maybe_references(p),
            0x3C => self
                .timestamp(p)
                .or_else(|| self.maybe_references(p))
                .or_else(|| self.inline_emoticon(p)),
            0x21 => self.image(p),
            0x7C => self.spoiler(p),
            0x40 => self.user_mention(p),
            0x60 => self.inline_code(p),
            0x2B => self.autolinked_phone(p),
            0x24 => self.katex_inline(p),
            0x3A => self.emoji(p).or_else(|| self.inline_emoticon(p)),
            0x2A => self
                .emphasis_with_whitespace(p)
                .or_else(|| self.emphasis(p))
                .or_else(|| self.inline_emoticon(p)),
            0x7E => self
                .emphasis_with_whitespace(p)
                .or_else(|| self.emphasis(p)),
            0x2D => self
                .plain_dash_before_emoticon(p)
                .or_else(|| self.inline_emoticon(p)),
            _ => None,
        };
        dispatched.or_else(|| self.inline_item_general(p))
    }

    /// The alternatives tried whatever the first character.
    fn inline_item_general(&mut self, p: usize) -> Res<Inline> {
        if self.looks_like_email(p)
            && let Some(r) = self.autolinked_email(p)
        {
            return Some(r);
        }
        if let Some(r) = self.underscore_domain(p) {
            return Some(r);
        }
        if self.looks_like_url(p)
            && let Some(r) = self.autolinked_url(p)
        {
            return Some(r);
        }
        self.emphasis_with_whitespace(p)
            .or_else(|| self.emphasis(p))
            .or_else(|| self.channel_mention(p))
            .or_else(|| self.emoji(p))
            .or_else(|| self.plain_dash_before_emoticon(p))
            .or_else(|| self.inline_emoticon(p))
            .or_else(|| self.color(p))
            .or_else(|| self.plain_run(p))
    }

    /// `[^ \t\r\n@]* "@"` ahead.
    fn looks_like_email(&mut self, p: usize) -> bool {
        let q = self.next_stop(p, false);
        self.is(q, b'@')
    }

    /// `[^ \t\r\n:./@]* ("://" / ".")` ahead.
    fn looks_like_url(&mut self, p: usize) -> bool {
        let q = self.next_stop(p, true);
        self.lit(q, "://").is_some() || self.is(q, b'.')
    }

    /// `_domain.tld` not followed by `_` is text (keeps `_example.com` from becoming a link).
    fn underscore_domain(&mut self, p: usize) -> Res<Inline> {
        if !self.is(p, b'_') {
            return None;
        }
        let q = self.domain_name(p + 1)?;
        let followed_ok = self.eol_or_end(q) || !self.is(q, b'_');
        followed_ok.then(|| (Inline::plain(self.slice(p, q)), q))
    }

    /// `Whitespace = [ \t]+`
    pub(super) fn whitespace(&self, p: usize) -> Res<Inline> {
        let q = self.run1(p, is_space)?;
        Some((Inline::plain(self.slice(p, q)), q))
    }

    /// `PlainRun`: text without any character that may start markup.
    fn plain_run(&self, p: usize) -> Res<Inline> {
        let q = self.run1(p, |c| !is_ascii(c, b"*_~`:\n<[]! \t()\\|"))?;
        Some((Inline::plain(self.slice(p, q)), q))
    }

    /// `\*` and friends: the character alone, as text.
    fn escaped(&self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "\\")?;
        let r = self.one(q, |c| is_ascii(c, b"*_~`#."))?;
        Some((Inline::plain(self.slice(q, r)), r))
    }

    /// `` `code` `` on one line.
    pub(super) fn inline_code(&self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "`")?;
        let r = self.run1(q, |c| c != u16::from(b'`') && c != 0x0A)?;
        let s = self.lit(r, "`")?;
        let value =
            json!({"type": "INLINE_CODE", "value": super::ast::plain_json(self.slice(q, r))});
        Some((Inline::node(value), s))
    }

    /// `||spoiler||` on one line.
    fn spoiler(&mut self, p: usize) -> Res<Inline> {
        let mut q = self.lit(p, "||")?;
        let mut items = Vec::new();
        while self.lit(q, "||").is_none() {
            if let Some((item, r)) = self.inline_item(q) {
                items.push(item);
                q = r;
            } else if let Some(r) = self.any(q) {
                items.push(Inline::plain(self.slice(q, r)));
                q = r;
            } else {
                break;
            }
        }
        if items.is_empty() {
            return None;
        }
        let q = self.lit(q, "||")?;
        Some((Inline::node(container("SPOILER", items)), q))
    }

    /// `\( … \)` inline KaTeX (or `$ … $`).
    fn katex_inline(&mut self, p: usize) -> Res<Inline> {
        let (start, end, q) = self.katex(p, Katex::Inline)?;
        let value = json!({"type": "INLINE_KATEX", "value": string(self.slice(start, end))});
        Some((Inline::node(value), q))
    }

    /// `color:#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`, not glued to more text.
    fn color(&self, p: usize) -> Res<Inline> {
        if !self.opts.colors {
            return None;
        }
        let q = self.lit(p, "color:#")?;
        let (channels, r) = self
            .hex_channels(q, 2)
            .or_else(|| self.hex_channels(q, 1))?;
        if self.test(r, is_any_text) {
            return None;
        }
        let alpha = channels.get(3).copied().unwrap_or(255);
        let value = json!({"type": "COLOR", "value": {"r": channels[0], "g": channels[1], "b": channels[2], "a": alpha}});
        Some((Inline::node(value), r))
    }

    /// Three or four colour channels of `width` hex digits each (a single digit is doubled).
    fn hex_channels(&self, p: usize, width: usize) -> Res<Vec<u32>> {
        let mut channels = Vec::new();
        let mut q = p;
        while channels.len() < 4 && (0..width).all(|i| self.test(q + i, is_hex)) {
            let digits = string(self.slice(q, q + width));
            let digits = if width == 1 { digits.repeat(2) } else { digits };
            channels.push(u32::from_str_radix(&digits, 16).ok()?);
            q += width;
        }
        (channels.len() >= 3).then_some((channels, q))
    }

    /// `*** `, `_ _`, `~~ ~`: delimiters around nothing but blanks are text.
    fn emphasis_with_whitespace(&self, p: usize) -> Res<Inline> {
        b"*_~".iter().find_map(|&mark| {
            let is_mark = |c: u16| c == u16::from(mark);
            let q = self.run1(p, is_mark)?;
            let r = self.run1(q, is_space)?;
            let s = self.run1(r, is_mark)?;
            Some((Inline::plain(self.slice(p, s)), s))
        })
    }

    /// `Emphasis = MaybeBold / MaybeItalic / MaybeStrikethrough`
    pub(super) fn emphasis(&mut self, p: usize) -> Res<Inline> {
        self.maybe(Emphasis::Bold, p)
            .or_else(|| self.maybe(Emphasis::Italic, p))
            .or_else(|| self.maybe(Emphasis::Strike, p))
    }

    /// Emphasis of one kind unless already inside one of that kind (the grammar's skip flags).
    fn maybe(&mut self, kind: Emphasis, p: usize) -> Res<Inline> {
        let (skip, memo) = match kind {
            Emphasis::Bold => (self.skip_bold, Memo::Bold),
            Emphasis::Italic => (self.skip_italic, Memo::Italic),
            Emphasis::Strike => (self.skip_strike, Memo::Strike),
        };
        if skip {
            return None;
        }
        self.memoized(memo, p, |s| {
            s.set_skip(kind, true);
            let result = match kind {
                Emphasis::Bold => s.bold(p),
                Emphasis::Italic => s.italic(p),
                Emphasis::Strike => s.strike(p),
            };
            s.set_skip(kind, false);
            result
        })
    }

    fn set_skip(&mut self, kind: Emphasis, value: bool) {
        match kind {
            Emphasis::Bold => self.skip_bold = value,
            Emphasis::Italic => self.skip_italic = value,
            Emphasis::Strike => self.skip_strike = value,
        }
    }

    pub(super) fn maybe_bold(&mut self, p: usize) -> Res<Inline> {
        self.maybe(Emphasis::Bold, p)
    }

    pub(super) fn maybe_italic(&mut self, p: usize) -> Res<Inline> {
        self.maybe(Emphasis::Italic, p)
    }

    pub(super) fn maybe_strike(&mut self, p: usize) -> Res<Inline> {
        self.maybe(Emphasis::Strike, p)
    }

    /// `**bold**` or `*bold*`.
    fn bold(&mut self, p: usize) -> Res<Inline> {
        for delimiter in ["**", "*"] {
            if let Some(q) = self.lit(p, delimiter)
                && let Some((items, r)) = self.bold_content(q)
                && let Some(s) = self.lit(r, delimiter)
            {
                return Some((Inline::node(container("BOLD", items)), s));
            }
        }
        None
    }

    fn bold_content(&mut self, p: usize) -> Res<Vec<Inline>> {
        self.items(p, |s, q| {
            s.bold_item(q)
                .or_else(|| s.text_run(q, |c| !is_ascii(c, b"\n* _~")))
                .or_else(|| s.text_unit(q, |c| !is_ascii(c, b"\n* ")))
                .or_else(|| s.line(q))
        })
    }

    /// What bold text may contain besides plain text.
    pub(super) fn bold_item(&mut self, p: usize) -> Res<Inline> {
        self.memoized(Memo::BoldItem, p, |s| {
            s.whitespace(p)
                .or_else(|| s.inline_code(p))
                .or_else(|| s.timestamp(p))
                .or_else(|| s.maybe_references(p))
                .or_else(|| s.text_user_mention(p))
                .or_else(|| s.channel_mention(p))
                .or_else(|| s.maybe_italic(p))
                .or_else(|| s.maybe_strike(p))
                .or_else(|| s.emoji(p))
                .or_else(|| {
                    let (e, q) = s.emoticon(p)?;
                    s.prewarm_emoticon_run(q, Memo::BoldItem);
                    let next_ok = s.emoticon_neighbour(q) || s.bold_item(q).is_some();
                    next_ok.then_some((e, q))
                })
        })
    }

    /// `_italic_` / `__italic__`, where words glued to underscores stay text.
    fn italic(&mut self, p: usize) -> Res<Inline> {
        // `word_` or `word__`: snake_case is text.
        if let Some(q) = self.run1(p, is_alpha_digit)
            && self.is(q, b'_')
        {
            let r = if self.is(q + 1, b'_') { q + 2 } else { q + 1 };
            return Some((Inline::plain(self.slice(p, r)), r));
        }
        let double = self.lit(p, "__").and_then(|q| self.italic_content(q));
        let single = self.lit(p, "_").and_then(|q| self.italic_content(q));
        let close = |s: &Self, content: &Option<(Vec<Inline>, usize)>, delimiter: &str| {
            content.as_ref().and_then(|(_, r)| s.lit(*r, delimiter))
        };
        // `__x__word` and `_x_word`: the delimiters are text, the content is kept.
        let glued = [
            (&double, "__", is_alpha_digit as fn(u16) -> bool),
            (&single, "_", is_alpha),
        ];
        for (content, delimiter, trail) in glued {
            if let Some(s) = close(self, content, delimiter)
                && let Some(t) = self.run1(s, trail)
            {
                let items = content.clone().map(|(items, _)| items).unwrap_or_default();
                let mut all = vec![Inline::plain_str(delimiter)];
                all.extend(items);
                all.push(Inline::plain_str(delimiter));
                all.push(Inline::plain(self.slice(s, t)));
                return Some((Inline::Group(reduce(all)), t));
            }
        }
        for (content, delimiter) in [(&double, "__"), (&single, "_")] {
            if let Some(s) = close(self, content, delimiter) {
                // The content is reduced already; reducing twice is not the same.
                let items = content.clone().map(|(items, _)| items).unwrap_or_default();
                let value = json!({"type": "ITALIC", "value": inlines_json(items)});
                return Some((Inline::node(value), s));
            }
        }
        None
    }

    /// `ItalicContentItems`, reduced.
    fn italic_content(&mut self, p: usize) -> Res<Vec<Inline>> {
        let (items, q) = self.items(p, |s, q| {
            s.italic_item(q)
                .or_else(|| s.text_run(q, |c| !is_ascii(c, b"\n_ *~")))
                .or_else(|| s.text_unit(q, |c| !is_ascii(c, b"\n_ ")))
                .or_else(|| s.line(q))
        })?;
        Some((reduce(items), q))
    }

    /// What italic text may contain besides plain text.
    pub(super) fn italic_item(&mut self, p: usize) -> Res<Inline> {
        self.memoized(Memo::ItalicItem, p, |s| {
            s.whitespace(p)
                .or_else(|| s.inline_code(p))
                .or_else(|| s.timestamp(p))
                .or_else(|| s.maybe_references(p))
                .or_else(|| s.text_user_mention(p))
                .or_else(|| s.channel_mention(p))
                .or_else(|| s.maybe_bold(p))
                .or_else(|| s.maybe_strike(p))
                .or_else(|| s.emoji(p))
                .or_else(|| {
                    let (e, q) = s.emoticon(p)?;
                    s.prewarm_emoticon_run(q, Memo::ItalicItem);
                    let next_ok =
                        s.emoticon_neighbour(q) || s.italic_item(q).is_some() || s.is(q, b'_');
                    next_ok.then_some((e, q))
                })
        })
    }

    /// `~~strike~~` or `~strike~`.
    fn strike(&mut self, p: usize) -> Res<Inline> {
        for delimiter in ["~~", "~"] {
            if let Some(q) = self.lit(p, delimiter)
                && let Some((items, r)) = self.strike_content(q)
                && let Some(s) = self.lit(r, delimiter)
            {
                return Some((Inline::node(container("STRIKE", items)), s));
            }
        }
        None
    }

    fn strike_content(&mut self, p: usize) -> Res<Vec<Inline>> {
        self.items(p, |s, q| {
            s.text_run(q, is_strike_run_char)
                .or_else(|| s.escaped_timestamp(q))
                .or_else(|| s.timestamp(q))
                .or_else(|| s.whitespace(q))
                .or_else(|| s.inline_code(q))
                .or_else(|| s.maybe_references(q))
                .or_else(|| s.text_user_mention(q))
                .or_else(|| s.channel_mention(q))
                .or_else(|| s.maybe_italic(q))
                .or_else(|| s.maybe_bold(q))
                .or_else(|| s.emoji(q))
                .or_else(|| s.emoticon(q))
                .or_else(|| s.text_unit(q, |c| !is_ascii(c, b"\n~ ")))
                .or_else(|| s.line(q))
        })
    }

    /// One or more items of a rule.
    fn items(
        &mut self,
        p: usize,
        mut item: impl FnMut(&mut Self, usize) -> Res<Inline>,
    ) -> Res<Vec<Inline>> {
        let mut items = Vec::new();
        let mut q = p;
        while let Some((it, r)) = item(self, q) {
            items.push(it);
            q = r;
        }
        (!items.is_empty()).then_some((items, q))
    }

    /// A non-empty run of code units as plain text.
    fn text_run(&self, p: usize, pred: impl Fn(u16) -> bool) -> Res<Inline> {
        let q = self.run1(p, pred)?;
        Some((Inline::plain(self.slice(p, q)), q))
    }

    /// One code unit as plain text.
    fn text_unit(&self, p: usize, pred: impl Fn(u16) -> bool) -> Res<Inline> {
        let q = self.one(p, pred)?;
        Some((Inline::plain(self.slice(p, q)), q))
    }

    /// `Line = Space* AnyText+ Space*` as plain text.
    pub(super) fn line(&self, p: usize) -> Res<Inline> {
        let q = self.run(p, is_space);
        let r = self.run1(q, is_any_text)?;
        let s = self.run(r, is_space);
        Some((Inline::plain(self.slice(p, s)), s))
    }

    /// `@user` (the at sign may be doubled); names ending in `__` are not mentions.
    pub(super) fn user_mention(&self, p: usize) -> Res<Inline> {
        let q = self.run1(p, |c| c == u16::from(b'@'))?;
        let mut r = self.run1(q, is_name_char)?;
        if self.test(r, |c| is_ascii(c, b":@"))
            && let Some(s) = self.run1(r + 1, is_name_char)
        {
            r = s;
        }
        let name = self.slice(q, r);
        if name.ends_with(&[0x5F, 0x5F]) {
            return None;
        }
        let value = json!({"type": "MENTION_USER", "value": super::ast::plain_json(name)});
        Some((Inline::node(value), r))
    }

    /// Inside emphasis, `x@y` glued to text is text (with a single `@`), else a mention.
    fn text_user_mention(&self, p: usize) -> Res<Inline> {
        if self.test(p, is_any_text)
            && let Some(q) = self.run1(p + 1, |c| c == u16::from(b'@'))
            && self.test(q, is_alpha_numeric)
        {
            let mut text = self.slice(p, p + 1).to_vec();
            text.push(u16::from(b'@'));
            text.push(self.src[q]);
            return Some((Inline::Plain(text), q + 1));
        }
        self.user_mention(p)
    }

    /// `#channel`; `x#y` glued to text is text.
    fn channel_mention(&self, p: usize) -> Res<Inline> {
        if self.test(p, is_any_text) && self.is(p + 1, b'#') && self.test(p + 2, is_alpha_numeric) {
            return Some((Inline::plain(self.slice(p, p + 3)), p + 3));
        }
        let q = self.lit(p, "#")?;
        let r = self.run1(q, is_name_char)?;
        let value =
            json!({"type": "MENTION_CHANNEL", "value": super::ast::plain_json(self.slice(q, r))});
        Some((Inline::node(value), r))
    }
}

/// Plain text inside strike-through: stops at anything that may start markup or an emoji.
fn is_strike_run_char(c: u16) -> bool {
    !is_ascii(c, b"\n~ *_:`@#[]\\<!|")
        && !(0xD83C..=0xD83E).contains(&c)
        && !(0x2300..=0x27BF).contains(&c)
}
