//! Block rules: paragraphs, quotes, code fences, headings, lists, tables…
//!
//! Blocks are tried in the grammar's order at the start of each line; a line no block claims is
//! a paragraph. Every block that ends a line consumes its newline, so an empty line left over
//! is a `LINE_BREAK`.

use serde_json::{Value, json};

use super::ast::{Inline, Text, inlines_json, object, plain_json, reduce, string, with_fallback};
use super::chars::{is_alpha_digit, is_ascii, is_digit, is_space};
use super::parser::{Parser, Res};

impl Parser<'_> {
    /// `Start = BigEmoji !. / (Blocks / Paragraph / EndOfLine)+`
    pub(super) fn start(&mut self) -> Option<Vec<Value>> {
        if let Some((big, end)) = self.big_emoji(0)
            && self.at_end(end)
        {
            return Some(vec![big]);
        }
        let mut blocks = Vec::new();
        let mut p = 0;
        while !self.at_end(p) {
            if let Some((block, q)) = self.block(p).or_else(|| self.paragraph(p)) {
                blocks.push(block);
                p = q;
            } else if let Some(q) = self.eol(p) {
                blocks.push(json!({"type": "PARAGRAPH", "value": [plain_json(&[])]}));
                p = q;
            } else {
                return None;
            }
        }
        Some(blocks)
    }

    /// `BigEmoji`: one to three emoji and nothing else but blanks.
    fn big_emoji(&mut self, p: usize) -> Res<Value> {
        let blanks = |s: &Self, mut q: usize| {
            while let Some(r) = s.eol(q).or_else(|| s.one(q, is_space)) {
                q = r;
            }
            q
        };
        let mut q = blanks(self, p);
        let mut emoji = Vec::new();
        while emoji.len() < 3 {
            let Some((e, r)) = self.emoji(q).or_else(|| self.emoticon(q)) else {
                break;
            };
            emoji.push(e.into_json());
            q = blanks(self, r);
        }
        if emoji.is_empty() {
            return None;
        }
        Some((json!({"type": "BIG_EMOJI", "value": emoji}), q))
    }

    fn block(&mut self, p: usize) -> Res<Value> {
        self.blockquote(p)
            .or_else(|| self.block_spoiler(p))
            .or_else(|| self.code_fence(p))
            .or_else(|| self.horizontal_rule(p))
            .or_else(|| self.table(p))
            .or_else(|| self.heading(p))
            .or_else(|| self.tasks(p))
            .or_else(|| self.ordered_list(p))
            .or_else(|| self.unordered_list(p))
            .or_else(|| self.katex_block(p))
            .or_else(|| {
                self.blank_line(p)
                    .map(|q| (json!({"type": "LINE_BREAK"}), q))
            })
    }

    /// `Paragraph = Inline`
    pub(super) fn paragraph(&mut self, p: usize) -> Res<Value> {
        let (items, q) = self.inline(p)?;
        Some((
            json!({"type": "PARAGRAPH", "value": inlines_json(items)}),
            q,
        ))
    }

    /// Consecutive `> ` lines; a bare `>` line is an empty paragraph of the quote.
    fn blockquote(&mut self, p: usize) -> Res<Value> {
        let mut paragraphs = Vec::new();
        let mut q = p;
        while self.is(q, b'>') {
            let r = self.run(q + 1, is_space);
            if let Some(s) = self.eol(r) {
                paragraphs.push(json!({"type": "PARAGRAPH", "value": [plain_json(&[])]}));
                q = s;
            } else if let Some((para, s)) = self.paragraph(r) {
                paragraphs.push(para);
                q = s;
            } else {
                break;
            }
        }
        if paragraphs.is_empty() {
            return None;
        }
        Some((json!({"type": "QUOTE", "value": paragraphs}), q))
    }

    /// `||` on its own line, paragraphs, then `||`.
    fn block_spoiler(&mut self, p: usize) -> Res<Value> {
        let mut q = self.eol(self.lit(p, "||")?)?;
        let mut paragraphs = Vec::new();
        while self.lit(q, "||").is_none() {
            let Some((para, r)) = self.paragraph(q) else {
                break;
            };
            paragraphs.push(para);
            q = r;
        }
        if paragraphs.is_empty() {
            return None;
        }
        let q = self.eol(q).unwrap_or(q);
        let q = self.lit(q, "||")?;
        Some((json!({"type": "SPOILER_BLOCK", "value": paragraphs}), q))
    }

    /// A ``` fence with an optional language, at least one line, and a closing ``` line.
    fn code_fence(&mut self, p: usize) -> Res<Value> {
        let q = self.lit(p, "```")?;
        let lang_end = self.run(q, |c| is_alpha_digit(c) || is_ascii(c, b" _-."));
        let language = (lang_end > q).then(|| string(self.slice(q, lang_end)));
        let mut q = self.eol(lang_end)?;
        let mut lines = Vec::new();
        while let Some((line, r)) = self.code_line(q) {
            lines.push(json!({"type": "CODE_LINE", "value": plain_json(&line)}));
            q = r;
        }
        if lines.is_empty() {
            return None;
        }
        let q = self.lit(self.eol(q)?, "```")?;
        let language = language.unwrap_or_else(|| "none".to_string());
        Some((
            json!({"type": "CODE", "language": language, "value": lines}),
            q,
        ))
    }

    /// `CodeLine`: a chunk, or a newline and a chunk, or an empty line not closing the fence.
    fn code_line(&self, p: usize) -> Res<Text> {
        if let Some(q) = self.code_chunk(p) {
            return Some((self.slice(p, q).to_vec(), q));
        }
        if !self.is(p, b'\n') {
            return None;
        }
        if let Some(q) = self.code_chunk(p + 1) {
            return Some((self.slice(p + 1, q).to_vec(), q));
        }
        if self.lit(p + 1, "```").is_some() {
            return None;
        }
        Some((Vec::new(), p + 1))
    }

    /// Text of a code line, stopping before a newline or a ``` .
    fn code_chunk(&self, p: usize) -> Option<usize> {
        let tick = |c: u16| c == u16::from(b'`');
        let plain = |c: u16| c != u16::from(b'`') && c != 0x0A && c != 0x0D;
        let mut q = p;
        loop {
            if self.test(q, plain) {
                q += 1;
            } else if self.test(q, tick) && self.test(q + 1, plain) {
                q += 2;
            } else if self.test(q, tick) && self.test(q + 1, tick) && self.test(q + 2, plain) {
                q += 3;
            } else if self.test(q, tick) && self.test(q + 1, tick) && self.newline_or_end(q + 2) {
                q += 2;
            } else if self.test(q, tick) && self.newline_or_end(q + 1) {
                q += 1;
            } else {
                break;
            }
        }
        self.charge(q - p);
        (q > p).then_some(q)
    }

    fn newline_or_end(&self, p: usize) -> bool {
        self.at_end(p) || self.test(p, super::chars::is_newline)
    }

    /// `---` (or more) alone on a line; the fallback is the range of the dashes.
    fn horizontal_rule(&mut self, p: usize) -> Res<Value> {
        let start = self.run(p, is_space);
        let end = self.repeat(start, 3, usize::MAX, |c| c == u16::from(b'-'))?;
        let q = self.run(end, is_space);
        let q = if self.at_end(q) { q } else { self.eol(q)? };
        Some((
            with_fallback(json!({"type": "HORIZONTAL_RULE"}), start, end),
            q,
        ))
    }

    /// `# Title` … `#### Title`; the title is inline markup.
    fn heading(&mut self, p: usize) -> Res<Value> {
        let hashes = self.repeat(p, 1, 4, |c| c == u16::from(b'#'))?;
        let mut q = self.run1(hashes, is_space)?;
        let mut items = Vec::new();
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
        let q = self.eol(q).unwrap_or(q);
        let level = hashes - p;
        Some((
            json!({"type": "HEADING", "level": level, "value": inlines_json(reduce(items))}),
            q,
        ))
    }

    /// `- [x] done` / `- [ ] todo` lines.
    fn tasks(&mut self, p: usize) -> Res<Value> {
        let mut tasks = Vec::new();
        let mut q = p;
        while let Some((task, r)) = self.task(q) {
            tasks.push(task);
            q = r;
        }
        (!tasks.is_empty()).then(|| (json!({"type": "TASKS", "value": tasks}), q))
    }

    fn task(&mut self, p: usize) -> Res<Value> {
        let q = self.lit(p, "- [")?;
        let status = match self.at(q) {
            Some(0x78) => true,
            Some(0x20) => false,
            _ => return None,
        };
        let q = self.lit(q + 1, "]")?;
        let q = self.run1(q, is_space)?;
        let (items, q) = self.inline(q)?;
        Some((
            json!({"type": "TASK", "status": status, "value": inlines_json(items)}),
            q,
        ))
    }

    /// `1. item` lines; the number typed is kept.
    fn ordered_list(&mut self, p: usize) -> Res<Value> {
        let mut items = Vec::new();
        let mut q = p;
        while let Some((item, r)) = self.ordered_item(q) {
            items.push(item);
            q = r;
        }
        (!items.is_empty()).then(|| (json!({"type": "ORDERED_LIST", "value": items}), q))
    }

    fn ordered_item(&mut self, p: usize) -> Res<Value> {
        let digits = self.run1(p, is_digit)?;
        let q = self.lit(digits, ".")?;
        let q = self.run1(q, is_space)?;
        let (items, q) = self.inline(q)?;
        let number = js_parse_int(&string(self.slice(p, digits)));
        Some((
            json!({"type": "LIST_ITEM", "value": inlines_json(items), "number": number}),
            q,
        ))
    }

    /// `- item` lines, or `* item` lines (not mixed).
    fn unordered_list(&mut self, p: usize) -> Res<Value> {
        let mut items = Vec::new();
        let mut q = p;
        while let Some((item, r)) = self.hyphen_item(q) {
            items.push(item);
            q = r;
        }
        if items.is_empty() {
            while let Some((item, r)) = self.asterisk_item(q) {
                items.push(item);
                q = r;
            }
        }
        (!items.is_empty()).then(|| (json!({"type": "UNORDERED_LIST", "value": items}), q))
    }

    fn hyphen_item(&mut self, p: usize) -> Res<Value> {
        let q = self.lit(p, "-")?;
        let q = self.run1(q, is_space)?;
        let (items, q) = self.inline(q)?;
        Some((
            json!({"type": "LIST_ITEM", "value": inlines_json(items)}),
            q,
        ))
    }

    /// `* item`: the item may not end on a `*` it could not use.
    fn asterisk_item(&mut self, p: usize) -> Res<Value> {
        let q = self.lit(p, "*")?;
        let mut q = self.run1(q, is_space)?;
        let mut items = Vec::new();
        loop {
            if let Some((item, r)) = self.inline_item(q) {
                items.push(item);
                q = r;
            } else if !self.is(q, b'*')
                && let Some(r) = self.any(q)
            {
                items.push(Inline::plain(self.slice(q, r)));
                q = r;
            } else {
                break;
            }
        }
        if items.is_empty() || self.is(q, b'*') {
            return None;
        }
        let q = self.eol(q).unwrap_or(q);
        Some((
            json!({"type": "LIST_ITEM", "value": inlines_json(reduce(items))}),
            q,
        ))
    }

    /// `\[ … \]` (or `$$ … $$`) KaTeX, possibly over several lines.
    fn katex_block(&mut self, p: usize) -> Res<Value> {
        let (start, end, q) = self.katex(p, Katex::Block)?;
        Some((
            json!({"type": "KATEX", "value": string(self.slice(start, end))}),
            q,
        ))
    }

    /// KaTeX between delimiters: the start of the content, its end, and the position after
    /// the closing delimiter. Either enabled syntax may close, whichever opened.
    pub(super) fn katex(&self, p: usize, kind: Katex) -> Option<(usize, usize, usize)> {
        let (paren_open, dollar_open) = kind.openers();
        let start = if self.opts.katex_parenthesis_syntax && self.lit(p, paren_open).is_some() {
            p + paren_open.len()
        } else if self.opts.katex_dollar_syntax && self.lit(p, dollar_open).is_some() {
            p + dollar_open.len()
        } else {
            return None;
        };
        let mut q = start;
        while let Some(c) = self.at(q) {
            let special = c == u16::from(b'$')
                || c == u16::from(b'\\')
                || (kind == Katex::Inline && super::chars::is_newline(c));
            if special && self.katex_close(q, kind).is_some() {
                break;
            }
            q += 1;
        }
        self.charge(q - start);
        let after = self.katex_close(q, kind)?;
        Some((start, q, after))
    }

    fn katex_close(&self, p: usize, kind: Katex) -> Option<usize> {
        let (paren_close, dollar_close) = kind.closers();
        let paren = self
            .opts
            .katex_parenthesis_syntax
            .then(|| self.lit(p, paren_close))
            .flatten();
        paren.or_else(|| {
            self.opts
                .katex_dollar_syntax
                .then(|| self.lit(p, dollar_close))
                .flatten()
        })
    }

    /// A pipe table: header row, alignment row, then rows.
    fn table(&mut self, p: usize) -> Res<Value> {
        let (header, q) = self.table_row(p)?;
        let (aligns, q) = self.table_alignments(q)?;
        let mut rows = Vec::new();
        let mut q = q;
        while let Some((row, r)) = self.table_row(q) {
            rows.push(row);
            q = r;
        }
        let cell = |items: Vec<Inline>, i: usize| {
            let mut pairs = vec![("type", json!("TABLE_CELL"))];
            if let Some(Some(align)) = aligns.get(i) {
                pairs.push(("align", json!(align)));
            }
            pairs.push(("value", inlines_json(trim_cell(items))));
            object(pairs)
        };
        let header_json: Vec<Value> = header
            .iter()
            .enumerate()
            .map(|(i, items)| cell(items.clone(), i))
            .collect();
        let rows_json: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let cells: Vec<Value> = (0..header.len())
                    .map(|i| cell(row.get(i).cloned().unwrap_or_default(), i))
                    .collect();
                json!({"type": "TABLE_ROW", "value": cells})
            })
            .collect();
        let table = json!({"type": "TABLE", "value": {"header": header_json, "rows": rows_json}});
        Some((with_fallback(table, p, q), q))
    }

    /// `| a | b |`: the cells of one row, each reduced.
    fn table_row(&mut self, p: usize) -> Res<Vec<Vec<Inline>>> {
        let mut q = self.lit(p, "|")?;
        let mut cells = Vec::new();
        loop {
            let (items, r) = self.table_cell(q);
            let Some(r) = self.lit(r, "|") else { break };
            cells.push(items);
            q = r;
        }
        if cells.is_empty() {
            return None;
        }
        Some((cells, self.eol(q).unwrap_or(q)))
    }

    fn table_cell(&mut self, p: usize) -> (Vec<Inline>, usize) {
        let mut items = Vec::new();
        let mut q = p;
        loop {
            if let Some(r) = self.lit(q, "\\|") {
                items.push(Inline::plain_str("|"));
                q = r;
                continue;
            }
            if self.is(q, b'|') || self.eol(q).is_some() {
                break;
            }
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
        (reduce(items), q)
    }

    /// `|---|:-:|--:|`: one alignment per column.
    fn table_alignments(&self, p: usize) -> Res<Vec<Option<&'static str>>> {
        let mut q = self.lit(p, "|")?;
        let mut aligns = Vec::new();
        while let Some((align, r)) = self.table_alignment(q) {
            let Some(r) = self.lit(r, "|") else { break };
            aligns.push(align);
            q = r;
        }
        if aligns.is_empty() {
            return None;
        }
        Some((aligns, self.eol(q).unwrap_or(q)))
    }

    fn table_alignment(&self, p: usize) -> Res<Option<&'static str>> {
        let q = self.run(p, is_space);
        let left = self.is(q, b':');
        let q = if left { q + 1 } else { q };
        let q = self.run1(q, |c| c == u16::from(b'-'))?;
        let right = self.is(q, b':');
        let q = if right { q + 1 } else { q };
        let q = self.run(q, is_space);
        let align = match (left, right) {
            (true, true) => Some("center"),
            (false, true) => Some("right"),
            (true, false) => Some("left"),
            (false, false) => None,
        };
        Some((align, q))
    }
}

/// Table cells lose the white space around their text.
fn trim_cell(mut items: Vec<Inline>) -> Vec<Inline> {
    let is_js_space = |c: u16| char::from_u32(u32::from(c)).is_some_and(super::ast::is_js_space);
    if let Some(Inline::Plain(text)) = items.first_mut() {
        let skip = text.iter().take_while(|&&c| is_js_space(c)).count();
        text.drain(..skip);
        if text.is_empty() {
            items.remove(0);
        }
    }
    if let Some(Inline::Plain(text)) = items.last_mut() {
        let keep = text.len() - text.iter().rev().take_while(|&&c| is_js_space(c)).count();
        text.truncate(keep);
        if text.is_empty() {
            items.pop();
        }
    }
    items
}

/// `parseInt(digits, 10)` as JSON: an integer while exact, a double above 2^53 like JavaScript.
fn js_parse_int(digits: &str) -> Value {
    let value: f64 = digits.parse().unwrap_or(f64::INFINITY);
    if value <= 9_007_199_254_740_992.0 {
        json!(value as u64)
    } else {
        json!(value)
    }
}

/// Which KaTeX delimiters a rule uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Katex {
    /// `\[ … \]` / `$$ … $$`
    Block,
    /// `\( … \)` / `$ … $`
    Inline,
}

impl Katex {
    fn openers(self) -> (&'static str, &'static str) {
        match self {
            Katex::Block => ("\\[", "$$"),
            Katex::Inline => ("\\(", "$"),
        }
    }

    fn closers(self) -> (&'static str, &'static str) {
        match self {
            Katex::Block => ("\\]", "$$"),
            Katex::Inline => ("\\)", "$"),
        }
    }
}
