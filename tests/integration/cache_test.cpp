// The layer cache in --cache-dir, with the kiln binary: which steps a rebuild reuses, that reused layers make
// the image a fresh build makes, and that broken, expired, shared and half-written caches are handled. Each
// RUN that matters writes fresh random bytes, so the image tells which steps ran again.

#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/support/local_http_server.hpp"
#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// RUN steps that record fresh randomness: a rebuilt step has a new value, a cached one the old.
constexpr const char* k_random = "head -c 16 /dev/urandom | od -An -tx1";

class CacheTest : public RunBuildTest {
protected:
    std::vector<std::string> cached(std::vector<std::string> more = {}) {
        std::vector<std::string> args = {"--cache", "--cache-dir", case_path("cache"), "--work-dir", case_path("work")};
        args.insert(args.end(), more.begin(), more.end());
        return args;
    }
    // The values the RUNs wrote, by file name.
    std::map<std::string, std::string> values(const std::vector<std::string>& files) const {
        std::map<std::string, std::string> found;
        for (const std::string& file : files) found[file] = content_of(file);
        return found;
    }
};

TEST_F(CacheTest, NothingChangedReusesEveryStepAndTouchingFilesChangesNothing) {
    put("src/a.txt", "a\n");
    std::string dockerfile = str_cat("FROM base\nWORKDIR /app\nCOPY src/ ./src/\nRUN ", k_random, " > /app/one\nRUN ",
                                     k_random, " > /app/two\n");
    build_ok(dockerfile, cached());
    auto first = values({"app/one", "app/two"});
    KilnRun again = build_ok(dockerfile, cached());
    EXPECT_EQ(values({"app/one", "app/two"}), first);
    EXPECT_NE(again.output.find("cached (local)"), std::string::npos) << again.output;
    EXPECT_EQ(again.output.find("not cached"), std::string::npos) << again.output;

    timespec later[2] = {{2'000'000'000, 0}, {2'000'000'000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, context_path("src/a.txt").c_str(), later, 0), 0);
    build_ok(dockerfile, cached());
    EXPECT_EQ(values({"app/one", "app/two"}), first) << "an mtime is not content";
}

TEST_F(CacheTest, ChangingACopySourceRebuildsFromThatCopyOnAndTheLogNamesTheFile) {
    put("src/a.txt", "a\n");
    put("src/b.txt", "b\n");
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /before\nCOPY src/ /src/\nRUN ", k_random,
                                     " > /after\n");
    build_ok(dockerfile, cached());
    auto first = values({"before", "after"});
    put("src/b.txt", "b changed\n");
    KilnRun rebuilt = build_ok(dockerfile, cached());
    EXPECT_EQ(content_of("before"), first["before"]);
    EXPECT_NE(content_of("after"), first["after"]);
    EXPECT_EQ(content_of("src/b.txt"), "b changed\n");
    EXPECT_NE(rebuilt.output.find("not cached: what it reads changed: src/b.txt"), std::string::npos) << rebuilt.output;
}

TEST_F(CacheTest, AnIgnoredFileChangesNothing) {
    put("src/a.txt", "a\n");
    put("src/notes.md", "draft\n");
    put(".dockerignore", "src/notes.md\n");
    std::string dockerfile = str_cat("FROM base\nCOPY src/ /src/\nRUN ", k_random, " > /after\n");
    build_ok(dockerfile, cached());
    std::string first = content_of("after");
    put("src/notes.md", "final\n");
    build_ok(dockerfile, cached());
    EXPECT_EQ(content_of("after"), first);
}

TEST_F(CacheTest, AnArgInScopeRebuildsFromItsFirstRun) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one\nARG V=1\nRUN ", k_random,
                                     " > /two\nRUN echo $V > /v && ", k_random, " > /three\n");
    build_ok(dockerfile, cached());
    auto first = values({"one", "two", "three"});
    KilnRun rebuilt = build_ok(dockerfile, cached({"--build-arg", "V=2"}));
    EXPECT_EQ(content_of("one"), first["one"]);
    EXPECT_NE(content_of("two"), first["two"]) << "an ARG in scope reaches every later RUN's environment";
    EXPECT_NE(content_of("three"), first["three"]);
    EXPECT_EQ(content_of("v"), "2\n");
    EXPECT_NE(rebuilt.output.find("not cached: ARG or ENV changed: V"), std::string::npos) << rebuilt.output;
}

TEST_F(CacheTest, AnArgOfAnotherStageRebuildsThatStageAndTheCopyFromIt) {
    std::string dockerfile = str_cat("FROM base AS tool\nARG V=1\nRUN echo $V > /v && ", k_random,
                                     " > /made\nFROM base\nRUN ", k_random, " > /before\nCOPY --from=tool /made /made\n"
                                     "RUN ", k_random, " > /after\n");
    build_ok(dockerfile, cached());
    auto first = values({"made", "before", "after"});
    build_ok(dockerfile, cached({"--build-arg", "V=2"}));
    EXPECT_EQ(content_of("before"), first["before"]);
    EXPECT_NE(content_of("made"), first["made"]);
    EXPECT_NE(content_of("after"), first["after"]);
}

TEST_F(CacheTest, AnAddedUrlIsKeyedByTheBytesItServesAndFetchedOncePerBuild) {
    std::mutex mutex;
    std::string body = "version 1\n";
    std::atomic<int> requests = 0;  // counted on the server's thread, read on this one
    auto server = LocalHttpServer::start([&](const LocalRequest&) {
        std::lock_guard lock(mutex);
        ++requests;
        return LocalResponse{.body = body};
    });
    ASSERT_TRUE(server) << server.error().message();
    std::string dockerfile =
        str_cat("FROM base\nADD ", (*server)->url("/tool.txt"), " /tool.txt\nRUN ", k_random, " > /after\n");
    build_ok(dockerfile, cached());
    std::string after = content_of("after");
    EXPECT_EQ(requests.load(), 1) << "the key's download is the one the step copies";
    KilnRun same = build_ok(dockerfile, cached());
    EXPECT_EQ(content_of("after"), after);
    EXPECT_EQ(same.output.find("not cached"), std::string::npos) << same.output;
    {
        std::lock_guard lock(mutex);
        body = "version 2\n";
    }
    KilnRun changed = build_ok(dockerfile, cached());
    EXPECT_EQ(content_of("tool.txt"), "version 2\n");
    EXPECT_NE(content_of("after"), after);
    EXPECT_EQ(requests.load(), 3);
}

TEST_F(CacheTest, ANewBaseRebuildsEverything) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one\n");
    build_ok(dockerfile, cached());
    std::string first = content_of("one");
    // Another base: the busybox base plus one file.
    ASSERT_TRUE(make_directories(case_path("base2-context")));
    ASSERT_TRUE(write_file_atomic(case_path("base2-context/Dockerfile"), "FROM base\nRUN echo other > /other-base\n"));
    KilnRun base2 = run_kiln({"build", "--context", case_path("base2-context"), "--no-push", "--oci-layout-path",
                              case_path("base2"), "--build-context", "base=oci-layout://" + s_work->path() + "/base"});
    ASSERT_EQ(base2.exit_code, 0) << base2.output;
    KilnRun rebuilt = build_ok(dockerfile, cached({"--build-context", "base=oci-layout://" + case_path("base2")}));
    EXPECT_NE(content_of("one"), first);
    EXPECT_EQ(content_of("other-base"), "other\n");
    EXPECT_NE(rebuilt.output.find("not cached: the base image changed"), std::string::npos) << rebuilt.output;
}

// Every entry below a directory as `path type mode uid:gid size sha256/target`, without times.
std::vector<std::string> tree_of(const std::string& root) {
    std::vector<std::string> lines;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        struct stat st;
        if (::lstat(entry.path().c_str(), &st) != 0) continue;
        std::string what = S_ISLNK(st.st_mode) ? "-> " + fs::read_symlink(entry.path()).string()
                           : S_ISREG(st.st_mode) ? sha256_hex(read_file(entry.path()).value_or(""))
                                                 : "";
        lines.push_back(str_cat(fs::relative(entry.path(), root).string(), " ", st.st_mode, " ", st.st_uid, ":",
                                st.st_gid, " ", S_ISDIR(st.st_mode) ? 0 : st.st_size, " ", what));
    }
    std::sort(lines.begin(), lines.end());
    return lines;
}

TEST_F(CacheTest, AnImageBuiltFromTheCacheHasTheFilesystemOfAFreshBuild) {
    put("data/keep.txt", "keep\n");
    put("data/drop.txt", "drop\n");
    std::string dockerfile =
        "FROM base\nCOPY data/ /data/\nRUN rm /data/drop.txt && rm -r /etc/profile.d 2>/dev/null; mkdir -p /made && "
        "echo made > /made/file\nRUN ln -s /made/file /link && chmod 700 /made\n";
    build_ok(dockerfile, cached());
    put("data/new.txt", "new\n");  // a partial hit: the COPY and what follows run again
    build_ok(dockerfile, cached());
    std::vector<std::string> from_cache = tree_of(rootfs(""));
    build_ok(dockerfile);
    EXPECT_EQ(from_cache, tree_of(rootfs(""))) << "the cached rebuild and a fresh build differ";
    EXPECT_FALSE(exists("data/drop.txt"));
}

// A step that changed nothing is cached as such: its hit adds no layer, as its first run did. A build with
// --force-build-metadata gives the same hit its empty layer, and the steps after it still hit: an empty layer
// is no part of their keys.
TEST_F(CacheTest, AStepThatChangedNothingHitsWithoutALayerAndForcedMetadataStillGetsOne) {
    std::string dockerfile = str_cat("FROM base\nRUN cat /etc/passwd > /dev/null\nRUN ", k_random, " > /one\n");
    build_ok(dockerfile, cached());
    size_t layers = layer_count();
    KilnRun again = build_ok(dockerfile, cached());
    EXPECT_EQ(again.output.find("not cached"), std::string::npos) << again.output;
    EXPECT_EQ(layer_count(), layers);
    KilnRun forced = build_ok(dockerfile, cached({"--force-build-metadata"}));
    EXPECT_EQ(forced.output.find("not cached"), std::string::npos) << forced.output;
    EXPECT_EQ(layer_count(), layers + 1) << "the cat's empty layer";
}

TEST_F(CacheTest, AFullyCachedBuildPreparesNoFilesystem) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one\n");
    build_ok(dockerfile, cached());
    KilnRun again = build_ok(dockerfile, cached({"--verbosity=debug"}));
    EXPECT_EQ(again.output.find("is prepared"), std::string::npos) << again.output;
}

TEST_F(CacheTest, ACorruptedLayerIsAMissWithAWarningAndIsBuiltAgain) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one\n");
    build_ok(dockerfile, cached());
    std::string first = content_of("one");
    size_t flipped = 0;
    for (const auto& blob : fs::directory_iterator(case_path("cache/layers/blobs/sha256"))) {
        std::string bytes = read_file(blob.path()).value_or("");
        bytes[bytes.size() / 2] ^= 0x40;
        ASSERT_TRUE(write_file_atomic(blob.path(), bytes));
        ++flipped;
    }
    ASSERT_GT(flipped, 0u);
    KilnRun rebuilt = build_ok(dockerfile, cached());
    EXPECT_NE(content_of("one"), first);
    EXPECT_NE(rebuilt.output.find("warning: layer cache"), std::string::npos) << rebuilt.output;
}

TEST_F(CacheTest, AnExpiredEntryIsAMiss) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one\n");
    build_ok(dockerfile, cached());
    std::string first = content_of("one");
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    build_ok(dockerfile, cached({"--cache-ttl=1s"}));
    std::string second = content_of("one");
    EXPECT_NE(second, first);
    build_ok(dockerfile, cached({"--cache-ttl=1h"}));
    EXPECT_EQ(content_of("one"), second) << "the rebuild's entry replaced the expired one";
}

TEST_F(CacheTest, TwoBuildsSharingACacheDirectoryAtOnceBothSucceed) {
    std::string dockerfile = str_cat("FROM base\nRUN ", k_random, " > /one && head -c 2000000 /dev/urandom > /big\n");
    ASSERT_TRUE(write_file_atomic(context_path("Dockerfile"), dockerfile));
    auto build_into = [&](const std::string& layout) {
        return run_kiln({"build", "--context", context_path(""), "--no-push", "--oci-layout-path", case_path(layout),
                         "--build-context", "base=oci-layout://" + s_work->path() + "/base", "--cache", "--cache-dir",
                         case_path("cache"), "--work-dir", case_path("work")});
    };
    auto first = std::async(std::launch::async, build_into, "layout-a");
    auto second = std::async(std::launch::async, build_into, "layout-b");
    KilnRun a = first.get();
    KilnRun b = second.get();
    EXPECT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(b.exit_code, 0) << b.output;
    KilnRun third = build_ok(dockerfile, cached());
    EXPECT_EQ(third.output.find("not cached"), std::string::npos) << third.output;
}

// kiln killed at many moments while it writes the cache leaves entries that are whole or absent: a later build
// of the same inputs trusts what is there, rebuilds what is not, and makes a correct image. Each killed build
// has a seed of its own, so that each does all its work (and writes all its entries) until it is killed.
TEST_F(CacheTest, KillingBuildsWhileTheyWriteTheCacheLeavesACacheTheNextBuildTrusts) {
    std::string dockerfile = str_cat("FROM base\nARG SEED\nRUN echo $SEED > /seed && head -c 3000000 /dev/urandom > /a\n"
                                     "RUN ", k_random, " > /one && head -c 3000000 /dev/urandom > /b\n");
    ASSERT_TRUE(write_file_atomic(context_path("Dockerfile"), dockerfile));
    const std::vector<std::string> kill_after = {"0.1", "0.2", "0.25", "0.3", "0.35", "0.4", "0.45", "0.55"};
    for (size_t seed = 0; seed < kill_after.size(); ++seed) {
        run_kiln({"build", "--context", context_path(""), "--no-push", "--build-context",
                  "base=oci-layout://" + s_work->path() + "/base", "--cache", "--cache-dir", case_path("cache"),
                  "--work-dir", case_path("work"), "--build-arg", str_cat("SEED=", seed)},
                 {"timeout", "--signal=KILL", kill_after[seed]});
    }
    for (size_t seed = 0; seed < kill_after.size(); ++seed) {
        KilnRun after = build_ok(dockerfile, cached({"--build-arg", str_cat("SEED=", seed)}));
        EXPECT_EQ(after.output.find("is not used"), std::string::npos) << "a killed build left a broken entry:\n"
                                                                       << after.output;
        EXPECT_EQ(content_of("seed"), str_cat(seed, "\n"));
        EXPECT_EQ(fs::file_size(rootfs("a")), 3000000u);
        EXPECT_EQ(fs::file_size(rootfs("b")), 3000000u);
    }
    KilnRun reused = build_ok(dockerfile, cached({"--build-arg", "SEED=0"}));
    EXPECT_EQ(reused.output.find("not cached"), std::string::npos) << reused.output;
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {
namespace {

// Builds as pipeline pods run them: each in a "pod" of its own, with a fresh HOME, work directory and
// --cache-dir, so that anything reused came through the registry.
class RegistryCacheTest : public RegistryBuildTest {
protected:
    KilnRun build_in_pod(const std::string& context, const std::string& destination, std::vector<std::string> more = {}) {
        std::string pod = str_cat(m_dir.path(), "/pod-", ++m_pods);
        EXPECT_TRUE(make_directories(pod + "/home"));
        std::vector<std::string> args = {"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                                         "--insecure-pull", "--destination", destination, "--cache", "--cache-dir",
                                         pod + "/cache", "--work-dir", pod + "/work"};
        args.insert(args.end(), more.begin(), more.end());
        return run_kiln(args, {}, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + pod + "/home"});
    }
    // The files of a pushed image, as umoci unpacks them.
    std::string unpacked(const std::string& image) {
        std::string tag = str_cat("t", ++m_pods);
        std::string layout = m_dir.path() + "/layout";
        std::string bundle = m_dir.path() + "/bundle-" + tag;
        EXPECT_TRUE(pull_to_layout(image, layout, tag));
        auto unpacked = unpack_layout(layout, tag, bundle);
        EXPECT_TRUE(unpacked) << unpacked.error().message();
        return bundle + "/rootfs";
    }
    // The file the COPY reads, context/src/a.txt.
    void put_source(const std::string& context, const std::string& text) {
        ASSERT_TRUE(make_directories(context + "/src"));
        ASSERT_TRUE(write_file_atomic(context + "/src/a.txt", text));
    }
    size_t m_pods = 0;
};

// Each RUN leaves fresh random bytes, so the image tells which steps ran again.
std::string two_step_dockerfile() {
    return str_cat("ARG BASE\nFROM $BASE\nRUN ", k_random, " > /one\nCOPY src/ /src/\nRUN ", k_random,
                   " > /two && rm /bin/true\n");
}

TEST_F(RegistryCacheTest, PodsThatShareNothingHitThroughTheRegistryAlone) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    KilnRun first = build_in_pod(context, reference("pods/app:1"));
    ASSERT_EQ(first.exit_code, 0) << first.output;
    KilnRun second = build_in_pod(context, reference("pods/app:2"));
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("cached (registry)"), std::string::npos) << second.output;
    EXPECT_EQ(second.output.find("not cached"), std::string::npos) << second.output;
    EXPECT_EQ(second.output.find("pulled"), std::string::npos) << "a fully cached build downloads nothing\n"
                                                                    << second.output;
    std::string one = unpacked(reference("pods/app:1"));
    std::string two = unpacked(reference("pods/app:2"));
    EXPECT_EQ(read_file(one + "/one").value_or("?"), read_file(two + "/one").value_or("!"));
    EXPECT_EQ(read_file(one + "/two").value_or("?"), read_file(two + "/two").value_or("!"));
    EXPECT_FALSE(path_exists(two + "/bin/true")) << "the deletion in a cached layer was lost";

    // A one-file change in a third pod: the RUN before the COPY comes from the registry, the ones after run,
    // and the log says which file changed, from what the registry recorded.
    put_source(context, "changed\n");
    KilnRun third = build_in_pod(context, reference("pods/app:3"));
    ASSERT_EQ(third.exit_code, 0) << third.output;
    EXPECT_NE(third.output.find("what it reads changed: src/a.txt"), std::string::npos) << third.output;
    std::string three = unpacked(reference("pods/app:3"));
    EXPECT_EQ(read_file(one + "/one").value_or("?"), read_file(three + "/one").value_or("!"));
    EXPECT_NE(read_file(one + "/two").value_or("?"), read_file(three + "/two").value_or("?"));
    EXPECT_EQ(read_file(three + "/src/a.txt").value_or("?"), "changed\n");
}

TEST_F(RegistryCacheTest, ThreeConsecutiveCachedBuildsGiveAnImageUmociUnpacks) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    std::string first_one;
    for (int build = 1; build <= 3; ++build) {
        std::string image = reference(str_cat("thrice/app:", build));
        KilnRun run = build_in_pod(context, image);
        ASSERT_EQ(run.exit_code, 0) << run.output;
        std::string rootfs = unpacked(image);
        auto one = read_file(rootfs + "/one");
        ASSERT_TRUE(one) << "build " << build;
        if (build == 1) first_one = *one;
        EXPECT_EQ(*one, first_one) << "build " << build;
        EXPECT_TRUE(path_exists(rootfs + "/bin/sh")) << "build " << build;
        EXPECT_FALSE(path_exists(rootfs + "/bin/true")) << "build " << build;
    }
}

TEST_F(RegistryCacheTest, AnUnreachableCacheRepositoryIsAWarningAndTheBuildSucceeds) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    // A port that nothing listens on: the build's own socket was closed before kiln runs.
    KilnRun run = build_in_pod(context, reference("unreachable/app:1"), {"--cache-repo", "127.0.0.1:1/cache"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("the build goes on without looking in the registry cache"), std::string::npos) << run.output;
    EXPECT_TRUE(inspect_remote(reference("unreachable/app:1")));
}

TEST_F(RegistryCacheTest, ACorruptedCachedLayerIsAMissWithAWarningAndTheStepRunsAgain) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    KilnRun first = build_in_pod(context, reference("corrupt/app:1"));
    ASSERT_EQ(first.exit_code, 0) << first.output;
    // The layer of the first RUN, as the cache holds it: the image's second layer.
    auto inspected = inspect_remote(reference("corrupt/app:1"));
    ASSERT_TRUE(inspected);
    std::string layer = (*inspected)["Layers"][1];
    std::string data = registry().blob_data_path(layer);
    auto original = read_file(data);
    ASSERT_TRUE(original);
    std::string corrupted = *original;
    corrupted[corrupted.size() / 2] ^= 0x55;
    ASSERT_TRUE(write_file_atomic(data, corrupted));
    // The COPY misses, so the first RUN's cached layer must be fetched, and fails its digest.
    put_source(context, "changed\n");
    KilnRun second = build_in_pod(context, reference("corrupt/app:2"), {"--push-retry", "0"});
    ASSERT_TRUE(write_file_atomic(data, *original));  // the registry's blobs are shared by the other tests
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("is not used"), std::string::npos) << second.output;
    EXPECT_NE(second.output.find(layer), std::string::npos) << second.output;
    EXPECT_NE(second.output.find("its entry's layer could not be fetched"), std::string::npos) << second.output;
    std::string rootfs = unpacked(reference("corrupt/app:2"));
    EXPECT_EQ(read_file(rootfs + "/src/a.txt").value_or("?"), "changed\n");
}

TEST_F(RegistryCacheTest, NoPushCacheLooksUpButStoresNothing) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    KilnRun first = build_in_pod(context, reference("readonly/app:1"), {"--no-push-cache"});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    KilnRun second = build_in_pod(context, reference("readonly/app:2"), {"--no-push-cache"});
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_EQ(second.output.find("cached (registry)"), std::string::npos) << second.output;
    // Stored now, and found by a build that only reads.
    KilnRun storing = build_in_pod(context, reference("readonly/app:3"));
    ASSERT_EQ(storing.exit_code, 0) << storing.output;
    KilnRun reading = build_in_pod(context, reference("readonly/app:4"), {"--no-push-cache"});
    ASSERT_EQ(reading.exit_code, 0) << reading.output;
    EXPECT_NE(reading.output.find("cached (registry)"), std::string::npos) << reading.output;
}

TEST_F(RegistryCacheTest, AnExplicitCacheRepoServesBuildsThatDoNotPush) {
    std::string context = context_with(two_step_dockerfile());
    put_source(context, "a\n");
    std::string repo = reference("shared/cache");
    for (int build = 1; build <= 2; ++build) {
        std::string pod = str_cat(m_dir.path(), "/nopush-", build);
        KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                                "--insecure-pull", "--no-push", "--cache", "--cache-repo", repo, "--cache-dir",
                                pod + "/cache", "--work-dir", pod + "/work"});
        ASSERT_EQ(run.exit_code, 0) << run.output;
        if (build == 2) {
            EXPECT_EQ(run.output.find("not cached"), std::string::npos) << run.output;
        }
    }
}

// A fully cached build that pushes to the registry its base came from downloads nothing: the base's layers are
// mounted from the base's repository, and no step needs their files.
TEST_F(RegistryCacheTest, AFullyCachedPushToTheBasesRegistryDownloadsNoLayer) {
    std::string context = context_with("ARG BASE\nFROM $BASE\nRUN head -c 16 /dev/urandom > /one\n");
    auto build = [&](const std::string& work) {
        return run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                         "--insecure-pull", "--destination", reference("cached/app:1"), "--cache", "--cache-dir",
                         m_dir.path() + "/cache", "--work-dir", m_dir.path() + "/" + work});
    };
    KilnRun first = build("work-1");
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("pulled sha256:"), std::string::npos) << "the first build extracts its base:\n" << first.output;
    KilnRun second = build("work-2");
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_EQ(second.output.find("pulled sha256:"), std::string::npos) << second.output;
    EXPECT_EQ(second.output.find("not cached"), std::string::npos) << second.output;
}

}  // namespace
}  // namespace kiln::test
