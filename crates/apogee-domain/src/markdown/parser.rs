//! The parser state and the small matching helpers every rule uses.
//!
//! Rules are methods taking a start position and returning what they built with the position
//! after it, or `None` when they do not match: a PEG with ordered choice, so backtracking is just
//! trying the next alternative from the same position.

use std::collections::HashMap;

use serde_json::Value;

use super::ParseOptions;
use super::ast::Inline;
use super::chars::{is_newline, is_space};

/// A rule's result: the value and the position after it.
pub(super) type Res<T> = Option<(T, usize)>;

/// Rule entries allowed before the parse is abandoned: Rocket.Chat's grammar backtracks without
/// memoisation and is polynomial of high degree on hostile input.
const STEP_BUDGET: u32 = 3_000_000;

/// Nesting allowed for the recursive rules. Chains of emoticons look ahead recursively, one
/// level per emoticon; everything else nests only a handful of levels.
const MAX_DEPTH: u32 = 160;

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
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a [u16],
    pub(super) opts: &'a ParseOptions,
    /// The grammar's re-entrancy guards: no bold directly or indirectly inside bold, etc.
    pub(super) skip_bold: bool,
    pub(super) skip_italic: bool,
    pub(super) skip_strike: bool,
    pub(super) skip_references: bool,
    steps: u32,
    depth: u32,
    aborted: bool,
    memo: HashMap<(Memo, usize, u8), Res<Inline>>,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a [u16], opts: &'a ParseOptions) -> Self {
        Self {
            src,
            opts,
            skip_bold: false,
            skip_italic: false,
            skip_strike: false,
            skip_references: false,
            steps: 0,
            depth: 0,
            aborted: false,
            memo: HashMap::new(),
        }
    }

    /// `Start`: the whole message, or `None` when the parse had to be abandoned.
    pub(super) fn document(&mut self) -> Option<Vec<Value>> {
        let blocks = self.start();
        if self.aborted {
            return None;
        }
        blocks
    }

    /// Runs a recursive rule under the step and depth limits; once they are exceeded every rule
    /// fails, so the parse unwinds quickly and is then discarded.
    pub(super) fn guarded<T>(&mut self, rule: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        if self.aborted {
            return None;
        }
        self.steps += 1;
        if self.steps > STEP_BUDGET || self.depth >= MAX_DEPTH {
            self.aborted = true;
            return None;
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        if self.aborted { None } else { result }
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
            return hit.clone();
        }
        let result = self.guarded(rule);
        if !self.aborted {
            self.memo.insert(key, result.clone());
        }
        result
    }

    pub(super) fn is_memoized(&self, kind: Memo, p: usize) -> bool {
        self.memo.contains_key(&(kind, p, self.flags()))
    }

    fn flags(&self) -> u8 {
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
