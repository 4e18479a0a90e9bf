# A stand-in for oxalica/rust-overlay: `lib.mkRustBin { } pkgs`, with the one function the
# flake uses, `fromRustupToolchainFile`. Evaluation only, never used by a real build (see
# ../README.md). It reads the file as rust-overlay does: a `[toolchain]` table whose keys are
# among channel (required), profile, components and targets (rust-overlay's function has no
# `...`: any other key fails there too), `path` refused; an exact channel X.Y.Z gives that version.
{
  outputs =
    { self }:
    {
      lib.mkRustBin =
        {
          distRoot ? "https://static.rust-lang.org/dist",
        }:
        pkgs:
        let
          fromRustupToolchain =
            {
              path ? null,
              channel ? null,
              profile ? null,
              components ? [ ],
              targets ? [ ],
            }:
            assert path == null || throw "rust-overlay: `path` is not supported in rust-toolchain.toml";
            assert channel != null || throw "rust-overlay: rust-toolchain.toml names no channel";
            derivation {
              name = "rust-${profile}-${channel}";
              system = pkgs.cargo.system;
              builder = "/bin/sh";
              args = [
                "-c"
                "echo 'stand-in: rust-overlay ${channel} (${distRoot}) is a stand-in and cannot be built' >&2; exit 1"
              ];
              components = toString components;
              targets = toString targets;
            }
            // {
              version = channel;
            };
        in
        {
          inherit fromRustupToolchain;
          fromRustupToolchainFile =
            file: fromRustupToolchain (builtins.fromTOML (builtins.readFile file)).toolchain;
        };
    };
}
