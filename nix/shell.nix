# `nix develop`: the checks' build inputs (crane's devShell takes them from `checks`, with
# rustc, cargo, clippy and rustfmt), plus the tools the integration tests and shipping need.
{
  pkgs,
  craneLib,
  checks,
}:
craneLib.devShell {
  inherit checks;
  packages = [
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
