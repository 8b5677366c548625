//! A small full-match regular-expression matcher for the checker, written for the patterns the
//! tests put in policies: literals, `\` escapes (`\.`, `\d`, `\w`, `\s`), `.`, classes `[a-z._-]`
//! and `[^...]`, groups `( )`, alternation `|`, and the quantifiers `* + ? {n} {n,m}`. The
//! engine's own regex crate is not used, so that a bug there cannot hide here.

#[derive(Clone, Debug)]
enum Atom {
    Char(char),
    Any,
    Class(Vec<(char, char)>, bool),
    Group(Vec<Vec<Piece>>),
}

#[derive(Clone, Debug)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

fn class_escape(c: char) -> Option<(Vec<(char, char)>, bool)> {
    Some(match c {
        'd' => (vec![('0', '9')], false),
        'w' => (vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')], false),
        's' => (
            vec![(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')],
            false,
        ),
        _ => return None,
    })
}

impl Parser<'_> {
    fn alternatives(&mut self) -> Result<Vec<Vec<Piece>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.chars.peek() == Some(&'|') {
            self.chars.next();
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Piece>, String> {
        let mut seq = Vec::new();
        while let Some(&c) = self.chars.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.chars.next();
            let atom = match c {
                '.' => Atom::Any,
                '(' => {
                    if self.chars.peek() == Some(&'?') {
                        self.chars.next();
                        if self.chars.next() != Some(':') {
                            return Err("only (?: groups".into());
                        }
                    }
                    let g = self.alternatives()?;
                    if self.chars.next() != Some(')') {
                        return Err("unclosed group".into());
                    }
                    Atom::Group(g)
                }
                '[' => self.class()?,
                '\\' => {
                    let e = self.chars.next().ok_or("dangling escape")?;
                    match class_escape(e) {
                        Some((ranges, neg)) => Atom::Class(ranges, neg),
                        None => Atom::Char(e),
                    }
                }
                '^' | '$' => continue, // full match anyway
                '*' | '+' | '?' | '{' => return Err(format!("quantifier {c} without an atom")),
                c => Atom::Char(c),
            };
            let (min, max) = self.quantifier()?;
            seq.push(Piece { atom, min, max });
        }
        Ok(seq)
    }

    fn class(&mut self) -> Result<Atom, String> {
        let mut neg = false;
        if self.chars.peek() == Some(&'^') {
            self.chars.next();
            neg = true;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.chars.next().ok_or("unclosed class")?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self.chars.next().ok_or("dangling escape")?;
                if let Some((r, _)) = class_escape(e) {
                    ranges.extend(r);
                    continue;
                }
                e
            } else {
                c
            };
            let mut ahead = self.chars.clone();
            if ahead.next() == Some('-') && ahead.peek().is_some_and(|&n| n != ']') {
                self.chars.next();
                let hi = self.chars.next().ok_or("unclosed class")?;
                let hi = if hi == '\\' {
                    self.chars.next().ok_or("dangling escape")?
                } else {
                    hi
                };
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Atom::Class(ranges, neg))
    }

    fn quantifier(&mut self) -> Result<(usize, usize), String> {
        Ok(match self.chars.peek() {
            Some('*') => {
                self.chars.next();
                (0, usize::MAX)
            }
            Some('+') => {
                self.chars.next();
                (1, usize::MAX)
            }
            Some('?') => {
                self.chars.next();
                (0, 1)
            }
            Some('{') => {
                self.chars.next();
                let mut text = String::new();
                loop {
                    match self.chars.next() {
                        Some('}') => break,
                        Some(c) => text.push(c),
                        None => return Err("unclosed {".into()),
                    }
                }
                let num = |s: &str| s.trim().parse::<usize>().map_err(|e| e.to_string());
                match text.split_once(',') {
                    None => {
                        let n = num(&text)?;
                        (n, n)
                    }
                    Some((a, "")) => (num(a)?, usize::MAX),
                    Some((a, b)) => (num(a)?, num(b)?),
                }
            }
            _ => (1, 1),
        })
    }
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    alts: Vec<Vec<Piece>>,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, String> {
        let mut p = Parser {
            chars: text.chars().peekable(),
        };
        let alts = p.alternatives()?;
        if p.chars.next().is_some() {
            return Err("unbalanced )".into());
        }
        Ok(Pattern { alts })
    }

    /// Whether the WHOLE of `text` matches (never a prefix or a substring).
    pub fn full_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let mut steps = 0usize;
        match_alts(&self.alts, &chars, 0, &mut steps, &mut |end, _| {
            end == chars.len()
        })
    }
}

/// Tries each alternative at `pos`; `k` is the continuation given the end position.
fn match_alts(
    alts: &[Vec<Piece>],
    s: &[char],
    pos: usize,
    steps: &mut usize,
    k: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    alts.iter().any(|seq| match_seq(seq, s, pos, steps, k))
}

fn match_seq(
    seq: &[Piece],
    s: &[char],
    pos: usize,
    steps: &mut usize,
    k: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    *steps += 1;
    if *steps > 1_000_000 {
        return false;
    }
    let Some((first, rest)) = seq.split_first() else {
        return k(pos, steps);
    };
    match_repeat(first, 0, s, pos, steps, &mut |p, st| {
        match_seq(rest, s, p, st, k)
    })
}

/// Matches `piece` `count` times so far, greedily, then the continuation.
fn match_repeat(
    piece: &Piece,
    count: usize,
    s: &[char],
    pos: usize,
    steps: &mut usize,
    k: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    *steps += 1;
    if *steps > 1_000_000 {
        return false;
    }
    if count < piece.max {
        let more = match_atom(&piece.atom, s, pos, steps, &mut |p, st| {
            p != pos && match_repeat(piece, count + 1, s, p, st, k)
        });
        if more {
            return true;
        }
    }
    count >= piece.min && k(pos, steps)
}

fn match_atom(
    atom: &Atom,
    s: &[char],
    pos: usize,
    steps: &mut usize,
    k: &mut dyn FnMut(usize, &mut usize) -> bool,
) -> bool {
    match atom {
        Atom::Group(alts) => match_alts(alts, s, pos, steps, k),
        _ => {
            let Some(&c) = s.get(pos) else {
                return false;
            };
            let ok = match atom {
                Atom::Char(x) => c == *x,
                Atom::Any => c != '\n',
                Atom::Class(ranges, neg) => {
                    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg
                }
                Atom::Group(_) => false,
            };
            ok && k(pos + 1, steps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn full_match_only() {
        let p = Pattern::new(r"alice@x\.com").unwrap();
        assert!(p.full_match("alice@x.com"));
        assert!(!p.full_match("alice@x.com.evil.net"));
        assert!(!p.full_match("xalice@x.com"));
        let p = Pattern::new(r"[a-z]+@(corp|x)\.com").unwrap();
        assert!(p.full_match("bob@corp.com"));
        assert!(!p.full_match("bob@corp.com\n"));
        assert!(!p.full_match("Bob@corp.com"));
        let p = Pattern::new(r"DE\d{2}[0-9 ]{4,}").unwrap();
        assert!(p.full_match("DE89 3704 0044"));
        assert!(!p.full_match("DE8"));
    }
}
