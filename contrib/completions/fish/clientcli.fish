complete -c clientcli -l host -d 'Server host name or address' -r -f -a "(__fish_print_hostnames)"
complete -c clientcli -l port -d 'Server TCP port (1 to 65535)' -r -f
complete -c clientcli -l ca -d 'Also trust this CA certificate, PEM (may repeat)' -r -F
complete -c clientcli -l pin -d 'Trust exactly a server whose public key has this SHA-256 (sha256:BASE64, as the server\'s start-up line gives it; 64 hex digits too): no CA, no name check (may repeat)' -r -f
complete -c clientcli -l cert -d 'Client certificate chain for mutual TLS, PEM' -r -F
complete -c clientcli -l key -d 'Private key for --cert, PEM' -r -F
complete -c clientcli -l server-name -d 'Name to verify in the server certificate (default: --host)' -r -f -a "(__fish_print_hostnames)"
complete -c clientcli -l connect-timeout -d 'Deadline for each connection phase: TCP connect, then TLS handshake (10ms to 10m)' -r -f
complete -c clientcli -l dead-peer-timeout -d 'Give the server up when it stops answering (at the TCP level, or with lines waiting for replies) for this long (1s to 24h)' -r -f
complete -c clientcli -l no-history -d 'Keep no history of the lines typed (by default it is kept in $XDG_STATE_HOME/nea/history)'
complete -c clientcli -l json -d 'Print the server\'s frames as NDJSON, one per line, as received'
complete -c clientcli -l reconnect -d 'After a lost connection or a server shutdown, reconnect and re-send unanswered lines'
complete -c clientcli -s v -l verbose -d 'Log connection details to stderr (RUST_LOG overrides)'
complete -c clientcli -s h -l help -d 'Print help'
complete -c clientcli -s V -l version -d 'Print version'
