//! Running a check over a matrix of seeds, so that every protocol's scenario tests print the
//! seed that failed and can be rerun on exactly that seed.

use std::fmt::Display;
use std::ops::Range;

/// The seeds to run: `SEED=n` in the environment picks exactly `n` (to rerun a failure);
/// `SEEDS=a..b` a range (for a longer local sweep); otherwise `default`.
///
/// # Panics
/// If `SEED` or `SEEDS` is set but does not parse: a typo must not silently test nothing.
#[must_use]
pub fn seeds(default: Range<u64>) -> Vec<u64> {
    if let Ok(one) = std::env::var("SEED") {
        let seed = one
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SEED={one:?} is not a u64"));
        return vec![seed];
    }
    if let Ok(range) = std::env::var("SEEDS") {
        return parse_range(&range).unwrap_or_else(|| panic!("SEEDS={range:?} is not a..b"));
    }
    default.collect()
}

fn parse_range(text: &str) -> Option<Vec<u64>> {
    let (a, b) = text.trim().split_once("..")?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    Some((a..b).collect())
}

/// Runs `check` for every seed of [`seeds`]`(default)` and panics at the first failure with
/// the seed and how to rerun it.
///
/// # Panics
/// When `check` returns `Err` for a seed (that is the point: it fails the test).
pub fn check_seeds<E: Display>(default: Range<u64>, mut check: impl FnMut(u64) -> Result<(), E>) {
    for seed in seeds(default) {
        if let Err(e) = check(seed) {
            eprintln!("failing seed: {seed}");
            panic!("seed {seed} failed: {e} (rerun with SEED={seed})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("3..6"), Some(vec![3, 4, 5]));
        assert_eq!(parse_range(" 0..0 "), Some(vec![]));
        assert_eq!(parse_range("3-6"), None);
        assert_eq!(parse_range("a..6"), None);
    }

    #[test]
    fn every_default_seed_runs_when_no_env_is_set() {
        if std::env::var_os("SEED").is_some() || std::env::var_os("SEEDS").is_some() {
            return; // a developer is rerunning a seed: nothing to assert here
        }
        let mut ran = Vec::new();
        check_seeds(0..4, |s| {
            ran.push(s);
            Ok::<(), String>(())
        });
        assert_eq!(ran, [0, 1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "rerun with SEED=2")]
    fn a_failure_names_its_seed() {
        if std::env::var_os("SEED").is_some() || std::env::var_os("SEEDS").is_some() {
            panic!("rerun with SEED=2"); // keep the expectation under a developer's env
        }
        check_seeds(0..4, |s| if s == 2 { Err("boom") } else { Ok(()) });
    }
}
