//! Moderation: `chat.reportMessage`, `moderation.*`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, ok};
use crate::params::Params;
use apogee_core::moderation::{ReportKind, ReportSummary};
use apogee_core::store::Page;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/chat.reportMessage", post(report_message))
        .route("/api/v1/moderation.reportUser", post(report_user))
        .route("/api/v1/moderation.reportsByUsers", get(reports_by_users))
        .route("/api/v1/moderation.userReports", get(user_reports))
        .route("/api/v1/moderation.reports", get(message_reports))
        .route("/api/v1/moderation.reportInfo", get(report_info))
        .route(
            "/api/v1/moderation.user.reportedMessages",
            get(user_reported_messages),
        )
        .route(
            "/api/v1/moderation.user.reportsByUserId",
            get(user_reports_by_id),
        )
        .route("/api/v1/moderation.dismissReports", post(dismiss_reports))
        .route(
            "/api/v1/moderation.dismissUserReports",
            post(dismiss_user_reports),
        )
        .route(
            "/api/v1/moderation.user.deleteReportedMessages",
            post(delete_reported_messages),
        )
}

fn page(s: &AppState, p: &Params) -> Page {
    p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    )
}

async fn report_message(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let message_id = p.required("messageId")?;
    let description = p.required("description")?;
    s.core
        .report_message(&a.user, message_id, description)
        .await?;
    ok(json!({}))
}

async fn report_user(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let user_id = p.required("userId")?;
    let description = p.required("description")?;
    let report = s.core.report_user(&a.user, user_id, description).await?;
    ok(json!({"acknowledged": true, "insertedId": report.id}))
}

/// `rooms` of a summary: the newest report's room in full, the others by id.
fn rooms_of(summary: &ReportSummary) -> Vec<Value> {
    let latest = summary.latest.extra.get("room").cloned();
    summary
        .rids
        .iter()
        .map(|rid| match &latest {
            Some(room) if room["_id"].as_str() == Some(rid) => room.clone(),
            _ => json!({"_id": rid}),
        })
        .collect()
}

async fn reports_by_users(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let (summaries, total) = s
        .core
        .report_summaries(&a.user, ReportKind::Message, p.str("selector"), page)
        .await?;
    let reports: Vec<Value> = summaries
        .iter()
        .map(|sum| {
            let message = sum.latest.extra.get("message").cloned().unwrap_or_default();
            json!({
                "userId": sum.target_user_id,
                "username": message["u"]["username"],
                "name": message["u"]["name"],
                "message": message["msg"],
                "msgId": message["_id"],
                "ts": sum.latest.ts,
                "rooms": rooms_of(sum),
                "count": sum.count,
            })
        })
        .collect();
    ok(json!({"reports": reports, "count": reports.len(), "offset": page.offset, "total": total}))
}

async fn user_reports(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let (summaries, total) = s
        .core
        .report_summaries(&a.user, ReportKind::User, p.str("selector"), page)
        .await?;
    let reports: Vec<Value> = summaries
        .iter()
        .map(|sum| {
            json!({
                "reportedUser": sum.latest.extra.get("reportedUser"),
                "ts": sum.latest.ts,
                "count": sum.count,
            })
        })
        .collect();
    ok(json!({"reports": reports, "count": reports.len(), "offset": page.offset, "total": total}))
}

async fn message_reports(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let msg_id = p.required("msgId")?;
    let (reports, total) = s
        .core
        .message_reports(&a.user, msg_id, p.str("selector"), page)
        .await?;
    ok(json!({"reports": reports, "count": reports.len(), "offset": page.offset, "total": total}))
}

async fn report_info(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let report = s
        .core
        .moderation_report(&a.user, p.required("reportId")?)
        .await?;
    ok(json!({"report": report}))
}

fn user_brief(user: Option<&apogee_core::domain::User>) -> Value {
    user.map_or(Value::Null, |u| {
        json!({"_id": u.id, "username": u.username, "name": u.name, "createdAt": u.created_at,
            "active": u.active, "roles": u.roles, "emails": u.emails})
    })
}

async fn user_reported_messages(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let user_id = p.required("userId")?;
    let (user, reports, total) = s
        .core
        .reports_against(
            &a.user,
            ReportKind::Message,
            user_id,
            p.str("selector"),
            page,
        )
        .await?;
    // One entry per message, as Rocket.Chat (a message may be reported several times).
    let mut seen = Vec::new();
    let messages: Vec<Value> = reports
        .iter()
        .filter(|r| {
            let id = r.message_id();
            let fresh = !seen.contains(&id);
            seen.push(id);
            fresh
        })
        .map(|r| {
            json!({"_id": r.id, "message": r.extra.get("message"), "ts": r.ts, "room": r.extra.get("room")})
        })
        .collect();
    ok(json!({
        "user": user_brief(user.as_ref()), "messages": messages, "count": reports.len(),
        "total": total, "offset": page.offset
    }))
}

async fn user_reports_by_id(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let user_id = p.required("userId")?;
    let (user, reports, total) = s
        .core
        .reports_against(&a.user, ReportKind::User, user_id, p.str("selector"), page)
        .await?;
    ok(json!({
        "user": user_brief(user.as_ref()), "reports": reports, "count": reports.len(),
        "total": total, "offset": page.offset
    }))
}

async fn dismiss_reports(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .dismiss_message_reports(
            &a.user,
            p.str("userId"),
            p.str("msgId"),
            p.str("reason"),
            p.str("action"),
        )
        .await?;
    ok(json!({}))
}

async fn dismiss_user_reports(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .dismiss_user_reports(
            &a.user,
            p.required("userId")?,
            p.str("reason"),
            p.str("action"),
        )
        .await?;
    ok(json!({}))
}

async fn delete_reported_messages(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
) -> ApiResult {
    s.core
        .delete_reported_messages(&a.user, p.required("userId")?, p.str("reason"))
        .await?;
    ok(json!({}))
}
