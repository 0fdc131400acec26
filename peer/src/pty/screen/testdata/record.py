#!/usr/bin/env python3
"""Records the raw PTY output of real programs driven by scripted keystrokes: the fixtures of
the screen model's tests (peer/src/pty/screen/tests.rs).

Each scenario runs a command in a fresh PTY of a given size (TERM=xterm-256color), sends keys
with pauses, and saves every byte the program wrote to <name>.bin next to this script. Needs
bash, vim, less, htop and tmux. Usage: record.py [scenario ...]   (default: all)
"""
import fcntl, shlex, os, pty, select, struct, sys, termios, time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = HERE
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "buffer.rs"))

def run(name, cols, rows, argv, steps, settle=0.6):
    pid, fd = pty.fork()
    if pid == 0:
        env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   COLUMNS=str(cols), LINES=str(rows), HOME="/tmp/rechome")
        env.pop("TMUX", None)
        os.makedirs("/tmp/rechome", exist_ok=True)
        os.chdir("/tmp/rechome")
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = bytearray()

    def pump(t):
        end = time.time() + t
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    d = os.read(fd, 65536)
                except OSError:
                    return
                if not d:
                    return
                out.extend(d)

    pump(settle)
    for keys, wait in steps:
        if keys:
            os.write(fd, keys if isinstance(keys, bytes) else keys.encode())
        pump(wait)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    path = os.path.join(OUT, name + ".bin")
    with open(path, "wb") as f:
        f.write(out)
    print(f"{name}: {len(out)} bytes ({cols}x{rows})")

BASH = ["bash", "--norc", "--noprofile", "-i"]
# A prompt that sets the title (OSC 0) and the cwd (OSC 7), coloured.
PROMPT = (r"export PS1='\[\e]0;\u@\h: \w\a\e]7;file://\h\w\a\e[1;32m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '" "\n")

UNICODE = (
    "printf 'CJK: \\u4e2d\\u6587\\u5b57 \\u65e5\\u672c\\u8a9e \\ud55c\\uad6d\\uc5b4|\\n'; "
    "printf 'emoji: \\U1F600\\U1F680 flag: \\U1F1EB\\U1F1F7 zwj: \\U1F468\\u200d\\U1F469\\u200d\\U1F467|\\n'; "
    "printf 'combining: e\\u0301 a\\u0308 n\\u0303 q\\u0323\\u0307 \\u0915\\u094d\\u0937|\\n'; "
    "printf 'wrap: %078d\\u4e2d\\u6587 next\\n' 0; "
    "printf 'box: \\u250c\\u2500\\u2510 \\e(0lqk\\e(B x\\n'\n"
)
SGR = (
    "for i in $(seq 0 255); do printf '\\e[48;5;%dm%3d\\e[0m' $i $i; [ $((i % 16)) = 15 ] && echo; done; "
    "for i in $(seq 0 8 255); do printf '\\e[38;2;%d;%d;%dm#' $i $((255-i)) $((i/2)); done; printf '\\e[0m\\n'; "
    "printf '\\e[1mbold\\e[0m \\e[2mdim\\e[0m \\e[3mital\\e[0m \\e[4munder\\e[0m \\e[5mblink\\e[0m "
    "\\e[7minv\\e[0m \\e[8mhid\\e[0m \\e[9mstrike\\e[0m \\e[4:3mcurly\\e[0m \\e[38;5;208;48;2;10;20;30mmix\\e[0m\\n'\n"
)

def scenarios():
    yield "shell", 80, 24, BASH, [
        (PROMPT, 0.3), ("cd /usr/share\n", 0.3),
        ("ls -la --color=always /usr/lib | head -60\n", 0.5),
        (SGR, 1.0), (UNICODE, 0.5),
        ("printf 'ring\\a\\n'; echo done\n", 0.3),
        ("printf '\\e]2;custom title\\a'; printf '\\e[?2004h'\n", 0.3),
        ("printf 'partial \\e[31mred-pen-left-on'\n", 0.3),
    ]
    vim = ["vim", "-N", "-n", "-u", "NONE", "-i", "NONE", "--cmd", "syntax on",
           "-c", "set number cursorline laststatus=2 t_Co=256 mouse=a", "-c", "colorscheme desert", SRC]
    steps_vim = [
        (None, 1.0), ("\x04\x04", 0.4), ("/read_loop\r", 0.4), (":vsplit\r", 0.4),
        ("\x17l", 0.3), ("Go// h\u00e9llo \u4e16\u754c \U0001F600 e\u0301\x1b", 0.4),
        (":set title titlestring=vim-edit\r", 0.4), ("\x15\x15", 0.4), ("50%", 0.4),
    ]
    yield "vim", 80, 24, BASH, [(PROMPT, 0.3), ("ls --color=always /\n", 0.3), (shlex.join(vim) + "\n", 1.0)] + steps_vim
    yield "vim_exit", 80, 24, BASH, [(PROMPT, 0.3), ("ls --color=always /\n", 0.3), (shlex.join(vim) + "\n", 1.0)] + steps_vim + [
        ("\x1b:qa!\r", 0.5), ("echo back in shell\n", 0.3)]
    yield "vim_big", 200, 50, BASH, [(PROMPT, 0.3), (shlex.join(vim) + "\n", 1.0)] + steps_vim
    yield "less", 80, 24, BASH, [
        (PROMPT, 0.3), ("ls -la --color=always /usr/bin | less -R\n", 0.8),
        (" ", 0.3), (" ", 0.3), ("/python\r", 0.4), ("n", 0.3), ("b", 0.3)]
    yield "htop", 80, 24, BASH, [(PROMPT, 0.3), ("htop -d 5\n", 2.5), ("t", 1.0), ("\x1b[B\x1b[B\x1b[B", 1.0), ("M", 1.5)]
    yield "htop_exit", 80, 24, BASH, [(PROMPT, 0.3), ("echo before htop\n", 0.3), ("htop -d 5\n", 2.5), ("q", 0.5), ("echo after\n", 0.3)]
    yield "tmux", 80, 24, BASH, [
        (PROMPT, 0.3),
        ("tmux -L rec -f /dev/null new-session\n", 1.5),
        ("ls -la --color=always /etc | head -30\n", 0.6), ("\x02%", 0.8),
        ("vim -N -n -u NONE --cmd 'syntax on' " + SRC + "\n", 1.2), ("\x04", 0.4),
        ("\x02o", 0.4), ("printf '\\e[38;2;255;100;0mtrue\\e[0m \\u4e2d\\u6587\\n'\n", 0.6),
        ("\x02\"", 0.6), ("top -d 1 -n 2 | head -15\n", 2.5)]
    # ls with 256-colour and true-colour LS_COLORS.
    ls_colors = ("di=1;38;5;33:ln=38;5;51:ex=1;38;5;208:or=48;5;52;38;5;231:"
                 "*.so=38;2;120;200;80:*.py=3;38;5;105:*.gz=4;38;5;160")
    yield "ls256", 80, 24, BASH, [
        (PROMPT, 0.3),
        ("export LS_COLORS='" + ls_colors + "'\n", 0.2),
        ("ls -la --color=always /usr/bin /usr/lib | head -400\n", 1.0)]

if __name__ == "__main__":
    want = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    for name, cols, rows, argv, steps in scenarios():
        if not want or name in want:
            run(name, cols, rows, argv, steps)
