use super::*;

fn rule(s: &str) -> CommandRule {
    CommandRule::parse(s).expect("rule")
}

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn scripts_split_into_pipelines_and_simple_commands() {
    let s = Script::parse("FOO=1 sudo -u root git push -f && echo 'a b' | tee x; ls");
    assert!(s.exact);
    let words: Vec<Vec<Vec<String>>> = s
        .pipelines
        .iter()
        .map(|p| p.iter().map(|c| c.argv.clone()).collect())
        .collect();
    assert_eq!(
        words,
        vec![
            vec![argv("git push -f")],
            vec![vec!["echo".to_string(), "a b".into()], argv("tee x")],
            vec![argv("ls")],
        ]
    );
    for inexact in [
        "echo $HOME",
        "ls *.rs",
        "cat ~/x",
        "echo `id`",
        "echo $(id)",
        "make > out.txt",
        "(cd x; make)",
        "cat <<EOF",
        "echo 'open",
    ] {
        assert!(!Script::parse(inexact).exact, "{inexact}");
    }
    for exact in [
        "make 2>&1",
        "make >/dev/null 2>&1",
        "sort < in.txt",
        "echo \"a b\"",
    ] {
        assert!(Script::parse(exact).exact, "{exact}");
    }
}

#[test]
fn flags_are_normalised() {
    let n = |s: &str| Normal::of(&argv(s)).expect("normal");
    assert_eq!(n("rm -rf /").flags, n("rm --force --recursive /").flags);
    assert_eq!(n("rm -fr /").flags, n("rm -R -f /").flags);
    assert_eq!(n("git push -f origin").flags, n("git push --force").flags);
    assert_eq!(n("/usr/bin/git -C /x push").words, argv("push"));
    assert!(
        n("git push --force-with-lease=origin")
            .flags
            .contains("--force-with-lease")
    );
    assert!(!n("git push --force-with-lease").flags.contains("--force"));
}

#[test]
fn deny_rules_match_parsed_commands_not_text() {
    let r = rule("git push --force");
    for hit in [
        "git push --force",
        "git push -f",
        "git push -f origin main",
        "git push origin main --force",
        "git -C /repo push -f",
        "/usr/bin/git push -fu origin",
        "cd x && git push -f",
        "sudo git push -f",
        "GIT_TRACE=1 git push -f",
        "sh -c 'git push -f'",
        "bash -lc \"cd x; git push -f\"",
        "echo $(git push -f)",
        "env -i PATH=/bin git push --force",
    ] {
        assert!(r.matches(&Script::parse(hit)), "{hit}");
    }
    for miss in [
        "git push",
        "git push --force-with-lease",
        "echo git push --force",
        "git status -f",
        "git pull --force",
    ] {
        assert!(!r.matches(&Script::parse(miss)), "{miss}");
    }
    let rm = rule("rm -rf /");
    assert!(rm.matches(&Script::parse("rm -fr /")));
    assert!(rm.matches(&Script::parse("rm -r -f /")));
    assert!(rm.matches(&Script::parse("rm --recursive --force /")));
    assert!(!rm.matches(&Script::parse("rm -rf /tmp/x")));
    assert!(!rm.matches(&Script::parse("rm -r /")));
    let pipe = rule("curl | sh");
    assert!(pipe.matches(&Script::parse("curl -fsSL https://x.sh | sh")));
    assert!(pipe.matches(&Script::parse("curl https://x | tee a | /bin/sh -s")));
    assert!(!pipe.matches(&Script::parse("curl https://x > a; sh a")));
    assert!(!pipe.matches(&Script::parse("sh x | curl y")));
    // Argument vectors are matched the same way.
    assert!(
        r.matches(&Script::argv(
            &argv("/bin/sh -lc")
                .into_iter()
                .chain(["git push -f".to_string()])
                .collect::<Vec<_>>()
        ))
    );
}

#[test]
fn allow_rules_cover_commands_that_start_with_them() {
    let r = rule("cargo test");
    let allowed = |s: &str| Script::parse(s).all(&|n| r.covers(n));
    assert!(allowed("cargo test"));
    assert!(allowed("cargo test --release -p peer"));
    assert!(allowed("sh -c 'cargo test'"));
    assert!(allowed("cargo test && cargo test --doc"));
    assert!(!allowed("cargo build"));
    assert!(!allowed("cargo test; rm -rf ~"));
    assert!(!allowed("cargo test > /etc/passwd"));
    assert!(!allowed("cargo test $(rm -rf ~)"));
    assert!(!allowed("cargo"));
    assert!(!allowed(""));
    // Flags of the rule are required; further flags are allowed.
    let r = rule("git diff --stat");
    assert!(Script::parse("git diff --stat HEAD").all(&|n| r.covers(n)));
    assert!(!Script::parse("git diff HEAD").all(&|n| r.covers(n)));
}

#[test]
fn rules_are_plain_commands() {
    assert!(CommandRule::parse("rm -rf $HOME").is_err());
    assert!(CommandRule::parse("a; b").is_err());
    assert!(CommandRule::parse("").is_err());
    assert!(rule("curl | sh").stages.len() == 2);
    assert!(!rule("curl | sh").is_single());
    let s = Script::parse("bash -lc 'npm test'");
    assert_eq!(s.single().map(|s| s.argv.clone()), Some(argv("npm test")));
    assert_eq!(Script::parse("a && b").single(), None);
    assert_eq!(
        join(&["echo".into(), "a b".into(), "it's".into()]),
        r"echo 'a b' 'it'\''s'"
    );
}
