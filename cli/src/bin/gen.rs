//! `vmclonectl-gen DIR`: writes vmclonectl's man pages (DIR/man/) and shell
//! completions (DIR/completions/) from its argument definitions. `make` runs it;
//! it is not installed.

use std::path::PathBuf;

use clap_complete::Shell;
use vmclonectl::complete;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: vmclonectl-gen DIR");
        std::process::exit(2);
    };
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    complete::man_pages(&man)?;
    for (shell, file) in [
        (Shell::Bash, "vmclonectl"),
        (Shell::Zsh, "_vmclonectl"),
        (Shell::Fish, "vmclonectl.fish"),
    ] {
        std::fs::write(completions.join(file), complete::script(shell))?;
    }
    Ok(())
}
