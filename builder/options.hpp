#pragma once
// Everything a build is asked to do, as parsed from Kaniko-compatible flags.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/sandbox/sandbox_mode.hpp"
#include "common/log.hpp"
#include "images/media_type.hpp"
#include "images/platform.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {

// How kiln reaches registries, for pulls and for pushes separately (Kaniko's --insecure vs --insecure-pull).
struct RegistryAccess {
    bool plain_http = false;               // --insecure / --insecure-pull
    bool skip_tls_verify = false;          // --skip-tls-verify / --skip-tls-verify-pull
    std::vector<std::string> plain_http_registries;       // --insecure-registry (both directions)
    std::vector<std::string> skip_tls_verify_registries;  // --skip-tls-verify-registry (both directions)
    // --push-retry / --image-download-retry: tries after the first for an operation that failed in a way a
    // retry may fix (a reset connection, a 429 or 503, a blob that failed verification). Kaniko's default is 0;
    // kiln's is 3, because pipelines should ride out a registry's hiccups.
    int retries = 3;
};

inline constexpr std::uint64_t k_default_max_download_size = 16ull << 30;  // --max-download-size

// What registries need beyond the scheme: TLS material, mirrors, concurrency (issue #5's flags).
struct RegistrySettings {
    std::vector<std::pair<std::string, std::string>> certificates;  // --registry-certificate REG=PATH
    // --registry-client-cert REG=CRT,KEY
    std::vector<std::pair<std::string, std::pair<std::string, std::string>>> client_certificates;
    std::vector<std::string> mirrors;  // --registry-mirror, in order
    std::vector<std::string> maps;     // --registry-map values
    bool default_fallback = true;      // false with --skip-default-registry-fallback
    bool check_push_permission = true;  // false with --skip-push-permission-check
    size_t transfer_jobs = 4;           // --transfer-jobs
    // How long and how slowly a transfer may go (ADD's downloads included): abandoned (and retried) when it
    // moves less than min_transfer_rate bytes a second over stall_timeout_seconds, and for good past
    // transfer_deadline.
    int stall_timeout_seconds = 60;             // --registry-stall-timeout
    std::uint64_t min_transfer_rate = 1024;     // --min-transfer-rate
    std::chrono::seconds transfer_deadline{3600};  // --transfer-deadline (zero: none)
    // What the waits between a failed operation's retries add up to (--registry-retry-window).
    std::chrono::milliseconds retry_window{60000};
};

// A --secret: what RUN --mount=type=secret,id=ID reads, from a file or from kiln's environment.
struct SecretSource {
    std::string id;
    std::string file;  // src=PATH
    std::string env;   // env=VAR, when there is no file
};

// How a RUN step's change becomes a layer.
enum class SnapshotterKind {
    automatic,  // overlay where kiln can mount it, the walk otherwise
    overlay,    // each step writes to a fresh overlay upper directory, which is the diff; fails if impossible
    walk,       // lstat the whole rootfs before and after each step and compare
};

// The layer cache (Kaniko's --cache flags).
struct CacheSettings {
    bool enabled = false;  // --cache
    // --cache-repo: the registry repository of cache entries. Empty: the first destination's repository +
    // "/cache" when the build pushes, else none (the local cache in --cache-dir serves alone).
    std::string repository;
    bool push = true;  // false with --no-push-cache: the registry cache is looked up, never written
    std::chrono::seconds ttl{14 * 24 * 3600};  // --cache-ttl: older entries are misses
    // --cache-run-layers / --cache-copy-layers. Kaniko leaves COPY uncached by default; kiln's keys cover the
    // copied files' content, so both are on.
    bool run_layers = true;
    bool copy_layers = true;
};

// Kaniko's --git options for a git context ("branch=main,single-branch=true,recurse-submodules=true,
// insecure-skip-tls=false"; git_source.hpp applies them).
struct GitOptions {
    std::string branch;
    bool single_branch = false;  // a shallow fetch of one ref is always single-branch
    bool recurse_submodules = false;
    bool insecure_skip_tls = false;
};

// How the log is written to stderr (--log-format, Kaniko's flag): text, text with colours, or JSON lines.
enum class LogFormat { text, color, json };

struct BuildOptions {
    std::string context_dir = ".";  // --context as given: a directory, dir://, tar:// or https://
    std::string context_sub_path;   // --context-sub-path
    GitOptions git;                 // --git, for a git context
    std::string dockerfile = "Dockerfile";  // absolute, relative to the working directory, or to the context
    std::vector<std::string> destinations;
    std::vector<std::pair<std::string, std::string>> build_args;  // in flag order; later ones win
    std::string target;
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<std::pair<std::string, std::string>> build_contexts;  // NAME → oci-layout://DIR[:TAG]
    std::optional<Platform> custom_platform;

    bool no_push = false;
    std::string tar_path;
    std::string oci_layout_path;
    std::string digest_file;
    std::string image_name_with_digest_file;
    std::string image_name_tag_with_digest_file;
    std::string image_url_file;
    std::string image_ref_file;  // the first destination's repository@digest, no newline (a kiln extension)

    RegistryAccess pull;
    RegistryAccess push;
    RegistrySettings registries;
    // The most bytes one ADD <url> (or an https:// context) may download (--max-download-size).
    std::uint64_t max_download_size = k_default_max_download_size;

    ManifestFormat manifest_format = ManifestFormat::oci;
    Compression compression = Compression::gzip;
    int compression_level = -1;  // -1: the compressor's default
    bool reproducible = false;
    bool single_snapshot = false;  // one layer per stage, taken at its end (Kaniko's --single-snapshot)
    // A layer for every step, metadata and empty diffs included (Kaniko's --force-build-metadata); without it a
    // step that changed no file adds none.
    bool force_build_metadata = false;
    // How the walk snapshotter decides that a file changed (--snapshot-mode); the overlay snapshotter needs
    // no comparison, except for Kaniko's full mode (see snapshotter.cpp).
    SnapshotMode snapshot_mode = SnapshotMode::metadata;
    SnapshotterKind snapshotter = SnapshotterKind::automatic;  // --snapshotter
    SandboxMode sandbox = SandboxMode::automatic;              // --sandbox
    // --run-network=private: RUN steps that would share the host's network get a namespace of their own,
    // connected through slirp4netns, without the host's loopback.
    bool private_run_network = false;
    // Paths left out of every layer, with everything below them (--ignore-path, in the image's namespace).
    std::vector<std::string> ignore_paths;
    bool ignore_var_run = true;  // --ignore-var-run: /var/run and below stay out of layers, as in Kaniko
    // What kiln keeps across builds, each in a folder of its own: base images warmed by `kiln warm` (images/),
    // the layer cache (layers/) and RUN --mount=type=cache directories (run-mounts/). Empty: HostEnvironment::default_cache_dir().
    std::string cache_dir;
    // --cache-dir-max: the most the base layers kept extracted in <cache-dir>/extracted may take (estimated);
    // past it, the least recently used entries that no build holds are removed when a build ends. 0: no bound.
    std::uint64_t cache_dir_max = 0;
    CacheSettings cache;
    std::vector<SecretSource> secrets;  // --secret, in flag order; a later one with the same id wins

    std::string work_dir_parent;  // where kiln makes its private work directory; empty: HostEnvironment::temp_parent()
    // --memory-budget: the size of the tmpfs that layers are extracted into (0: none, the disk only); nullopt:
    // automatic_memory_budget().
    std::optional<std::uint64_t> memory_budget;
    bool keep_work_dir = false;
    bool cleanup = false;
    // --push-ignore-immutable-tag-errors: a destination whose tag the registry refuses to move (an immutable
    // tag that exists) counts as pushed, with a warning.
    bool push_ignore_immutable_tag_errors = false;  // --cleanup: the work directory is deleted before kiln exits, not in the background

    LogLevel verbosity = LogLevel::info;
    bool log_timestamps = false;
    LogFormat log_format = LogFormat::text;  // --log-format
    std::string progress = "auto";           // --progress: auto, tty or plain
    std::string summary_file;                // --summary-file: the summary as JSON
    std::string trace_file;                  // --trace-file: the build as Chrome trace events
};

}  // namespace kiln
