//! `GET /api/v1/audit.events`: the tamper-evident audit log, newest first, for holders of
//! `can-audit-log`. Filters: `event` (a name or a dotted prefix such as `login`), `userId` (the
//! actor), `start`/`end` (ISO dates), `before` (an entry number, for the next page), `count`.
//!
//! `GET /api/v1/audit.verify`: checks the hash chain over entries `from` (default 1) to `to`
//! (default: the newest, with the head) for the same permission; a break is an answer, not an
//! error: `{intact: false, verified, broken: {seq, kind, reason}}`.

use super::registry::{Routes, get};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::store::AuditQuery;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/audit.events", get(events))
        .route("/api/v1/audit.verify", get(verify))
}

async fn verify(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    // An entry number that is not one is refused rather than read as "everything".
    let number = |key: &str| match p.get(key) {
        None => Ok(None),
        Some(_) => p.int(key).map(Some).ok_or_else(|| {
            ApiError::invalid_params(format!("{key} must be an audit entry number"))
        }),
    };
    let (from, to) = (number("from")?.unwrap_or(1), number("to")?);
    let check = s.core.audit_verify(&session.user, from, to).await?;
    let mut answer = json!({
        "intact": check.outcome.is_ok(),
        "from": check.from,
        "to": check.to,
        "head": check.head,
        "verified": check.last,
    });
    if let Err(broken) = &check.outcome {
        answer["broken"] = json!({"seq": broken.seq, "kind": broken.kind, "reason": broken.reason});
    }
    ok(answer)
}

async fn events(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let upper = s.core.settings.int("API_Upper_Count_Limit");
    let count = p
        .int("count")
        .filter(|c| *c > 0)
        .unwrap_or(s.core.settings.int("API_Default_Count"))
        .min(upper);
    let query = AuditQuery {
        event: p.str("event").map(str::to_string),
        actor_id: p.str("userId").map(str::to_string),
        since: p.date("start")?,
        until: p.date("end")?,
        before_seq: p.int("before"),
        limit: count,
        ..Default::default()
    };
    let records = s.core.audit_log(&session.user, &query).await?;
    let events: Vec<Value> = records.iter().map(|r| r.to_json()).collect();
    ok(json!({"count": events.len(), "events": events}))
}
