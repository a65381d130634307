//! `mailmig login` against the live Dovecot: IMAP LOGIN over loopback works before, fails after
//! `disable` (both methods), works after `enable`; an open session is kicked; a prior
//! `allow_nets` is restored exactly.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Imap {
    fn connect(port: &str) -> Imap {
        let s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut imap = Imap {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        };
        let greeting = imap.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        imap
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        // A kicked session ends with BYE and EOF; a read error also means closed.
        if self.reader.read_line(&mut l).is_err() {
            return String::new();
        }
        l
    }

    /// Send a tagged command; the tagged reply, or the untagged BYE / EOF that ended it.
    fn command(&mut self, tag: &str, cmd: &str) -> String {
        if self
            .writer
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .is_err()
        {
            return String::new();
        }
        loop {
            let l = self.line();
            if l.is_empty() || l.starts_with(tag) || l.starts_with("* BYE") {
                return l;
            }
        }
    }
}

fn login(port: &str, user: &str, pass: &str) -> String {
    Imap::connect(port).command("a1", &format!("LOGIN {user} {pass}"))
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn disable_and_enable_logins(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let port = sb.get("IMAP_PORT");
    let passwd = sb.get("PASSWD_FILE");
    let user = "alice@example.test";
    let cli = |args: &[&str]| sb.mailmig(args);
    assert!(login(port, user, "alicepw").starts_with("a1 OK"));

    for method in ["allow-nets", "nologin"] {
        let mut session = Imap::connect(port);
        assert!(session
            .command("a1", &format!("LOGIN {user} alicepw"))
            .starts_with("a1 OK"));
        let before = fs_err::read(passwd).expect("read");
        let r = cli(&["login", "disable", "--method", method, user]);
        assert_eq!(r.code, 0, "{method}: {}{}", r.out(), r.err());
        // The open session was kicked.
        let reply = session.command("a2", "NOOP");
        assert!(
            reply.is_empty() || reply.starts_with("* BYE"),
            "{method}: session still open: {reply}"
        );
        let refused = login(port, user, "alicepw");
        assert!(refused.starts_with("a1 NO"), "{method}: {refused}");
        if method == "nologin" {
            assert!(refused.contains("CONTACTADMIN"), "{refused}");
        }
        // Bob is not affected.
        assert!(login(port, "bob@example.test", "bobpw").starts_with("a1 OK"));
        let r = cli(&["login", "enable", user]);
        assert_eq!(r.code, 0, "{method}: {}{}", r.out(), r.err());
        assert_eq!(
            fs_err::read(passwd).expect("read"),
            before,
            "{method}: record restored exactly"
        );
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            login(port, user, "alicepw").starts_with("a1 OK"),
            "{method}: login after enable"
        );
    }

    // A user who had an allow_nets of their own gets exactly that back.
    let r = sb.mailmig_bare(&[
        "passwd",
        "set",
        passwd,
        user,
        "allow_nets=192.0.2.0/24,127.0.0.0/8",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let before = fs_err::read(passwd).expect("read");
    assert_eq!(cli(&["login", "disable", user]).code, 0);
    assert!(
        String::from_utf8_lossy(&fs_err::read(passwd).expect("read")).contains("::allow_nets=\n")
    );
    assert_eq!(cli(&["login", "enable", user]).code, 0);
    assert_eq!(fs_err::read(passwd).expect("read"), before);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(login(port, user, "alicepw").starts_with("a1 OK"));
    // No state left, and enabling again says so.
    assert_ne!(cli(&["login", "enable", user]).code, 0);
}

/// With Dovecot's auth cache on, a passwd-file edit alone would not be seen for up to an hour:
/// `login disable` flushes the user's cached results, so the lock-out still holds at once.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn disable_works_with_the_auth_cache_on(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let conf = sb.get("DOVECOT_CONFIG");
    let port = sb.get("IMAP_PORT");
    let mut text = fs_err::read_to_string(conf).expect("read dovecot.conf");
    text.push_str(
        "\nauth_cache_size = 1M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 1 hour\n",
    );
    fs_err::write(conf, text).expect("write dovecot.conf");
    let r = sb.run("doveadm", &["-c", conf, "reload"]);
    assert_eq!(r.code, 0, "{}", r.err());
    std::thread::sleep(Duration::from_millis(1500));
    let user = "alice@example.test";
    // Fill the cache with a positive result.
    assert!(login(port, user, "alicepw").starts_with("a1 OK"));
    assert_eq!(
        sb.run("doveadm", &["-c", conf, "auth", "lookup", user])
            .code,
        0
    );
    let cli = |args: &[&str]| sb.mailmig(args);
    let r = cli(&["login", "disable", user]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(login(port, user, "alicepw").starts_with("a1 NO"));
    let r = cli(&["login", "enable", user]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(login(port, user, "alicepw").starts_with("a1 OK"));
}
