# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_loadcli_global_optspecs
    string join \n h/help V/version
end

function __fish_loadcli_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_loadcli_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_loadcli_using_subcommand
    set -l cmd (__fish_loadcli_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c loadcli -n "__fish_loadcli_needs_command" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_needs_command" -s V -l version -d 'Print version'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "rtt" -d 'N clients, K lines in flight each: lines/s, round trips, CPU per line'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "handshakes" -d 'Full TLS handshakes per second, and server CPU per handshake'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "flood" -d 'Stalled handshakes from one address; handshake times from another'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "trickle" -d 'Real ClientHellos sent a byte at a time from many addresses, never completed; a fresh address\'s handshake times meanwhile'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "unread" -d 'N clients that send and never read: the kernel\'s queues for them, server memory'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "hold" -d 'N silent clients: date lateness, server RSS per client, idle CPU'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "soak" -d 'N clients sending at a steady rate: nothing lost, dates on time, flat memory'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "storm" -d 'N clients reconnecting as clientcli --reconnect does, through server restarts: every line answered exactly once, time to recover, handshake rate'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "baseline-server" -d 'The yardstick: a bare tokio-rustls server answering reversed bytes'
complete -c loadcli -n "__fish_loadcli_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -s n -d 'Clients (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -s k -d 'Lines in flight per client (1 to 10000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -s m -d 'Lines per client (1 to 100000000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -s l -d 'Bytes per line (1 to 1048576)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -l unicode -d 'Mostly-ASCII chat with accents and emoji instead of ASCII'
complete -c loadcli -n "__fish_loadcli_using_subcommand rtt" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -s n -d 'Handshakes in progress at once (1 to 10000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -s d -l duration -d 'How long to run (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand handshakes" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l stalled -d 'Sockets that send one byte of a ClientHello and stall (0 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l attacker -d 'Source address of the stalled sockets (any of 127.0.0.0/8 is local)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l probes -d 'Handshakes to measure, one at a time (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l prober -d 'Source address of the measured handshakes' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l settle -d 'Time for the server to take in the stalled sockets first (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand flood" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l addresses -d 'Stalling source addresses, one after the other from --from (1 to 1000000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l sockets-per-address -d 'Stalled sockets from each address (1 to 65535, and at most the ephemeral port range)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l byte-interval -d 'Time between two bytes of a stalled socket\'s ClientHello (1ms to 1h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l from -d 'The first stalling address (of 127.0.0.0/8)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l prober -d 'Source address of the measured handshakes (of 127.0.0.0/8, outside the stalling ones)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l samples -d 'Handshakes to measure, one at a time (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l sample-interval -d 'Time from the start of one measured handshake to the next, at least (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l sample-timeout -d 'A measured handshake not done after this counts as timed out (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l settle -d 'Time between every stalled socket open and the first measured handshake (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l max-handshake-time -d 'Fail if a measured handshake takes longer than this (default: only a timeout or a failure fails the run) (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand trickle" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -s n -d 'Clients (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -s m -d 'Lines each client sends (1 to 100000000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -s l -d 'Bytes per line, all control characters (1 to 1048576)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l settle -d 'Time for the queues to fill before they are read (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand unread" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -s n -d 'Clients, 0 to 100000 (0 measures the server with nobody connected)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -s d -l duration -d 'How long to hold them (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l period -d 'The server\'s --date-period (10ms to 24h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l ramp -d 'Handshakes in progress at once while connecting. Lateness is measured from when our side of the handshake completed, so more than 1 overstates it by the server\'s handshake backlog (1 to 10000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand hold" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -s n -d 'Clients (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l rate -d 'Lines per second per client (0.001 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -s d -l duration -d 'How long to send (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l period -d 'The server\'s --date-period (10ms to 24h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l max-lateness -d 'Fail if a date is later than this (1µs to 1h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l max-rss-growth -d 'Fail if server RSS grows by more than this percentage (0 to 10000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand soak" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l host -d 'Server host name or address (the first address it resolves to is used)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l port -d 'Server port' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l ca -d 'CA certificate that signed the server\'s, PEM (default: the development CA, as clientcli)' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l server-name -d 'Name to verify in the server\'s certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l pid -d 'Server process id: read its CPU, memory and context switches (one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -s n -d 'Clients (1 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l rate -d 'Lines per second per client (0.001 to 100000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -s d -l duration -d 'How long lines come due (1ms to 168h); restart the server meanwhile' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l ramp -d 'Handshakes in progress at once while the clients first connect (1 to 10000)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l patience -d 'After the last line is due, how long to wait for the last answers and reconnections before what is missing counts as lost (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l series -d 'Write every 100 ms, as CSV: seconds, clients connected, lines due, lines answered, handshakes completed in the interval' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l max-recovery -d 'Fail if a disconnection wave takes longer than this, from its first loss to every pending line answered (1ms to 168h)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l baseline -d 'The server is `loadcli baseline-server` (raw reversed lines, no JSON)'
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l json -d 'Print the report as JSON'
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -l no-resend -d 'Do not re-send unanswered lines after reconnecting: a broken client, to check that the run then fails (it must report lines lost)'
complete -c loadcli -n "__fish_loadcli_using_subcommand storm" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -l bind -d 'Address to listen on' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -l port -d 'Port to listen on (0 picks one)' -r -f
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -l cert -d 'Certificate chain, PEM' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -l key -d 'Private key, PEM' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -l port-file -d 'Once listening, write the port to this file' -r -F
complete -c loadcli -n "__fish_loadcli_using_subcommand baseline-server" -s h -l help -d 'Print help'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "rtt" -d 'N clients, K lines in flight each: lines/s, round trips, CPU per line'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "handshakes" -d 'Full TLS handshakes per second, and server CPU per handshake'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "flood" -d 'Stalled handshakes from one address; handshake times from another'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "trickle" -d 'Real ClientHellos sent a byte at a time from many addresses, never completed; a fresh address\'s handshake times meanwhile'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "unread" -d 'N clients that send and never read: the kernel\'s queues for them, server memory'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "hold" -d 'N silent clients: date lateness, server RSS per client, idle CPU'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "soak" -d 'N clients sending at a steady rate: nothing lost, dates on time, flat memory'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "storm" -d 'N clients reconnecting as clientcli --reconnect does, through server restarts: every line answered exactly once, time to recover, handshake rate'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "baseline-server" -d 'The yardstick: a bare tokio-rustls server answering reversed bytes'
complete -c loadcli -n "__fish_loadcli_using_subcommand help; and not __fish_seen_subcommand_from rtt handshakes flood trickle unread hold soak storm baseline-server help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
