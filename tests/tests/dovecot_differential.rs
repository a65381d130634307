//! The real Dovecot is the oracle for passwd-files: a file of tricky records is installed as the
//! sandbox's passdb + userdb, and for every user `doveadm user` and `doveadm auth lookup` must
//! agree with `mailmig passwd show` (existence, userdb fields with Dovecot's defaults, visible
//! passdb fields, failures).

use std::collections::BTreeMap;
use std::time::Duration;

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// Records from docs/dovecot-passwd-file.md (the research table), plus variations.
fn tricky_file(uid: &str, gid: &str) -> String {
    let lines = [
        "# mailmig differential test".to_string(),
        "minimal".into(),
        "passonly:{PLAIN}x".into(),
        "passonly3:{PLAIN}x:".into(),
        "twofields:{PLAIN}x::".into(),
        "threefields:{PLAIN}x:::".into(),
        "uidzero:{PLAIN}x:0:0::/home/u0".into(),
        "uidroot:{PLAIN}x:root:1000::/h".into(),
        "names:{PLAIN}x:vmail:vmail::/home/names".into(),
        "trailing:{PLAIN}x:1000 :1000::/h".into(),
        "nogid:{PLAIN}x:1000".into(),
        "gidzero:{PLAIN}x:1000:0::/h".into(),
        "bignum:{PLAIN}x:2147483648:1000::/h".into(),
        format!("zeros:{{PLAIN}}x:0{uid}:0{gid}::/h"),
        "legacy:{PLAIN}x:1000:1000:Gecos:/home/legacy:/bin/sh::maildir:~/Mail:LAYOUT=fs".into(),
        "trap:{PLAIN}x:1000:1000::/h:::nologin=y".into(),
        "maint:p::::::nologin=y reason=Maintenance".into(),
        "  # not a comment".into(),
        "   ".into(),
        "crlf:{PLAIN}x:1000:1000::/home/crlf\r".into(),
        "crcr:{PLAIN}x:1000:1000::/h\r\r".into(),
        "dup:{PLAIN}first:1000:1000::/dup1".into(),
        "dup:{PLAIN}second:1001:1001::/dup2".into(),
        "dropdup:{PLAIN}x:0:0::/first".into(),
        "dropdup:{PLAIN}x:1000:1000::/second".into(),
        "Upper:{PLAIN}x:1000:1000::/h".into(),
        "split:{PLAIN}x:1000:1000::/h::reason=Back soon".into(),
        "tabs:{PLAIN}x:1000:1000::/h::note=a\tb userdb_note=c\td".into(),
        "pct:{PLAIN}x:1000:1000::/h::p1=100%% p2=%u p3=end% userdb_q=%%u".into(),
        "badvar:{PLAIN}x:1000:1000::/h::p=50%off".into(),
        "badvar2:{PLAIN}x:1000:1000::/h::userdb_x=50%off".into(),
        "ovr:{PLAIN}x:1000:1000::/home/orig::userdb_home=/srv/%u userdb_uid=vmail".into(),
        "mailfs:{PLAIN}x:1000:1000::/h::userdb_mail=maildir:~/M:LAYOUT=fs".into(),
        "locked:{PLAIN}x:1000:1000::/h::allow_nets=".into(),
        "localok:{PLAIN}x:1000:1000::/h::allow_nets=local,10.0.0.0/8".into(),
        "nopw:{PLAIN}secret:1000:1000::/h::nopassword".into(),
        "nopw2::1000:1000::/h::nopassword".into(),
        "md5:0123456789abcdef0123456789abcdef[34]:1000:1000::/h".into(),
        "crypt:xy[13]:1000:1000::/h".into(),
        "short56:short[56]:1000:1000::/h".into(),
        "a@example.com:{PLAIN}x:1000:1000::/home/%d/%n::userdb_mail=maildir:/m/%d/%n dom=%d".into(),
        "homes:{PLAIN}x:1000:1000::/h/ with space/::".into(),
        "emptyhome:{PLAIN}x:1000:1000:::".into(),
        "flags:{PLAIN}x:1000:1000::/h::nodelay proxy host=1.2.3.4 nologin".into(),
        "repeat:{PLAIN}x:1000:1000::/h::x=1 y=2 x=3 userdb_home=/a userdb_home=/b".into(),
        "protect:{PLAIN}x:1000:1000::/h::x=1 x:remove userdb_home=/a userdb_home:protected=/b".into(),
        "renamed:{PLAIN}x:1000:1000::/h::userdb_user=other".into(),
        format!("vm:{{PLAIN}}x:{uid}:{gid}::/home/vm::userdb_mail=mdbox:~/mdbox quota_rule=*:storage=1G"),
        "john+tag@example.com:{PLAIN}x:1000:1000::/h".into(),
        "nul:{PLAIN}x\0junk:1000:1000::/h".into(),
        ":skipped:1000".into(),
        "".into(),
        "lastline:{PLAIN}x:1000:1000::/home/last".into(),
    ];
    // The sandbox's Dovecot accepts only vmail's uid and gid (first/last_valid_uid): every
    // record that should be found uses them. The last line has no final newline.
    lines
        .join("\n")
        .replace("1000:1000", &format!("{uid}:{gid}"))
}

fn users_of(file: &str) -> Vec<String> {
    let mut users: Vec<String> = file
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(':'))
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .filter(|u| !u.trim().is_empty() && !u.starts_with(' '))
        .collect();
    users.sort();
    users.dedup();
    users.extend([
        "nosuchuser".to_string(),
        "upper".to_string(),
        "other".to_string(),
    ]);
    users
}

/// `doveadm user U`: exit code and `field -> value` rows (header and blank rows skipped).
fn doveadm_user(sb: &Sandbox, conf: &str, user: &str) -> (i32, BTreeMap<String, String>) {
    let r = sb.run("doveadm", &["-c", conf, "user", user]);
    // split('\n'), not lines(): a value may end in `\r` (only one CR is removed from a line).
    let rows = r
        .out()
        .split('\n')
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (r.code, rows)
}

/// `doveadm auth lookup U`: exit code and the printed fields other than `user`.
fn doveadm_lookup(sb: &Sandbox, conf: &str, user: &str) -> (i32, Vec<(String, Option<String>)>) {
    let r = sb.run("doveadm", &["-c", conf, "auth", "lookup", user]);
    let fields = r
        .out()
        .split('\n')
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim_start();
            match l.split_once(" : ").or_else(|| l.split_once(": ")) {
                Some((k, v)) => (k.trim().to_string(), Some(v.to_string())),
                None => (l.trim().to_string(), None),
            }
        })
        .filter(|(k, _)| k != "user")
        .collect();
    (r.code, fields)
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn passwd_show_agrees_with_dovecot(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let conf = sb.get("DOVECOT_CONFIG").to_string();
    let passwd = sb.get("PASSWD_FILE").to_string();
    let file = tricky_file(sb.get("VMAIL_UID"), sb.get("VMAIL_GID"));
    fs_err::write(&passwd, &file).expect("install passwd-file");
    // Dovecot re-reads the file when its mtime second or size changed, at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    // Dovecot 2.4 expands `%{...}` variables (2.3: `%x`) and has no `key:protected` /
    // `key:remove` fields: mailmig's passwd views model 2.3's rules for these, so on 2.4 the
    // records using them are left out (docs/testing.md).
    let v24 = stack.dovecot_24();
    let version = if v24 { "2.4" } else { "2.3" };
    let mail_location = if v24 {
        String::new()
    } else {
        let r = sb.run("doveconf", &["-c", &conf, "-h", "mail_location"]);
        r.out().trim().to_string()
    };
    let mut compared = 0;
    for user in users_of(&file) {
        if v24
            && file.lines().any(|l| {
                l.split(':').next() == Some(user.as_str())
                    && (l.contains('%') || l.contains(":protected") || l.contains(":remove"))
            })
        {
            continue;
        }
        let show = sb.mailmig_bare(&[
            "passwd",
            "show",
            "--dovecot-version",
            version,
            "--json",
            &passwd,
            &user,
        ]);
        let (user_code, user_rows) = doveadm_user(&sb, &conf, &user);
        let (lookup_code, lookup_fields) = doveadm_lookup(&sb, &conf, &user);
        if show.code == 67 {
            assert_eq!(
                user_code, 67,
                "{user}: mailmig says no record, doveadm user: {user_rows:?}"
            );
            assert_eq!(
                lookup_code, 67,
                "{user}: mailmig says no record, auth lookup: {lookup_fields:?}"
            );
            compared += 1;
            continue;
        }
        assert_eq!(show.code, 0, "{user}: {}", show.err());
        let v: serde_json::Value = serde_json::from_str(&show.out()).expect("json");

        // userdb: existence, then uid/gid/home/mail with Dovecot's defaults, then the rest.
        match &v["userdb"] {
            serde_json::Value::Null if v.get("userdb_error").is_some() => {
                assert_eq!(
                    user_code, 75,
                    "{user}: userdb failure expected, got {user_rows:?}"
                );
            }
            serde_json::Value::Null => {
                assert_eq!(
                    user_code, 67,
                    "{user}: mailmig: no userdb data; doveadm: {user_rows:?}"
                );
            }
            serde_json::Value::Object(fields)
                if v24
                    && fields
                        .get("home")
                        .and_then(|h| h.as_str())
                        .is_none_or(str::is_empty) =>
            {
                // 2.4 cannot expand the global `mail_path = ~/Maildir` without a home: the
                // userdb lookup fails (measured; 2.3 returns the user).
                assert_eq!(user_code, 75, "{user}: no home on 2.4: {user_rows:?}");
            }
            serde_json::Value::Object(fields) => {
                assert_eq!(user_code, 0, "{user}: doveadm user failed");
                let mut want: BTreeMap<String, String> = BTreeMap::new();
                for k in ["uid", "gid", "home"] {
                    want.insert(k.into(), String::new());
                }
                if v24 {
                    // 2.4 prints the global mail_path (~/Maildir), expanded with the home.
                    let home = fields
                        .get("home")
                        .and_then(|h| h.as_str())
                        .unwrap_or_default();
                    want.insert("mail_path".into(), format!("{home}/Maildir"));
                } else {
                    want.insert("mail".into(), mail_location.clone());
                }
                for (k, val) in fields {
                    let val = val.as_str().unwrap_or_default().to_string();
                    want.insert(k.clone(), val);
                }
                let mut got = user_rows.clone();
                // doveadm prints `user` only when the userdb renamed the user.
                if let Some(renamed) = got.remove("user") {
                    assert_eq!(
                        fields.get("user").and_then(|u| u.as_str()),
                        Some(renamed.as_str()),
                        "{user}"
                    );
                }
                want.remove("user");
                assert_eq!(got, want, "{user}: doveadm user vs mailmig userdb view");
            }
            other => panic!("{user}: unexpected userdb {other}"),
        }

        // passdb: existence (allow_nets), failures, visible fields.
        let passdb_failed = v.get("passdb_error").is_some();
        let denied = matches!(v["passdb"].get("allow_nets"), Some(serde_json::Value::Null))
            || v["passdb"]
                .get("allow_nets")
                .and_then(|n| n.as_str())
                .is_some_and(|n| !n.split([',', ' ']).any(|x| x == "local"));
        if passdb_failed {
            assert_eq!(lookup_code, 75, "{user}: passdb failure expected");
        } else if denied {
            assert_eq!(
                lookup_code, 67,
                "{user}: allow_nets denies a lookup without remote IP"
            );
        } else if lookup_code == 75 {
            // Dovecot also fails credentials lookups of passwords it cannot decode
            // (`{PLAIN-MD5}` that is not base64...): mailmig shows the stored password.
            let pw = v["password"].as_str().unwrap_or_default();
            assert!(
                pw.starts_with("{PLAIN-MD5}"),
                "{user}: unexpected lookup failure"
            );
        } else {
            assert_eq!(lookup_code, 0, "{user}: auth lookup");
            const HIDDEN: &[&str] = &[
                "allow_nets",
                "allow_real_nets",
                "login_user",
                "fail",
                "delay_until",
                "user",
                "username",
                "domain",
                "nopassword",
                "noauthenticate",
            ];
            let want: Vec<(String, Option<String>)> = v["passdb"]
                .as_object()
                .expect("passdb object")
                .iter()
                .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
                .map(|(k, val)| (k.clone(), val.as_str().map(str::to_string)))
                .collect();
            // 2.4's `auth lookup` prints a bare field as `key : ` (empty value), and its boolean
            // fields without their value (`nologin=y` as `nologin : `).
            const BOOLEAN: &[&str] = &["nologin", "nodelay", "proxy", "proxy_maybe", "starttls"];
            let bare = |fields: Vec<(String, Option<String>)>| -> Vec<(String, Option<String>)> {
                fields
                    .into_iter()
                    .map(|(k, v)| {
                        let flag = v24 && BOOLEAN.contains(&k.trim_start_matches(':'));
                        let v = v.filter(|v| !(v24 && (v.is_empty() || flag)));
                        (k, v)
                    })
                    .collect()
            };
            assert_eq!(
                bare(lookup_fields),
                bare(want),
                "{user}: auth lookup vs mailmig passdb view"
            );
        }
        compared += 1;
    }
    assert!(
        compared >= if v24 { 40 } else { 45 },
        "compared only {compared} users"
    );

    // And what Dovecot logs when loading, mailmig reports: each dropped line.
    let check = sb.mailmig_bare(&[
        "passwd",
        "check",
        "--dovecot-version",
        version,
        "--json",
        &passwd,
    ]);
    assert_eq!(check.code, 65);
    let log = fs_err::read_to_string(sb.get("DOVECOT_LOG")).expect("dovecot log");
    let findings: Vec<serde_json::Value> = check
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for f in &findings {
        if f["code"] == "dropped" || f["code"] == "duplicate-user" {
            let msg = f["message"].as_str().expect("message");
            let dovecot_words = msg.split(" (").next().expect("text");
            assert!(
                log.contains(dovecot_words),
                "Dovecot's log lacks `{dovecot_words}`"
            );
        }
    }
    // And the other way: what Dovecot logs of the file, loading it or looking its users up,
    // mailmig reports.
    let reported = |words: &str| {
        findings
            .iter()
            .any(|f| f["message"].as_str().is_some_and(|m| m.contains(words)))
    };
    let mut logged = 0;
    for line in log.lines() {
        if let Some(what) = line.split_once(&format!("passwd-file {passwd}:")) {
            // `User NAME is missing userdb info` / `exists more than once` / `has invalid ...`;
            // a line Dovecot reads as a junk user name is reported as that.
            let said = what.1;
            let name = said
                .strip_prefix("User ")
                .and_then(|rest| rest.rsplit_once(" is missing userdb info"))
                .map(|(name, _)| name);
            let junk = name.is_some_and(|n| reported(&format!("as a user named '{n}'")));
            assert!(reported(said) || junk, "mailmig does not report `{said}`");
            logged += 1;
        } else if let Some((_, rest)) = line.split_once("passwd-file(") {
            // Lookups: `passwd-file(USER): MESSAGE`; an extra field is named without its value.
            // A denied `allow_nets` is a lock-out (mailmig's own is one), not a defect.
            let said = rest.split_once("): ").expect("a message").1;
            if said.starts_with("allow_nets check failed") {
                continue;
            }
            let said = match said.strip_prefix("Failed to expand extra field ") {
                Some(field) => {
                    let (kv, why) = field.split_once(": ").expect("a reason");
                    let key = kv.split('=').next().expect("a key");
                    format!("Failed to expand extra field {key}: {why}")
                }
                None => said.to_string(),
            };
            assert!(reported(&said), "mailmig does not report `{said}`");
            logged += 1;
        }
    }
    assert!(
        logged >= 15,
        "Dovecot logged only {logged} findings:\n{log}"
    );
}

/// A batch's preflight asks `doveadm user -f FIELD` and `-e TEMPLATE` for many users in one
/// process: what it tells apart is, for every field, exactly each user's answer alone; users
/// with a field all present and not empty, or all absent, and expansions that are never empty,
/// are always told apart; and any user not found or failing makes the whole answer unusable
/// (exit code not 0), so it is asked one by one.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn many_users_answers_are_each_users_own(#[case] stack: Stack) {
    use mailmig_core::migrate::lookup::split_answers;
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let conf = sb.get("DOVECOT_CONFIG").to_string();
    let file = tricky_file(sb.get("VMAIL_UID"), sb.get("VMAIL_GID"));
    fs_err::write(sb.get("PASSWD_FILE"), &file).expect("install passwd-file");
    std::thread::sleep(Duration::from_millis(1100));
    let ask_q = |question: [&str; 2], users: &[&String]| {
        let mut args = vec!["-c", conf.as_str(), "user", question[0], question[1]];
        args.extend(users.iter().map(|u| u.as_str()));
        sb.run("doveadm", &args)
    };
    let ask = |field: &str, users: &[&String]| ask_q(["-f", field], users);
    let users: Vec<String> = users_of(&file)
        .into_iter()
        .filter(|u| mailmig_core::migrate::validate_user(u).is_ok())
        .collect();
    let all: Vec<&String> = users.iter().collect();
    let found: Vec<&String> = users
        .iter()
        .filter(|u| ask("home", &[u]).code == 0)
        .collect();
    assert!(found.len() >= 20, "only {found:?}");
    assert!(found.len() < users.len(), "no user fails: {users:?}");
    for field in [
        "home",
        "uid",
        "mail",
        "mail_driver",
        "mail_path",
        "nosuchfield",
    ] {
        let alone: Vec<String> = found
            .iter()
            .map(|u| ask(field, &[u]).out().trim().to_string())
            .collect();
        let together = ask(field, &found);
        assert_eq!(together.code, 0, "{field}: {}", together.err());
        match split_answers(&together.stdout, found.len()) {
            Some(told) => assert_eq!(told, alone, "{field} for {found:?}"),
            // A field no user has: all absent, always told apart.
            None => assert_ne!(field, "nosuchfield", "{:?}", together.out()),
        }
        // The users with an answer, together: always told apart.
        let answering: Vec<&String> = found
            .iter()
            .zip(&alone)
            .filter(|(_, a)| !a.is_empty())
            .map(|(u, _)| *u)
            .collect();
        if !answering.is_empty() {
            let told = split_answers(&ask(field, &answering).stdout, answering.len());
            let want: Vec<String> = alone.iter().filter(|a| !a.is_empty()).cloned().collect();
            assert_eq!(told, Some(want), "{field} for {answering:?}");
        }
        assert_ne!(ask(field, &all).code, 0, "{field}: every user found?");
    }
    // Templates (the target and a global location, expanded per user): an expansion is
    // printed even when empty, so one that is never empty is always told apart, and empty
    // ones never are.
    let template = if stack.dovecot_24() {
        "maildir:/v/%{user | domain}/%{user | username}"
    } else {
        "maildir:/v/%d/%n"
    };
    let alone: Vec<String> = found
        .iter()
        .map(|u| ask_q(["-e", template], &[u]).out().trim().to_string())
        .collect();
    assert!(
        alone.iter().all(|a| a.starts_with("maildir:/v/")),
        "{alone:?}"
    );
    let together = ask_q(["-e", template], &found);
    assert_eq!(together.code, 0, "{}", together.err());
    assert_eq!(split_answers(&together.stdout, found.len()), Some(alone));
    let empty = ask_q(["-e", ""], &found);
    assert_eq!(split_answers(&empty.stdout, found.len()), None);
}
