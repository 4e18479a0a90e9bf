# The broker image: nixpkgs' rabbitmq-server with our configuration baked in. The definitions
# create one user per agent, each allowed only the queues its role uses, and declare the
# queues durable with the arguments the agents declare them with.
{
  pkgs,
  labels,
  identity,
}:
let
  uid = 10100;
  conf = pkgs.writeTextDir "etc/rabbitmq/rabbitmq.conf" (builtins.readFile ./rabbitmq.conf);
  definitions = pkgs.writeTextDir "etc/rabbitmq/definitions.json" (builtins.readFile ./definitions.json);
in
pkgs.dockerTools.buildLayeredImage {
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
  config = {
    User = "${toString uid}:${toString uid}";
    Entrypoint = [ "${pkgs.rabbitmq-server}/bin/rabbitmq-server" ];
    Env = [
      "HOME=/var/lib/rabbitmq"
      "RABBITMQ_CONFIG_FILE=/etc/rabbitmq/rabbitmq.conf"
      "RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia"
      "RABBITMQ_LOG_BASE=/var/lib/rabbitmq/log"
      "RABBITMQ_LOGS=-"
    ];
    ExposedPorts = {
      "5672/tcp" = { };
    };
    Volumes = {
      "/var/lib/rabbitmq" = { };
    };
    Labels = labels "rabbitmq" "RabbitMQ for package-signing: one user per agent, durable role queues";
  };
}
