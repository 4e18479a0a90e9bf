#!/usr/bin/env bash
# Makes work-tree checkouts of the PHP sources the php-tuf harness needs, in DEST:
#   php-tuf-0.1.7  php-tuf-main  composer-integration  symfony-validator  guzzle-promises
# Usage: tests/php/checkouts.sh DEST
# Sources are cloned from GitHub unless PHP_TUF_GIT_BASE names a folder laid out as
# <owner>+<name>/repo (bare mirrors, e.g. /work/.mirror). Safe to run again: a checkout
# already at the wanted commit is left alone. Refs are pinned; override with the
# variables below (e.g. PHP_TUF_MAIN_REF=main to follow php-tuf's main branch).
set -euo pipefail

DEST=${1:?usage: $0 DEST}
PHP_TUF_017_REF=${PHP_TUF_017_REF:-0.1.7}
PHP_TUF_MAIN_REF=${PHP_TUF_MAIN_REF:-8190efcbd7548d0a6a2f06353a489d3a9c1476bc}
PLUGIN_REF=${PLUGIN_REF:-1358eec995d8ccbd13b4120a19b0d02889f01b18}
VALIDATOR_REF=${VALIDATOR_REF:-v7.1.5}
PROMISES_REF=${PROMISES_REF:-2.0.4}

# checkout NAME OWNER/REPO REF
checkout() {
  local dir="$DEST/$1" repo=$2 ref=$3 src
  if [ -n "${PHP_TUF_GIT_BASE:-}" ]; then
    # Absolute: `git -C "$dir" fetch` below would read a relative path from inside the clone.
    src="$(cd "$PHP_TUF_GIT_BASE" && pwd)/${repo/\//+}/repo"
  else
    src="https://github.com/$repo.git"
  fi
  if [ -e "$dir" ] && [ ! -d "$dir/.git" ]; then
    echo "$dir exists but is not a git checkout: remove it and run again" >&2
    exit 2
  fi
  if [ ! -e "$dir" ]; then
    echo "== $1: cloning $src" >&2
    case $src in
      https://*) git clone -q --no-checkout --filter=blob:none "$src" "$dir" ;;
      *) git clone -q --no-checkout "$src" "$dir" ;;
    esac
  fi
  local want
  if ! want=$(git -C "$dir" rev-parse -q --verify "$ref^{commit}"); then
    echo "== $1: fetching $ref from $src" >&2
    git -C "$dir" fetch -q --tags "$src" "$ref" 2>/dev/null || git -C "$dir" fetch -q --tags "$src"
    want=$(git -C "$dir" rev-parse -q --verify "$ref^{commit}" || git -C "$dir" rev-parse FETCH_HEAD)
  fi
  if [ "$(git -C "$dir" rev-parse -q --verify HEAD || true)" != "$want" ] \
     || [ -n "$(git -C "$dir" status --porcelain)" ]; then
    git -C "$dir" -c advice.detachedHead=false checkout -q -f --detach "$want"
  fi
  echo "$1 $(git -C "$dir" rev-parse --short HEAD) ($ref)"
}

mkdir -p "$DEST"
checkout php-tuf-0.1.7        php-tuf/php-tuf              "$PHP_TUF_017_REF"
checkout php-tuf-main         php-tuf/php-tuf              "$PHP_TUF_MAIN_REF"
checkout composer-integration php-tuf/composer-integration "$PLUGIN_REF"
checkout symfony-validator    symfony/validator            "$VALIDATOR_REF"
checkout guzzle-promises      guzzle/promises              "$PROMISES_REF"
