//! The tamper-evident audit log. Security-relevant events are appended as [`Change::Audit`] in
//! the batch of the change they describe (or alone, for failures that change nothing). The store
//! numbers entries 1, 2, 3, … and chains them: each entry's hash commits to the previous entry's
//! hash, its own number and its exact stored document ([`chain_hash`]), and a one-row head keeps
//! the last number and hash. Editing, removing, inserting or reordering entries — or dropping the
//! newest — breaks the chain, which [`Core::verify_audit`] (`apogee admin audit verify`) finds.
//! Exported lines carry the hashes, so a SIEM holds an outside copy of the chain.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{AuditQuery, AuditRecord, Change};
use apogee_domain::{Timestamp, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The "previous hash" of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event as stored (its JSON is what the chain hashes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(rename = "_id")]
    pub id: String,
    pub ts: Timestamp,
    /// Dotted name: `login`, `login.failed`, `user.created`, `setting.changed`, …
    pub event: String,
    pub actor: Option<AuditActor>,
    /// The client's address, where the use-case knows it.
    pub ip: Option<String>,
    /// What the event concerns (ids, names, new values — never secrets).
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditActor {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
}

impl From<&User> for AuditActor {
    fn from(u: &User) -> Self {
        AuditActor {
            id: u.id.clone(),
            username: u.username.clone(),
        }
    }
}

/// `hex(sha256(prev_hash "\n" seq "\n" doc))`.
pub fn chain_hash(prev_hash: &str, seq: i64, doc: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(doc.as_bytes());
    hex::encode(h.finalize())
}

impl AuditRecord {
    /// The stored entry with its place in the chain (`seq`, `prevHash`, `hash`), as the REST
    /// API and exports show it.
    pub fn to_json(&self) -> Value {
        let mut entry: Value = serde_json::from_str(&self.doc).unwrap_or(Value::Null);
        if let Some(e) = entry.as_object_mut() {
            e.insert("seq".into(), self.seq.into());
            e.insert("prevHash".into(), self.prev_hash.clone().into());
            e.insert("hash".into(), self.hash.clone().into());
        }
        entry
    }
}

/// Where the chain first goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainBreak {
    /// The first entry that fails (for a missing tail: the first number missing).
    pub seq: i64,
    /// What is wrong, as a stable word for clients: `edited`, `removed`, `reordered`,
    /// `malformed` or `head` (the newest entry is not the one last written).
    pub kind: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit entry {}: {}", self.seq, self.reason)
    }
}

/// Entries read per round while verifying or exporting.
const PAGE: i64 = 1000;

impl Core {
    /// The change that records `event`; commit it with the change it describes.
    pub fn audit(&self, event: &str, actor: Option<&User>, details: Value) -> Change {
        self.audit_from(event, actor, None, details)
    }

    /// [`Core::audit`] with the client's address.
    pub fn audit_from(
        &self,
        event: &str,
        actor: Option<&User>,
        ip: Option<std::net::IpAddr>,
        details: Value,
    ) -> Change {
        Change::Audit(AuditEntry {
            id: apogee_domain::random_id(),
            ts: Timestamp::now(),
            event: event.to_string(),
            actor: actor.map(AuditActor::from),
            ip: ip.map(|a| a.to_string()),
            details,
        })
    }

    /// Records an event that comes with no other change (failed logins, …). A failure to write
    /// it is logged, not passed on: the caller's answer does not depend on it.
    pub(crate) async fn audit_alone(&self, change: Change) {
        if let Err(e) = self.commit(vec![change]).await {
            tracing::error!(error = %e, "audit entry not written");
        }
    }

    /// Records a failed password login: `login.failed` with Rocket.Chat's error id (a
    /// successful one is recorded in the login's own batch).
    pub(crate) async fn audit_login_failed(
        &self,
        attempted: &str,
        from: Option<std::net::IpAddr>,
        e: &crate::error::CoreError,
    ) {
        let change = self.audit_from(
            "login.failed",
            None,
            from,
            // What was typed, not what it matched: the attempt may name no user.
            json!({"user": attempted, "error": if e.code.is_empty() { &e.message } else { &e.code }}),
        );
        self.audit_alone(change).await;
    }

    /// The entries an update of `before` into `after` by `actor` calls for.
    pub(crate) fn user_update_audits(
        &self,
        actor: &User,
        before: &User,
        after: &User,
        password_changed: bool,
    ) -> Vec<Change> {
        let subject = json!({"userId": after.id, "username": after.username});
        let with = |extra: Value| {
            let mut d = subject.clone();
            if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
                d.extend(extra);
            }
            d
        };
        let mut out = Vec::new();
        if before.active != after.active {
            let event = if after.active {
                "user.activated"
            } else {
                "user.deactivated"
            };
            out.push(self.audit(event, Some(actor), subject.clone()));
        }
        if before.roles != after.roles {
            let details = with(json!({"from": before.roles, "to": after.roles}));
            out.push(self.audit("user.roles_changed", Some(actor), details));
        }
        if password_changed {
            out.push(self.audit("user.password_changed", Some(actor), subject.clone()));
        }
        out
    }

    /// The audit log for administrators (`can-audit-log`), newest first, with filters.
    pub async fn audit_log(
        &self,
        actor: &User,
        query: &AuditQuery,
    ) -> CoreResult<Vec<AuditRecord>> {
        self.authz.require(actor, "can-audit-log", None)?;
        Ok(self.store.audit_records(query).await?)
    }

    /// The next entries for the export to `sink`, oldest first: those after how far it got.
    pub async fn audit_to_export(&self, sink: &str, limit: i64) -> CoreResult<Vec<AuditRecord>> {
        let after = self.store.audit_exported(sink).await?;
        self.audit_after(after, limit).await
    }

    /// Up to `limit` entries after number `after`, oldest first (operators' export).
    pub async fn audit_after(&self, after: i64, limit: i64) -> CoreResult<Vec<AuditRecord>> {
        let query = AuditQuery {
            after_seq: Some(after),
            ascending: true,
            limit,
            ..Default::default()
        };
        Ok(self.store.audit_records(&query).await?)
    }

    /// Remembers that `sink` has every entry up to `seq`.
    pub async fn audit_exported(&self, sink: &str, seq: i64) -> CoreResult<()> {
        let sink = sink.to_string();
        Ok(self
            .store
            .commit(vec![Change::AuditExported { sink, seq }])
            .await?)
    }

    /// Walks the whole chain; `Ok(n)` when all `n` entries and the head agree.
    pub async fn verify_audit(&self) -> CoreResult<Result<i64, ChainBreak>> {
        let checked = self.verify_audit_range(1, None).await?;
        Ok(checked.outcome.map(|_| checked.last))
    }

    /// [`Core::verify_audit_range`] for administrators (`can-audit-log`): what the audit
    /// viewer's "verify" asks (`GET /api/v1/audit.verify`).
    pub async fn audit_verify(
        &self,
        actor: &User,
        from: i64,
        to: Option<i64>,
    ) -> CoreResult<ChainCheck> {
        self.authz.require(actor, "can-audit-log", None)?;
        if from < 1 || to.is_some_and(|to| to < from) {
            return Err(CoreError::bad(
                "error-invalid-range",
                "from must be at least 1 and to not below from",
            ));
        }
        self.verify_audit_range(from, to).await
    }

    /// Checks entries `from..=to` (to the newest when `to` is `None`): each is the next number,
    /// follows the one before (entry `from - 1`'s stored hash is trusted as the start, the
    /// genesis hash for entry 1) and matches its own hash. Up to the newest, the head must
    /// agree too, so a removed newest entry is found.
    pub async fn verify_audit_range(&self, from: i64, to: Option<i64>) -> CoreResult<ChainCheck> {
        let (head_seq, head_hash) = self.store.audit_head().await?;
        // Up to the newest, the walk goes on past the head: an entry added behind the store's
        // back after the last one written is a break too.
        let bound = to.filter(|to| *to < head_seq);
        let end = bound.unwrap_or(head_seq);
        let check = |last, outcome| ChainCheck {
            from,
            to: end,
            head: head_seq,
            last,
            outcome,
        };
        if from > end && from > 1 {
            // Nothing written there yet.
            return Ok(check(end, Ok(())));
        }
        let mut prev_hash = GENESIS.to_string();
        if from > 1 {
            let before = self.audit_after(from - 2, 1).await?;
            match before.first() {
                Some(r) if r.seq == from - 1 => prev_hash = r.hash.clone(),
                _ => {
                    let reason = "missing: entries removed".to_string();
                    let seq = from - 1;
                    let kind = "removed";
                    return Ok(check(seq - 1, Err(ChainBreak { seq, kind, reason })));
                }
            }
        }
        let mut expected = from;
        loop {
            let want = bound.map_or(PAGE, |end| PAGE.min(end - expected + 1));
            if want <= 0 {
                break;
            }
            let page = self.audit_after(expected - 1, want).await?;
            for record in &page {
                if let Err((kind, reason)) = check_link(record, expected, &prev_hash) {
                    let seq = expected;
                    return Ok(check(seq - 1, Err(ChainBreak { seq, kind, reason })));
                }
                prev_hash = record.hash.clone();
                expected += 1;
            }
            if (page.len() as i64) < want {
                break;
            }
        }
        let last = expected - 1;
        let broken = |seq, kind, reason| Ok(check(seq - 1, Err(ChainBreak { seq, kind, reason })));
        let tail_gone = || {
            format!("the log ends at entry {last} but {head_seq} were written (entries removed)")
        };
        match bound {
            Some(end) if last < end => broken(last + 1, "removed", tail_gone()),
            Some(_) => Ok(check(last, Ok(()))),
            None if last != head_seq => broken(last.min(head_seq) + 1, "removed", tail_gone()),
            None if head_hash != prev_hash => broken(
                last,
                "head",
                "the newest entry is not the one last written".into(),
            ),
            None => Ok(check(last, Ok(()))),
        }
    }
}

/// What a verification of entries `from..=to` found.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainCheck {
    pub from: i64,
    /// The last entry the check covered (the newest when none was named).
    pub to: i64,
    /// How many entries the head says were written.
    pub head: i64,
    /// The last entry found good (`from - 1` when none was).
    pub last: i64,
    pub outcome: Result<(), ChainBreak>,
}

/// Whether `record` is entry number `expected` and follows `prev_hash`; else the kind of break
/// and why.
fn check_link(
    record: &AuditRecord,
    expected: i64,
    prev_hash: &str,
) -> Result<(), (&'static str, String)> {
    if record.seq != expected {
        let reason = format!(
            "missing (the next entry found is {}): entries removed",
            record.seq
        );
        return Err(("removed", reason));
    }
    if record.prev_hash != prev_hash {
        let reason = "does not follow the previous entry (removed or reordered)";
        return Err(("reordered", reason.into()));
    }
    if chain_hash(prev_hash, record.seq, &record.doc) != record.hash {
        return Err((
            "edited",
            "its contents do not match its hash (edited)".into(),
        ));
    }
    if serde_json::from_str::<AuditEntry>(&record.doc).is_err() {
        return Err(("malformed", "its document is not an audit entry".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_predecessor_number_and_document() {
        let h = chain_hash(GENESIS, 1, "{}");
        assert_eq!(h.len(), 64);
        assert_ne!(h, chain_hash(GENESIS, 2, "{}"));
        assert_ne!(h, chain_hash(&h, 1, "{}"));
        assert_ne!(h, chain_hash(GENESIS, 1, "{ }"));
        assert_eq!(h, chain_hash(GENESIS, 1, "{}"));
    }
}
