#!/usr/bin/env bash
# Runs php-tuf's own PHPUnit suite before and after one of our php-tuf patches, on copies of the
# checkouts made by tests/php/checkouts.sh, and says whether the patch breaks anything.
# Usage: PHP_TUF_CHECKOUTS=DIR tests/php/patch-check.sh [PATCH] [VERSION...]
#   PATCH    a `git format-patch` file (default: tests/php/patches/php-tuf-0.1.7-keep-unchanged-targets.patch)
#   VERSION  php-tuf-VERSION checkouts to test it on (default: 0.1.7 main)
# For each version, in a temporary copy: the suite unpatched; with the whole patch (`git am`);
# and with only the patch's tests (`git apply --exclude='src/*'`), which shows what its new
# tests catch. Prints one line per run and the tests that fail.
# Exit 0: the patched suite fails no test that the unpatched one passes, and the patch's tests
# fail without its src/ changes (else they would not test them). 1: otherwise. 2: setup error.
#
# The suite runs offline with Debian's phpunit 9.6 and an autoloader written here in place of
# Composer's (Packagist is not needed). Fixtures are generated first, as `composer fixtures`
# does (FixtureGenerator::generateAll(), which needs symfony/filesystem: Debian's 5.4 does).
# None of php-tuf's tests needs to be left out: its other dev dependencies
# (symfony/phpunit-bridge, php_codesniffer, slevomat/coding-standard) are not used by the tests.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PATCH=${1:-$HERE/patches/php-tuf-0.1.7-keep-unchanged-targets.patch}
shift || true
VERSIONS=${*:-0.1.7 main}
C=${PHP_TUF_CHECKOUTS:-$HERE/../../.php-tuf}

missing=()
[ -f "$PATCH" ] || missing+=("patch file $PATCH")
for v in $VERSIONS; do
  [ -d "$C/php-tuf-$v/.git" ] || missing+=("checkout $C/php-tuf-$v (tests/php/checkouts.sh DIR; PHP_TUF_CHECKOUTS=DIR)")
done
for f in symfony-validator/Validation.php guzzle-promises/src/Create.php; do
  [ -f "$C/$f" ] || missing+=("checkout file $C/$f (tests/php/checkouts.sh)")
done
DEBIAN_AUTOLOADERS="
/usr/share/php/GuzzleHttp/Psr7/autoload.php:php-guzzlehttp-psr7
/usr/share/php/Symfony/Polyfill/Mbstring/autoload.php:php-symfony-polyfill-mbstring
/usr/share/php/Symfony/Polyfill/Php83/autoload.php:php-symfony-polyfill-php83
/usr/share/php/Symfony/Contracts/Deprecation/autoload.php:php-symfony-deprecation-contracts
/usr/share/php/Symfony/Contracts/Translation/autoload.php:php-symfony-translation-contracts
/usr/share/php/Symfony/Component/Filesystem/autoload.php:php-symfony-filesystem"
for entry in $DEBIAN_AUTOLOADERS; do
  [ -f "${entry%%:*}" ] || missing+=("${entry%%:*} (apt-get install ${entry##*:})")
done
command -v php >/dev/null || missing+=("php (apt-get install php-cli)")
command -v phpunit >/dev/null || missing+=("phpunit (apt-get install phpunit: Debian's 9.6)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "patch-check.sh: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi
C=$(cd "$C" && pwd)
PATCH=$(cd "$(dirname "$PATCH")" && pwd)/$(basename "$PATCH")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/php-tuf-patch-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Composer's autoloader for php-tuf and its tests, from the checkouts and Debian's packages.
{
  echo "<?php"
  echo "set_include_path('/usr/share/php' . PATH_SEPARATOR . get_include_path());"
  for entry in $DEBIAN_AUTOLOADERS; do echo "require_once '${entry%%:*}';"; done
  cat <<EOF
\$root = getenv('PHP_TUF_DIR');
spl_autoload_register(static function (string \$class) use (\$root): void {
    \$prefixes = [
        'Tuf\\\\Tests\\\\' => "\$root/tests/",
        'Tuf\\\\' => "\$root/src/",
        'Symfony\\\\Component\\\\Validator\\\\' => '$C/symfony-validator/',
        'GuzzleHttp\\\\Promise\\\\' => '$C/guzzle-promises/src/',
    ];
    foreach (\$prefixes as \$prefix => \$dir) {
        if (str_starts_with(\$class, \$prefix)) {
            \$file = \$dir . strtr(substr(\$class, strlen(\$prefix)), '\\\\', '/') . '.php';
            if (is_file(\$file)) {
                require \$file;
            }
            return;
        }
    }
});
EOF
} > "$TMP/bootstrap.php"

# Prints "tests failures errors skipped seconds" and then one failing test per line.
cat > "$TMP/junit.php" <<'EOF'
<?php
$xml = simplexml_load_file($argv[1]);
$suite = $xml->testsuite;
printf("%d %d %d %d %.1f\n", $suite['tests'], $suite['failures'], $suite['errors'],
    $suite['skipped'], $suite['time']);
foreach ($xml->xpath('//testcase[failure or error]') as $case) {
    echo $case['class'], '::', $case['name'], "\n";
}
EOF

# run LABEL DIR: generates the fixtures and runs the suite in DIR; leaves DIR.failed.
run() {
  local label=$1 dir=$2 out
  (cd "$dir" && PHP_TUF_DIR=$dir php -r 'require getenv("BOOT"); \Tuf\Tests\FixtureGenerator::generateAll();') \
    || { echo "$label: generating the fixtures failed" >&2; exit 1; }
  (cd "$dir" && PHP_TUF_DIR=$dir phpunit --bootstrap "$BOOT" --configuration phpunit.xml \
     --log-junit "$dir.junit.xml" > "$dir.log" 2>&1) || true
  [ -s "$dir.junit.xml" ] || { echo "$label: phpunit wrote no results:" >&2; tail -20 "$dir.log" >&2; exit 1; }
  out=$(php "$TMP/junit.php" "$dir.junit.xml")
  read -r tests failures errors skipped secs <<< "$(head -1 <<< "$out")"
  printf '%-28s %4d tests, %d failures, %d errors, %d skipped (%ss)\n' \
    "$label:" "$tests" "$failures" "$errors" "$skipped" "$secs"
  tail -n +2 <<< "$out" | sort > "$dir.failed"
  sed 's/^/    fails: /' "$dir.failed"
}
export BOOT=$TMP/bootstrap.php

status=0
echo "patch: $PATCH"
for v in $VERSIONS; do
  src="$C/php-tuf-$v"
  rev=$(git -C "$src" rev-parse --short HEAD)
  for kind in before after tests-only; do
    git -c init.defaultBranch=main clone -q --no-checkout "$src" "$TMP/$v-$kind"
    git -C "$TMP/$v-$kind" -c advice.detachedHead=false checkout -q "$rev"
  done
  git -C "$TMP/$v-after" -c user.name=patch-check -c user.email=patch-check@invalid \
    am -q "$PATCH" || { echo "php-tuf $v ($rev): the patch does not apply"; status=1; continue; }
  git -C "$TMP/$v-tests-only" apply --exclude='src/*' "$PATCH"

  run "php-tuf $v ($rev)" "$TMP/$v-before"
  run "  with the patch" "$TMP/$v-after"
  run "  its tests, src/ unpatched" "$TMP/$v-tests-only"

  new=$(comm -13 "$TMP/$v-before.failed" "$TMP/$v-after.failed")
  if [ -n "$new" ]; then
    echo "  FAIL: the patch breaks tests that pass without it:"; sed 's/^/    /' <<< "$new"
    status=1
  fi
  if [ ! -s "$TMP/$v-tests-only.failed" ]; then
    echo "  FAIL: the patch's tests pass without its src/ changes, so they do not test them"
    status=1
  fi
done
exit $status
