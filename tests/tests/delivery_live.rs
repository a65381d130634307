//! Mail delivered without Dovecot keeps landing in the old location after a switch, where no
//! client reads it. The preflight finds the transport that delivers the user's address as Postfix
//! does (transport_maps, the address class's transport, the master.cf service) and refuses (65,
//! naming it) unless it is Dovecot's LMTP or dovecot-lda; nothing is changed. On today's sandbox
//! (virtual_transport = lmtp:unix:...) the same migration passes.

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn snapshot(sb: &Sandbox) -> Vec<Vec<u8>> {
    ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect()
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn mail_not_delivered_by_dovecot_is_refused(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 3)]);
    let pc = sb.get("POSTFIX_CONFIG").to_string();
    let postconf = |args: &[&str]| {
        let mut all = vec!["-c", pc.as_str()];
        all.extend_from_slice(args);
        let r = sb.run("postconf", &all);
        assert_eq!(r.code, 0, "postconf {args:?}: {}", r.err());
    };
    let before = snapshot(&sb);
    let refused = |why: &str| {
        let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
        assert_eq!(r.code, 65, "{why}: {}", r.err());
        assert!(r.err().contains(why), "{why}: {}", r.err());
        assert_eq!(snapshot(&sb), before);
        assert!(!sb.home(alice).join("mdbox").exists());
        // The plan is refused the same way.
        let p = sb.mailmig(&["plan", alice, "--to", "mdbox:~/mdbox"]);
        assert_eq!(p.code, 65, "{why}: {}", p.err());
    };

    let lmtp = sb
        .run("postconf", &["-c", pc.as_str(), "-h", "virtual_transport"])
        .out();
    let lmtp = format!("virtual_transport = {}", lmtp.trim());
    // 1. Postfix's own virtual(8) delivers the virtual mailbox domain (the sandbox's master.cf
    // has no such service: without it the transport is refused as unknown).
    postconf(&["-e", "virtual_transport = virtual"]);
    refused("no master.cf service `virtual`");
    postconf(&["-M", "-e", "virtual/unix=virtual unix - n n - - virtual"]);
    refused("virtual(8)");

    // 2. A transport_maps entry for the user's address only (the domain default is LMTP).
    postconf(&["-e", &lmtp]);
    let transport = format!("{pc}/transport");
    fs_err::write(&transport, "alice@example.test procmail:\n").expect("transport");
    let r = sb.run(
        "postmap",
        &["-c", pc.as_str(), &format!("hash:{transport}")],
    );
    assert_eq!(r.code, 0, "{}", r.err());
    postconf(&["-e", &format!("transport_maps = hash:{transport}")]);
    postconf(&[
        "-M",
        "-e",
        "procmail/unix=procmail unix - n n - - pipe flags=DRhu user=vmail argv=/usr/bin/procmail -d ${recipient}",
    ]);
    refused("procmail");

    // 3. The same entry pointing at dovecot-lda is Dovecot: bob (domain default, LMTP) and alice
    // both pass.
    postconf(&[
        "-M",
        "-e",
        "procmail/unix=procmail unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/dovecot-lda -f ${sender} -a ${recipient}",
    ]);
    let r = sb.mailmig(&["plan", alice, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
    let r = sb.mailmig(&["plan", "bob@example.test", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
}
