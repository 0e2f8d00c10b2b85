//! Shell completions and man pages, made from [`crate::args::command`]: the
//! same definitions as `--help`. clap_complete writes the scripts; each gets
//! one small hook so that VM arguments complete with the names `ListVms`
//! gives (`vmclonectl list --names`, on the bus named by `--address` or
//! `--host` if given).

use std::io::Write;
use std::path::Path;

use clap::Command;
use clap_complete::Shell;

use crate::args::{command, PROGRAM, VM_ARGS};
use crate::exit::ExitStatus;

/// The subcommands whose first argument is a VM.
fn vm_subcommands(cmd: &Command) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|s| {
            s.get_positionals()
                .next()
                .is_some_and(|a| VM_ARGS.contains(&a.get_id().as_str()))
        })
        .map(|s| s.get_name().to_string())
        .collect()
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = command();
    let subs = vm_subcommands(&cmd).join(" ");
    let mut raw = Vec::new();
    clap_complete::generate(shell, &mut cmd, PROGRAM, &mut raw);
    let raw = String::from_utf8(raw).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => bash(&raw, &subs),
        Shell::Zsh => zsh(&raw),
        Shell::Fish => fish(&raw, &subs),
        other => raw + &format!("# no VM-name completion for {other}\n"),
    }
}

fn bash(raw: &str, subs: &str) -> String {
    // COMP_WORDS splits `--address=unix:path=…` at = and :, so the hook reads
    // the line itself.
    let hook = format!(
        r#"
# VM names from the service for the first argument of: {subs}
_vmclonectl_vms() {{
    local -a words addr=()
    local sub="" pos=0 cur i
    read -ra words <<< "${{COMP_LINE:0:COMP_POINT}}"
    [[ "${{COMP_LINE:0:COMP_POINT}}" == *" " ]] && words+=("")
    cur=${{words[-1]}}
    for (( i = 1; i < ${{#words[@]}} - 1; i++ )); do
        case ${{words[i]}} in
            --address|--host|-H) addr=("${{words[i]}}" "${{words[i+1]}}"); (( i++ )) ;;
            --address=*|--host=*) addr=("${{words[i]}}") ;;
            -*) ;;
            *) if [[ -z $sub ]]; then sub=${{words[i]}}; else (( pos++ )); fi ;;
        esac
    done
    if [[ $pos -eq 0 && $cur != -* && " {subs} " == *" $sub "* ]]; then
        local IFS=$'\n'
        COMPREPLY=( $(compgen -W "$(command vmclonectl "${{addr[@]}}" list --names 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _vmclonectl "$@"
}}
"#
    );
    let raw = raw.replace("complete -F _vmclonectl ", "complete -F _vmclonectl_vms ");
    format!("{raw}{hook}")
}

fn zsh(raw: &str) -> String {
    let hook = r#"
# VM names from the service, on the bus named by --address or --host if given.
_vmclonectl_vms() {
    local -a vms addr
    local i
    for (( i = 2; i < CURRENT; i++ )); do
        case ${words[i]} in
            --address=*|--host=*) addr=("${words[i]}") ;;
            --address|--host|-H) addr=("${words[i]}" "${words[i+1]}") ;;
        esac
    done
    vms=(${(f)"$(command vmclonectl "${addr[@]}" list --names 2>/dev/null)"})
    compadd -a vms
}
"#;
    let (first, rest) = raw.split_once('\n').expect("a #compdef line");
    // clap leaves the action of a VM argument empty (`':vm -- help:'`).
    let body: Vec<String> = rest
        .lines()
        .map(|line| {
            let is_vm = VM_ARGS
                .iter()
                .any(|id| line.starts_with(&format!("':{id} -- ")));
            match line.strip_suffix(":' \\") {
                Some(spec) if is_vm => format!("{spec}:_vmclonectl_vms' \\"),
                _ => line.to_string(),
            }
        })
        .collect();
    format!("{first}\n{hook}\n{}\n", body.join("\n"))
}

fn fish(raw: &str, subs: &str) -> String {
    let hook = format!(
        r#"
# VM names from the service, on the bus named by --address or --host if given.
function __fish_vmclonectl_vms
    set -l addr
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case '--address=*' '--host=*'
                set addr $tokens[$i]
            case --address --host -H
                set addr $tokens[$i] $tokens[(math $i + 1)]
        end
    end
    command vmclonectl $addr list --names 2>/dev/null
end
complete -c vmclonectl -n "__fish_vmclonectl_using_subcommand {subs}" -f -a "(__fish_vmclonectl_vms)"
"#
    );
    format!("{raw}{hook}")
}

/// Escapes text for a roff line.
fn roff(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

/// `vmclonectl.1` (with the exit statuses and SEE ALSO) and one
/// `vmclonectl-COMMAND.1` per command, written into `dir`.
pub fn man_pages(dir: &Path) -> std::io::Result<()> {
    let mut cmd = command();
    cmd.build();
    let mut see_also = Vec::new();
    for sub in cmd.get_subcommands() {
        let page = clap_mangen::Man::new(sub.clone());
        page.generate_to(dir)?;
        see_also.push(format!(
            "\\fB{}\\fR(1)",
            roff(sub.get_display_name().unwrap_or(sub.get_name()))
        ));
    }
    see_also.push("\\fBbusctl\\fR(1)".into());
    let page = clap_mangen::Man::new(cmd.clone());
    let mut out = std::fs::File::create(dir.join(format!("{PROGRAM}.1")))?;
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    page.render_subcommands_section(&mut out)?;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for status in ExitStatus::ALL {
        writeln!(
            out,
            ".TP\n\\fB{}\\fR\n{}",
            status.code(),
            roff(&status.meaning())
        )?;
    }
    writeln!(out, ".SH \"SEE ALSO\"\n{}", see_also.join(", "))?;
    page.render_version_section(&mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_commands_are_found_in_the_definitions() {
        assert_eq!(
            vm_subcommands(&command()),
            ["show", "clone", "plan", "template"]
        );
    }

    #[test]
    fn every_vm_argument_gets_the_zsh_hook() {
        let script = script(Shell::Zsh);
        // show's VM, clone's and plan's SOURCE, template's VM.
        assert_eq!(
            script.matches(":_vmclonectl_vms' \\").count(),
            4,
            "{script}"
        );
    }
}
