//! A light reading of a `User-Agent` header into the device Rocket.Chat's device management shows
//! (`{type, name, longVersion, os: {name, version}, version}`). Recognises Rocket.Chat's own
//! mobile and desktop clients and the common browsers; anything else is an unknown browser.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Os {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// `browser`, `mobile-app` or `desktop-app`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub long_version: String,
    pub os: Os,
    pub version: String,
}

/// The version that follows `marker` (up to the next space, `;` or `)`), if the marker occurs.
fn version_after(ua: &str, marker: &str) -> Option<String> {
    let start = ua.find(marker)? + marker.len();
    let rest = &ua[start..];
    let end = rest.find([' ', ';', ')']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The major version: what the short `version` field shows.
fn short(version: &str) -> String {
    version.split('.').next().unwrap_or_default().to_string()
}

fn os_of(ua: &str) -> Os {
    let os = |name: &str, version: Option<String>| Os {
        name: name.to_string(),
        version: version.unwrap_or_default(),
    };
    if ua.contains("Android") {
        os("Android", version_after(ua, "Android "))
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.to_lowercase().contains("ios") {
        let v = version_after(ua, "OS ").map(|v| v.replace('_', "."));
        os(
            "iOS",
            v.or_else(|| version_after(&ua.to_lowercase(), "ios ")),
        )
    } else if ua.contains("Windows") {
        os("Windows", version_after(ua, "Windows NT "))
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        os(
            "Mac OS",
            version_after(ua, "Mac OS X ").map(|v| v.replace('_', ".")),
        )
    } else if ua.contains("CrOS") {
        os("Chromium OS", None)
    } else if ua.contains("Linux") {
        os("Linux", None)
    } else {
        os("", None)
    }
}

/// Parses a `User-Agent`; `None` or empty gives an unknown browser.
pub fn parse(user_agent: Option<&str>) -> Device {
    let ua = user_agent.unwrap_or_default().trim();
    let os = os_of(ua);
    let device = |kind: &str, name: &str, long: Option<String>| {
        let long_version = long.unwrap_or_default();
        Device {
            kind: kind.to_string(),
            name: name.to_string(),
            version: short(&long_version),
            long_version,
            os: os.clone(),
        }
    };
    // Rocket.Chat's mobile app: `RC Mobile; ios 14.4; v4.14.0 (1234)`.
    if let Some(rest) = ua.strip_prefix("RC Mobile;") {
        let version = rest
            .split(';')
            .nth(1)
            .map(|v| v.trim().trim_start_matches('v').to_string());
        return device("mobile-app", "Rocket.Chat", version);
    }
    // Rocket.Chat's desktop app is Electron with `Rocket.Chat/<version>` in the agent.
    if let Some(v) = version_after(ua, "Rocket.Chat/") {
        return device("desktop-app", "Rocket.Chat", Some(v));
    }
    let browsers: [(&str, &str); 7] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
        ("curl/", "curl"),
    ];
    for (marker, name) in browsers {
        if let Some(v) = version_after(ua, marker) {
            return device("browser", name, Some(v));
        }
    }
    // Anything else: the product token (`Name/1.2`), or nothing at all.
    let product = ua.split_whitespace().next().unwrap_or_default();
    let (name, version) = product.split_once('/').unwrap_or((product, ""));
    device("browser", name, Some(version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_agents() {
        let chrome = parse(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
        ));
        assert_eq!(
            (chrome.kind.as_str(), chrome.name.as_str()),
            ("browser", "Chrome")
        );
        assert_eq!(
            (chrome.version.as_str(), chrome.long_version.as_str()),
            ("120", "120.0.6099.109")
        );
        assert_eq!(
            (chrome.os.name.as_str(), chrome.os.version.as_str()),
            ("Windows", "10.0")
        );

        let firefox = parse(Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ));
        assert_eq!(
            (firefox.name.as_str(), firefox.os.name.as_str()),
            ("Firefox", "Linux")
        );

        let safari = parse(Some(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        ));
        assert_eq!(
            (
                safari.name.as_str(),
                safari.os.name.as_str(),
                safari.os.version.as_str()
            ),
            ("Safari", "Mac OS", "10.15.7")
        );

        let edge = parse(Some(
            "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36 Edg/120.0.2210.91",
        ));
        assert_eq!(edge.name, "Edge");

        let mobile = parse(Some("RC Mobile; ios 17.1; v4.44.0 (1234)"));
        assert_eq!(
            (
                mobile.kind.as_str(),
                mobile.os.name.as_str(),
                mobile.long_version.as_str()
            ),
            ("mobile-app", "iOS", "4.44.0 (1234)")
        );

        let desktop = parse(Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Rocket.Chat/3.9.11 Chrome/108.0 Electron/22.0.0 Safari/537.36",
        ));
        assert_eq!(
            (desktop.kind.as_str(), desktop.version.as_str()),
            ("desktop-app", "3")
        );

        let android = parse(Some(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
        ));
        assert_eq!(
            (android.os.name.as_str(), android.os.version.as_str()),
            ("Android", "14")
        );
    }

    #[test]
    fn unknown_or_missing_agents_are_unknown_browsers() {
        let none = parse(None);
        assert_eq!(
            (
                none.kind.as_str(),
                none.name.as_str(),
                none.os.name.as_str()
            ),
            ("browser", "", "")
        );
        let tool = parse(Some("python-requests/2.31.0"));
        assert_eq!(
            (tool.name.as_str(), tool.long_version.as_str()),
            ("python-requests", "2.31.0")
        );
    }
}
