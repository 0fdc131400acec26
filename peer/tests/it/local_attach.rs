//! The handoff at the desk: on the host machine `peer attach`, `peer ls`, `peer new` and
//! `peer kill` work with no paired device, through the host's control socket; a paired device
//! then attaches to the same session and both see each other's input.

use std::time::Duration;

use peer_testkit::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn a_session_started_at_the_desk_continues_on_a_paired_device_and_back() {
    let mut host = TestHost::start(&[]);
    let devices = String::from_utf8_lossy(&host.cli(&["devices"]).stdout).into_owned();
    assert!(
        !devices.contains("operator"),
        "no device is paired: {devices}"
    );

    // At the desk, with nothing paired: a new shell.
    let mut desk = host.spawn_cli(&["attach", "--new", "--", "sh"]);
    desk.type_str("echo desk-$((1+1))\n");
    desk.wait_for("desk-2", T);
    let ls = host.cli(&["ls", "--json"]);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("json");
    assert_eq!(list[0]["id"], 1, "{list}");
    assert_eq!(list[0]["attached"], 1, "{list}");

    // Walk away: the phone (here a paired laptop) takes the same session.
    let phone = TestClient::new();
    pair(&mut host, &phone, "phone");
    let mut away = phone.spawn(&["attach", "1"]);
    away.wait_for("desk-2", T);
    desk.type_str("echo from-desk-$((2+3))\n");
    away.wait_for("from-desk-5", T);
    away.type_str("echo from-phone-$((3+4))\n");
    desk.wait_for("from-phone-7", T);

    // Back at the desk: detach there; the phone goes on, then leaves too.
    desk.type_str("\n~.");
    assert_eq!(desk.wait_exit(T), 0, "{}", desk.stderr());
    assert!(
        desk.stderr().contains("detached from session 1"),
        "{}",
        desk.stderr()
    );
    away.type_str("echo still-$((4+4))\n");
    away.wait_for("still-8", T);
    away.type_str("\n~.");
    assert_eq!(away.wait_exit(T), 0, "{}", away.stderr());

    // Attach again at the desk: what the phone typed is on the screen.
    let mut again = host.spawn_cli(&["attach", "1"]);
    again.wait_for("still-8", T);
    again.type_str("exit 4\n");
    assert_eq!(again.wait_exit(T), 4, "{}", again.stderr());

    // `peer new` and `peer kill` at the desk; `local` names this machine's host.
    let out = host.cli(&["new", "local", "--", "sleep", "100"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = host.cli(&["kill", "local", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = host.cli(&["ls", "local"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ID"));
    // The agent commands go the same way.
    for args in [&["agent", "ls", "--json"][..], &["agents", "--json"]] {
        let out = host.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_desk_needs_a_running_host_and_says_so() {
    let client = TestClient::new();
    let out = client.cli(&["ls", "local"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("on this machine"), "{err}");
}
