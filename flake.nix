{
  description = "package-signing: TUF signing for a Composer package repository, one signer per role over RabbitMQ";

  # Offline checks (../shared/nix/check-flake.sh and scripts/check-toolchain, run by .ci/run)
  # override the inputs with the stand-ins in .ci/nix-stubs: fakes for evaluating this flake only,
  # never used by a real build.
  #   nixpkgs       a supported release whose lib crane accepts (crane warns below 26.05)
  #   rust-overlay  the Rust toolchain, exactly the one ./rust-toolchain.toml names (the same file
  #                 rustup reads for a cargo build), not whichever rustc nixpkgs carries
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
      rust-overlay,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      revision = self.rev or "dirty";
      # The toolchain for a package set: rust-overlay's build of the release rust-toolchain.toml
      # names. crane calls it for each package set it needs (build, host, target).
      rustToolchain = p: (rust-overlay.lib.mkRustBin { } p).fromRustupToolchainFile ./rust-toolchain.toml;
      craneLibFor = pkgs: (crane.mkLib pkgs).overrideToolchain rustToolchain;
      build =
        pkgs:
        let
          rust = import ./nix/package.nix {
            inherit pkgs revision;
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
      # The toolchain function, for scripts/check-toolchain (which evaluates it against the
      # stand-ins) and for anyone who wants this project's exact rustc in another derivation.
      lib = {
        inherit rustToolchain;
      };

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
