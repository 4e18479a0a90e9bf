# The broker image: nixpkgs' rabbitmq-server with our configuration baked in. The definitions
# create one user per agent, each allowed only the queues its role uses, and declare the
# queues durable with the arguments the agents declare them with.
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
  # The package in `contents` links its programs at /bin.
  config = {
    User = "${toString uid}:${toString uid}";
    Entrypoint = [ "/bin/${spec.program}" ];
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
