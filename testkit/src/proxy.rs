//! A TCP proxy that records every byte it forwards and can cut all traffic for a while: it
//! stands where a relay operator would, and plays a relay outage. `hold` black-holes it
//! instead: connections stay open, nothing moves either way until `release` (a Wi-Fi handover,
//! a stalled path), and then what was sent meanwhile arrives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct CaptureProxy {
    pub addr: SocketAddr,
    pub captured: Arc<Mutex<Vec<u8>>>,
    cut: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
    held: watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

/// Waits while the proxy is held.
async fn wait_released(held: &mut watch::Receiver<bool>) {
    while *held.borrow_and_update() {
        if held.changed().await.is_err() {
            return;
        }
    }
}

impl CaptureProxy {
    pub async fn start(upstream: SocketAddr) -> CaptureProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let cut = Arc::new(AtomicBool::new(false));
        let (epoch, _) = watch::channel(0u64);
        let (held, _) = watch::channel(false);
        let (cap, cut2, ep, hold) = (captured.clone(), cut.clone(), epoch.clone(), held.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    break;
                };
                if cut2.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let Ok(up) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cap, mut killed) = (cap.clone(), ep.subscribe());
                let (mut held_a, mut held_b) = (hold.subscribe(), hold.subscribe());
                tokio::spawn(async move {
                    let (mut dr, mut dw) = down.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    let c1 = cap.clone();
                    let a = async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = dr.read(&mut buf).await {
                            wait_released(&mut held_a).await;
                            if n == 0 || uw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            c1.lock().expect("lock").extend_from_slice(&buf[..n]);
                        }
                    };
                    let b = async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = ur.read(&mut buf).await {
                            wait_released(&mut held_b).await;
                            if n == 0 || dw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            cap.lock().expect("lock").extend_from_slice(&buf[..n]);
                        }
                    };
                    tokio::select! {
                        _ = a => {}
                        _ = b => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        CaptureProxy {
            addr,
            captured,
            cut,
            epoch,
            held,
            _task: task,
        }
    }

    /// Stops moving bytes either way, without closing anything.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Moves bytes again.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Drops every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn captured(&self) -> Vec<u8> {
        self.captured.lock().expect("lock").clone()
    }
}

impl Drop for CaptureProxy {
    fn drop(&mut self) {
        self._task.abort();
        self.cut();
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
