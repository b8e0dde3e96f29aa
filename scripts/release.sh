#!/usr/bin/env bash
# Builds a release into target/dist/, from a clean checkout, offline once
# the crates are fetched:
#   nea-VERSION-x86_64-linux-musl.tar.gz  static binaries, man pages,
#                                         completions, units, docs
#   nea_VERSION-1_amd64.deb               the Debian package (cargo-deb)
#   nea-VERSION-oci-amd64.tar             the container image (OCI archive)
#   SHA256SUMS                            a sum for each of them
# The tarball and the image carry the same static musl binaries; the
# package has a glibc build of the same code.
# scripts/check-release.sh checks what this makes; scripts/setup.sh
# installs the tools it needs (musl-tools, cargo-deb, podman).
#
#   bash scripts/release.sh
#   NEA_SOURCE_URL=https://... bash scripts/release.sh   # the image's source label
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
BINS=(servercli clientcli loadcli)
DIST=target/dist
BUILD=${CARGO_TARGET_DIR:-target}/$TARGET/release
# The project has no public address yet: .invalid says so rather than
# pointing anywhere.
SOURCE_URL=${NEA_SOURCE_URL:-https://nea.invalid/source}

id=$(cargo pkgid --offline -p nea-cli 2>/dev/null || cargo pkgid -p nea-cli)
VERSION=${id##*[#@]}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# File dates from the last commit, not from the clock, so that building the
# same commit twice gives the same tarball and image. Not exported: the
# cargo build does not need it, and aws-lc-sys rebuilds when it changes.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
NAME=nea-$VERSION-x86_64-linux-musl

rm -rf "$DIST"
mkdir -p "$DIST"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The binaries: static (musl), stripped by the release profile.
env -u SOURCE_DATE_EPOCH cargo build --release --locked --target "$TARGET" -p nea-cli -p loadcli --bins

# The tarball, laid out as a prefix: `tar -xzf ... -C /usr/local
# --strip-components=1` (or -C ~/.local) puts each file where the system
# looks for it.
root=$WORK/$NAME
install -Dm755 -t "$root/bin" "${BINS[@]/#/$BUILD/}"
install -Dm644 -t "$root/share/man/man1" contrib/man/*.1
install -Dm644 -t "$root/share/bash-completion/completions" contrib/completions/bash/*
install -Dm644 -t "$root/share/zsh/site-functions" contrib/completions/zsh/_*
install -Dm644 -t "$root/share/fish/vendor_completions.d" contrib/completions/fish/*.fish
# systemd reads units from /usr/local/lib/systemd/system too; these name
# the program where this layout puts it.
mkdir -p "$root/lib/systemd/system"
sed 's|/usr/bin/servercli|/usr/local/bin/servercli|' contrib/systemd/nea.service \
    >"$root/lib/systemd/system/nea.service"
cp contrib/systemd/nea.socket "$root/lib/systemd/system/"
chmod 644 "$root/lib/systemd/system/"*
install -Dm644 -t "$root/share/doc/nea" README.md CHANGELOG.md SECURITY.md LICENSE-MIT LICENSE-APACHE
# The guides README links to, where its links lead (docs/ beside it).
install -Dm644 -t "$root/share/doc/nea/docs" docs/*.md
# Goes to /etc/default/nea, which no prefix reaches: an example to copy.
install -Dm644 contrib/default/nea "$root/share/doc/nea/examples/default-nea"
install -Dm644 -t "$root/share/doc/nea/examples" contrib/haproxy/haproxy.cfg
install -Dm644 contrib/nginx/nea.conf "$root/share/doc/nea/examples/nginx-nea.conf"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    -C "$WORK" -cf - "$NAME" | gzip -9n >"$DIST/$NAME.tar.gz"

# The Debian package, of glibc binaries: Debian has glibc, and the server
# spends less CPU per handshake and per line with it than with musl
# ([package.metadata.deb] in crates/nea-cli/Cargo.toml says why, and what
# goes where).
env -u SOURCE_DATE_EPOCH cargo build --release --locked -p nea-cli -p loadcli --bins
SOURCE_DATE_EPOCH=$EPOCH cargo deb --locked -p nea-cli --no-build --output "$DIST/"

# The container image, FROM scratch, from a context holding the server and
# the empty state directory (see the Containerfile's head).
ctx=$WORK/image
install -Dm755 "$BUILD/servercli" "$ctx/rootfs/usr/bin/servercli"
mkdir -p "$ctx/rootfs/var/lib" "$ctx/state/nea"
chmod 700 "$ctx/state/nea"
image=localhost/nea:$VERSION
# The previous build of this version would be left untagged at each run.
podman rmi --force "$image" >/dev/null 2>&1 || true
podman build --quiet --pull=never --layers=false --format oci --timestamp "$EPOCH" \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    --build-arg CREATED="$CREATED" --build-arg SOURCE="$SOURCE_URL" \
    -f contrib/container/Containerfile -t "$image" "$ctx" >/dev/null
# An OCI archive is the OCI layout in a tar; podman's own would date its
# entries now, so the layout is packed here with the commit's date.
podman save --quiet --format oci-dir -o "$WORK/oci" "$image"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    -C "$WORK/oci" -cf "$DIST/nea-$VERSION-oci-amd64.tar" oci-layout index.json blobs

(cd "$DIST" && sha256sum -- * >SHA256SUMS)
echo "release $VERSION in $DIST:"
ls -l "$DIST"
