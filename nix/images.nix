# One layered OCI image per agent, built with dockerTools: no Dockerfile.
# The signers and the packaging pipeline come from one template (`agentImage`); what differs
# between them (user, entrypoint, environment) is data in ./agents.json, which the
# integration test `image_contract` also reads and runs.
{
  pkgs,
  package,
  revision,
}:
let
  inherit (pkgs) lib;
  agents = builtins.fromJSON (builtins.readFile ./agents.json);
  source = "https://gitlab.com/drupal-infrastructure/package-signing/tuf";

  labels = title: description: {
    "org.opencontainers.image.source" = source;
    "org.opencontainers.image.revision" = revision;
    "org.opencontainers.image.title" = title;
    "org.opencontainers.image.description" = description;
  };

  # /etc/passwd and /etc/group holding only the agent's own user.
  identity =
    name: uid:
    [
      (pkgs.writeTextDir "etc/passwd" "root:x:0:0::/root:/sbin/nologin\n${name}:x:${toString uid}:${toString uid}::/var/empty:/sbin/nologin\n")
      (pkgs.writeTextDir "etc/group" "root:x:0:\n${name}:x:${toString uid}:\n")
    ];

  # The worker template: the binary, CA certificates, a non-root user, the mount points.
  # Keys and the AMQP URL (it holds a password) are given at run time, never baked in.
  agentImage =
    name: agent:
    pkgs.dockerTools.buildLayeredImage {
      inherit name;
      tag = "latest";
      contents = [ pkgs.cacert ] ++ identity name agent.uid;
      fakeRootCommands = ''
        mkdir -p ./srv/tuf/repo ./run/keys ./tmp
        chown -R ${toString agent.uid}:${toString agent.uid} ./srv/tuf
        chmod 0700 ./run/keys
        chown ${toString agent.uid}:${toString agent.uid} ./run/keys
        chmod 1777 ./tmp
      '';
      config = {
        User = "${toString agent.uid}:${toString agent.uid}";
        Entrypoint = [ "${package}/bin/${agent.program}" ] ++ agent.args;
        Env = lib.mapAttrsToList (k: v: "${k}=${v}") agent.env ++ [
          "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
        ];
        WorkingDir = "/srv/tuf";
        Labels = labels name agent.description;
      };
    };

  rabbitmq = import ./rabbitmq { inherit pkgs labels identity; };

  byAgent = lib.mapAttrs agentImage agents // {
    inherit rabbitmq;
  };
in
{
  inherit byAgent agentImage;
  # `nix build .#images`: every image, each linked under its agent's name.
  all = pkgs.linkFarm "package-signing-images" (
    lib.mapAttrsToList (name: image: {
      inherit name;
      path = image;
    }) byAgent
  );
}
