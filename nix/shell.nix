# `nix develop`: what a developer needs to build, test and ship.
{ pkgs }:
pkgs.mkShell {
  packages = [
    pkgs.cargo
    pkgs.rustc
    pkgs.clippy
    pkgs.rustfmt
    pkgs.cmake
    pkgs.perl
    pkgs.rabbitmq-server
    (pkgs.python3.withPackages (ps: [ ps.tuf ]))
    pkgs.skopeo
    pkgs.jq
  ];
  # The integration tests' broker and python-tuf.
  AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f";
  shellHook = ''
    export TUF_PYTHON=$(command -v python3)
  '';
}
