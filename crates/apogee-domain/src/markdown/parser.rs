//! The parser state and the small matching helpers every rule uses.
//!
//! Rules are methods taking a start position and returning what they built with the position
//! after it, or `None` when they do not match: a PEG with ordered choice, so backtracking is just
//! trying the next alternative from the same position.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value;

use super::ParseOptions;
use super::ast::Inline;
use super::chars::{is_newline, is_space};

/// A rule's result: the value and the position after it.
pub(super) type Res<T> = Option<(T, usize)>;

/// Work allowed before the parse is abandoned, counted in characters scanned and rule entries
/// (an entry costs about as much as scanning [`ENTRY_COST`] characters): Rocket.Chat's grammar
/// backtracks a lot and is polynomial of high degree on hostile input (seconds to minutes for
/// a few thousand characters). The budget is about half a second; ordinary messages use a
/// tiny fraction of it.
pub(super) const WORK_BUDGET: u64 = 256_000_000;
pub(super) const ENTRY_COST: usize = 32;

/// Nesting allowed for the recursive rules. The skip flags keep emphasis and links a few levels
/// deep and runs of emoticons are parsed from their end (see `prewarm_emoticon_run`), so this
/// is only a safety net against exhausting the stack.
const MAX_DEPTH: u32 = 160;

/// Memo entries made room for up front: a parse remembers about one result per character
/// (0.8–0.9 measured), and growing the table from empty rehashed it several times per message,
/// a tenth of a short message's parse. Longer texts grow it from there.
const MEMO_PRESIZE: usize = 4096;

/// Rules whose results are remembered per position (and skip flags). The grammar re-parses the
/// same text many times: emoticons look ahead at the next item, and every `[`, `*`, `_`, `~` tries
/// its emphasis or link up to the end of the line again for each enclosing attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Memo {
    InlineItem,
    BoldItem,
    ItalicItem,
    Bold,
    Italic,
    Strike,
    References,
    LinkTitle,
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a [u16],
    pub(super) opts: &'a ParseOptions,
    /// The grammar's re-entrancy guards: no bold directly or indirectly inside bold, etc.
    pub(super) skip_bold: bool,
    pub(super) skip_italic: bool,
    pub(super) skip_strike: bool,
    pub(super) skip_references: bool,
    work: Cell<u64>,
    budget: u64,
    depth: u32,
    aborted: Cell<bool>,
    memo: HashMap<(Memo, usize, u8), Res<Inline>, BuildHasherDefault<FastHasher>>,
    /// Where the `[label` pieces starting at a position end (a label may run over lines, so
    /// every `[` of a long text would otherwise walk to its end).
    pub(super) title_end: HashMap<(usize, u8), usize, BuildHasherDefault<FastHasher>>,
    /// For each position, the next blank, newline or `@` (resp. also `:` `.` `/`): the e-mail and
    /// URL look-aheads run from every position of a long word.
    email_stops: Option<Vec<u32>>,
    url_stops: Option<Vec<u32>>,
    /// Where the run of domain-name characters starting at a position ends (`a_b_c…` would
    /// otherwise be walked again from every `_`).
    pub(super) domain_run_end: HashMap<usize, usize, BuildHasherDefault<FastHasher>>,
}

/// A multiply-rotate hasher for the memo keys (small integers, hashed millions of times);
/// `SipHash`'s flooding resistance buys nothing here.
#[derive(Default)]
pub(super) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a [u16], opts: &'a ParseOptions, budget: u64) -> Self {
        Self {
            src,
            opts,
            skip_bold: false,
            skip_italic: false,
            skip_strike: false,
            skip_references: false,
            work: Cell::new(0),
            budget,
            depth: 0,
            aborted: Cell::new(false),
            memo: HashMap::with_capacity_and_hasher(
                src.len().min(MEMO_PRESIZE),
                Default::default(),
            ),
            title_end: HashMap::default(),
            email_stops: None,
            url_stops: None,
            domain_run_end: HashMap::default(),
        }
    }

    /// `Start`: the whole message, or `None` when the parse had to be abandoned.
    pub(super) fn document(&mut self) -> Option<Vec<Value>> {
        let blocks = self.start();
        if self.aborted.get() {
            return None;
        }
        blocks
    }

    /// Runs a recursive rule under the work and depth limits; once they are exceeded every rule
    /// fails, so the parse unwinds quickly and is then discarded.
    pub(super) fn guarded<T>(&mut self, rule: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        self.charge(ENTRY_COST);
        if self.depth >= MAX_DEPTH {
            self.aborted.set(true);
        }
        if self.aborted.get() {
            return None;
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        if self.aborted.get() { None } else { result }
    }

    /// Counts work against the budget; past it, every rule fails.
    pub(super) fn charge(&self, units: usize) {
        let work = self.work.get() + units as u64;
        self.work.set(work);
        if work > self.budget {
            self.aborted.set(true);
        }
    }

    /// Runs a memoised rule. Every rule only depends on the position and the skip flags, so a
    /// remembered result is exactly what running it again would give.
    pub(super) fn memoized(
        &mut self,
        kind: Memo,
        p: usize,
        rule: impl FnOnce(&mut Self) -> Res<Inline>,
    ) -> Res<Inline> {
        let key = (kind, p, self.flags());
        if let Some(hit) = self.memo.get(&key) {
            self.charge(ENTRY_COST);
            return hit.clone();
        }
        let result = self.guarded(rule);
        if !self.aborted.get() {
            self.memo.insert(key, result.clone());
        }
        result
    }

    pub(super) fn is_memoized(&self, kind: Memo, p: usize) -> bool {
        self.memo.contains_key(&(kind, p, self.flags()))
    }

    /// The first position at or after `p` where `stop` holds (or the end), from a table built
    /// once per parse.
    pub(super) fn next_stop(&mut self, p: usize, url: bool) -> usize {
        let src = self.src;
        let table = if url {
            &mut self.url_stops
        } else {
            &mut self.email_stops
        };
        let table = table.get_or_insert_with(|| {
            let stop = |c: u16| {
                is_space(c)
                    || is_newline(c)
                    || c == u16::from(b'@')
                    || (url && matches!(c, 0x3A | 0x2E | 0x2F))
            };
            let mut next = vec![src.len() as u32; src.len() + 1];
            for i in (0..src.len()).rev() {
                next[i] = if stop(src[i]) { i as u32 } else { next[i + 1] };
            }
            next
        });
        table.get(p).map_or(p, |&q| q as usize)
    }

    pub(super) fn flags(&self) -> u8 {
        u8::from(self.skip_bold)
            | u8::from(self.skip_italic) << 1
            | u8::from(self.skip_strike) << 2
            | u8::from(self.skip_references) << 3
    }

    pub(super) fn at(&self, p: usize) -> Option<u16> {
        self.src.get(p).copied()
    }

    pub(super) fn at_end(&self, p: usize) -> bool {
        p >= self.src.len()
    }

    /// The code unit at `p` is the ASCII character `c`.
    pub(super) fn is(&self, p: usize, c: u8) -> bool {
        self.at(p) == Some(u16::from(c))
    }

    /// The code unit at `p` satisfies `pred`.
    pub(super) fn test(&self, p: usize, pred: impl Fn(u16) -> bool) -> bool {
        self.at(p).is_some_and(pred)
    }

    /// Matches the literal `lit` at `p`.
    pub(super) fn lit(&self, p: usize, lit: &str) -> Option<usize> {
        let mut q = p;
        for unit in lit.encode_utf16() {
            if self.at(q) != Some(unit) {
                return None;
            }
            q += 1;
        }
        Some(q)
    }

    /// One code unit satisfying `pred`.
    pub(super) fn one(&self, p: usize, pred: impl Fn(u16) -> bool) -> Option<usize> {
        self.test(p, pred).then_some(p + 1)
    }

    /// The end of the (possibly empty) run of units satisfying `pred` from `p`.
    pub(super) fn run(&self, p: usize, pred: impl Fn(u16) -> bool) -> usize {
        let mut q = p;
        while self.test(q, &pred) {
            q += 1;
        }
        self.charge(q - p);
        q
    }

    /// A non-empty run of units satisfying `pred`.
    pub(super) fn run1(&self, p: usize, pred: impl Fn(u16) -> bool) -> Option<usize> {
        let q = self.run(p, pred);
        (q > p).then_some(q)
    }

    /// At most `max` units satisfying `pred`, and at least `min`.
    pub(super) fn repeat(
        &self,
        p: usize,
        min: usize,
        max: usize,
        pred: impl Fn(u16) -> bool,
    ) -> Option<usize> {
        let mut q = p;
        while q - p < max && self.test(q, &pred) {
            q += 1;
        }
        (q - p >= min).then_some(q)
    }

    /// `EndOfLine = "\r\n" / "\n" / "\r"`
    pub(super) fn eol(&self, p: usize) -> Option<usize> {
        self.lit(p, "\r\n").or_else(|| self.one(p, is_newline))
    }

    /// `EndOfLine / !.`: a line ends here.
    pub(super) fn eol_or_end(&self, p: usize) -> bool {
        self.at_end(p) || self.eol(p).is_some()
    }

    /// `Space* EndOfLine`, the grammar's `LineBreak`.
    pub(super) fn blank_line(&self, p: usize) -> Option<usize> {
        self.eol(self.run(p, is_space))
    }

    /// `Any = [^\r\n]`, one code unit of anything but a newline.
    pub(super) fn any(&self, p: usize) -> Option<usize> {
        self.one(p, |c| !is_newline(c))
    }

    pub(super) fn slice(&self, from: usize, to: usize) -> &'a [u16] {
        &self.src[from..to]
    }
}
