# A stand-in for evaluating the flake offline only, never used by a real build (see ../README.md).
# crane's functions take the mkDerivation attributes plus their own; `src` is required, as in
# crane (it reads Cargo.toml and Cargo.lock from it at evaluation time).
{ pkgs }:
let
  system = pkgs.cargo.system;
  drv =
    kind: args:
    assert args ? src;
    assert builtins.pathExists (args.src + "/Cargo.toml");
    assert builtins.pathExists (args.src + "/Cargo.lock");
    derivation {
      name = "package-signing-${kind}";
      inherit system;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo 'stand-in: crane ${kind} is a stand-in and cannot be built' >&2; exit 1"
      ];
      src = args.src;
      attrs = builtins.toJSON (builtins.removeAttrs args [ "src" "cargoArtifacts" ]);
      cargoArtifacts = toString (args.cargoArtifacts or "");
    }
    // {
      meta = args.meta or { };
    };
  self = {
  cleanCargoSource =
    src:
    builtins.path {
      path = src;
      name = "source";
      filter = path: type: baseNameOf path != "target" && baseNameOf path != ".venv";
    };
  # As in crane: a toolchain, or a function from a package set to one (crane calls it for each
  # package set it splices); the stand-in never calls it, so evaluating the flake fetches no
  # toolchain (scripts/check-toolchain evaluates the flake's toolchain function itself).
  overrideToolchain = toolchain: assert builtins.isFunction toolchain || toolchain ? outPath; self;
  buildDepsOnly = drv "deps";
  buildPackage = drv "package";
  # As in crane, clippy and the tests take the dependencies' artifacts without a default.
  cargoClippy = args: assert args ? cargoArtifacts; drv "clippy" args;
  cargoFmt = drv "fmt";
  cargoTest = args: assert args ? cargoArtifacts; drv "test" args;
  # As in crane: mkShell with the checks as inputsFrom, and rustc, cargo, clippy and rustfmt.
  devShell =
    {
      checks ? { },
      inputsFrom ? [ ],
      packages ? [ ],
      ...
    }@args:
    pkgs.mkShell (
      builtins.removeAttrs args [
        "checks"
        "inputsFrom"
        "nativeBuildInputs"
      ]
      // {
        inputsFrom = builtins.attrValues checks ++ inputsFrom;
        packages = [
          pkgs.rustc
          pkgs.cargo
          pkgs.clippy
          pkgs.rustfmt
        ] ++ packages;
      }
    );
};
in
self
