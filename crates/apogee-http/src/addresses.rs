//! Which addresses a fetch may reach: public ones, and internal ones only when the operator's
//! allowlist names them (by host name, address or CIDR range).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Not loopback, private, link-local (cloud metadata lives at 169.254.169.254), shared (CGNAT),
/// benchmarking, documentation, multicast, broadcast or unspecified; IPv6 unique-local and
/// link-local; and IPv4 addresses smuggled inside IPv6 (mapped, compatible, NAT64) are judged
/// as the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && v4.octets()[2] == 0))
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first & 0xffc0) == 0xfec0 // site local (deprecated, still routed by some)
        || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
}

/// The IPv4 address inside `::ffff:a.b.c.d`, `::a.b.c.d` and the NAT64 prefix `64:ff9b::/96`.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    None
}

/// The operator's exceptions.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    hosts: Vec<String>,
    ranges: Vec<(IpAddr, u8)>,
}

impl Allowlist {
    /// Entries are host names (`intranet.example`), addresses (`10.1.2.3`, `::1`, `[::1]`) or
    /// ranges (`10.0.0.0/8`); anything else is ignored.
    pub fn parse(entries: &[String]) -> Self {
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.trim().trim_start_matches('[').trim_end_matches(']');
            if entry.is_empty() {
                continue;
            }
            if let Some((addr, bits)) = entry.split_once('/') {
                if let (Ok(addr), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u8>()) {
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    if bits <= max {
                        list.ranges.push((addr, bits));
                    }
                }
            } else if let Ok(addr) = entry.parse::<IpAddr>() {
                list.ranges
                    .push((addr, if addr.is_ipv4() { 32 } else { 128 }));
            } else {
                list.hosts.push(entry.to_ascii_lowercase());
            }
        }
        list
    }

    /// Whether `ip`, found for `host`, may be reached.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
            || self
                .ranges
                .iter()
                .any(|(net, bits)| in_range(ip, *net, *bits))
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip(s)), "{s} counted as public");
        }
        for s in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s} counted as internal");
        }
    }

    #[test]
    fn the_allowlist_names_hosts_addresses_and_ranges() {
        let list = Allowlist::parse(&[
            "Intranet.Example".into(),
            "10.0.0.0/8".into(),
            "[::1]".into(),
            "nonsense/99".into(),
        ]);
        assert!(list.permits("intranet.example.", ip("192.168.0.9")));
        assert!(list.permits("x", ip("10.200.0.1")));
        assert!(list.permits("x", ip("::ffff:10.200.0.1")));
        assert!(list.permits("x", ip("::1")));
        assert!(!list.permits("x", ip("11.0.0.1")));
        assert!(!list.permits("x", ip("127.0.0.1")));
        assert!(!Allowlist::parse(&[]).permits("localhost", ip("127.0.0.1")));
    }
}
