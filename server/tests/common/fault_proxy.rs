//! A TCP proxy between the server and a store emulator that misbehaves on demand: the network
//! faults a store connection meets in a cloud, on 127.0.0.1. The mode applies to new and to
//! already-open (pooled) connections alike, from their next chunk on.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Forward, each chunk after this delay.
    Delay(Duration),
    /// Reset the client's connection (RST) at its next byte.
    Reset,
    /// Accept and read everything, answer nothing.
    Blackhole,
    /// Answer the next request with bytes that are not HTTP, then close.
    Garbage,
    /// Nothing listens: connections are refused; open ones are closed.
    Refuse,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    _task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept_loop(listener, addr, upstream, watcher));
        Self { addr, mode, _task: Arc::new(Mutex::new(Some(task))) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(task) = self._task.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let mut listener = Some(listener);
    loop {
        if *mode.borrow() == Mode::Refuse {
            listener = None;
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let current = match &listener {
            Some(l) => l,
            None => {
                listener = Some(TcpListener::bind(addr).await.expect("rebind the proxy's port"));
                listener.as_ref().unwrap()
            }
        };
        tokio::select! {
            accepted = current.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(connection(client, upstream, mode.clone()));
                }
            }
            changed = mode.changed() => if changed.is_err() { return },
        }
    }
}

/// Not HTTP: what a middlebox or a wrong port answers.
const GARBAGE: &[u8] = b"\x00\xff\x13garbage that is not an HTTP response\r\n\r\n\x7f";

async fn connection(mut client: TcpStream, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let (mut to_server, mut to_client) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            read = client.read(&mut to_server) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                let current = *mode.borrow();
                match current {
                    Mode::Pass => {}
                    Mode::Delay(delay) => tokio::time::sleep(delay).await,
                    Mode::Blackhole => continue,
                    Mode::Reset => {
                        // SO_LINGER 0: the close sends RST (no blocking close with a zero linger).
                        #[allow(deprecated)]
                        let _ = client.set_linger(Some(Duration::ZERO));
                        return;
                    }
                    Mode::Garbage => {
                        let _ = client.write_all(GARBAGE).await;
                        return;
                    }
                    Mode::Refuse => return,
                }
                if server.write_all(&to_server[..n]).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut to_client) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                let current = *mode.borrow();
                match current {
                    Mode::Pass => {}
                    Mode::Delay(delay) => tokio::time::sleep(delay).await,
                    // Answers are dropped in these modes; the request side acts on the next request.
                    Mode::Blackhole | Mode::Reset | Mode::Garbage | Mode::Refuse => continue,
                }
                if client.write_all(&to_client[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
