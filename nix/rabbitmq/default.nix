# The broker image: nixpkgs' rabbitmq-server with our configuration baked in. The definitions
# create one user per agent, each allowed only the queues its role uses, and declare the
# queues durable with the arguments the agents declare them with. Their passwords are the
# development ones (dev-AGENT): the entrypoint (./entrypoint.sh) refuses them unless
# TUF_BROKER_DEV=1 (DDEV); a deployment mounts `tuf-signer broker-secrets`'s definitions over
# /etc/rabbitmq/definitions.json.
# Returns { image, config }: `config` is the runtime contract, data in ./image.json, which
# scripts/e2e/images.py also builds its stand-in broker image from.
{
  pkgs,
  labels,
  identity,
}:
let
  inherit (pkgs) lib;
  spec = builtins.fromJSON (builtins.readFile ./image.json);
  inherit (spec) uid;
  conf = pkgs.writeTextDir "etc/rabbitmq/rabbitmq.conf" (builtins.readFile ./rabbitmq.conf);
  definitions = pkgs.writeTextDir "etc/rabbitmq/definitions.json" (builtins.readFile ./definitions.json);
  devDefinitions = pkgs.writeTextDir "etc/rabbitmq/definitions.dev.json" (builtins.readFile ./definitions.json);
  entrypoint = pkgs.writeTextDir "etc/rabbitmq/entrypoint.sh" (builtins.readFile ./entrypoint.sh);
  # The package in `contents` links its programs at /bin.
  config = {
    User = "${toString uid}:${toString uid}";
    Entrypoint = spec.entrypoint;
    Env = lib.mapAttrsToList (k: v: "${k}=${v}") spec.env;
    ExposedPorts = lib.genAttrs spec.ports (_: { });
    Volumes = lib.genAttrs spec.volumes (_: { });
    Labels = labels "rabbitmq" spec.description;
  };
in
{
  inherit config;
  image = pkgs.dockerTools.buildLayeredImage {
    name = "rabbitmq";
    tag = "latest";
    contents = [
      pkgs.rabbitmq-server
      pkgs.bashInteractive
      pkgs.coreutils
      conf
      definitions
      devDefinitions
      entrypoint
    ] ++ identity {
      name = "rabbitmq";
      group = "rabbitmq";
      inherit uid;
      gid = uid;
    };
    fakeRootCommands = ''
      mkdir -p ./var/lib/rabbitmq ./tmp
      chown -R ${toString uid}:${toString uid} ./var/lib/rabbitmq
      chmod 1777 ./tmp
    '';
    inherit config;
  };
}
