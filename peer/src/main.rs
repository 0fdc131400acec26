//! The `peer` command: parses the command line and hands over to the library.

mod cli;

fn main() -> std::process::ExitCode {
    // A session keeper is started by `peer host` with its own argv; it runs before anything
    // else (no async runtime, no threads: it forks first).
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == peer::pty::keeper::ARG) {
        return peer::pty::keeper::serve::main(&args[1..]);
    }
    cli::main()
}
