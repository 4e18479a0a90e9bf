{
  description = "package-signing: TUF signing for a Composer package repository, one signer per role over RabbitMQ";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      revision = self.rev or "dirty";
      build =
        pkgs:
        let
          package = import ./nix/package.nix {
            inherit pkgs;
            craneLib = crane.mkLib pkgs;
            src = ./.;
          };
          images = import ./nix/images.nix {
            inherit pkgs revision;
            package = package.package;
          };
        in
        {
          inherit package images;
        };
    in
    {
      packages = forEachSystem (
        pkgs:
        let
          b = build pkgs;
        in
        {
          default = b.package.package;
          images = b.images.all;
        }
        // pkgs.lib.mapAttrs' (name: image: pkgs.lib.nameValuePair "${name}-image" image) b.images.byAgent
      );

      checks = forEachSystem (pkgs: (build pkgs).package.checks);

      devShells = forEachSystem (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });
    };
}
