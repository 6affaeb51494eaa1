// A bash completion script written from the command table: the commands, each command's own
// options, the values an option accepts, and checkpoint ids asked of the gateway (`ls --quiet`).
import type { ArgumentSpec, Command } from "./command.js";

/** What completion offers for one option value or argument, as the script's helper reads it. */
function offer(spec: Pick<ArgumentSpec, "choices" | "complete">, topLevel: readonly string[]): string {
  if (spec.choices) return `choices:${spec.choices.join(" ")}`;
  if (spec.complete === "command") return `choices:${topLevel.join(" ")}`;
  return spec.complete ?? "any";
}

/** `case` arms: one pattern per line, each printing what it offers. */
function arms(rows: readonly (readonly [pattern: string, output: string])[]): string {
  return rows.map(([pattern, output]) => `    ${quote(pattern)}) echo ${quote(output)} ;;`).join("\n");
}

/** A word bash takes literally, whatever it holds. */
function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export function bashCompletion(commands: readonly Command[]): string {
  const topLevel = [...new Set(commands.map((c) => c.name.split(" ")[0]!))];
  const groups = topLevel.flatMap((word) => {
    const subs = commands.filter((c) => c.name.startsWith(`${word} `)).map((c) => c.name.split(" ")[1]!);
    return subs.length > 0 ? [[word, subs.join(" ")] as const] : [];
  });
  const options = commands.map((c) => {
    const words = Object.entries(c.options).flatMap(([name, o]) => [
      `--${name}`,
      ...(o.short ? [`-${o.short}`] : []),
    ]);
    return [c.name, [...words, "--help"].join(" ")] as const;
  });
  const values = commands.flatMap((c) =>
    Object.entries(c.options)
      .filter(([, o]) => o.type === "string")
      .flatMap(([name, o]) => [
        [`${c.name} --${name}`, offer(o, topLevel)] as const,
        ...(o.short ? [[`${c.name} -${o.short}`, offer(o, topLevel)] as const] : []),
      ]),
  );
  const args = commands.flatMap((c) =>
    (c.args ?? []).map((a: ArgumentSpec, i) => [`${c.name} ${i}`, offer(a, topLevel)] as const),
  );
  return `# bash completion for criu-gateway, written by \`criu-gateway completion bash\` from its command table.
# Use: eval "$(criu-gateway completion bash)", or save it in /etc/bash_completion.d/criu-gateway.

_criu_gateway_subcommands() {
  case "$1" in
${arms(groups)}
    *) return 1 ;;
  esac
}

_criu_gateway_options() {
  case "$1" in
${arms(options)}
  esac
}

# What an option's value may be; fails for an option that takes no value.
_criu_gateway_value() {
  case "$1 $2" in
${arms(values)}
    *) return 1 ;;
  esac
}

# What the command's Nth argument may be.
_criu_gateway_argument() {
  case "$1 $2" in
${arms(args)}
    *) return 1 ;;
  esac
}

# Offers what _criu_gateway_value or _criu_gateway_argument said, for the word being completed.
_criu_gateway_offer() {
  case "$1" in
    choices:*) mapfile -t COMPREPLY < <(compgen -W "\${1#choices:}" -- "$cur") ;;
    file)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      ;;
    checkpoint)
      # The gateway named on the command line so far (--addr, --tls-*), else the default one.
      mapfile -t COMPREPLY < <(compgen -W "$("\${COMP_WORDS[0]}" ls --quiet "\${conn[@]}" 2>/dev/null)" -- "$cur")
      ;;
  esac
}

_criu_gateway() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" word what i n=0
  local -a conn=()
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if [[ $word == -* ]]; then
      if _criu_gateway_value "$cmd" "$word" >/dev/null; then
        case "$word" in --addr | --tls-*) conn+=("$word" "\${COMP_WORDS[i + 1]}") ;; esac
        ((i++))
      fi
    elif [[ -z $cmd ]]; then
      cmd="$word"
    elif [[ $cmd != *" "* ]] && _criu_gateway_subcommands "$cmd" >/dev/null; then
      cmd="$cmd $word"
    else
      ((n++))
    fi
  done
  if ((COMP_CWORD > 1)) && [[ \${COMP_WORDS[COMP_CWORD - 1]} == -* ]] &&
    what=$(_criu_gateway_value "$cmd" "\${COMP_WORDS[COMP_CWORD - 1]}"); then
    _criu_gateway_offer "$what"
  elif [[ -z $cmd ]]; then
    _criu_gateway_offer "choices:${topLevel.join(" ")}"
  elif [[ $cmd != *" "* ]] && what=$(_criu_gateway_subcommands "$cmd"); then
    _criu_gateway_offer "choices:$what"
  elif [[ $cur == -* ]]; then
    _criu_gateway_offer "choices:$(_criu_gateway_options "$cmd")"
  elif what=$(_criu_gateway_argument "$cmd" "$n"); then
    _criu_gateway_offer "$what"
  fi
}

complete -F _criu_gateway criu-gateway
`;
}
