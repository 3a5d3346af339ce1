//! A line diff for people: what `ramlet plan` shows of a unit file that changes.

use std::fmt::Write as _;

/// The lines that go (`-`) and come (`+`) from `old` to `new`, with one line of context around
/// each change (longest common subsequence; unit files are short).
#[must_use]
pub fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(1)..(k + 2).min(ops.len())]
            .iter()
            .any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op != ' ' || near(k) {
            if skipped && !out.is_empty() {
                out.push_str("  ...\n");
            }
            skipped = false;
            let _ = writeln!(out, "{op} {line}");
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_what_goes_and_comes_with_a_line_around() {
        let old = "[Container]\nImage=a\nExec=x\nLabel=1\nLabel=2\nLabel=3\nNetwork=none\n";
        let new = "[Container]\nImage=b\nExec=x\nLabel=1\nLabel=2\nLabel=3\nNetwork=host\n";
        assert_eq!(
            diff(old, new),
            "  [Container]\n- Image=a\n+ Image=b\n  Exec=x\n  ...\n  Label=3\n- Network=none\n+ Network=host\n"
        );
        assert_eq!(diff("", "A=1\n"), "+ A=1\n");
        assert_eq!(diff("same\n", "same\n"), "");
    }
}
