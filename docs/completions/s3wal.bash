# bash completion for s3wal: made from `s3wal --help` (see src/cli/manual.rs)
_s3wal() {
    local word words='--bucket --prefix --region --endpoint --path-style --profile --ca-bundle --lock-dir --retries --timeout --parallel --allow-unsafe-store --lease --allow-unsafe-takeover -v --verbose -q --quiet -V --version --json -h --help recover append read last truncate dump doctor verify stat trim'
    COMPREPLY=()
    case ${COMP_WORDS[COMP_CWORD-1]} in
        --bucket|--ca-bundle|--cursor|--endpoint|--from|--idle-timeout|--last|--lease|--lock-dir|--max-records|--parallel|--prefix|--profile|--region|--retries|--timeout|--to) return ;;
    esac
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case $word in
            recover) words='--help'; break ;;
            append) words='--lines --help'; break ;;
            read) words='--raw --help'; break ;;
            last) words='--help'; break ;;
            truncate) words='--dry-run --help'; break ;;
            dump) words='--from --to --raw --follow --skip-trimmed --last --max-records --idle-timeout --cursor --help'; break ;;
            doctor) words='--help'; break ;;
            verify) words='--from --to --help'; break ;;
            stat) words='--help'; break ;;
            trim) words='--dry-run --keep-cursors --help'; break ;;
        esac
    done
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "${COMP_WORDS[COMP_CWORD]}")
}
complete -o default -F _s3wal s3wal
