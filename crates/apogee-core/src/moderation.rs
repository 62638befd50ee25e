//! Moderation: anyone may report a message they can read (`chat.reportMessage`) or a user
//! (`moderation.reportUser`); moderators (`view-moderation-console`) browse the reports, and
//! `manage-moderation-actions` dismisses them or deletes the reported messages. Dismissed
//! reports are kept, hidden, with who dismissed them, why and when.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{Change, Page};
use apogee_domain::{Timestamp, User, random_id};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A report of a message or of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Message,
    User,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Message => "message",
            ReportKind::User => "user",
        }
    }
}

/// Rocket.Chat's `IModerationReport`: a message report carries the `message` and its `room`, a
/// user report the `reportedUser`; both the `description` and who reported (`reportedBy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModerationReport {
    #[serde(rename = "_id")]
    pub id: String,
    pub description: String,
    #[serde(rename = "reportedBy")]
    pub reported_by: Value,
    pub ts: Timestamp,
    #[serde(
        rename = "_hidden",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub hidden: bool,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    /// `message` + `room`, or `reportedUser`; `moderationInfo` once dismissed.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModerationReport {
    pub fn kind(&self) -> ReportKind {
        if self.extra.contains_key("reportedUser") {
            ReportKind::User
        } else {
            ReportKind::Message
        }
    }

    /// The message's author, or the reported user.
    pub fn target_user_id(&self) -> String {
        let id = match self.kind() {
            ReportKind::Message => self.extra.get("message").map(|m| &m["u"]["_id"]),
            ReportKind::User => self.extra.get("reportedUser").map(|u| &u["_id"]),
        };
        id.and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// What a text filter searches: the description, the reported text and names, lowercased.
    pub fn search_text(&self) -> String {
        let pick = |v: Option<&Value>, keys: &[&str]| -> Vec<String> {
            keys.iter()
                .filter_map(|k| v.and_then(|v| v[*k].as_str()).map(str::to_string))
                .collect()
        };
        let mut parts = vec![self.description.clone()];
        parts.extend(pick(self.extra.get("message"), &["msg"]));
        parts.extend(pick(
            self.extra.get("message").map(|m| &m["u"]),
            &["username", "name"],
        ));
        parts.extend(pick(self.extra.get("reportedUser"), &["username", "name"]));
        parts.join("\n").to_lowercase()
    }

    pub fn message_id(&self) -> Option<String> {
        self.extra
            .get("message")
            .and_then(|m| m["_id"].as_str())
            .map(str::to_string)
    }

    pub fn rid(&self) -> Option<String> {
        self.extra
            .get("message")
            .and_then(|m| m["rid"].as_str())
            .map(str::to_string)
    }
}

/// Which reports to list.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    pub kind: ReportKind,
    pub message_id: Option<String>,
    /// The message author / reported user.
    pub target_user_id: Option<String>,
    /// Case-insensitive substring of the description or reported text.
    pub text: Option<String>,
}

/// The reports against one user, summed up (`reportsByUsers`, `userReports`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub target_user_id: String,
    pub count: i64,
    /// The newest report.
    pub latest: ModerationReport,
    /// Rooms the reported messages are in.
    pub rids: Vec<String>,
}

fn reporter(user: &User) -> Value {
    json!({"_id": user.id, "username": user.username, "name": user.name, "createdAt": user.created_at})
}

impl Core {
    fn require_console(&self, actor: &User) -> CoreResult<()> {
        self.authz.require(actor, "view-moderation-console", None)
    }

    fn require_moderation_actions(&self, actor: &User) -> CoreResult<()> {
        self.authz.require(actor, "manage-moderation-actions", None)
    }

    /// `chat.reportMessage`: a reader of the message reports it.
    pub async fn report_message(
        &self,
        actor: &User,
        message_id: &str,
        description: &str,
    ) -> CoreResult<ModerationReport> {
        let description = description.trim();
        if description.is_empty() {
            return Err(CoreError::bad(
                "error-invalid-description",
                "Invalid description",
            ));
        }
        let (message, view) = self
            .readable_message(actor, message_id)
            .await
            .map_err(|e| {
                if e.code == "error-not-allowed" {
                    e
                } else {
                    CoreError::bad("error-invalid-message", "Invalid message")
                }
            })?;
        let room = &view.room;
        let now = Timestamp::now();
        let mut extra = Map::new();
        extra.insert(
            "message".into(),
            serde_json::to_value(&message).unwrap_or_default(),
        );
        extra.insert(
            "room".into(),
            json!({"_id": room.id, "name": room.name, "fname": room.extra.get("fname"), "t": room.t}),
        );
        self.file_report(actor, description, now, extra).await
    }

    /// `moderation.reportUser`.
    pub async fn report_user(
        &self,
        actor: &User,
        user_id: &str,
        description: &str,
    ) -> CoreResult<ModerationReport> {
        let description = description.trim();
        if description.is_empty() {
            return Err(CoreError::invalid_params(
                "must NOT have fewer than 1 characters",
            ));
        }
        let reported = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| CoreError::bad("", "Invalid user id provided."))?;
        let now = Timestamp::now();
        let mut extra = Map::new();
        extra.insert(
            "reportedUser".into(),
            json!({
                "_id": reported.id, "username": reported.username, "name": reported.name,
                "createdAt": reported.created_at, "emails": reported.emails,
                "active": reported.active, "roles": reported.roles,
            }),
        );
        self.file_report(actor, description, now, extra).await
    }

    /// Stores a new report by `actor`.
    async fn file_report(
        &self,
        actor: &User,
        description: &str,
        now: Timestamp,
        extra: Map<String, Value>,
    ) -> CoreResult<ModerationReport> {
        let report = ModerationReport {
            id: random_id(),
            description: description.to_string(),
            reported_by: reporter(actor),
            ts: now,
            hidden: false,
            updated_at: now,
            extra,
        };
        self.commit(vec![Change::UpsertModerationReport(report.clone())])
            .await?;
        Ok(report)
    }

    /// `moderation.reports`: the open reports of one message.
    pub async fn message_reports(
        &self,
        actor: &User,
        message_id: &str,
        text: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<ModerationReport>, i64)> {
        self.require_console(actor)?;
        let q = ReportQuery {
            kind: ReportKind::Message,
            message_id: Some(message_id.to_string()),
            target_user_id: None,
            text: text.filter(|t| !t.is_empty()).map(str::to_string),
        };
        Ok(self.store.moderation_reports(&q, page).await?)
    }

    /// `moderation.reportInfo`.
    pub async fn moderation_report(&self, actor: &User, id: &str) -> CoreResult<ModerationReport> {
        self.require_console(actor)?;
        self.store
            .moderation_report_by_id(id)
            .await?
            .ok_or_else(|| CoreError::bad("", "error-report-not-found"))
    }

    /// `moderation.reportsByUsers` (message reports per author) or `moderation.userReports`
    /// (user reports per reported user), the most recently reported first.
    pub async fn report_summaries(
        &self,
        actor: &User,
        kind: ReportKind,
        text: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<ReportSummary>, i64)> {
        self.require_console(actor)?;
        let text = text.filter(|t| !t.is_empty());
        Ok(self
            .store
            .moderation_report_summaries(kind, text, page)
            .await?)
    }

    /// `moderation.user.reportedMessages` / `moderation.user.reportsByUserId`: the open reports
    /// against one user, with that user.
    pub async fn reports_against(
        &self,
        actor: &User,
        kind: ReportKind,
        user_id: &str,
        text: Option<&str>,
        page: Page,
    ) -> CoreResult<(Option<User>, Vec<ModerationReport>, i64)> {
        self.require_console(actor)?;
        let user = self.store.user_by_id(user_id).await?;
        if user.is_none() && kind == ReportKind::Message {
            return Err(CoreError::bad("", "error-invalid-user"));
        }
        let q = ReportQuery {
            kind,
            message_id: None,
            target_user_id: Some(user_id.to_string()),
            text: text.filter(|t| !t.is_empty()).map(str::to_string),
        };
        let (reports, total) = self.store.moderation_reports(&q, page).await?;
        Ok((user, reports, total))
    }

    /// Every open report matching `q` (dismissals and deletions act on all of them).
    async fn all_open_reports(&self, q: &ReportQuery) -> CoreResult<Vec<ModerationReport>> {
        Ok(self.store.moderation_reports(q, Page::ALL).await?.0)
    }

    fn hide(report: &mut ModerationReport, actor: &User, reason: &str, action: &str) {
        let now = Timestamp::now();
        report.hidden = true;
        report.updated_at = now;
        report.extra.insert(
            "moderationInfo".into(),
            json!({"hiddenAt": now, "moderatedBy": actor.id, "reason": reason, "action": action}),
        );
    }

    /// Dismisses `reports` in one batch, each with the same moderation info.
    async fn hide_all(
        &self,
        reports: Vec<ModerationReport>,
        actor: &User,
        reason: Option<&str>,
        action: Option<&str>,
    ) -> CoreResult<()> {
        let reason = Self::reason(reason);
        let action = action.unwrap_or("None");
        let changes = reports
            .into_iter()
            .map(|mut r| {
                Self::hide(&mut r, actor, reason, action);
                Change::UpsertModerationReport(r)
            })
            .collect();
        self.commit(changes).await
    }

    fn reason(reason: Option<&str>) -> &str {
        reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("No reason provided")
    }

    /// `moderation.dismissReports`: the open message reports of a message, or of all messages of
    /// a user.
    pub async fn dismiss_message_reports(
        &self,
        actor: &User,
        user_id: Option<&str>,
        message_id: Option<&str>,
        reason: Option<&str>,
        action: Option<&str>,
    ) -> CoreResult<()> {
        self.require_moderation_actions(actor)?;
        if user_id.is_none() && message_id.is_none() {
            return Err(CoreError::invalid_params(
                "must have required property 'userId'",
            ));
        }
        let q = ReportQuery {
            kind: ReportKind::Message,
            message_id: message_id.map(str::to_string),
            target_user_id: user_id.map(str::to_string),
            text: None,
        };
        let reports = self.all_open_reports(&q).await?;
        if reports.is_empty() {
            return Err(CoreError::bad("", "no-reports-found"));
        }
        self.hide_all(reports, actor, reason, action).await
    }

    /// `moderation.dismissUserReports`: the open reports of a user.
    pub async fn dismiss_user_reports(
        &self,
        actor: &User,
        user_id: &str,
        reason: Option<&str>,
        action: Option<&str>,
    ) -> CoreResult<()> {
        self.require_moderation_actions(actor)?;
        let q = ReportQuery {
            kind: ReportKind::User,
            message_id: None,
            target_user_id: Some(user_id.to_string()),
            text: None,
        };
        // Nothing open is not an error here (the suite dismisses twice and expects success).
        let reports = self.all_open_reports(&q).await?;
        if reports.is_empty() {
            return Ok(());
        }
        self.hide_all(reports, actor, reason, action).await
    }

    /// `moderation.user.deleteReportedMessages`: deletes every reported message of the user that
    /// still exists and dismisses their message reports, in one batch.
    pub async fn delete_reported_messages(
        &self,
        actor: &User,
        user_id: &str,
        reason: Option<&str>,
    ) -> CoreResult<()> {
        self.require_moderation_actions(actor)?;
        if self.store.user_by_id(user_id).await?.is_none() {
            return Err(CoreError::bad("", "error-invalid-user"));
        }
        let q = ReportQuery {
            kind: ReportKind::Message,
            message_id: None,
            target_user_id: Some(user_id.to_string()),
            text: None,
        };
        let reports = self.all_open_reports(&q).await?;
        if reports.is_empty() {
            return Err(CoreError::bad(
                "",
                "No reported messages found for this user.",
            ));
        }
        let mut changes = Vec::new();
        let mut deleted: Vec<String> = Vec::new();
        for report in &reports {
            let Some(id) = report.message_id() else {
                continue;
            };
            if deleted.contains(&id) {
                continue;
            }
            if let Some(message) = self.store.message_by_id(&id).await? {
                changes.extend(self.message_deletion(&message).await?);
                let details =
                    json!({"rid": message.rid, "messageId": message.id, "author": message.u.id});
                changes.push(self.audit("message.deleted", Some(actor), details));
            }
            deleted.push(id);
        }
        let reason = Self::reason(reason);
        for mut report in reports {
            Self::hide(&mut report, actor, reason, "DELETE Messages");
            changes.push(Change::UpsertModerationReport(report));
        }
        self.commit(changes).await
    }
}
