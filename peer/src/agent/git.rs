//! Worktrees for agent sessions, and their diffs, with libgit2.
//!
//! Each agent session gets a linked worktree of the repository it was started on, checked out
//! on a new branch `peer/<agent>-<id>` from the base commit. The worktree directory lives in
//! the host's state directory (`<PEER_HOME>/host/worktrees/<id>`), not inside the repository,
//! so the agent's changes never mix with the user's checkout. These functions block: call them
//! from a blocking thread.

use std::path::{Path, PathBuf};

use git2::{BranchType, DiffOptions, Repository, WorktreeAddOptions, WorktreePruneOptions};

use crate::proto::{AgentDiff, FileDiff};

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// Not a repository, unknown base, …: for people.
    #[error("{0}")]
    Bad(String),
    /// libgit2 failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// A new worktree.
#[derive(Debug, Clone)]
pub struct Worktree {
    /// Its directory.
    pub path: PathBuf,
    /// Its name inside the repository (`.git/worktrees/<name>`).
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// Base commit, hex.
    pub base: String,
    /// The repository's main directory.
    pub repo: PathBuf,
}

/// Where a path is in its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The repository's main directory (its work tree).
    pub root: PathBuf,
    /// The path inside it (`""`: the root).
    pub subdir: PathBuf,
    /// Files with uncommitted changes (staged, unstaged, untracked; ignored ones not counted).
    pub uncommitted: usize,
}

/// Finds the repository `path` is in (the path may be a directory inside it) and checks that a
/// worktree can be made from it: not bare, with at least one commit.
pub fn locate(path: &Path) -> Result<Located, GitError> {
    if !path.is_absolute() {
        return Err(GitError::Bad(format!(
            "repository path {} must be absolute",
            path.display()
        )));
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        GitError::Bad(match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{} does not exist on the host", path.display())
            }
            _ => format!("{}: {e}", path.display()),
        })
    })?;
    if !meta.is_dir() {
        return Err(GitError::Bad(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    let repo = Repository::discover(path).map_err(|e| {
        GitError::Bad(format!(
            "{} is not in a git repository: {}",
            path.display(),
            e.message()
        ))
    })?;
    if repo.is_bare() {
        return Err(GitError::Bad("bare repositories are not supported".into()));
    }
    let Some(root) = repo.workdir().map(Path::to_path_buf) else {
        return Err(GitError::Bad("the repository has no work tree".into()));
    };
    if let Err(e) = repo.head()
        && e.code() == git2::ErrorCode::UnbornBranch
    {
        return Err(GitError::Bad(format!(
            "the repository {} has no commits yet: an agent's worktree starts from a commit, \
             so commit something first",
            root.display()
        )));
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let real_root = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
    let subdir = real
        .strip_prefix(&real_root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let uncommitted = repo.statuses(Some(&mut opts))?.len();
    Ok(Located {
        root,
        subdir,
        uncommitted,
    })
}

/// Copies the uncommitted changes of the checkout at `root` (staged, unstaged and untracked
/// files, against its `HEAD`) into `worktree`. Returns how many files changed.
pub fn carry_changes(root: &Path, worktree: &Path) -> Result<usize, GitError> {
    let repo = Repository::open(root)?;
    let head = repo.head()?.peel_to_tree()?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        .show_binary(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(&head), Some(&mut opts))?;
    let n = diff.deltas().len();
    if n == 0 {
        return Ok(0);
    }
    // Through the patch text: untracked files become "new file" patches that apply.
    let mut text = Vec::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })?;
    let patch = git2::Diff::from_buffer(&text)?;
    let wt = Repository::open(worktree)?;
    wt.apply(&patch, git2::ApplyLocation::WorkDir, None)
        .map_err(|e| {
            GitError::Bad(format!(
                "the uncommitted changes do not apply to the worktree: {}",
                e.message()
            ))
        })?;
    Ok(n)
}

/// Creates the worktree `dir` on a new branch `branch` from `base` (default `HEAD`).
pub fn create_worktree(
    repo_path: &Path,
    base: Option<&str>,
    branch: &str,
    name: &str,
    dir: &Path,
) -> Result<Worktree, GitError> {
    if !repo_path.is_absolute() {
        return Err(GitError::Bad(format!(
            "repository path {} must be absolute",
            repo_path.display()
        )));
    }
    let repo = Repository::open(repo_path).map_err(|e| {
        GitError::Bad(format!(
            "{} is not a git repository: {}",
            repo_path.display(),
            e.message()
        ))
    })?;
    if repo.is_bare() {
        return Err(GitError::Bad("bare repositories are not supported".into()));
    }
    let spec = base.unwrap_or("HEAD");
    let commit = repo
        .revparse_single(spec)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| GitError::Bad(format!("base {spec:?}: {}", e.message())))?;
    if repo.find_branch(branch, BranchType::Local).is_ok() {
        return Err(GitError::Bad(format!("branch {branch} already exists")));
    }
    let br = repo.branch(branch, &commit, false)?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| GitError::Bad(format!("creating {}: {e}", parent.display())))?;
    }
    let mut opts = WorktreeAddOptions::new();
    let reference = br.into_reference();
    opts.reference(Some(&reference));
    if let Err(e) = repo.worktree(name, dir, Some(&opts)) {
        // Leave no stray branch behind.
        if let Ok(mut b) = repo.find_branch(branch, BranchType::Local) {
            let _ = b.delete();
        }
        return Err(e.into());
    }
    let main = repo
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_path.to_path_buf());
    Ok(Worktree {
        path: dir.to_path_buf(),
        name: name.to_string(),
        branch: branch.to_string(),
        base: commit.id().to_string(),
        repo: main,
    })
}

/// Bytes of patch text one diff reply carries at most (it must fit in one frame); patches past
/// the budget are replaced with a note, and files past [`MAX_DIFF_FILES`] are left out.
pub const DIFF_BUDGET: usize = 160 * 1024;
/// Files one diff reply lists at most.
pub const MAX_DIFF_FILES: usize = 1000;

/// The worktree's changes against `base`: committed, staged, unstaged and untracked.
pub fn diff(worktree: &Path, base: &str, branch: &str) -> Result<AgentDiff, GitError> {
    let repo = Repository::open(worktree)
        .map_err(|e| GitError::Bad(format!("worktree {}: {}", worktree.display(), e.message())))?;
    let oid = git2::Oid::from_str(base)?;
    let tree = repo.find_commit(oid)?.tree()?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        .context_lines(3);
    let mut diff = repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))?;
    diff.find_similar(None)?;
    let mut files = Vec::new();
    let mut budget = DIFF_BUDGET;
    for i in 0..diff.deltas().len().min(MAX_DIFF_FILES) {
        let Some(delta) = diff.get_delta(i) else {
            continue;
        };
        let status = match delta.status() {
            git2::Delta::Added | git2::Delta::Untracked => "added",
            git2::Delta::Deleted => "deleted",
            git2::Delta::Renamed => "renamed",
            git2::Delta::Typechange => "typechange",
            _ => "modified",
        };
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let patch = match git2::Patch::from_diff(&diff, i)? {
            Some(mut p) => {
                let buf = p.to_buf()?;
                String::from_utf8_lossy(&buf).into_owned()
            }
            None => format!("Binary file {path} differs\n"),
        };
        let patch = if patch.len() + path.len() <= budget {
            budget -= patch.len() + path.len();
            patch
        } else {
            budget = budget.saturating_sub(path.len() + 64);
            format!(
                "(a diff of {} bytes is left out: the changes are too large to send at once)\n",
                patch.len()
            )
        };
        files.push(FileDiff {
            path,
            status: status.into(),
            patch,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(AgentDiff {
        base: base.to_string(),
        branch: branch.to_string(),
        files,
    })
}

/// Removes the worktree directory, its registration and its branch.
pub fn remove_worktree(repo_path: &Path, name: &str, branch: &str) -> Result<(), GitError> {
    let repo = Repository::open(repo_path)?;
    if let Ok(wt) = repo.find_worktree(name) {
        let mut opts = WorktreePruneOptions::new();
        opts.valid(true).locked(true).working_tree(true);
        wt.prune(Some(&mut opts))?;
    }
    if let Ok(mut b) = repo.find_branch(branch, BranchType::Local) {
        b.delete()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn repo_with_commit(dir: &Path) -> Repository {
        let repo = Repository::init(dir).expect("init");
        std::fs::write(dir.join("a.txt"), "one\ntwo\nthree\n").expect("write");
        std::fs::write(dir.join("gone.txt"), "bye\n").expect("write");
        {
            let mut index = repo.index().expect("index");
            index
                .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
                .expect("add");
            index.write().expect("write index");
            let tree = repo
                .find_tree(index.write_tree().expect("tree"))
                .expect("find tree");
            let sig = git2::Signature::now("t", "t@example.com").expect("sig");
            repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
                .expect("commit");
        }
        repo
    }

    #[test]
    fn worktree_diff_and_removal_on_a_real_repository() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo_dir = t.path().join("repo");
        std::fs::create_dir(&repo_dir).expect("mkdir");
        repo_with_commit(&repo_dir);
        let wt_dir = t.path().join("wts").join("1");
        let wt = create_worktree(&repo_dir, None, "peer/fake-1", "peer-1", &wt_dir).expect("wt");
        assert!(wt_dir.join("a.txt").exists());
        assert_eq!(wt.base.len(), 40);

        // No changes yet.
        assert!(
            diff(&wt_dir, &wt.base, &wt.branch)
                .expect("diff")
                .files
                .is_empty()
        );

        std::fs::write(wt_dir.join("a.txt"), "one\n2\nthree\n").expect("edit");
        std::fs::remove_file(wt_dir.join("gone.txt")).expect("rm");
        std::fs::create_dir_all(wt_dir.join("src")).expect("mkdir");
        std::fs::write(wt_dir.join("src/new.rs"), "fn main() {}\n").expect("new");
        let d = diff(&wt_dir, &wt.base, &wt.branch).expect("diff");
        let got: Vec<(&str, &str)> = d
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.status.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a.txt", "modified"),
                ("gone.txt", "deleted"),
                ("src/new.rs", "added")
            ]
        );
        assert!(
            d.files[0].patch.contains("-two\n+2\n"),
            "{}",
            d.files[0].patch
        );
        assert!(d.files[2].patch.contains("+fn main() {}"));
        // The user's checkout is untouched.
        assert_eq!(
            std::fs::read_to_string(repo_dir.join("a.txt")).expect("read"),
            "one\ntwo\nthree\n"
        );

        // The same branch cannot be made twice; bad bases and non-repositories are refused.
        assert!(
            create_worktree(
                &repo_dir,
                None,
                "peer/fake-1",
                "peer-x",
                &t.path().join("x")
            )
            .is_err()
        );
        assert!(create_worktree(&repo_dir, Some("nope"), "b2", "w2", &t.path().join("y")).is_err());
        assert!(create_worktree(t.path(), None, "b3", "w3", &t.path().join("z")).is_err());
        assert!(create_worktree(Path::new("rel"), None, "b4", "w4", &t.path().join("z")).is_err());

        // A change too large to send is listed with a note instead of its patch.
        std::fs::write(wt_dir.join("big.txt"), "x\n".repeat(200_000)).expect("big");
        let d = diff(&wt_dir, &wt.base, &wt.branch).expect("diff");
        let big = d
            .files
            .iter()
            .find(|f| f.path == "big.txt")
            .expect("big listed");
        assert!(big.patch.contains("left out"), "{}", &big.patch[..100]);
        assert!(d.files.iter().map(|f| f.patch.len()).sum::<usize>() <= DIFF_BUDGET);

        remove_worktree(&repo_dir, "peer-1", "peer/fake-1").expect("remove");
        // Removing what is gone already is no error.
        remove_worktree(&repo_dir, "peer-1", "peer/fake-1").expect("remove again");
        assert!(!wt_dir.exists());
        let repo = Repository::open(&repo_dir).expect("open");
        assert!(repo.find_branch("peer/fake-1", BranchType::Local).is_err());
        assert!(repo.find_worktree("peer-1").is_err());
    }

    #[test]
    fn a_directory_inside_a_repository_and_uncommitted_changes() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo_dir = t.path().join("repo");
        std::fs::create_dir_all(repo_dir.join("sub/deep")).expect("mkdir");
        repo_with_commit(&repo_dir);
        let l = locate(&repo_dir.join("sub/deep")).expect("locate");
        assert_eq!(l.subdir, Path::new("sub/deep"));
        assert_eq!(
            std::fs::canonicalize(&l.root).expect("c"),
            std::fs::canonicalize(&repo_dir).expect("c")
        );
        assert_eq!(l.uncommitted, 0);
        // Changes: one edited file, one untracked file.
        std::fs::write(repo_dir.join("a.txt"), "one\nTWO\nthree\n").expect("edit");
        std::fs::write(repo_dir.join("sub/new.txt"), "fresh\n").expect("new");
        assert_eq!(locate(&repo_dir).expect("locate").uncommitted, 2);
        let wt = t.path().join("wt");
        create_worktree(&repo_dir, None, "b1", "w1", &wt).expect("wt");
        assert_eq!(carry_changes(&repo_dir, &wt).expect("carry"), 2);
        assert_eq!(
            std::fs::read_to_string(wt.join("a.txt")).expect("a"),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("sub/new.txt")).expect("new"),
            "fresh\n"
        );
        // An empty repository, a file, a relative path, no repository: each says why.
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        Repository::init(&empty).expect("init");
        let e = locate(&empty).expect_err("empty").to_string();
        assert!(e.contains("no commits yet"), "{e}");
        assert!(locate(&repo_dir.join("a.txt")).is_err());
        assert!(locate(Path::new("repo")).is_err());
        let none = tempfile::tempdir().expect("tempdir");
        let e = locate(none.path()).expect_err("no repo").to_string();
        assert!(e.contains("not in a git repository"), "{e}");
    }
}
