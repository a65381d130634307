//! Who writes a user's new mail: the Postfix transport that delivers the user's address, found
//! as Postfix finds it (`transport_maps` first, then the address class's default transport, then
//! the master.cf service it names), and whether that is Dovecot. After a switch only Dovecot
//! (LMTP or `dovecot-lda`) follows the userdb to the new location; `virtual(8)`, `local(8)`
//! writing `home_mailbox`/the spool, or a `mailbox_command` such as procmail or maildrop keep
//! writing the old maildir, where no client looks any more.
//!
//! Everything is asked of the real Postfix: parameters with `postconf -x`, the transport table
//! with `postmap -q` (whatever its type), services with `postconf -M`.

use std::collections::BTreeMap;

use camino::Utf8Path;

use super::discover::split_list;
use super::postconf;
use crate::process::{Argv, RunError, Runner};

/// How the user's mail is delivered, and whether Dovecot does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The address looked up.
    pub address: String,
    /// The address class (`local`, `virtual mailbox`, `relay`, `default`).
    pub class: &'static str,
    /// The transport (`lmtp`, `virtual`, `dovecot`, ...).
    pub transport: String,
    /// Where the transport came from (`transport_maps hash:/etc/postfix/transport (key example.com)`,
    /// `virtual_transport`, ...).
    pub source: String,
    /// The master.cf command of the transport's service (`lmtp`, `pipe argv=...`, `virtual`).
    pub command: String,
    /// Dovecot delivers (LMTP, or a pipe / `mailbox_command` running dovecot-lda / deliver).
    pub by_dovecot: bool,
    /// In words: what delivers and why that is (or is not) Dovecot.
    pub explanation: String,
}

const DOVECOT_LDA: &[&str] = &["dovecot-lda", "/deliver", "dovecot/deliver"];

fn is_lda(command: &str) -> bool {
    DOVECOT_LDA.iter().any(|l| command.contains(l))
}

/// What delivery depends on, read once for every user: the parameters (`postconf -x`) and the
/// commands of master.cf's `unix` services (`postconf -M`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    params: BTreeMap<String, String>,
    /// Service name → command and arguments.
    services: BTreeMap<String, String>,
}

impl DeliveryConfig {
    /// Read them from the Postfix of `config_dir`.
    pub fn read(runner: &dyn Runner, config_dir: &Utf8Path) -> Result<Self, RunError> {
        let params = postconf(
            runner,
            config_dir,
            &[
                "mydestination",
                "virtual_mailbox_domains",
                "relay_domains",
                "transport_maps",
                "local_transport",
                "virtual_transport",
                "relay_transport",
                "default_transport",
                "mailbox_transport",
                "mailbox_command",
                "myhostname",
            ],
        )?;
        let argv = Argv::new(["postconf", "-c", config_dir.as_str(), "-M"]);
        let out = runner.run_expect(&argv, None, &[0])?;
        // service type private unpriv chroot wakeup maxproc command args...
        let services = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let w: Vec<&str> = line.split_whitespace().collect();
                (w.len() > 7 && w[1] == "unix").then(|| (w[0].to_string(), w[7..].join(" ")))
            })
            .collect();
        Ok(Self { params, services })
    }

    /// The transport that delivers `address` (a user name with `@domain`, or a bare local
    /// user).
    pub fn delivery_of(
        &self,
        runner: &dyn Runner,
        config_dir: &Utf8Path,
        address: &str,
    ) -> Result<Delivery, RunError> {
        delivery_of(self, runner, config_dir, address)
    }

    /// The command (and arguments) of the master.cf `unix` service `name` (empty: none).
    fn service_command(&self, name: &str) -> String {
        self.services.get(name).cloned().unwrap_or_default()
    }
}

fn delivery_of(
    c: &DeliveryConfig,
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    address: &str,
) -> Result<Delivery, RunError> {
    let get = |k: &str| c.params.get(k).cloned().unwrap_or_default();
    let domain = address
        .rsplit_once('@')
        .map_or_else(|| get("myhostname"), |(_, d)| d.to_string())
        .to_ascii_lowercase();
    let in_list = |param: &str| {
        split_list(&get(param))
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&domain))
    };
    let (class, class_param) = if !address.contains('@') || in_list("mydestination") {
        ("local", "local_transport")
    } else if in_list("virtual_mailbox_domains") {
        ("virtual mailbox", "virtual_transport")
    } else if in_list("relay_domains") {
        ("relay", "relay_transport")
    } else {
        ("default", "default_transport")
    };
    let (mut transport, mut source) = split_transport(&get(class_param), class_param);
    if let Some((value, from)) =
        transport_maps_lookup(runner, config_dir, &get("transport_maps"), address, &domain)?
    {
        let (t, _) = split_transport(&value, "");
        if !t.is_empty() {
            transport = t;
            source = from;
        }
    }
    let command = c.service_command(&transport);
    let program = command
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let (by_dovecot, explanation) = match program.as_str() {
        "lmtp" => (true, format!("{transport} ({source}) is LMTP: Dovecot's LMTP follows the userdb")),
        "pipe" if is_lda(&command) => (true, format!("{transport} ({source}) pipes to dovecot-lda")),
        "pipe" => (false, format!("{transport} ({source}) pipes to a program other than dovecot-lda (`{command}`): it writes mail itself")),
        "virtual" => (false, format!("{transport} ({source}) is Postfix's virtual(8), which writes the old location itself")),
        "local" => {
            let mt = get("mailbox_transport");
            let mc = get("mailbox_command");
            if !mt.is_empty() {
                let (t, _) = split_transport(&mt, "mailbox_transport");
                let c = c.service_command(&t);
                let ok = c.starts_with("lmtp") || (c.starts_with("pipe") && is_lda(&c));
                (ok, format!("local(8) hands mailboxes to mailbox_transport = {mt} (`{c}`){}", if ok { "" } else { ", which is not Dovecot" }))
            } else if is_lda(&mc) {
                (true, format!("local(8) runs mailbox_command = {mc} (dovecot-lda)"))
            } else if !mc.is_empty() {
                (false, format!("local(8) runs mailbox_command = {mc}, which writes mail itself"))
            } else {
                (false, "local(8) writes home_mailbox / the mail spool itself (no mailbox_transport, no dovecot-lda mailbox_command)".to_string())
            }
        }
        "" => (false, format!("no master.cf service `{transport}` ({source})")),
        other => (false, format!("{transport} ({source}) is `{other}`, not Dovecot: the mail does not reach this Dovecot's userdb")),
    };
    Ok(Delivery {
        address: address.to_string(),
        class,
        transport,
        source,
        command,
        by_dovecot,
        explanation,
    })
}

/// `transport[:nexthop]` → the transport name and where it came from.
fn split_transport(value: &str, from: &str) -> (String, String) {
    let t = value
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    (t, from.to_string())
}

/// transport(5) lookups in order: the full address, the address without its extension, the
/// domain, each parent `.domain`, `*`; every table of `transport_maps` asked for each key with
/// `postmap -q` (exact for every table type). The value and where it was found.
fn transport_maps_lookup(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    maps: &str,
    address: &str,
    domain: &str,
) -> Result<Option<(String, String)>, RunError> {
    let maps = split_list(maps);
    if maps.is_empty() {
        return Ok(None);
    }
    let mut keys = vec![address.to_ascii_lowercase()];
    if address.contains('@') {
        keys.push(domain.to_string());
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            keys.push(format!(".{parent}"));
            rest = parent;
        }
    }
    keys.push("*".into());
    for key in &keys {
        for map in &maps {
            let argv = Argv::new(["postmap", "-c", config_dir.as_str(), "-q", key, map]);
            let out = runner.run_expect(&argv, None, &[0, 1])?;
            if out.code == Some(0) {
                let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
                return Ok(Some((value, format!("transport_maps {map} (key {key})"))));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Output;

    /// A Postfix with `main` parameters, a transport table (key → value) and master.cf services
    /// (name → command).
    struct Fake {
        main: Vec<(&'static str, &'static str)>,
        transport: Vec<(&'static str, &'static str)>,
        services: Vec<(&'static str, &'static str)>,
    }

    impl Runner for Fake {
        fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<Output, RunError> {
            let w: Vec<String> = argv
                .0
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let ok = |code: i32, text: String| {
                Ok(Output {
                    code: Some(code),
                    stdout: text.into_bytes(),
                    stderr: Vec::new(),
                })
            };
            match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["postconf", _, _, "-x", names @ ..] => ok(
                    0,
                    names
                        .iter()
                        .map(|n| {
                            let v = self
                                .main
                                .iter()
                                .find(|(k, _)| k == n)
                                .map_or("", |(_, v)| v);
                            format!("{n} = {v}\n")
                        })
                        .collect(),
                ),
                ["postmap", _, _, "-q", key, _] => {
                    match self.transport.iter().find(|(k, _)| k == key) {
                        Some((_, v)) => ok(0, format!("{v}\n")),
                        None => ok(1, String::new()),
                    }
                }
                ["postconf", _, _, "-M"] => ok(
                    0,
                    self.services
                        .iter()
                        .map(|(n, c)| format!("{n} unix - n n - - {c}\n"))
                        .collect(),
                ),
                _ => ok(1, String::new()),
            }
        }
    }

    fn check(fake: &Fake, address: &str) -> Delivery {
        let dir = Utf8Path::new("/etc/postfix");
        DeliveryConfig::read(fake, dir)
            .expect("read")
            .delivery_of(fake, dir, address)
            .expect("delivery")
    }

    #[test]
    fn local_delivery_is_dovecot_only_through_lda_or_its_transport() {
        let mut fake = Fake {
            main: vec![
                ("mydestination", "example.com, localhost"),
                ("local_transport", "local:$myhostname"),
                (
                    "mailbox_command",
                    "/usr/lib/dovecot/dovecot-lda -f \"$SENDER\" -a \"$RECIPIENT\"",
                ),
            ],
            transport: vec![],
            services: vec![("local", "local"), ("lmtp", "lmtp"), ("virtual", "virtual")],
        };
        let d = check(&fake, "alice@example.com");
        assert!(d.by_dovecot, "{}", d.explanation);
        assert_eq!((d.class, d.transport.as_str()), ("local", "local"));
        fake.main[2] = ("mailbox_command", "/usr/bin/procmail -a \"$EXTENSION\"");
        assert!(!check(&fake, "alice@example.com").by_dovecot);
        fake.main[2] = ("mailbox_command", "");
        let d = check(&fake, "alice@example.com");
        assert!(
            !d.by_dovecot && d.explanation.contains("home_mailbox"),
            "{}",
            d.explanation
        );
        fake.main
            .push(("mailbox_transport", "lmtp:unix:private/dovecot-lmtp"));
        assert!(check(&fake, "alice@example.com").by_dovecot);
        // A parent-domain transport_maps entry wins over the class default.
        fake.main
            .push(("transport_maps", "hash:/etc/postfix/transport"));
        fake.transport.push((".com", "virtual:"));
        let d = check(&fake, "alice@sub.example.com");
        assert!(!d.by_dovecot && d.source.contains("key .com"), "{d:?}");
    }
}
