//! Users as Rocket.Chat's `IUser`, minus secrets: password hashes and login tokens live apart,
//! so serializing a user can never leak them.

use crate::{Timestamp, UserRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub address: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: String,
    pub created_at: Timestamp,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub emails: Vec<Email>,
    pub roles: Vec<String>,
    /// `user`, `bot` or `app`.
    #[serde(rename = "type")]
    pub kind: String,
    pub active: bool,
    pub status: String,
    #[serde(default)]
    pub status_text: String,
    pub status_connection: String,
    pub status_default: String,
    #[serde(default)]
    pub utc_offset: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_password_change: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_e_tag: Option<String>,
    /// Long-tail fields (`customFields`, `settings`, `bio`, `nickname`, `language`, …) kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// A fresh, active, offline user.
    pub fn new(
        id: String,
        username: String,
        name: Option<String>,
        kind: &str,
        roles: Vec<String>,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            id,
            created_at: now,
            updated_at: now,
            username,
            name,
            emails: Vec::new(),
            roles,
            kind: kind.to_string(),
            active: true,
            status: "offline".into(),
            status_text: String::new(),
            status_connection: "offline".into(),
            status_default: "online".into(),
            utc_offset: 0.0,
            last_login: None,
            require_password_change: None,
            avatar_e_tag: None,
            extra: Map::new(),
        }
    }

    pub fn as_ref(&self) -> UserRef {
        UserRef {
            id: self.id.clone(),
            username: self.username.clone(),
            name: self.name.clone(),
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn primary_email(&self) -> Option<&str> {
        self.emails.first().map(|e| e.address.as_str())
    }

    pub fn is_bot(&self) -> bool {
        self.kind == "bot" || self.kind == "app"
    }

    /// `services.totp.enabled`: the user confirmed an authenticator app. Only this flag lives on
    /// the user document; the secret and backup codes are stored apart so rendering a user can
    /// never leak them.
    pub fn totp_enabled(&self) -> bool {
        self.service_flag("totp")
    }

    /// `services.email2fa.enabled`: the user asked for e-mailed second-factor codes.
    pub fn email2fa_enabled(&self) -> bool {
        self.service_flag("email2fa")
    }

    pub fn set_totp_enabled(&mut self, on: bool) {
        self.set_service_flag("totp", on);
    }

    pub fn set_email2fa_enabled(&mut self, on: bool) {
        self.set_service_flag("email2fa", on);
    }

    /// Addresses the user has verified (where e-mailed codes may go).
    pub fn verified_emails(&self) -> Vec<&str> {
        self.emails
            .iter()
            .filter(|e| e.verified)
            .map(|e| e.address.as_str())
            .collect()
    }

    fn service_flag(&self, service: &str) -> bool {
        self.extra
            .get("services")
            .and_then(|s| s.get(service))
            .and_then(|s| s.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn set_service_flag(&mut self, service: &str, on: bool) {
        let services = self
            .extra
            .entry("services")
            .or_insert_with(|| Value::Object(Map::new()));
        if !services.is_object() {
            *services = Value::Object(Map::new());
        }
        if let Value::Object(services) = services {
            services.insert(service.to_string(), serde_json::json!({ "enabled": on }));
        }
    }
}

/// Usernames Rocket.Chat accepts with its default `UTF8_User_Names_Validation` (`[0-9a-zA-Z-_.]+`).
pub fn is_valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A deliberately loose e-mail check (something@something.tld), as Rocket.Chat's `validateEmail`.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.starts_with('.')
        && domain.contains('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

/// Presence states and their stream codes (`0 offline, 1 online, 2 away, 3 busy`).
pub fn status_code(status: &str) -> Option<u8> {
    match status {
        "offline" | "invisible" => Some(0),
        "online" => Some(1),
        "away" => Some(2),
        "busy" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_serializes_as_rocket_chat_iuser() {
        let u = User::new(
            "abc".into(),
            "bob".into(),
            Some("Bob".into()),
            "user",
            vec!["user".into()],
        );
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["_id"], "abc");
        assert_eq!(v["type"], "user");
        assert_eq!(v["statusConnection"], "offline");
        assert!(v.get("services").is_none());
        let back: User = serde_json::from_value(v).unwrap();
        assert_eq!(back, u);
    }

    #[test]
    fn validates_usernames_and_emails() {
        assert!(is_valid_username("user.name-1_x"));
        assert!(!is_valid_username("bad name"));
        assert!(!is_valid_username(""));
        assert!(is_valid_email("a@b.co"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("ab.co"));
        assert!(!is_valid_email("a @b.co"));
    }
}
