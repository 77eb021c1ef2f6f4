//! The Tokio peer for the benchmark: the upper-case line echo on a current-thread runtime. A
//! task per connection reads lines through a BufReader, upper-cases them (ASCII) into a
//! BufWriter, and flushes once the reader has nothing more buffered. Both keep Tokio's default
//! size (8 KiB), as most Tokio servers do. With --fanout it is the broadcast benchmark's peer
//! instead (bench/fanout.py): every line a client sends goes to every other client, the way
//! Tokio chat servers do it: a bounded mpsc channel and a writer task per client (which writes
//! what the channel holds, then flushes), the set of clients shared by the tasks of the one
//! thread, and a full channel drops the message.
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type Members = Rc<RefCell<Vec<(u64, mpsc::Sender<Rc<Vec<u8>>>)>>>;

async fn serve_fanout(stream: TcpStream, id: u64, members: Members) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    let (sender, mut receiver) = mpsc::channel::<Rc<Vec<u8>>>(4096);
    members.borrow_mut().push((id, sender));
    let writer = tokio::task::spawn_local(async move {
        let mut writer = BufWriter::new(write_half);
        while let Some(message) = receiver.recv().await {
            writer.write_all(&message).await?;
            while let Ok(more) = receiver.try_recv() {
                writer.write_all(&more).await?;
            }
            writer.flush().await?;
        }
        Ok::<(), io::Error>(())
    });
    let mut reader = BufReader::new(read_half);
    loop {
        let mut line = Vec::with_capacity(128);
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let line = Rc::new(line);
        for (other, sender) in members.borrow().iter() {
            if *other != id {
                let _ = sender.try_send(line.clone()); // full: a slow consumer misses it
            }
        }
    }
    members.borrow_mut().retain(|(other, _)| *other != id);
    let _ = writer.await;
    Ok(())
}

async fn run_fanout(host: String, port: u16) -> io::Result<()> {
    let listener = TcpListener::bind((host.as_str(), port)).await?;
    println!("tokio_server listening on {}", listener.local_addr()?);
    let members: Members = Rc::new(RefCell::new(Vec::new()));
    let mut next_id = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                let members = members.clone();
                tokio::task::spawn_local(serve_fanout(stream, next_id, members));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

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
    let mut fanout = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--fanout" {
            fanout = true;
            continue;
        }
        let value = args.next();
        match (arg.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => port = v.parse().expect("--port takes a number"),
            _ => {
                eprintln!("usage: tokio_server [--host 127.0.0.1] [--port PORT] [--fanout]");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let result = if fanout {
        tokio::task::LocalSet::new().block_on(&runtime, run_fanout(host, port))
    } else {
        runtime.block_on(run(host, port))
    };
    if let Err(e) = result {
        eprintln!("tokio_server: {e}");
        std::process::exit(1);
    }
}
