complete -c servercli -l port -d 'TCP port to listen on, 0 to 65535 (0 picks a free one)' -r -f
complete -c servercli -l bind -d 'Address to listen on (use :: for IPv6 and IPv4)' -r -f
complete -c servercli -l cert -d 'Server certificate chain, PEM (default: the development certificate)' -r -F
complete -c servercli -l key -d 'Private key for --cert, PEM' -r -F
complete -c servercli -l client-ca -d 'CA certificates, PEM; clients must present a certificate it signed' -r -F
complete -c servercli -l max-clients -d 'Most clients connected at once (1 to 1000000)' -r -f
complete -c servercli -l max-clients-per-address -d 'Most clients connected at once from one address, an IPv4 address or an IPv6 /64 (0 for no limit, up to 1000000)' -r -f
complete -c servercli -l date-period -d 'Time between two dates sent to a client, e.g. 10s, 250ms, 1.5 (10ms to 24h)' -r -f
complete -c servercli -l handshake-timeout -d 'Deadline for a client\'s TLS handshake, from its turn (10ms to 1h)' -r -f
complete -c servercli -l max-handshakes -d 'Most TLS handshakes past their ClientHello in progress at once; 32 times as many may read their ClientHello (1 to 100000)' -r -f
complete -c servercli -l max-line-bytes -d 'Longest line accepted, in bytes (1 to 1048576)' -r -f
complete -c servercli -l write-timeout -d 'Drop a client whose writes stall this long: it is not reading (10ms to 1h)' -r -f
complete -c servercli -l dead-peer-timeout -d 'Give up a client that stops answering at the TCP level (its path died silently) after this long (1s to 24h)' -r -f
complete -c servercli -l admin-addr -d 'Serve /metrics and /healthz over plain HTTP here, e.g. 127.0.0.1:9443 (off by default)' -r -f
complete -c servercli -l proxy-protocol-from -d 'Load balancers whose connections begin with a PROXY protocol header (v1 or v2) naming the client: addresses or networks, comma-separated, e.g. 10.0.0.0/8,fd00::/8 (off by default)' -r -f
complete -c servercli -l port-file -d 'Once listening, write the port to this file (useful with --port 0)' -r -F
complete -c servercli -l log-format -d 'Log lines as text or as JSON objects (one per line)' -r -f -a "text\t'One line of text per event: time, level, message, `key=value` fields'
json\t'One JSON object per line: `timestamp`, `level`, `message` and each field by its name, at the top level'"
complete -c servercli -s v -l verbose -d 'Debug logs, including a line for each client as it joins (RUST_LOG overrides)'
complete -c servercli -s h -l help -d 'Print help (see more with \'--help\')'
complete -c servercli -s V -l version -d 'Print version'
