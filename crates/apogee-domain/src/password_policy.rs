//! Rocket.Chat's password policy (`Accounts_Password_Policy_*`): the rules, the reasons a
//! password breaks them (with Rocket.Chat's error ids and messages) and the policy description
//! `pw.getPolicy` shows.

use serde_json::{Value, json};

/// The policy as configured. Lengths and counts below 1 are "no limit", as in Rocket.Chat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PasswordPolicy {
    pub enabled: bool,
    pub min_length: i64,
    pub max_length: i64,
    pub forbid_repeating: bool,
    /// How many equal characters may follow one another.
    pub repeating_count: i64,
    pub lowercase: bool,
    pub uppercase: bool,
    pub number: bool,
    pub special: bool,
}

/// One broken rule: Rocket.Chat's `{error, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub error: &'static str,
    pub message: &'static str,
}

pub const POLICY_NOT_MET: &str = "error-password-policy-not-met";
pub const POLICY_NOT_MET_MESSAGE: &str =
    "The password provided does not meet the server's password policy.";

impl PasswordPolicy {
    /// The rules `password` breaks; empty when it passes. A blank password always fails,
    /// with no particular reason (Rocket.Chat checks that even with the policy off).
    pub fn violations(&self, password: &str) -> Result<(), Vec<Reason>> {
        if password.trim().is_empty() {
            return Err(Vec::new());
        }
        if !self.enabled {
            return Ok(());
        }
        // Rocket.Chat counts UTF-16 code units (`String.length`).
        let length = password.encode_utf16().count() as i64;
        let mut reasons = Vec::new();
        let mut broken = |error, message| reasons.push(Reason { error, message });
        if self.min_length >= 1 && length < self.min_length {
            broken(
                "error-password-policy-not-met-minLength",
                "The password does not meet the minimum length password policy.",
            );
        }
        if self.max_length >= 1 && length > self.max_length {
            broken(
                "error-password-policy-not-met-maxLength",
                "The password does not meet the maximum length password policy.",
            );
        }
        if self.forbid_repeating && self.has_repeats(password) {
            broken(
                "error-password-policy-not-met-repeatingCharacters",
                "The password contains repeating characters which is against the password policy.",
            );
        }
        if self.lowercase && !password.chars().any(|c| c.is_ascii_lowercase()) {
            broken(
                "error-password-policy-not-met-oneLowercase",
                "The password does not contain at least one lowercase character which is against the password policy.",
            );
        }
        if self.uppercase && !password.chars().any(|c| c.is_ascii_uppercase()) {
            broken(
                "error-password-policy-not-met-oneUppercase",
                "The password does not contain at least one uppercase character which is against the password policy.",
            );
        }
        if self.number && !password.chars().any(|c| c.is_ascii_digit()) {
            broken(
                "error-password-policy-not-met-oneNumber",
                "The password does not contain at least one numerical character which is against the password policy.",
            );
        }
        if self.special
            && !password
                .chars()
                .any(|c| !c.is_ascii_alphanumeric() && c != ' ')
        {
            broken(
                "error-password-policy-not-met-oneSpecial",
                "The password does not contain at least one special character which is against the password policy.",
            );
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Rocket.Chat's `(.)\1{n,}`: a character followed by `n` or more copies of itself.
    fn has_repeats(&self, password: &str) -> bool {
        let limit = self.repeating_count.max(0) as usize;
        let mut run = 0usize;
        let mut previous = None;
        for c in password.chars() {
            run = if previous == Some(c) { run + 1 } else { 0 };
            previous = Some(c);
            if run >= limit {
                return true;
            }
        }
        false
    }

    /// `pw.getPolicy`: `{enabled, policy: [[name, {option}?], …]}`.
    pub fn describe(&self) -> Value {
        if !self.enabled {
            return json!({"enabled": false, "policy": []});
        }
        let mut policy = Vec::new();
        if self.min_length >= 1 {
            policy.push(json!(["get-password-policy-minLength", {"minLength": self.min_length}]));
        }
        if self.max_length >= 1 {
            policy.push(json!(["get-password-policy-maxLength", {"maxLength": self.max_length}]));
        }
        if self.forbid_repeating {
            policy.push(json!(["get-password-policy-forbidRepeatingCharacters"]));
        }
        if self.repeating_count != 0 {
            policy.push(json!([
                "get-password-policy-forbidRepeatingCharactersCount",
                {"forbidRepeatingCharactersCount": self.repeating_count}
            ]));
        }
        for (on, name) in [
            (
                self.lowercase,
                "get-password-policy-mustContainAtLeastOneLowercase",
            ),
            (
                self.uppercase,
                "get-password-policy-mustContainAtLeastOneUppercase",
            ),
            (
                self.number,
                "get-password-policy-mustContainAtLeastOneNumber",
            ),
            (
                self.special,
                "get-password-policy-mustContainAtLeastOneSpecialCharacter",
            ),
        ] {
            if on {
                policy.push(json!([name]));
            }
        }
        json!({"enabled": true, "policy": policy})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            enabled: true,
            min_length: 7,
            max_length: 12,
            forbid_repeating: true,
            repeating_count: 3,
            lowercase: true,
            uppercase: true,
            number: true,
            special: true,
        }
    }

    fn errors(p: &PasswordPolicy, pw: &str) -> Vec<&'static str> {
        p.violations(pw)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|r| r.error)
            .collect()
    }

    #[test]
    fn each_rule_has_its_reason() {
        let p = strict();
        assert!(p.violations("Abc@1234").is_ok());
        assert_eq!(
            errors(&p, "Ab@1"),
            ["error-password-policy-not-met-minLength"]
        );
        assert_eq!(
            errors(&p, "Abc@123456789"),
            ["error-password-policy-not-met-maxLength"]
        );
        // Three repeats after the first character is too many; two is fine.
        assert_eq!(
            errors(&p, "A@123aaaa"),
            ["error-password-policy-not-met-repeatingCharacters"]
        );
        assert!(p.violations("A@123aaa").is_ok());
        assert_eq!(
            errors(&p, "ABC@1234"),
            ["error-password-policy-not-met-oneLowercase"]
        );
        assert_eq!(
            errors(&p, "abc@1234"),
            ["error-password-policy-not-met-oneUppercase"]
        );
        assert_eq!(
            errors(&p, "Abc@defg"),
            ["error-password-policy-not-met-oneNumber"]
        );
        assert_eq!(
            errors(&p, "Abc 1234"),
            ["error-password-policy-not-met-oneSpecial"]
        );
        assert_eq!(
            errors(&p, "a"),
            [
                "error-password-policy-not-met-minLength",
                "error-password-policy-not-met-oneUppercase",
                "error-password-policy-not-met-oneNumber",
                "error-password-policy-not-met-oneSpecial"
            ]
        );
    }

    #[test]
    fn disabled_policy_only_refuses_blank_passwords() {
        let p = PasswordPolicy {
            enabled: false,
            ..strict()
        };
        assert!(p.violations("a").is_ok());
        assert_eq!(p.violations("   "), Err(Vec::new()));
        assert_eq!(p.describe(), json!({"enabled": false, "policy": []}));
    }

    #[test]
    fn describes_the_enabled_rules() {
        let d = strict().describe();
        assert_eq!(d["enabled"], true);
        assert_eq!(
            d["policy"][0],
            json!(["get-password-policy-minLength", {"minLength": 7}])
        );
        assert_eq!(
            d["policy"][3],
            json!(["get-password-policy-forbidRepeatingCharactersCount", {"forbidRepeatingCharactersCount": 3}])
        );
        assert_eq!(d["policy"].as_array().map(Vec::len), Some(8));
    }
}
