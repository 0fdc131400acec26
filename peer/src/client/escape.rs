//! ssh-style escapes in the input stream: `Enter ~ .` detaches, `~~` sends one `~`.

/// What to do with a chunk of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeAction {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Detach after sending what came before.
    Detach,
}

/// A sans-IO filter over keystrokes.
#[derive(Debug, Clone)]
pub struct EscapeFilter {
    /// At the start of a line (initially true, as in ssh).
    at_line_start: bool,
    /// Saw `~` at the start of a line and holds it back.
    pending_tilde: bool,
}

impl Default for EscapeFilter {
    fn default() -> Self {
        EscapeFilter {
            at_line_start: true,
            pending_tilde: false,
        }
    }
}

impl EscapeFilter {
    /// Filters a chunk of input into actions.
    pub fn feed(&mut self, input: &[u8]) -> Vec<EscapeAction> {
        let mut out = Vec::new();
        let mut buf = Vec::with_capacity(input.len());
        for &b in input {
            if self.pending_tilde {
                self.pending_tilde = false;
                match b {
                    b'.' => {
                        if !buf.is_empty() {
                            out.push(EscapeAction::Send(std::mem::take(&mut buf)));
                        }
                        out.push(EscapeAction::Detach);
                        return out;
                    }
                    b'~' => {
                        buf.push(b'~');
                        self.at_line_start = false;
                        continue;
                    }
                    _ => buf.push(b'~'),
                }
            } else if self.at_line_start && b == b'~' {
                self.pending_tilde = true;
                continue;
            }
            buf.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        if !buf.is_empty() {
            out.push(EscapeAction::Send(buf));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EscapeAction::*;

    fn run(chunks: &[&[u8]]) -> Vec<EscapeAction> {
        let mut f = EscapeFilter::default();
        chunks.iter().flat_map(|c| f.feed(c)).collect()
    }

    #[test]
    fn enter_tilde_dot_detaches() {
        assert_eq!(run(&[b"ls\r~."]), vec![Send(b"ls\r".to_vec()), Detach]);
        assert_eq!(run(&[b"~."]), vec![Detach]);
        assert_eq!(
            run(&[b"x\n", b"~", b"."]),
            vec![Send(b"x\n".to_vec()), Detach]
        );
    }

    #[test]
    fn tilde_elsewhere_passes_through() {
        assert_eq!(run(&[b"a~.b"]), vec![Send(b"a~.b".to_vec())]);
        assert_eq!(run(&[b"\r~~."]), vec![Send(b"\r~.".to_vec())]);
        assert_eq!(run(&[b"\r~x"]), vec![Send(b"\r~x".to_vec())]);
        assert_eq!(
            run(&[b"\r~", b"x"]),
            vec![Send(b"\r".to_vec()), Send(b"~x".to_vec())]
        );
    }
}
