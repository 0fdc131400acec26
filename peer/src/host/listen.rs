//! Which addresses the host listens on and gives out. By default (`--listen ::`) both
//! families: the QUIC endpoint binds an IPv4 and an IPv6 socket on one port, the embedded
//! front a dual-stack TCP socket, and pairing codes carry a relay URL per family. A machine
//! without IPv6 gets IPv4 only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The default `--listen`: every address of both families.
pub const BOTH: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// Whether this machine can open IPv6 sockets at all.
pub fn ipv6_available() -> bool {
    std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).is_ok()
}

/// The address the embedded front binds: `listen`, or all IPv4 addresses when both families
/// were asked for and the machine has no IPv6.
pub fn front_ip(listen: IpAddr) -> IpAddr {
    if listen == BOTH && !ipv6_available() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        listen
    }
}

/// A UDP port for both families' sockets when none was given: one that is free for IPv4 now
/// (IPv6 takes the same one if it can), so the two sockets share a port across restarts.
pub fn udp_port(listen: IpAddr, wanted: u16) -> u16 {
    if wanted != 0 || listen != BOTH {
        return wanted;
    }
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.local_addr())
        .map_or(0, |a| a.port())
}

/// Where the host's own endpoint reaches its embedded front: on this machine.
pub fn loopback_for(listen: IpAddr) -> IpAddr {
    match listen {
        // A dual-stack or IPv4 socket on every address answers on 127.0.0.1.
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    }
}

/// The addresses written into the embedded relay's URLs: `--advertise`, else the listen
/// address if it is one, else the machine's LAN address of each family it listens on
/// (IPv4 first; `127.0.0.1` when there is none).
pub fn advertised(advertise: Option<IpAddr>, listen: IpAddr) -> Vec<IpAddr> {
    if let Some(ip) = advertise {
        return vec![ip];
    }
    if !listen.is_unspecified() {
        return vec![listen];
    }
    let mut out = vec![lan_ip4().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    if listen == BOTH
        && let Some(v6) = lan_ip6()
    {
        out.push(v6);
    }
    out
}

/// The IPv4 source address the OS would use towards the internet (no packet is sent).
fn lan_ip4() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The IPv6 source address the OS would use towards the internet, if it is a global or
/// unique-local one (a link-local address needs a zone and is no use in a URL).
fn lan_ip6() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).ok()?;
    let doc = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        9,
    );
    sock.connect(doc).ok()?;
    match sock.local_addr().ok()?.ip() {
        IpAddr::V6(ip)
            if !ip.is_unspecified() && !ip.is_loopback() && !ip.is_unicast_link_local() =>
        {
            Some(IpAddr::V6(ip))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses_follow_the_listen_address() {
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let v6: IpAddr = "2001:db8::7".parse().expect("ip");
        assert_eq!(advertised(Some(v4), BOTH), [v4]);
        assert_eq!(advertised(None, v6), [v6]);
        let any4 = advertised(None, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(any4.len(), 1);
        assert!(any4[0].is_ipv4());
        let both = advertised(None, BOTH);
        assert!(both[0].is_ipv4());
        assert!(both.iter().skip(1).all(|ip| ip.is_ipv6()));
        assert_eq!(loopback_for(BOTH), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            loopback_for("::1".parse().expect("ip")),
            Ipv6Addr::LOCALHOST
        );
        assert_eq!(udp_port("127.0.0.1".parse().expect("ip"), 0), 0);
        assert_eq!(udp_port(BOTH, 4242), 4242);
    }
}
