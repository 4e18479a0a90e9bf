# A stand-in for crane: `mkLib pkgs` with the functions package-signing's flake uses.
# Evaluation only, never used by a real build (see ../README.md).
{
  outputs =
    { self }:
    {
      mkLib = pkgs: import ./lib.nix { inherit pkgs; };
    };
}
