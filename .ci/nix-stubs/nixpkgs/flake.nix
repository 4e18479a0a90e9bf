# A stand-in for nixpkgs (release 26.05): only what package-signing's flake uses.
# Evaluation only, never used by a real build (see ../README.md).
{
  outputs =
    { self }:
    let
      lib = import ./lib.nix;
      forSystem = system: import ./pkgs.nix { inherit lib system; };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] forSystem;
    };
}
