#!/usr/bin/env bash
# Checks the stand-ins against real sources where they can be read (not in CI: it has no network).
#   .ci/nix-stubs/compare-with-real.sh NIXPKGS_LIB_DIR CRANE_DIR [RUST_OVERLAY_DIR]
# NIXPKGS_LIB_DIR: a checkout of nixpkgs' lib/ (e.g. nix-community/nixpkgs.lib at a 25.05-era commit);
# CRANE_DIR: a checkout of ipetkov/crane.
set -euo pipefail
lib=${1:?nixpkgs lib checkout}; crane=${2:?crane checkout}; overlay=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
export NIX_CONFIG="experimental-features = nix-command flakes"
# 1. Our lib functions give what nixpkgs' do.
nix-instantiate --eval --strict -E "
  let
    real = import $lib/lib;
    stub = import $here/nixpkgs/lib.nix;
    set = { b = 2; a = 1; };
    cases = l: {
      genAttrs = l.genAttrs [ \"x\" \"y\" ] (n: n + \"!\");
      mapAttrs' = l.mapAttrs' (n: v: l.nameValuePair \"\${n}-image\" (v * 10)) set;
      mapAttrsToList = l.mapAttrsToList (n: v: \"\${n}=\${toString v}\") set;
      mapAttrs = l.mapAttrs (n: v: v + 1) set;
    };
  in assert builtins.toJSON (cases real) == builtins.toJSON (cases stub); true" >/dev/null
echo "lib: genAttrs, mapAttrs', mapAttrsToList, mapAttrs, nameValuePair agree with $lib"
# 2. Every crane function and argument the flake uses exists in crane.
for f in cleanCargoSource buildDepsOnly buildPackage cargoClippy cargoFmt cargoTest devShell; do
  grep -Eq "^ +$f = " "$crane/lib/default.nix" || { echo "crane has no $f" >&2; exit 1; }
done
grep -q "cargoClippyExtraArgs ?" "$crane/lib/cargoClippy.nix"
grep -q "cargoTestExtraArgs ?" "$crane/lib/cargoTest.nix"
grep -q "checks ? " "$crane/lib/devShell.nix"
grep -Eq "^ +overrideToolchain =" "$crane/lib/default.nix"
echo "crane: every function and argument the flake uses is in $crane"
# 3. rust-overlay: mkRustBin, and fromRustupToolchain's argument list equals the stand-in's.
if [ -n "$overlay" ]; then
  grep -q "mkRustBin" "$overlay/flake.nix"
  args() { sed -n "/$1/,/}:/p" "$2" | sed -n 's/^ *\([a-zA-Z]*\) ?.*/\1/p' | sort | tr '\n' ' '; }
  real=$(args "fromRustupToolchain =" "$overlay/lib/rust-bin.nix"); stub=$(args "fromRustupToolchain =" "$here/rust-overlay/flake.nix")
  [ "$real" = "$stub" ] || { echo "rust-overlay fromRustupToolchain takes $real, the stand-in $stub" >&2; exit 1; }
  echo "rust-overlay: mkRustBin and fromRustupToolchain ($real) agree with $overlay"
fi
