//! Rocket.Chat's permission ids with their default roles, and its built-in roles.
//!
//! Global roles live on the user (`admin`, `user`, `bot`, `app`, `guest`, `anonymous`);
//! room roles (`owner`, `moderator`, `leader`) live on the user's subscription to that room.

/// `(permission id, roles granted it by default)`, as Rocket.Chat ships them.
pub const DEFAULT_PERMISSIONS: &[(&str, &[&str])] = &[
    ("access-mailer", &["admin"]),
    ("access-permissions", &["admin"]),
    ("access-setting-permissions", &["admin"]),
    ("add-all-to-room", &["admin"]),
    ("add-oauth-service", &["admin"]),
    ("add-team-channel", &["admin", "owner", "moderator"]),
    ("add-team-member", &["admin", "owner", "moderator"]),
    ("add-user-to-any-c-room", &["admin"]),
    ("add-user-to-any-p-room", &[]),
    ("add-user-to-joined-room", &["admin", "owner", "moderator"]),
    ("api-bypass-rate-limit", &["admin", "bot", "app"]),
    ("archive-room", &["admin", "owner"]),
    ("assign-admin-role", &["admin"]),
    ("assign-roles", &["admin"]),
    ("ban-user", &["admin", "owner", "moderator"]),
    ("bulk-register-user", &["admin"]),
    ("bypass-time-limit-edit-and-delete", &["bot", "app"]),
    ("call-management", &["admin", "owner", "moderator"]),
    ("can-audit-log", &["admin"]),
    ("clean-channel-history", &["admin"]),
    ("create-c", &["admin", "user", "bot", "app"]),
    ("create-d", &["admin", "user", "bot", "app"]),
    ("create-invite-links", &["admin", "owner", "moderator"]),
    ("create-p", &["admin", "user", "bot", "app"]),
    ("create-personal-access-tokens", &["admin", "user"]),
    ("create-team", &["admin", "user"]),
    ("create-user", &["admin"]),
    ("delete-c", &["admin", "owner"]),
    ("delete-d", &["admin"]),
    ("delete-message", &["admin", "owner", "moderator"]),
    ("delete-own-message", &["admin", "user"]),
    ("delete-p", &["admin", "owner"]),
    ("delete-team", &["admin", "owner"]),
    ("delete-user", &["admin"]),
    ("edit-message", &["admin", "owner", "moderator"]),
    ("edit-other-user-active-status", &["admin"]),
    ("edit-other-user-avatar", &["admin"]),
    ("edit-other-user-e2ee", &["admin"]),
    ("edit-other-user-info", &["admin"]),
    ("edit-other-user-password", &["admin"]),
    ("edit-other-user-totp", &["admin"]),
    ("edit-privileged-setting", &["admin"]),
    ("edit-room", &["admin", "owner", "moderator"]),
    ("edit-room-avatar", &["admin", "owner", "moderator"]),
    ("edit-room-retention-policy", &["admin"]),
    ("edit-team", &["admin", "owner"]),
    ("edit-team-channel", &["admin", "owner", "moderator"]),
    ("edit-team-member", &["admin", "owner", "moderator"]),
    ("force-delete-message", &["admin", "owner"]),
    ("join-without-join-code", &["admin", "bot", "app"]),
    ("leave-c", &["admin", "user", "bot", "anonymous", "app"]),
    ("leave-p", &["admin", "user", "bot", "anonymous", "app"]),
    ("logout-device-management", &["admin"]),
    ("manage-assets", &["admin"]),
    ("manage-cloud", &["admin"]),
    ("manage-emoji", &["admin"]),
    ("manage-incoming-integrations", &["admin"]),
    ("manage-moderation-actions", &["admin"]),
    ("manage-oauth-apps", &["admin"]),
    ("manage-outgoing-integrations", &["admin"]),
    ("manage-own-incoming-integrations", &["admin"]),
    ("manage-own-outgoing-integrations", &["admin"]),
    ("manage-selected-settings", &["admin"]),
    ("manage-sounds", &["admin"]),
    ("manage-user-status", &["admin"]),
    ("mention-all", &["admin", "owner", "moderator", "user"]),
    ("mention-here", &["admin", "owner", "moderator", "user"]),
    ("message-impersonate", &["bot", "app"]),
    ("move-room-to-team", &["admin", "owner", "moderator"]),
    ("mute-user", &["admin", "owner", "moderator"]),
    ("pin-message", &["owner", "moderator", "admin"]),
    ("post-readonly", &["admin", "owner", "moderator"]),
    ("preview-c-room", &["admin", "user", "anonymous"]),
    ("remove-team-channel", &["admin", "owner", "moderator"]),
    ("remove-user", &["admin", "owner", "moderator"]),
    ("reset-other-user-e2e-key", &["admin"]),
    ("run-import", &["admin"]),
    ("run-migration", &["admin"]),
    ("send-mail", &["admin"]),
    ("send-many-messages", &["admin", "bot", "app"]),
    ("set-leader", &["admin", "owner"]),
    ("set-moderator", &["admin", "owner"]),
    ("set-owner", &["admin", "owner"]),
    ("set-react-when-readonly", &["admin", "owner"]),
    ("set-readonly", &["admin", "owner"]),
    ("start-discussion", &["admin", "user", "guest", "app"]),
    (
        "start-discussion-other-user",
        &["admin", "user", "guest", "app", "owner"],
    ),
    ("toggle-room-e2e-encryption", &["owner", "admin"]),
    ("unarchive-room", &["admin"]),
    ("user-generate-access-token", &["admin"]),
    ("view-all-team-channels", &["admin", "owner"]),
    ("view-all-teams", &["admin"]),
    (
        "view-broadcast-member-list",
        &["admin", "owner", "moderator"],
    ),
    ("view-c-room", &["admin", "user", "bot", "app", "anonymous"]),
    ("view-d-room", &["admin", "user", "bot", "app", "guest"]),
    ("view-device-management", &["admin"]),
    ("view-full-other-user-info", &["admin"]),
    ("view-history", &["admin", "user", "anonymous"]),
    ("view-join-code", &["admin"]),
    ("view-joined-room", &["guest", "bot", "app", "anonymous"]),
    ("view-logs", &["admin"]),
    ("view-moderation-console", &["admin"]),
    ("view-other-user-channels", &["admin"]),
    (
        "view-outside-room",
        &["admin", "owner", "moderator", "user"],
    ),
    ("view-p-room", &["admin", "user", "anonymous", "guest"]),
    ("view-privileged-setting", &["admin"]),
    ("view-room-administration", &["admin"]),
    ("view-statistics", &["admin"]),
    ("view-user-administration", &["admin"]),
];

/// Built-in roles: `(id, scope, description)`. Scope `Users` is global, `Subscriptions` is per room.
pub const DEFAULT_ROLES: &[(&str, &str, &str)] = &[
    ("admin", "Users", "Admin"),
    ("moderator", "Subscriptions", "Moderator"),
    ("leader", "Subscriptions", "Leader"),
    ("owner", "Subscriptions", "Owner"),
    ("user", "Users", ""),
    ("bot", "Users", ""),
    ("app", "Users", ""),
    ("guest", "Users", ""),
    ("anonymous", "Users", ""),
    ("livechat-agent", "Users", "Livechat Agent"),
    ("livechat-manager", "Users", "Livechat Manager"),
    ("livechat-monitor", "Users", "Livechat Monitor"),
];

/// Room-scoped roles, granted on a subscription.
pub const ROOM_ROLES: &[&str] = &["owner", "moderator", "leader"];

pub fn is_builtin_role(id: &str) -> bool {
    DEFAULT_ROLES.iter().any(|(r, _, _)| *r == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_unique_sorted_ids() {
        let ids: Vec<&str> = DEFAULT_PERMISSIONS.iter().map(|(id, _)| *id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            ids, sorted,
            "keep the catalogue sorted and free of duplicates"
        );
    }

    #[test]
    fn default_roles_exist() {
        for (_, roles) in DEFAULT_PERMISSIONS {
            for role in *roles {
                assert!(is_builtin_role(role), "{role}");
            }
        }
    }
}
