//! Finding the PostgreSQL server binaries: PATH first, then the highest version Debian and Ubuntu
//! install under /usr/lib/postgresql, and for an existing cluster only binaries of its own major
//! version (a server refuses another major's files).

use super::*;

/// Where Debian and Ubuntu install each major version's server binaries (`{LIB_ROOT}/15/bin`).
pub(super) const LIB_ROOT: &str = "/usr/lib/postgresql";

/// Where to look for the server binaries.
#[derive(Clone, Debug)]
pub(super) struct BinarySearch {
    /// A PATH-style list of directories.
    pub(super) path: Option<OsString>,
    /// The directory holding one `{version}/bin` per installed major version.
    pub(super) lib_root: PathBuf,
}

impl BinarySearch {
    pub(super) fn from_env() -> BinarySearch {
        BinarySearch {
            path: std::env::var_os("PATH"),
            lib_root: PathBuf::from(LIB_ROOT),
        }
    }
}

/// The server binaries lien drives (pg_ctl finds `postgres` beside itself).
#[derive(Clone, Debug)]
pub(super) struct Binaries {
    pub(super) initdb: PathBuf,
    pub(super) pg_ctl: PathBuf,
}

impl Binaries {
    pub(super) fn in_dir(dir: &Path) -> Binaries {
        Binaries {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
        }
    }
}

/// Picks the server binaries: the first candidate directory, or, for an existing cluster, the
/// first one whose major version matches the cluster's (a server refuses another major's files).
pub(super) async fn find_binaries(
    search: &BinarySearch,
    cluster_major: Option<&str>,
    pgdata: &Path,
) -> Result<Binaries, EmbeddedError> {
    let candidates = candidate_bin_dirs(search);
    let Some(first) = candidates.first() else {
        return Err(EmbeddedError::BinariesNotFound);
    };
    let Some(wanted) = cluster_major else {
        return Ok(Binaries::in_dir(first));
    };
    let mut found = Vec::new();
    for dir in &candidates {
        let major = binaries_major(dir).await?;
        if major == wanted {
            return Ok(Binaries::in_dir(dir));
        }
        if !found.contains(&major) {
            found.push(major);
        }
    }
    Err(EmbeddedError::VersionMismatch {
        pgdata: pgdata.to_path_buf(),
        cluster: wanted.to_string(),
        found: found.join(", "),
    })
}

/// Directories holding both initdb and pg_ctl: PATH entries in order, then
/// `{lib_root}/{version}/bin`, highest version first.
pub(super) fn candidate_bin_dirs(search: &BinarySearch) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = search
        .path
        .as_deref()
        .map(|path| {
            std::env::split_paths(path)
                .filter(|dir| dir.is_absolute() && has_server_binaries(dir))
                .collect()
        })
        .unwrap_or_default();
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(&search.lib_root)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let key = version_key(entry.file_name().to_str()?)?;
                    let bin = entry.path().join("bin");
                    has_server_binaries(&bin).then_some((key, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs
}

/// "15" → [15], "9.6" → [9, 6]; None for names that are not versions.
pub(super) fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

pub(super) fn has_server_binaries(dir: &Path) -> bool {
    is_executable_file(&dir.join("initdb")) && is_executable_file(&dir.join("pg_ctl"))
}

pub(super) fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The major version of the binaries in `dir`, as PG_VERSION spells it ("15", or "9.6").
pub(super) async fn binaries_major(dir: &Path) -> Result<String, EmbeddedError> {
    let pg_ctl = dir.join("pg_ctl");
    // `--version` is answered before pg_ctl's refusal to run as root, so no account switch.
    let mut command = Command::new(&pg_ctl);
    command.arg("--version").stdin(Stdio::null());
    let output = run(command, &format!("{} --version", pg_ctl.display())).await?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major_version(&text).ok_or_else(|| EmbeddedError::CommandFailed {
        what: format!("{} --version", pg_ctl.display()),
        detail: format!("unexpected answer {:?}", text.trim()),
    })
}

/// "pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1)" → "15"; "pg_ctl (PostgreSQL) 9.6.24" → "9.6".
pub(super) fn parse_major_version(version_output: &str) -> Option<String> {
    let version = version_output
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second: u32 = parts.next()?.parse().ok()?;
    Some(format!("{first}.{second}"))
}

/// The major version recorded in an existing cluster's PG_VERSION, if there is a cluster.
pub(super) fn cluster_major(pgdata: &Path) -> Result<Option<String>, EmbeddedError> {
    let file = pgdata.join("PG_VERSION");
    match fs::read_to_string(&file) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(format!("could not read {}", file.display()))(
            error,
        )),
    }
}

/// Whether `pgdata` holds a cluster; an unreadable dir is an error, not a "no".
pub(super) fn has_pg_version(pgdata: &Path) -> Result<bool, EmbeddedError> {
    let file = pgdata.join("PG_VERSION");
    match fs::metadata(&file) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io_error(format!("could not check {}", file.display()))(
            error,
        )),
    }
}
