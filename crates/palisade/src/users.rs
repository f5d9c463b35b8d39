//! `palisade user ...` and `palisade registrations`: account provisioning and the live
//! bindings, straight against the database.
use std::path::Path;

use anyhow::{bail, Context};
use palisade_core::Credential;
use palisade_store::{StoreConfig, UserRow};

use crate::account::valid_name;
use crate::clock::now_ms;
use crate::db::Db;

pub(crate) fn row(name: &str, password: &str, domain: &str) -> anyhow::Result<UserRow> {
    if !valid_name(name) {
        bail!("invalid user name {name:?}: letters, digits and -_.!~*'()&=+$ only, at most 64");
    }
    if password.is_empty() {
        bail!("empty password for {name}");
    }
    if domain.is_empty() {
        bail!("no domain for {name} (give --domain or server.domain)");
    }
    if !valid_name(domain)
        && !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        bail!("invalid domain {domain:?}");
    }
    let c = Credential::from_password(name, domain, password);
    Ok(UserRow {
        name: name.into(),
        domain: domain.into(),
        ha1_md5: c.ha1_md5,
        ha1_sha256: c.ha1_sha256,
        created: 0,
    })
}

pub(crate) fn add(db: &Db, name: &str, password: &str, domain: &str) -> anyhow::Result<()> {
    let r = row(name, password, domain)?;
    let mut s = db.storage()?;
    s.add_user(&r)?;
    println!("added {name}@{domain}");
    Ok(())
}

pub(crate) fn remove(db: &Db, name: &str, domain: &str) -> anyhow::Result<bool> {
    let mut s = db.storage()?;
    let removed = s.remove_user(name, domain)?;
    if removed {
        println!("removed {name}@{domain}");
    } else {
        eprintln!("palisade: no user {name}@{domain}");
    }
    Ok(removed)
}

pub(crate) fn list(db: &Db, domain: Option<&str>, json: bool) -> anyhow::Result<()> {
    let s = db.storage()?;
    let prot = s.protections(domain)?;
    for u in s.list_users(domain)? {
        let p = prot
            .iter()
            .find(|p| p.name == u.name && p.domain == u.domain);
        if json {
            println!(
                "{}",
                serde_json::json!({"name": u.name, "domain": u.domain, "created": u.created,
                    "protected": p.is_some(), "allow": p.map(|p| p.allow.clone()).unwrap_or_default()})
            );
        } else {
            match p {
                Some(p) => println!(
                    "{}@{} protected, allows: {}",
                    u.name,
                    u.domain,
                    if p.allow.is_empty() {
                        "nobody".to_string()
                    } else {
                        p.allow.join(", ")
                    }
                ),
                None => println!("{}@{}", u.name, u.domain),
            }
        }
    }
    Ok(())
}

/// `palisade user protect NAME [--off]`.
pub(crate) fn protect(db: &Db, name: &str, domain: &str, on: bool) -> anyhow::Result<()> {
    let mut s = db.storage()?;
    if !s.set_protected(name, domain, on)? {
        bail!("no user {name}@{domain}");
    }
    if on {
        println!("{name}@{domain} is protected: only callers on its allow-list reach it");
    } else {
        println!("{name}@{domain} is no longer protected");
    }
    Ok(())
}

/// `palisade user allow NAME CALLER [--remove]`: CALLER is a local account name.
pub(crate) fn allow(
    db: &Db,
    name: &str,
    caller: &str,
    domain: &str,
    add: bool,
) -> anyhow::Result<()> {
    let caller = caller.strip_suffix(&format!("@{domain}")).unwrap_or(caller);
    if !valid_name(caller) {
        bail!(
            "invalid caller {caller:?}: a local account name (letters, digits and -_.!~*'()&=+$)"
        );
    }
    let mut s = db.storage()?;
    // An allow-list names local accounts: a name that is none would never match a caller
    // (a typo, or an account not created yet).
    if add && !s.list_users(Some(domain))?.iter().any(|u| u.name == caller) {
        bail!(
            "no user {caller}@{domain}: an allow-list holds local accounts (see palisade user list; add it with palisade user add {caller})"
        );
    }
    if !s.set_allowed(name, domain, caller, add)? {
        if add {
            bail!("no user {name}@{domain}");
        }
        bail!("{caller} is not on the allow-list of {name}@{domain}");
    }
    let protected = s.protections(Some(domain))?.iter().any(|p| p.name == name);
    if add {
        println!("{caller} may call {name}@{domain}");
        if !protected {
            println!("note: {name}@{domain} is not protected yet (palisade user protect {name})");
        }
    } else {
        println!("{caller} removed from the allow-list of {name}@{domain}");
    }
    Ok(())
}

/// CSV import: header `name,password[,domain]`, one account per line. Every line is
/// checked before anything is written (and before the store is opened), and the write
/// is one transaction.
pub(crate) fn import(
    store: &StoreConfig,
    dir: &Path,
    file: &Path,
    default_domain: &str,
) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        bail!("{}: empty file", file.display())
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let (with_domain, with_created) = match cols.as_slice() {
        ["name", "password"] => (false, false),
        ["name", "password", "domain"] => (true, false),
        ["name", "password", "created"] => (false, true),
        ["name", "password", "domain", "created"] => (true, true),
        _ => bail!(
            "{}: line 1: header must be name,password[,domain][,created]",
            file.display()
        ),
    };
    let now_ms = now_ms();
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let expect = 2 + usize::from(with_domain) + usize::from(with_created);
        if f.len() != expect {
            bail!(
                "{}: line {n}: expected {expect} fields, found {}; nothing imported",
                file.display(),
                f.len()
            );
        }
        // (the count was checked: these are there)
        let name = f.first().copied().unwrap_or_default();
        let password = f.get(1).copied().unwrap_or_default();
        // An empty domain column means the default one (--domain, or server.domain).
        let domain = match f.get(2).map(|d| d.trim()) {
            Some(d) if with_domain && !d.is_empty() => d,
            _ => default_domain,
        };
        if domain.is_empty() {
            bail!(
                "{}: line {n}: no domain for {}: the domain column is empty and no --domain or server.domain gives one; nothing imported",
                file.display(),
                name.trim()
            );
        }
        // An account carried over from another system keeps its age (the campaign
        // detectors treat young accounts differently).
        let created = if with_created {
            let t = f.get(expect - 1).copied().unwrap_or_default().trim();
            match palisade_detect::parse_time(t, now_ms) {
                Some(ms) if ms > 0 => ms / 1000,
                _ => bail!(
                    "{}: line {n}: created {t:?} is not a time (RFC 3339, a date, Unix seconds or an age like 400d); nothing imported",
                    file.display()
                ),
            }
        } else {
            0
        };
        let mut r = row(name.trim(), password, domain)
            .map_err(|e| anyhow::anyhow!("{}: line {n}: {e}; nothing imported", file.display()))?;
        r.created = created;
        if !seen.insert((r.name.clone(), r.domain.clone())) {
            bail!(
                "{}: line {n}: duplicate user {}@{}; nothing imported",
                file.display(),
                r.name,
                r.domain
            );
        }
        rows.push(r);
    }
    let mut s = Db::open(store, dir)?.storage()?;
    let n = s
        .import_users(&rows)
        .map_err(|e| anyhow::anyhow!("{e}; nothing imported"))?;
    println!("imported {n} {}", if n == 1 { "user" } else { "users" });
    Ok(n)
}

pub(crate) fn registrations(db: &Db, json: bool) -> anyhow::Result<()> {
    let s = db.storage()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let bindings = s.load_bindings(now)?;
    if bindings.is_empty() && !json {
        println!("no live registrations");
    }
    for b in bindings {
        let left = b.expires - now;
        if json {
            println!(
                "{}",
                serde_json::json!({"aor": b.aor, "contact": b.contact, "expires_in": left, "q": f64::from(b.q) / 1000.0,
                    "transport": b.transport, "source": b.source, "user_agent": b.user_agent, "path": b.path.lines().collect::<Vec<_>>()})
            );
        } else {
            println!(
                "{} {} expires in {left}s via {}:{} ({})",
                b.aor, b.contact, b.transport, b.source, b.user_agent
            );
        }
    }
    Ok(())
}
