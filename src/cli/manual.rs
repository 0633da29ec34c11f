//! The man page and the bash, zsh and fish completions that `make dist`
//! ships (`docs/s3wal.1`, `docs/completions/`), made from what `--help`
//! and each command's argh help print, read back from the layout argh
//! prints in; a test holds the files to what they make. Test code only,
//! so the binary carries none of it (18 KB when it made them itself).

use std::fmt::Write as _;

use s3wal::config::settings;

/// What `--help` and `s3wal help <command>` say.
pub struct Manual {
    help: String,
    /// Each command's name, description and own help.
    commands: Vec<(String, String, String)>,
}

/// An option: its spellings as `--help` lists them (`-v, --verbose`),
/// the name of its value, if it takes one, and its help.
struct Opt {
    names: String,
    value: Option<String>,
    help: String,
}

/// What makes one file from what the help says.
type Make = fn(&Manual) -> String;

/// Each file, and what makes it.
pub const FILES: [(&str, Make); 4] = [
    ("docs/s3wal.1", man),
    ("docs/completions/s3wal.bash", bash),
    ("docs/completions/_s3wal", zsh),
    ("docs/completions/s3wal.fish", fish),
];

impl Manual {
    /// `help` as `--help` prints it; `command_help` gives what `s3wal
    /// help <command>` prints.
    pub fn new(help: String, command_help: impl Fn(&str) -> String) -> Manual {
        let commands = section(&help, "Commands:").into_iter();
        let commands = commands.map(|(name, text)| {
            let help = command_help(&name);
            (name, text, help)
        });
        Manual {
            commands: commands.collect(),
            help,
        }
    }
}

/// The entries of a section (`Options:`) of argh's help, as (term,
/// text): argh starts the text at column 20, or below a longer term, and
/// wraps it there. A line without two spaces in it is a term alone.
fn section(help: &str, heading: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let lines = help.lines().skip_while(|line| *line != heading).skip(1);
    for line in lines.take_while(|line| !line.is_empty()) {
        let text = line.trim_start();
        match (line.len() - text.len() > 2, entries.last_mut()) {
            (true, Some((_, more))) => {
                more.push_str(if more.is_empty() { "" } else { " " });
                more.push_str(text);
            }
            _ => {
                let (term, rest) = text.split_once("  ").unwrap_or((text, ""));
                entries.push((term.to_owned(), rest.trim_start().to_owned()));
            }
        }
    }
    entries
}

/// The options of a help text, each with the value its usage line (the
/// first) gives it: `[--from <from>]`.
fn options(help: &str) -> Vec<Opt> {
    let usage = help.lines().next().unwrap_or_default();
    let options = section(help, "Options:").into_iter().map(|(names, help)| {
        let first = names.split(", ").next().unwrap_or_default();
        let value = usage.split_once(&format!("[{first} <")).map(|(_, after)| {
            let value = after.split('>').next().unwrap_or_default();
            value.to_owned()
        });
        Opt { names, value, help }
    });
    options.collect()
}

/// The dashed spellings of `-h, --help, help`.
fn spellings(names: &str) -> impl Iterator<Item = &str> {
    names.split(", ").filter(|name| name.starts_with('-'))
}

/// `text` for roff: backslashes and dashes escaped, no line starting with
/// a control character.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

/// A `.TP` entry: `term` in bold, then `value` in italics, then `text`.
fn tagged(page: &mut String, term: &str, value: Option<&str>, text: &str) {
    let value = value.map(|v| format!(" \\fI{}\\fR", roff(v)));
    let (term, text) = (roff(term), roff(text));
    let _ = writeln!(
        page,
        ".TP\n\\fB{term}\\fR{}\n{text}",
        value.unwrap_or_default()
    );
}

/// The options of `help` as `.TP` entries.
fn tagged_options(page: &mut String, help: &str) {
    for Opt { names, value, help } in options(help) {
        tagged(page, &names, value.as_deref(), &help);
    }
}

fn man(manual: &Manual) -> String {
    let mut page = String::from(
        ".TH S3WAL 1 \"\" \"s3wal\" \"User Commands\"\n\
         .SH NAME\ns3wal \\- a write\\-ahead log stored in S3, one object per record\n\
         .SH SYNOPSIS\n\\fBs3wal\\fR [\\fIoptions\\fR] \\fIcommand\\fR [\\fIargs\\fR]\n\
         .SH OPTIONS\n",
    );
    tagged_options(&mut page, &manual.help);
    page.push_str(".SH COMMANDS\n");
    for (name, description, help) in &manual.commands {
        let usage = help.lines().next().unwrap_or_default();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(usage);
        let (description, usage) = (roff(description), roff(usage));
        let _ = writeln!(page, ".SS {name}\n{description}\n.PP\n{usage}");
        for (argument, text) in section(help, "Positional Arguments:") {
            tagged(&mut page, &argument, None, &text);
        }
        tagged_options(&mut page, help);
        page.push_str(".PP\nExamples:\n.RS\n.nf\n");
        for (example, _) in section(help, "Examples:") {
            let _ = writeln!(page, "{}", roff(&example));
        }
        page.push_str(".fi\n.RE\n");
    }
    let variables = settings::variables().map(|name| format!("\\fB{}\\fR", roff(name)));
    let _ = write!(
        page,
        ".SH ENVIRONMENT\nFlags beat the environment ({}), which beats ./.env.\n\
         .SH EXIT STATUS\n",
        variables.collect::<Vec<_>>().join(", ")
    );
    tagged(&mut page, "0", None, "success");
    for (line, _) in section(&manual.help, "Error codes:") {
        let (code, meaning) = line.split_once(' ').unwrap_or((&line, ""));
        tagged(&mut page, code, None, meaning);
    }
    page
}

/// `text` in single quotes for a shell: bash and zsh end the quote for a
/// quote (`'\''`), fish escapes it (`\'`).
fn quoted(text: &str, quote: &str) -> String {
    format!("'{}'", text.replace('\'', quote))
}

fn bash(manual: &Manual) -> String {
    let globals = options(&manual.help);
    let commands: Vec<(&str, Vec<Opt>)> = manual
        .commands
        .iter()
        .map(|(name, _, help)| (name.as_str(), options(help)))
        .collect();
    let words = |opts: &[Opt]| {
        let words = opts.iter().flat_map(|opt| spellings(&opt.names));
        words.collect::<Vec<_>>().join(" ")
    };
    let every = std::iter::once(&globals).chain(commands.iter().map(|(_, opts)| opts));
    let valued = every.flatten().filter(|opt| opt.value.is_some());
    let mut valued: Vec<&str> = valued.flat_map(|opt| spellings(&opt.names)).collect();
    valued.sort_unstable();
    valued.dedup();
    let names: Vec<&str> = commands.iter().map(|(name, _)| *name).collect();
    let mut cases = String::new();
    for (name, opts) in &commands {
        let _ = writeln!(
            cases,
            "            {name}) words='{}'; break ;;",
            words(opts)
        );
    }
    format!(
        "# bash completion for s3wal: made from `s3wal --help` (see src/cli/manual.rs)\n\
         _s3wal() {{\n    \
             local word words='{} {}'\n    \
             COMPREPLY=()\n    \
             case ${{COMP_WORDS[COMP_CWORD-1]}} in\n        \
                 {}) return ;;\n    \
             esac\n    \
             for word in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do\n        \
                 case $word in\n{cases}        \
                 esac\n    \
             done\n    \
             mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"${{COMP_WORDS[COMP_CWORD]}}\")\n\
         }}\n\
         complete -o default -F _s3wal s3wal\n",
        words(&globals),
        names.join(" "),
        valued.join("|"),
    )
}

/// The `_arguments` specs of `opts`, one a spelling; a value is completed
/// as a file name.
fn zsh_specs(opts: &[Opt]) -> String {
    let mut specs = String::new();
    for opt in opts {
        let help = opt
            .help
            .replace('\\', "\\\\")
            .replace('[', "\\[")
            .replace(']', "\\]");
        let value = opt
            .value
            .as_ref()
            .map(|v| format!(":{v}:_files"))
            .unwrap_or_default();
        for spelling in spellings(&opt.names) {
            let spec = quoted(&format!("{spelling}[{help}]{value}"), "'\\''");
            let _ = write!(specs, " \\\n    {spec}");
        }
    }
    specs
}

fn zsh(manual: &Manual) -> String {
    let mut script = String::from(
        "#compdef s3wal\n\
         # zsh completion for s3wal: made from `s3wal --help` (see src/cli/manual.rs)\n\n\
         local curcontext=$curcontext state line\nlocal -a commands=(\n",
    );
    for (name, description, _) in &manual.commands {
        let entry = quoted(&format!("{name}:{description}"), "'\\''");
        let _ = writeln!(script, "  {entry}");
    }
    let _ = write!(
        script,
        ")\n_arguments -C{} \\\n    '1: :->command' \\\n    '*:: :->args'\n\
         case $state in\n  command) _describe command commands ;;\n  args)\n    case $line[1] in\n",
        zsh_specs(&options(&manual.help))
    );
    for (name, _, help) in &manual.commands {
        let _ = writeln!(
            script,
            "      {name}) _arguments{} ;;",
            zsh_specs(&options(help))
        );
    }
    script.push_str("    esac ;;\nesac\n");
    script
}

/// The `complete` lines of `opts`, where `condition` holds; a value is
/// completed as a file name.
fn fish_lines(script: &mut String, condition: &str, opts: &[Opt]) {
    for opt in opts {
        let _ = write!(script, "complete -c s3wal -n {condition}");
        for spelling in spellings(&opt.names) {
            let _ = match spelling.strip_prefix("--") {
                Some(long) => write!(script, " -l {long}"),
                None => write!(script, " -s {}", &spelling[1..]),
            };
        }
        let value = if opt.value.is_some() { " -r -F" } else { "" };
        let _ = writeln!(script, "{value} -d {}", quoted(&opt.help, "\\'"));
    }
}

fn fish(manual: &Manual) -> String {
    let mut script = String::from(
        "# fish completion for s3wal: made from `s3wal --help` (see src/cli/manual.rs)\n\
         complete -c s3wal -f\n",
    );
    fish_lines(&mut script, "__fish_use_subcommand", &options(&manual.help));
    for (name, description, _) in &manual.commands {
        let description = quoted(description, "\\'");
        let _ = writeln!(
            script,
            "complete -c s3wal -n __fish_use_subcommand -a {name} -d {description}"
        );
    }
    for (name, _, help) in &manual.commands {
        let condition = format!("'__fish_seen_subcommand_from {name}'");
        fish_lines(&mut script, &condition, &options(help));
    }
    script
}
