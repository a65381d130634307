//! Minimal SMTP and IMAP clients for the live tests: an SMTP session that can stop between RCPT
//! and DATA (the in-flight transaction), tagged messages counted later by their
//! `X-Mailmig-Test` header, and an IMAP login.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One SMTP session.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    /// Connect to 127.0.0.1:`port` and say EHLO.
    pub fn connect(port: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(format!("127.0.0.1:{port}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut smtp = Smtp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        };
        smtp.expect(220)?;
        smtp.command("EHLO tester.example.org", 250)?;
        Ok(smtp)
    }

    fn reply(&mut self) -> std::io::Result<(u16, String)> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {all:?}"),
                ));
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok((code, all));
            }
        }
    }

    fn expect(&mut self, code: u16) -> std::io::Result<String> {
        let (got, text) = self.reply()?;
        if got != code {
            return Err(std::io::Error::other(format!(
                "expected {code}, got {text:?}"
            )));
        }
        Ok(text)
    }

    /// Send a command line and expect a reply code.
    pub fn command(&mut self, line: &str, code: u16) -> std::io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(code)
    }

    /// MAIL FROM and one RCPT TO per recipient.
    pub fn envelope(&mut self, to: &[&str]) -> std::io::Result<()> {
        self.command("MAIL FROM:<sender@example.org>", 250)?;
        for t in to {
            self.command(&format!("RCPT TO:<{t}>"), 250)?;
        }
        Ok(())
    }

    /// DATA with a message tagged `tag`; returns the final reply.
    pub fn data(&mut self, to: &[&str], tag: &str) -> std::io::Result<String> {
        self.command("DATA", 354)?;
        let body = format!(
            "From: <sender@example.org>\r\nTo: {}\r\nSubject: mailmig test {tag}\r\nX-Mailmig-Test: {tag}\r\nMessage-ID: <{tag}@test.example.org>\r\n\r\nbody of {tag}\r\n.\r\n",
            to.join(", ")
        );
        self.writer.write_all(body.as_bytes())?;
        self.expect(250)
    }

    /// QUIT.
    pub fn quit(mut self) {
        let _ = self.command("QUIT", 221);
    }
}

/// Send one tagged message to `to` in its own session.
pub fn send_tagged(port: &str, to: &[&str], tag: &str) -> std::io::Result<()> {
    let mut s = Smtp::connect(port)?;
    s.envelope(to)?;
    s.data(to, tag)?;
    s.quit();
    Ok(())
}

/// An IMAP connection after a successful LOGIN (or the server's refusal as an error).
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    /// Connect and LOGIN.
    pub fn login(port: &str, user: &str, password: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(format!("127.0.0.1:{port}"))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut imap = Imap {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            tag: 0,
        };
        let mut greeting = String::new();
        imap.reader.read_line(&mut greeting)?;
        imap.command(&format!("LOGIN \"{user}\" \"{password}\""))?;
        Ok(imap)
    }

    /// Run a command; the untagged lines on OK, an error with the tagged reply otherwise.
    pub fn command(&mut self, cmd: &str) -> std::io::Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.writer
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())?;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed; read {lines:?}"),
                ));
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(lines);
                }
                return Err(std::io::Error::other(line.trim_end().to_string()));
            }
            lines.push(line.trim_end().to_string());
        }
    }

    /// `STATUS INBOX (MESSAGES)`.
    pub fn inbox_messages(&mut self) -> std::io::Result<usize> {
        let lines = self.command("STATUS INBOX (MESSAGES)")?;
        lines
            .iter()
            .find_map(|l| {
                l.split("MESSAGES ")
                    .nth(1)
                    .and_then(|r| r.trim_end_matches(')').trim().parse().ok())
            })
            .ok_or_else(|| std::io::Error::other(format!("no STATUS in {lines:?}")))
    }
}

/// Mail sent in the background while a run works: one tagged message every `interval`, to each
/// recipient list of `targets` in turn, until [`Sender::finish`].
pub struct Sender {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<String>>,
}

impl Sender {
    /// Start sending to the sandbox's smtpd on `port`; tags are `PREFIX-N`.
    pub fn start(port: &str, targets: &[&[&str]], prefix: &str, interval: Duration) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (port, prefix, flag) = (port.to_string(), prefix.to_string(), stop.clone());
        let targets: Vec<Vec<String>> = targets
            .iter()
            .map(|t| t.iter().map(|a| (*a).to_string()).collect())
            .collect();
        let handle = std::thread::spawn(move || {
            let mut sent = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let to: Vec<&str> = targets[sent.len() % targets.len()]
                    .iter()
                    .map(String::as_str)
                    .collect();
                let tag = format!("{prefix}-{}", sent.len());
                send_tagged(&port, &to, &tag)
                    .unwrap_or_else(|e| panic!("sending {tag} to {to:?}: {e}"));
                sent.push(tag);
                std::thread::sleep(interval);
            }
            sent
        });
        Self { stop, handle }
    }

    /// Stop and return the tags sent, in order.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.join().expect("the sender thread")
    }
}

/// Tags and the recipients each was sent to.
pub type Sent = Vec<(String, Vec<String>)>;

/// Send tagged mail (`PREFIX-N`) until `stop`, one message every `pause`, spread over `users`:
/// message N to user 7N, every fourth also to user 13N+5 (shared messages). Returns what was
/// sent; a failed send panics.
pub fn spread_sender(
    port: String,
    users: Vec<String>,
    prefix: &'static str,
    pause: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Sent> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0usize;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let a = &users[(n * 7) % users.len()];
            let b = &users[(n * 13 + 5) % users.len()];
            let to: Vec<&str> = if n.is_multiple_of(4) && a != b {
                vec![a, b]
            } else {
                vec![a]
            };
            let tag = format!("{prefix}-{n}");
            send_tagged(&port, &to, &tag).expect("send");
            sent.push((tag, to.iter().map(|t| t.to_string()).collect()));
            n += 1;
            std::thread::sleep(pause);
        }
        sent
    })
}
