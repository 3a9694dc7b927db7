#include "builder/cli/flag_table.hpp"

#include "builder/memory_budget.hpp"
#include "builder/run/secrets.hpp"
#include "builder/sources/git_source.hpp"
#include "common/strings.hpp"

namespace kiln {

const std::vector<FlagSpec>& flag_specs() {
    static const std::vector<FlagSpec> specs = {
        {"context", 'c', FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             // Kept as given: dir://, tar:// and https:// are resolved by the build (sources/context_source).
             o.context_dir = v;
             return {};
         },
         "build context: a directory (or dir://DIR), tar://FILE or tar://stdin (plain, gzip, bzip2, xz or zstd), "
         "an https:// URL of a tar archive, or a git repository (git://…, https://….git, ssh://…, git@host:…) "
         "with #ref and :subdir"},
        {"git", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status { return apply_git_option(o.git, v); },
         "for a git context: branch=NAME, single-branch=BOOL, recurse-submodules=BOOL, insecure-skip-tls=BOOL "
         "(comma-separated, repeatable); credentials come from GIT_USERNAME and GIT_PASSWORD (or GIT_TOKEN)"},
        {"context-sub-path", 0, FlagKind::value, set_string(&BuildOptions::context_sub_path),
         "the directory inside the context (a directory or an unpacked archive) that is the build's context"},
        {"dockerfile", 'f', FlagKind::value, set_string(&BuildOptions::dockerfile),
         "Dockerfile path (absolute, relative to the working directory, or to the context), or - for stdin"},
        {"destination", 'd', FlagKind::value, append_string(&BuildOptions::destinations),
         "image reference to push to (repeatable)"},
        {"build-arg", 0, FlagKind::value, apply_build_arg, "build argument NAME=VALUE, or NAME from the environment"},
        {"target", 0, FlagKind::value, set_string(&BuildOptions::target), "stage to build (default: the last)"},
        {"label", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto pair, parse_key_value("label", v));
             o.labels.push_back(std::move(pair));
             return {};
         },
         "add a label KEY=VALUE to the image (repeatable)"},
        {"build-context", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto pair, parse_key_value("build-context", v));
             if (!pair.second.starts_with("oci-layout://"))
                 return fail(str_cat("--build-context ", pair.first, ": only oci-layout://DIR[:TAG] is supported"));
             o.build_contexts.push_back(std::move(pair));
             return {};
         },
         "NAME=oci-layout://DIR[:TAG]: use a local OCI layout wherever FROM or COPY --from names NAME"},
        {"custom-platform", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.custom_platform, Platform::parse(v));
             return {};
         },
         "platform of the base images and of the result, e.g. linux/arm64"},
        {"no-push", 0, FlagKind::boolean, set_bool(&BuildOptions::no_push, "no-push"), "build without pushing"},
        {"tar-path", 0, FlagKind::value, set_string(&BuildOptions::tar_path), "write a docker-load-able tarball"},
        {"oci-layout-path", 0, FlagKind::value, set_string(&BuildOptions::oci_layout_path),
         "write an OCI image layout directory"},
        {"digest-file", 0, FlagKind::value, set_string(&BuildOptions::digest_file),
         "write the image digest (sha256:…, no newline)"},
        {"image-name-with-digest-file", 0, FlagKind::value, set_string(&BuildOptions::image_name_with_digest_file),
         "write one REPOSITORY@DIGEST line per destination"},
        {"image-name-tag-with-digest-file", 0, FlagKind::value,
         set_string(&BuildOptions::image_name_tag_with_digest_file), "write one REPOSITORY:TAG@DIGEST line per destination"},
        {"image-url-file", 0, FlagKind::value, set_string(&BuildOptions::image_url_file),
         "write the first destination's reference (Tekton's IMAGE_URL)"},
        {"image-ref-file", 0, FlagKind::value, set_string(&BuildOptions::image_ref_file),
         "write the first destination's repository@digest, without a newline (Tekton's IMAGE_REF result)"},
        {"insecure", 0, FlagKind::boolean, set_nested_bool(&BuildOptions::push, &RegistryAccess::plain_http, "insecure"),
         "push over plain HTTP"},
        {"insecure-pull", 0, FlagKind::boolean,
         set_nested_bool(&BuildOptions::pull, &RegistryAccess::plain_http, "insecure-pull"), "pull over plain HTTP"},
        {"insecure-registry", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             o.pull.plain_http_registries.push_back(v);
             o.push.plain_http_registries.push_back(v);
             return {};
         },
         "use plain HTTP for this registry (repeatable)"},
        {"skip-tls-verify", 0, FlagKind::boolean,
         set_nested_bool(&BuildOptions::push, &RegistryAccess::skip_tls_verify, "skip-tls-verify"),
         "push without verifying TLS certificates"},
        {"skip-tls-verify-pull", 0, FlagKind::boolean,
         set_nested_bool(&BuildOptions::pull, &RegistryAccess::skip_tls_verify, "skip-tls-verify-pull"),
         "pull without verifying TLS certificates"},
        {"skip-tls-verify-registry", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             o.pull.skip_tls_verify_registries.push_back(v);
             o.push.skip_tls_verify_registries.push_back(v);
             return {};
         },
         "do not verify TLS certificates of this registry (repeatable)"},
        {"registry-certificate", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto pair, parse_key_value("registry-certificate", v));
             if (pair.second.empty())
                 return fail(str_cat("--registry-certificate \"", v, "\": expected REGISTRY=PATH to a PEM file"));
             o.registries.certificates.push_back(std::move(pair));
             return {};
         },
         "REGISTRY=PATH: trust the CA certificate(s) in PATH for this registry, besides the system's (repeatable)"},
        {"registry-client-cert", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto pair, parse_key_value("registry-client-cert", v));
             size_t comma = pair.second.find(',');
             if (comma == std::string::npos || comma == 0 || comma + 1 == pair.second.size())
                 return fail(str_cat("--registry-client-cert \"", v, "\": expected REGISTRY=CERT,KEY (PEM files)"));
             o.registries.client_certificates.push_back(
                 {pair.first, {pair.second.substr(0, comma), pair.second.substr(comma + 1)}});
             return {};
         },
         "REGISTRY=CERT,KEY: present this client certificate to the registry (mTLS; repeatable)"},
        {"registry-mirror", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             o.registries.mirrors.push_back(v);
             return {};
         },
         "pull docker.io images through this mirror, host[:port][/path] (repeatable, tried in order)"},
        {"registry-map", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             o.registries.maps.push_back(v);
             return {};
         },
         "FROM=TO[;FROM=TO…]: pull images of registry FROM from TO instead (repeatable)"},
        {"skip-default-registry-fallback", 0, FlagKind::boolean,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(bool skip, parse_bool("skip-default-registry-fallback", v));
             o.registries.default_fallback = !skip;
             return {};
         },
         "fail when the mirrors of a registry miss, instead of pulling from the registry itself"},
        {"skip-push-permission-check", 0, FlagKind::boolean,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(bool skip, parse_bool("skip-push-permission-check", v));
             o.registries.check_push_permission = !skip;
             return {};
         },
         "do not check before building that every destination accepts a push"},
        {"transfer-jobs", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(int jobs, parse_int("transfer-jobs", v));
             if (jobs < 1 || jobs > 64) return fail(str_cat("--transfer-jobs: expected 1 to 64, got ", v));
             o.registries.transfer_jobs = static_cast<size_t>(jobs);
             return {};
         },
         "blobs pulled or pushed at once (default 4)"},
        {"registry-stall-timeout", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(int seconds, parse_int("registry-stall-timeout", v));
             if (seconds < 1) return fail(str_cat("--registry-stall-timeout: expected seconds >= 1, got ", v));
             o.registries.stall_timeout_seconds = seconds;
             return {};
         },
         "abandon (and retry) a transfer that moves less than --min-transfer-rate over this many seconds (default "
         "60)"},
        {"min-transfer-rate", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             std::optional<std::uint64_t> rate = parse_byte_size(v);
             if (!rate || *rate == 0)
                 return fail(str_cat("--min-transfer-rate: expected bytes a second such as 1Ki or 500, got \"", v, "\""));
             o.registries.min_transfer_rate = *rate;
             return {};
         },
         "the slowest a registry transfer or download may go, in bytes a second, averaged over "
         "--registry-stall-timeout (default 1Ki)"},
        {"transfer-deadline", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto deadline, parse_duration("transfer-deadline", v, true, "a duration such as 1h or 90m (0: none)"));
             o.registries.transfer_deadline = std::chrono::duration_cast<std::chrono::seconds>(deadline);
             return {};
         },
         "the longest one registry transfer or download may take, however fast it moves (default 1h; 0: none)"},
        {"registry-retry-window", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto window, parse_duration("registry-retry-window", v, true, "a duration such as 60s or 2m"));
             o.registries.retry_window = std::chrono::duration_cast<std::chrono::milliseconds>(window);
             return {};
         },
         "what the waits between a failed registry operation's retries add up to, each four times the one "
         "before (default 60s, to outlast a registry's restart)"},
        {"max-download-size", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             std::optional<std::uint64_t> size = parse_byte_size(v);
             if (!size || *size == 0)
                 return fail(str_cat("--max-download-size: expected a size such as 16Gi or 500M, got \"", v, "\""));
             o.max_download_size = *size;
             return {};
         },
         "the most bytes one ADD <url> or https:// context may download (default 16Gi)"},
        {"push-ignore-immutable-tag-errors", 0, FlagKind::boolean,
         set_bool(&BuildOptions::push_ignore_immutable_tag_errors, "push-ignore-immutable-tag-errors"),
         "a tag the registry refuses to move because it is immutable (ECR, Artifact Registry, Harbor, Docker Hub) "
         "counts as pushed, with a warning: the tag keeps the image it had"},
        {"push-retry", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.push.retries, parse_int("push-retry", v));
             if (o.push.retries < 0) return fail(str_cat("--push-retry: expected a count >= 0, got ", v));
             return {};
         },
         "retries of a push operation that failed in a way a retry may fix (default 3)"},
        {"image-download-retry", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.pull.retries, parse_int("image-download-retry", v));
             if (o.pull.retries < 0) return fail(str_cat("--image-download-retry: expected a count >= 0, got ", v));
             return {};
         },
         "retries of a pull operation that failed in a way a retry may fix (default 3)"},
        {"compression", 0, FlagKind::value, apply_compression, "layer compression: gzip (default), zstd or none"},
        {"compression-level", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.compression_level, parse_int("compression-level", v));
             return {};
         },
         "compression level (-1: the default)"},
        {"format", 0, FlagKind::value, apply_format, "manifest format: oci (default) or docker"},
        {"single-snapshot", 0, FlagKind::boolean, set_bool(&BuildOptions::single_snapshot, "single-snapshot"),
         "take one layer per stage, at its end, instead of one per RUN, COPY and ADD"},
        {"force-build-metadata", 0, FlagKind::boolean,
         set_bool(&BuildOptions::force_build_metadata, "force-build-metadata"),
         "give every step a layer, an empty one for ENV, LABEL and the like and for a step that changed no file "
         "(which otherwise adds only its history entry)"},
        {"snapshot-mode", 0, FlagKind::value, apply_snapshot_mode,
         "how the walk snapshotter spots a change: full (content hash), redo (size, mode, owner, mtime), time "
         "(mtime); default: every lstat field, ctime and inode included, and xattrs"},
        {"snapshotter", 0, FlagKind::value, apply_snapshotter,
         "auto (default: overlay where it can be mounted), overlay, or walk"},
        {"sandbox", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.sandbox, parse_sandbox_mode(v));
             return {};
         },
         "how RUN steps are isolated: auto (default: the strongest that works here), userns, rootns (root, no "
         "user namespace) or chroot (root that may not mount, as in a default pod; trusts the Dockerfile)"},
        {"run-network", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             if (v != "host" && v != "private")
                 return fail(str_cat("--run-network: expected host or private, got \"", v, "\""));
             o.private_run_network = v == "private";
             return {};
         },
         "the network of RUN steps: host (default, as docker build: the host's network, loopback included) or "
         "private (a network namespace of their own, out through slirp4netns, without the host's loopback)"},
        {"ignore-path", 0, FlagKind::value, apply_ignore_path,
         "leave this path and everything below it out of every layer (repeatable)"},
        {"ignore-var-run", 0, FlagKind::boolean, set_bool(&BuildOptions::ignore_var_run, "ignore-var-run"),
         "leave /var/run out of every layer (default true)"},
        {"reproducible", 0, FlagKind::boolean, set_bool(&BuildOptions::reproducible, "reproducible"),
         "strip timestamps (SOURCE_DATE_EPOCH, else 0) so that the same inputs give the same digest"},
        {"cache-dir", 0, FlagKind::value, set_string(&BuildOptions::cache_dir),
         "directory kept across builds: warmed base images, the layer cache and RUN --mount=type=cache "
         "(default ${XDG_CACHE_HOME:-$HOME/.cache}/kiln)"},
        {"cache-dir-max", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             std::optional<std::uint64_t> size = parse_byte_size(v);
             if (!size) return fail(str_cat("--cache-dir-max: expected a size such as 20Gi or 500M, got \"", v, "\""));
             o.cache_dir_max = *size;
             return {};
         },
         "the most the base layers kept extracted in --cache-dir may take; the least recently used go first "
         "(default: no bound)"},
        {"cache", 0, FlagKind::boolean, set_nested_bool(&BuildOptions::cache, &CacheSettings::enabled, "cache"),
         "reuse the layers of steps whose inputs are unchanged, and keep new ones, in --cache-dir and --cache-repo"},
        {"cache-ttl", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(auto ttl, parse_duration("cache-ttl", v, false, "a duration such as 336h or 90m"));
             o.cache.ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
             return {};
         },
         "cache entries older than this are not used (default 336h)"},
        {"cache-run-layers", 0, FlagKind::boolean,
         set_nested_bool(&BuildOptions::cache, &CacheSettings::run_layers, "cache-run-layers"),
         "cache RUN layers (default true)"},
        {"cache-copy-layers", 0, FlagKind::boolean,
         set_nested_bool(&BuildOptions::cache, &CacheSettings::copy_layers, "cache-copy-layers"),
         "cache COPY and ADD layers (default true: keys cover the copied files' content)"},
        {"cache-repo", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             if (v.empty()) return fail("--cache-repo: expected a repository such as registry.example/app/cache");
             o.cache.repository = v;
             return {};
         },
         "registry repository of the layer cache, shared by every build that reaches it (default: the first "
         "--destination's repository + /cache)"},
        {"no-push-cache", 0, FlagKind::boolean,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(bool no_push, parse_bool("no-push-cache", v));
             o.cache.push = !no_push;
             return {};
         },
         "look layers up in --cache-repo but store none there"},
        {"secret", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(SecretSource secret, parse_secret_flag(v));
             o.secrets.push_back(std::move(secret));
             return {};
         },
         "id=ID,src=PATH or id=ID,env=VAR: a secret for RUN --mount=type=secret (repeatable)"},
        {"work-dir", 0, FlagKind::value, set_string(&BuildOptions::work_dir_parent),
         "directory under which kiln keeps its private work directory (default $TMPDIR or /var/tmp)"},
        {"kaniko-dir", 0, FlagKind::value, set_string(&BuildOptions::work_dir_parent), "alias of --work-dir"},
        {"memory-budget", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.memory_budget, parse_memory_budget(v));
             return {};
         },
         "memory for extracted layers, on a tmpfs, past which they go to the disk: auto (default: half of what "
         "the memory cgroup still allows), 0, or a size such as 2Gi"},
        {"keep-work-dir", 0, FlagKind::boolean, set_bool(&BuildOptions::keep_work_dir, "keep-work-dir"),
         "keep the work directory after the build, for debugging"},
        {"cleanup", 0, FlagKind::boolean, set_bool(&BuildOptions::cleanup, "cleanup"),
         "delete the work directory (the extracted filesystems) before kiln exits, rather than in a process left "
         "in the background, so that a pod's volume is empty when the step ends"},
        {"verbosity", 'v', FlagKind::value, apply_verbosity, "log level: trace, debug, info, warn, error"},
        {"log-timestamp", 0, FlagKind::boolean, set_bool(&BuildOptions::log_timestamps, "log-timestamp"),
         "prefix log lines with the time"},
        {"log-format", 0, FlagKind::value, apply_log_format,
         "text (default), color (text with colours, for a terminal) or json (one object per line; the README "
         "lists its fields)"},
        {"progress", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             if (v != "auto" && v != "tty" && v != "plain")
                 return fail(str_cat("--progress: expected auto, tty or plain, got \"", v, "\""));
             o.progress = v;
             return {};
         },
         "how transfers show their progress: tty (a line each, redrawn in place), plain (a line every 10 s for "
         "one that lasts more than 3 s, for logs), or auto (default: tty on a terminal); with "
         "--log-format=json, a progress object as often as plain's lines"},
        {"summary-file", 0, FlagKind::value, set_string(&BuildOptions::summary_file),
         "write the summary as JSON: each step's duration, cache status and layer, the time by phase"},
        {"trace-file", 0, FlagKind::value, set_string(&BuildOptions::trace_file),
         "write the build as Chrome trace events, for Perfetto (ui.perfetto.dev) or chrome://tracing"},
        // Deprecated spellings Kaniko still accepts.
        {"tarPath", 0, FlagKind::value, set_string(&BuildOptions::tar_path), ""},
        {"snapshotMode", 0, FlagKind::value, apply_snapshot_mode, ""},
        {"whitelist-var-run", 0, FlagKind::boolean,
         set_bool(&BuildOptions::ignore_var_run, "whitelist-var-run"), ""},
        {"customPlatform", 0, FlagKind::value,
         [](BuildOptions& o, const std::string& v) -> Status {
             KILN_ASSIGN(o.custom_platform, Platform::parse(v));
             return {};
         },
         ""},
    };
    return specs;
}

const std::vector<IgnoredFlag>& ignored_flags() {
    static const std::vector<IgnoredFlag> flags = {
        {"compressed-caching", FlagKind::boolean, "kiln's cache always keeps the compressed layer"},
        {"force", FlagKind::boolean, "kiln never builds in its own root filesystem, so there is nothing to force"},
        {"skip-unused-stages", FlagKind::boolean, "kiln always skips the stages the target does not need"},
        {"use-new-run", FlagKind::boolean, "kiln always runs steps in a sandbox"},
        {"image-fs-extract-retry", FlagKind::value,
         "kiln extracts only layers it has downloaded and verified: a broken download is retried under "
         "--image-download-retry"},
    };
    return flags;
}

const std::vector<RefusedFlag>& refused_flags() {
    static const std::vector<RefusedFlag> flags = {
        {"bucket", "bucket contexts are not supported yet"},
    };
    return flags;
}

}  // namespace kiln
