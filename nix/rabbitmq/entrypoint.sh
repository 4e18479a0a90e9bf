#!/bin/sh
# The broker image's entrypoint. Invariant: the broker never starts with the development
# passwords (dev-AGENT, in nix/rabbitmq/definitions.json, published in this repository and baked
# into the image as /etc/rabbitmq/definitions.dev.json) unless this is a development set-up:
# TUF_BROKER_DEV=1, which only the DDEV compose file sets. A deployment mounts the definitions
# `tuf-signer broker-secrets` wrote over /etc/rabbitmq/definitions.json.
set -eu
defs=${TUF_BROKER_DEFINITIONS:-/etc/rabbitmq/definitions.json}
dev=${TUF_BROKER_DEV_DEFINITIONS:-/etc/rabbitmq/definitions.dev.json}
if [ "${TUF_BROKER_DEV:-}" != 1 ]; then
  text=$(cat "$defs")
  while IFS= read -r line; do
    case $line in
      *'"password_hash": "'*)
        hash=${line#*'"password_hash": "'}
        hash=${hash%%\"*}
        case $text in
          *"$hash"*)
            echo "rabbitmq: $defs holds the development passwords, which anyone can read in" \
              "package-signing's repository. Make this deployment's with" \
              "\`tuf-signer broker-secrets --out DIR\` and mount DIR/definitions.json over $defs" \
              "(a development set-up sets TUF_BROKER_DEV=1 instead)." >&2
            exit 1 ;;
        esac ;;
    esac
  done < "$dev"
fi
exec rabbitmq-server "$@"
