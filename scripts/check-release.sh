#!/usr/bin/env bash
# Checks the release that scripts/release.sh made, as users get it: each
# artifact is unpacked into a temporary root and its programs are run from
# there. The binaries must be static (the package's: linked only to what
# the package depends on), say the workspace's version, and serve a line
# (the packaged server with a fresh development CA, the packaged client
# against it); the package must put the man pages,
# completions, units and /etc/default/nea where it says, enable and start
# nothing, and pass lintian with no error; the units must pass
# `systemd-analyze verify` with the packaged paths, and the server must run
# as the unit runs it (an unprivileged user, the key in a credentials
# directory); the image must run as a non-root user, expose 3443, keep the
# development CA in its volume and carry its labels.
#
# Every problem is one line on stderr; the status is 1 if there is any.
#
#   bash scripts/check-release.sh [DIST]     # DIST defaults to target/dist
set -euo pipefail
cd "$(dirname "$0")/.."

DIST=${1:-target/dist}
# The workspace's version, read from where it is written.
VERSION=$(awk '/^\[workspace\.package\]/ { inside = 1; next }
               /^\[/ { inside = 0 }
               inside && $1 == "version" { gsub(/"/, "", $3); print $3 }' Cargo.toml)
BINS=(servercli clientcli loadcli)
# The user the image runs as, and the unprivileged user that plays the
# service's dynamic user here.
NOBODY=65532

problems=0
problem() {
    echo "check-release: $*" >&2
    problems=$((problems + 1))
}

WORK=$(mktemp -d)
# The unprivileged user must reach the unpacked programs.
chmod 755 "$WORK"
servers=()
cleanup() {
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# run_as USER CMD...: CMD as USER (root: as is), with a clean environment,
# so that nothing of the caller's (NEA_CERT, say) changes what is checked.
# It replaces the shell it runs in, so that a server started with `&` has
# $! for its own process id: call it in $(...) or with &.
run_as() {
    local user=$1; shift
    if [ "$user" = root ]; then
        exec env -i PATH=/usr/bin:/bin HOME="$WORK" "$@"
    else
        exec setpriv --reuid="$user" --regid="$user" --clear-groups \
            env -i PATH=/usr/bin:/bin HOME="$WORK" "$@"
    fi
}

# check_binary LABEL FILE [glibc]: static (or, with glibc, linked only to
# libraries this system has), and its --version is the workspace's.
check_binary() {
    local label=$1 file=$2 linking=${3:-static} name what linked
    name=$(basename "$file")
    if [ ! -x "$file" ]; then
        problem "$label: no program $name"
        return
    fi
    what=$(file -b "$file")
    linked=$(ldd "$file" 2>&1 || true)
    if [ "$linking" = static ]; then
        case $what in
            *"statically linked"* | *"static-pie linked"*) ;;
            *) problem "$label: $name is not statically linked (file says: $(grep -oE '[a-z-]+ linked' <<<"$what" || echo "$what"))" ;;
        esac
        case $linked in
            *"not a dynamic executable"* | *"statically linked"*) ;;
            *) problem "$label: $name loads shared libraries: $(awk '{print $1}' <<<"$linked" | paste -sd' ')" ;;
        esac
    elif grep -q 'not found' <<<"$linked"; then
        problem "$label: $name needs libraries this system lacks: $(grep 'not found' <<<"$linked" | awk '{print $1}' | paste -sd' ')"
    fi
    if [ "$(run_as root "$file" --version 2>&1)" != "$name $VERSION" ]; then
        problem "$label: $name --version says '$(run_as root "$file" --version 2>&1 | head -1)', not '$name $VERSION'"
    fi
}

# expect_files LABEL ROOT PATH...: each PATH exists under ROOT.
expect_files() {
    local label=$1 root=$2 path; shift 2
    for path in "$@"; do
        [ -e "$root/$path" ] || problem "$label: /$path is missing"
    done
}

# The man pages and completions the repository makes (tools/docgen).
PAGES=()
for page in contrib/man/*.1; do PAGES+=("$(basename "$page" .1)"); done
# The guides, which the installed README links to (docs/ beside it).
GUIDES=()
for guide in docs/*.md; do GUIDES+=("$(basename "$guide")"); done

# wait_for_port FILE: the port a server wrote there, once it has.
wait_for_port() {
    for _ in $(seq 200); do
        if [ -s "$1" ]; then cat "$1"; return 0; fi
        sleep 0.05
    done
    return 1
}

# serve_line LABEL USER SERVER CLIENT DEV_DIR: starts SERVER as USER on a
# free port of 127.0.0.1 with its development CA in DEV_DIR (made there if
# it is not yet), pipes a line through CLIENT, which trusts that CA, and
# checks the reply.
serve_line() {
    local label=$1 user=$2 server=$3 client=$4 dev_dir=$5
    local dir port pid reply
    dir=$(mktemp -d "$WORK/serve.XXXX")
    [ "$user" = root ] || chown "$user:$user" "$dir"
    run_as "$user" NEA_DEV_DIR="$dev_dir" "$server" --bind 127.0.0.1 --port 0 \
        --port-file "$dir/port" >/dev/null 2>"$dir/server.log" &
    pid=$!
    servers+=("$pid")
    if ! port=$(wait_for_port "$dir/port"); then
        problem "$label: servercli did not start: $(tail -1 "$dir/server.log")"
        kill "$pid" 2>/dev/null || true
        return
    fi
    reply=$(printf 'hello, nea\n' | timeout 20 env -i PATH=/usr/bin:/bin HOME="$WORK" \
        "$client" --host 127.0.0.1 --port "$port" --ca "$dev_dir/ca.pem" 2>"$dir/client.log" || true)
    [ "$reply" = "aen ,olleh" ] ||
        problem "$label: clientcli got '$reply' for 'hello, nea', not 'aen ,olleh' ($(tail -1 "$dir/client.log"))"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || problem "$label: servercli did not stop cleanly on SIGTERM"
}

# A development CA made by the release's own server, for the clients to
# trust and the credentials to hold.
make_pki() {
    local server=$1 dir=$WORK/pki
    [ -d "$dir" ] && return 0
    mkdir -p "$dir"
    run_as root NEA_DEV_DIR="$dir/dev" "$server" --bind 127.0.0.1 --port 0 \
        --port-file "$dir/port" >/dev/null 2>&1 &
    local pid=$!
    wait_for_port "$dir/port" >/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# verify_units LABEL ROOT MANPATH UNIT...: `systemd-analyze verify` on the
# units as installed in ROOT, with the man pages of MANPATH; any word from
# it is a problem.
verify_units() {
    local label=$1 root=$2 manpath=$3 out status=0; shift 3
    # The rest of a Debian system that the units name: systemd's own units
    # (the targets they order against) and /bin/kill (ExecReload). The
    # unpacked files come first and are kept.
    mkdir -p "$root/usr/lib/systemd/system" "$root/bin"
    cp -rn /lib/systemd/system/. "$root/usr/lib/systemd/system/"
    [ -e "$root/bin/kill" ] || cp /bin/kill "$root/bin/kill"
    out=$(MANPATH=$manpath systemd-analyze verify --root="$root" "$@" 2>&1) || status=$?
    if [ "$status" != 0 ] || [ -n "$out" ]; then
        while IFS= read -r line; do
            problem "$label: systemd-analyze verify: $line"
        done <<<"${out:-exit status $status}"
    fi
}

# run_like_the_unit LABEL ROOT UNIT CLIENT [NO_FLAGS]: runs ExecStart= of
# UNIT (the program in ROOT) as systemd would: as an unprivileged user,
# with the unit's Environment= and a credentials directory only that user
# can read holding cert.pem and key.pem; a client must get its reply, and
# the server must have used the credentials, not the development CA.
run_like_the_unit() {
    local label=$1 root=$2 unit=$3 client=$4
    local run=$WORK/unit-run creds state argv=() env=() words word pid port reply
    rm -rf "$run"
    creds=$run/credentials
    state=$run/state
    mkdir -p "$creds" "$state/nea"
    cp "$WORK/pki/dev/server.pem" "$creds/cert.pem"
    cp "$WORK/pki/dev/server-key.pem" "$creds/key.pem"
    chown -R "$NOBODY:$NOBODY" "$creds" "$state"
    chmod 0400 "$creds"/*
    chmod 0500 "$creds"
    chmod 0700 "$state/nea"
    read -ra words <<<"$(sed -n 's/^ExecStart=//p' "$unit")"
    for word in "${words[@]}"; do
        word=${word//%d/$creds}
        case $word in /*) [ -e "$root$word" ] && word=$root$word ;; esac
        argv+=("$word")
    done
    while IFS= read -r word; do
        env+=("${word//%S/$state}")
    done < <(sed -n 's/^Environment=//p' "$unit")
    run_as "$NOBODY" CREDENTIALS_DIRECTORY="$creds" "${env[@]}" NEA_BIND=127.0.0.1 NEA_PORT=0 \
        NEA_PORT_FILE="$state/nea/port" "${argv[@]}" >/dev/null 2>"$run/server.log" &
    pid=$!
    servers+=("$pid")
    if ! port=$(wait_for_port "$state/nea/port"); then
        problem "$label: servercli did not start as the unit runs it: $(tail -1 "$run/server.log")"
        kill "$pid" 2>/dev/null || true
        return
    fi
    reply=$(printf 'hello, nea\n' | timeout 20 env -i PATH=/usr/bin:/bin HOME="$WORK" \
        "$client" --host 127.0.0.1 --port "$port" --ca "$WORK/pki/dev/ca.pem" 2>"$run/client.log" || true)
    [ "$reply" = "aen ,olleh" ] ||
        problem "$label: a client of the server run as the unit runs it got '$reply' ($(tail -1 "$run/client.log"))"
    [ ! -e "$state/nea/dev-ca" ] ||
        problem "$label: the server run as the unit runs it made a development CA instead of using the credentials"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || problem "$label: servercli run as the unit runs it did not stop cleanly"
}

echo "checking the release $VERSION in $DIST"
tarball=$DIST/nea-$VERSION-x86_64-linux-musl.tar.gz
deb=$DIST/nea_$VERSION-1_amd64.deb
image=$DIST/nea-$VERSION-oci-amd64.tar

# The sums: every file there, each right.
if [ ! -f "$DIST/SHA256SUMS" ]; then
    problem "SHA256SUMS: missing"
else
    for file in "$DIST"/*; do
        name=$(basename "$file")
        [ "$name" = SHA256SUMS ] && continue
        grep -q "  $name\$" "$DIST/SHA256SUMS" || problem "SHA256SUMS: no sum for $name"
    done
    while IFS= read -r line; do
        problem "SHA256SUMS: $line"
    done < <(cd "$DIST" && sha256sum --check --quiet SHA256SUMS 2>&1 | grep -v '^sha256sum: WARNING')
fi

# The tarball: a prefix (bin/, share/, lib/) under one directory.
if [ ! -f "$tarball" ]; then
    problem "tarball: $tarball is missing"
else
    mkdir -p "$WORK/tar"
    tar -xzf "$tarball" -C "$WORK/tar"
    top=$WORK/tar/nea-$VERSION-x86_64-linux-musl
    for bin in "${BINS[@]}"; do check_binary tarball "$top/bin/$bin"; done
    expect_files tarball "$top" \
        lib/systemd/system/nea.service lib/systemd/system/nea.socket \
        share/doc/nea/README.md share/doc/nea/CHANGELOG.md share/doc/nea/SECURITY.md \
        share/doc/nea/LICENSE-MIT share/doc/nea/LICENSE-APACHE \
        share/doc/nea/examples/default-nea share/doc/nea/examples/haproxy.cfg \
        share/doc/nea/examples/nginx-nea.conf
    for page in "${PAGES[@]}"; do [ -e "$top/share/man/man1/$page.1" ] || problem "tarball: man page $page.1 is missing"; done
    for guide in "${GUIDES[@]}"; do expect_files tarball "$top" "share/doc/nea/docs/$guide"; done
    for bin in "${BINS[@]}"; do
        expect_files tarball "$top" "share/bash-completion/completions/$bin" \
            "share/zsh/site-functions/_$bin" "share/fish/vendor_completions.d/$bin.fish"
    done
    serve_line tarball root "$top/bin/servercli" "$top/bin/clientcli" "$WORK/tar-dev-ca"
    # Installed as README says: under /usr/local.
    mkdir -p "$WORK/root-tar/usr/local"
    cp -a "$top/." "$WORK/root-tar/usr/local/"
    verify_units tarball "$WORK/root-tar" "$WORK/root-tar/usr/local/share/man" \
        "$WORK/root-tar/usr/local/lib/systemd/system/nea.socket" \
        "$WORK/root-tar/usr/local/lib/systemd/system/nea.service"
fi

# The Debian package.
if [ ! -f "$deb" ]; then
    problem "deb: $deb is missing"
else
    root=$WORK/deb
    dpkg-deb -x "$deb" "$root"
    dpkg-deb -e "$deb" "$WORK/deb-control"
    [ "$(dpkg-deb -f "$deb" Package)" = nea ] || problem "deb: the package is not called nea"
    [ "$(dpkg-deb -f "$deb" Version)" = "$VERSION-1" ] ||
        problem "deb: version $(dpkg-deb -f "$deb" Version), not $VERSION-1"
    # glibc binaries (crates/nea-cli/Cargo.toml says why): the package must
    # depend on the C library they link.
    for bin in "${BINS[@]}"; do check_binary deb "$root/usr/bin/$bin" glibc; done
    dpkg-deb -f "$deb" Depends | grep -q 'libc6' ||
        problem "deb: Depends ($(dpkg-deb -f "$deb" Depends)) does not name libc6"
    for page in "${PAGES[@]}"; do
        if [ ! -f "$root/usr/share/man/man1/$page.1.gz" ]; then
            problem "deb: man page /usr/share/man/man1/$page.1.gz is missing"
        elif ! gzip -t "$root/usr/share/man/man1/$page.1.gz" 2>/dev/null; then
            problem "deb: /usr/share/man/man1/$page.1.gz is not gzip"
        fi
    done
    for bin in "${BINS[@]}"; do
        expect_files deb "$root" "usr/share/bash-completion/completions/$bin" \
            "usr/share/zsh/vendor-completions/_$bin" "usr/share/fish/vendor_completions.d/$bin.fish"
    done
    units=$root/usr/lib/systemd/system
    [ -d "$units" ] || units=$root/lib/systemd/system
    expect_files deb "$root" "${units#"$root"/}/nea.service" "${units#"$root"/}/nea.socket" \
        etc/default/nea usr/share/doc/nea/copyright usr/share/doc/nea/changelog.gz \
        usr/share/doc/nea/README.md
    for guide in "${GUIDES[@]}"; do expect_files deb "$root" "usr/share/doc/nea/docs/$guide"; done
    cmp -s "$root/etc/default/nea" contrib/default/nea ||
        problem "deb: /etc/default/nea is not contrib/default/nea"
    grep -qx /etc/default/nea "$WORK/deb-control/conffiles" 2>/dev/null ||
        problem "deb: /etc/default/nea is not a conffile"
    # Installed, not enabled or started: the scripts may re-enable a unit
    # that was enabled before an upgrade, and restart one that runs, but
    # never enable or start one of their own accord.
    for script in "$WORK/deb-control"/{preinst,postinst,prerm,postrm}; do
        [ -f "$script" ] || continue
        if grep -nE 'deb-systemd-invoke +(start|restart)|systemctl +(enable|start)' "$script" >/dev/null; then
            problem "deb: $(basename "$script") starts or enables a unit: $(grep -nE 'deb-systemd-invoke +(start|restart)|systemctl +(enable|start)' "$script" | head -1)"
        fi
        if awk '/deb-systemd-helper +enable/ && prev !~ /was-enabled/ { found = 1 }
                NF && $1 !~ /^#/ { prev = $0 } END { exit !found }' "$script"; then
            problem "deb: $(basename "$script") enables a unit that was not enabled before"
        fi
    done
    serve_line deb root "$root/usr/bin/servercli" "$root/usr/bin/clientcli" "$WORK/deb-dev-ca"
    # The packaged units with the packaged paths, in a copy of the root.
    cp -a "$root" "$WORK/root-deb"
    verify_units deb "$WORK/root-deb" "$WORK/root-deb/usr/share/man" \
        "$WORK/root-deb/${units#"$root"/}/nea.socket" "$WORK/root-deb/${units#"$root"/}/nea.service"
    make_pki "$root/usr/bin/servercli"
    run_like_the_unit "deb (nea.service)" "$root" "$units/nea.service" "$root/usr/bin/clientcli"
    # lintian: warnings are shown, errors are problems.
    lint=$(lintian --fail-on none "$deb" 2>&1 | grep -v 'running with root privileges' || true)
    while IFS= read -r line; do
        case $line in
            E:*) problem "deb: lintian: $line" ;;
            ?:*) echo "lintian: $line" ;;
        esac
    done <<<"$lint"
fi

# The container image, from its OCI archive.
if [ ! -f "$image" ]; then
    problem "image: $image is missing"
else
    mkdir -p "$WORK/oci" "$WORK/image"
    tar -xf "$image" -C "$WORK/oci"
    blob() { echo "$WORK/oci/blobs/${1/://}"; }
    manifest=$(blob "$(jq -r '.manifests[0].digest' "$WORK/oci/index.json")")
    config=$(jq '.config' "$(blob "$(jq -r '.config.digest' "$manifest")")")
    # The image's own layers, in order, as a runtime lays them: FROM
    # scratch, so nothing else is there.
    for layer in $(jq -r '.layers[].digest' "$manifest"); do
        tar -xf "$(blob "$layer")" -C "$WORK/image"
    done
    user=$(jq -r '.User // ""' <<<"$config")
    case $user in
        "" | 0 | 0:* | root | root:*) problem "image: runs as root (User '$user')" ;;
        *[!0-9:]*) problem "image: User '$user' is not numeric (the image has no /etc/passwd)" ;;
    esac
    jq -e '.ExposedPorts | has("3443/tcp")' <<<"$config" >/dev/null 2>&1 ||
        problem "image: does not expose 3443/tcp"
    [ "$(jq -r '.Entrypoint[0] // ""' <<<"$config")" = /usr/bin/servercli ] ||
        problem "image: the entrypoint is not /usr/bin/servercli"
    for label in title source revision created; do
        [ -n "$(jq -r ".Labels[\"org.opencontainers.image.$label\"] // \"\"" <<<"$config")" ] ||
            problem "image: no org.opencontainers.image.$label label"
    done
    [ "$(jq -r '.Labels["org.opencontainers.image.version"] // ""' <<<"$config")" = "$VERSION" ] ||
        problem "image: the org.opencontainers.image.version label is not $VERSION"
    [ "$(jq -r '.Labels["org.opencontainers.image.licenses"] // ""' <<<"$config")" = "MIT OR Apache-2.0" ] ||
        problem "image: the org.opencontainers.image.licenses label is not 'MIT OR Apache-2.0'"
    dev_dir=$(jq -r '.Env[]? | select(startswith("NEA_DEV_DIR=")) | sub("^NEA_DEV_DIR="; "")' <<<"$config")
    volume=$(jq -r --arg dir "$dev_dir" \
        '.Volumes // {} | keys[] | select(. as $v | $dir | startswith($v + "/"))' <<<"$config")
    if [ -z "$dev_dir" ] || [ -z "$volume" ]; then
        problem "image: NEA_DEV_DIR ('$dev_dir') is not inside a volume"
    fi
    check_binary image "$WORK/image/usr/bin/servercli"
    others=$(cd "$WORK/image" && find . ! -type d ! -path ./usr/bin/servercli)
    [ -z "$others" ] || problem "image: holds more than servercli: $(echo "$others" | head -3 | paste -sd' ')"
    # The image's server as its user, with the development CA in the
    # image's own volume directory, as a fresh volume starts: it must be
    # able to make the CA there.
    if [ -n "$dev_dir" ] && [ -n "$volume" ] && [ -n "$user" ]; then
        uid=${user%%:*}
        if [ "$(stat -c %u "$WORK/image$volume" 2>/dev/null)" != "$uid" ]; then
            problem "image: $volume does not belong to the image's user $uid"
        fi
        client=$WORK/deb/usr/bin/clientcli
        [ -x "$client" ] || client=$WORK/tar/nea-$VERSION-x86_64-linux-musl/bin/clientcli
        if [ -x "$client" ]; then
            serve_line image "$uid" "$WORK/image/usr/bin/servercli" "$client" "$WORK/image$dev_dir"
        fi
    fi
    # podman itself reads the archive as the image it is.
    if loaded=$(podman load --quiet --input "$image" 2>&1); then
        name=${loaded##*: }
        [ "$(podman image inspect --format '{{.Config.User}}' "$name" 2>/dev/null)" = "$user" ] ||
            problem "image: podman reads another user than the archive's config"
    else
        problem "image: podman cannot load the archive: $loaded"
    fi
fi

if [ "$problems" -gt 0 ]; then
    echo "check-release: $problems problem(s)" >&2
    exit 1
fi
echo "check-release: the tarball, the package and the image are as they should be"
