# The few nixpkgs `lib` functions the flake calls, with nixpkgs' semantics.
# Evaluation only, never used by a real build (see ../README.md).
rec {
  # The release the stand-in stands for (crane reads lib.version to check it is at least 26.05).
  version = "26.05";
  genAttrs = names: f: builtins.listToAttrs (map (n: nameValuePair n (f n)) names);
  nameValuePair = name: value: { inherit name value; };
  mapAttrs = builtins.mapAttrs;
  mapAttrs' = f: set: builtins.listToAttrs (map (attr: f attr set.${attr}) (builtins.attrNames set));
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (builtins.attrNames attrs);
}
