//! The chained-database overlay on the real Dovecot 2.3 and 2.4: `mailmig overlay check` names
//! what is missing, `overlay show`'s snippet placed as it says makes the check pass, and then —
//! the facts the overlay mode rests on — a location line in the override file moves that user
//! alone (uid, gid, home from the primary userdb kept), a line in the deny file refuses that
//! user's logins while LMTP keeps delivering their mail, into the overlay's location.

use mailmig_tests::sandbox::{overlay_placed, Sandbox, Stack};
use rstest::rstest;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn the_overlay_moves_and_locks_out_one_user(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let r = sb.mailmig(&["overlay", "check"]);
    assert_eq!(r.code, 1, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("no passdb reads"), "{}", r.out());
    assert!(r.out().contains("no userdb reads"), "{}", r.out());

    let r = sb.mailmig(&["overlay", "show"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("deny = yes") && r.out().contains("skip = notfound"));
    let r = sb.mailmig(&["overlay", "show", "--json"]);
    let snippet: serde_json::Value = serde_json::from_str(&r.out()).expect("json");
    if stack.dovecot_24() {
        assert!(snippet["passdb"]
            .as_str()
            .unwrap_or_default()
            .starts_with("passdb mailmig-deny {"));
    }

    // Placed with the deny passdb last: named.
    let conf_path = sb.path("DOVECOT_CONFIG").to_owned();
    let conf = fs_err::read_to_string(&conf_path).expect("read");
    let dir = conf_path.parent().expect("dir");
    let (deny, location) = (dir.join("mailmig-deny"), dir.join("mailmig-override"));
    fs_err::write(&deny, "").expect("deny file");
    fs_err::write(&location, "").expect("override file");
    let misplaced = format!(
        "{conf}{}{}",
        snippet["passdb"].as_str().expect("passdb"),
        snippet["userdb"].as_str().expect("userdb")
    );
    sb.reconfigure_dovecot(&misplaced);
    let r = sb.mailmig(&["overlay", "check"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(r.out().contains("is passdb number 2"), "{}", r.out());
    assert!(r.out().contains("stops on success"), "{}", r.out());

    // Placed as `show` says: in place, and nothing changes for anyone.
    sb.reconfigure_dovecot(&overlay_placed(&conf, &snippet));
    let r = sb.mailmig(&["overlay", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    let home = sb.home(ALICE);
    assert_eq!(sb.mail_location(ALICE), "maildir:~/Maildir");
    assert_eq!(sb.mail_location(BOB), "maildir:~/Maildir");

    // A location line moves alice alone; her home stays the primary's.
    fs_err::write(
        &location,
        format!("{ALICE}:::::::{}\n", sb.userdb_location("mdbox:~/mdbox")),
    )
    .expect("override line");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(sb.mail_location(ALICE), "mdbox:~/mdbox");
    assert_eq!(sb.home(ALICE), home);
    assert_eq!(sb.mail_location(BOB), "maildir:~/Maildir");

    // A deny line refuses alice's logins, not bob's; her mail still arrives, at the overlay's
    // location.
    fs_err::write(&deny, format!("{ALICE}\n")).expect("deny line");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = sb.doveadm(&["auth", "test", ALICE, "alicepw"]);
    assert_ne!(r.code, 0, "alice is refused: {}", r.out());
    let r = sb.doveadm(&["auth", "test", BOB, "bobpw"]);
    assert_eq!(r.code, 0, "bob logs in: {}", r.err());
    let r = sb.seed(ALICE, 1);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(
        sb.inbox_count(ALICE),
        1,
        "delivered into the overlay's mdbox"
    );
    assert!(home.join("mdbox").is_dir());
}
