//! The built-in slash commands, as Rocket.Chat registers them (`slashCommands.add`): name,
//! parameter hint, description and permission are i18n keys and ids that clients translate and
//! check themselves. The order is Rocket.Chat's registration order, which `commands.list` keeps
//! when asked to sort by a field commands do not have (its default, `name`).

use serde::ser::{Serialize, SerializeMap, Serializer};

/// One built-in command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashCommand {
    pub command: &'static str,
    pub params: Option<&'static str>,
    pub description: &'static str,
    /// The permission(s) a client checks before offering the command; the server checks the
    /// permissions of the use-case the command runs, as the equivalent REST call would.
    pub permission: &'static [&'static str],
}

const fn cmd(
    command: &'static str,
    params: Option<&'static str>,
    description: &'static str,
    permission: &'static [&'static str],
) -> SlashCommand {
    SlashCommand {
        command,
        params,
        description,
        permission,
    }
}

const YOUR_MESSAGE_OPTIONAL: Option<&str> = Some("your_message_optional");

/// Every built-in command.
pub const COMMANDS: &[SlashCommand] = &[
    cmd("archive", Some("#channel"), "Archive", &["archive-room"]),
    cmd(
        "create",
        Some("#channel"),
        "Create_A_New_Channel",
        &["create-c", "create-p"],
    ),
    cmd("help", None, "Show_the_keyboard_shortcut_list", &[]),
    cmd("hide", Some("#room"), "Hide_room", &[]),
    cmd(
        "invite",
        Some("@username"),
        "Invite_user_to_join_channel",
        &["add-user-to-joined-room"],
    ),
    cmd(
        "invite-all-to",
        Some("#room"),
        "Invite_user_to_join_channel_all_to",
        &[
            "add-user-to-joined-room",
            "add-user-to-any-c-room",
            "add-user-to-any-p-room",
        ],
    ),
    cmd(
        "invite-all-from",
        Some("#room"),
        "Invite_user_to_join_channel_all_from",
        &["add-user-to-joined-room"],
    ),
    cmd(
        "join",
        Some("#channel"),
        "Join_the_given_channel",
        &["view-c-room"],
    ),
    cmd(
        "kick",
        Some("@username"),
        "Remove_someone_from_room",
        &["remove-user"],
    ),
    cmd(
        "leave",
        None,
        "Leave_the_current_channel",
        &["leave-c", "leave-p"],
    ),
    cmd(
        "part",
        None,
        "Leave_the_current_channel",
        &["leave-c", "leave-p"],
    ),
    cmd("me", Some("your_message"), "Displays_action_text", &[]),
    cmd(
        "msg",
        Some("@username <message>"),
        "Direct_message_someone",
        &["create-d"],
    ),
    cmd(
        "mute",
        Some("@username"),
        "Mute_someone_in_room",
        &["mute-user"],
    ),
    cmd(
        "unmute",
        Some("@username"),
        "Unmute_someone_in_room",
        &["mute-user"],
    ),
    cmd(
        "status",
        Some("Slash_Status_Params"),
        "Slash_Status_Description",
        &[],
    ),
    cmd(
        "topic",
        Some("Slash_Topic_Params"),
        "Slash_Topic_Description",
        &["edit-room"],
    ),
    cmd(
        "unarchive",
        Some("#channel"),
        "Unarchive",
        &["unarchive-room"],
    ),
    cmd(
        "gimme",
        YOUR_MESSAGE_OPTIONAL,
        "Slash_Gimme_Description",
        &[],
    ),
    cmd(
        "lennyface",
        YOUR_MESSAGE_OPTIONAL,
        "Slash_LennyFace_Description",
        &[],
    ),
    cmd(
        "shrug",
        YOUR_MESSAGE_OPTIONAL,
        "Slash_Shrug_Description",
        &[],
    ),
    cmd(
        "tableflip",
        YOUR_MESSAGE_OPTIONAL,
        "Slash_Tableflip_Description",
        &[],
    ),
    cmd(
        "unflip",
        YOUR_MESSAGE_OPTIONAL,
        "Slash_TableUnflip_Description",
        &[],
    ),
    // Rocket.Chat's federation command: `dm @user:server…` opens a federated DM; Apogee also
    // takes `invite @user:server…` (into the current room).
    cmd(
        "federation",
        Some("#command (dm) #user"),
        "Federation_slash_commands",
        &["access-federation"],
    ),
];

/// A command by name, ignoring case as Rocket.Chat's REST API does.
pub fn find(name: &str) -> Option<&'static SlashCommand> {
    let name = name.to_lowercase();
    COMMANDS.iter().find(|c| c.command == name)
}

/// Rocket.Chat's JSON for a command (`commands.list` / `commands.get`): `permission` is a string
/// for one permission, an array for several and absent for none; built-in commands run on the
/// server (`clientOnly: false`) and offer no previews.
impl Serialize for SlashCommand {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("command", self.command)?;
        if let Some(p) = self.params {
            m.serialize_entry("params", p)?;
        }
        m.serialize_entry("description", self.description)?;
        match self.permission {
            [] => {}
            [one] => m.serialize_entry("permission", one)?,
            many => m.serialize_entry("permission", many)?,
        }
        m.serialize_entry("clientOnly", &false)?;
        m.serialize_entry("providesPreview", &false)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_ignoring_case() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(
                COMMANDS[i + 1..].iter().all(|o| o.command != c.command),
                "{} twice",
                c.command
            );
        }
        assert_eq!(find("JOIN").map(|c| c.command), Some("join"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn serializes_like_rocket_chat() {
        let join = serde_json::to_value(find("join").unwrap()).unwrap();
        assert_eq!(
            join,
            serde_json::json!({"command": "join", "params": "#channel",
                "description": "Join_the_given_channel", "permission": "view-c-room",
                "clientOnly": false, "providesPreview": false})
        );
        let leave = serde_json::to_value(find("leave").unwrap()).unwrap();
        assert_eq!(
            leave["permission"],
            serde_json::json!(["leave-c", "leave-p"])
        );
        assert!(leave.get("params").is_none());
        let help = serde_json::to_value(find("help").unwrap()).unwrap();
        assert!(help.get("permission").is_none());
    }
}
