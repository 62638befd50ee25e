//! Rocket.Chat's permission ids with their default roles, and its built-in roles.
//!
//! Global roles live on the user (`admin`, `user`, `bot`, `app`, `guest`, `anonymous`);
//! room roles (`owner`, `moderator`, `leader`) live on the user's subscription to that room.

/// `(permission id, roles granted it by default)`: Rocket.Chat's whole catalogue
/// (`authorization/server/constant/permissions.ts`), omnichannel ids included so the admin grid
/// and `permissions.listAll` match a Rocket.Chat server. Two deliberate differences:
/// - grants to `federated-external` and `important-message-marker` are left out: those roles are
///   created by Rocket.Chat's federation and enterprise modules, which Apogee does not have;
/// - `add-team-channel`, `reset-other-user-e2e-key` and `view-history` are kept from earlier
///   Rocket.Chat releases, because existing databases and clients still refer to them;
/// - `can-audit-log` (Rocket.Chat's enterprise audit permission) guards Apogee's audit log.
///
/// New ids reach existing databases at start-up (`apogee_core::seed`); grants already stored are
/// never overwritten, so an admin's edits survive upgrades.
pub const DEFAULT_PERMISSIONS: &[(&str, &[&str])] = &[
    ("access-federation", &["admin", "user"]),
    ("access-mailer", &["admin"]),
    ("access-marketplace", &["admin", "user"]),
    ("access-permissions", &["admin"]),
    ("access-setting-permissions", &["admin"]),
    ("add-all-to-room", &["admin"]),
    (
        "add-livechat-department-agents",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("add-oauth-service", &["admin"]),
    ("add-team-channel", &["admin", "owner", "moderator"]),
    ("add-team-member", &["admin", "owner", "moderator"]),
    ("add-user-to-any-c-room", &["admin"]),
    ("add-user-to-any-p-room", &[]),
    ("add-user-to-joined-room", &["admin", "owner", "moderator"]),
    ("allow-external-voice-calls", &["admin", "user"]),
    ("allow-internal-voice-calls", &["admin", "user"]),
    ("api-bypass-rate-limit", &["admin", "bot", "app"]),
    ("archive-room", &["admin", "owner"]),
    ("assign-admin-role", &["admin"]),
    ("assign-roles", &["admin"]),
    ("ban-user", &["admin", "owner", "moderator"]),
    ("bulk-register-user", &["admin"]),
    ("bypass-time-limit-edit-and-delete", &["bot", "app"]),
    ("call-management", &["admin", "owner", "moderator", "user"]),
    ("can-audit-log", &["admin"]),
    (
        "change-livechat-room-visitor",
        &["admin", "livechat-manager", "livechat-agent"],
    ),
    ("clean-channel-history", &["admin"]),
    ("clear-oembed-cache", &["admin"]),
    (
        "close-livechat-room",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "close-others-livechat-room",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("convert-team", &["admin", "owner"]),
    ("create-c", &["admin", "user", "bot", "app"]),
    ("create-d", &["admin", "user", "bot", "app"]),
    ("create-invite-links", &["admin", "owner", "moderator"]),
    (
        "create-livechat-contact",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    ("create-p", &["admin", "user", "bot", "app"]),
    ("create-personal-access-tokens", &["admin", "user"]),
    ("create-team", &["admin", "user"]),
    ("create-team-channel", &["admin", "owner", "moderator"]),
    ("create-team-group", &["admin", "owner", "moderator"]),
    ("create-user", &["admin"]),
    ("delete-c", &["admin", "owner"]),
    ("delete-d", &["admin"]),
    ("delete-livechat-contact", &["livechat-manager", "admin"]),
    ("delete-message", &["admin", "owner", "moderator"]),
    ("delete-own-message", &["admin", "user"]),
    ("delete-p", &["admin", "owner"]),
    ("delete-team", &["admin", "owner"]),
    ("delete-team-channel", &["admin", "owner", "moderator"]),
    ("delete-team-group", &["admin", "owner", "moderator"]),
    ("delete-user", &["admin"]),
    (
        "edit-livechat-room-customfields",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    ("edit-message", &["admin", "owner", "moderator"]),
    (
        "edit-omnichannel-contact",
        &["livechat-manager", "livechat-agent", "admin"],
    ),
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
    ("export-messages-as-pdf", &["admin", "user"]),
    ("force-delete-message", &["admin", "owner"]),
    ("get-server-info", &["admin"]),
    ("join-without-join-code", &["admin", "bot", "app"]),
    ("kick-user-from-any-c-room", &["admin"]),
    ("kick-user-from-any-p-room", &[]),
    ("leave-c", &["admin", "user", "bot", "anonymous", "app"]),
    ("leave-p", &["admin", "user", "bot", "anonymous", "app"]),
    ("logout-device-management", &["admin"]),
    ("logout-other-user", &["admin"]),
    ("mail-messages", &["admin"]),
    ("manage-apps", &["admin"]),
    ("manage-assets", &["admin"]),
    ("manage-cloud", &["admin"]),
    // Apogee's own: authorise and revoke bots as encrypted participants (docs/E2EE.md).
    ("manage-e2e-bots", &["admin"]),
    // Apogee's own: set the E2EE key-recovery officers and threshold (docs/E2EE-RECOVERY.md).
    ("manage-e2e-recovery", &["admin"]),
    ("manage-email-inbox", &["admin"]),
    ("manage-emoji", &["admin"]),
    ("manage-incoming-integrations", &["admin"]),
    (
        "manage-livechat-agents",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "manage-livechat-departments",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("manage-livechat-managers", &["livechat-manager", "admin"]),
    ("manage-moderation-actions", &["admin"]),
    ("manage-oauth-apps", &["admin"]),
    ("manage-outgoing-integrations", &["admin"]),
    ("manage-own-incoming-integrations", &["admin"]),
    ("manage-own-outgoing-integrations", &["admin"]),
    ("manage-selected-settings", &["admin"]),
    ("manage-sounds", &["admin"]),
    ("manage-user-status", &["admin"]),
    ("mark-message-as-important", &["admin", "owner"]),
    ("mention-all", &["admin", "owner", "moderator", "user"]),
    ("mention-here", &["admin", "owner", "moderator", "user"]),
    ("message-impersonate", &["bot", "app"]),
    ("mobile-upload-file", &["user", "admin"]),
    ("move-room-to-team", &["admin", "owner", "moderator"]),
    ("mute-user", &["admin", "owner", "moderator"]),
    (
        "on-hold-livechat-room",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "on-hold-others-livechat-room",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("pin-message", &["owner", "moderator", "admin"]),
    ("post-readonly", &["admin", "owner", "moderator"]),
    ("preview-c-room", &["admin", "user", "anonymous"]),
    ("register-on-cloud", &["admin"]),
    (
        "remove-closed-livechat-room",
        &["livechat-manager", "admin"],
    ),
    (
        "remove-closed-livechat-rooms",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("remove-livechat-department", &["livechat-manager", "admin"]),
    ("remove-slackbridge-links", &["admin"]),
    ("remove-team-channel", &["admin", "owner", "moderator"]),
    ("remove-user", &["admin", "owner", "moderator"]),
    ("reset-other-user-e2e-key", &["admin"]),
    ("restart-server", &["admin"]),
    ("run-import", &["admin"]),
    ("run-migration", &["admin"]),
    (
        "save-others-livechat-room-info",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("send-mail", &["admin"]),
    ("send-many-messages", &["admin", "bot", "app"]),
    (
        "send-omnichannel-chat-transcript",
        &["livechat-manager", "admin"],
    ),
    ("set-important-message-marker", &["admin", "owner"]),
    ("set-leader", &["admin", "owner"]),
    ("set-moderator", &["admin", "owner"]),
    ("set-owner", &["admin", "owner"]),
    ("set-react-when-readonly", &["admin", "owner"]),
    ("set-readonly", &["admin", "owner"]),
    ("start-discussion", &["admin", "user", "guest", "app"]),
    (
        "start-discussion-other-user",
        &["admin", "user", "owner", "app"],
    ),
    ("sync-auth-services-users", &["admin"]),
    ("test-admin-options", &["admin"]),
    ("test-push-notifications", &["admin", "user"]),
    ("toggle-room-e2e-encryption", &["owner", "admin"]),
    (
        "transfer-livechat-guest",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("unarchive-room", &["admin"]),
    (
        "update-livechat-contact",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    ("user-generate-access-token", &["admin"]),
    (
        "videoconf-ring-users",
        &["admin", "owner", "moderator", "user"],
    ),
    ("view-all-team-channels", &["admin", "owner"]),
    ("view-all-teams", &["admin"]),
    (
        "view-broadcast-member-list",
        &["admin", "owner", "moderator"],
    ),
    ("view-c-room", &["admin", "user", "bot", "app", "anonymous"]),
    ("view-d-room", &["admin", "user", "bot", "app", "guest"]),
    ("view-device-management", &["admin"]),
    ("view-engagement-dashboard", &["admin"]),
    ("view-federation-data", &["admin"]),
    ("view-full-other-user-info", &["admin"]),
    ("view-history", &["admin", "user", "anonymous"]),
    ("view-import-operations", &["admin"]),
    ("view-join-code", &["admin"]),
    ("view-joined-room", &["guest", "bot", "app", "anonymous"]),
    (
        "view-l-room",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "view-livechat-analytics",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("view-livechat-appearance", &["livechat-manager", "admin"]),
    (
        "view-livechat-business-hours",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "view-livechat-contact",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "view-livechat-contact-history",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    ("view-livechat-customfields", &["livechat-manager", "admin"]),
    (
        "view-livechat-departments",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("view-livechat-installation", &["livechat-manager", "admin"]),
    (
        "view-livechat-manager",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "view-livechat-queue",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "view-livechat-real-time-monitoring",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "view-livechat-room-closed-by-another-agent",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "view-livechat-room-closed-same-department",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    (
        "view-livechat-room-customfields",
        &[
            "livechat-manager",
            "livechat-monitor",
            "livechat-agent",
            "admin",
        ],
    ),
    (
        "view-livechat-rooms",
        &["livechat-manager", "livechat-monitor", "admin"],
    ),
    ("view-livechat-triggers", &["livechat-manager", "admin"]),
    ("view-livechat-webhooks", &["livechat-manager", "admin"]),
    ("view-logs", &["admin"]),
    ("view-moderation-console", &["admin"]),
    (
        "view-omnichannel-contact-center",
        &[
            "livechat-manager",
            "livechat-agent",
            "livechat-monitor",
            "admin",
        ],
    ),
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
    fn catalogue_is_complete() {
        // Rocket.Chat's 174 ids, the three kept from earlier releases, `can-audit-log` and
        // device management's `logout-device-management` (an enterprise id there), and
        // Apogee's `manage-e2e-bots` and `manage-e2e-recovery`.
        assert_eq!(DEFAULT_PERMISSIONS.len(), 181);
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
