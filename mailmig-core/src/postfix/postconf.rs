//! Reading Postfix's own configuration with `postconf`.

use std::collections::BTreeMap;

use camino::Utf8Path;

use super::options::{ParseOptions, PostfixVersion};
use crate::process::{Argv, RunError, Runner};

/// Read parameters with `postconf -c DIR -x NAME...` (values with `$name` expanded).
/// Unknown parameters are left out of the result.
pub fn postconf(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    names: &[&str],
) -> Result<BTreeMap<String, String>, RunError> {
    let mut argv = vec![
        "postconf".to_string(),
        "-c".into(),
        config_dir.to_string(),
        "-x".into(),
    ];
    argv.extend(names.iter().map(|n| n.to_string()));
    let out = runner.run_expect(&Argv::new(argv), None, &[0])?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(" =")?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect())
}

/// The [`ParseOptions`] `postmap -c DIR` would use: `smtputf8_enable` and the release.
pub fn parse_options_from_postconf(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
) -> Result<ParseOptions, RunError> {
    let values = postconf(runner, config_dir, &["smtputf8_enable", "mail_version"])?;
    let mut options = ParseOptions::default();
    if let Some(v) = values.get("smtputf8_enable") {
        options.smtputf8 = matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1");
    }
    if let Some(v) = values
        .get("mail_version")
        .and_then(|v| v.parse::<PostfixVersion>().ok())
    {
        options.version = v;
    }
    Ok(options)
}
