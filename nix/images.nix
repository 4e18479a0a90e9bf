# One layered OCI image per agent, built with dockerTools: no Dockerfile.
# The agent images install `binaries` (nix/package.nix): tuf-signer and tuf-client only; the
# benchmark, tuf-bench, is `packages.tuf-bench` and in no image.
# The signers and the packaging pipeline come from one template (`agentImage`); what differs
# between them (user, entrypoint, environment) is data in ./agents.json, which the
# integration test `image_contract` also reads and runs.
# `configs` is each image's runtime contract (user, entrypoint, env, working dir, ports,
# labels) with no store path in it: scripts/e2e/images.py builds stand-in images from the
# same data, and scripts/e2e-containers checks their config equals what this file evaluates to.
{
  pkgs,
  binaries,
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

  # Every signer's user is in group `tuf` (gid 10000), the group that may write the shared
  # volume's metadata/ (`tuf-signer init --repo-group 10000`); an agent with a `gid` of its own
  # in agents.json (the packaging pipeline) is not, and writes only the folders init gives it.
  # Keys belong to one user each.
  gid = 10000;
  gidOf = agent: agent.gid or gid;
  groupOf = agent: agent.group or "tuf";

  # /etc/passwd and /etc/group holding only the image's own user and group.
  identity =
    {
      name,
      uid,
      group,
      gid,
    }:
    [
      (pkgs.writeTextDir "etc/passwd" "root:x:0:0::/root:/sbin/nologin\n${name}:x:${toString uid}:${toString gid}::/var/empty:/sbin/nologin\n")
      (pkgs.writeTextDir "etc/group" "root:x:0:\n${group}:x:${toString gid}:${name}\n")
    ];

  # An agent's runtime config. Keys and the AMQP URL (it holds a password) are given at run
  # time, never baked in. `cacert` in the contents puts the bundle at /etc/ssl/certs.
  agentConfig = name: agent: {
    User = "${toString agent.uid}:${toString (gidOf agent)}";
    Entrypoint = [ "/bin/${agent.program}" ] ++ agent.args;
    Env = lib.mapAttrsToList (k: v: "${k}=${v}") agent.env ++ [
      "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
    ];
    WorkingDir = "/srv/tuf";
    Labels = labels name agent.description;
  };

  # The worker template: the two binaries, CA certificates, a non-root user, the mount points.
  agentImage =
    name: agent:
    pkgs.dockerTools.buildLayeredImage {
      inherit name;
      tag = "latest";
      # `binaries` (tuf-signer and tuf-client, nothing else) in `contents` links them at /bin,
      # where compose files can name them.
      contents = [
        binaries
        pkgs.cacert
      ] ++ identity {
        inherit name;
        inherit (agent) uid;
        gid = gidOf agent;
        group = groupOf agent;
      };
      fakeRootCommands = ''
        mkdir -p ./srv/tuf/repo ./srv/tuf/client ./srv/tuf/state ./run/keys ./tmp
        chown -R ${toString agent.uid}:${toString (gidOf agent)} ./srv/tuf
        chmod 3775 ./srv/tuf/repo
        chown ${toString agent.uid}:${toString agent.uid} ./srv/tuf/state
        chmod 0700 ./srv/tuf/state
        chown ${toString agent.uid}:${toString agent.uid} ./run/keys
        chmod 0700 ./run/keys
        chmod 1777 ./tmp
      '';
      config = agentConfig name agent;
    };

  rabbitmq = import ./rabbitmq { inherit pkgs labels identity; };

  byAgent = lib.mapAttrs agentImage agents // {
    rabbitmq = rabbitmq.image;
  };
in
{
  inherit byAgent agentImage;
  configs = lib.mapAttrs agentConfig agents // {
    rabbitmq = rabbitmq.config;
  };
  # `nix build .#images`: every image, each linked under its agent's name.
  all = pkgs.linkFarm "package-signing-images" (
    lib.mapAttrsToList (name: image: {
      inherit name;
      path = image;
    }) byAgent
  );
}
