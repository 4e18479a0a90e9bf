# A stand-in for crane: `mkLib pkgs` with the functions package-signing's flake uses.
{
  outputs =
    { self }:
    {
      mkLib = pkgs: import ./lib.nix { inherit pkgs; };
    };
}
