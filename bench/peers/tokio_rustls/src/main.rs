//! The tokio-rustls peer for the TLS benchmark: the Tokio peer's upper-case line echo on a
//! current-thread runtime, over rustls with its defaults (TLS 1.2 and 1.3, resumption from its
//! in-memory session cache). A task per connection reads lines through a BufReader,
//! upper-cases them (ASCII) into a BufWriter, and flushes once the reader has nothing more
//! buffered.
use std::fs::File;
use std::io::{self, BufReader as StdBufReader};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{Certificate, PrivateKey, ServerConfig};
use tokio_rustls::TlsAcceptor;

async fn serve(stream: TcpStream, acceptor: TlsAcceptor) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let stream = acceptor.accept(stream).await?;
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(write_half);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return writer.flush().await;
        }
        line.make_ascii_uppercase();
        writer.write_all(&line).await?;
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

fn load(cert: &str, key: &str) -> io::Result<ServerConfig> {
    let certs = rustls_pemfile::certs(&mut StdBufReader::new(File::open(cert)?))?
        .into_iter()
        .map(Certificate)
        .collect();
    let key = rustls_pemfile::pkcs8_private_keys(&mut StdBufReader::new(File::open(key)?))?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no PKCS#8 key"))?;
    ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(certs, PrivateKey(key))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

async fn run(host: String, port: u16, config: ServerConfig) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((host.as_str(), port)).await?;
    println!("tokio_rustls_server listening on {}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, acceptor).await; // a failed connection just ends its task
                });
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

fn main() {
    let (mut host, mut port, mut cert, mut key) = (String::from("127.0.0.1"), 0u16, String::new(), String::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => port = v.parse().expect("--port takes a number"),
            ("--tls-cert", Some(v)) => cert = v,
            ("--tls-key", Some(v)) => key = v,
            _ => {
                eprintln!("usage: tokio_rustls_server --tls-cert FILE --tls-key FILE [--host H] [--port P]");
                std::process::exit(2);
            }
        }
    }
    let config = load(&cert, &key).unwrap_or_else(|e| {
        eprintln!("tokio_rustls_server: {e}");
        std::process::exit(1);
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().expect("runtime");
    if let Err(e) = runtime.block_on(run(host, port, config)) {
        eprintln!("tokio_rustls_server: {e}");
        std::process::exit(1);
    }
}
