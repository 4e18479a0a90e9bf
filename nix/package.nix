# The Rust build, with crane. Dependencies build in their own derivation (buildDepsOnly), so a
# change to our sources does not rebuild them; our crate builds once (`workspace`, every binary).
#   binaries   tuf-signer and tuf-client only: the default package and what every image installs
#   workspace  every binary, tuf-bench too: `packages.tuf-bench` (the bench runs the tuf-signer
#              and tuf-client beside it), never in an image
#   checks     the workspace build, clippy, rustfmt and the unit tests (`nix flake check`)
#
# Reproducible: the Nix sandbox fixes every path the build sees (its build folder, the vendored
# crates in the store), so scripts/reproducible-rustc, which .cargo/config.toml gives every other
# cargo build, is not needed here (RUSTC_WRAPPER = "" turns it off: it is not in the cleaned
# source). `nix build --rebuild` in GitLab CI checks it. PACKAGE_SIGNING_COMMIT names the commit
# in `--version`, the signers' start-up line and their receipts (src/provenance.rs).
{
  pkgs,
  craneLib,
  src,
  revision,
}:
let
  common = {
    src = craneLib.cleanCargoSource src;
    strictDeps = true;
    RUSTC_WRAPPER = "";
    PACKAGE_SIGNING_COMMIT = revision;
    # aws-lc-sys builds its C code with cmake.
    nativeBuildInputs = [
      pkgs.cmake
      pkgs.perl
    ];
  };
  cargoArtifacts = craneLib.buildDepsOnly common;
  workspace = craneLib.buildPackage (
    common
    // {
      inherit cargoArtifacts;
      # The integration tests need RabbitMQ and python-tuf; `checks.tests` runs the unit tests.
      doCheck = false;
      meta.mainProgram = "tuf-bench";
    }
  );
  # The two shipped binaries copied out of the one build; refusing a reference to `workspace`
  # keeps tuf-bench out of the closure of anything that installs them.
  binaries =
    pkgs.runCommand "package-signing"
      {
        disallowedReferences = [ workspace ];
        meta.mainProgram = "tuf-signer";
      }
      ''
        mkdir -p $out/bin
        cp ${workspace}/bin/tuf-signer ${workspace}/bin/tuf-client $out/bin/
      '';
in
{
  inherit binaries workspace;
  checks = {
    inherit workspace;
    clippy = craneLib.cargoClippy (
      common
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--all-targets -- -D warnings";
      }
    );
    fmt = craneLib.cargoFmt { inherit (common) src; };
    tests = craneLib.cargoTest (
      common
      // {
        inherit cargoArtifacts;
        cargoTestExtraArgs = "--lib";
      }
    );
  };
}
