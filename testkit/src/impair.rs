//! A userspace UDP impairment proxy: it stands between a native client and the host's QUIC
//! socket and adds delay, drops packets, and can "rebind" (send from a new source port, as a NAT
//! does when its mapping changes). It counts every byte it forwards, so a test can prove the
//! connection really went through it.
//!
//! It runs on its own Tokio runtime, so blocking tests can use it as they use `TestHost`.
//!
//! It serves one client at a time: everything the host sends goes to the address a client was
//! last heard from, so two long-lived connections through one proxy get each other's datagrams
//! (and stall). Short-lived commands beside one attachment are fine (the attachment's next
//! datagram takes its address back, and QUIC resends what went astray meanwhile); a second
//! attachment belongs on a second device that does not go through the proxy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the proxy does to each packet, the same in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// One-way delay added to every packet (the round trip grows by twice this).
    pub delay: Duration,
    /// Probability in [0, 1) that a packet is dropped.
    pub loss: f64,
}

#[derive(Default)]
struct Counters {
    /// Payload bytes delivered to the host / to the client.
    to_host: AtomicU64,
    to_client: AtomicU64,
    /// Bytes the host sent to the proxy's current outbound socket since the last rebind.
    from_host_since_rebind: AtomicU64,
    /// Bytes the host sent to outbound sockets that were already replaced (and swallowed).
    to_stale: AtomicU64,
    dropped_packets: AtomicU64,
    rebinds: AtomicU64,
}

struct Shared {
    impair: Mutex<Impairment>,
    rng: Mutex<u64>,
    counters: Counters,
    client: Mutex<Option<SocketAddr>>,
    outbound: Mutex<Arc<UdpSocket>>,
    /// Until then, every datagram the host sends of at least this size is dropped.
    blackout: Mutex<Option<(Instant, usize)>>,
}

impl Shared {
    fn impairment(&self) -> Impairment {
        *self.impair.lock().expect("lock")
    }

    /// Whether to drop the next packet (xorshift64: reproducible, no dependency).
    fn drop_it(&self, loss: f64) -> bool {
        if loss <= 0.0 {
            return false;
        }
        let mut s = self.rng.lock().expect("lock");
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s as f64 / u64::MAX as f64) < loss
    }

    fn blacked_out(&self, len: usize) -> bool {
        self.blackout
            .lock()
            .expect("lock")
            .is_some_and(|(until, min)| len >= min && Instant::now() < until)
    }

    fn outbound(&self) -> Arc<UdpSocket> {
        self.outbound.lock().expect("lock").clone()
    }
}

/// The proxy. Clients send to [`UdpImpairProxy::addr`]; it forwards to `upstream`.
pub struct UdpImpairProxy {
    /// Where clients send.
    pub addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    rebind: watch::Sender<u64>,
    rt: Option<tokio::runtime::Runtime>,
}

type Packet = (Instant, Vec<u8>);

impl UdpImpairProxy {
    /// Listens on `front` (port 0 for any) and forwards to `upstream`, from a socket of the
    /// upstream's address family.
    pub fn start(front: SocketAddr, upstream: SocketAddr, impair: Impairment) -> UdpImpairProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("udp-impair")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (front_sock, outbound) = rt.block_on(async {
            let f = UdpSocket::bind(front).await.expect("bind proxy front");
            let o = UdpSocket::bind(any_port_like(upstream))
                .await
                .expect("bind proxy outbound");
            (Arc::new(f), Arc::new(o))
        });
        let addr = front_sock.local_addr().expect("front addr");
        let shared = Arc::new(Shared {
            impair: Mutex::new(impair),
            rng: Mutex::new(0x9e37_79b9_7f4a_7c15),
            counters: Counters::default(),
            client: Mutex::new(None),
            outbound: Mutex::new(outbound),
            blackout: Mutex::new(None),
        });
        let (rebind, _) = watch::channel(0u64);
        let (to_host_tx, to_host_rx) = mpsc::unbounded_channel::<Packet>();
        let (to_client_tx, to_client_rx) = mpsc::unbounded_channel::<Packet>();

        // Client -> proxy front: remember the client, impair, queue for the host.
        let (s, f) = (shared.clone(), front_sock.clone());
        rt.spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = f.recv_from(&mut buf).await {
                *s.client.lock().expect("lock") = Some(from);
                let im = s.impairment();
                if s.drop_it(im.loss) {
                    s.counters.dropped_packets.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if to_host_tx
                    .send((Instant::now() + im.delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        });
        // Queued -> host, from whichever outbound socket is current when it is due.
        let s = shared.clone();
        rt.spawn(delay_line(to_host_rx, move |data| {
            let s = s.clone();
            async move {
                let sock = s.outbound();
                if sock.send_to(&data, upstream).await.is_ok() {
                    s.counters
                        .to_host
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
        }));
        // Host -> the current outbound socket: impair, queue for the client. After a rebind
        // the old socket is no longer read (and is closed): what the host sends there is lost,
        // as with a NAT whose old mapping is gone.
        let (s, mut rebound) = (shared.clone(), rebind.subscribe());
        rt.spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let sock = s.outbound();
                tokio::select! {
                    r = sock.recv_from(&mut buf) => {
                        let Ok((n, _)) = r else { break };
                        s.counters.from_host_since_rebind.fetch_add(n as u64, Ordering::Relaxed);
                        let im = s.impairment();
                        if s.drop_it(im.loss) || s.blacked_out(n) {
                            s.counters.dropped_packets.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        if to_client_tx.send((Instant::now() + im.delay, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    r = rebound.changed() => if r.is_err() { break },
                }
            }
        });
        // Queued -> client.
        let (s, f) = (shared.clone(), front_sock);
        rt.spawn(delay_line(to_client_rx, move |data| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                let client = *s.client.lock().expect("lock");
                if let Some(c) = client
                    && f.send_to(&data, c).await.is_ok()
                {
                    s.counters
                        .to_client
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
        }));
        UdpImpairProxy {
            addr,
            upstream,
            shared,
            rebind,
            rt: Some(rt),
        }
    }

    /// Changes the delay and loss from now on.
    pub fn set(&self, impair: Impairment) {
        *self.shared.impair.lock().expect("lock") = impair;
    }

    /// Sends to the host from a new source port from now on; what the host still sends to the
    /// old one is swallowed.
    pub fn rebind(&self) -> SocketAddr {
        let rt = self.rt.as_ref().expect("runtime");
        let fresh = rt.block_on(async {
            UdpSocket::bind(any_port_like(self.upstream))
                .await
                .expect("bind new outbound")
        });
        let new_addr = fresh.local_addr().expect("addr");
        let old = std::mem::replace(
            &mut *self.shared.outbound.lock().expect("lock"),
            Arc::new(fresh),
        );
        // The old mapping stays bound but forwards nothing, like a NAT dropping packets for a
        // mapping it forgot (silently: no ICMP error goes back to the host).
        let s = self.shared.clone();
        rt.spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, _)) = old.recv_from(&mut buf).await {
                s.counters.to_stale.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        self.shared
            .counters
            .from_host_since_rebind
            .store(0, Ordering::Relaxed);
        self.shared.counters.rebinds.fetch_add(1, Ordering::Relaxed);
        self.rebind.send_modify(|g| *g += 1);
        new_addr
    }

    /// For `d` from now on, drops every datagram of 1200 bytes or more that the host sends:
    /// all that carry output, and all that carry a PATH_CHALLENGE (QUIC pads those to at least
    /// 1200 bytes). Smaller ones (acknowledgements, short answers) and all of the client's
    /// datagrams pass.
    pub fn drop_full_size_from_host(&self, d: Duration) {
        *self.shared.blackout.lock().expect("lock") = Some((Instant::now() + d, 1200));
    }

    /// The address the host sees the client at now.
    pub fn outbound_addr(&self) -> SocketAddr {
        self.shared.outbound().local_addr().expect("addr")
    }

    /// Payload bytes delivered to the host.
    pub fn bytes_to_host(&self) -> u64 {
        self.shared.counters.to_host.load(Ordering::Relaxed)
    }

    /// Payload bytes delivered to the client.
    pub fn bytes_to_client(&self) -> u64 {
        self.shared.counters.to_client.load(Ordering::Relaxed)
    }

    /// Bytes the host sent to the current outbound socket (since the last rebind).
    pub fn bytes_from_host_since_rebind(&self) -> u64 {
        self.shared
            .counters
            .from_host_since_rebind
            .load(Ordering::Relaxed)
    }

    /// Bytes the host sent to the client's earlier (replaced) addresses.
    pub fn bytes_to_stale_addresses(&self) -> u64 {
        self.shared.counters.to_stale.load(Ordering::Relaxed)
    }

    /// Packets dropped on purpose, both directions.
    pub fn dropped_packets(&self) -> u64 {
        self.shared.counters.dropped_packets.load(Ordering::Relaxed)
    }
}

impl Drop for UdpImpairProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Port 0 on the loopback address of `addr`'s family.
fn any_port_like(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv6() {
        "[::1]:0".parse().expect("addr")
    } else {
        "127.0.0.1:0".parse().expect("addr")
    }
}

/// Sends each queued packet when it is due, in order (the delay is the same for all packets
/// queued under one setting, so order is kept).
async fn delay_line<F, Fut>(mut rx: mpsc::UnboundedReceiver<Packet>, send: F)
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while let Some((due, data)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        send(data).await;
    }
}

/// Points a paired client at `addr` only: its `hosts.json` keeps no relay and no other direct
/// address of the host, so every packet of its connections goes to `addr`.
pub fn route_only_through(client: &super::TestClient, addr: SocketAddr) {
    let path = client.hosts_file();
    let mut hosts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("hosts.json")).expect("json");
    for h in hosts.as_array_mut().expect("a list of hosts") {
        h["relay_urls"] = serde_json::json!([]);
        h["direct_addrs"] = serde_json::json!([addr.to_string()]);
        // Set by hand: the client keeps them, whatever the host tells it.
        h["keep_routes"] = serde_json::json!(true);
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&hosts).expect("json")).expect("write");
}
