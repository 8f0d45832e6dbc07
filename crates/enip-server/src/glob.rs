//! Python's `fnmatch` patterns, as cpppo's web API matches groups and objects with:
//! `*`, `?`, `[seq]`, `[!seq]` (ranges `a-z`); an unclosed `[` is a literal.

/// Whether `pat` uses any pattern character (a literal name otherwise).
pub(crate) fn is_pattern(pat: &str) -> bool {
    pat.contains(['*', '?', '['])
}

/// Whether `name` matches `pat`; `fold` ignores ASCII case (Logix tag names).
pub(crate) fn matches(pat: &str, name: &str, fold: bool) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let eq = |a: char, b: char| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matching with one backtrack point for the last `*` (linear in practice,
    // never exponential).
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let c = n.get(ni).copied().unwrap_or_default();
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&p, pi, c, fold) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None if eq('[', c) => Some(1),
                None => None,
            },
            Some(&pc) if eq(pc, c) => Some(1),
            _ => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Match `c` against the class starting at `p[at] == '['`: `(matched, pattern length)`,
/// or `None` when the class is not closed.
fn class(p: &[char], at: usize, c: char, fold: bool) -> Option<(bool, usize)> {
    let cases = if fold {
        [c, c.to_ascii_lowercase(), c.to_ascii_uppercase()]
    } else {
        [c; 3]
    };
    let mut i = at + 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &ch = p.get(i)?;
        if ch == ']' && !first {
            return Some((hit != negate, i + 1 - at));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let hi = p.get(i + 2).copied().unwrap_or(ch);
            hit |= cases.iter().any(|x| (ch..=hi).contains(x));
            i += 3;
        } else {
            hit |= cases.contains(&ch);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_cases() {
        for (pat, name, fold, want) in [
            ("*", "", false, true),
            ("*", "tags", false, true),
            ("tags", "tags", false, true),
            ("tag", "tags", false, false),
            ("t*s", "tags", false, true),
            ("t?gs", "tags", false, true),
            ("t?g", "tags", false, false),
            ("*_44818", "127_0_0_1_44818", false, true),
            ("127_0_0_1_*", "127_0_0_1_5", false, true),
            ("[st]cada", "scada", false, true),
            ("[!st]cada", "scada", false, false),
            ("[a-c]x", "bx", false, true),
            ("[a-c]x", "Bx", true, true),
            ("[a-c]x", "Bx", false, false),
            ("SC*", "scada", true, true),
            ("SC*", "scada", false, false),
            ("a[b", "a[b", false, true),
            ("**a**", "xxa", false, true),
            ("*a*b*c*", "aXbXc", false, true),
            ("*a*b*c*", "aXbX", false, false),
            ("[]]", "]", false, true),
        ] {
            assert_eq!(matches(pat, name, fold), want, "{pat} vs {name}");
        }
        assert!(is_pattern("SC*"));
        assert!(!is_pattern("SCADA"));
    }
}
