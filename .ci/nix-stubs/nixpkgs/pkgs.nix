# A stand-in for evaluating the flake offline only, never used by a real build (see ../README.md).
# Packages and builders with nixpkgs 26.05's argument lists; every derivation fails to build.
{ lib, system }:
let
  stub =
    name: env:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo 'stand-in: ${name} is a stand-in and cannot be built' >&2; exit 1"
        ];
      }
      // env
    );
  package = name: stub name { } // { pname = name; };
  packages = builtins.listToAttrs (
    map (n: lib.nameValuePair n (package n)) [
      "bashInteractive"
      "cacert"
      "cargo"
      "clippy"
      "cmake"
      "coreutils"
      "jq"
      "perl"
      "rabbitmq-server"
      "rustc"
      "rustfmt"
      "skopeo"
    ]
  );
  python3 = package "python3" // {
    withPackages = f: stub "python3-env" { packages = toString (f { tuf = package "python3-tuf"; }); };
  };
in
packages
// {
  inherit lib python3;

  # trivial-builders' runCommand: a name, the derivation's attributes, the build script.
  runCommand =
    name: env: buildCommand:
    stub name (builtins.removeAttrs env [ "meta" "passthru" ] // { inherit buildCommand; })
    // {
      meta = env.meta or { };
    };

  writeTextDir = path: text: stub (baseNameOf path) { inherit path text; };

  linkFarm =
    name: entries:
    stub name {
      entries = builtins.toJSON (map (e: { inherit (e) name; path = "${e.path}"; }) entries);
    };

  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      propagatedBuildInputs ? [ ],
      propagatedNativeBuildInputs ? [ ],
      shellHook ? "",
      ...
    }@attrs:
    stub name {
      packages = toString packages;
      inputsFrom = toString inputsFrom;
      inherit shellHook;
      env = builtins.toJSON (
        builtins.removeAttrs attrs [
          "packages"
          "inputsFrom"
          "buildInputs"
          "nativeBuildInputs"
          "propagatedBuildInputs"
          "propagatedNativeBuildInputs"
          "shellHook"
          "name"
        ]
      );
    };

  dockerTools = {
    # streamLayeredImage's arguments, plus buildLayeredImage's compressor.
    buildLayeredImage =
      {
        name,
        tag ? null,
        fromImage ? null,
        contents ? [ ],
        config ? { },
        architecture ? null,
        created ? "1970-01-01T00:00:01Z",
        mtime ? "1970-01-01T00:00:01Z",
        uid ? 0,
        gid ? 0,
        uname ? "root",
        gname ? "root",
        maxLayers ? 100,
        extraCommands ? "",
        fakeRootCommands ? "",
        enableFakechroot ? false,
        includeStorePaths ? true,
        includeNixDB ? false,
        passthru ? { },
        layeringPipeline ? null,
        debug ? false,
        compressor ? "gz",
        meta ? { },
      }:
      assert builtins.isList contents;
      assert builtins.isAttrs config;
      stub "docker-image-${name}.tar.gz" {
        imageName = name;
        imageTag = if tag == null then "" else tag;
        contents = toString contents;
        config = builtins.toJSON config;
        inherit created fakeRootCommands extraCommands;
      }
      // {
        imageName = name;
        imageTag = tag;
        inherit config;
      };
  };
}
