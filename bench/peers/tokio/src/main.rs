//! The Tokio peer for the benchmark: the upper-case line echo on a current-thread runtime. A
//! task per connection reads lines through a BufReader, upper-cases them (ASCII) into a
//! BufWriter, and flushes once the reader has nothing more buffered. Both keep Tokio's default
//! size (8 KiB), as most Tokio servers do.
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.split();
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

async fn run(host: String, port: u16) -> io::Result<()> {
    let listener = TcpListener::bind((host.as_str(), port)).await?;
    println!("tokio_server listening on {}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = serve(stream).await; // a reset connection just ends its task
                });
            }
            // Out of descriptors, most likely: give some connections time to close.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => port = v.parse().expect("--port takes a number"),
            _ => {
                eprintln!("usage: tokio_server [--host 127.0.0.1] [--port PORT]");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(host, port)) {
        eprintln!("tokio_server: {e}");
        std::process::exit(1);
    }
}
