//! Which IP addresses are not on the public internet: loopback, private, link-local, cloud
//! metadata, multicast, reserved and the IPv6 forms that embed an IPv4 address. Such an
//! address is reachable only with a grant that names its host (spec/security-net.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public internet address, or `None` when it is one.
pub(crate) fn non_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4).map(str::to_string),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

/// `addr` is in the IPv4 block `net`/`len`.
fn in_v4(addr: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// `addr` is in the IPv6 block `net`/`len`.
fn in_v6(addr: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(addr) & mask == u128::from(net) & mask
}

/// The IPv4 blocks that are not public (RFC 6890 and its updates), most specific first so the
/// metadata address is named as such.
const V4_BLOCKS: &[([u8; 4], u32, &str)] = &[
    (
        [169, 254, 169, 254],
        32,
        "the cloud metadata address (link-local)",
    ),
    ([255, 255, 255, 255], 32, "the broadcast address"),
    ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    ([169, 254, 0, 0], 16, "a link-local address"),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 0, 0, 0], 24, "a reserved (IETF protocol) address"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a reserved (6to4 relay) address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    ([240, 0, 0, 0], 4, "a reserved address"),
];

fn v4_class(addr: Ipv4Addr) -> Option<&'static str> {
    V4_BLOCKS
        .iter()
        .find(|(net, len, _)| in_v4(addr, *net, *len))
        .map(|(_, _, why)| *why)
}

/// The IPv6 blocks that are not public, most specific first.
const V6_BLOCKS: &[(u128, u32, &str)] = &[
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        "the cloud metadata address (unique local)",
    ),
    (0, 128, "the unspecified address"),
    (1, 128, "a loopback address"),
    // Every address whose top 96 bits are zero or ::ffff: embeds an IPv4 address (mapped or
    // the deprecated "compatible" form); a socket may reach that IPv4 address through it.
    (0, 96, "an IPv4-compatible IPv6 address"),
    (0xffff_0000_0000, 96, "an IPv4-mapped IPv6 address"),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "a local-use NAT64 address",
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "a discard-only address",
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        32,
        "a Teredo tunnel address",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "a documentation address",
    ),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "a documentation address",
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "a unique local (private) address",
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "a link-local address",
    ),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "a site-local address",
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "a multicast address",
    ),
];

fn v6_class(addr: Ipv6Addr) -> Option<String> {
    if let Some((_, _, why)) = V6_BLOCKS
        .iter()
        .find(|(net, len, _)| in_v6(addr, Ipv6Addr::from(*net), *len))
    {
        return Some((*why).to_string());
    }
    // Translation prefixes carry an IPv4 address that the network will reach for us: the
    // address is as public as the one it embeds.
    let bits = u128::from(addr);
    let embedded = if in_v6(addr, Ipv6Addr::from(0x0064_ff9b_u128 << 96), 96) {
        // NAT64 well-known prefix 64:ff9b::/96: the IPv4 address is the low 32 bits.
        Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32))
    } else if in_v6(addr, Ipv6Addr::from(0x2002_u128 << 112), 16) {
        // 6to4 2002::/16: the IPv4 address is bits 16..48.
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    };
    embedded.and_then(|v4| v4_class(v4).map(|why| format!("a translated IPv6 form of {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<String> {
        non_public(text.parse().expect("test addresses are valid"))
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn internal_addresses_are_named() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade"),
            ("100.100.100.200", "carrier-grade"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fd00:ec2::254", "metadata"),
            ("ff02::1", "multicast"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
            ("2002:a00:1::", "private"),
            ("2001:db8::1", "documentation"),
        ];
        for (ip, word) in cases {
            let why = class(ip).unwrap_or_default();
            assert!(why.contains(word), "{ip}: {why:?} should say {word}");
        }
    }
}
