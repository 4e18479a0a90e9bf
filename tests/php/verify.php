<?php
// Verifies a TUF repository with php-tuf, set up as Composer's TUF plugin
// (php-tuf/composer-integration) sets up its updater. See README.md beside this file.
//
// Prints the php-tuf version, then `ok refresh` or `refused refresh: <Class>: <message>`,
// then for each --target `ok NAME`, or one `refused NAME: <path>: <Class>: <message>` line
// per path that refused it, <path> being `composer` (getLength, fetch, verify: what the
// plugin does for a download) or `download` (php-tuf's own Updater::download()).
// With --cost, `cost ...` lines after the refresh (and after the targets) say what was
// downloaded and how long it took (tests/php/refresh-cost.sh reads them).
// Exit 0: all ok; 1: something was refused; 2: usage or setup error.

namespace TufHarness;

use GuzzleHttp\Promise\Create;
use GuzzleHttp\Promise\PromiseInterface;
use GuzzleHttp\Psr7\Utils;
use Psr\Http\Message\StreamInterface;
use Tuf\Client\DurableStorage\FileStorage;
use Tuf\ComposerIntegration\ComposerCompatibleUpdater;
use Tuf\Client\Repository;
use Tuf\Exception\DownloadSizeException;
use Tuf\Exception\NotFoundException;
use Tuf\Loader\LoaderInterface;
use Tuf\Loader\SizeCheckingLoader;
use Tuf\Metadata\RootMetadata;

const USAGE = <<<'TXT'
usage: php verify.php --autoload FILE --root ROOT.json --state DIR --metadata-url URL
                      [--target NAME=URL]... [--max-bytes N] [--timeout SECONDS] [--debug]
                      [--cost]
  --autoload      an autoload-<version>.php written by tests/php/assemble.sh
  --root          the initial trusted root metadata (used only if DIR has no root yet)
  --state         php-tuf's FileStorage folder (created if missing)
  --metadata-url  where the TUF metadata is served (the plugin's tuf.metadata-url)
  --target        a TUF target name and the URL it is served at
  --max-bytes     the plugin's tuf.max-bytes (php-tuf's limit for root and timestamp)
  --cost          also print what each step downloaded (bytes per file) and its time

TXT;

function setup_error(string $message, bool $usage = false): never
{
    fwrite(STDERR, "verify.php: $message\n" . ($usage ? USAGE : ''));
    exit(2);
}

/** Parses the command line; any mistake is a setup error. */
function parse_args(array $argv): array
{
    $opts = ['targets' => [], 'debug' => false, 'cost' => false, 'max-bytes' => null, 'timeout' => 30.0];
    $single = ['autoload', 'root', 'state', 'metadata-url', 'max-bytes', 'timeout'];
    for ($i = 1; $i < count($argv); $i++) {
        $arg = $argv[$i];
        if ($arg === '--debug' || $arg === '--cost') {
            $opts[substr($arg, 2)] = true;
            continue;
        }
        if (!preg_match('/^--([a-z-]+)(?:=(.*))?$/s', $arg, $m)) {
            setup_error("unexpected argument '$arg'", true);
        }
        $flag = $m[1];
        if (!in_array($flag, [...$single, 'target'], true)) {
            setup_error("unknown flag --$flag", true);
        }
        $value = $m[2] ?? $argv[++$i] ?? setup_error("--$flag needs a value", true);
        if ($flag === 'target') {
            [$name, $url] = explode('=', $value, 2) + [1 => ''];
            if ($name === '' || $url === '') {
                setup_error("--target wants NAME=URL, got '$value'", true);
            }
            $opts['targets'][$name] = $url;
        } else {
            $opts[$flag] = $value;
        }
    }
    foreach (['autoload', 'root', 'state', 'metadata-url'] as $flag) {
        if (!isset($opts[$flag])) {
            setup_error("--$flag is required", true);
        }
    }
    if (isset($opts['max-bytes']) && !ctype_digit($opts['max-bytes'])) {
        setup_error('--max-bytes wants a whole number', true);
    }
    if (!is_numeric($opts['timeout'])) {
        setup_error('--timeout wants a number of seconds', true);
    }
    return $opts;
}

$opts = parse_args($argv);
// Keep stdout machine-readable: PHP's own notices go to stderr, deprecations only with --debug.
ini_set('display_errors', 'stderr');
error_reporting($opts['debug'] ? E_ALL : E_ALL & ~E_DEPRECATED & ~E_USER_DEPRECATED);

if (!is_file($opts['autoload'])) {
    setup_error("no autoload file {$opts['autoload']} (make it with tests/php/assemble.sh)");
}
require $opts['autoload'];
foreach ([ComposerCompatibleUpdater::class, SizeCheckingLoader::class, FileStorage::class,
          RootMetadata::class, Create::class, Utils::class,
          \Symfony\Component\Validator\Validation::class] as $class) {
    if (!class_exists($class)) {
        setup_error("$class cannot be loaded with {$opts['autoload']}");
    }
}
foreach (['sodium', 'json'] as $ext) {
    extension_loaded($ext) || setup_error("PHP extension $ext is missing");
}
if (!is_file($opts['root'])) {
    setup_error("no root metadata file {$opts['root']}");
}

// Recorded in the autoload file by assemble.sh.
define('TufHarness\VERSION', \defined('TUF_HARNESS_PHP_TUF') ? \TUF_HARNESS_PHP_TUF : 'php-tuf unknown');
define('TufHarness\PLUGIN', \defined('TUF_HARNESS_PLUGIN') ? \TUF_HARNESS_PLUGIN : 'composer-integration unknown');

/** What Composer throws when a download reaches its max_file_size. */
final class MaxFileSizeExceededException extends \RuntimeException
{
}

/**
 * GETs a URL with PHP's http stream wrapper; returns [status, body].
 *
 * $maxFileSize follows Composer's HttpDownloader option `max_file_size`: a body of
 * that many bytes or more (or a Content-Length saying so) is refused. Reads only
 * Content-Length bytes when the server gives it, so a server that keeps the
 * connection open does not stall us.
 */
function http_get(string $url, array $headers, ?int $maxFileSize, float $timeout): array
{
    // file:// URLs work too (handy by hand): a missing file is a 404.
    if (str_starts_with($url, 'file://') && !is_file(substr($url, strlen('file://')))) {
        return [404, ''];
    }
    $context = stream_context_create(['http' => [
        'header' => ['Connection: close', ...$headers],
        'ignore_errors' => true,   // give us the status and body of 4xx/5xx too
        'follow_location' => 1,
        'protocol_version' => 1.1,
        'timeout' => $timeout,
    ]]);
    $warning = null;
    set_error_handler(function (int $no, string $message) use (&$warning) {
        $warning = $message;
        return true;
    });
    try {
        $fp = fopen($url, 'rb', false, $context);
    } finally {
        restore_error_handler();
    }
    if ($fp === false) {
        throw new \RuntimeException("GET $url failed: " . ($warning ?? 'unknown error'));
    }
    try {
        // The wrapper keeps the headers of every response (redirects too): use the last one.
        $status = 200;
        $length = null;
        foreach (stream_get_meta_data($fp)['wrapper_data'] ?? [] as $line) {
            if (preg_match('#^HTTP/\S+\s+(\d{3})#', $line, $m)) {
                $status = (int) $m[1];
                $length = null;
            } elseif (preg_match('/^Content-Length:\s*(\d+)\s*$/i', $line, $m)) {
                $length = (int) $m[1];
            }
        }
        // Composer's messages.
        if ($maxFileSize !== null && $length !== null && $length >= $maxFileSize) {
            throw new MaxFileSizeExceededException('Maximum allowed download size reached. '
                . "Content-length header indicates $length bytes. Allowed $maxFileSize bytes");
        }
        $limit = $length ?? $maxFileSize;
        $body = $limit === null ? stream_get_contents($fp) : stream_get_contents($fp, $limit);
        if (stream_get_meta_data($fp)['timed_out']) {
            throw new \RuntimeException("GET $url timed out after {$timeout}s");
        }
        if ($body === false || ($length !== null && strlen($body) < $length)) {
            throw new \RuntimeException("GET $url: short read");
        }
        if ($maxFileSize !== null && strlen($body) >= $maxFileSize) {
            throw new MaxFileSizeExceededException('Maximum allowed download size reached. '
                . 'Downloaded ' . strlen($body) . " of allowed $maxFileSize bytes");
        }
        return [$status, $body];
    } finally {
        fclose($fp);
    }
}

function version_header(): string
{
    // The plugin sends the installed versions of php-tuf and itself.
    return sprintf('X-PHP-TUF: client=%s; plugin=%s',
        str_replace(' ', '-', substr(VERSION, strlen('php-tuf '))),
        str_replace(' ', '-', substr(PLUGIN, strlen('composer-integration '))));
}

/** php-tuf's FileStorage with what the plugin's ComposerFileStorage adds, minus Composer. */
final class Storage extends FileStorage
{
    public function __construct(string $basePath)
    {
        if (!is_dir($basePath) && !mkdir($basePath, 0777, true) && !is_dir($basePath)) {
            throw new \RuntimeException("cannot create $basePath");
        }
        parent::__construct($basePath);
    }

    public function getModifiedTime(string $name): ?\DateTimeImmutable
    {
        $path = $this->toPath($name);
        if (file_exists($path)) {
            $modifiedTime = filemtime($path);
            if (is_int($modifiedTime)) {
                return new \DateTimeImmutable("@$modifiedTime");
            }
            throw new \RuntimeException("Could not get the modification time for '$path'.");
        }
        return null;
    }

    public function toPath(string $name): string
    {
        return parent::toPath($name);
    }
}

/**
 * The plugin's Loader (src/Loader.php) with PHP's HTTP instead of Composer's HttpDownloader.
 *
 * Locators that are target names given with --target go to their URL (php-tuf's
 * Updater::download() passes the bare target name); everything else is metadata,
 * fetched from the metadata URL. The plugin never loads targets through its Loader,
 * so targets get no If-Modified-Since.
 */
final class Loader implements LoaderInterface
{
    /** For --cost: what was fetched, as [step, locator, HTTP status, body bytes, seconds]. */
    public array $fetched = [];

    /** For --cost: the step that loads count towards (`refresh`, `targets`). */
    public string $step = 'refresh';

    public function __construct(
        private Storage $storage,
        private string $baseUrl,
        private array $targetUrls,
        private float $timeout,
    ) {
    }

    public function load(string $locator, int $maxBytes): PromiseInterface
    {
        $isTarget = isset($this->targetUrls[$locator]);
        $url = $isTarget ? $this->targetUrls[$locator] : $this->baseUrl . $locator;
        $headers = [version_header()];

        // As the plugin: the stored file's name, e.g. `3.snapshot.json` -> `snapshot`.
        $name = ltrim(basename($locator, '.json'), '.0123456789');
        $modifiedTime = $isTarget ? null : $this->storage->getModifiedTime($name);
        // § 5.3.1: intermediate root files MUST be downloaded, so never ask for 304.
        if ($modifiedTime && $name !== 'root') {
            $headers[] = 'If-Modified-Since: ' . $modifiedTime->format('D, d M Y H:i:s') . ' GMT';
        }

        $start = hrtime(true);
        try {
            [$status, $body] = http_get($url, $headers, $maxBytes + 1, $this->timeout);
        } catch (MaxFileSizeExceededException) {
            throw new DownloadSizeException("$locator exceeded $maxBytes bytes");
        } finally {
            $this->fetched[] = [$this->step, $locator, $status ?? 'failed', strlen($body ?? ''),
                (hrtime(true) - $start) / 1e9];
        }
        if ($status === 404) {
            throw new NotFoundException($locator);
        }
        if ($status === 304) {
            $content = Utils::tryFopen($this->storage->toPath($name), 'r');
        } elseif ($status >= 200 && $status < 300) {
            $content = Utils::tryFopen('php://temp/maxmemory:1024', 'r+');
            fwrite($content, $body);
        } else {
            // Composer throws a TransportException, which the plugin rethrows like this.
            throw new \RuntimeException("The \"$url\" file could not be downloaded (HTTP $status)");
        }
        $stream = Utils::streamFor($content);
        $stream->rewind();
        return Create::promiseFor($stream);
    }
}

/**
 * The plugin's StaticCache: every loaded stream is kept for the rest of the process
 * and served again, rewound, for the same locator. The plugin's copy needs Composer's
 * IO only for a debug line, and divides its static cache into bins by metadata URL;
 * one process here serves one repository, so an instance cache has the same effect.
 */
final class StaticCache implements LoaderInterface
{
    private array $cache = [];

    public function __construct(private LoaderInterface $decorated, private bool $debug)
    {
    }

    public function load(string $locator, int $maxBytes): PromiseInterface
    {
        if ($cached = $this->cache[$locator] ?? null) {
            $this->debug && fwrite(STDERR, "[TUF] Loading '$locator' from static cache.\n");
            $cached->rewind();
            return Create::promiseFor($cached);
        }
        return $this->decorated->load($locator, $maxBytes)
            ->then(fn (StreamInterface $stream) => $this->cache[$locator] = $stream);
    }
}

/**
 * For --cost: `cost STEP: B bytes in N files, S s[, peak memory M MB]`, then
 * `cost STEP file LOCATOR: HTTP status, B bytes, S s` per file fetched in the step.
 */
function print_cost(Loader $loader, string $step, ?float $seconds): void
{
    $files = array_values(array_filter($loader->fetched, fn ($f) => $f[0] === $step));
    $bytes = array_sum(array_column($files, 3));
    $seconds ??= array_sum(array_column($files, 4));
    printf("cost %s: %d bytes in %d files, %.3f s, peak memory %.1f MB\n", $step, $bytes,
        count($files), $seconds, memory_get_peak_usage() / 1048576);
    foreach ($files as [, $locator, $status, $size, $time]) {
        printf("cost %s file %s: HTTP %s, %d bytes, %.3f s\n", $step, $locator, $status, $size, $time);
    }
}

/** Runs one step; returns null if it succeeded, else the line's `<Class>: <message>`. */
function attempt(callable $step, bool $debug): ?string
{
    try {
        $step();
        return null;
    } catch (\Throwable $e) {
        if ($debug) {
            fwrite(STDERR, $e . "\n");
        }
        return get_class($e) . ': ' . preg_replace('/\s+/', ' ', trim($e->getMessage()));
    }
}

// --- main -------------------------------------------------------------------------
$debug = $opts['debug'];
echo VERSION, "\n";
if ($debug) {
    fwrite(STDERR, 'using ' . PLUGIN . " and {$opts['autoload']}\n");
}

// As TufValidatedComposerRepository::__construct() and ::initializeStorage().
$metadataUrl = $opts['metadata-url'];
if (!str_ends_with($metadataUrl, '/')) {
    $metadataUrl .= '/';
}
if ($opts['max-bytes'] !== null) {
    Repository::$maxBytes = (int) $opts['max-bytes'];
}
try {
    $storage = new Storage($opts['state']);
} catch (\RuntimeException $e) {
    setup_error($e->getMessage());
}
$refused = attempt(function () use ($storage, $opts) {
    try {
        $storage->getRoot();
    } catch (\LogicException) {
        $root = RootMetadata::createFromJson(file_get_contents($opts['root']))->trust();
        $storage->save($root);
    }
}, $debug);
if ($refused !== null) {
    echo "refused root: $refused\n";
    exit(1);
}
$http = new Loader($storage, $metadataUrl, $opts['targets'], (float) $opts['timeout']);
$loader = new StaticCache($http, $debug);
$loader = new SizeCheckingLoader($loader);
$updater = new ComposerCompatibleUpdater($loader, $storage);

$ok = true;
$start = hrtime(true);
$refused = attempt(fn () => $updater->refresh(), $debug);
$refreshSeconds = (hrtime(true) - $start) / 1e9;
echo $refused === null ? "ok refresh\n" : "refused refresh: $refused\n";
$ok = $ok && $refused === null;
if ($opts['cost']) {
    print_cost($http, 'refresh', $refreshSeconds);
}
$http->step = 'targets';
$start = hrtime(true);

foreach ($opts['targets'] as $name => $url) {
    $refusals = [
        // TufValidatedComposerRepository::preparePackage() limits Composer's download to
        // getLength() (the target's length + 1: Composer refuses a body of max_file_size
        // bytes or more), then ::validatePackage() verifies what was downloaded.
        'composer' => attempt(function () use ($updater, $name, $url, $opts) {
            $maxFileSize = $updater->getLength($name);
            [$status, $body] = http_get($url, [], $maxFileSize, (float) $opts['timeout']);
            if ($status !== 200) {
                throw new \RuntimeException("The \"$url\" file could not be downloaded (HTTP $status)");
            }
            $updater->verify($name, Utils::streamFor($body));
        }, $debug),
        // php-tuf's own way: the loader chain fetches the target, the updater verifies it.
        'download' => attempt(fn () => $updater->download($name)->wait(), $debug),
    ];
    $refusals = array_filter($refusals, fn ($r) => $r !== null);
    foreach ($refusals as $path => $refused) {
        echo "refused $name: $path: $refused\n";
    }
    if (!$refusals) {
        echo "ok $name\n";
    }
    $ok = $ok && !$refusals;
}
if ($opts['cost'] && $opts['targets']) {
    print_cost($http, 'targets', (hrtime(true) - $start) / 1e9);
}
exit($ok ? 0 : 1);
