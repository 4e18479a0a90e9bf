# The two binaries, built with crane. Dependencies build in their own derivation
# (buildDepsOnly), so a change to our sources does not rebuild them.
{
  pkgs,
  craneLib,
  src,
}:
let
  common = {
    src = craneLib.cleanCargoSource src;
    strictDeps = true;
    # aws-lc-sys builds its C code with cmake.
    nativeBuildInputs = [
      pkgs.cmake
      pkgs.perl
    ];
  };
  cargoArtifacts = craneLib.buildDepsOnly common;
  package = craneLib.buildPackage (
    common
    // {
      inherit cargoArtifacts;
      # The integration tests need RabbitMQ and python-tuf; `checks.tests` runs the unit tests.
      doCheck = false;
      meta.mainProgram = "tuf-signer";
    }
  );
in
{
  inherit package;
  checks = {
    inherit package;
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
