//! Invite links: a token that lets whoever holds it join a room, limited in time and uses.
//! Creating, listing and removing them needs `create-invite-links`.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::Change;
use apogee_domain::{Room, RoomType, Timestamp, User, random_id};
use serde::{Deserialize, Serialize};

/// Rocket.Chat's `IInvite`; the `_id` is the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    #[serde(rename = "_id")]
    pub id: String,
    pub rid: String,
    pub user_id: String,
    pub days: i64,
    pub max_uses: i64,
    pub uses: i64,
    pub created_at: Timestamp,
    /// `None` never expires (serialized as `null`).
    pub expires: Option<Timestamp>,
    #[serde(default)]
    pub url: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

impl Invite {
    fn usable(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| e > now) && (self.max_uses == 0 || self.uses < self.max_uses)
    }
}

const POSSIBLE_DAYS: &[i64] = &[0, 1, 7, 15, 30];
const POSSIBLE_USES: &[i64] = &[0, 1, 5, 10, 25, 50, 100];

/// What `useInviteToken` tells the joiner about the room.
#[derive(Debug, Clone)]
pub struct InvitedRoom {
    pub room: Room,
}

fn invalid_token() -> CoreError {
    CoreError::bad("error-invalid-token", "The invite token is invalid.")
}

impl Core {
    fn invite_url(&self, id: &str) -> String {
        format!(
            "{}/invite/{id}",
            self.settings.string("Site_Url").trim_end_matches('/')
        )
    }

    fn with_url(&self, mut invite: Invite) -> Invite {
        invite.url = self.invite_url(&invite.id);
        invite
    }

    /// `findOrCreateInvite`: the actor's still-valid invite with the same limits for the room,
    /// or a new one. The actor must be a member and hold `create-invite-links` there.
    pub async fn find_or_create_invite(
        &self,
        actor: &User,
        rid: &str,
        days: i64,
        max_uses: i64,
    ) -> CoreResult<Invite> {
        if rid.is_empty() {
            return Err(CoreError::bad(
                "error-the-field-is-required",
                "The field rid is required",
            ));
        }
        let sub = self.store.subscription(rid, &actor.id).await?;
        if !self
            .authz
            .has_in(actor, "create-invite-links", sub.as_ref())
        {
            return Err(CoreError::bad("not_authorized", ""));
        }
        let invalid_room = || CoreError::bad("error-invalid-room", "The rid field is invalid");
        if sub.is_none() {
            return Err(invalid_room());
        }
        let room = self.store.room_by_id(rid).await?.ok_or_else(invalid_room)?;
        if room.t == RoomType::Direct {
            return Err(CoreError::bad(
                "error-room-type-not-allowed",
                "Cannot create invite links for this room type",
            ));
        }
        if !POSSIBLE_DAYS.contains(&days) {
            return Err(CoreError::bad(
                "invalid-number-of-days",
                "Invite should expire in 1, 7, 15 or 30 days, or send 0 to never expire.",
            ));
        }
        if !POSSIBLE_USES.contains(&max_uses) {
            return Err(CoreError::bad(
                "invalid-number-of-uses",
                "Invite should be valid for 1, 5, 10, 25, 50, 100 or infinite (0) uses.",
            ));
        }
        let now = Timestamp::now();
        let existing = self.store.invites().await?.into_iter().find(|i| {
            i.user_id == actor.id
                && i.rid == rid
                && i.days == days
                && i.max_uses == max_uses
                && i.expires.is_none_or(|e| e > now)
        });
        if let Some(existing) = existing {
            return Ok(self.with_url(existing));
        }
        let invite = Invite {
            id: random_id(),
            rid: rid.to_string(),
            user_id: actor.id.clone(),
            days,
            max_uses,
            uses: 0,
            created_at: now,
            expires: (days > 0).then(|| now.plus_days(days)),
            url: String::new(),
            updated_at: now,
        };
        self.commit(vec![Change::UpsertInvite(invite.clone())])
            .await?;
        Ok(self.with_url(invite))
    }

    /// `listInvites`: every invite, for holders of `create-invite-links`.
    pub async fn list_invites(&self, actor: &User) -> CoreResult<Vec<Invite>> {
        if !self.authz.has(actor, "create-invite-links") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        let invites = self.store.invites().await?;
        Ok(invites.into_iter().map(|i| self.with_url(i)).collect())
    }

    /// `removeInvite/:_id`.
    pub async fn remove_invite(&self, actor: &User, id: &str) -> CoreResult<()> {
        if !self.authz.has(actor, "create-invite-links") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        if self.store.invite_by_id(id).await?.is_none() {
            return Err(CoreError::bad(
                "invalid-invitation-id",
                "Invalid Invitation _id",
            ));
        }
        self.commit(vec![Change::DeleteInvite(id.to_string())])
            .await
    }

    /// The invite and its room, if the token is usable.
    pub async fn validate_invite_token(&self, token: &str) -> CoreResult<(Invite, Room)> {
        if token.is_empty() {
            return Err(invalid_token());
        }
        let invite = self
            .store
            .invite_by_id(token)
            .await?
            .ok_or_else(invalid_token)?;
        let room =
            self.store.room_by_id(&invite.rid).await?.ok_or_else(|| {
                CoreError::bad("error-invalid-room", "The invite token is invalid.")
            })?;
        if !invite.usable(Timestamp::now()) {
            return Err(CoreError::bad(
                "error-invite-expired",
                "The invite token has expired.",
            ));
        }
        Ok((invite, room))
    }

    /// `useInviteToken`: joins the actor to the invite's room, counting the use.
    pub async fn use_invite_token(&self, actor: &User, token: &str) -> CoreResult<InvitedRoom> {
        let (mut invite, room) = self.validate_invite_token(token).await?;
        if room.t == RoomType::Direct {
            return Err(CoreError::bad(
                "error-room-type-not-allowed",
                "Can't join room of this type via invite",
            ));
        }
        if self
            .store
            .subscription(&room.id, &actor.id)
            .await?
            .is_some()
        {
            return Ok(InvitedRoom { room });
        }
        invite.uses += 1;
        invite.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpsertInvite(invite)];
        let rid = room.id.clone();
        changes.extend(Core::team_join_change(&room, actor, actor));
        changes.extend(self.join_changes(room, actor, None, true));
        self.commit(changes).await?;
        let room = self
            .store
            .room_by_id(&rid)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        Ok(InvitedRoom { room })
    }
}

/// The text of an HTML mail template: tags dropped, paragraphs and breaks as new lines.
fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut tag = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').to_ascii_lowercase();
                if (tag.starts_with('/') && name.starts_with('p')) || name.starts_with("br") {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .trim()
        .to_string()
}

impl Core {
    /// `sendInvitationEmail`: mails the invitation (`Invitation_Subject`, `Invitation_HTML`) to
    /// each valid address, queued in one batch; needs `bulk-register-user`. Returns the
    /// addresses mailed.
    pub async fn send_invitation_emails(
        &self,
        actor: &User,
        emails: &[String],
    ) -> CoreResult<Vec<String>> {
        if !self.authz.has(actor, "bulk-register-user") {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let valid: Vec<String> = emails
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| apogee_domain::user::is_valid_email(e))
            .collect();
        if valid.is_empty() {
            return Err(CoreError::bad(
                "error-email-send-failed",
                "No valid email addresses",
            ));
        }
        let fill = |template: &str| {
            template
                .replace("[Site_Name]", &self.settings.string("Site_Name"))
                .replace("[Site_URL]", &self.settings.string("Site_Url"))
        };
        let subject = fill(&self.settings.string("Invitation_Subject"));
        let text = html_to_text(&fill(&self.settings.string("Invitation_HTML")));
        let changes = valid
            .iter()
            .map(|to| {
                self.queue_mail(crate::mail::Mail {
                    to: to.clone(),
                    subject: subject.clone(),
                    text: text.clone(),
                })
            })
            .collect();
        self.commit(changes).await?;
        Ok(valid)
    }
}

#[cfg(test)]
mod mail_tests {
    #[test]
    fn invitation_html_becomes_text() {
        let text = super::html_to_text(
            "<p><strong>You have been invited to X &amp; Y</strong></p><p>Go to http://h</p>",
        );
        assert_eq!(text, "You have been invited to X & Y\nGo to http://h");
    }
}
