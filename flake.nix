{
  description = "package-signing: TUF signing for a Composer package repository, one signer per role over RabbitMQ";

  # Offline checks (../shared/nix/check-flake.sh, run by .ci/run) override both inputs with the
  # stand-ins in .ci/nix-stubs: fakes for evaluating this flake only, never used by a real build.
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
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      revision = self.rev or "dirty";
      craneLibFor = pkgs: crane.mkLib pkgs;
      build =
        pkgs:
        let
          rust = import ./nix/package.nix {
            inherit pkgs;
            craneLib = craneLibFor pkgs;
            src = ./.;
          };
          images = import ./nix/images.nix {
            inherit pkgs revision;
            inherit (rust) binaries;
          };
        in
        {
          inherit rust images;
        };
    in
    {
      packages = forEachSystem (
        _system: pkgs:
        let
          b = build pkgs;
        in
        {
          # tuf-signer and tuf-client, what the images install.
          default = b.rust.binaries;
          # The benchmark, with the binaries it drives; in no image.
          tuf-bench = b.rust.workspace;
          images = b.images.all;
        }
        // pkgs.lib.mapAttrs' (name: image: pkgs.lib.nameValuePair "${name}-image" image) b.images.byAgent
      );

      checks = forEachSystem (_system: pkgs: (build pkgs).rust.checks);

      devShells = forEachSystem (
        system: pkgs: {
          default = import ./nix/shell.nix {
            inherit pkgs;
            craneLib = craneLibFor pkgs;
            checks = self.checks.${system};
          };
        }
      );
    };
}
