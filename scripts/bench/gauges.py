#!/usr/bin/env python3
"""The live gauges the bench parts wait on (scripts/bench/lib.sh).

    gauges.py clients-connected ADMIN_PORT...
        the sum of the servers' nea_clients_connected gauges, read from
        http://127.0.0.1:PORT/metrics (a server that does not answer
        counts 0)
    gauges.py haproxy-up SOCKET
        how many of HAProxy's servers of backend nea are UP, from its
        stats socket
"""
import socket
import sys
import urllib.request


def clients_connected(ports):
    total = 0.0
    for port in ports:
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            continue
        total += next(
            (float(line.split()[1]) for line in text.splitlines()
             if line.startswith("nea_clients_connected ")),
            0.0,
        )
    return int(total)


def haproxy_up(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    rows = [line.split(",") for line in data.decode().splitlines()
            if line and not line.startswith("#")]
    # Columns: pxname, svname, ..., status (18th).
    return sum(1 for r in rows if r[0] == "nea" and r[1].startswith("nea") and r[17] == "UP")


def main(argv):
    if len(argv) >= 2 and argv[0] == "clients-connected":
        print(clients_connected(argv[1:]))
    elif len(argv) == 2 and argv[0] == "haproxy-up":
        print(haproxy_up(argv[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
