//! Paths as the data files write them: absolute, or relative to the folder of the file that
//! names them.

use std::path::{Component, Path, PathBuf};

/// `path` absolute (joined to the working directory, `.` and `..` folded lexically).
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` written relative to the folder `base` (both made absolute first), with `..` where
/// needed; `target` itself (absolute) when they share no root (another drive on Windows).
pub fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let (t, b) = (absolute(target), absolute(base));
    let tc: Vec<_> = t.components().collect();
    let bc: Vec<_> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return t;
    }
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/a/b/img/x.png"), Path::new("/a/b")),
            PathBuf::from("img/x.png")
        );
        assert_eq!(
            relative_to(Path::new("/a/img/x.png"), Path::new("/a/b/c")),
            PathBuf::from("../../img/x.png")
        );
        assert_eq!(absolute(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
