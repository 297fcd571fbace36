//! Which HTTP version a new connection speaks, told from its first bytes without consuming
//! them (`MSG_PEEK`), so that hyper can be started for that one version.
//!
//! Why not let hyper-util's auto builder find out: it reads the first up to 24 bytes itself
//! and hands them back to HTTP/1 through a rewind wrapper. hyper's HTTP/1 reader then holds
//! those bytes when it asks for its 8 KiB read buffer, and `BytesMut` grows to twice that:
//! every connection keeps a 16 KiB read buffer for its whole life instead of 8 KiB. Measured
//! with `kasm-mcp-load --phases idle`, that was ≈ 4 KiB of resident memory per idle
//! connection or `/sse` stream (docs/BENCHMARKS.md, "Idle cost").

use tokio::net::TcpStream;

/// HTTP/2's connection preface (RFC 9113 §3.4): how a client that speaks HTTP/2 without TLS
/// ("prior knowledge") starts every connection. No HTTP/1 request line starts like it.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Not the HTTP/2 preface (or the peer closed before sending anything): HTTP/1.
    Http1,
    /// The whole HTTP/2 preface.
    Http2,
    /// A proper beginning of the HTTP/2 preface, the rest not yet arrived: undecided (the
    /// auto builder reads on and decides; rare, only for a client that splits the preface).
    Undecided,
}

/// Classify the bytes a peek returned.
pub fn classify(first: &[u8]) -> Sniffed {
    let n = first.len().min(H2_PREFACE.len());
    if first.is_empty() || first[..n] != H2_PREFACE[..n] {
        Sniffed::Http1
    } else if n == H2_PREFACE.len() {
        Sniffed::Http2
    } else {
        Sniffed::Undecided
    }
}

/// Wait until the client has sent something (or closed), and classify it. Nothing is
/// consumed: hyper reads the same bytes afterwards.
pub async fn sniff(stream: &TcpStream) -> std::io::Result<Sniffed> {
    let mut first = [0u8; H2_PREFACE.len()];
    let n = stream.peek(&mut first).await?;
    Ok(classify(first.get(..n).unwrap_or(&first)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn classifies_request_lines_and_the_preface() {
        assert_eq!(classify(b"GET /sse HTTP/1.1\r\n"), Sniffed::Http1);
        assert_eq!(
            classify(b"POST /mcp HTTP/1.1\r\nHost: x\r\n"),
            Sniffed::Http1
        );
        // `PRI` as an HTTP/1 method with another target is still HTTP/1.
        assert_eq!(classify(b"PRI /x HTTP/1.1\r\n"), Sniffed::Http1);
        assert_eq!(classify(b""), Sniffed::Http1);
        assert_eq!(classify(H2_PREFACE), Sniffed::Http2);
        let mut longer = H2_PREFACE.to_vec();
        longer.extend_from_slice(b"\x00\x00\x12\x04");
        assert_eq!(classify(&longer), Sniffed::Http2);
        assert_eq!(classify(b"P"), Sniffed::Undecided);
        assert_eq!(classify(&H2_PREFACE[..23]), Sniffed::Undecided);
    }

    /// Over a real socket: the peeked bytes are still there for the reader afterwards.
    #[tokio::test]
    async fn sniffing_consumes_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            client
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let _client = client.await.unwrap();
        assert_eq!(sniff(&server).await.unwrap(), Sniffed::Http1);
        let mut read = [0u8; 18];
        server.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_peer_that_closes_at_once_is_left_to_http1() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(sniff(&server).await.unwrap(), Sniffed::Http1);
    }
}
