//! The settings catalogue: Rocket.Chat setting ids, their defaults and visibility, for what Apogee
//! implements. Operators override them with `OVERWRITE_SETTING_<Id>` or the settings API.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::LazyLock;

/// One catalogue entry.
pub struct SettingDef {
    pub id: &'static str,
    /// `boolean`, `string`, `int`, `select`, …, as Rocket.Chat names setting types.
    pub kind: &'static str,
    pub default: fn() -> Value,
    /// Public settings are readable without login (`settings.public`).
    pub public: bool,
    pub group: &'static str,
}

macro_rules! setting {
    ($id:literal, $kind:literal, $default:expr, $public:literal, $group:literal) => {
        SettingDef {
            id: $id,
            kind: $kind,
            default: || json!($default),
            public: $public,
            group: $group,
        }
    };
}

/// A workspace asset (`assets.setAsset`): the public setting `Assets_<name>`, whose value is
/// `{defaultUrl}`, plus `url` while an image is uploaded.
macro_rules! asset {
    ($name:literal, $default_url:literal) => {
        SettingDef {
            id: concat!("Assets_", $name),
            kind: "asset",
            default: || json!({ "defaultUrl": $default_url }),
            public: true,
            group: "Assets",
        }
    };
}

pub const CATALOGUE: &[SettingDef] = &[
    setting!(
        "Accounts_AllowAnonymousRead",
        "boolean",
        false,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowUserAvatarChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowDeleteOwnAccount",
        "boolean",
        false,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowEmailChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowPasswordChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowRealNameChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowUserProfileChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowUserStatusMessageChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_AllowUsernameChange",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Default_User_Preferences_sendOnEnter",
        "select",
        "normal",
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_EmailVerification",
        "boolean",
        false,
        true,
        "Accounts"
    ),
    setting!("Accounts_LoginExpiration", "int", 90, true, "Accounts"),
    setting!(
        "Accounts_ManuallyApproveNewUsers",
        "boolean",
        false,
        true,
        "Accounts"
    ),
    setting!("Accounts_PasswordReset", "boolean", true, true, "Accounts"),
    // Rocket.Chat's password policy; public because clients show it while the user types.
    setting!(
        "Accounts_Password_Policy_Enabled",
        "boolean",
        false,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_MinLength",
        "int",
        7,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_MaxLength",
        "int",
        -1,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_ForbidRepeatingCharacters",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_ForbidRepeatingCharactersCount",
        "int",
        3,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_AtLeastOneLowercase",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_AtLeastOneUppercase",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_AtLeastOneNumber",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_Policy_AtLeastOneSpecialCharacter",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_History_Enabled",
        "boolean",
        false,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_Password_History_Amount",
        "int",
        5,
        false,
        "Accounts"
    ),
    // Apogee's own: days a password stays valid before the user must change it; 0 is never.
    setting!(
        "Accounts_Password_Expiration_Days",
        "int",
        0,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_RegistrationForm",
        "select",
        "Public",
        true,
        "Accounts"
    ),
    // Two-factor authentication (Rocket.Chat's `2fa/server/startup/settings.ts`).
    setting!(
        "Accounts_TwoFactorAuthentication_Enabled",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_MaxDelta",
        "int",
        1,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_By_TOTP_Enabled",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_By_Email_Enabled",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_By_Email_Code_Expiration",
        "int",
        3600,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts",
        "int",
        5,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_RememberFor",
        "int",
        1800,
        false,
        "Accounts"
    ),
    setting!(
        "Accounts_TwoFactorAuthentication_Enforce_Password_Fallback",
        "boolean",
        true,
        true,
        "Accounts"
    ),
    setting!(
        "API_Allow_Infinite_Count",
        "boolean",
        true,
        false,
        "General"
    ),
    setting!("API_Default_Count", "int", 50, false, "General"),
    // Link previews (core's `url_preview`): as Rocket.Chat's defaults; ignored hosts are never
    // fetched for previews, whatever the outbound allowlist says.
    setting!("API_Embed", "boolean", true, true, "Message"),
    setting!(
        "API_EmbedIgnoredHosts",
        "string",
        "localhost, 127.0.0.1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16",
        false,
        "Message"
    ),
    setting!("API_EmbedSafePorts", "string", "80, 443", false, "Message"),
    // Apogee's: internal hosts, addresses or CIDR ranges outbound HTTP (previews, avatars from
    // URLs, outgoing webhooks) may reach; everything internal is refused otherwise.
    setting!("HTTP_Outbound_Allowlist", "string", "", false, "General"),
    // Apogee's: which Matrix servers this server federates with (core's `federation_policy`):
    // when the allow list is not empty, only its servers; never those denied.
    setting!(
        "Federation_Allowed_Servers",
        "string",
        "",
        false,
        "Federation"
    ),
    setting!(
        "Federation_Denied_Servers",
        "string",
        "",
        false,
        "Federation"
    ),
    setting!(
        "API_Enable_Rate_Limiter",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "API_Enable_Rate_Limiter_Limit_Calls_Default",
        "int",
        10,
        false,
        "Rate Limiter"
    ),
    setting!(
        "API_Enable_Rate_Limiter_Limit_Time_Default",
        "int",
        60000,
        false,
        "Rate Limiter"
    ),
    setting!("API_Upper_Count_Limit", "int", 100, false, "General"),
    setting!("API_User_Limit", "int", 500, false, "General"),
    // CORS for /api (apogee-rc's `cors`): off by default as in Rocket.Chat; `*` or a comma list.
    setting!("API_Enable_CORS", "boolean", false, false, "General"),
    setting!("API_CORS_Origin", "string", "*", false, "General"),
    setting!(
        "API_Use_REST_For_DDP_Calls",
        "boolean",
        true,
        true,
        "General"
    ),
    asset!("logo", "images/logo/logo.svg"),
    asset!("logo_dark", "images/logo/logo_dark.svg"),
    asset!("background", ""),
    asset!("favicon_ico", "favicon.ico"),
    asset!("favicon", "images/logo/icon.svg"),
    asset!("favicon_16", "images/logo/favicon-16x16.png"),
    asset!("favicon_32", "images/logo/favicon-32x32.png"),
    asset!("favicon_192", "images/logo/android-chrome-192x192.png"),
    asset!("favicon_512", "images/logo/android-chrome-512x512.png"),
    asset!("touchicon_180", "images/logo/apple-touch-icon.png"),
    asset!(
        "touchicon_180_pre",
        "images/logo/apple-touch-icon-precomposed.png"
    ),
    asset!("tile_70", "images/logo/mstile-70x70.png"),
    asset!("tile_144", "images/logo/mstile-144x144.png"),
    asset!("tile_150", "images/logo/mstile-150x150.png"),
    asset!("tile_310_square", "images/logo/mstile-310x310.png"),
    asset!("tile_310_wide", "images/logo/mstile-310x150.png"),
    asset!("safari_pinned", "images/logo/safari-pinned-tab.svg"),
    setting!("Discussion_enabled", "boolean", true, true, "Discussion"),
    setting!(
        "E2E_Allow_Unencrypted_Messages",
        "boolean",
        false,
        true,
        "E2E Encryption"
    ),
    setting!("E2E_Enable", "boolean", false, true, "E2E Encryption"),
    setting!(
        "E2E_Enable_Encrypt_Files",
        "boolean",
        true,
        true,
        "E2E Encryption"
    ),
    setting!(
        "E2E_Enabled_Default_DirectRooms",
        "boolean",
        false,
        true,
        "E2E Encryption"
    ),
    setting!(
        "E2E_Enabled_Default_PrivateRooms",
        "boolean",
        false,
        true,
        "E2E Encryption"
    ),
    setting!(
        "E2E_Enabled_Mentions",
        "boolean",
        true,
        true,
        "E2E Encryption"
    ),
    // Apogee's: how long a key-recovery request waits for officers (docs/E2EE-RECOVERY.md).
    setting!(
        "E2E_Recovery_Request_Expiry_Hours",
        "int",
        72,
        false,
        "E2E Encryption"
    ),
    // Apogee's: the Matrix room version of rooms made federated here (10, 11 or 12; 10 is
    // Rocket.Chat's, so its servers can join).
    setting!(
        "Federation_Room_Version",
        "string",
        "10",
        false,
        "Federation"
    ),
    // Apogee's: malware scanning of uploads by a clamd at this address (`unix:/path` or
    // `tcp://host:port`).
    // What other Matrix servers accept (Synapse's default `max_upload_size`): files of
    // federated rooms are held to it (docs/FEDERATION.md, file-size alignment).
    setting!(
        "Federation_Matrix_Max_File_Size",
        "int",
        52428800,
        false,
        "Federation"
    ),
    setting!(
        "FileUpload_ClamAV_Address",
        "string",
        "unix:/var/run/clamav/clamd.ctl",
        false,
        "FileUpload"
    ),
    setting!(
        "FileUpload_ClamAV_Enabled",
        "boolean",
        false,
        false,
        "FileUpload"
    ),
    setting!("FileUpload_Enabled", "boolean", true, true, "FileUpload"),
    setting!(
        "FileUpload_MediaTypeWhiteList",
        "string",
        "",
        true,
        "FileUpload"
    ),
    setting!(
        "FileUpload_MediaTypeBlackList",
        "string",
        "image/svg+xml",
        true,
        "FileUpload"
    ),
    setting!(
        "FileUpload_ProtectFiles",
        "boolean",
        true,
        true,
        "FileUpload"
    ),
    // Apogee's: uploads never posted as a message are removed after this long.
    setting!(
        "FileUpload_Unconfirmed_Expiry_Minutes",
        "int",
        60,
        false,
        "FileUpload"
    ),
    setting!(
        "FileUpload_MaxFileSize",
        "int",
        104857600,
        true,
        "FileUpload"
    ),
    setting!("Language", "language", "", true, "General"),
    setting!(
        "Livechat_Routing_Method",
        "select",
        "Auto_Selection",
        true,
        "Omnichannel"
    ),
    setting!(
        "Livechat_accept_chats_with_no_agents",
        "boolean",
        false,
        false,
        "Omnichannel"
    ),
    setting!("Message_AllowDeleting", "boolean", true, true, "Message"),
    setting!(
        "Message_AllowDeleting_BlockDeleteInMinutes",
        "int",
        0,
        true,
        "Message"
    ),
    setting!("Message_AllowEditing", "boolean", true, true, "Message"),
    setting!(
        "Message_AllowEditing_BlockEditInMinutes",
        "int",
        0,
        true,
        "Message"
    ),
    setting!("Message_AllowPinning", "boolean", true, true, "Message"),
    setting!("Message_AllowStarring", "boolean", true, true, "Message"),
    setting!("Message_MaxAllowedSize", "int", 5000, true, "Message"),
    setting!("Message_QuoteChainLimit", "int", 2, true, "Message"),
    setting!(
        "Message_Read_Receipt_Enabled",
        "boolean",
        false,
        true,
        "Message"
    ),
    setting!(
        "Message_Read_Receipt_Store_Users",
        "boolean",
        false,
        true,
        "Message"
    ),
    // E-mail (Rocket.Chat's SMTP group); read at each delivery.
    setting!("SMTP_Protocol", "select", "smtp", false, "Email"),
    setting!("SMTP_Host", "string", "", false, "Email"),
    setting!("SMTP_Port", "string", "", false, "Email"),
    setting!("SMTP_IgnoreTLS", "boolean", true, false, "Email"),
    setting!("SMTP_Username", "string", "", false, "Email"),
    setting!("SMTP_Password", "password", "", false, "Email"),
    setting!("From_Email", "string", "", false, "Email"),
    setting!(
        "Invitation_Subject",
        "string",
        "You have been invited to [Site_Name]",
        false,
        "Email"
    ),
    setting!(
        "Invitation_HTML",
        "code",
        "<p><strong>You have been invited to [Site_Name]</strong></p><p>Go to [Site_URL] and try the best open source chat solution available today!</p>",
        false,
        "Email"
    ),
    setting!(
        "Message_Attachments_Thumbnails_Enabled",
        "boolean",
        true,
        true,
        "Message"
    ),
    setting!(
        "Message_Attachments_Thumbnails_Width",
        "int",
        480,
        true,
        "Message"
    ),
    setting!(
        "Message_Attachments_Thumbnails_Height",
        "int",
        360,
        true,
        "Message"
    ),
    setting!("Site_Name", "string", "Apogee", true, "General"),
    setting!(
        "Site_Url",
        "string",
        "http://localhost:3000",
        true,
        "General"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
        "int",
        50,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Attempts_Until_Block_by_User",
        "int",
        10,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_By_Ip",
        "boolean",
        true,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_By_User",
        "boolean",
        true,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Enabled",
        "boolean",
        true,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Ip_Whitelist",
        "string",
        "",
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Time_To_Unblock_By_Ip_In_Minutes",
        "int",
        5,
        false,
        "Accounts"
    ),
    setting!(
        "Block_Multiple_Failed_Logins_Time_To_Unblock_By_User_In_Minutes",
        "int",
        5,
        false,
        "Accounts"
    ),
    setting!(
        "DDP_Rate_Limit_IP_Enabled",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_IP_Requests_Allowed",
        "int",
        120000,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_IP_Interval_Time",
        "int",
        60000,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_Enabled",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_Requests_Allowed",
        "int",
        1200,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_Interval_Time",
        "int",
        60000,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_Enabled",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_Requests_Allowed",
        "int",
        600,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_Interval_Time",
        "int",
        60000,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_By_Method_Enabled",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_By_Method_Requests_Allowed",
        "int",
        20,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_User_By_Method_Interval_Time",
        "int",
        10000,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_By_Method_Enabled",
        "boolean",
        true,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_By_Method_Requests_Allowed",
        "int",
        10,
        false,
        "Rate Limiter"
    ),
    setting!(
        "DDP_Rate_Limit_Connection_By_Method_Interval_Time",
        "int",
        10000,
        false,
        "Rate Limiter"
    ),
    // Response headers on every HTTP answer (apogee-rc's `security_headers`).
    setting!("Enable_CSP", "boolean", true, false, "General"),
    setting!("Extra_CSP_Domains", "string", "", false, "General"),
    setting!("Iframe_Restrict_Access", "boolean", true, false, "General"),
    setting!(
        "Iframe_X_Frame_Options",
        "string",
        "sameorigin",
        false,
        "General"
    ),
    setting!(
        "Default_Referrer_Policy",
        "select",
        "same-origin",
        true,
        "General"
    ),
    setting!("Threads_enabled", "boolean", true, true, "Threads"),
    setting!("UI_Use_Real_Name", "boolean", false, true, "Layout"),
    setting!("uniqueID", "string", "", true, "General"),
];

/// The catalogue entry of `id`. Looked up for every setting read, many per request, so by hash
/// rather than a scan of the whole catalogue.
pub fn find(id: &str) -> Option<&'static SettingDef> {
    static BY_ID: LazyLock<HashMap<&'static str, &'static SettingDef>> =
        LazyLock::new(|| CATALOGUE.iter().map(|d| (d.id, d)).collect());
    BY_ID.get(id).copied()
}

/// Parses an `OVERWRITE_SETTING_<Id>` string value into the setting's type.
pub fn parse_override(def: &SettingDef, raw: &str) -> Option<Value> {
    match def.kind {
        "boolean" => match raw.trim() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        "int" => raw.trim().parse::<i64>().ok().map(Value::from),
        "asset" => None,
        _ => Some(Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn overrides_parse_by_type() {
        let limiter = find("API_Enable_Rate_Limiter").unwrap();
        assert_eq!(parse_override(limiter, "false"), Some(Value::Bool(false)));
        assert_eq!(parse_override(limiter, "nope"), None);
        let size = find("Message_MaxAllowedSize").unwrap();
        assert_eq!(parse_override(size, "42"), Some(json!(42)));
        assert_eq!(
            parse_override(find("Site_Name").unwrap(), "x"),
            Some(json!("x"))
        );
    }
}
