//! The bare broadcast reference ("speed of light"): a tokio-tungstenite accept loop, one task per
//! connection, every text frame received is broadcast to every connection through
//! `tokio::sync::broadcast`. Tuned buffers as in performance.md §2.2. Plus plain-WebSocket client
//! helpers for driving it.

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Per-connection buffers of the reference server.
pub fn server_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
}

/// Runs the reference server until killed; logs "address=…" on stderr once listening.
pub async fn serve(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen).await.context("bind")?;
    eprintln!(
        "bare broadcast server is listening address={}",
        listener.local_addr()?
    );
    let (tx, _) = broadcast::channel::<Utf8Bytes>(1024);
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(ws) =
                tokio_tungstenite::accept_async_with_config(sock, Some(server_config())).await
            else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let mut rx = tx.subscribe();
            loop {
                tokio::select! {
                    m = stream.next() => match m {
                        Some(Ok(Message::Text(t))) => { let _ = tx.send(t); }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                    r = rx.recv() => match r {
                        Ok(t) => if sink.send(Message::Text(t)).await.is_err() { break },
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
    }
}

/// Reads text frames until `stop` turns true.
pub async fn receive_until(
    ws: crate::ddp::Ws,
    mut stop: watch::Receiver<bool>,
    mut on_text: impl FnMut(&str),
) -> Result<()> {
    let (_sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            _ = crate::ddp::stopped(&mut stop) => return Ok(()),
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => on_text(t.as_str()),
                Some(Ok(Message::Close(c))) => bail!("closed by server: {c:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("ws error: {e}"),
                None => bail!("connection ended"),
            },
        }
    }
}
