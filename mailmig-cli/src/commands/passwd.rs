//! `mailmig passwd check|show`.

use camino::Utf8Path;
use mailmig_core::dovecot::{PasswdEditError, PasswdFile, PasswdOptions};
use serde_json::{json, Map, Value};

use super::{edit, ids};
use crate::args::{PasswdCheckArgs, PasswdSetArgs, PasswdSetup, PasswdShowArgs, PasswdUnsetArgs};
use crate::exit;
use crate::output;
use crate::report::{self, Failure};

fn options(setup: &PasswdSetup) -> Result<PasswdOptions, Failure> {
    let legacy = match setup.dovecot_version.as_str() {
        "2.2" | "2.3" => true,
        "2.4" => false,
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("error: --dovecot-version: `{other}` is not one of 2.2, 2.3, 2.4"),
            ))
        }
    };
    Ok(PasswdOptions {
        userdb: !setup.passdb_only,
        single_userdb: !setup.passdb_only,
        legacy_mail_field: legacy,
        lowercase_requests: !setup.keep_case,
    })
}

fn read(path: &Utf8Path, options: &PasswdOptions) -> Result<PasswdFile, Failure> {
    let bytes = super::read_input(path)?;
    Ok(PasswdFile::parse(bytes, options))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn check(args: &PasswdCheckArgs) -> Result<u8, Failure> {
    let options = options(&args.setup)?;
    let ids = ids();
    let mut out = String::new();
    let mut found = false;
    for file in &args.files {
        let passwd = read(file, &options)?;
        for d in passwd.diagnostics(ids.as_ref()) {
            found = true;
            let finding = report::Finding {
                file,
                line: d.line,
                column: d.column,
                severity: d.severity(),
                code: d.kind.code(),
                message: d.kind.to_string(),
            };
            out.push_str(&finding.line(args.json, &[]));
        }
    }
    output::stdout(out.as_bytes())?;
    Ok(if found { exit::DATAERR } else { exit::OK })
}

fn fields_object(fields: &[(Vec<u8>, Option<Vec<u8>>)]) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert(
            text(k),
            v.as_ref().map_or(Value::Null, |v| Value::String(text(v))),
        );
    }
    Value::Object(map)
}

/// A uid or gid from the userdb view, as a number.
fn id_value(userdb: Option<&Map<String, Value>>, key: &str) -> Value {
    match userdb.and_then(|u| u.get(key)) {
        Some(Value::String(s)) => s.parse::<u64>().map_or(Value::Null, Value::from),
        _ => Value::Null,
    }
}

pub(crate) fn show(args: &PasswdShowArgs) -> Result<u8, Failure> {
    let options = options(&args.setup)?;
    let ids = ids();
    let passwd = read(&args.file, &options)?;
    let Some(entry) = passwd.lookup(args.user.as_bytes(), ids.as_ref()) else {
        let why = passwd.explain_missing(args.user.as_bytes(), ids.as_ref());
        output::stderr_line(&format!(
            "{}: user `{}` has no record Dovecot would use ({why})",
            args.file, args.user
        ));
        return Ok(exit::NOUSER);
    };
    let passdb = entry.passdb();
    let userdb = entry.userdb(ids.as_ref());
    let userdb_value = match &userdb {
        Ok(Some(u)) => fields_object(&u.fields),
        Ok(None) => Value::Null,
        Err(_) => Value::Null,
    };
    let passdb_value = match &passdb {
        Ok(p) => fields_object(&p.fields),
        Err(_) => Value::Null,
    };
    let extra: Vec<Value> = entry
        .extra()
        .iter()
        .map(|f| {
            json!([
                text(&f.key),
                f.value
                    .as_ref()
                    .map_or(Value::Null, |v| Value::String(text(v)))
            ])
        })
        .collect();
    let user_map = userdb_value.as_object();
    let home = entry
        .home_field()
        .filter(|h| !h.is_empty() && options.userdb)
        .map_or(Value::Null, |h| Value::String(text(h)));
    let mut obj = json!({
        "user": text(entry.user()),
        "line": entry.line(),
        "password": passdb.as_ref().ok().and_then(|p| p.password.as_ref()).map(|p| text(p)),
        "uid": id_value(user_map, "uid"),
        "gid": id_value(user_map, "gid"),
        "home": home,
        "extra": extra,
        "passdb": passdb_value,
        "userdb": userdb_value,
    });
    if let Err(e) = &passdb {
        obj["passdb_error"] = Value::String(e.to_string());
    }
    if let Err(e) = &userdb {
        obj["userdb_error"] = Value::String(e.to_string());
    }
    if let Ok(p) = &passdb {
        if !p.userdb_prefetch.is_empty() {
            obj["passdb_userdb_prefetch"] = fields_object(&p.userdb_prefetch);
        }
    }
    let rendered = if args.json {
        format!("{obj}\n")
    } else {
        human(&obj)
    };
    output::stdout(rendered.as_bytes())?;
    Ok(exit::OK)
}

fn human(obj: &Value) -> String {
    let mut out = String::new();
    let scalar = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for key in ["user", "line", "password", "uid", "gid", "home"] {
        out.push_str(&format!("{key:<9} {}\n", scalar(&obj[key])));
    }
    let pairs = |v: &Value| -> String {
        match v {
            Value::Object(m) if m.is_empty() => "(no fields)".into(),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => k.clone(),
                    v => format!("{k}={}", scalar(v)),
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => "(none: unknown user to this lookup)".into(),
        }
    };
    out.push_str(&format!("passdb    {}\n", pairs(&obj["passdb"])));
    out.push_str(&format!("userdb    {}\n", pairs(&obj["userdb"])));
    for key in ["passdb_error", "userdb_error"] {
        if let Value::String(e) = &obj[key] {
            out.push_str(&format!("{key} {e}\n"));
        }
    }
    out
}

fn edit_failure(file: &Utf8Path, e: &PasswdEditError) -> Failure {
    let code = match e {
        PasswdEditError::NoSuchUser { .. } => exit::NOUSER,
        _ => exit::DATAERR,
    };
    Failure::new(code, format!("{file}: error: {e}; nothing was written"))
}

pub(crate) fn set(args: &PasswdSetArgs) -> Result<u8, Failure> {
    let options = options(&args.setup)?;
    let ids = ids();
    let fields: Vec<(&str, Option<&str>)> = args
        .fields
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (f.as_str(), None),
        })
        .collect();
    edit::apply(
        &args.file,
        &args.edit,
        edit::Secrets::PasswdFile,
        |original| {
            let mut passwd = PasswdFile::parse(original.to_vec(), &options);
            for (key, value) in &fields {
                passwd
                    .set_extra(
                        args.user.as_bytes(),
                        key.as_bytes(),
                        value.map(str::as_bytes),
                        ids.as_ref(),
                    )
                    .map_err(|e| edit_failure(&args.file, &e))?;
            }
            Ok((passwd.render(), ()))
        },
    )?;
    Ok(exit::OK)
}

pub(crate) fn unset(args: &PasswdUnsetArgs) -> Result<u8, Failure> {
    let options = options(&args.setup)?;
    let ids = ids();
    let (_, removed) = edit::apply(
        &args.file,
        &args.edit,
        edit::Secrets::PasswdFile,
        |original| {
            let mut passwd = PasswdFile::parse(original.to_vec(), &options);
            let mut removed = 0;
            for key in &args.fields {
                if passwd
                    .remove_extra(args.user.as_bytes(), key.as_bytes(), ids.as_ref())
                    .map_err(|e| edit_failure(&args.file, &e))?
                {
                    removed += 1;
                }
            }
            Ok((passwd.render(), removed))
        },
    )?;
    if removed == 0 {
        output::stderr_line(&format!(
            "{}: user `{}` has none of these fields",
            args.file, args.user
        ));
        return Ok(exit::NOT_FOUND);
    }
    Ok(exit::OK)
}
