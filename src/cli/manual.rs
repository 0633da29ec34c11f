//! The man page and the bash, zsh and fish completions, made from what
//! `--help` says (`s3wal --generate man`): the global options and exit
//! codes `--help` lists, and each command's own argh help, read back from
//! the layout argh prints it in. So they never disagree with `--help`.

use std::fmt::Write as _;

use s3wal::config::settings;

/// A global option as `--help` lists it.
pub struct Opt {
    /// Its spellings: `-v, --verbose`.
    pub names: String,
    /// The name of its value, if it takes one.
    pub value: Option<&'static str>,
    /// Its help line.
    pub help: String,
}

/// What `--help` and `s3wal help <command>` say.
pub struct Manual {
    /// The global options.
    pub options: Vec<Opt>,
    /// Each command's name, description and argh help text.
    pub commands: Vec<(&'static str, &'static str, String)>,
    /// What each exit code but 0 means.
    pub exit_codes: &'static [(u8, &'static str)],
}

/// What `--generate` makes: `man`, `bash`, `zsh` or `fish`, or `None`.
pub fn generate(what: &str, manual: &Manual) -> Option<String> {
    let render = match what {
        "man" => man,
        "bash" => bash,
        "zsh" => zsh,
        "fish" => fish,
        _ => return None,
    };
    Some(render(manual))
}

/// One option of a command or of the whole: spellings, whether it takes a
/// value, help.
struct Word {
    spellings: Vec<String>,
    value: bool,
    help: String,
}

impl Manual {
    fn global_words(&self) -> Vec<Word> {
        let words = self.options.iter().map(|opt| Word {
            spellings: spellings(&opt.names),
            value: opt.value.is_some(),
            help: opt.help.clone(),
        });
        words.collect()
    }
}

/// The dashed spellings of `-h, --help, help`.
fn spellings(names: &str) -> Vec<String> {
    let dashed = names.split(", ").filter(|name| name.starts_with('-'));
    dashed.map(str::to_owned).collect()
}

/// The entries of a section (`Options:`) of argh's help: (term, text).
/// argh starts the text at column 20, or below a longer term, and
/// wraps it there.
pub fn section(help: &str, heading: &str) -> Vec<(String, String)> {
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

/// A command's options, from its argh help: whether one takes a value,
/// its usage line says (`[--from <from>]`).
fn command_words(help: &str) -> Vec<Word> {
    let usage = help.lines().next().unwrap_or_default();
    let options = section(help, "Options:").into_iter().map(|(term, help)| {
        let spellings = spellings(&term);
        let value = spellings.iter().any(|s| usage.contains(&format!("{s} <")));
        Word {
            spellings,
            value,
            help,
        }
    });
    options.collect()
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

/// `.TP` entries of `entries` under `heading`, a term in bold.
fn tagged(page: &mut String, entries: &[(String, String)]) {
    for (term, text) in entries {
        let _ = write!(page, ".TP\n\\fB{}\\fR\n{}\n", roff(term), roff(text));
    }
}

fn man(manual: &Manual) -> String {
    let mut page = format!(
        ".TH S3WAL 1 \"\" \"s3wal {}\" \"User Commands\"\n\
         .SH NAME\ns3wal \\- a write\\-ahead log stored in S3, one object per record\n\
         .SH SYNOPSIS\n\\fBs3wal\\fR [\\fIoptions\\fR] \\fIcommand\\fR [\\fIargs\\fR]\n\
         .SH OPTIONS\n",
        env!("CARGO_PKG_VERSION")
    );
    for opt in &manual.options {
        let value = opt
            .value
            .map(|v| format!(" \\fI{v}\\fR"))
            .unwrap_or_default();
        let names = roff(&opt.names);
        let _ = write!(page, ".TP\n\\fB{names}\\fR{value}\n{}\n", roff(&opt.help));
    }
    page.push_str(".SH COMMANDS\n");
    for (name, description, help) in &manual.commands {
        let usage = help.lines().next().unwrap_or_default();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(usage);
        let _ = write!(
            page,
            ".SS {name}\n{}\n.PP\n{}\n",
            roff(description),
            roff(usage)
        );
        tagged(&mut page, &section(help, "Positional Arguments:"));
        tagged(&mut page, &section(help, "Options:"));
        page.push_str(".PP\nExamples:\n.RS\n.nf\n");
        for (example, _) in section(help, "Examples:") {
            let _ = writeln!(page, "{}", roff(&example));
        }
        page.push_str(".fi\n.RE\n");
    }
    let variables: Vec<String> = settings::variables()
        .map(|v| format!("\\fB{}\\fR", roff(v)))
        .collect();
    let _ = write!(
        page,
        ".SH ENVIRONMENT\nFlags beat the environment ({}), which beats ./.env.\n\
         .SH EXIT STATUS\n.TP\n\\fB0\\fR\nsuccess\n",
        variables.join(", ")
    );
    let codes: Vec<(String, String)> = manual
        .exit_codes
        .iter()
        .map(|(code, text)| (code.to_string(), text.to_string()))
        .collect();
    tagged(&mut page, &codes);
    page
}

/// `text` in single quotes for a shell: bash and zsh end the quote for a
/// quote (`'\''`), fish escapes it (`\'`).
fn quoted(text: &str, quote: &str) -> String {
    format!("'{}'", text.replace('\'', quote))
}

fn bash(manual: &Manual) -> String {
    let globals = manual.global_words();
    let commands: Vec<(&str, Vec<Word>)> = manual
        .commands
        .iter()
        .map(|(name, _, help)| (*name, command_words(help)))
        .collect();
    let all = |words: &[Word]| {
        words
            .iter()
            .flat_map(|w| w.spellings.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let valued = globals
        .iter()
        .chain(commands.iter().flat_map(|(_, words)| words))
        .filter(|w| w.value);
    let mut valued: Vec<String> = valued.flat_map(|w| w.spellings.clone()).collect();
    valued.sort();
    valued.dedup();
    let names: Vec<&str> = commands.iter().map(|(name, _)| *name).collect();
    let mut script = format!(
        "# bash completion for s3wal: made by `s3wal --generate bash`\n\
         _s3wal() {{\n    \
             local word words='{} {}'\n    \
             COMPREPLY=()\n    \
             case ${{COMP_WORDS[COMP_CWORD-1]}} in\n        \
                 {}) return ;;\n    \
             esac\n    \
             for word in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do\n        \
                 case $word in\n",
        all(&globals),
        names.join(" "),
        valued.join("|")
    );
    for (name, words) in &commands {
        let _ = writeln!(
            script,
            "            {name}) words='{}'; break ;;",
            all(words)
        );
    }
    script.push_str(
        "        esac\n    done\n    \
         mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"${COMP_WORDS[COMP_CWORD]}\")\n\
         }\n\
         complete -o default -F _s3wal s3wal\n",
    );
    script
}

/// The `_arguments` specs of `words`: one a spelling, a value completed as
/// a file name.
fn zsh_specs(words: &[Word]) -> String {
    let mut specs = String::new();
    for word in words {
        let help = word
            .help
            .replace('\\', "\\\\")
            .replace('[', "\\[")
            .replace(']', "\\]");
        let value = if word.value { ":value:_default" } else { "" };
        for spelling in &word.spellings {
            let _ = write!(
                specs,
                " \\\n    {}",
                quoted(&format!("{spelling}[{help}]{value}"), "'\\''")
            );
        }
    }
    specs
}

fn zsh(manual: &Manual) -> String {
    let mut script = String::from(
        "#compdef s3wal\n# zsh completion for s3wal: made by `s3wal --generate zsh`\n\n\
         local curcontext=$curcontext state line\nlocal -a commands=(\n",
    );
    for (name, description, _) in &manual.commands {
        let _ = writeln!(
            script,
            "  {}",
            quoted(&format!("{name}:{description}"), "'\\''")
        );
    }
    let _ = write!(
        script,
        ")\n_arguments -C{} \\\n    '1: :->command' \\\n    '*:: :->args'\n\
         case $state in\n  command) _describe command commands ;;\n  args)\n    case $line[1] in\n",
        zsh_specs(&manual.global_words())
    );
    for (name, _, help) in &manual.commands {
        let _ = writeln!(
            script,
            "      {name}) _arguments{} ;;",
            zsh_specs(&command_words(help))
        );
    }
    script.push_str("    esac ;;\nesac\n");
    script
}

/// `complete` lines of `words` where `condition` holds; a value is
/// completed as a file name.
fn fish_lines(script: &mut String, condition: &str, words: &[Word]) {
    for word in words {
        let _ = write!(script, "complete -c s3wal -n {condition}");
        for spelling in &word.spellings {
            match spelling.strip_prefix("--") {
                Some(long) => script.push_str(&format!(" -l {long}")),
                None => script.push_str(&format!(" -s {}", &spelling[1..])),
            }
        }
        let value = if word.value { " -r -F" } else { "" };
        let _ = writeln!(script, "{value} -d {}", quoted(&word.help, "\\'"));
    }
}

fn fish(manual: &Manual) -> String {
    let mut script = String::from(
        "# fish completion for s3wal: made by `s3wal --generate fish`\ncomplete -c s3wal -f\n",
    );
    fish_lines(&mut script, "__fish_use_subcommand", &manual.global_words());
    for (name, description, _) in &manual.commands {
        let _ = writeln!(
            script,
            "complete -c s3wal -n __fish_use_subcommand -a {name} -d {}",
            quoted(description, "\\'")
        );
    }
    for (name, _, help) in &manual.commands {
        let condition = format!("'__fish_seen_subcommand_from {name}'");
        fish_lines(&mut script, &condition, &command_words(help));
    }
    script
}
