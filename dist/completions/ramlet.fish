# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ramlet_global_optspecs
    string join \n h/help V/version
end

function __fish_ramlet_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ramlet_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ramlet_using_subcommand
    set -l cmd (__fish_ramlet_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ramlet -n "__fish_ramlet_needs_command" -s h -l help -d 'Print help'
complete -c ramlet -n "__fish_ramlet_needs_command" -s V -l version -d 'Print version'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "validate" -d 'Check a spec directory: exit 0 if every document is valid, 1 if any is not'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "render" -d 'Print the Quadlet units ramlet would write for a spec file or directory'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "run" -d 'Run the agent: keep this host converged with the spec directory'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "status" -d 'Show what the running agent reports: per spec, phase, unit state and reason'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "plan" -d 'Show what a reconcile would do on this host now, and why, without doing it: units written (with their diff), started, restarted, reloaded, stopped. Exit 0 when nothing would change, 2 when something would'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "seal" -d 'Seal a new value of a secret into a `creds` or `age` store: the value is read from standard input (never a flag), sealed with systemd-creds (creds: on this host) or encrypted to the store\'s recipients (age: beside the specs, for a commit). The running agent sees it as a new version. Exit 0 when sealed, 1 when sealing failed, 64 for a store or a name that cannot take it'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "sync" -d 'Ask the running agent to reconcile now (sends it SIGHUP)'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "mount-volume-root" -d 'Make a volume root RAM that cannot swap, in this mount namespace (root; `dist/ramlet-volume-root.service` runs it before ramlet, and `ramlet-user-volume-root@UID.service` for a user\'s ramlet): a noswap tmpfs, or a ramfs on a kernel without tmpfs `noswap` (before Linux 6.4). A noswap tmpfs or ramfs already there is kept; any other mount there is refused (exit 1)'
complete -c ramlet -n "__fish_ramlet_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ramlet -n "__fish_ramlet_using_subcommand validate" -l format -d 'Output format' -r -f -a "text\t'For people: one line per error, like a compiler'
json\t'For tools: one JSON object'"
complete -c ramlet -n "__fish_ramlet_using_subcommand validate" -l host-labels -d 'This host\'s labels, `key=value,...`: also say which containers the host would run' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand validate" -l config -d 'A host\'s ramlet configuration: also check the specs against its `policy`' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand render" -l scope -d 'Which systemd instance the units are for' -r -f -a "system\t'The system manager, as root: `/run/containers/systemd/ramlet/`'
user\t'A user\'s manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`'"
complete -c ramlet -n "__fish_ramlet_using_subcommand render" -l podman-version -d 'The Podman version to render for (default: the installed Quadlet\'s, else Podman\'s)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand render" -l volume-root -d 'Where RAM volumes are mounted (default: /run/ramlet/volumes, or /run/ramlet/users/UID in user scope)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l config -d 'A YAML config file with the same settings (specDir, scope, unitDir, volumeRoot, stateDir, bus, hostLabels, podmanVersion)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l spec-dir -d 'The spec directory (default /etc/ramlet/specs)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l scope -d 'system (root, system bus) or user (a limited user, session bus); default: by user' -r -f -a "system\t'The system manager, as root: `/run/containers/systemd/ramlet/`'
user\t'A user\'s manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`'"
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l unit-dir -d 'ramlet\'s unit folder (default: the scope\'s Quadlet runtime directory + /ramlet)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l volume-root -d 'The RAM volume root (default /run/ramlet/volumes, or /run/ramlet/users/UID)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l state-dir -d 'Where the status and pid files go (default /run/ramlet/state, or `$XDG_RUNTIME_DIR/ramlet`)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l bus -d 'system, session, or a D-Bus address such as unix:path=/run/user/1000/bus' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l host-labels -d 'This host\'s labels, `key=value,...`' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l podman-version -d 'The Podman version to render for (default: detected)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -l metrics-file -d 'Write metrics in Prometheus\' text format to this file after each reconcile (for the textfile collector of Prometheus\' node exporter; off by default)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'For people: one line per error, like a compiler'
json\t'For tools: one JSON object'"
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l config -d 'A YAML config file with the same settings (specDir, scope, unitDir, volumeRoot, stateDir, bus, hostLabels, podmanVersion)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l spec-dir -d 'The spec directory (default /etc/ramlet/specs)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l scope -d 'system (root, system bus) or user (a limited user, session bus); default: by user' -r -f -a "system\t'The system manager, as root: `/run/containers/systemd/ramlet/`'
user\t'A user\'s manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`'"
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l unit-dir -d 'ramlet\'s unit folder (default: the scope\'s Quadlet runtime directory + /ramlet)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l volume-root -d 'The RAM volume root (default /run/ramlet/volumes, or /run/ramlet/users/UID)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l state-dir -d 'Where the status and pid files go (default /run/ramlet/state, or `$XDG_RUNTIME_DIR/ramlet`)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l bus -d 'system, session, or a D-Bus address such as unix:path=/run/user/1000/bus' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l host-labels -d 'This host\'s labels, `key=value,...`' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l podman-version -d 'The Podman version to render for (default: detected)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -l metrics-file -d 'Write metrics in Prometheus\' text format to this file after each reconcile (for the textfile collector of Prometheus\' node exporter; off by default)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l format -d 'Output format' -r -f -a "text\t'For people: one line per error, like a compiler'
json\t'For tools: one JSON object'"
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l config -d 'A YAML config file with the same settings (specDir, scope, unitDir, volumeRoot, stateDir, bus, hostLabels, podmanVersion)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l spec-dir -d 'The spec directory (default /etc/ramlet/specs)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l scope -d 'system (root, system bus) or user (a limited user, session bus); default: by user' -r -f -a "system\t'The system manager, as root: `/run/containers/systemd/ramlet/`'
user\t'A user\'s manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`'"
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l unit-dir -d 'ramlet\'s unit folder (default: the scope\'s Quadlet runtime directory + /ramlet)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l volume-root -d 'The RAM volume root (default /run/ramlet/volumes, or /run/ramlet/users/UID)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l state-dir -d 'Where the status and pid files go (default /run/ramlet/state, or `$XDG_RUNTIME_DIR/ramlet`)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l bus -d 'system, session, or a D-Bus address such as unix:path=/run/user/1000/bus' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l host-labels -d 'This host\'s labels, `key=value,...`' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l podman-version -d 'The Podman version to render for (default: detected)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -l metrics-file -d 'Write metrics in Prometheus\' text format to this file after each reconcile (for the textfile collector of Prometheus\' node exporter; off by default)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand seal" -l with-key -d 'creds: which key seals it (systemd-creds `--with-key`)' -r -f -a "host\t'The host\'s key in `/var/lib/systemd/credential.secret`: any copy of that file decrypts'
tpm2\t'The TPM2 chip: only this machine decrypts'
host+tpm2\t'Both: the host\'s key and this machine\'s TPM2'
auto\t'systemd\'s choice: host+tpm2 where a TPM2 is present, else the host\'s key'"
complete -c ramlet -n "__fish_ramlet_using_subcommand seal" -l spec-dir -d 'The spec directory (default: the config file\'s `specDir`, else /etc/ramlet/specs)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand seal" -l config -d 'A host\'s ramlet configuration: its `specDir` and `policy`' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand seal" -l armor -d 'age: write the ASCII-armored form instead of binary'
complete -c ramlet -n "__fish_ramlet_using_subcommand seal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l retry -d 'Let SPEC try again the versions its health check rolled back (a version that failed once is otherwise left alone until a newer one comes). Repeat for several specs' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l config -d 'A YAML config file with the same settings (specDir, scope, unitDir, volumeRoot, stateDir, bus, hostLabels, podmanVersion)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l spec-dir -d 'The spec directory (default /etc/ramlet/specs)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l scope -d 'system (root, system bus) or user (a limited user, session bus); default: by user' -r -f -a "system\t'The system manager, as root: `/run/containers/systemd/ramlet/`'
user\t'A user\'s manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`'"
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l unit-dir -d 'ramlet\'s unit folder (default: the scope\'s Quadlet runtime directory + /ramlet)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l volume-root -d 'The RAM volume root (default /run/ramlet/volumes, or /run/ramlet/users/UID)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l state-dir -d 'Where the status and pid files go (default /run/ramlet/state, or `$XDG_RUNTIME_DIR/ramlet`)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l bus -d 'system, session, or a D-Bus address such as unix:path=/run/user/1000/bus' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l host-labels -d 'This host\'s labels, `key=value,...`' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l podman-version -d 'The Podman version to render for (default: detected)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -l metrics-file -d 'Write metrics in Prometheus\' text format to this file after each reconcile (for the textfile collector of Prometheus\' node exporter; off by default)' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ramlet -n "__fish_ramlet_using_subcommand mount-volume-root" -l volume-root -d 'The volume root' -r -F
complete -c ramlet -n "__fish_ramlet_using_subcommand mount-volume-root" -l size -d 'The tmpfs\'s size, in tmpfs\'s own syntax (a ramfs has none)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand mount-volume-root" -l owner -d 'Give the root to this user (a name or uid) and their primary group: the volume root of that user\'s ramlet, in user scope (`/run/ramlet/users/<uid>`)' -r
complete -c ramlet -n "__fish_ramlet_using_subcommand mount-volume-root" -s h -l help -d 'Print help'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "validate" -d 'Check a spec directory: exit 0 if every document is valid, 1 if any is not'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "render" -d 'Print the Quadlet units ramlet would write for a spec file or directory'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "run" -d 'Run the agent: keep this host converged with the spec directory'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "status" -d 'Show what the running agent reports: per spec, phase, unit state and reason'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "plan" -d 'Show what a reconcile would do on this host now, and why, without doing it: units written (with their diff), started, restarted, reloaded, stopped. Exit 0 when nothing would change, 2 when something would'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "seal" -d 'Seal a new value of a secret into a `creds` or `age` store: the value is read from standard input (never a flag), sealed with systemd-creds (creds: on this host) or encrypted to the store\'s recipients (age: beside the specs, for a commit). The running agent sees it as a new version. Exit 0 when sealed, 1 when sealing failed, 64 for a store or a name that cannot take it'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "sync" -d 'Ask the running agent to reconcile now (sends it SIGHUP)'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "mount-volume-root" -d 'Make a volume root RAM that cannot swap, in this mount namespace (root; `dist/ramlet-volume-root.service` runs it before ramlet, and `ramlet-user-volume-root@UID.service` for a user\'s ramlet): a noswap tmpfs, or a ramfs on a kernel without tmpfs `noswap` (before Linux 6.4). A noswap tmpfs or ramfs already there is kept; any other mount there is refused (exit 1)'
complete -c ramlet -n "__fish_ramlet_using_subcommand help; and not __fish_seen_subcommand_from validate render run status plan seal sync mount-volume-root help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
