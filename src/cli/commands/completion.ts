// `rnx completion bash|zsh`: a shell completion script generated from the command tree itself, so it never
// lists a flag that does not exist. Job IDs and node names are completed by asking rnx (`list -q`,
// `nodes -q`) with the --config/--node/--server already typed on the line.
import { invalidArgument } from "../../shared/errors.js";
import { ExitCode } from "../exit-codes.js";
import { writeAll, type CliIo } from "../io.js";

/** One option of a command. */
export interface OptionSpec {
  /** e.g. ["-d", "--detach"]. */
  readonly flags: readonly string[];
  readonly description: string;
  /** True when the option takes a value. */
  readonly takesValue: boolean;
}

/** One command, with the names of its positional arguments ("id", "command", "shell"…; "id..." for one or more IDs). */
export interface CommandSpec {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly description: string;
  readonly options: readonly OptionSpec[];
  readonly args: readonly string[];
}

/** The whole command line. */
export interface CompletionSpec {
  readonly globalOptions: readonly OptionSpec[];
  readonly commands: readonly CommandSpec[];
}

/** The shells a script can be generated for. */
export const SHELLS = ["bash", "zsh"] as const;

/** Prints the completion script for `shell`; resolves with rnx's exit code. */
export async function completionCommand(shell: string, spec: CompletionSpec, io: CliIo): Promise<number> {
  if (shell === "bash") await writeAll(io.stdout, bashScript(spec));
  else if (shell === "zsh") await writeAll(io.stdout, zshScript(spec));
  else throw invalidArgument("shell", `one of ${SHELLS.join(", ")}`, shell);
  return ExitCode.OK;
}

const VALUE_GLOBALS = ["--config", "--node", "--server"];

/** The bash script; load it with `source <(rnx completion bash)`. */
export function bashScript(spec: CompletionSpec): string {
  const names = spec.commands.flatMap((c) => [c.name, ...c.aliases]);
  const globalWords = spec.globalOptions.flatMap((o) => o.flags);
  const valueOptions = new Set([...spec.globalOptions, ...spec.commands.flatMap((c) => c.options)].filter((o) => o.takesValue).flatMap((o) => o.flags));
  const perCommand = spec.commands
    .map((c) => {
      const words = c.options.flatMap((o) => o.flags).join(" ");
      return `    ${[c.name, ...c.aliases].join("|")}) opts="${words}"; args="${c.args.join(" ")}" ;;`;
    })
    .join("\n");
  return `# bash completion for rnx. Load it with:  source <(rnx completion bash)
# or install it:  rnx completion bash > /etc/bash_completion.d/rnx
_rnx_ask() {
  # Runs rnx with the --config/--node/--server already on the line; prints nothing on failure.
  local i ctx=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      ${VALUE_GLOBALS.join("|")}) ((i + 1 < COMP_CWORD)) && ctx+=("\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}"); ((i++)) ;;
    esac
  done
  command rnx "\${ctx[@]}" "$@" 2>/dev/null
}

_rnx() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local i cmd="" cmd_at=0 opts="" args=""
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      ${[...valueOptions].join("|")}) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; cmd_at=$i; break ;;
    esac
  done
  case "$prev" in
    --config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --node) COMPREPLY=($(compgen -W "$(_rnx_ask nodes -q)" -- "$cur")); return ;;
    --status) COMPREPLY=($(compgen -W "running completed failed stopped initializing" -- "$cur")); return ;;
    --network) COMPREPLY=($(compgen -W "host none" -- "$cur")); return ;;
    --upload) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --upload-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    ${[...valueOptions].filter((f) => !["--config", "--node", "--status", "--network", "--upload", "--upload-dir"].includes(f)).join("|")}) return ;;
  esac
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${names.join(" ")} ${globalWords.join(" ")}" -- "$cur"))
    return
  fi
  case "$cmd" in
${perCommand}
  esac
  # Positional words typed so far after the command (values of options skipped).
  local n=0
  for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      --) ;;
      ${[...valueOptions].join("|")}) ((i++)) ;;
      -*) ;;
      *) ((n++)) ;;
    esac
  done
  local first="\${args%% *}"
  if [[ "$first" == command && $n -ge 1 ]]; then
    # The job's own command line: files, as for any command.
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  if [[ "$first" == "id..." ]]; then
    # One or more job IDs (rm): every position takes one.
    COMPREPLY=($(compgen -W "$(_rnx_ask list -q)" -- "$cur"))
    return
  fi
  if [[ $n -eq 0 ]]; then
    case "$first" in
      id) COMPREPLY=($(compgen -W "$(_rnx_ask list -q)" -- "$cur")) ;;
      shell) COMPREPLY=($(compgen -W "${SHELLS.join(" ")}" -- "$cur")) ;;
      command) COMPREPLY=($(compgen -c -- "$cur")) ;;
    esac
  fi
}
complete -F _rnx rnx
`;
}

/** The zsh script; load it with `source <(rnx completion zsh)` or save it as `_rnx` on $fpath. */
export function zshScript(spec: CompletionSpec): string {
  const q = (s: string) => s.replace(/'/g, `'\\''`).replace(/[[\]:]/g, (c) => `\\${c}`);
  const optSpec = (o: OptionSpec) => {
    const value = o.takesValue ? `:${o.flags.at(-1)!.replace(/^--/, "")}:${valueAction(o)}` : "";
    if (o.flags.length === 1) return `'${o.flags[0]}[${q(o.description)}]${value}'`;
    return `'(${o.flags.join(" ")})'{${o.flags.join(",")}}'[${q(o.description)}]${value}'`;
  };
  const commandList = spec.commands
    .flatMap((c) => [c.name, ...c.aliases].map((n) => `    '${n}:${q(c.description)}'`))
    .join("\n");
  const cases = spec.commands
    .map((c) => {
      const positional = c.args.map((a, i) => {
        if (a === "id") return `'${i + 1}:job ID:_rnx_ids'`;
        if (a === "id...") return `'*:job ID:_rnx_ids'`;
        if (a === "shell") return `'${i + 1}:shell:(${SHELLS.join(" ")})'`;
        if (a === "command") return `'${i + 1}:command:_command_names -e'`;
        return `'*::${a.replace(/\.\.\.$/, "")}:_files'`;
      });
      const flags = c.options.map(optSpec);
      // For run, -S stops option parsing at the job's command, so its own flags are not completed as rnx's.
      const argsOpt = c.args.includes("command") ? "-S -A '-*'" : "-S";
      return `      (${[c.name, ...c.aliases].join("|")})\n        _arguments ${argsOpt} \\\n          ${[...flags, ...positional].join(" \\\n          ")}\n        ;;`;
    })
    .join("\n");
  return `#compdef rnx
# zsh completion for rnx. Load it with:  source <(rnx completion zsh)
# or save it as a file named _rnx in a directory on $fpath.

_rnx_ask() {
  local -a ctx
  local i
  for ((i = 2; i < CURRENT; i++)); do
    case $words[i] in
      ${VALUE_GLOBALS.join("|")}) ((i + 1 < CURRENT)) && ctx+=($words[i] $words[i+1]); ((i++)) ;;
    esac
  done
  rnx $ctx "$@" 2>/dev/null
}
_rnx_ids() { local -a ids; ids=(\${(f)"$(_rnx_ask list -q)"}); compadd -a ids; }
_rnx_nodes() { local -a nodes; nodes=(\${(f)"$(_rnx_ask nodes -q)"}); compadd -a nodes; }

_rnx() {
  local curcontext="$curcontext" state line
  local -a commands
  commands=(
${commandList}
  )
  _arguments -C \\
    ${spec.globalOptions.map(optSpec).join(" \\\n    ")} \\
    '1:command:->command' \\
    '*::argument:->argument'
  case $state in
    command) _describe -t commands 'rnx command' commands ;;
    argument)
      case $words[1] in
${cases}
      esac
      ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _rnx "$@"
else
  compdef _rnx rnx
fi
`;
}

function valueAction(o: OptionSpec): string {
  const flag = o.flags.at(-1)!;
  if (flag === "--config" || flag === "--upload") return "_files";
  if (flag === "--upload-dir") return "_files -/";
  if (flag === "--node") return "_rnx_nodes";
  if (flag === "--status") return "(running completed failed stopped initializing)";
  if (flag === "--network") return "(host none)";
  return " ";
}
