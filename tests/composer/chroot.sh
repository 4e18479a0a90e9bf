#!/usr/bin/env bash
# The Composer that tests/composer.rs runs, and the packages it installs the TUF plugin from.
#
#   tests/composer/chroot.sh [DIR]
#
# Makes, once per machine, a minimal Debian sid chroot in DIR (default
# ${PACKAGE_SIGNING_CACHE:-$HOME/.cache/package-signing}/composer-sid) with PHP and Composer
# (sid's Composer is >= 2.6, which the plugin needs; bookworm's 2.5 is too old): debootstrap,
# about 1.5 minutes and 340 MB. Later runs reuse it. Then, every run, it puts the plugin
# (php-tuf/composer-integration) and its PHP dependencies in DIR/opt/composer-interop/, one
# folder per package with its `version` written into its composer.json, for Composer `path`
# repositories. Their sources are the pinned bare repositories in $PHP_TUF_GIT_BASE (default
# ../shared/interop/git, laid out as owner+name/repo). Prints DIR last.
#
# Needs root (debootstrap, chroot) and Debian's mirror ($DEBIAN_MIRROR); installs debootstrap.
# Exits 2 saying what is missing when it cannot.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-${PACKAGE_SIGNING_CACHE:-$HOME/.cache/package-signing}/composer-sid}
git_base=${PHP_TUF_GIT_BASE:-../shared/interop/git}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=php-cli,php-curl,php-zip,php-mbstring,unzip,composer,ca-certificates

[ "$(id -u)" = 0 ] || { echo "tests/composer/chroot.sh: needs root (debootstrap and chroot)" >&2; exit 2; }
[ -d "$git_base" ] || { echo "tests/composer/chroot.sh: no pinned sources in $git_base (set PHP_TUF_GIT_BASE)" >&2; exit 2; }

# The chroot: built beside DIR and moved into place only when whole, so a run killed midway
# never leaves a half-built one that later runs would trust.
if [ ! -e "$dir/.package-signing-ready" ]; then
  if ! command -v debootstrap >/dev/null; then
    echo "== installing debootstrap (Debian)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  echo "== building the Composer chroot (Debian sid: $packages) in $dir, once per machine" >&2
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir.partial"
  debootstrap --variant=minbase --include="$packages" sid "$dir.partial" "$mirror" > "$dir.log" 2>&1 \
    || { tail -n 20 "$dir.log" >&2; echo "debootstrap failed (log: $dir.log)" >&2; exit 2; }
  touch "$dir.partial/.package-signing-ready"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
fi
version=$(COMPOSER_ALLOW_SUPERUSER=1 chroot "$dir" composer --no-ansi --version 2>/dev/null \
  | sed -n 's/^Composer version \([0-9.]*\).*/\1/p')
case "$version" in
  2.[6-9]*|2.[1-9][0-9]*|[3-9].*) ;;
  *) echo "tests/composer/chroot.sh: Composer in $dir is '${version:-missing}'; the plugin needs >= 2.6 (remove $dir to rebuild)" >&2; exit 2 ;;
esac

# The plugin and its dependencies, as `path` repositories: each pinned source exported (no
# .git), its version written in (a path repository has no tag to read it from).
out=$dir/opt/composer-interop
rm -rf "$out" && mkdir -p "$out"
export_package() {  # owner+name ref version
  local src=$git_base/$1/repo dest=$out/$1
  mkdir -p "$dest"
  git -C "$src" archive "$2" | tar -x -C "$dest"
  python3 - "$dest/composer.json" "$3" <<'PY'
import json, sys
path, version = sys.argv[1], sys.argv[2]
with open(path) as f:
    package = json.load(f)
package["version"] = version
with open(path, "w") as f:
    json.dump(package, f, indent=4)
PY
}
for src in "$git_base"/*/repo; do
  name=$(basename "$(dirname "$src")")
  case "$name" in
    theupdateframework+tuf-conformance) continue ;;                   # not a PHP package
    php-tuf+composer-integration) export_package "$name" HEAD dev-main ;;
    php-tuf+php-tuf) export_package "$name" 0.1.7 0.1.7 ;;           # what the plugin's ^0.1.7 installs
    *) tag=$(git -C "$src" tag | head -n 1)
       [ -n "$tag" ] || { echo "tests/composer/chroot.sh: $src has no tag to take a version from" >&2; exit 2; }
       export_package "$name" "$tag" "${tag#v}" ;;
  esac
done
echo "$dir"
